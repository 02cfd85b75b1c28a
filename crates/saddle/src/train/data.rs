//! A run's data and model, as its spec and files say: the datasets loaded,
//! the vocabularies built or read back, and the network built for them.
//!
//! Uses: `data`, `nn`, `train::spec`, `error`.

use super::spec::{RunConfig, RunSpec, Task, RUN_FORMAT};
use crate::data::{
    bundled_mnist, load_idx_dir, load_images, read_word_vectors, word_form, Corpus, Dataset, ImageDataset, ImageSet,
    LoadOptions, TaggedDataset, TaggedSentence, Vocab, WordVectors,
};
use crate::nn::{Module, Tagger};
use crate::ops::CrossEntropyOptions;
use crate::{Error, Result, Rng, Tensor};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The network of a run: an image classifier or a tagger.
pub enum Model {
    /// An image classifier, `[N, C, H, W]` → `[N, classes]`.
    Classifier(Box<dyn Module>),
    /// A slot tagger, `[B, T]` word indices → `[B·T, tags]`.
    Tagger(Box<Tagger>),
}

impl Model {
    /// The network `config` describes, initialized from its seed; a tagger
    /// takes its sizes from `vocabularies`.
    pub fn build(config: &RunConfig, vocabularies: Option<&Vocabularies>) -> Result<Model> {
        let mut rng = Rng::new(config.spec.seed);
        match (&config.spec.task, vocabularies) {
            (Task::Mnist { model } | Task::Images { model, .. }, _) => {
                let input =
                    config.input.ok_or_else(|| Error::config("input", "an image run needs its input [C, H, W]"))?;
                Ok(Model::Classifier(model.build(input, config.classes, &mut rng)?))
            }
            (Task::Slots { tagger }, Some(v)) => Ok(Model::Tagger(Box::new(Tagger::new(tagger.config(v), &mut rng)))),
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
            Model::Classifier(m) => m.as_ref(),
            Model::Tagger(m) => m.as_ref(),
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
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        self.inner().visit_buffers(prefix, f)
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
    fn loss(&self, x: &Tensor, out: &Tensor, y: &[i64], options: CrossEntropyOptions) -> Tensor {
        self.inner().loss(x, out, y, options)
    }
    fn predict(&self, x: &Tensor, out: &Tensor) -> Vec<usize> {
        self.inner().predict(x, out)
    }
}

/// The most parameters a run may have: 2³⁰ (4 GiB of `f32`), so that a
/// mistyped size is an error, not an allocation that brings the machine down.
pub const MAX_PARAMETERS: u64 = 1 << 30;

/// The number of parameters of the network `config` describes, computed from
/// its sizes without building it, checked against [`MAX_PARAMETERS`].
pub fn parameter_count(config: &RunConfig, vocabularies: Option<&Vocabularies>) -> Result<u64> {
    let classes = config.classes as u64;
    let count = match (&config.spec.task, config.input, vocabularies) {
        (Task::Mnist { model } | Task::Images { model, .. }, Some(input), _) => {
            model.parameter_count(input, config.classes)
        }
        (Task::Slots { tagger: t }, _, Some(v)) => {
            let (e, h, d) = (t.embedding_dim as u64, t.hidden_size as u64, if t.bidirectional { 2 } else { 1 });
            let g = t.cell.gates() as u64 * h;
            let layer = |input: u64| d * (g * input + g * h + 2 * g);
            let crf = if t.crf { classes * classes + 2 * classes } else { 0 };
            let (cv, cd, f) = (v.chars.as_ref().map_or(0, Vec::len) as u64, t.char_dim as u64, t.char_filters as u64);
            let (chars, f) = if t.has_chars() { (cv * cd + f * cd * 3 + f, f) } else { (0, 0) };
            let first = layer((2 * t.context as u64 + 1) * e + f);
            v.words.len() as u64 * e
                + chars
                + first
                + (t.num_layers as u64 - 1) * layer(d * h)
                + classes * d * h
                + classes
                + crf
        }
        _ => return Err(Error::config("input", "an image run needs its input [C, H, W], a tagger its vocabularies")),
    };
    if count > MAX_PARAMETERS {
        return Err(Error::config(
            "model",
            format!("these sizes make {count} parameters, more than the {MAX_PARAMETERS} saddle allows"),
        ));
    }
    Ok(count)
}

/// Checks a run's `config.json` (and `vocab.json`) read from `dir` against
/// the bounds of every field, before anything is built from them.
pub(crate) fn check_config(config: &RunConfig, vocabularies: Option<&Vocabularies>, dir: &Path) -> Result<()> {
    let in_file = |file: &str, e: Error| match e {
        Error::Config { field, message } => Error::format(dir.join(file), format!("{field}: {message}")),
        other => other,
    };
    let bad = |field: &str, message: String| in_file("config.json", Error::config(field, message));
    config.spec.validate().map_err(|e| in_file("config.json", e))?;
    if !(1..=1 << 16).contains(&config.classes) {
        return Err(bad("classes", format!("must be between 1 and 65536, got {}", config.classes)));
    }
    match (&config.spec.task, vocabularies) {
        (Task::Mnist { .. } | Task::Images { .. }, _) => {
            let Some(input) = config.input.filter(|i| i.iter().all(|&d| d >= 1) && i[0] <= 64) else {
                return Err(bad(
                    "input",
                    format!("must be [C, H, W] with 1 ≤ C ≤ 64 and H, W ≥ 1, got {:?}", config.input),
                ));
            };
            if input.iter().map(|&d| d as u64).product::<u64>() > 1 << 26 {
                return Err(bad("input", format!("{input:?} is more than 2^26 values per image")));
            }
            let n = config.normalization.as_ref();
            let fits = |n: &crate::data::Normalization| {
                n.mean.len() == input[0]
                    && n.std.len() == input[0]
                    && n.mean.iter().all(|m| m.is_finite())
                    && n.std.iter().all(|s| s.is_finite() && *s > 0.0)
            };
            if !n.is_some_and(fits) {
                return Err(bad(
                    "normalization",
                    format!(
                        "must have a finite mean and a positive std for each of the {} channels, got {n:?}",
                        input[0]
                    ),
                ));
            }
            if let Some(names) = &config.class_names {
                if names.len() != config.classes {
                    return Err(bad(
                        "class_names",
                        format!("names {} classes, but classes is {}", names.len(), config.classes),
                    ));
                }
            }
        }
        (Task::Slots { tagger }, Some(v)) => {
            if tagger.has_chars() != v.chars.as_ref().is_some_and(|c| c.len() >= 2) {
                return Err(Error::format(
                    dir.join("vocab.json"),
                    format!(
                        "config.json gives the tagger {} character features, but vocab.json holds {} characters",
                        tagger.char_filters,
                        v.chars.as_ref().map_or(0, Vec::len)
                    ),
                ));
            }
            if !(2..=1 << 24).contains(&v.words.len()) || v.tags.len() != config.classes {
                return Err(Error::format(
                    dir.join("vocab.json"),
                    format!(
                        "{} words and {} tags; expected 2 to 2^24 words (<pad> and <unk> first) and the {} tags config.json counts",
                        v.words.len(),
                        v.tags.len(),
                        config.classes
                    ),
                ));
            }
        }
        (Task::Slots { .. }, None) => return Err(Error::format(dir.join("vocab.json"), "a tagger's run needs it")),
    }
    parameter_count(config, vocabularies).map_err(|e| in_file("config.json", e)).map(|_| ())
}

/// Values a model may have beyond those its weights file holds before it is
/// refused unbuilt (4 MiB of `f32`): a model that the file nearly fits is
/// built, and loading it names the tensor that differs.
const BUILD_SLACK: u64 = 1 << 20;

/// Checks, before the network `config` describes is built, that the
/// safetensors file `weights` is large enough to hold it: building what a
/// hand-edited config asks for never allocates much more than the file is.
/// (Its size is enough to tell; loading the weights checks every tensor.)
pub(crate) fn check_weights(config: &RunConfig, vocabularies: Option<&Vocabularies>, weights: &Path) -> Result<()> {
    let expected = parameter_count(config, vocabularies)?;
    let bytes = std::fs::metadata(weights).map_err(|e| Error::io(weights, e))?.len();
    let room = bytes / 4; // f32 values, the header included for simplicity
    if expected > room + BUILD_SLACK {
        return Err(Error::checkpoint(
            weights,
            format!(
                "holds at most {room} values, but the run's config.json describes a model of {expected} parameters"
            ),
        ));
    }
    Ok(())
}

/// The vocabularies of a tagger's run (`vocab.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Vocabularies {
    /// Word of each index, `<pad>` and `<unk>` first.
    pub words: Vec<String>,
    /// Tag of each index.
    pub tags: Vec<String>,
    /// For character features: the character of each index, `<pad>` and `<unk>` first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chars: Option<Vec<String>>,
}

impl Vocabularies {
    /// The words from the training sentences (by their [`word_form`], those
    /// seen fewer than `min_count` times left out), the tags sorted, and with
    /// `chars` every character of the training words as written.
    pub fn build(train: &[TaggedSentence], min_count: usize, chars: bool) -> Self {
        let forms: Vec<String> = train.iter().flat_map(|s| s.words.iter().map(|w| word_form(w))).collect();
        let words = Vocab::build(forms.iter().map(String::as_str), min_count).tokens().to_vec();
        let mut tags: Vec<String> = train.iter().flat_map(|s| s.tags.iter().cloned()).collect();
        tags.sort();
        tags.dedup();
        let chars = chars.then(|| {
            let all: Vec<String> =
                train.iter().flat_map(|s| s.words.iter().flat_map(|w| w.chars().map(String::from))).collect();
            Vocab::build(all.iter().map(String::as_str), 1).tokens().to_vec()
        });
        Vocabularies { words, tags, chars }
    }
    /// The word vocabulary.
    pub fn words(&self) -> Vocab {
        Vocab::from_tokens(self.words.clone())
    }
    /// The tag set.
    pub fn tagset(&self) -> Vocab {
        Vocab::from_tokens(self.tags.clone())
    }
    /// `sentences` indexed as the run's tagger reads them: words and tags,
    /// and the characters of each word when the run has character features.
    pub fn dataset(&self, sentences: &[TaggedSentence]) -> TaggedDataset {
        let data = TaggedDataset::new(sentences, &self.words(), &self.tagset());
        match &self.chars {
            Some(chars) => data.with_chars(sentences, &Vocab::from_tokens(chars.clone())),
            None => data,
        }
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
    /// The split `held_out` is, by name: `test` (images) or `dev` (a corpus).
    pub held_out_split: &'static str,
    /// Tagger of a new run: the pretrained vectors of its words, if its spec names a file.
    pub pretrained: Option<WordVectors>,
}

/// The data folder of `spec`, absolute: its own, or the bundled MNIST; `None` for the travel corpus.
pub(crate) fn data_folder(spec: &RunSpec) -> Result<Option<PathBuf>> {
    Ok(match (&spec.task, &spec.data) {
        (_, Some(d)) => Some(std::fs::canonicalize(d).unwrap_or_else(|_| d.clone())),
        (Task::Mnist { .. }, None) => Some(bundled_mnist()),
        (Task::Images { .. }, None) => {
            return Err(Error::config("data", "an image run needs a data folder (image folders or CIFAR-10 batches)"))
        }
        (Task::Slots { .. }, None) => None,
    })
}

/// Called as `(done, total)` while a run's images are decoded, from any thread.
pub type OnLoad<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// An image run's data from its datasets.
fn image_data(mut train: ImageDataset, test: ImageDataset, spec: &RunSpec, source: String) -> RunData {
    (train.augment, train.seed) = (spec.augment, spec.seed);
    RunData {
        sizes: (train.labels.len(), test.labels.len()),
        train: Box::new(train),
        held_out: Box::new(test),
        held_out_split: "test",
        pretrained: None,
        test: Vec::new(),
        vocabularies: None,
        source,
    }
}

/// Loads the data of a new run and fixes what the data decides (classes,
/// input, normalization, vocabularies) into its config.
pub(crate) fn load_new(spec: &RunSpec, on_load: OnLoad<'_>) -> Result<(RunConfig, RunData)> {
    spec.validate()?;
    let mut spec = spec.clone();
    spec.data = data_folder(&spec)?;
    if let Task::Slots { tagger: super::TaggerSpec { embeddings: Some(path), .. } } = &mut spec.task {
        *path = std::fs::canonicalize(&*path).map_err(|e| Error::io(&*path, e))?;
    }
    let mut config = RunConfig {
        format: RUN_FORMAT,
        optim: spec.optimizer.family().name().into(),
        classes: 0,
        input: None,
        normalization: None,
        class_names: None,
        spec,
    };
    let data = match &config.spec.task {
        Task::Mnist { .. } | Task::Images { .. } => {
            let dir = config.spec.data.clone().expect("an image run has a data folder");
            let (train, test, source, names) = match config.spec.task {
                Task::Images { size, val_split, .. } => {
                    let opt =
                        LoadOptions { size, val_split, seed: config.spec.seed, test_only: false, progress: on_load };
                    let ImageSet { train, test, classes, source } = load_images(&dir, &opt)?;
                    (train, test, source, Some(classes))
                }
                _ => {
                    let (train, test) = load_idx_dir(&dir)?;
                    (train, test, dir.display().to_string(), None)
                }
            };
            let classes = names.as_ref().map_or(train.classes(), Vec::len);
            if classes < 2 {
                return Err(Error::format(
                    &dir,
                    format!("the training labels name {classes} class; at least 2 are needed"),
                ));
            }
            check_images(&train, classes, &dir)?;
            config.spec.augment.validate(train.shape)?;
            (config.classes, config.input, config.normalization) =
                (classes, Some(train.shape), Some(train.norm.clone()));
            config.class_names = names;
            image_data(train, test, &config.spec, source)
        }
        Task::Slots { tagger } => {
            let corpus = Corpus::open_or_travel(config.spec.data.as_deref(), tagger.tag_column)?;
            if corpus.train.is_empty() || corpus.test.is_empty() {
                return Err(Error::format(
                    config.spec.data.clone().unwrap_or_default(),
                    "the training or the test set is empty",
                ));
            }
            let v = Vocabularies::build(&corpus.train, tagger.min_count, tagger.has_chars());
            config.classes = v.tags.len();
            let pretrained = match &tagger.embeddings {
                Some(path) => {
                    let vectors = read_word_vectors(path, &v.words())?;
                    if vectors.dim != tagger.embedding_dim {
                        return Err(Error::format(
                            path,
                            format!(
                                "holds vectors of {} numbers, but the word embedding has {} (set the embedding size to {})",
                                vectors.dim, tagger.embedding_dim, vectors.dim
                            ),
                        ));
                    }
                    Some(vectors)
                }
                None => None,
            };
            RunData { pretrained, ..tagged(corpus, v) }
        }
    };
    parameter_count(&config, data.vocabularies.as_ref())?;
    Ok((config, data))
}

/// Refuses training images that would train silently wrong: labels with a
/// gap (a label of 200 among digits would make a 201-class model), or pixels
/// that are all the same (a standard deviation of 0 in every channel).
fn check_images(train: &ImageDataset, classes: usize, dir: &Path) -> Result<()> {
    let mut seen = vec![false; classes];
    train.labels.iter().for_each(|&l| seen[l as usize] = true);
    if let Some(missing) = seen.iter().position(|s| !s) {
        return Err(Error::format(
            dir,
            format!(
                "{classes} classes, but no training image is labelled {missing} (the labels go up to {}): every \
                 class needs training images, numbered 0 to K − 1",
                train.labels.iter().max().copied().unwrap_or(0)
            ),
        ));
    }
    if train.norm.std.iter().all(|&s| s <= 1e-6) {
        return Err(Error::format(
            dir,
            "every pixel of the training images has the same value: there is nothing to learn",
        ));
    }
    Ok(())
}

/// Loads the test images of an image run from `folder` (its own when `None`),
/// brought to the model's input size and normalized as its training images.
pub(crate) fn load_image_test(config: &RunConfig, dir: &Path, folder: Option<&Path>) -> Result<(ImageDataset, String)> {
    let (train, mut test, source) = load_run_images(config, dir, folder, true)?;
    drop(train);
    test.norm = config.normalization.clone().unwrap_or(test.norm);
    Ok((test, source))
}

/// The training and test images of an existing image run, checked against its input and classes.
fn load_run_images(
    config: &RunConfig,
    dir: &Path,
    folder: Option<&Path>,
    test_only: bool,
) -> Result<(ImageDataset, ImageDataset, String)> {
    let folder = folder.map(Path::to_path_buf).or_else(|| config.spec.data.clone());
    let folder = folder.ok_or_else(|| Error::config("data", "an image run needs its data folder"))?;
    let input = config.input.unwrap_or_default();
    let (train, test, source) = match &config.spec.task {
        Task::Images { val_split, .. } => {
            let opt = LoadOptions {
                size: Some((input[1], input[2])),
                val_split: *val_split,
                seed: config.spec.seed,
                test_only,
                progress: &|_, _| {},
            };
            let set = load_images(&folder, &opt)?;
            if let Some(names) = config.class_names.as_ref().filter(|n| **n != set.classes) {
                return Err(Error::format(
                    &folder,
                    format!(
                        "has the classes {}, but the model in {} knows {}",
                        set.classes.join(", "),
                        dir.display(),
                        names.join(", ")
                    ),
                ));
            }
            (set.train, set.test, set.source)
        }
        _ => {
            let (train, test) = if test_only {
                let test = crate::data::load_idx_test(&folder)?;
                (ImageDataset::new(Vec::new(), Vec::new(), test.shape), test)
            } else {
                load_idx_dir(&folder)?
            };
            (train, test, folder.display().to_string())
        }
    };
    if Some(test.shape) != config.input {
        return Err(Error::format(
            &folder,
            format!("images are {:?} but the model in {} expects {input:?}", test.shape, dir.display()),
        ));
    }
    if test.classes() > config.classes {
        return Err(Error::format(
            &folder,
            format!("test labels go up to {}, but the model knows {} classes", test.classes() - 1, config.classes),
        ));
    }
    Ok((train, test, source))
}

/// A tagger's data from its corpus and vocabularies.
fn tagged(corpus: Corpus, v: Vocabularies) -> RunData {
    let (train, dev) = (v.dataset(&corpus.train), v.dataset(&corpus.dev));
    RunData {
        sizes: (train.words.len(), dev.words.len()),
        train: Box::new(train),
        held_out: Box::new(dev),
        held_out_split: "dev",
        pretrained: None,
        test: corpus.test,
        vocabularies: Some(v),
        source: corpus.source,
    }
}

/// Loads the data of an existing run from `data` (or its own folder), as it
/// was normalized and indexed when the run was created.
pub(crate) fn load_existing(
    config: &RunConfig,
    vocabularies: Option<&Vocabularies>,
    dir: &Path,
    data: Option<&Path>,
) -> Result<RunData> {
    match &config.spec.task {
        Task::Mnist { .. } | Task::Images { .. } => {
            let (mut train, mut test, source) = load_run_images(config, dir, data, false)?;
            let norm = config.normalization.clone().unwrap_or(train.norm.clone());
            (train.norm, test.norm) = (norm.clone(), norm);
            Ok(image_data(train, test, &config.spec, source))
        }
        Task::Slots { tagger } => {
            let v = vocabularies.ok_or_else(|| Error::format(dir.join("vocab.json"), "a tagger's run needs it"))?;
            let folder = data.map(Path::to_path_buf).or_else(|| config.spec.data.clone());
            Ok(tagged(Corpus::open_or_travel(folder.as_deref(), tagger.tag_column)?, v.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Normalization;
    use crate::nn::{CellKind, MlpShape};
    use crate::train::{ImageModel, TaggerSpec};

    #[test]
    fn the_parameter_count_from_the_sizes_is_the_built_models() {
        let image = |model, input| RunConfig {
            format: RUN_FORMAT,
            spec: RunSpec { task: Task::Mnist { model }, ..RunSpec::mnist() },
            optim: "adam".into(),
            classes: 10,
            input: Some(input),
            normalization: Some(Normalization { mean: vec![0.5; input[0]], std: vec![0.25; input[0]] }),
            class_names: None,
        };
        let v = Vocabularies {
            words: (0..50).map(|i| i.to_string()).collect(),
            tags: vec!["O".into(); 7],
            chars: Some(["<pad>", "<unk>", "a", "b", "c"].map(String::from).to_vec()),
        };
        let tagger = |t: TaggerSpec| RunConfig {
            spec: RunSpec { task: Task::Slots { tagger: t }, ..RunSpec::slots() },
            classes: 7,
            input: None,
            normalization: None,
            ..image(ImageModel::Mlp(MlpShape::default()), [1, 1, 1])
        };
        let configs = [
            (image(ImageModel::Lenet5, [1, 28, 28]), None),
            (image(ImageModel::Lenet5, [3, 37, 32]), None),
            (image(ImageModel::Mlp(MlpShape::default()), [2, 5, 7]), None),
            (image(ImageModel::from_name("mlp-9-8-7-sigmoid").unwrap(), [1, 4, 4]), None),
            (image(ImageModel::from_name("mlp-linear-zeros").unwrap(), [1, 4, 4]), None),
            (image(ImageModel::Resnet20, [3, 32, 32]), None),
            (image(ImageModel::Speedrun, [3, 12, 17]), None),
            (image(ImageModel::Speedrun, [1, 32, 32]), None),
            (tagger(TaggerSpec::default()), Some(&v)),
            (
                tagger(TaggerSpec {
                    cell: CellKind::Gru,
                    bidirectional: true,
                    num_layers: 3,
                    context: 2,
                    crf: true,
                    char_filters: 7,
                    ..Default::default()
                }),
                Some(&v),
            ),
            (
                tagger(TaggerSpec { cell: CellKind::RnnTanh, hidden_size: 9, embedding_dim: 4, ..Default::default() }),
                Some(&v),
            ),
        ];
        for (config, vocab) in configs {
            let built = Model::build(&config, vocab).unwrap().num_parameters() as u64;
            assert_eq!(parameter_count(&config, vocab).unwrap(), built, "{:?}", config.spec.task);
        }
        let huge = RunConfig { classes: 1 << 16, ..image(ImageModel::Mlp(MlpShape::default()), [64, 4096, 256]) };
        assert!(parameter_count(&huge, None).unwrap_err().to_string().contains("more than the 1073741824"));
    }
}
