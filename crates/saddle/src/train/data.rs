//! A run's data and model, as its spec and files say: the datasets loaded,
//! the vocabularies built or read back, and the network built for them.
//!
//! Uses: `data`, `nn`, `train::spec`, `error`.

use super::spec::{RunConfig, RunSpec, Task, RUN_FORMAT};
use crate::data::{bundled_mnist, load_idx_dir, word_form, Corpus, Dataset, TaggedDataset, TaggedSentence, Vocab};
use crate::nn::{Module, Sequential, Tagger};
use crate::{Error, Result, Rng, Tensor};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The network of a run: an image classifier or a tagger.
pub enum Model {
    /// An image classifier, `[N, C, H, W]` → `[N, classes]`.
    Classifier(Sequential),
    /// A slot tagger, `[B, T]` word indices → `[B·T, tags]`.
    Tagger(Tagger),
}

impl Model {
    /// The network `config` describes, initialized from its seed; a tagger
    /// takes its sizes from `vocabularies`.
    pub fn build(config: &RunConfig, vocabularies: Option<&Vocabularies>) -> Result<Model> {
        let mut rng = Rng::new(config.spec.seed);
        match (&config.spec.task, vocabularies) {
            (Task::Mnist { model }, _) => {
                let input =
                    config.input.ok_or_else(|| Error::config("input", "an image run needs its input [C, H, W]"))?;
                Ok(Model::Classifier(model.build(input, config.classes, &mut rng)?))
            }
            (Task::Slots { tagger }, Some(v)) => {
                Ok(Model::Tagger(Tagger::new(tagger.config(v.words.len(), v.tags.len()), &mut rng)))
            }
            (Task::Slots { .. }, None) => Err(Error::config("vocab", "a tagger needs its vocabularies")),
        }
    }

    /// The tagger, if this is one.
    pub fn as_tagger(&self) -> Option<&Tagger> {
        match self {
            Model::Tagger(t) => Some(t),
            Model::Classifier(_) => None,
        }
    }

    fn inner(&self) -> &dyn Module {
        match self {
            Model::Classifier(m) => m,
            Model::Tagger(m) => m,
        }
    }
}

impl Module for Model {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.inner().forward(x)
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        self.inner().visit_parameters(prefix, f)
    }
    fn set_training(&mut self, training: bool) {
        match self {
            Model::Classifier(m) => m.set_training(training),
            Model::Tagger(m) => m.set_training(training),
        }
    }
    fn describe(&self) -> String {
        self.inner().describe()
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
    /// The words from the training sentences (by their [`word_form`], those
    /// seen fewer than `min_count` times left out), and the tags sorted.
    pub fn build(train: &[TaggedSentence], min_count: usize) -> Self {
        let forms: Vec<String> = train.iter().flat_map(|s| s.words.iter().map(|w| word_form(w))).collect();
        let words = Vocab::build(forms.iter().map(String::as_str), min_count).tokens().to_vec();
        let mut tags: Vec<String> = train.iter().flat_map(|s| s.tags.iter().cloned()).collect();
        tags.sort();
        tags.dedup();
        Vocabularies { words, tags }
    }
    /// The word vocabulary.
    pub fn words(&self) -> Vocab {
        Vocab::from_tokens(self.words.clone())
    }
    /// The tag set.
    pub fn tagset(&self) -> Vocab {
        Vocab::from_tokens(self.tags.clone())
    }
}

/// A run's data, loaded: what it trains on, what it evaluates after each
/// epoch, and for a tagger the test sentences and vocabularies.
pub struct RunData {
    /// Training examples.
    pub train: Box<dyn Dataset>,
    /// Evaluated after each epoch: MNIST's test set, a corpus's dev set.
    pub held_out: Box<dyn Dataset>,
    /// Tagger: the test sentences (scored by chunk F1 at the end).
    pub test: Vec<TaggedSentence>,
    /// Tagger: words and tags.
    pub vocabularies: Option<Vocabularies>,
    /// Where the data came from, in words.
    pub source: String,
    /// Examples in `train` and `held_out`.
    pub sizes: (usize, usize),
}

/// The data folder of `spec`, absolute: its own, or the bundled MNIST; `None` for the travel corpus.
pub(crate) fn data_folder(spec: &RunSpec) -> Option<PathBuf> {
    match (&spec.task, &spec.data) {
        (_, Some(d)) => Some(std::fs::canonicalize(d).unwrap_or_else(|_| d.clone())),
        (Task::Mnist { .. }, None) => Some(bundled_mnist()),
        (Task::Slots { .. }, None) => None,
    }
}

/// Loads the data of a new run and fixes what the data decides (classes,
/// input, normalization, vocabularies) into its config.
pub(crate) fn load_new(spec: &RunSpec) -> Result<(RunConfig, RunData)> {
    spec.validate()?;
    let mut spec = spec.clone();
    spec.data = data_folder(&spec);
    let mut config = RunConfig {
        format: RUN_FORMAT,
        optim: spec.optimizer.family().name().into(),
        classes: 0,
        input: None,
        normalization: None,
        spec,
    };
    let data = match &config.spec.task {
        Task::Mnist { .. } => {
            let dir = config.spec.data.clone().expect("an image run has a data folder");
            let (train, test) = load_idx_dir(&dir)?;
            let classes = train.classes();
            if classes < 2 {
                return Err(Error::format(
                    &dir,
                    format!("the training labels name {classes} class; at least 2 are needed"),
                ));
            }
            (config.classes, config.input, config.normalization) = (classes, Some(train.shape), Some(train.norm));
            let (sizes, source) = ((train.len(), test.len()), dir.display().to_string());
            RunData {
                train: Box::new(train),
                held_out: Box::new(test),
                test: Vec::new(),
                vocabularies: None,
                source,
                sizes,
            }
        }
        Task::Slots { tagger } => {
            let corpus = Corpus::open_or_travel(config.spec.data.as_deref())?;
            if corpus.train.is_empty() || corpus.test.is_empty() {
                return Err(Error::format(
                    config.spec.data.clone().unwrap_or_default(),
                    "the training or the test set is empty",
                ));
            }
            let v = Vocabularies::build(&corpus.train, tagger.min_count);
            config.classes = v.tags.len();
            tagged(corpus, v)
        }
    };
    Ok((config, data))
}

/// A tagger's data from its corpus and vocabularies.
fn tagged(corpus: Corpus, v: Vocabularies) -> RunData {
    let (words, tags) = (v.words(), v.tagset());
    let (train, dev) =
        (TaggedDataset::new(&corpus.train, &words, &tags), TaggedDataset::new(&corpus.dev, &words, &tags));
    RunData {
        sizes: (train.words.len(), dev.words.len()),
        train: Box::new(train),
        held_out: Box::new(dev),
        test: corpus.test,
        vocabularies: Some(v),
        source: corpus.source,
    }
}

/// Loads the data of an existing run from `data` (or its own folder), as it
/// was normalized and indexed when the run was created.
pub(crate) fn load_existing(config: &RunConfig, dir: &Path, data: Option<&Path>) -> Result<RunData> {
    let folder = data.map(Path::to_path_buf).or_else(|| config.spec.data.clone());
    match &config.spec.task {
        Task::Mnist { .. } => {
            let folder = folder.ok_or_else(|| Error::config("data", "an image run needs its data folder"))?;
            let (mut train, mut test) = load_idx_dir(&folder)?;
            if Some(test.shape) != config.input {
                return Err(Error::format(
                    &folder,
                    format!(
                        "images are {:?} but the model in {} expects {:?}",
                        test.shape,
                        dir.display(),
                        config.input.unwrap_or_default()
                    ),
                ));
            }
            let norm = config.normalization.unwrap_or(train.norm);
            (train.norm, test.norm) = (norm, norm);
            let sizes = (train.len(), test.len());
            Ok(RunData {
                train: Box::new(train),
                held_out: Box::new(test),
                test: Vec::new(),
                vocabularies: None,
                source: folder.display().to_string(),
                sizes,
            })
        }
        Task::Slots { .. } => {
            let v: Vocabularies = crate::io::read_json(&dir.join("vocab.json"), "a saddle vocabulary file")?;
            Ok(tagged(Corpus::open_or_travel(folder.as_deref())?, v))
        }
    }
}
