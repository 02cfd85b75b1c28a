//! The fuzz targets: one function per reader of the outside world, each
//! given arbitrary bytes. An error is a correct answer; a panic, an abort or
//! a hang is a bug. `cargo +nightly fuzz run TARGET` drives them with
//! libFuzzer (see `fuzz/README.md`), and `crates/saddle/tests/fuzz_regressions.rs`
//! runs every saved input through them on stable, in CI.

#![allow(dead_code)]

use saddle::data::{
    read_atis, read_conll, read_conllu, read_idx, read_seq_in_out, read_word_vectors, ConlluColumn, GreyImage,
    RgbImage, Vocab,
};
use saddle::nn::{lenet5, load_state_dict};
use saddle::optim::{load_optimizer_state, AdamConfig, LrScheduler, Optimizer, OptimizerSpec, Schedule};
use saddle::train::{Run, RunSpec, TaggerSpec, Task, Trainer};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A target: bytes in, and nothing out but a panic if it has a bug.
pub type Target = fn(&[u8]);

/// The targets by name, for the regression test.
pub const TARGETS: &[(&str, Target)] = &[
    ("idx", idx),
    ("safetensors", safetensors),
    ("run_json", run_json),
    ("text", text),
    ("picture", picture),
    ("photo", photo),
    ("spec_text", spec_text),
];

/// A scratch folder of this process.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("saddle-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

/// `data` as the file `name` in the scratch folder.
fn file(name: &str, data: &[u8]) -> PathBuf {
    let p = scratch().join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// IDX files (plain or gzip) with 1 and 3 dimensions.
pub fn idx(data: &[u8]) {
    let p = file("input.idx", data);
    let _ = read_idx(&p, 1);
    let _ = read_idx(&p, 3);
}

/// A safetensors file as a LeNet-5 state dict and as Adam's state for it.
pub fn safetensors(data: &[u8]) {
    let p = file("input.safetensors", data);
    let _ = saddle::io::read_safetensors(&p);
    let model = lenet5([1, 28, 28], 10, &mut saddle::Rng::new(0)).unwrap();
    let _ = load_state_dict(&model, &p);
    let mut opt = Optimizer::new(saddle::nn::Module::named_parameters(&model), AdamConfig::default()).unwrap();
    let _ = load_optimizer_state(&mut opt, &p);
}

/// A small finished tagger run, made once, whose JSON files the input replaces.
fn tagger_run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = scratch().join("run");
        let _ = std::fs::remove_dir_all(&dir);
        let tagger = TaggerSpec { embedding_dim: 4, hidden_size: 4, ..Default::default() };
        let spec =
            RunSpec { task: Task::Slots { tagger }, epochs: 1, batch_size: 512, monitor_every: 0, ..RunSpec::slots() };
        Trainer::create(&spec, &dir).unwrap().train(&mut []).unwrap();
        for f in ["config.json", "vocab.json", "summary.json"] {
            std::fs::copy(dir.join(f), dir.join(format!("{f}.orig"))).unwrap();
        }
        dir
    })
}

/// The input as a run's JSON files: up to the first `\0` it is `config.json`,
/// then `vocab.json`, then `summary.json` (a part left out keeps the real
/// file); the run is opened, as `eval` and `diagnose` open it.
pub fn run_json(data: &[u8]) {
    let dir = tagger_run();
    let mut parts = data.splitn(3, |&b| b == 0);
    for f in ["config.json", "vocab.json", "summary.json"] {
        let original = std::fs::read(dir.join(format!("{f}.orig"))).unwrap();
        std::fs::write(dir.join(f), parts.next().unwrap_or(&original)).unwrap();
    }
    let _ = Run::open(dir);
    let _ = serde_json::from_slice::<LrScheduler>(data);
}

/// Tagged text in each layout, and word vectors.
pub fn text(data: &[u8]) {
    let p = file("input.txt", data);
    let _ = read_atis(&p);
    let _ = read_conll(&p);
    let _ = read_conllu(&p, ConlluColumn::Upos);
    let _ = read_word_vectors(&p, &Vocab::build(["the", "boston", "0"], 1));
    // The same bytes as words, and their lines reversed as tags.
    let reversed: Vec<u8> = data.split(|&b| b == b'\n').rev().collect::<Vec<_>>().join(&b'\n');
    let _ = read_seq_in_out(&p, &file("input.out", &reversed));
}

/// PNG and PGM pictures.
pub fn picture(data: &[u8]) {
    let _ = GreyImage::open(&file("input.picture", data));
}

/// JPEG and PNG colour photos of at most 2²⁰ pixels, each resized to 8×8 as
/// an image folder of another size would be.
pub fn photo(data: &[u8]) {
    if let Ok(image) = RgbImage::decode(data, 1 << 20) {
        let small = image.resize(8, 8);
        assert_eq!(small.pixels.len(), 3 * 64);
    }
}

/// The text forms of schedules and optimizers, and the rates they give.
pub fn spec_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(s) = text.parse::<Schedule>() {
        if let Ok(l) = LrScheduler::new(s, 0.1, 1000) {
            let _ = (0..1000).step_by(37).map(|t| l.lr(t)).sum::<f64>();
        }
    }
    if let Ok(o) = text.parse::<OptimizerSpec>() {
        assert_eq!(o.to_string().parse::<OptimizerSpec>().ok(), Some(o), "the text form reads back");
    }
}
