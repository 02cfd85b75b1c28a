//! Run directories: `runs/NAME/` with `config.json` (the resolved settings),
//! `metrics.csv` (a row per step and a row per epoch), `model.safetensors`
//! (PyTorch state-dict names) and `summary.json`.
//!
//! `summary.json` is written last, atomically: a directory without it is an
//! unfinished run, and [`Run::open`] says so rather than reading half of it.
//!
//! Uses: `nn`, `data`, `error`.

use super::{EpochMetrics, Observer, StepMetrics};
use crate::data::Normalization;
use crate::data::Vocab;
use crate::nn::Tagger;
use crate::nn::{build_model, load_state_dict, save_state_dict, Module, Sequential, TaggerConfig};
use crate::optim::{save_optimizer_state, Optimizer};
use crate::{Error, Result, Rng};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The version of the run-directory layout this build writes and reads.
pub const RUN_FORMAT: u32 = 1;

/// The resolved settings of a training run (`config.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Layout version, [`RUN_FORMAT`].
    pub format: u32,
    /// What was trained (`mnist`).
    pub task: String,
    /// Model name (see [`crate::nn::MODELS`]).
    pub model: String,
    /// Input `[C, H, W]`.
    pub input: [usize; 3],
    /// Number of classes.
    pub classes: usize,
    /// Pixel normalization of the training data.
    pub normalization: Normalization,
    /// The data folder.
    pub data: String,
    /// Passes over the training set.
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// Seed of initialization and shuffling.
    pub seed: u64,
    /// Optimizer name as given on the command line.
    pub optim: String,
    /// Its effective hyperparameters.
    pub optimizer: String,
    /// The learning-rate schedule, as described by [`crate::optim::Schedule::describe`].
    pub schedule: String,
    /// Clipping of the global gradient norm, if any.
    pub clip_norm: Option<f32>,
    /// The tagger's sizes, for slot filling (its vocabularies are in `vocab.json`).
    #[serde(default)]
    pub tagger: Option<TaggerConfig>,
}

/// The outcome of a run (`summary.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Layout version, [`RUN_FORMAT`].
    pub format: u32,
    /// What was trained.
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
    /// Final test accuracy.
    pub test_accuracy: f32,
    /// Final test loss.
    pub test_loss: f32,
    /// Last epoch's running training accuracy.
    pub train_accuracy: f32,
    /// Last epoch's running training loss.
    pub train_loss: f32,
    /// Seconds in training steps, evaluation excluded.
    pub train_seconds: f64,
    /// Training images per second.
    pub train_images_per_second: f64,
    /// Worker threads used by the kernels.
    pub threads: usize,
    /// Slot filling: chunk F1 on the test set, as `conlleval` computes it.
    #[serde(default)]
    pub test_f1: Option<f64>,
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::format(path, e.to_string()))?;
    crate::nn::write_atomically(path, format!("{text}\n").as_bytes())
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::format(path, format!("not a saddle run file of format {RUN_FORMAT} ({e})")))
}

/// A run directory being written: an [`Observer`] that logs `metrics.csv`.
pub struct RunDir {
    path: PathBuf,
    csv: BufWriter<File>,
}

impl RunDir {
    /// Creates `path` (which must not exist yet, or be empty) with `config.json`
    /// and the header of `metrics.csv`.
    pub fn create(path: &Path, config: &RunConfig) -> Result<Self> {
        if path.exists() && std::fs::read_dir(path).map(|mut d| d.next().is_some()).unwrap_or(true) {
            return Err(Error::config(
                "--out",
                format!("{} already exists; choose another name or remove it", path.display()),
            ));
        }
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        write_json(&path.join("config.json"), config)?;
        let csv_path = path.join("metrics.csv");
        let file = File::create(&csv_path).map_err(|e| Error::io(&csv_path, e))?;
        let mut csv = BufWriter::new(file);
        writeln!(csv, "step,epoch,loss,lr,grad_norm,train_loss,train_accuracy,test_loss,test_accuracy")
            .map_err(|e| Error::io(&csv_path, e))?;
        Ok(RunDir { path: path.to_path_buf(), csv })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Saves the model and the optimizer's state, then `summary.json`, which
    /// marks the run complete.
    pub fn finish(mut self, model: &dyn Module, opt: &dyn Optimizer, summary: &Summary) -> Result<()> {
        let csv_path = self.path.join("metrics.csv");
        self.csv.flush().map_err(|e| Error::io(&csv_path, e))?;
        save_state_dict(model, &self.path.join("model.safetensors"))?;
        save_optimizer_state(opt, &self.path.join("optimizer.safetensors"))?;
        write_json(&self.path.join("summary.json"), summary)
    }
}

impl Observer for RunDir {
    fn on_step(&mut self, m: &StepMetrics) -> Result<()> {
        writeln!(self.csv, "{},{},{},{},{},,,,", m.step, m.epoch, m.loss, m.lr, m.grad_norm)
            .map_err(|e| Error::io(self.path.join("metrics.csv"), e))
    }
    fn on_epoch(&mut self, m: &EpochMetrics) -> Result<()> {
        let (tl, ta) = m.test.map_or((String::new(), String::new()), |(l, a)| (l.to_string(), a.to_string()));
        let path = self.path.join("metrics.csv");
        writeln!(self.csv, "{},{},,,,{},{},{tl},{ta}", m.steps, m.epoch, m.train_loss, m.train_accuracy)
            .and_then(|_| self.csv.flush())
            .map_err(|e| Error::io(path, e))
    }
}

/// A finished run, opened for evaluation or prediction.
#[derive(Clone, Debug)]
pub struct Run {
    /// The directory.
    pub path: PathBuf,
    /// Its settings.
    pub config: RunConfig,
    /// Its outcome.
    pub summary: Summary,
}

impl Run {
    /// Opens a finished run; a missing file or an older layout is an error
    /// that names it.
    pub fn open(path: &Path) -> Result<Self> {
        if !path.is_dir() {
            return Err(Error::io(path, std::io::Error::new(std::io::ErrorKind::NotFound, "no such run directory")));
        }
        for file in ["config.json", "summary.json", "model.safetensors"] {
            if !path.join(file).is_file() {
                return Err(Error::format(path, format!("incomplete run: no {file} (did training finish?)")));
            }
        }
        let config: RunConfig = read_json(&path.join("config.json"))?;
        let summary: Summary = read_json(&path.join("summary.json"))?;
        if config.format != RUN_FORMAT {
            return Err(Error::format(
                path.join("config.json"),
                format!(
                    "run format {} written by another saddle version; this one reads format {RUN_FORMAT}",
                    config.format
                ),
            ));
        }
        Ok(Run { path: path.to_path_buf(), config, summary })
    }

    /// The trained image classifier, rebuilt from the config and loaded from `model.safetensors`.
    pub fn model(&self) -> Result<Sequential> {
        let c = &self.config;
        let model = build_model(&c.model, c.input, c.classes, &mut Rng::new(c.seed))?;
        load_state_dict(&model, &self.path.join("model.safetensors"))?;
        Ok(model)
    }

    /// The trained tagger with its word vocabulary and tag set (`vocab.json`).
    pub fn tagger(&self) -> Result<(Tagger, Vocab, Vocab)> {
        let Some(cfg) = self.config.tagger else {
            return Err(Error::format(
                self.path.join("config.json"),
                format!("a '{}' run has no tagger", self.config.task),
            ));
        };
        let vocab: Vocabularies = read_json(&self.path.join("vocab.json"))?;
        let model = Tagger::new(cfg, &mut Rng::new(self.config.seed));
        load_state_dict(&model, &self.path.join("model.safetensors"))?;
        Ok((model, Vocab::from_tokens(vocab.words), Vocab::from_tokens(vocab.tags)))
    }
}

/// The vocabularies of a tagger's run (`vocab.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Vocabularies {
    /// Word of each index, `<pad>` and `<unk>` first.
    pub words: Vec<String>,
    /// Tag of each index.
    pub tags: Vec<String>,
}

impl Vocabularies {
    /// Writes `vocab.json` into the run directory `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        write_json(&dir.join("vocab.json"), self)
    }
}
