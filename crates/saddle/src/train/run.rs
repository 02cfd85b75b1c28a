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

use super::data::{
    check_config, check_weights, load_existing, load_image_test, load_new, Model, OnLoad, RunData, Vocabularies,
};
use super::spec::{ImageModel, RunConfig, RunSpec, Task, RUN_FORMAT};
use super::{
    fit, read_records, slot_metrics, Divergence, EpochMetrics, FitOptions, Monitor, Observer, Position, StepMetrics,
};
use crate::data::{ChunkMetrics, TaggedSentence};
use crate::dist::DataParallel;
use crate::io::{read_json, write_json};
use crate::nn::{load_state_dict, save_state_dict, whiten_first_layer, Module, Tagger};
use crate::optim::{load_optimizer_state, save_optimizer_state, LrScheduler, Optimizer, ParamGroup};
use crate::{Error, Result, Rng};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Write;
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
    /// The split evaluated after each epoch: `test` (images), `dev` (a corpus).
    #[serde(default = "unnamed_split")]
    pub held_out: String,
    /// Final accuracy on that split; NaN if no epoch ended.
    #[serde(with = "crate::io::float", alias = "test_accuracy")]
    pub held_out_accuracy: f32,
    /// Final loss on that split.
    #[serde(with = "crate::io::float", alias = "test_loss")]
    pub held_out_loss: f32,
    /// Last epoch's running training accuracy.
    #[serde(with = "crate::io::float")]
    pub train_accuracy: f32,
    /// Last epoch's running training loss.
    #[serde(with = "crate::io::float")]
    pub train_loss: f32,
    /// Seconds in training steps, evaluation excluded (all sessions of a resumed run).
    pub train_seconds: f64,
    /// Training examples per second.
    pub train_images_per_second: f64,
    /// Worker threads used by the kernels.
    pub threads: usize,
    /// Tagging with chunk tags (BIO, BIOES): chunk F1 on the test set, as
    /// `conlleval` computes it; `None` for tags of single words (parts of speech).
    #[serde(default)]
    pub test_f1: Option<f64>,
    /// Tagging: the share of the test set's words tagged right.
    #[serde(default)]
    pub test_token_accuracy: Option<f64>,
    /// Set when training stopped at a NaN or infinite loss or gradient: the
    /// model files then hold the last finite weights, from before that step.
    #[serde(default)]
    pub diverged: Option<Divergence>,
}

/// The split of a summary written before splits were named.
fn unnamed_split() -> String {
    "held-out".into()
}

/// Where a run stands at its last checkpoint (`checkpoint/state.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Progress {
    /// The next batch, and the sums of its epoch so far.
    position: Position,
    scheduler: LrScheduler,
    /// The tagger's dropout generator.
    dropout_rng: Option<Rng>,
    /// The metrics of the last finished epoch.
    last_epoch: Option<EpochMetrics>,
    /// Seconds in training steps and examples trained, over every session of the run.
    train_seconds: f64,
    examples: usize,
}

/// How [`Trainer::train`] ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Every epoch trained; the run is complete.
    Finished(Summary),
    /// An observer asked to stop; the run resumes from its checkpoint at `step`.
    Stopped {
        /// Steps trained so far.
        step: usize,
        /// Epochs finished so far.
        epochs_done: usize,
    },
    /// A loss or gradient was not finite; the run is complete, with the weights from before that step.
    Diverged(Summary),
}

/// `metrics.csv`: a row per step and a row per epoch, each written whole in
/// one call, so that a killed run never leaves half a row.
struct MetricsLog {
    path: PathBuf,
    csv: std::io::LineWriter<File>,
}

impl MetricsLog {
    /// Opens `path` for appending after the rows before `at`: the steps
    /// before `at.step` and the epochs before `at.epoch` (a new file at the
    /// start); rows written after the checkpoint are dropped. The last two
    /// columns are named by the held-out split (`test_loss`, `dev_loss`, …).
    fn open(path: &Path, at: &Position, split: &str) -> Result<Self> {
        let mut text =
            format!("step,epoch,loss,lr,grad_norm,train_loss,train_accuracy,{split}_loss,{split}_accuracy\n");
        if at.step > 0 {
            let old = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            for line in old.lines().skip(1) {
                let f: Vec<&str> = line.split(',').collect();
                let number = |i: usize| f.get(i).and_then(|v| v.parse::<usize>().ok());
                let keep = match f.get(2) {
                    Some(&"") => number(1).is_some_and(|e| e < at.epoch),
                    _ => f.len() == 9 && number(0).is_some_and(|s| s < at.step),
                };
                if keep {
                    text += &format!("{line}\n");
                }
            }
        }
        crate::io::write_atomically(path, text.as_bytes())?;
        let file = std::fs::OpenOptions::new().append(true).open(path).map_err(|e| Error::io(path, e))?;
        Ok(MetricsLog { path: path.to_path_buf(), csv: std::io::LineWriter::new(file) })
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
///     println!("{} accuracy {:.2}%", summary.held_out, 100.0 * summary.held_out_accuracy);
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
    /// Rank 0's (or a single process's) log; other ranks write nothing.
    log: Option<MetricsLog>,
    monitor: Option<Monitor>,
    parallel: Option<DataParallel>,
}

/// The run's monitor, then the caller's observers, who also hear of each new record.
struct Relay<'a, 'b> {
    monitor: Option<&'a mut Monitor>,
    observers: &'a mut [&'b mut dyn Observer],
}

impl Observer for Relay<'_, '_> {
    fn before_update(&mut self, step: usize, params: &[(String, crate::Tensor)]) -> Result<()> {
        if let Some(m) = self.monitor.as_mut() {
            m.before_update(step, params)?;
        }
        self.observers.iter_mut().try_for_each(|o| o.before_update(step, params))
    }
    fn on_step(&mut self, s: &StepMetrics) -> Result<()> {
        if let Some(m) = self.monitor.as_mut() {
            let before = m.records().len();
            m.on_step(s)?;
            if let Some(r) = m.records().get(before) {
                self.observers.iter_mut().try_for_each(|o| o.on_record(r, m.layers()))?;
            }
        }
        self.observers.iter_mut().try_for_each(|o| o.on_step(s))
    }
    fn on_epoch(&mut self, e: &EpochMetrics) -> Result<()> {
        self.observers.iter_mut().try_for_each(|o| o.on_epoch(e))
    }
    fn should_stop(&self) -> bool {
        self.observers.iter().any(|o| o.should_stop())
    }
}

impl Trainer {
    /// A new run of `spec` in `dir` (which must not exist, or be empty): loads
    /// the data, builds the model and the optimizer, and writes `config.json`.
    pub fn create(spec: &RunSpec, dir: &Path) -> Result<Self> {
        Trainer::create_with(spec, dir, &|_, _| {})
    }

    /// [`Trainer::create`], telling `on_load(done, total)` how the decoding
    /// of an image folder advances (for a progress bar).
    pub fn create_with(spec: &RunSpec, dir: &Path, on_load: OnLoad<'_>) -> Result<Self> {
        Trainer::new_run(spec, dir, on_load, None)
    }

    /// [`Trainer::create_with`] on one rank of a data-parallel job, which
    /// every rank calls with the same `spec` and `dir`: each loads the data
    /// and builds the model; rank 0 alone checks and writes `dir`, and its
    /// initial weights and buffers are sent to all. `spec.batch_size` is the
    /// global batch. An error on any rank is an error on every rank.
    ///
    /// ```no_run
    /// # #[cfg(feature = "mpi")] {
    /// use saddle::dist::{DataParallel, Mpi};
    /// use saddle::train::{RunSpec, Trainer};
    /// use std::sync::Arc;
    /// let mpi = Arc::new(Mpi::init()?);                          // launched by `mpirun -n 2 …`
    /// let dp = DataParallel::new(mpi.clone());
    /// let mut t = Trainer::create_distributed(&RunSpec::mnist(), "runs/dp".as_ref(), &|_, _| {}, dp)?;
    /// if let Err(e) = t.train(&mut []) {
    ///     eprintln!("rank {}: {e}", mpi.rank());
    ///     mpi.abort(1);                                             // the others would wait forever
    /// }
    /// # }
    /// # Ok::<(), saddle::Error>(())
    /// ```
    pub fn create_distributed(spec: &RunSpec, dir: &Path, on_load: OnLoad<'_>, parallel: DataParallel) -> Result<Self> {
        Trainer::new_run(spec, dir, on_load, Some(parallel))
    }

    fn new_run(spec: &RunSpec, dir: &Path, on_load: OnLoad<'_>, parallel: Option<DataParallel>) -> Result<Self> {
        let root = parallel.as_ref().is_none_or(DataParallel::is_root);
        let taken = root && dir.exists() && std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(true);
        let free = if taken {
            Err(Error::config("--out", format!("{} already exists; choose another name or remove it", dir.display())))
        } else {
            Ok(())
        };
        agree(parallel.as_ref(), free)?;
        let (config, data) = agree(parallel.as_ref(), load_new(spec, on_load))?;
        if root {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            write_json(&dir.join("config.json"), &config)?;
            if let Some(v) = &data.vocabularies {
                write_json(&dir.join("vocab.json"), v)?;
            }
        }
        Trainer::assemble(dir, config, data, None, parallel)
    }

    /// Continues the run in `dir` from its last checkpoint: the same batches,
    /// rates and dropout masks as an uninterrupted run, so the same bits.
    pub fn resume(dir: &Path) -> Result<Self> {
        Trainer::resume_run(dir, None)
    }

    /// [`Trainer::resume`] on one rank of a data-parallel job: every rank
    /// reads the run directory (so it must be on a file system they share),
    /// rank 0 alone writes it. The number of ranks may differ from the
    /// session before: the position in the run is counted in global batches.
    pub fn resume_distributed(dir: &Path, parallel: DataParallel) -> Result<Self> {
        Trainer::resume_run(dir, Some(parallel))
    }

    fn resume_run(dir: &Path, parallel: Option<DataParallel>) -> Result<Self> {
        let opened = Trainer::open_checkpoint(dir);
        let (config, data, progress, checkpoint) = agree(parallel.as_ref(), opened)?;
        let mut trainer = Trainer::assemble(dir, config, data, progress, parallel)?;
        if trainer.progress.position.step > 0 {
            load_state_dict(&trainer.model, &checkpoint.join("model.safetensors"))?;
            load_optimizer_state(&mut trainer.opt, &checkpoint.join("optimizer.safetensors"))?;
            if let (Model::Tagger(t), Some(rng)) = (&trainer.model, &trainer.progress.dropout_rng) {
                t.dropout.set_rng(rng.clone());
            }
            trainer.start_ranks();
        }
        Ok(trainer)
    }

    /// The settings, data and progress of the run in `dir`, and its checkpoint folder.
    fn open_checkpoint(dir: &Path) -> Result<(RunConfig, RunData, Option<Progress>, PathBuf)> {
        let config = read_config(dir)?;
        if dir.join("summary.json").is_file() {
            return Err(Error::format(dir, "the run is complete (it has summary.json); there is nothing to resume"));
        }
        let vocabularies = read_vocabularies(&config, dir)?;
        check_config(&config, vocabularies.as_ref(), dir)?;
        let data = load_existing(&config, vocabularies.as_ref(), dir, None)?;
        // A crash between the two renames of `checkpoint` leaves the last complete one as `checkpoint.old`.
        let checkpoint = ["checkpoint", "checkpoint.old"]
            .map(|c| dir.join(c))
            .into_iter()
            .find(|c| c.join("state.json").is_file())
            .unwrap_or_else(|| dir.join("checkpoint"));
        let progress: Option<Progress> = if checkpoint.join("state.json").is_file() {
            Some(read_json(&checkpoint.join("state.json"), "a saddle checkpoint state")?)
        } else {
            None // stopped before the first checkpoint: start again
        };
        if progress.is_some() {
            check_weights(&config, vocabularies.as_ref(), &checkpoint.join("model.safetensors"))?;
        }
        Ok((config, data, progress, checkpoint))
    }

    /// Under data parallelism: rank 0's weights and buffers on every rank,
    /// and a tagger's dropout generator of its own on each rank but 0 (the
    /// ranks' shares would otherwise draw the same masks).
    fn start_ranks(&self) {
        let Some(dp) = &self.parallel else { return };
        dp.broadcast_module(&self.model);
        if let (Some(t), r @ 1..) = (self.model.as_tagger(), dp.rank()) {
            t.dropout.set_rng(Rng::new(t.dropout.rng().next_u64() ^ (r as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        }
    }

    fn assemble(
        dir: &Path,
        config: RunConfig,
        data: RunData,
        progress: Option<Progress>,
        parallel: Option<DataParallel>,
    ) -> Result<Self> {
        let spec = &config.spec;
        let fresh = progress.as_ref().is_none_or(|p| p.position.step == 0);
        let (model, opt) = model_and_optimizer(&config, &data, fresh)?;
        let total_steps = spec.epochs * data.sizes.0.div_ceil(spec.batch_size);
        let progress = match progress {
            Some(p) => p,
            None => Progress {
                position: Position::default(),
                scheduler: LrScheduler::new(spec.schedule.clone(), spec.optimizer.lr(), total_steps)?,
                dropout_rng: None,
                last_epoch: None,
                train_seconds: 0.0,
                examples: 0,
            },
        };
        let at = &progress.position;
        let root = parallel.as_ref().is_none_or(DataParallel::is_root);
        let log = root.then(|| MetricsLog::open(&dir.join("metrics.csv"), at, data.held_out_split)).transpose()?;
        let monitor = (root && spec.monitor_every > 0).then(|| {
            let path = dir.join("diagnostics.csv");
            let old = if at.step > 0 { read_records(&path).map(|(_, r)| r).unwrap_or_default() } else { Vec::new() };
            Monitor::new(spec.monitor_every).with_log(&path).continuing(old, at.step)
        });
        let trainer = Trainer { dir: dir.to_path_buf(), config, data, model, opt, progress, log, monitor, parallel };
        if trainer.progress.position.step == 0 {
            trainer.start_ranks();
        }
        Ok(trainer)
    }

    /// Trains the rest of the run, watched by `observers`: a checkpoint every
    /// `checkpoint_every` steps and at each epoch's end; it stops early,
    /// resumably, when an observer asks, and for good when training diverges.
    pub fn train(&mut self, observers: &mut [&mut dyn Observer]) -> Result<Outcome> {
        let spec = self.config.spec.clone();
        while self.progress.position.epoch < spec.epochs {
            let at = self.progress.position.clone();
            let every = spec.checkpoint_every;
            let o = FitOptions {
                epochs: at.epoch + 1, // at most to the end of this epoch
                max_steps: (every > 0).then(|| (at.step / every + 1) * every),
                start: at,
                batch_size: spec.batch_size,
                seed: spec.seed,
                clip_norm: spec.clip_norm,
                on_nan: spec.on_nan,
                eval_batch_size: spec.batch_size.max(64),
                label_smoothing: spec.label_smoothing,
                tta: spec.tta,
                lookahead: spec.lookahead,
                parallel: self.parallel.clone(),
                sync_batch_norm: spec.sync_batch_norm,
                ..FitOptions::default()
            };
            let mut relay = Relay { monitor: self.monitor.as_mut(), observers: &mut *observers };
            let mut all: Vec<&mut dyn Observer> = vec![&mut relay];
            if let Some(log) = &mut self.log {
                all.insert(0, log);
            }
            let p = &mut self.progress;
            let (train, held_out) = (self.data.train.as_ref(), Some(self.data.held_out.as_ref()));
            let report = fit(&mut self.model, &mut self.opt, &mut p.scheduler, train, held_out, &o, &mut all)?;
            p.train_seconds += report.train_seconds;
            p.examples += report.examples;
            p.last_epoch = report.epochs.last().cloned().or(p.last_epoch.take());
            if let Some(d) = report.diverged {
                return self.diverged(d).map(Outcome::Diverged);
            }
            p.position = report.position;
            self.checkpoint()?;
            let stop = observers.iter().any(|o| o.should_stop());
            let stop = self.parallel.as_ref().map_or(stop, |dp| dp.any(stop));
            let at = &self.progress.position;
            if at.epoch < spec.epochs && stop {
                return Ok(Outcome::Stopped { step: at.step, epochs_done: at.epoch });
            }
        }
        self.finish(None).map(Outcome::Finished)
    }

    /// Writes `checkpoint/` whole: into `checkpoint.new/` first, which then
    /// takes the old one's place, so a crash leaves one complete checkpoint.
    /// The logs are brought up to the same step. Rank 0 alone writes.
    fn checkpoint(&mut self) -> Result<()> {
        if !self.is_root() {
            return Ok(());
        }
        self.flush_logs()?;
        self.progress.dropout_rng = self.model.as_tagger().map(|t| t.dropout.rng());
        let (new, dir, old) =
            (self.dir.join("checkpoint.new"), self.dir.join("checkpoint"), self.dir.join("checkpoint.old"));
        let _ = std::fs::remove_dir_all(&new);
        std::fs::create_dir_all(&new).map_err(|e| Error::io(&new, e))?;
        save_state_dict(&self.model, &new.join("model.safetensors"))?;
        save_optimizer_state(&self.opt, &new.join("optimizer.safetensors"))?;
        write_json(&new.join("state.json"), &self.progress)?;
        if dir.exists() {
            // An old copy left by a crash after the last swap is older than `checkpoint`.
            let _ = std::fs::remove_dir_all(&old);
            std::fs::rename(&dir, &old).map_err(|e| Error::io(&dir, e))?;
        }
        std::fs::rename(&new, &dir).map_err(|e| Error::io(&new, e))?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(())
    }

    /// `metrics.csv` and `diagnostics.csv` up to the step trained last.
    fn flush_logs(&mut self) -> Result<()> {
        if let Some(log) = &mut self.log {
            log.csv.flush().map_err(|e| Error::io(&log.path, e))?;
        }
        match &self.monitor {
            Some(m) => m.write_csv(&self.dir.join("diagnostics.csv")),
            None => Ok(()),
        }
    }

    /// Ends a run that diverged: the logs up to the step before, the last
    /// finite weights (these, or the checkpoint's), and a summary that says
    /// where and how.
    fn diverged(&mut self, d: Divergence) -> Result<Summary> {
        self.flush_logs()?;
        let finite = self.model.named_parameters().iter().all(|(_, p)| p.data().iter().all(|v| v.is_finite()));
        let checkpoint = self.dir.join("checkpoint");
        if !finite && checkpoint.join("model.safetensors").is_file() {
            load_state_dict(&self.model, &checkpoint.join("model.safetensors"))?;
            load_optimizer_state(&mut self.opt, &checkpoint.join("optimizer.safetensors"))?;
        }
        self.progress.position.step = d.step;
        self.finish(Some(d))
    }

    /// Saves the model and the optimizer's state, then `summary.json`, which marks the run complete.
    fn finish(&mut self, diverged: Option<Divergence>) -> Result<Summary> {
        let p = &self.progress;
        let last = p.last_epoch.as_ref();
        let (held_out_loss, held_out_accuracy) = last.and_then(|e| e.test).unwrap_or((f32::NAN, f32::NAN));
        let test_chunks = match (&mut self.model, &self.data.vocabularies, &diverged) {
            (Model::Tagger(t), Some(v), None) => Some(test_chunks(t, &self.data.test, v)),
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
            steps: p.position.step,
            held_out: self.data.held_out_split.into(),
            held_out_accuracy,
            held_out_loss,
            train_accuracy: last.map_or(f32::NAN, |e| e.train_accuracy),
            train_loss: last.map_or(f32::NAN, |e| e.train_loss),
            train_seconds: p.train_seconds,
            train_images_per_second: p.examples as f64 / p.train_seconds.max(1e-9),
            threads: rayon::current_num_threads(),
            test_f1: test_chunks.as_ref().filter(|c| c.has_chunks()).map(|c| c.overall.f1()),
            test_token_accuracy: test_chunks.as_ref().map(|c| c.token_accuracy() / 100.0),
            diverged,
        };
        if self.is_root() {
            save_state_dict(&self.model, &self.dir.join("model.safetensors"))?;
            save_optimizer_state(&self.opt, &self.dir.join("optimizer.safetensors"))?;
            write_json(&self.dir.join("summary.json"), &summary)?;
        }
        Ok(summary)
    }

    /// Whether this process writes the run: rank 0, or a process on its own.
    fn is_root(&self) -> bool {
        self.parallel.as_ref().is_none_or(DataParallel::is_root)
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
    /// Where training stands: the next batch and its epoch.
    pub fn position(&self) -> &Position {
        &self.progress.position
    }
    /// The data parallelism this process takes part in, if any.
    pub fn parallel(&self) -> Option<&DataParallel> {
        self.parallel.as_ref()
    }
}

/// `result` if every rank succeeded; on a rank whose own step succeeded
/// while another's failed, an error that says so (the failing rank reports
/// its own), after a second's wait: a program that ends the job on an error
/// (`mpirun` aborts every rank) could otherwise end it before the failing
/// rank has said why. Without data parallelism, `result` itself.
fn agree<T>(parallel: Option<&DataParallel>, result: Result<T>) -> Result<T> {
    let Some(dp) = parallel else { return result };
    let failed = dp.any(result.is_err());
    match result {
        Ok(_) if failed => {
            std::thread::sleep(std::time::Duration::from_secs(1));
            Err(Error::config("mpi", "another rank failed to start; its error says why"))
        }
        r => r,
    }
}

/// The chunk metrics of `tagger` on `sentences` with the run's vocabularies.
fn test_chunks(tagger: &mut Tagger, sentences: &[TaggedSentence], v: &Vocabularies) -> ChunkMetrics {
    slot_metrics(tagger, sentences, v)
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

/// A tagger's `vocab.json`; `None` for an image run.
fn read_vocabularies(config: &RunConfig, dir: &Path) -> Result<Option<Vocabularies>> {
    match config.spec.task {
        Task::Slots { .. } => Ok(Some(read_json(&dir.join("vocab.json"), "a saddle vocabulary file")?)),
        Task::Mnist { .. } | Task::Images { .. } => Ok(None),
    }
}

/// The optimizer's parameter groups: one for a tagger; for an image
/// classifier, weights (two or more dimensions), other biases, then
/// batch-norm parameters (those of a layer with a `running_mean`). Biases
/// get no weight decay (decay pulls β of a normalized layer towards 0, which
/// only shifts it); batch-norm parameters follow `spec.norm_params`.
/// The network and optimizer of `config`, initialized from its seed; a fresh
/// speedrun network gets its whitening layer from the training images (a
/// resumed one has it in its checkpoint).
pub(crate) fn model_and_optimizer(config: &RunConfig, data: &RunData, fresh: bool) -> Result<(Model, Optimizer)> {
    let model = Model::build(config, data.vocabularies.as_ref())?;
    let spec = &config.spec;
    let speedrun = matches!(
        spec.task,
        Task::Mnist { model: ImageModel::Speedrun } | Task::Images { model: ImageModel::Speedrun, .. }
    );
    if speedrun && fresh {
        whiten(&model, data.train.as_ref());
    }
    if let (Model::Tagger(tagger), Some(vectors), true) = (&model, &data.pretrained, fresh) {
        let mut w = tagger.embedding.weight.data_mut();
        for (row, v) in w.chunks_mut(vectors.dim).zip(&vectors.vectors) {
            if let Some(v) = v {
                row.copy_from_slice(v);
            }
        }
    }
    let opt = Optimizer::with_groups(parameter_groups(&model, spec), spec.optimizer)?;
    Ok((model, opt))
}

fn parameter_groups(model: &Model, spec: &RunSpec) -> Vec<ParamGroup> {
    let params = model.named_parameters();
    if let Task::Slots { tagger } = &spec.task {
        let frozen = |name: &str| tagger.freeze_embeddings && name == "embedding.weight";
        return vec![ParamGroup::new(params.into_iter().filter(|(n, _)| !frozen(n)).collect())];
    }
    let norms: Vec<String> = model
        .named_buffers()
        .into_iter()
        .filter_map(|(n, _)| n.strip_suffix("running_mean").map(str::to_string))
        .collect();
    let is_norm = |name: &str| norms.iter().any(|p| name.strip_prefix(p.as_str()).is_some_and(|r| !r.contains('.')));
    let (norm, rest): (Vec<_>, Vec<_>) = params.into_iter().partition(|(n, _)| is_norm(n));
    let (weights, biases): (Vec<_>, Vec<_>) = rest.into_iter().partition(|(_, p)| p.ndim() >= 2);
    let n = spec.norm_params;
    let norm_decay = if n.weight_decay { spec.optimizer.weight_decay() / n.lr_scale } else { 0.0 };
    vec![
        ParamGroup::new(weights),
        ParamGroup { weight_decay: Some(0.0), ..ParamGroup::new(biases) },
        ParamGroup { lr_scale: n.lr_scale, weight_decay: Some(norm_decay), ..ParamGroup::new(norm) },
    ]
}

/// Sets the speedrun network's first layer to whiten the 2×2 patches of
/// 5000 training images, evenly spaced through the set (airbench's number and
/// `ε`), as the network sees them: normalized, not augmented.
fn whiten(model: &Model, train: &dyn crate::data::Dataset) {
    let (n, take) = (train.len(), train.len().min(5000));
    let (x, _) = train.batch(&(0..take).map(|i| i * n / take.max(1)).collect::<Vec<_>>());
    whiten_first_layer(model, &x, 5e-4);
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
        let vocabularies = read_vocabularies(&config, path)?;
        check_config(&config, vocabularies.as_ref(), path)?;
        check_weights(&config, vocabularies.as_ref(), &path.join("model.safetensors"))?;
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
        load_existing(&self.config, self.vocabularies.as_ref(), &self.path, data)
    }

    /// The trained model on the test set (of `data`, or the run's own; an
    /// image folder needs only its test files).
    pub fn evaluate(&mut self, data: Option<&Path>) -> Result<Evaluated> {
        if let (Model::Tagger(t), Some(v)) = (&mut self.model, &self.vocabularies) {
            let d = load_existing(&self.config, Some(v), &self.path, data)?;
            return Ok(Evaluated::Slots {
                metrics: test_chunks(t, &d.test, v),
                source: d.source,
                sentences: d.test.len(),
            });
        }
        let (test, source) = load_image_test(&self.config, &self.path, data)?;
        let spec = &self.config.spec;
        let evaluation = super::evaluate_tta(&mut self.model, &test, spec.batch_size.max(64), spec.tta);
        let confusion = super::confusion_matrix(&evaluation.predictions, &evaluation.labels, self.config.classes);
        Ok(Evaluated::Images { evaluation, confusion, source })
    }
}
