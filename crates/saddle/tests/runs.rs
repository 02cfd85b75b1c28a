//! The run API end to end: a run stopped after one epoch and resumed from its
//! directory ends with the same bits as one that never stopped; run
//! directories of another format are refused by name.

use saddle::data::read_idx;
use saddle::diagnose::{diagnose_run, DiagnoseOptions, Verdict};
use saddle::io::read_safetensors;
use saddle::nn::CellKind;
use saddle::train::{Observer, Outcome, Run, RunSpec, StepMetrics, TaggerSpec, Task, Trainer, RUN_FORMAT};
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

/// Asks to stop after `0` steps.
struct StopAfter(usize, usize);

impl Observer for StopAfter {
    fn on_step(&mut self, _: &StepMetrics) -> saddle::Result<()> {
        self.1 += 1;
        Ok(())
    }
    fn should_stop(&self) -> bool {
        self.1 >= self.0
    }
}

/// Trains `spec` straight into `dir/straight`, and with a stop after `stop`
/// steps and a resume into `dir/resumed`; returns both folders.
fn straight_and_resumed(spec: &RunSpec, dir: &Path, stop: usize, epochs_done: usize) -> (PathBuf, PathBuf) {
    let (a, b) = (dir.join("straight"), dir.join("resumed"));
    let done = Trainer::create(spec, &a).unwrap().train(&mut []).unwrap();
    assert!(matches!(done, Outcome::Finished(_)));
    let stopped = Trainer::create(spec, &b).unwrap().train(&mut [&mut StopAfter(stop, 0)]).unwrap();
    assert_eq!(stopped, Outcome::Stopped { step: stop, epochs_done });
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
fn an_image_run_resumed_mid_epoch_ends_with_the_same_bits() {
    let dir = scratch("mnist");
    small_mnist(&dir, 640, 128);
    let spec = RunSpec {
        data: Some(dir.clone()),
        epochs: 2,
        batch_size: 32,
        monitor_every: 5,
        checkpoint_every: 7,
        schedule: "warmup:5:cosine".parse().unwrap(),
        ..RunSpec::mnist()
    };
    // 20 steps an epoch: the stop falls in the first, between two checkpoints.
    let (a, b) = straight_and_resumed(&spec, &dir, 13, 0);
    assert_same_bits(&a, &b);
    // config.json says everything, with the data folder made absolute.
    let run = Run::open(&b).unwrap();
    assert_eq!(run.config.spec, RunSpec { data: Some(std::fs::canonicalize(&dir).unwrap()), ..spec });
    assert_eq!((run.config.classes, run.config.input), (10, Some([1, 28, 28])));
}

#[test]
fn a_tagger_with_dropout_resumed_at_an_epoch_end_ends_with_the_same_bits() {
    let dir = scratch("slots");
    // With character features and a CRF, whose layers must resume as exactly as the others.
    let tagger = TaggerSpec {
        cell: CellKind::Gru,
        embedding_dim: 8,
        hidden_size: 16,
        dropout: 0.3,
        char_dim: 5,
        char_filters: 6,
        crf: true,
        ..Default::default()
    };
    let spec =
        RunSpec { task: Task::Slots { tagger }, epochs: 2, batch_size: 64, monitor_every: 0, ..RunSpec::slots() };
    // 47 steps an epoch: stopped at the end of the first.
    let (a, b) = straight_and_resumed(&spec, &dir, 47, 0);
    assert_same_bits(&a, &b);
    let summary = Run::open(&b).unwrap().summary;
    assert!(summary.test_f1.is_some() && summary.test_token_accuracy.is_some());
    assert_eq!(summary.held_out, "dev");

    // A summary written before the splits were named reads, its figures under their new names.
    let mut old: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("summary.json")).unwrap()).unwrap();
    let o = old.as_object_mut().unwrap();
    o.remove("held_out");
    for (new, was) in [("held_out_accuracy", "test_accuracy"), ("held_out_loss", "test_loss")] {
        let value = o.remove(new).unwrap();
        o.insert(was.into(), value);
    }
    let read: saddle::train::Summary = serde_json::from_value(old).unwrap();
    assert_eq!((read.held_out.as_str(), read.held_out_accuracy), ("held-out", summary.held_out_accuracy));
}

#[test]
fn pretrained_word_vectors_start_the_embedding_and_frozen_stay_as_they_are() {
    let dir = scratch("vectors");
    // Vectors for three words of the travel corpus (any case: words are matched by their form), and one it lacks.
    let file = dir.join("vectors.txt");
    let vectors = [("Boston", 0.5f32), ("denver", -0.25), ("ARRIVE", 1.0), ("zebra", 2.0)];
    let text: String = vectors.iter().map(|(w, v)| format!("{w} {}\n", vec![format!("{v}"); 4].join(" "))).collect();
    std::fs::write(&file, text).unwrap();
    for freeze in [true, false] {
        let tagger = TaggerSpec {
            embedding_dim: 4,
            hidden_size: 8,
            embeddings: Some(file.clone()),
            freeze_embeddings: freeze,
            ..Default::default()
        };
        let spec = RunSpec { task: Task::Slots { tagger }, epochs: 1, monitor_every: 0, ..RunSpec::slots() };
        let out = dir.join(format!("run-{freeze}"));
        let mut trainer = Trainer::create(&spec, &out).unwrap();
        assert_eq!(trainer.data().pretrained.as_ref().unwrap().found(), 3);
        trainer.train(&mut []).unwrap();
        let run = Run::open(&out).unwrap();
        let words = run.vocabularies.as_ref().unwrap().words();
        let weights = read_safetensors(&out.join("model.safetensors")).unwrap().0;
        let embedding = &weights["embedding.weight"].1;
        let row = |w: &str| embedding[words.index(w) * 4..][..4].to_vec();
        for (word, v) in &vectors[..3] {
            assert_eq!(row(&word.to_lowercase()) == vec![*v; 4], freeze, "{word}, frozen: {freeze}");
        }
    }
    let bad = TaggerSpec { embedding_dim: 5, embeddings: Some(file), ..Default::default() };
    let spec = RunSpec { task: Task::Slots { tagger: bad }, ..RunSpec::slots() };
    let e = Trainer::create(&spec, &dir.join("bad")).err().unwrap().to_string();
    assert!(e.contains("holds vectors of 4 numbers, but the word embedding has 5"), "{e}");
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

#[test]
fn a_run_that_diverges_stops_with_finite_weights_and_opens_everywhere() {
    let dir = scratch("diverged");
    small_mnist(&dir, 256, 64);
    let run = dir.join("run");
    let spec = RunSpec {
        data: Some(dir.clone()),
        epochs: 3,
        batch_size: 32,
        monitor_every: 1,
        schedule: "exp:2".parse().unwrap(),
        optimizer: saddle::optim::SgdConfig { lr: 0.5, ..Default::default() }.into(),
        ..RunSpec::mnist()
    };
    let Outcome::Diverged(summary) = Trainer::create(&spec, &run).unwrap().train(&mut []).unwrap() else {
        panic!("η doubling every step must diverge");
    };
    let d = summary.diverged.clone().unwrap();
    assert!(!(d.loss.is_finite() && d.grad_norm.is_finite()), "{d}");
    assert_eq!(summary.steps, d.step);
    let text = std::fs::read_to_string(run.join("summary.json")).unwrap();
    assert!(text.contains("\"diverged\""), "{text}");
    let mut opened = Run::open(&run).unwrap();
    let json = |s: &saddle::train::Summary| serde_json::to_string(s).unwrap();
    assert_eq!(json(&opened.summary), json(&summary), "summary.json reads back what was written, NaN included");
    let weights = read_safetensors(&run.join("model.safetensors")).unwrap().0;
    assert!(weights.values().all(|(_, v)| v.iter().all(|x| x.is_finite())), "the weights kept are finite");
    opened.evaluate(None).unwrap();
    let options = DiagnoseOptions { probe: 32, lanczos: 4, grid: 3, ..Default::default() };
    let diagnosis = diagnose_run(&mut opened, &options).unwrap();
    let last = diagnosis.findings.last().unwrap();
    assert_eq!((last.verdict, last.to_step), (Verdict::Exploding, d.step), "{:?}", diagnosis.findings);
    assert_eq!(diagnosis.end.verdict, Verdict::Exploding, "weights from just before a divergence are no minimum");
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().filter(|l| !l.split(',').nth(2).unwrap_or("").is_empty()).count(), d.step + 1);
    assert!(Trainer::resume(&run).err().unwrap().to_string().contains("the run is complete"));
}

/// Puts a file where the next checkpoint's folder goes once `at` steps are done, so that writing it fails.
struct BlockCheckpoint {
    dir: PathBuf,
    at: usize,
}

impl Observer for BlockCheckpoint {
    fn on_step(&mut self, m: &StepMetrics) -> saddle::Result<()> {
        if m.step + 1 == self.at {
            std::fs::write(self.dir.join("checkpoint.new"), "in the way").unwrap();
        }
        Ok(())
    }
}

#[test]
fn a_failed_checkpoint_write_stops_the_run_and_it_resumes_from_the_one_before() {
    let dir = scratch("full-disk");
    small_mnist(&dir, 320, 64);
    let spec = RunSpec { data: Some(dir.clone()), epochs: 2, batch_size: 32, checkpoint_every: 4, ..RunSpec::mnist() };
    let (a, b) = (dir.join("straight"), dir.join("failed"));
    Trainer::create(&spec, &a).unwrap().train(&mut []).unwrap();
    // The checkpoint after step 8 cannot be written: training stops with the error.
    let e =
        Trainer::create(&spec, &b).unwrap().train(&mut [&mut BlockCheckpoint { dir: b.clone(), at: 6 }]).err().unwrap();
    assert!(e.to_string().contains("checkpoint.new"), "{e}");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("checkpoint/state.json")).unwrap()).unwrap();
    assert_eq!(state["position"]["step"], 4, "the checkpoint before the failure is intact");
    std::fs::remove_file(b.join("checkpoint.new")).unwrap();
    let resumed = Trainer::resume(&b).unwrap();
    assert_eq!(resumed.position().step, 4);
    let mut resumed = resumed;
    assert!(matches!(resumed.train(&mut []).unwrap(), Outcome::Finished(_)));
    assert_same_bits(&a, &b);
}

#[test]
fn hand_edited_run_files_are_refused_by_field_before_anything_is_built() {
    let dir = scratch("edited");
    let tagger = TaggerSpec { embedding_dim: 8, hidden_size: 8, ..Default::default() };
    let spec =
        RunSpec { task: Task::Slots { tagger }, epochs: 1, batch_size: 256, monitor_every: 0, ..RunSpec::slots() };
    let run = dir.join("run");
    Trainer::create(&spec, &run).unwrap().train(&mut []).unwrap();
    let pristine = |file: &str| std::fs::read_to_string(run.join(file)).unwrap();
    let (config, vocab) = (pristine("config.json"), pristine("vocab.json"));
    let edit = |file: &str, text: &str, path: &[&str], value: serde_json::Value| {
        let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut at = &mut v;
        for p in path {
            at = &mut at[*p];
        }
        *at = value;
        std::fs::write(run.join(file), serde_json::to_string(&v).unwrap()).unwrap();
    };
    for (path, value, needle) in [
        (vec!["tagger", "dropout"], serde_json::json!(1.5), "tagger.dropout: must be in [0, 1), got 1.5"),
        (vec!["tagger", "num_layers"], serde_json::json!(0), "tagger.num_layers: must be between 1 and 64, got 0"),
        (vec!["tagger", "num_layers"], serde_json::json!(1u64 << 31), "tagger.num_layers: must be between 1 and 64"),
        (vec!["tagger", "context"], serde_json::json!(1e9), "config.json: not a saddle run file"),
        (vec!["classes"], serde_json::json!(1u64 << 40), "classes: must be between 1 and 65536"),
        (vec!["tagger", "hidden_size"], serde_json::json!(60000), "more than the 1073741824"),
        (vec!["tagger", "hidden_size"], serde_json::json!(4000), "model.safetensors: holds"),
        (
            vec!["tagger", "hidden_size"],
            serde_json::json!(9),
            "tensor 'rnn.weight_ih_l0' has shape [32, 8], the model expects [36, 8]",
        ),
    ] {
        edit("config.json", &config, &path, value);
        let e = Run::open(&run).err().unwrap().to_string();
        assert!(e.contains(needle) && e.contains("run/"), "{path:?}: {e}");
    }
    std::fs::write(run.join("config.json"), &config).unwrap();
    edit("vocab.json", &vocab, &["tags"], serde_json::json!(["O"]));
    let e = Run::open(&run).err().unwrap().to_string();
    assert!(e.contains("vocab.json") && e.contains("1 tags"), "{e}");
    std::fs::write(run.join("vocab.json"), &vocab).unwrap();
    Run::open(&run).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn a_crash_between_the_renames_of_a_checkpoint_loses_nothing() {
    let dir = scratch("swap");
    small_mnist(&dir, 320, 64);
    let spec = RunSpec { data: Some(dir.clone()), epochs: 2, batch_size: 32, checkpoint_every: 4, ..RunSpec::mnist() };
    let straight = dir.join("straight");
    Trainer::create(&spec, &straight).unwrap().train(&mut []).unwrap();
    for (name, crash) in [("renamed-away", 0), ("old-left-behind", 1)] {
        let run = dir.join(name);
        Trainer::create(&spec, &run).unwrap().train(&mut [&mut StopAfter(9, 0)]).unwrap();
        let (checkpoint, old) = (run.join("checkpoint"), run.join("checkpoint.old"));
        if crash == 0 {
            // Killed after `checkpoint` became `checkpoint.old`, before the new one took its place.
            std::fs::rename(&checkpoint, &old).unwrap();
        } else {
            // Killed after the new one took its place, before the old one was removed.
            copy_dir(&checkpoint, &old);
        }
        let mut t = Trainer::resume(&run).unwrap();
        assert_eq!(t.position().step, 9, "{name}");
        assert!(matches!(t.train(&mut []).unwrap(), Outcome::Finished(_)), "{name}");
        assert_same_bits(&straight, &run);
    }
}

/// The speedrun recipe on grey digits: a whitened first layer that stays
/// frozen, γ frozen at 1, batch-norm parameters in their own group at 64× the
/// rate and λ/64, and lookahead, whose slow weights a resumed run gets back.
#[test]
fn the_speedrun_recipe_freezes_what_airbench_freezes_and_resumes_exactly() {
    use saddle::nn::Module;
    use saddle::optim::Lookahead;
    use saddle::train::{ImageModel, NormParams};
    let dir = scratch("speedrun");
    small_mnist(&dir, 96, 32);
    let spec = RunSpec {
        task: Task::Mnist { model: ImageModel::Speedrun },
        data: Some(dir.clone()),
        epochs: 1,
        batch_size: 16,
        monitor_every: 0,
        checkpoint_every: 4,
        lookahead: Some(Lookahead { every: 2, decay: 0.9 }),
        norm_params: NormParams { lr_scale: 64.0, weight_decay: true },
        ..RunSpec::images_recipe(ImageModel::Speedrun)
    };
    let mut trainer = Trainer::create(&spec, &dir.join("look")).unwrap();
    let params = trainer.model().named_parameters();
    let value = |name: &str| params.iter().find(|(n, _)| n == name).unwrap().1.to_vec();
    let whitened = value("0.weight");
    assert_eq!(whitened.len(), 8 * 4, "8 filters of 2×2 for one channel");
    assert!(whitened[..16].iter().zip(&whitened[16..]).all(|(a, b)| *a == -b) && whitened[0] != 0.0);
    let groups = trainer.optimizer().groups();
    let names = |g: usize| groups[g].params.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>();
    assert_eq!(names(2).len(), 12, "six batch norms, γ and β each: {:?}", names(2));
    assert!(names(2).iter().all(|n| n.contains(".norm")) && names(1) == ["0.bias"], "{:?}", names(1));
    assert_eq!((groups[2].lr_scale, groups[2].weight_decay), (64.0, Some(1.33e-3 / 64.0)));
    let bias_before = value("2.norm1.bias");
    trainer.train(&mut []).unwrap();
    assert_eq!(value("0.weight"), whitened, "the whitening layer is frozen");
    assert!(value("3.norm2.weight").iter().all(|&g| g == 1.0), "γ is frozen at 1");
    assert_ne!(value("2.norm1.bias"), bias_before, "β trains");
    let (a, b) = straight_and_resumed(&spec, &dir, 5, 0);
    assert_same_bits(&a, &b);
    let (tensors, _) = read_safetensors(&b.join("optimizer.safetensors")).unwrap();
    assert!(tensors.keys().any(|k| k.ends_with(".lookahead_slow")));
}

#[test]
fn the_range_test_trains_a_fresh_model_and_writes_nothing() {
    use saddle::train::{lr_find, LrFindOptions};
    let dir = scratch("lr-find");
    small_mnist(&dir, 256, 16);
    let spec = RunSpec { data: Some(dir.clone()), batch_size: 16, ..RunSpec::mnist() };
    let before: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    let o = LrFindOptions { steps: 40, ..Default::default() };
    let found = lr_find(&spec, &o, &|_, _| {}).unwrap();
    let n = found.rates.len();
    assert!(n > 10 && n <= 40 && found.losses.len() == n && found.smoothed.len() == n, "{n} steps");
    // Exponential steps from the first rate: each ×(1e8)^(1/39).
    assert_eq!(found.rates[0], 1e-7);
    let growth = (1e8f64).powf(1.0 / 39.0);
    assert!(found.rates.windows(2).all(|w| (w[1] / w[0] / growth - 1.0).abs() < 1e-9));
    assert!(found.rates.contains(&found.rate_at_minimum) && found.suggested == found.rate_at_minimum / 10.0);
    // The rate with the lowest centred mean lowered the loss from where it started.
    let k = found.rates.iter().position(|&r| r == found.rate_at_minimum).unwrap();
    assert!(found.smoothed[k] < found.smoothed[0], "{:?}", found.smoothed);
    let after: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(before, after, "no run directory or file written");
    let bad = LrFindOptions { start_lr: 1.0, end_lr: 0.1, ..Default::default() };
    assert!(lr_find(&spec, &bad, &|_, _| {}).unwrap_err().to_string().contains("0 < start 1 < end 0.1"));
}
