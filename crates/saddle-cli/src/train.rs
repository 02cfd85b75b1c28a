//! `saddle train`: the flags become a [`RunSpec`]; the library's [`Trainer`]
//! runs it into a run directory while this file prints its progress.

use crate::schedule::{flag, SPEC_HELP};
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use saddle::data::ConlluColumn;
use saddle::diagnose::Watch;
use saddle::dist::DataParallel;
use saddle::nn::CellKind;
use saddle::optim::{Family, OptimizerSpec, Schedule};
use saddle::train::{
    EpochMetrics, ImageModel, Observer, OnNan, Outcome, Record, RunSpec, StepMetrics, Summary, TaggerSpec,
    Task as RunTask, Trainer, Tta,
};
use saddle::{Error, Result};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Args)]
#[command(
    after_help = "Examples:\n  saddle train mnist\n  saddle train mnist --epochs 3 --optim momentum --lr 0.05\n  saddle train mnist --data ~/fashion-mnist --out runs/fashion\n  saddle train images --data ~/cifar10\n  saddle train images --data ~/birds --size 100 --model resnet20\n  saddle train slots --data ~/atis\n  saddle train slots --data ~/ud-english-ewt --char-filters 30   (parts of speech, CoNLL-U)\n\nThe run directory gets config.json, metrics.csv, model.safetensors (PyTorch state-dict names)\nand summary.json, written last. Evaluate it with `saddle eval RUN`."
)]
pub struct TrainArgs {
    /// What to train: `mnist` is an image classifier on MNIST (bundled) or on any
    /// dataset in the same IDX layout given with --data (Fashion-MNIST, for one);
    /// `images` classifies colour photos (folders of JPEG/PNG files per class, or
    /// CIFAR-10's binary batches) given with --data; `slots` is a tagger that
    /// labels each word of a sentence: its slot, named entity or part of speech.
    #[arg(value_enum, required_unless_present = "resume")]
    pub task: Option<Task>,
    /// Under mpirun: batch norm takes its statistics over the whole batch of
    /// every rank (PyTorch's SyncBatchNorm), so that R ranks train the model
    /// of one process; by default each rank normalizes its own share, as DDP does.
    #[arg(long)]
    pub sync_batch_norm: bool,
    /// Continue the run in this directory from its last checkpoint, with the
    /// settings it was started with (so no other training flag may be given).
    #[arg(long, value_name = "RUN", conflicts_with_all = SPEC_FLAGS)]
    pub resume: Option<PathBuf>,
    /// Write a checkpoint every N steps (and at each epoch's end); 0: only at epoch ends.
    #[arg(long, default_value_t = saddle::train::CHECKPOINT_EVERY, value_name = "N")]
    pub checkpoint_every: usize,
    /// At a NaN or infinite loss or gradient: stop at once, keeping the last
    /// finite weights (and exit with an error), or continue.
    #[arg(long, value_enum, default_value_t = NanAction::Stop)]
    pub on_nan: NanAction,
    /// Network to train [images: speedrun (default), resnet20, lenet5 or mlp;
    /// mnist: lenet5 (default), mlp, resnet20 or speedrun; slots: rnn, lstm (default) or gru].
    /// A perceptron of another shape: mlp-W-W-… (hidden widths), then -sigmoid, -tanh or -linear
    /// for another activation than ReLU and -zeros to start every weight at zero
    /// (mlp-100-100-100-100-100-100-sigmoid: gradients that vanish through the layers).
    #[arg(long)]
    pub model: Option<String>,
    /// Passes over the training set [default: 3 for mnist, 10 for images, 20 for slots].
    #[arg(long, value_parser = crate::at_least::<1>)]
    pub epochs: Option<u32>,
    /// Examples (images, sentences) per optimizer step [default: 256 for mnist, 512 for images, 16 for slots];
    /// under mpirun, the whole batch of all ranks together, each training on its share.
    #[arg(long, value_parser = crate::at_least::<1>)]
    pub batch_size: Option<u32>,
    /// Learning rate [default: the task's recipe with its optimizer (mnist: 1.2e-2, images: 0.2, slots: 3e-3);
    /// with --optim: 0.05 for sgd, momentum and nesterov; 0.01 for adagrad; 1e-3 for rmsprop, adam and adamw].
    #[arg(long, value_parser = positive, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Optimizer [default: adam for mnist and slots; nesterov with weight decay 5e-4 for images].
    #[arg(long, value_parser = family_parser())]
    pub optim: Option<Family>,
    /// Momentum μ for `momentum`, `nesterov` (default 0.9) and `rmsprop` (default 0).
    #[arg(long, value_parser = non_negative, allow_negative_numbers = true)]
    pub momentum: Option<f64>,
    /// Weight decay λ (L2; decoupled for adamw) [default: 0; 0.01 for adamw, as PyTorch].
    #[arg(long, value_parser = non_negative, allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// Learning-rate schedule [default: onecycle:0.25 for mnist, up to η over the first quarter of
    /// the steps and down to near 0 over the rest; cosine for slots, which anneals η to 0 along half
    /// a cosine over the whole run; the recipe's for images] (see `saddle schedule --help` for every form).
    #[arg(long, long_help = SPEC_HELP)]
    pub schedule: Option<String>,
    /// Linear warm-up: the rate rises to --lr over this many steps, then the schedule runs over the remaining steps.
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
    /// images: train/<class>/*.jpg|*.png and test/<class>/… (without test/, a
    /// seeded --val-split of train/ is held out), or CIFAR-10's data_batch_*.bin;
    /// slots: ATIS `word:TAG … <=> intent` files, train/ and test/ with seq.in and
    /// seq.out, train.conll and test.conll, or train.conllu and test.conllu;
    /// default the generated travel corpus].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// No progress bar; one line per epoch.
    #[arg(long)]
    pub quiet: bool,
    /// Record the diagnostics (loss, gradient norms per layer, update ratio and
    /// cosine, clipping) every N steps into diagnostics.csv; 0 turns them off.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub monitor_every: usize,
    /// When the diagnostics show a problem while training (oscillation,
    /// exploding or vanishing gradients, a plateau, a rate too small): say so
    /// once per kind, or stop there with a checkpoint (exit status 3).
    #[arg(long, value_enum, default_value_t = StuckAction::Warn)]
    pub on_stuck: StuckAction,
    /// After training, run `saddle diagnose` on the run: verdicts, Hessian,
    /// landscape, and report.html.
    #[arg(long)]
    pub diagnose: bool,
    /// images: resize every image to H×W pixels (`32`, `100x80`) with an
    /// antialiasing filter; needed when the images' sizes differ.
    #[arg(long, value_name = "H[xW]", value_parser = image_size)]
    pub size: Option<(usize, usize)>,
    /// images (and mnist): augment training batches with any of crop[:PADDING],
    /// flip, cutout[:SIDE], or none [default: crop:2,flip for images, none for mnist].
    #[arg(long, value_name = "LIST")]
    pub augment: Option<String>,
    /// Label smoothing ε of the cross-entropy, in [0, 1) [default: 0.2 for images, 0 for mnist].
    #[arg(long, value_name = "EPS")]
    pub label_smoothing: Option<f32>,
    /// Test-time augmentation of the final evaluation, averaging the logits
    /// over views of each image: none, flip (the image and its mirror image)
    /// or flip-translate (also both moved by a pixel) [default: flip-translate
    /// for images with speedrun, flip for other image models, none for mnist].
    #[arg(long, value_name = "VIEWS", value_parser = tta)]
    pub tta: Option<Tta>,
    /// images: without a test/ folder, this share of train/ is the test set.
    #[arg(long, default_value_t = 0.1, value_name = "SHARE")]
    pub val_split: f32,
    /// slots: a second recurrent direction from each sentence's end
    /// [default: true; `--bidirectional false` for one direction].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub bidirectional: Option<bool>,
    /// slots: recurrent layers [default: 1].
    #[arg(long, value_parser = crate::at_least::<1>)]
    pub layers: Option<u32>,
    /// slots: word-vector size [default: 100].
    #[arg(long, value_parser = crate::at_least::<1>)]
    pub embedding_dim: Option<u32>,
    /// slots: recurrent state size [default: 200].
    #[arg(long, value_parser = crate::at_least::<1>)]
    pub hidden_size: Option<u32>,
    /// slots: words seen fewer times in training become <unk> [default: 1].
    #[arg(long)]
    pub min_count: Option<usize>,
    /// slots: dropout on the word vectors and the recurrent outputs [default: 0.5].
    #[arg(long, value_parser = dropout_rate)]
    pub dropout: Option<f32>,
    /// slots: each word's input also holds the vectors of K words on each
    /// side (a context window of 2K+1 words, as Mesnil et al. 2013) [default: 1].
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(0..=10))]
    pub context: Option<u32>,
    /// slots: a CRF output layer: tag-to-tag transition scores, trained by
    /// the likelihood of whole tag sequences and read by Viterbi decoding
    /// [default: true; `--crf false` for a softmax per word].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub crf: Option<bool>,
    /// slots: the CoNLL-U column to tag each word with: upos (universal parts
    /// of speech), xpos, feats or deprel.
    #[arg(long, default_value = "upos", value_name = "COLUMN")]
    pub tag_column: ConlluColumn,
    /// slots: character features per word, from a CNN over its characters
    /// as written (Ma & Hovy 2016); 0 for none [default: 30].
    #[arg(long, value_name = "F", value_parser = clap::value_parser!(u32).range(0..=4096))]
    pub char_filters: Option<u32>,
    /// slots: start the word embedding from pretrained vectors, a GloVe or
    /// word2vec text file (`word v1 v2 …` per line, gzip allowed) whose
    /// vectors have --embedding-dim numbers.
    #[arg(long, value_name = "FILE")]
    pub embeddings: Option<PathBuf>,
    /// slots: keep the pretrained word embedding as it is (no updates).
    #[arg(long, requires = "embeddings")]
    pub freeze_embeddings: bool,
    /// slots: character-vector size of the character features [default: 30].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub char_dim: Option<u32>,
}

/// The flags that make up a run's spec: `--resume` takes them from the run.
const SPEC_FLAGS: [&str; 34] = [
    "size",
    "augment",
    "label_smoothing",
    "tta",
    "val_split",
    "task",
    "model",
    "epochs",
    "batch_size",
    "lr",
    "optim",
    "momentum",
    "weight_decay",
    "schedule",
    "warmup",
    "clip_norm",
    "seed",
    "out",
    "data",
    "monitor_every",
    "checkpoint_every",
    "on_nan",
    "sync_batch_norm",
    "bidirectional",
    "layers",
    "embedding_dim",
    "hidden_size",
    "context",
    "crf",
    "tag_column",
    "char_filters",
    "char_dim",
    "embeddings",
    "freeze_embeddings",
];

#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub enum NanAction {
    /// Stop at once, before the update; the run keeps the last finite weights.
    Stop,
    /// Carry on, as PyTorch does.
    Continue,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub enum StuckAction {
    /// Print a warning with the numbers and what to try, and carry on.
    Warn,
    /// Print the warning, checkpoint and stop; `--resume` continues.
    Stop,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub enum Task {
    /// Classify 28×28 handwritten digits (or any IDX image dataset).
    Mnist,
    /// Classify colour photos: image folders (one per class) or CIFAR-10.
    Images,
    /// Tag each word of a sentence with its slot (ATIS, or the generated travel corpus).
    Slots,
}

/// `--optim`: the seven optimizers by name, each with its line of help.
pub fn family_parser() -> impl TypedValueParser<Value = Family> {
    let values = Family::ALL.map(|f| PossibleValue::new(f.name()).help(f.summary()));
    PossibleValuesParser::new(values).map(|name| name.parse::<Family>().expect("a listed name"))
}

fn dropout_rate(s: &str) -> std::result::Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        _ => Err(format!("expected a probability in [0, 1), got '{s}'")),
    }
}

/// `--size`: `N` for N×N, or `HxW`.
fn image_size(s: &str) -> std::result::Result<(usize, usize), String> {
    let parse = |t: &str| t.trim().parse::<usize>().ok().filter(|&v| (1..=4096).contains(&v));
    let size = match s.split_once(['x', 'X']) {
        Some((h, w)) => parse(h).zip(parse(w)),
        None => parse(s).map(|n| (n, n)),
    };
    size.ok_or_else(|| format!("expected N or HxW with sides from 1 to 4096 pixels, got '{s}'"))
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

/// Progress bar per epoch (images/s, ETA, running loss and accuracy), a line per epoch, and the
/// live diagnosis's warnings (which may ask to stop, with --on-stuck stop).
struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
    epochs: usize,
    examples: usize,
    /// images, sentences.
    unit: &'static str,
    /// What the held-out set is called: test, dev.
    held_out: &'static str,
    /// Live warnings, when the run records diagnostics.
    watch: Option<Watch>,
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
    fn should_stop(&self) -> bool {
        self.watch.as_ref().is_some_and(|w| w.should_stop())
    }
    fn on_record(&mut self, record: &Record, layers: &[String]) -> Result<()> {
        self.watch.as_mut().map_or(Ok(()), |w| w.on_record(record, layers))
    }
    fn on_step(&mut self, m: &StepMetrics) -> Result<()> {
        if let Some(watch) = &mut self.watch {
            for f in watch.take_warnings() {
                let text = format!(
                    "warning   step {}: {} over steps {}–{}\n{}\n          try: {}",
                    m.step,
                    f.verdict,
                    f.from_step,
                    f.to_step,
                    f.evidence.iter().map(|l| format!("          {l}")).collect::<Vec<_>>().join("\n"),
                    f.advice
                );
                match &self.bar {
                    Some(bar) => bar.suspend(|| println!("{text}")),
                    None => println!("{text}"),
                }
            }
        }
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
pub fn timestamp() -> String {
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

/// Set by the first Ctrl-C: training stops after the step in progress.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
    // A second Ctrl-C ends the program at once, as usual.
    // SAFETY: signal() is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
}

/// Stops training after the step in progress once Ctrl-C was pressed.
struct StopOnInterrupt;

impl Observer for StopOnInterrupt {
    fn should_stop(&self) -> bool {
        INTERRUPTED.load(Ordering::Relaxed)
    }
}

/// Trains a run; one rank of several under `parallel`, where rank 0 alone
/// prints (and the library has rank 0 alone write the run).
pub fn run(args: TrainArgs, parallel: Option<&DataParallel>) -> Result<ExitCode> {
    if args.diagnose && args.monitor_every == 0 {
        return Err(Error::config("--diagnose", "needs the diagnostics; drop --monitor-every 0"));
    }
    let root = parallel.is_none_or(DataParallel::is_root);
    let mut trainer = open(&args, parallel, root)?;
    if !root {
        // Another rank: train its shares, quietly; rank 0 prints and writes.
        return match trainer.train(&mut [&mut StopOnInterrupt])? {
            Outcome::Diverged(_) => Ok(ExitCode::FAILURE),
            Outcome::Stopped { .. } => Ok(ExitCode::from(130)),
            Outcome::Finished(_) => Ok(ExitCode::SUCCESS),
        };
    }
    print_plan(&trainer);
    let spec = trainer.config().spec.clone();
    let (unit, held_out) = match spec.task {
        RunTask::Mnist { .. } | RunTask::Images { .. } => ("images", "test"),
        RunTask::Slots { .. } => ("sentences", "dev"),
    };
    let examples = trainer.data().sizes.0;
    let watch = (spec.monitor_every > 0).then(|| Watch::new(args.on_stuck == StuckAction::Stop));
    let mut progress = Progress { bar: None, quiet: args.quiet, epochs: spec.epochs, examples, unit, held_out, watch };
    // SAFETY: installs a handler that only stores to an atomic and calls signal().
    unsafe {
        libc::signal(libc::SIGINT, on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t);
    }
    let outcome = trainer.train(&mut [&mut progress, &mut StopOnInterrupt])?;
    if let Some(bar) = progress.bar.take() {
        bar.finish_and_clear();
    }
    let dir = trainer.dir().to_path_buf();
    match outcome {
        Outcome::Finished(summary) => print_done(&summary, unit, &dir),
        Outcome::Stopped { step, .. } if progress.should_stop() => {
            let kind = progress.watch.as_ref().and_then(|w| w.warned().first().copied());
            println!(
                "stopped   at step {step} (--on-stuck stop: {}), with a checkpoint; continue with: saddle train --resume {}",
                kind.map_or(String::new(), |k| k.to_string()),
                dir.display()
            );
            return Ok(ExitCode::from(3));
        }
        Outcome::Stopped { step, .. } => {
            println!(
                "stopped   at step {step}, with a checkpoint; continue with: saddle train --resume {}",
                dir.display()
            );
            return Ok(ExitCode::from(130));
        }
        Outcome::Diverged(summary) => {
            let d = summary.diverged.expect("a diverged run says where");
            return Err(Error::format(
                &dir,
                format!(
                    "training {d}; the run keeps the weights from before it: `saddle diagnose {}` says more",
                    dir.display()
                ),
            ));
        }
    }
    if args.diagnose {
        println!();
        crate::diagnose::run(crate::diagnose::DiagnoseArgs::for_run(dir))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The run to train: the one `--resume` names, or a new one from the flags.
fn open(args: &TrainArgs, parallel: Option<&DataParallel>, root: bool) -> Result<Trainer> {
    match (&args.resume, args.task) {
        (Some(dir), _) => {
            let t = match parallel {
                Some(dp) => Trainer::resume_distributed(dir, dp.clone())?,
                None => Trainer::resume(dir)?,
            };
            let at = t.position();
            if root {
                println!("resuming {} at step {} (epoch {}, batch {})", dir.display(), at.step, at.epoch + 1, at.batch);
            }
            Ok(t)
        }
        (None, Some(task)) => {
            let spec = spec(args, task)?;
            let out = args.out.clone().unwrap_or_else(|| {
                PathBuf::from(format!("runs/{}-{}-{}", spec.task.name(), spec.model_name(), timestamp()))
            });
            create(&spec, &out, args.quiet || !root, parallel)
        }
        (None, None) => unreachable!("clap requires TASK without --resume"),
    }
}

/// A new run of `spec` in `out`, with a progress bar while an image folder is decoded.
fn create(spec: &RunSpec, out: &std::path::Path, quiet: bool, parallel: Option<&DataParallel>) -> Result<Trainer> {
    let bar = (!quiet && matches!(spec.task, RunTask::Images { .. })).then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("loading   [{bar:28}] {pos:>6}/{len} images {per_sec:>12} ETA {eta:>3}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar
    });
    let on_load = |done: usize, total: usize| {
        if let Some(b) = &bar {
            b.set_length(total as u64);
            b.set_position(done as u64);
        }
    };
    let loading = std::time::Instant::now();
    let trainer = match parallel {
        Some(dp) => Trainer::create_distributed(spec, out, &on_load, dp.clone()),
        None => Trainer::create_with(spec, out, &on_load),
    }
    .map_err(flag_of_field)?;
    if let Some(b) = bar {
        b.finish_and_clear();
        println!(
            "loaded    {} images in {:.1} s",
            trainer.data().sizes.0 + trainer.data().sizes.1,
            loading.elapsed().as_secs_f64()
        );
    }
    Ok(trainer)
}

fn tta(text: &str) -> std::result::Result<Tta, String> {
    text.parse().map_err(|e: Error| e.to_string())
}

/// The run the flags describe; each bad value names its flag.
pub(crate) fn spec(args: &TrainArgs, task: Task) -> Result<RunSpec> {
    let image_model =
        |default: &str| ImageModel::from_name(args.model.as_deref().unwrap_or(default)).map_err(flag("--model"));
    let base = match task {
        Task::Mnist => RunSpec::mnist(),
        Task::Images => RunSpec::images_recipe(image_model("speedrun")?),
        Task::Slots => RunSpec::slots(),
    };
    let task = match task {
        Task::Mnist => RunTask::Mnist { model: image_model("lenet5")? },
        Task::Images => RunTask::Images { model: image_model("speedrun")?, size: args.size, val_split: args.val_split },
        Task::Slots => match &base.task {
            RunTask::Slots { tagger: recipe } => RunTask::Slots { tagger: tagger(args, recipe)? },
            _ => unreachable!("RunSpec::slots() is a tagger's run"),
        },
    };
    let is_images = |what: &str| -> Result<()> {
        match task {
            RunTask::Slots { .. } => Err(Error::config(what, "is for image runs (mnist, images), not slots")),
            _ => Ok(()),
        }
    };
    if args.size.is_some() && !matches!(task, RunTask::Images { .. }) {
        return Err(Error::config("--size", "is for `saddle train images`; MNIST's images are 28×28"));
    }
    let augment = match &args.augment {
        Some(text) => {
            is_images("--augment")?;
            text.parse().map_err(flag("--augment"))?
        }
        None => base.augment,
    };
    for (given, name) in [(args.label_smoothing.is_some(), "--label-smoothing"), (args.tta.is_some(), "--tta")] {
        if given {
            is_images(name)?;
        }
    }
    let mut schedule: Schedule = match &args.schedule {
        Some(text) => text.parse().map_err(flag("--schedule"))?,
        None => base.schedule.clone(),
    };
    if args.warmup > 0 {
        schedule = Schedule::Warmup { steps: args.warmup, inner: Box::new(schedule) };
    }
    let spec = RunSpec {
        task,
        data: args.data.clone(),
        epochs: args.epochs.map_or(base.epochs, |e| e as usize),
        batch_size: args.batch_size.map_or(base.batch_size, |b| b as usize),
        seed: args.seed,
        optimizer: optimizer(args, base.optimizer)?,
        schedule,
        clip_norm: args.clip_norm.map(|c| c as f32),
        monitor_every: args.monitor_every,
        checkpoint_every: args.checkpoint_every,
        on_nan: match args.on_nan {
            NanAction::Stop => OnNan::Stop,
            NanAction::Continue => OnNan::Continue,
        },
        augment,
        label_smoothing: args.label_smoothing.unwrap_or(base.label_smoothing),
        tta: args.tta.unwrap_or(base.tta),
        lookahead: base.lookahead,
        sync_batch_norm: args.sync_batch_norm,
        norm_params: base.norm_params,
    };
    spec.validate().map_err(flag_of_field)?;
    Ok(spec)
}

/// A spec field's error, named by its flag.
fn flag_of_field(e: Error) -> Error {
    match e {
        Error::Config { field, message } => {
            let name = match field.as_str() {
                "label_smoothing" | "val_split" | "size" | "epochs" | "batch_size" | "clip_norm" | "data" => {
                    format!("--{}", field.replace('_', "-"))
                }
                _ => field,
            };
            Error::Config { field: name, message }
        }
        other => other,
    }
}

/// `--optim` (or the task's own optimizer) with `--lr`, `--momentum` and
/// `--weight-decay`; a momentum the optimizer has no use for is refused, not ignored.
fn optimizer(args: &TrainArgs, base: OptimizerSpec) -> Result<OptimizerSpec> {
    let (family, mut spec) = match args.optim {
        Some(f) => (f, f.spec().with_lr(args.lr.unwrap_or(f.default_lr()))),
        None => (base.family(), args.lr.map_or(base, |lr| base.with_lr(lr))),
    };
    if let Some(mu) = args.momentum {
        match &mut spec {
            OptimizerSpec::Sgd(c) if c.momentum > 0.0 => c.momentum = mu,
            OptimizerSpec::RmsProp(c) => c.momentum = mu,
            _ => {
                return Err(Error::config(
                    "--momentum",
                    format!("{} has no momentum to set; use --optim momentum, nesterov or rmsprop", family.name()),
                ))
            }
        }
    }
    Ok(args.weight_decay.map_or(spec, |wd| spec.with_weight_decay(wd)))
}

/// The tagger the flags describe, each flag not given taken from `base` (the recipe).
fn tagger(args: &TrainArgs, base: &TaggerSpec) -> Result<TaggerSpec> {
    let cell = match args.model.as_deref() {
        None => base.cell,
        Some(name) => CellKind::from_name(name).filter(|&k| k != CellKind::RnnRelu).ok_or_else(|| {
            Error::config("--model", format!("'{name}' is not a recurrent model; expected rnn, lstm or gru"))
        })?,
    };
    let size = |flag: Option<u32>, default: usize| flag.map_or(default, |v| v as usize);
    Ok(TaggerSpec {
        cell,
        embedding_dim: size(args.embedding_dim, base.embedding_dim),
        hidden_size: size(args.hidden_size, base.hidden_size),
        num_layers: size(args.layers, base.num_layers),
        bidirectional: args.bidirectional.unwrap_or(base.bidirectional),
        dropout: args.dropout.unwrap_or(base.dropout),
        context: size(args.context, base.context),
        min_count: args.min_count.unwrap_or(base.min_count),
        crf: args.crf.unwrap_or(base.crf),
        tag_column: args.tag_column,
        char_dim: size(args.char_dim, base.char_dim),
        char_filters: size(args.char_filters, base.char_filters),
        embeddings: args.embeddings.clone(),
        freeze_embeddings: args.freeze_embeddings,
    })
}

/// What the run will do: data, model, optimizer, schedule, batches, folder.
fn print_plan(t: &Trainer) {
    let (c, d) = (t.config(), t.data());
    match &c.spec.task {
        RunTask::Mnist { .. } | RunTask::Images { .. } => {
            let names = c.class_names.as_ref().map_or(String::new(), |n| {
                let shown: Vec<&str> = n.iter().take(10).map(String::as_str).collect();
                format!(": {}{}", shown.join(", "), if n.len() > 10 { ", …" } else { "" })
            });
            println!(
                "data      {} ({} training, {} test images of {:?}, {} classes{names})",
                d.source,
                d.sizes.0,
                d.sizes.1,
                c.input.unwrap_or_default(),
                c.classes
            );
            let s = &c.spec;
            if !s.augment.is_none() || s.label_smoothing > 0.0 || s.tta != Tta::None || s.lookahead.is_some() {
                let lookahead = s.lookahead.map_or("none".into(), |l| format!("every {} steps", l.every));
                println!(
                    "recipe    augment {}, label smoothing {}, TTA {}, lookahead {lookahead}, batch-norm rate ×{}",
                    s.augment, s.label_smoothing, s.tta, s.norm_params.lr_scale
                );
            }
        }
        RunTask::Slots { .. } => {
            let v = d.vocabularies.as_ref().expect("a tagger's run has vocabularies");
            println!(
                "data      {}: {} training, {} dev, {} test sentences; {} words, {} tags",
                d.source,
                d.sizes.0,
                d.sizes.1,
                d.test.len(),
                v.words.len(),
                v.tags.len()
            );
            if let (Some(vectors), RunTask::Slots { tagger }) = (&d.pretrained, &c.spec.task) {
                let path = tagger.embeddings.as_deref().unwrap_or(std::path::Path::new("?")).display();
                let frozen = if tagger.freeze_embeddings { ", frozen" } else { "" };
                println!(
                    "vectors   {path}: {} of {} words found ({} vectors of {}{frozen})",
                    vectors.found(),
                    v.words.len() - 2,
                    vectors.lines,
                    vectors.dim
                );
            }
        }
    }
    let s = &c.spec;
    println!("model     {} ({} parameters)", s.model_name(), saddle::nn::Module::num_parameters(t.model()));
    println!("optimizer {}", s.optimizer);
    println!("schedule  {} over {} steps", t.scheduler().describe(), t.scheduler().total_steps);
    let clip = s.clip_norm.map_or(String::new(), |c| format!(", clip-norm {c}"));
    let threads = rayon::current_num_threads();
    match t.parallel() {
        None => println!(
            "training  {} epochs, batch size {}, seed {}, {threads} threads{clip}",
            s.epochs, s.batch_size, s.seed
        ),
        Some(dp) => {
            let (b, r) = (s.batch_size, dp.size());
            let share = if b % r == 0 { format!("{}", b / r) } else { format!("{}–{}", b / r, b.div_ceil(r)) };
            println!(
                "training  {} epochs, batch size {b} in all ({share} per rank), seed {}, {r} ranks × {threads} threads{clip}",
                s.epochs, s.seed
            );
        }
    }
    println!("run       {}", t.dir().display());
}

fn print_done(s: &Summary, unit: &str, dir: &std::path::Path) {
    let held_out =
        format!("{0} accuracy {1:.2}%, {0} loss {2:.4}", s.held_out, 100.0 * s.held_out_accuracy, s.held_out_loss);
    let result = match (s.test_f1, s.test_token_accuracy) {
        (Some(f1), Some(acc)) => format!("{held_out}; test slot F1 {f1:.2}, test token accuracy {:.2}%", 100.0 * acc),
        (None, Some(acc)) => format!("{held_out}; test token accuracy {:.2}%", 100.0 * acc),
        _ => held_out,
    };
    println!(
        "done      {result}; {:.1} s training ({:.0} {unit}/s); saved to {}",
        s.train_seconds,
        s.train_images_per_second,
        dir.display()
    );
}
