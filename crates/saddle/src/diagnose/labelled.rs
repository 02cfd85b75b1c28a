//! The labelled runs: training runs whose right verdict is known by how they
//! are built, to measure the diagnosis against (`saddle bench diagnosis`).
//!
//! Uses: `train` (specs, the trainer), `diagnose` (the whole diagnosis), `data`, `error`.

use super::{cue_corpus, diagnose_run, DiagnoseOptions, Diagnosis, Verdict};
use crate::data::{write_conll, TaggedSentence};
use crate::nn::CellKind;
use crate::optim::{Family, Schedule, SgdConfig};
use crate::train::{ImageModel, Observer, Outcome, Run, RunSpec, TaggerSpec, Task, Trainer};
use crate::{Error, Result};
use std::fmt;
use std::path::{Path, PathBuf};

/// The verdict a labelled run must get.
#[derive(Clone, Debug, PartialEq)]
pub enum Expected {
    /// No problem anywhere: every plateau and the final weights are healthy
    /// (still descending, a slow descent, or a minimum).
    Healthy,
    /// Trained to convergence: the final weights are a local minimum and nothing is a problem.
    Minimum,
    /// One of these problems, first among the run's findings.
    Problem(Vec<Verdict>),
}

impl Expected {
    /// Whether `given`, a run's [`Diagnosis::verdict`], is right.
    pub fn accepts(&self, given: Verdict) -> bool {
        match self {
            Expected::Healthy => !given.is_problem(),
            Expected::Minimum => given == Verdict::LocalMinimum,
            Expected::Problem(v) => v.contains(&given),
        }
    }

    /// Whether the run has no problem to find, so that any problem found is a false alarm.
    pub fn is_healthy(&self) -> bool {
        !matches!(self, Expected::Problem(_))
    }
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Healthy => f.write_str("healthy"),
            Expected::Minimum => f.write_str("local minimum"),
            Expected::Problem(v) => {
                let names: Vec<String> = v.iter().map(Verdict::to_string).collect();
                f.write_str(&names.join(" or "))
            }
        }
    }
}

/// A training run whose right verdict is known by construction.
#[derive(Clone, Debug)]
pub struct LabelledRun {
    /// A short name, also the run's folder.
    pub name: &'static str,
    /// Why the verdict is known.
    pub truth: &'static str,
    /// The verdict it must get.
    pub expected: Expected,
    /// What is trained.
    pub spec: RunSpec,
    /// Training and test sentences written as the run's corpus before it trains.
    corpus: Option<(Vec<TaggedSentence>, Vec<TaggedSentence>)>,
}

impl Diagnosis {
    /// The run's verdict in one word: the first problem found, on a plateau
    /// (in step order) or at the final weights; without one, the final
    /// weights' verdict (still descending, or a local minimum).
    pub fn verdict(&self) -> Verdict {
        self.findings.iter().chain([&self.end]).map(|f| f.verdict).find(|v| v.is_problem()).unwrap_or(self.end.verdict)
    }
}

/// LeNet-5 on the bundled MNIST, 8 epochs of 64 with Adam at 10⁻³ on a
/// cosine schedule: a slow recipe that trains to a training loss under 0.01
/// (the default before `RunSpec::mnist`'s 3 epochs).
fn mnist_slow() -> RunSpec {
    RunSpec {
        epochs: 8,
        batch_size: 64,
        optimizer: Family::Adam.spec(),
        schedule: Schedule::Cosine { t_max: None, eta_min: 0.0 },
        ..RunSpec::mnist()
    }
}

/// `model` on the bundled MNIST for one epoch of batches of 64, with `optimizer` at a constant rate.
fn mnist_with(model: &str, optimizer: impl Into<crate::optim::OptimizerSpec>) -> RunSpec {
    RunSpec {
        task: Task::Mnist { model: ImageModel::from_name(model).expect("a model saddle has") },
        epochs: 1,
        optimizer: optimizer.into(),
        schedule: Schedule::Constant,
        ..mnist_slow()
    }
}

fn sgd(lr: f64, momentum: f64) -> SgdConfig {
    SgdConfig { lr, momentum, ..Default::default() }
}

/// The labelled runs, the ones on bundled or generated data first. With
/// `corpora`, a folder holding `atis/` and `cifar10/` (as `../shared/data`
/// does), the runs on those follow where the folder has them.
pub fn labelled_runs(corpora: Option<&Path>) -> Vec<LabelledRun> {
    let run = |name, truth, expected, spec| LabelledRun { name, truth, expected, spec, corpus: None };
    let problem = |v: &[Verdict]| Expected::Problem(v.to_vec());
    let mut runs = vec![
        run(
            "mnist-lenet-adam",
            "LeNet-5, Adam 1e-3, cosine, 8 epochs of 64: 99% on the test set, trained to a training loss under 0.01",
            Expected::Minimum,
            mnist_slow(),
        ),
        run(
            "mnist-mlp-adam",
            "the perceptron with Adam at 1e-3 for 2 epochs: 97.6% on the test set",
            Expected::Healthy,
            RunSpec { task: Task::Mnist { model: ImageModel::from_name("mlp").expect("mlp") }, epochs: 2, ..mnist_slow() },
        ),
        run(
            "mnist-momentum",
            "LeNet-5, SGD with momentum 0.9 at 0.01, one epoch: a textbook recipe, 97.7% on the test set",
            Expected::Healthy,
            mnist_with("lenet5", sgd(0.01, 0.9)),
        ),
        run(
            "travel-lstm",
            "a plain LSTM tagger (Adam 1e-3) on the generated travel corpus, whose tags follow from its templates",
            Expected::Healthy,
            RunSpec {
                task: Task::Slots { tagger: TaggerSpec::default() },
                epochs: 3,
                optimizer: Family::Adam.spec(),
                ..RunSpec::slots()
            },
        ),
        run(
            "mnist-lr-huge",
            "plain SGD at 1.0, a hundred times a working rate: the steps overshoot and the gradient blows up",
            problem(&[Verdict::Oscillating, Verdict::Exploding]),
            mnist_with("lenet5", sgd(1.0, 0.0)),
        ),
        run(
            "mnist-lr-tiny",
            "plain SGD at 1e-5, a thousand times too small: the weights barely move",
            problem(&[Verdict::LearningRateTooSmall]),
            mnist_with("lenet5", sgd(1e-5, 0.0)),
        ),
        run(
            "mnist-deep-sigmoid",
            "six sigmoid layers of 100 at PyTorch's initialization: each layer multiplies the gradient by at most ¼ of its weights' gain",
            problem(&[Verdict::Vanishing]),
            mnist_with("mlp-100-100-100-100-100-100-sigmoid", sgd(0.1, 0.0)),
        ),
        run(
            "mnist-linear-zeros",
            "a linear network (784 → 64 → 10) with every weight zero: the origin is a saddle point, its gradient zero but for the last bias, its Hessian ±σ of the input-output correlation",
            problem(&[Verdict::SaddlePoint]),
            mnist_with("mlp-64-linear-zeros", sgd(0.1, 0.0)),
        ),
        LabelledRun {
            name: "cue-rnn-100",
            truth: "a plain RNN must tag 20 words with the colour that opened the sentence 100 words before: the gradient through 100 tanh steps vanishes",
            expected: problem(&[Verdict::Vanishing]),
            spec: RunSpec {
                task: Task::Slots { tagger: TaggerSpec { cell: CellKind::RnnTanh, ..TaggerSpec::default() } },
                epochs: 6,
                schedule: Schedule::Constant,
                optimizer: Family::Adam.spec(),
                ..RunSpec::slots()
            },
            corpus: Some((cue_corpus(2000, 100, 20, 1), cue_corpus(200, 100, 20, 2))),
        },
    ];
    let Some(corpora) = corpora else { return runs };
    if corpora.join("atis").is_dir() {
        // The README's recipes, a third as long.
        let atis = |bidirectional| RunSpec {
            task: Task::Slots {
                tagger: TaggerSpec {
                    bidirectional,
                    context: 1,
                    dropout: 0.5,
                    hidden_size: 200,
                    ..TaggerSpec::default()
                },
            },
            data: Some(corpora.join("atis")),
            epochs: 10,
            optimizer: Family::Adam.spec().with_lr(3e-3),
            ..RunSpec::slots()
        };
        runs.push(run(
            "atis-lstm",
            "the README's ATIS recipe (LSTM, context 1, dropout 0.5, Adam 3e-3), 10 epochs: slot F1 93.3",
            Expected::Healthy,
            atis(false),
        ));
        runs.push(run(
            "atis-bilstm",
            "the README's ATIS recipe with a bidirectional LSTM, 10 epochs: slot F1 94.3",
            Expected::Healthy,
            atis(true),
        ));
    }
    if corpora.join("cifar10").is_dir() {
        runs.push(run(
            "cifar-lenet",
            "LeNet-5 on CIFAR-10 photos with the colour-image recipe for it, 2 epochs: 38.8% and still learning",
            Expected::Healthy,
            RunSpec { data: Some(corpora.join("cifar10")), epochs: 2, ..RunSpec::images_recipe(ImageModel::Lenet5) },
        ));
    }
    runs
}

impl LabelledRun {
    /// Trains the run into `dir/NAME` (its corpus, if it has one, into
    /// `dir/NAME-corpus`) and diagnoses it as `saddle diagnose` does.
    pub fn train_and_diagnose(&self, dir: &Path, observers: &mut [&mut dyn Observer]) -> Result<Diagnosis> {
        let mut spec = self.spec.clone();
        if let Some((train, test)) = &self.corpus {
            let folder = dir.join(format!("{}-corpus", self.name));
            std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
            write_conll(&folder.join("train.conll"), train)?;
            write_conll(&folder.join("test.conll"), test)?;
            spec.data = Some(folder);
        }
        let path: PathBuf = dir.join(self.name);
        let mut trainer = Trainer::create(&spec, &path)?;
        if let Outcome::Stopped { step, .. } = trainer.train(observers)? {
            return Err(Error::config("observers", format!("{} was stopped at step {step}", self.name)));
        }
        drop(trainer);
        diagnose_run(&mut Run::open(&path)?, &DiagnoseOptions::default())
    }
}
