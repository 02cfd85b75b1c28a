//! `saddle train`: train a model from the command line into a run directory.

use crate::schedule::{self, SPEC_HELP};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use saddle::data::{load_idx_dir, Dataset};
use saddle::diagnose::Monitor;
use saddle::nn::{build_model, Module, MODELS};
use saddle::optim::{Adagrad, AdagradConfig, Adam, AdamConfig, Optimizer, RmsProp, RmsPropConfig, Sgd, SgdConfig};
use saddle::train::{fit, EpochMetrics, FitOptions, Observer, RunConfig, RunDir, StepMetrics, Summary, RUN_FORMAT};
use saddle::{Error, Result, Rng};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args)]
#[command(
    after_help = "Examples:\n  saddle train mnist\n  saddle train mnist --epochs 3 --optim momentum --lr 0.05\n  saddle train mnist --data ~/fashion-mnist --out runs/fashion\n\nThe run directory gets config.json, metrics.csv, model.safetensors (PyTorch state-dict names)\nand summary.json, written last. Evaluate it with `saddle eval RUN`."
)]
pub struct TrainArgs {
    /// What to train: `mnist` is an image classifier on MNIST (bundled) or on any
    /// dataset in the same IDX layout given with --data (Fashion-MNIST, for one);
    /// `slots` is a tagger that labels each word of a sentence with its slot.
    #[arg(value_enum)]
    pub task: Task,
    /// Network to train [mnist: lenet5 (default) or mlp; slots: rnn, lstm (default) or gru].
    #[arg(long)]
    pub model: Option<String>,
    /// Passes over the training set [default: 8 for mnist, 10 for slots].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub epochs: Option<u32>,
    /// Examples (images, sentences) per optimizer step [default: 64 for mnist, 16 for slots].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: Option<u32>,
    /// Learning rate [default: 0.05 for sgd, momentum and nesterov; 0.01 for adagrad; 1e-3 for rmsprop, adam and adamw].
    #[arg(long, value_parser = positive, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Optimizer.
    #[arg(long, value_enum, default_value_t = OptimName::Adam)]
    pub optim: OptimName,
    /// Momentum μ for `momentum` and `nesterov`.
    #[arg(long, default_value_t = 0.9, value_parser = non_negative, allow_negative_numbers = true)]
    pub momentum: f64,
    /// Weight decay λ (L2; decoupled for adamw).
    #[arg(long, default_value_t = 0.0, value_parser = non_negative, allow_negative_numbers = true)]
    pub weight_decay: f64,
    /// Learning-rate schedule; the default anneals η to 0 along half a cosine
    /// over the whole run (see `saddle schedule --help` for every form).
    #[arg(long, default_value = "cosine", long_help = SPEC_HELP)]
    pub schedule: String,
    /// Linear warm-up over this many steps, in front of the schedule.
    #[arg(long, default_value_t = 0, value_name = "STEPS")]
    pub warmup: usize,
    /// Clip the global gradient norm to this value.
    #[arg(long, value_parser = positive, allow_negative_numbers = true)]
    pub clip_norm: Option<f64>,
    /// Seed of initialization and shuffling: the same seed gives the same run, bit for bit.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Run directory [default: runs/TASK-MODEL-DATE].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Dataset folder [mnist: MNIST's IDX layout, default the bundled data/mnist;
    /// slots: ATIS `word:TAG … <=> intent` files, train/ and test/ with seq.in and
    /// seq.out, or train.conll and test.conll; default the generated travel corpus].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// No progress bar; one line per epoch.
    #[arg(long)]
    pub quiet: bool,
    /// Record the diagnostics (loss, gradient norms per layer, update ratio and
    /// cosine, clipping) every N steps into diagnostics.csv; 0 turns them off.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub monitor_every: usize,
    /// After training, run `saddle diagnose` on the run: verdicts, Hessian,
    /// landscape, and report.html.
    #[arg(long)]
    pub diagnose: bool,
    /// slots: a second recurrent direction from each sentence's end.
    #[arg(long)]
    pub bidirectional: bool,
    /// slots: recurrent layers.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub layers: u32,
    /// slots: word-vector size.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub embedding_dim: u32,
    /// slots: recurrent state size.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    pub hidden_size: u32,
    /// slots: words seen fewer times in training become <unk>.
    #[arg(long, default_value_t = 1)]
    pub min_count: usize,
    /// slots: dropout on the word vectors and the recurrent outputs.
    #[arg(long, default_value_t = 0.0, value_parser = dropout_rate)]
    pub dropout: f32,
    /// slots: each word's input also holds the vectors of K words on each
    /// side (a context window of 2K+1 words, as Mesnil et al. 2013).
    #[arg(long, default_value_t = 0, value_name = "K", value_parser = clap::value_parser!(u32).range(0..=10))]
    pub context: u32,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub enum Task {
    /// Classify 28×28 handwritten digits (or any IDX image dataset).
    Mnist,
    /// Tag each word of a sentence with its slot (ATIS, or the generated travel corpus).
    Slots,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub enum OptimName {
    /// Plain stochastic gradient descent.
    Sgd,
    /// SGD with heavy-ball momentum.
    Momentum,
    /// SGD with Nesterov momentum.
    Nesterov,
    /// Adagrad: steps shrink with the sum of all past squared gradients.
    Adagrad,
    /// RMSProp: steps divided by the RMS of recent gradients.
    Rmsprop,
    /// Adam (Kingma and Ba): momentum and RMSProp, bias-corrected.
    Adam,
    /// Adam with decoupled weight decay (Loshchilov and Hutter).
    Adamw,
}

impl OptimName {
    /// Every optimizer, in the order the lecture introduces them.
    pub const ALL: [OptimName; 7] = [
        OptimName::Sgd,
        OptimName::Momentum,
        OptimName::Nesterov,
        OptimName::Adagrad,
        OptimName::Rmsprop,
        OptimName::Adam,
        OptimName::Adamw,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            OptimName::Sgd => "sgd",
            OptimName::Momentum => "momentum",
            OptimName::Nesterov => "nesterov",
            OptimName::Adagrad => "adagrad",
            OptimName::Rmsprop => "rmsprop",
            OptimName::Adam => "adam",
            OptimName::Adamw => "adamw",
        }
    }

    /// The learning rate used when `--lr` is not given.
    pub fn default_lr(self) -> f64 {
        match self {
            OptimName::Sgd | OptimName::Momentum | OptimName::Nesterov => 0.05,
            OptimName::Adagrad => 0.01,
            OptimName::Rmsprop | OptimName::Adam | OptimName::Adamw => 1e-3,
        }
    }

    /// The optimizer over `params`, with PyTorch's defaults for everything not given.
    pub fn build(
        self,
        params: Vec<(String, saddle::Tensor)>,
        lr: f64,
        momentum: f64,
        weight_decay: f64,
    ) -> Result<Box<dyn Optimizer>> {
        let wd = weight_decay;
        Ok(match self {
            OptimName::Sgd | OptimName::Momentum | OptimName::Nesterov => {
                let momentum = if self == OptimName::Sgd { 0.0 } else { momentum };
                let nesterov = self == OptimName::Nesterov;
                Box::new(Sgd::new(
                    params,
                    SgdConfig { lr, momentum, weight_decay: wd, nesterov, ..Default::default() },
                )?)
            }
            OptimName::Adagrad => {
                Box::new(Adagrad::new(params, AdagradConfig { lr, weight_decay: wd, ..Default::default() })?)
            }
            OptimName::Rmsprop => {
                Box::new(RmsProp::new(params, RmsPropConfig { lr, weight_decay: wd, ..Default::default() })?)
            }
            OptimName::Adam => Box::new(Adam::new(params, AdamConfig { lr, weight_decay: wd, ..Default::default() })?),
            OptimName::Adamw => {
                let wd = if wd == 0.0 { AdamConfig::adamw().weight_decay } else { wd };
                Box::new(Adam::new(params, AdamConfig { lr, weight_decay: wd, ..AdamConfig::adamw() })?)
            }
        })
    }
}

fn dropout_rate(s: &str) -> std::result::Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        _ => Err(format!("expected a probability in [0, 1), got '{s}'")),
    }
}

fn positive(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("expected a positive number, got '{s}'")),
    }
}

fn non_negative(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("expected a number ≥ 0, got '{s}'")),
    }
}

/// The bundled dataset: `data/mnist` under the current folder, else in the source tree.
pub fn default_data_dir() -> PathBuf {
    let here = PathBuf::from("data/mnist");
    if here.is_dir() {
        here
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")
    }
}

/// Progress bar per epoch (images/s, ETA, running loss and accuracy) and a line per epoch.
struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
    epochs: usize,
    examples: usize,
    /// images, sentences.
    unit: &'static str,
    /// What the held-out set is called: test, dev.
    held_out: &'static str,
}

impl Progress {
    fn new_bar(&self, epoch: usize) -> ProgressBar {
        let bar = ProgressBar::new(self.examples as u64);
        let style = ProgressStyle::with_template("{prefix} [{bar:28}] {pos:>6}/{len} {per_sec:>12} ETA {eta:>3} {msg}")
            .expect("valid template")
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(format!("epoch {}/{}", epoch + 1, self.epochs));
        bar
    }
}

impl Observer for Progress {
    fn on_step(&mut self, m: &StepMetrics) -> Result<()> {
        if self.quiet {
            return Ok(());
        }
        let bar = match &self.bar {
            Some(b) => b,
            None => {
                self.bar = Some(self.new_bar(m.epoch));
                self.bar.as_ref().expect("just set")
            }
        };
        bar.inc(m.batch_size as u64);
        if m.step % 10 == 0 || m.step % m.steps_per_epoch == m.steps_per_epoch - 1 {
            bar.set_message(format!("loss {:.4} acc {:.2}%", m.running_loss, 100.0 * m.running_accuracy));
        }
        Ok(())
    }
    fn on_epoch(&mut self, m: &EpochMetrics) -> Result<()> {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let test =
            m.test.map_or(String::new(), |(l, a)| format!("  {} loss {l:.4} acc {:.2}%", self.held_out, 100.0 * a));
        println!(
            "epoch {}/{}  train loss {:.4} acc {:.2}%{test}  ({:.1} s, {:.0} {}/s)",
            m.epoch + 1,
            self.epochs,
            m.train_loss,
            100.0 * m.train_accuracy,
            m.train_seconds,
            self.examples as f64 / m.train_seconds.max(1e-9),
            self.unit
        );
        Ok(())
    }
}

/// `YYYYMMDD-HHMMSS` in UTC, for default run names.
fn timestamp() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}-{:02}{:02}{:02}", rem / 3600, rem / 60 % 60, rem % 60)
}

pub fn run(args: TrainArgs) -> Result<()> {
    let diagnose = args.diagnose;
    if diagnose && args.monitor_every == 0 {
        return Err(Error::config("--diagnose", "needs the diagnostics; drop --monitor-every 0"));
    }
    let path = match args.task {
        Task::Mnist => train_mnist(args)?,
        Task::Slots => crate::slots::train(args)?,
    };
    if diagnose {
        println!();
        crate::diagnose::run(crate::diagnose::DiagnoseArgs::for_run(path))?;
    }
    Ok(())
}

fn train_mnist(args: TrainArgs) -> Result<PathBuf> {
    let model_name = args.model.clone().unwrap_or_else(|| "lenet5".into());
    if !MODELS.iter().any(|(n, _)| *n == model_name) {
        let list: Vec<String> = MODELS.iter().map(|(n, d)| format!("{n} ({d})")).collect();
        return Err(Error::config(
            "--model",
            format!("'{model_name}' is not an image model; expected one of: {}", list.join("; ")),
        ));
    }
    let data_dir = args.data.clone().unwrap_or_else(default_data_dir);
    let loading = Instant::now();
    let (train, test) = load_idx_dir(&data_dir)?;
    let classes = train.classes();
    if classes < 2 {
        return Err(Error::format(
            &data_dir,
            format!("the training labels name {classes} class; at least 2 are needed"),
        ));
    }
    let mut model = build_model(&model_name, train.shape, classes, &mut Rng::new(args.seed))?;
    println!(
        "data      {} ({} training, {} test images of {:?}, {classes} classes; loaded in {:.1} s)",
        data_dir.display(),
        train.len(),
        test.len(),
        train.shape,
        loading.elapsed().as_secs_f64()
    );
    let job = Job {
        task: "mnist",
        model_name,
        unit: "images",
        held_out: "test",
        epochs: args.epochs.unwrap_or(8) as usize,
        batch_size: args.batch_size.unwrap_or(64) as usize,
        input: train.shape,
        classes,
        normalization: train.norm,
        data: data_dir.display().to_string(),
        tagger: None,
    };
    let (summary, path) = train_job(&args, &job, &mut model, &train, &test, |_, _| Ok(None))?;
    println!(
        "done      test accuracy {:.2}%, test loss {:.4}; {:.1} s training ({:.0} images/s); saved to {}",
        100.0 * summary.test_accuracy,
        summary.test_loss,
        summary.train_seconds,
        summary.train_images_per_second,
        path.display()
    );
    Ok(path)
}

/// What a task hands to [`train_job`].
pub struct Job {
    pub task: &'static str,
    pub model_name: String,
    /// What one example is, for messages: images, sentences.
    pub unit: &'static str,
    /// What the held-out set evaluated each epoch is called: test, dev.
    pub held_out: &'static str,
    pub epochs: usize,
    pub batch_size: usize,
    pub input: [usize; 3],
    pub classes: usize,
    pub normalization: saddle::data::Normalization,
    pub data: String,
    pub tagger: Option<saddle::nn::TaggerConfig>,
}

/// The part of `saddle train` every task shares: optimizer and schedule from
/// the flags, the effective hyperparameters printed, the run directory, the
/// progress bar, `fit`, and the summary. `finish(dir, model)` writes the task's
/// own files and may return a test F1 for the summary.
pub fn train_job<M: Module>(
    args: &TrainArgs,
    job: &Job,
    model: &mut M,
    train: &dyn Dataset,
    test: &dyn Dataset,
    finish: impl FnOnce(&Path, &mut M) -> Result<Option<f64>>,
) -> Result<(Summary, PathBuf)> {
    let lr = args.lr.unwrap_or(args.optim.default_lr());
    let mut opt = args.optim.build(model.named_parameters(), lr, args.momentum, args.weight_decay)?;
    let steps = job.epochs * train.len().div_ceil(job.batch_size);
    let plan = schedule::parse(&args.schedule, steps, args.warmup)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/{}-{}-{}", job.task, job.model_name, timestamp())));
    let config = RunConfig {
        format: RUN_FORMAT,
        task: job.task.into(),
        model: job.model_name.clone(),
        input: job.input,
        classes: job.classes,
        normalization: job.normalization,
        data: job.data.clone(),
        epochs: job.epochs,
        batch_size: job.batch_size,
        seed: args.seed,
        optim: args.optim.name().to_string(),
        optimizer: opt.describe(),
        schedule: plan.describe(),
        clip_norm: args.clip_norm.map(|c| c as f32),
        tagger: job.tagger,
    };
    let threads = rayon::current_num_threads();
    println!("model     {} ({} parameters)", job.model_name, model.num_parameters());
    println!("optimizer {}", opt.describe());
    println!("schedule  {} over {steps} steps", plan.describe());
    let clip = args.clip_norm.map_or(String::new(), |c| format!(", clip-norm {c}"));
    println!(
        "training  {} epochs, batch size {}, seed {}, {threads} threads{clip}",
        job.epochs, job.batch_size, args.seed
    );
    let mut run_dir = RunDir::create(&out, &config)?;
    println!("run       {}", run_dir.path().display());

    let options = FitOptions {
        epochs: job.epochs,
        batch_size: job.batch_size,
        seed: args.seed,
        clip_norm: args.clip_norm.map(|c| c as f32),
        error_if_nonfinite: false,
        schedule: plan.schedule.clone(),
        plateau: plan.plateau.clone(),
        ..FitOptions::default()
    };
    let mut progress = Progress {
        bar: None,
        quiet: args.quiet,
        epochs: options.epochs,
        examples: train.len(),
        unit: job.unit,
        held_out: job.held_out,
    };
    let mut monitor = Monitor::new(args.monitor_every).with_log(&run_dir.path().join("diagnostics.csv"));
    let report = if args.monitor_every > 0 {
        fit(model, opt.as_mut(), train, Some(test), &options, &mut [&mut progress, &mut run_dir, &mut monitor])?
    } else {
        fit(model, opt.as_mut(), train, Some(test), &options, &mut [&mut progress, &mut run_dir])?
    };
    let last = report.epochs.last().expect("at least one epoch");
    let (test_loss, test_accuracy) = last.test.expect("evaluated on the test set");
    let test_f1 = finish(run_dir.path(), model)?;
    let summary = Summary {
        format: RUN_FORMAT,
        task: job.task.into(),
        model: job.model_name.clone(),
        parameters: model.num_parameters(),
        epochs: options.epochs,
        seed: args.seed,
        steps: report.steps,
        test_accuracy,
        test_loss,
        train_accuracy: last.train_accuracy,
        train_loss: last.train_loss,
        train_seconds: report.train_seconds,
        train_images_per_second: report.examples_per_second,
        threads,
        test_f1,
    };
    let path = run_dir.path().to_path_buf();
    run_dir.finish(model, opt.as_ref(), &summary)?;
    Ok((summary, path))
}
