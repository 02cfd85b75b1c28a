//! Runs: [`Trainer`] builds a run from a [`RunSpec`] into a directory, trains
//! it with observers, checkpoints after every epoch and resumes from the last
//! checkpoint; [`Run`] opens a finished run and gives back its model.
//!
//! A run directory holds `config.json` (the [`RunConfig`]), `metrics.csv` (a
//! row per step and a row per epoch), `diagnostics.csv` (the [`Monitor`]'s
//! records), `vocab.json` (taggers), `checkpoint/` (model, optimizer,
//! schedule and progress after the last finished epoch), and, once training
//! ends, `model.safetensors`, `optimizer.safetensors` and `summary.json`,
//! written last: a directory without it is an unfinished run.
//!
//! Uses: `train` (fit, monitor, spec, data), `nn`, `optim`, `data`, `io`, `error`.

use super::data::{load_existing, load_new, Model, RunData, Vocabularies};
use super::spec::{RunConfig, RunSpec, Task, RUN_FORMAT};
use super::{fit, read_records, slot_metrics, EpochMetrics, FitOptions, Monitor, Observer, StepMetrics};
use crate::data::{ChunkMetrics, TaggedSentence};
use crate::io::{read_json, write_json};
use crate::nn::{load_state_dict, save_state_dict, Module, Tagger};
use crate::optim::{load_optimizer_state, save_optimizer_state, LrScheduler, Optimizer};
use crate::{Error, Result, Rng};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The outcome of a run (`summary.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Layout version, [`RUN_FORMAT`].
    pub format: u32,
    /// What was trained: `mnist`, `slots`.
    pub task: String,
    /// Model name.
    pub model: String,
    /// Number of parameters.
    pub parameters: usize,
    /// Epochs trained.
    pub epochs: usize,
    /// Seed.
    pub seed: u64,
    /// Optimizer steps.
    pub steps: usize,
    /// Final held-out accuracy (MNIST's test set, a corpus's dev set).
    pub test_accuracy: f32,
    /// Final held-out loss.
    pub test_loss: f32,
    /// Last epoch's running training accuracy.
    pub train_accuracy: f32,
    /// Last epoch's running training loss.
    pub train_loss: f32,
    /// Seconds in training steps, evaluation excluded (all sessions of a resumed run).
    pub train_seconds: f64,
    /// Training examples per second.
    pub train_images_per_second: f64,
    /// Worker threads used by the kernels.
    pub threads: usize,
    /// Slot filling: chunk F1 on the test set, as `conlleval` computes it.
    #[serde(default)]
    pub test_f1: Option<f64>,
}

/// Where a run stands after the last finished epoch (`checkpoint/state.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Progress {
    epochs_done: usize,
    steps: usize,
    scheduler: LrScheduler,
    /// The tagger's dropout generator.
    dropout_rng: Option<Rng>,
    history: Vec<EpochMetrics>,
    train_seconds: f64,
    examples: usize,
}

/// How [`Trainer::train`] ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Every epoch trained; the run is complete.
    Finished(Summary),
    /// An observer asked to stop; the run resumes from its checkpoint after `epochs_done` epochs.
    Stopped {
        /// Epochs trained so far.
        epochs_done: usize,
    },
}

/// `metrics.csv`: a row per step and a row per epoch, flushed after each epoch.
struct MetricsLog {
    path: PathBuf,
    csv: BufWriter<File>,
}

const METRICS_HEADER: &str = "step,epoch,loss,lr,grad_norm,train_loss,train_accuracy,test_loss,test_accuracy";

impl MetricsLog {
    /// Opens `path` for appending after the rows of the first `epochs` epochs
    /// (a new file when `epochs` is 0); later rows, from an epoch that did
    /// not finish, are dropped.
    fn open(path: &Path, epochs: usize) -> Result<Self> {
        let mut text = format!("{METRICS_HEADER}\n");
        if epochs > 0 {
            let old = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            let kept = old
                .lines()
                .skip(1)
                .filter(|l| l.split(',').nth(1).and_then(|e| e.parse::<usize>().ok()) < Some(epochs));
            kept.for_each(|l| text += &format!("{l}\n"));
        }
        crate::io::write_atomically(path, text.as_bytes())?;
        let file = std::fs::OpenOptions::new().append(true).open(path).map_err(|e| Error::io(path, e))?;
        Ok(MetricsLog { path: path.to_path_buf(), csv: BufWriter::new(file) })
    }
}

impl Observer for MetricsLog {
    fn on_step(&mut self, m: &StepMetrics) -> Result<()> {
        writeln!(self.csv, "{},{},{},{},{},,,,", m.step, m.epoch, m.loss, m.lr, m.grad_norm)
            .map_err(|e| Error::io(&self.path, e))
    }
    fn on_epoch(&mut self, m: &EpochMetrics) -> Result<()> {
        let (tl, ta) = m.test.map_or((String::new(), String::new()), |(l, a)| (l.to_string(), a.to_string()));
        writeln!(self.csv, "{},{},,,,{},{},{tl},{ta}", m.steps, m.epoch, m.train_loss, m.train_accuracy)
            .and_then(|_| self.csv.flush())
            .map_err(|e| Error::io(&self.path, e))
    }
}

/// A run being trained: its directory, data, model, optimizer and schedule.
///
/// ```no_run
/// use saddle::train::{Outcome, RunSpec, Trainer};
/// let spec = RunSpec { epochs: 2, ..RunSpec::mnist() };
/// let mut trainer = Trainer::create(&spec, "runs/two-epochs".as_ref())?;
/// if let Outcome::Finished(summary) = trainer.train(&mut [])? {
///     println!("test accuracy {:.2}%", 100.0 * summary.test_accuracy);
/// }
/// # Ok::<(), saddle::Error>(())
/// ```
pub struct Trainer {
    dir: PathBuf,
    config: RunConfig,
    data: RunData,
    model: Model,
    opt: Optimizer,
    progress: Progress,
    log: MetricsLog,
    monitor: Option<Monitor>,
}

impl Trainer {
    /// A new run of `spec` in `dir` (which must not exist, or be empty): loads
    /// the data, builds the model and the optimizer, and writes `config.json`.
    pub fn create(spec: &RunSpec, dir: &Path) -> Result<Self> {
        if dir.exists() && std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
            return Err(Error::config(
                "--out",
                format!("{} already exists; choose another name or remove it", dir.display()),
            ));
        }
        let (config, data) = load_new(spec)?;
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        write_json(&dir.join("config.json"), &config)?;
        if let Some(v) = &data.vocabularies {
            write_json(&dir.join("vocab.json"), v)?;
        }
        Trainer::assemble(dir, config, data, None)
    }

    /// Continues the run in `dir` from its last checkpoint: the same batches,
    /// rates and dropout masks as an uninterrupted run, so the same bits.
    pub fn resume(dir: &Path) -> Result<Self> {
        let config = read_config(dir)?;
        if dir.join("summary.json").is_file() {
            return Err(Error::format(dir, "the run is complete (it has summary.json); there is nothing to resume"));
        }
        let data = load_existing(&config, dir, None)?;
        let checkpoint = dir.join("checkpoint");
        let progress: Option<Progress> = if checkpoint.join("state.json").is_file() {
            Some(read_json(&checkpoint.join("state.json"), "a saddle checkpoint state")?)
        } else {
            None // killed before the first epoch ended: start again
        };
        let mut trainer = Trainer::assemble(dir, config, data, progress)?;
        if trainer.progress.epochs_done > 0 {
            load_state_dict(&trainer.model, &checkpoint.join("model.safetensors"))?;
            load_optimizer_state(&mut trainer.opt, &checkpoint.join("optimizer.safetensors"))?;
            if let (Model::Tagger(t), Some(rng)) = (&trainer.model, &trainer.progress.dropout_rng) {
                t.dropout.set_rng(rng.clone());
            }
        }
        Ok(trainer)
    }

    fn assemble(dir: &Path, config: RunConfig, data: RunData, progress: Option<Progress>) -> Result<Self> {
        let model = Model::build(&config, data.vocabularies.as_ref())?;
        let spec = &config.spec;
        let opt = Optimizer::new(model.named_parameters(), spec.optimizer)?;
        let total_steps = spec.epochs * data.sizes.0.div_ceil(spec.batch_size);
        let progress = match progress {
            Some(p) => p,
            None => Progress {
                epochs_done: 0,
                steps: 0,
                scheduler: LrScheduler::new(spec.schedule.clone(), spec.optimizer.lr(), total_steps)?,
                dropout_rng: None,
                history: Vec::new(),
                train_seconds: 0.0,
                examples: 0,
            },
        };
        let log = MetricsLog::open(&dir.join("metrics.csv"), progress.epochs_done)?;
        let monitor = (spec.monitor_every > 0).then(|| {
            let path = dir.join("diagnostics.csv");
            let old = if progress.epochs_done > 0 {
                read_records(&path).map(|(_, r)| r).unwrap_or_default()
            } else {
                Vec::new()
            };
            Monitor::new(spec.monitor_every).with_log(&path).continuing(old, progress.steps)
        });
        Ok(Trainer { dir: dir.to_path_buf(), config, data, model, opt, progress, log, monitor })
    }

    /// Trains the remaining epochs, watched by `observers`, writing a
    /// checkpoint after each; stops early (resumable) when an observer asks.
    pub fn train(&mut self, observers: &mut [&mut dyn Observer]) -> Result<Outcome> {
        let spec = self.config.spec.clone();
        while self.progress.epochs_done < spec.epochs {
            let epoch = self.progress.epochs_done;
            let o = FitOptions {
                epochs: epoch + 1,
                start_epoch: epoch,
                batch_size: spec.batch_size,
                seed: spec.seed,
                clip_norm: spec.clip_norm,
                ..FitOptions::default()
            };
            let mut all: Vec<&mut dyn Observer> = vec![&mut self.log];
            if let Some(m) = self.monitor.as_mut() {
                all.push(m);
            }
            for ob in observers.iter_mut() {
                all.push(&mut **ob);
            }
            let p = &mut self.progress;
            let report = fit(
                &mut self.model,
                &mut self.opt,
                &mut p.scheduler,
                self.data.train.as_ref(),
                Some(self.data.held_out.as_ref()),
                &o,
                &mut all,
            )?;
            p.epochs_done += 1;
            p.steps = report.steps;
            p.train_seconds += report.train_seconds;
            p.examples += self.data.sizes.0;
            p.history.extend(report.epochs);
            self.checkpoint()?;
            if observers.iter().any(|o| o.should_stop()) && self.progress.epochs_done < spec.epochs {
                return Ok(Outcome::Stopped { epochs_done: self.progress.epochs_done });
            }
        }
        self.finish().map(Outcome::Finished)
    }

    /// Writes `checkpoint/` whole: into `checkpoint.new/` first, which then
    /// takes the old one's place, so a crash leaves one complete checkpoint.
    fn checkpoint(&mut self) -> Result<()> {
        self.progress.dropout_rng = self.model.as_tagger().map(|t| t.dropout.rng());
        let (new, dir) = (self.dir.join("checkpoint.new"), self.dir.join("checkpoint"));
        let _ = std::fs::remove_dir_all(&new);
        std::fs::create_dir_all(&new).map_err(|e| Error::io(&new, e))?;
        save_state_dict(&self.model, &new.join("model.safetensors"))?;
        save_optimizer_state(&self.opt, &new.join("optimizer.safetensors"))?;
        write_json(&new.join("state.json"), &self.progress)?;
        let old = self.dir.join("checkpoint.old");
        if dir.exists() {
            std::fs::rename(&dir, &old).map_err(|e| Error::io(&dir, e))?;
        }
        std::fs::rename(&new, &dir).map_err(|e| Error::io(&new, e))?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(())
    }

    /// Saves the model and the optimizer's state, then `summary.json`, which marks the run complete.
    fn finish(&mut self) -> Result<Summary> {
        let p = &self.progress;
        let last = p.history.last().ok_or_else(|| Error::config("epochs", "no epoch was trained"))?;
        let (test_loss, test_accuracy) = last.test.unwrap_or((f32::NAN, f32::NAN));
        let test_f1 = match (&mut self.model, &self.data.vocabularies) {
            (Model::Tagger(t), Some(v)) => Some(test_chunks(t, &self.data.test, v).overall.f1()),
            _ => None,
        };
        let spec = &self.config.spec;
        let summary = Summary {
            format: RUN_FORMAT,
            task: spec.task.name().into(),
            model: spec.model_name(),
            parameters: self.model.num_parameters(),
            epochs: spec.epochs,
            seed: spec.seed,
            steps: p.steps,
            test_accuracy,
            test_loss,
            train_accuracy: last.train_accuracy,
            train_loss: last.train_loss,
            train_seconds: p.train_seconds,
            train_images_per_second: p.examples as f64 / p.train_seconds.max(1e-9),
            threads: rayon::current_num_threads(),
            test_f1,
        };
        save_state_dict(&self.model, &self.dir.join("model.safetensors"))?;
        save_optimizer_state(&self.opt, &self.dir.join("optimizer.safetensors"))?;
        write_json(&self.dir.join("summary.json"), &summary)?;
        Ok(summary)
    }

    /// The run directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The resolved settings (`config.json`).
    pub fn config(&self) -> &RunConfig {
        &self.config
    }
    /// The network being trained.
    pub fn model(&self) -> &Model {
        &self.model
    }
    /// The optimizer.
    pub fn optimizer(&self) -> &Optimizer {
        &self.opt
    }
    /// The learning-rate schedule of the run, where it stands.
    pub fn scheduler(&self) -> &LrScheduler {
        &self.progress.scheduler
    }
    /// The data, loaded.
    pub fn data(&self) -> &RunData {
        &self.data
    }
    /// Epochs trained so far.
    pub fn epochs_done(&self) -> usize {
        self.progress.epochs_done
    }
}

/// The chunk metrics of `tagger` on `sentences` with the run's vocabularies.
fn test_chunks(tagger: &mut Tagger, sentences: &[TaggedSentence], v: &Vocabularies) -> ChunkMetrics {
    slot_metrics(tagger, sentences, &v.words(), &v.tagset())
}

/// Reads `dir/config.json`, checking its format first, so that a run of
/// another saddle version is named as such rather than as a broken file.
fn read_config(dir: &Path) -> Result<RunConfig> {
    if !dir.is_dir() {
        return Err(Error::io(dir, std::io::Error::new(std::io::ErrorKind::NotFound, "no such run directory")));
    }
    let path = dir.join("config.json");
    let value: serde_json::Value = read_json(&path, "a saddle run file (JSON)")?;
    let format = value.get("format").and_then(|f| f.as_u64());
    if format != Some(u64::from(RUN_FORMAT)) {
        let had = format.map_or("no format number".to_string(), |f| format!("run format {f}"));
        return Err(Error::format(
            &path,
            format!("{had}, written by another saddle version; this one reads run format {RUN_FORMAT}"),
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| Error::format(&path, format!("not a saddle run file of format {RUN_FORMAT} ({e})")))
}

/// A finished run, opened: its settings, its outcome, and its trained model.
pub struct Run {
    /// The directory.
    pub path: PathBuf,
    /// Its settings.
    pub config: RunConfig,
    /// Its outcome.
    pub summary: Summary,
    /// The trained network, loaded from `model.safetensors`.
    pub model: Model,
    /// A tagger's words and tags.
    pub vocabularies: Option<Vocabularies>,
}

/// What [`Run::evaluate`] measured.
#[derive(Clone, Debug)]
pub enum Evaluated {
    /// An image classifier on its test set.
    Images {
        /// Loss, accuracy, predictions and labels.
        evaluation: super::Evaluation,
        /// `m[true][predicted]`.
        confusion: Vec<Vec<usize>>,
        /// The data folder.
        source: String,
    },
    /// A tagger on its test sentences.
    Slots {
        /// Chunk precision, recall and F1, overall and per slot type; token accuracy.
        metrics: ChunkMetrics,
        /// The corpus.
        source: String,
        /// Test sentences.
        sentences: usize,
    },
}

impl Run {
    /// Opens a finished run; a missing file or another layout is an error that names it.
    pub fn open(path: &Path) -> Result<Self> {
        let config = read_config(path)?;
        for file in ["summary.json", "model.safetensors"] {
            if !path.join(file).is_file() {
                return Err(Error::format(path, format!("incomplete run: no {file} (did training finish?)")));
            }
        }
        let summary: Summary = read_json(&path.join("summary.json"), "a saddle run summary")?;
        let vocabularies: Option<Vocabularies> = match config.spec.task {
            Task::Slots { .. } => Some(read_json(&path.join("vocab.json"), "a saddle vocabulary file")?),
            Task::Mnist { .. } => None,
        };
        let model = Model::build(&config, vocabularies.as_ref())?;
        load_state_dict(&model, &path.join("model.safetensors"))?;
        Ok(Run { path: path.to_path_buf(), config, summary, model, vocabularies })
    }

    /// The same network at its initialization (the same seed), before any training.
    pub fn initial_model(&self) -> Result<Model> {
        Model::build(&self.config, self.vocabularies.as_ref())
    }

    /// The run's data, from `data` instead of its own folder if given.
    pub fn data(&self, data: Option<&Path>) -> Result<RunData> {
        load_existing(&self.config, &self.path, data)
    }

    /// The trained model on the test set (of `data`, or the run's own).
    pub fn evaluate(&mut self, data: Option<&Path>) -> Result<Evaluated> {
        let d = self.data(data)?;
        match (&mut self.model, &self.vocabularies) {
            (Model::Tagger(t), Some(v)) => {
                Ok(Evaluated::Slots { metrics: test_chunks(t, &d.test, v), source: d.source, sentences: d.test.len() })
            }
            (model, _) => {
                let evaluation = super::evaluate(model, d.held_out.as_ref(), FitOptions::default().eval_batch_size);
                let confusion =
                    super::confusion_matrix(&evaluation.predictions, &evaluation.labels, self.config.classes);
                Ok(Evaluated::Images { evaluation, confusion, source: d.source })
            }
        }
    }
}
