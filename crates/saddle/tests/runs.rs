//! The run API end to end: a run stopped after one epoch and resumed from its
//! directory ends with the same bits as one that never stopped; run
//! directories of another format are refused by name.

use saddle::data::read_idx;
use saddle::io::read_safetensors;
use saddle::nn::CellKind;
use saddle::train::{EpochMetrics, Observer, Outcome, Run, RunSpec, TaggerSpec, Task, Trainer, RUN_FORMAT};
use std::path::{Path, PathBuf};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("saddle-runs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An IDX folder with the first `train` and `test` images of the bundled MNIST.
fn small_mnist(dir: &Path, train: usize, test: usize) {
    let mnist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    for (split, n) in [("train", train), ("t10k", test)] {
        for (kind, magic, size) in [("images-idx3", 0x0803u32, 784), ("labels-idx1", 0x0801, 1)] {
            let idx = read_idx(&mnist.join(format!("{split}-{kind}-ubyte.gz")), if size == 1 { 1 } else { 3 }).unwrap();
            let mut bytes = magic.to_be_bytes().to_vec();
            bytes.extend((n as u32).to_be_bytes());
            if size > 1 {
                bytes.extend(28u32.to_be_bytes());
                bytes.extend(28u32.to_be_bytes());
            }
            bytes.extend(&idx.data[..n * size]);
            std::fs::write(dir.join(format!("{split}-{kind}-ubyte")), bytes).unwrap();
        }
    }
}

/// Asks to stop after one epoch.
struct StopAfterOne(bool);

impl Observer for StopAfterOne {
    fn on_epoch(&mut self, _: &EpochMetrics) -> saddle::Result<()> {
        self.0 = true;
        Ok(())
    }
    fn should_stop(&self) -> bool {
        self.0
    }
}

/// Trains `spec` straight into `dir/straight`, and with a stop after one
/// epoch and a resume into `dir/resumed`; returns both folders.
fn straight_and_resumed(spec: &RunSpec, dir: &Path) -> (PathBuf, PathBuf) {
    let (a, b) = (dir.join("straight"), dir.join("resumed"));
    let done = Trainer::create(spec, &a).unwrap().train(&mut []).unwrap();
    assert!(matches!(done, Outcome::Finished(_)));
    let stopped = Trainer::create(spec, &b).unwrap().train(&mut [&mut StopAfterOne(false)]).unwrap();
    assert_eq!(stopped, Outcome::Stopped { epochs_done: 1 });
    assert!(!b.join("summary.json").exists() && b.join("checkpoint/state.json").is_file());
    assert!(Run::open(&b).err().unwrap().to_string().contains("incomplete run: no summary.json"));
    let resumed = Trainer::resume(&b).unwrap().train(&mut []).unwrap();
    assert!(matches!(resumed, Outcome::Finished(_)));
    (a, b)
}

#[track_caller]
fn assert_same_bits(a: &Path, b: &Path) {
    for file in ["model.safetensors", "optimizer.safetensors"] {
        let (ta, ma) = read_safetensors(&a.join(file)).unwrap();
        let (tb, mb) = read_safetensors(&b.join(file)).unwrap();
        assert!(ta == tb && ma == mb, "{file} differs between the straight and the resumed run");
    }
    let csv = |d: &Path| std::fs::read_to_string(d.join("metrics.csv")).unwrap();
    assert_eq!(csv(a), csv(b), "metrics.csv differs");
    let summary = |d: &Path| {
        let mut s = Run::open(d).unwrap().summary;
        (s.train_seconds, s.train_images_per_second) = (0.0, 0.0);
        s
    };
    assert_eq!(summary(a), summary(b));
}

#[test]
fn an_image_run_resumed_after_one_epoch_ends_with_the_same_bits() {
    let dir = scratch("mnist");
    small_mnist(&dir, 640, 128);
    let spec = RunSpec {
        data: Some(dir.clone()),
        epochs: 2,
        batch_size: 32,
        monitor_every: 5,
        schedule: "warmup:5:cosine".parse().unwrap(),
        ..RunSpec::mnist()
    };
    let (a, b) = straight_and_resumed(&spec, &dir);
    assert_same_bits(&a, &b);
    // config.json says everything, with the data folder made absolute.
    let run = Run::open(&b).unwrap();
    assert_eq!(run.config.spec, RunSpec { data: Some(std::fs::canonicalize(&dir).unwrap()), ..spec });
    assert_eq!((run.config.classes, run.config.input), (10, Some([1, 28, 28])));
}

#[test]
fn a_tagger_with_dropout_resumed_after_one_epoch_ends_with_the_same_bits() {
    let dir = scratch("slots");
    let tagger =
        TaggerSpec { cell: CellKind::Gru, embedding_dim: 8, hidden_size: 16, dropout: 0.3, ..Default::default() };
    let spec =
        RunSpec { task: Task::Slots { tagger }, epochs: 2, batch_size: 64, monitor_every: 0, ..RunSpec::slots() };
    let (a, b) = straight_and_resumed(&spec, &dir);
    assert_same_bits(&a, &b);
    assert!(Run::open(&b).unwrap().summary.test_f1.is_some());
}

#[test]
fn run_directories_of_another_format_and_finished_runs_are_named() {
    let dir = scratch("formats");
    small_mnist(&dir, 64, 16);
    let run = dir.join("run");
    let spec = RunSpec { data: Some(dir.clone()), epochs: 1, batch_size: 32, ..RunSpec::mnist() };
    Trainer::create(&spec, &run).unwrap().train(&mut []).unwrap();
    let e = Trainer::resume(&run).err().unwrap().to_string();
    assert!(e.contains("the run is complete"), "{e}");
    let e = Trainer::create(&spec, &run).err().unwrap().to_string();
    assert!(e.contains("already exists"), "{e}");

    let config = run.join("config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace(&format!("\"format\": {RUN_FORMAT}"), "\"format\": 1")).unwrap();
    let e = Run::open(&run).err().unwrap().to_string();
    assert!(
        e.contains(&format!("run format 1, written by another saddle version; this one reads run format {RUN_FORMAT}")),
        "{e}"
    );
    std::fs::write(&config, "{\"task\": \"mnist\"}").unwrap();
    let e = Run::open(&run).err().unwrap().to_string();
    assert!(e.contains("no format number"), "{e}");
}
