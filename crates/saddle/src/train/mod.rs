//! Training: the run specification ([`RunSpec`]) and the run API
//! ([`Trainer`] to create, train and resume a run; [`Run`] to open a
//! finished one), over [`fit`], a loop you can read aloud; [`evaluate`]; the
//! [`Observer`] trait through which progress bars, run logs and the
//! [`Monitor`] watch training, so that `train` never depends on `diagnose`.
//!
//! Uses: `nn`, `optim`, `data`, `dist`, `io`, `tensor`, `error`.

mod data;
mod lr_find;
mod metrics;
mod monitor;
mod run;
mod spec;
mod tta;

pub use data::{parameter_count, Model, OnLoad, RunData, Vocabularies, MAX_PARAMETERS};
pub use lr_find::{lr_find, LrFind, LrFindOptions};
pub use metrics::{confusion_matrix, slot_metrics, Evaluation};
pub use monitor::{layer_of, read_records, write_records, Monitor, Record};
pub use run::{Evaluated, Outcome, Run, Summary, Trainer};
pub use spec::{ImageModel, NormParams, RunConfig, RunSpec, TaggerSpec, Task, CHECKPOINT_EVERY, RUN_FORMAT};
pub use tta::Tta;

use crate::data::{Dataset, Loader};
use crate::dist::DataParallel;
use crate::nn::Module;
use crate::ops::{with_batch_norm_sums, CrossEntropyOptions};
use crate::optim::{clip_grad_norm, global_grad_norm, Lookahead, LrScheduler, Optimizer};
use crate::{no_grad, Result};
use std::time::Instant;

/// Settings of [`fit`].
#[derive(Clone, Debug, PartialEq)]
pub struct FitOptions {
    /// Passes over the training set.
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// Seed of the shuffles (the model's initialization has its own).
    pub seed: u64,
    /// Clip the global gradient norm to this value.
    pub clip_norm: Option<f32>,
    /// Stop with an error if the gradient norm is NaN or infinite.
    pub error_if_nonfinite: bool,
    /// Where to start: resuming a run starts where its checkpoint stopped,
    /// with the same batches and learning rates as an uninterrupted run.
    pub start: Position,
    /// Return once this many steps (counted over all epochs) are done.
    pub max_steps: Option<usize>,
    /// What a NaN or infinite loss or gradient norm does.
    pub on_nan: OnNan,
    /// Batch size for evaluation.
    pub eval_batch_size: usize,
    /// Label smoothing ε of the training loss (0: plain cross-entropy).
    pub label_smoothing: f32,
    /// Test-time augmentation of the evaluation at the run's end (the
    /// evaluations before are plain: they only show the way).
    pub tta: Tta,
    /// Lookahead over the optimizer's weights.
    pub lookahead: Option<Lookahead>,
    /// Data parallelism: this process is one rank of several. Every rank
    /// draws the same batches (`batch_size` is the global batch) and trains
    /// on its [`shard`](crate::data::shard) of each; gradients, the step's
    /// loss and counts, and the evaluation are reduced over the ranks, so
    /// every rank sees the metrics of the whole batch and takes the same
    /// decisions. Observers on every rank are called; only rank 0's should write.
    pub parallel: Option<DataParallel>,
    /// Under `parallel`, batch norm in training takes its statistics over
    /// the whole batch, every rank's share (PyTorch's `SyncBatchNorm`),
    /// instead of over this rank's share (DDP's default).
    pub sync_batch_norm: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 64,
            seed: 0,
            clip_norm: None,
            error_if_nonfinite: false,
            start: Position::default(),
            max_steps: None,
            on_nan: OnNan::Stop,
            eval_batch_size: 64,
            label_smoothing: 0.0,
            tta: Tta::None,
            lookahead: None,
            parallel: None,
            sync_batch_norm: false,
        }
    }
}

/// What one optimizer step measured.
#[derive(Clone, Debug, PartialEq)]
pub struct StepMetrics {
    /// Steps taken before this one (0-based).
    pub step: usize,
    /// The epoch (0-based).
    pub epoch: usize,
    /// Steps per epoch.
    pub steps_per_epoch: usize,
    /// Mean loss of the batch.
    pub loss: f32,
    /// Learning rate used.
    pub lr: f32,
    /// Global gradient norm before clipping.
    pub grad_norm: f32,
    /// Whether clipping scaled the gradient down at this step.
    pub clipped: bool,
    /// Examples in the batch.
    pub batch_size: usize,
    /// Correctly classified examples in the batch.
    pub correct: usize,
    /// Running mean loss and accuracy over the epoch so far.
    pub running_loss: f32,
    /// Running accuracy over the epoch so far.
    pub running_accuracy: f32,
}

/// What one epoch measured.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochMetrics {
    /// The epoch (0-based).
    pub epoch: usize,
    /// Steps taken so far, in all epochs.
    pub steps: usize,
    /// Mean training loss over the epoch (running, as Keras reports it).
    #[serde(with = "crate::io::float")]
    pub train_loss: f32,
    /// Training accuracy over the epoch (running).
    #[serde(with = "crate::io::float")]
    pub train_accuracy: f32,
    /// Loss and accuracy on the held-out set, if one was given.
    #[serde(with = "crate::io::float_pair")]
    pub test: Option<(f32, f32)>,
    /// Seconds spent training in this epoch (evaluation excluded).
    pub train_seconds: f64,
    /// Examples (images, sentences) trained on in this epoch.
    pub examples: usize,
}

/// Watches training. Every method has a default that does nothing.
pub trait Observer: Send {
    /// After the backward pass of step `step` (0-based), before clipping and
    /// the update: `params` hold their gradients and their old values.
    fn before_update(&mut self, _step: usize, _params: &[(String, crate::Tensor)]) -> Result<()> {
        Ok(())
    }
    /// After each optimizer step.
    fn on_step(&mut self, _m: &StepMetrics) -> Result<()> {
        Ok(())
    }
    /// After each epoch's evaluation.
    fn on_epoch(&mut self, _m: &EpochMetrics) -> Result<()> {
        Ok(())
    }
    /// After the run's [`Monitor`] took a record (every `monitor_every`
    /// steps, just before that step's `on_step`), with the names of the
    /// layers of its `layer_norms`. Only [`Trainer::train`] calls it: with
    /// [`fit`] alone, a [`Monitor`] among the observers keeps its records.
    fn on_record(&mut self, _record: &Record, _layers: &[String]) -> Result<()> {
        Ok(())
    }
    /// Asked after each step and each epoch: `true` ends training there (the
    /// run API checkpoints first, so the run can resume).
    fn should_stop(&self) -> bool {
        false
    }
}

/// What a NaN or infinite loss or gradient norm does to training.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnNan {
    /// Stop at once, before the update: the weights stay finite.
    #[default]
    Stop,
    /// Carry on (as PyTorch does).
    Continue,
}

/// The running sums of the epoch in progress.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochSums {
    /// Σ batch loss × labelled rows.
    #[serde(with = "crate::io::float")]
    pub loss: f64,
    /// Rows classified correctly.
    pub correct: usize,
    /// Labelled rows (images, or words for a tagger).
    pub seen: usize,
    /// Examples (images, sentences).
    pub examples: usize,
    /// Seconds spent in training steps.
    pub seconds: f64,
}

/// Where training stands: the next batch, and what its epoch has summed so far.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    /// The epoch of the next batch (0-based).
    pub epoch: usize,
    /// Batches of that epoch already trained.
    pub batch: usize,
    /// Steps taken, over all epochs.
    pub step: usize,
    /// The epoch's sums so far.
    pub sums: EpochSums,
}

/// How and where training diverged.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Divergence {
    /// The step (0-based) whose loss or gradient was not finite; its update was not applied.
    pub step: usize,
    /// The batch loss at that step.
    #[serde(with = "crate::io::float")]
    pub loss: f32,
    /// The global gradient norm at that step.
    #[serde(with = "crate::io::float")]
    pub grad_norm: f32,
    /// The learning rate the step would have used.
    #[serde(with = "crate::io::float")]
    pub lr: f64,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "diverged at step {}: loss {}, gradient norm {}, learning rate {:e}",
            self.step, self.loss, self.grad_norm, self.lr
        )
    }
}

/// The outcome of [`fit`].
#[derive(Clone, Debug, PartialEq)]
pub struct FitReport {
    /// One entry per epoch.
    pub epochs: Vec<EpochMetrics>,
    /// Seconds spent in training steps (evaluation excluded).
    pub train_seconds: f64,
    /// Training examples processed per second of training.
    pub examples_per_second: f64,
    /// Training examples processed in this call.
    pub examples: usize,
    /// Optimizer steps taken, over all epochs.
    pub steps: usize,
    /// Where training stopped: at the end, at `max_steps`, where an observer asked, or at a divergence.
    pub position: Position,
    /// Set when a non-finite loss or gradient stopped training ([`OnNan::Stop`]).
    pub diverged: Option<Divergence>,
}

/// Trains a classifier with softmax cross-entropy, from `o.start` to the end
/// of epoch `o.epochs − 1`.
///
/// Each step: next batch (this rank's share of it, under
/// [`FitOptions::parallel`]), zero grads, forward, loss, backward (of the
/// loss weighted by this rank's share of the rows, then the gradients summed
/// over the ranks), clip, lr = schedule(step), step, lookahead, metrics,
/// observers. The run is
/// `lr.total_steps` long (for a constant rate without a length, these
/// epochs): its last evaluation gets the test-time augmentation, and
/// lookahead syncs against it. After each epoch: evaluate
/// on `test`, tell the schedule the epoch's loss (reduce-on-plateau),
/// observers. It returns early, with the [`Position`] to resume from, when
/// `o.max_steps` steps are done, when an observer asks to stop, or when a
/// loss or gradient is not finite (with [`OnNan::Stop`]; that step's update
/// is not applied).
///
/// It first calls [`memory::keep_freed_memory`](crate::memory::keep_freed_memory),
/// so that each step's tensors reuse the last step's freed blocks instead of
/// faulting in fresh pages (a library's LeNet-5 steps took 1.3× as long without).
pub fn fit(
    model: &mut dyn Module,
    opt: &mut Optimizer,
    lr: &mut LrScheduler,
    train: &dyn Dataset,
    test: Option<&dyn Dataset>,
    o: &FitOptions,
    observers: &mut [&mut dyn Observer],
) -> Result<FitReport> {
    crate::memory::keep_freed_memory();
    crate::tensor::on_worker(|| fit_on_this_thread(model, opt, lr, train, test, o, observers))
}

/// [`fit`]'s loop, on the thread that calls it.
fn fit_on_this_thread(
    model: &mut dyn Module,
    opt: &mut Optimizer,
    lr: &mut LrScheduler,
    train: &dyn Dataset,
    test: Option<&dyn Dataset>,
    o: &FitOptions,
    observers: &mut [&mut dyn Observer],
) -> Result<FitReport> {
    let loader = Loader { len: train.len(), batch_size: o.batch_size, shuffle: true, drop_last: false, seed: o.seed };
    let steps_per_epoch = loader.batches_per_epoch();
    // The run's length: the schedule's, or these epochs for a constant rate without one.
    let run_steps = if lr.total_steps > 0 { lr.total_steps } else { o.epochs * steps_per_epoch };
    let loss_options = CrossEntropyOptions { label_smoothing: o.label_smoothing, ..Default::default() };
    let sync = o.parallel.as_ref().filter(|_| o.sync_batch_norm).map(DataParallel::replica_sum);
    let (mut pos, mut epochs, mut diverged) = (o.start.clone(), Vec::new(), None);
    let (mut train_seconds, mut examples) = (0.0, 0usize);
    'epochs: while pos.epoch < o.epochs {
        model.set_training(true);
        let batches = loader.epoch(pos.epoch);
        for batch in batches.iter().skip(pos.batch) {
            let started = Instant::now();
            if o.max_steps.is_some_and(|m| pos.step >= m) {
                break 'epochs;
            }
            crate::threads::keep_workers_polling();
            opt.zero_grad();
            // This rank's share; a batch smaller than the ranks goes whole to each (weighted 1/R below).
            let mine = match &o.parallel {
                Some(dp) if batch.len() >= dp.size() => dp.share(batch),
                _ => &batch[..],
            };
            let (x, y) = train.train_batch(mine, pos.epoch);
            let (logits, loss) = with_batch_norm_sums(sync.clone(), || {
                let logits = model.forward(&x);
                let loss = model.loss(&x, &logits, &y, loss_options);
                (logits, loss)
            });
            let correct = metrics::count_correct(&model.predict(&x, &logits), &y);
            let counted = metrics::counted(&y);
            let (loss, correct, counted) = match &o.parallel {
                None => {
                    loss.backward();
                    (loss.item(), correct, counted)
                }
                Some(dp) => {
                    // The whole batch's rows, loss and hits; this rank's loss weighted by its share of the rows.
                    let mut sums = [counted as f64, loss.item() as f64 * counted as f64, correct as f64];
                    dp.sum(&mut sums);
                    let n = sums[0];
                    loss.mul_scalar(if n > 0.0 { (counted as f64 / n) as f32 } else { 0.0 }).backward();
                    dp.sum_gradients(opt.params());
                    ((sums[1] / n.max(1.0)) as f32, sums[2] as usize, n as usize)
                }
            };
            for ob in observers.iter_mut() {
                ob.before_update(pos.step, opt.params())?;
            }
            let grad_norm = match o.clip_norm {
                Some(c) => clip_grad_norm(opt.params(), c, o.error_if_nonfinite)?,
                None => global_grad_norm(opt.params()),
            };
            let rate = lr.lr(pos.step);
            if o.on_nan == OnNan::Stop && !(loss.is_finite() && grad_norm.is_finite()) {
                diverged = Some(Divergence { step: pos.step, loss, grad_norm, lr: rate });
                break 'epochs;
            }
            opt.set_lr(rate);
            opt.step();
            if let Some(la) = &o.lookahead {
                la.after_step(opt, pos.step + 1, run_steps);
            }

            let s = &mut pos.sums;
            (s.loss, s.correct, s.seen, s.examples) = (
                s.loss + loss as f64 * counted as f64,
                s.correct + correct,
                s.seen + counted,
                s.examples + batch.len(),
            );
            let seconds = started.elapsed().as_secs_f64();
            (s.seconds, train_seconds, examples) =
                (s.seconds + seconds, train_seconds + seconds, examples + batch.len());
            let m = StepMetrics {
                step: pos.step,
                epoch: pos.epoch,
                steps_per_epoch,
                loss,
                lr: rate as f32,
                grad_norm,
                clipped: o.clip_norm.is_some_and(|c| grad_norm > c),
                batch_size: batch.len(),
                correct,
                running_loss: (s.loss / s.seen.max(1) as f64) as f32,
                running_accuracy: s.correct as f32 / s.seen.max(1) as f32,
            };
            for ob in observers.iter_mut() {
                ob.on_step(&m)?;
            }
            (pos.step, pos.batch) = (pos.step + 1, pos.batch + 1);
            if stop_agreed(observers, o.parallel.as_ref()) {
                break 'epochs;
            }
        }
        let tta = if pos.step >= run_steps { o.tta } else { Tta::None };
        let m = end_epoch(model, lr, test, &pos, o, tta);
        for ob in observers.iter_mut() {
            ob.on_epoch(&m)?;
        }
        epochs.push(m);
        pos = Position { epoch: pos.epoch + 1, batch: 0, step: pos.step, sums: EpochSums::default() };
        if stop_agreed(observers, o.parallel.as_ref()) {
            break;
        }
    }
    model.set_training(true);
    Ok(FitReport {
        epochs,
        train_seconds,
        examples_per_second: examples as f64 / train_seconds.max(1e-9),
        examples,
        steps: pos.step,
        position: pos,
        diverged,
    })
}

/// Whether an observer asks to stop; under data parallelism, an observer on
/// any rank (all ranks stop at the same step).
fn stop_agreed(observers: &[&mut dyn Observer], parallel: Option<&DataParallel>) -> bool {
    let stop = observers.iter().any(|ob| ob.should_stop());
    parallel.map_or(stop, |dp| dp.any(stop))
}

/// The end of an epoch: evaluation on `test` (sharded over the ranks, with
/// rank 0's batch-norm estimates), the schedule told the epoch's loss, and
/// the epoch's metrics.
fn end_epoch(
    model: &mut dyn Module,
    lr: &mut LrScheduler,
    test: Option<&dyn Dataset>,
    pos: &Position,
    o: &FitOptions,
    tta: Tta,
) -> EpochMetrics {
    let s = &pos.sums;
    let test = test.map(|t| {
        if let Some(dp) = &o.parallel {
            dp.broadcast_buffers(model);
        }
        let e = evaluate_on_this_thread(model, t, o.eval_batch_size, tta, o.parallel.as_ref());
        (e.loss, e.accuracy)
    });
    let train_loss = (s.loss / s.seen.max(1) as f64) as f32;
    lr.end_epoch(test.map_or(train_loss, |(l, _)| l) as f64);
    EpochMetrics {
        epoch: pos.epoch,
        steps: pos.step,
        train_loss,
        train_accuracy: s.correct as f32 / s.seen.max(1) as f32,
        test,
        train_seconds: s.seconds,
        examples: s.examples,
    }
}

/// Loss, accuracy and predictions of `model` on all of `data`, in evaluation
/// mode and without recording a graph. Rows labelled [`IGNORE`](crate::data::IGNORE)
/// (padding) count for nothing. Leaves the model in evaluation mode.
pub fn evaluate(model: &mut dyn Module, data: &dyn Dataset, batch_size: usize) -> Evaluation {
    evaluate_tta(model, data, batch_size, Tta::None)
}

/// [`evaluate`] with test-time augmentation ([`Tta`]).
pub fn evaluate_tta(model: &mut dyn Module, data: &dyn Dataset, batch_size: usize, tta: Tta) -> Evaluation {
    crate::tensor::on_worker(|| evaluate_on_this_thread(model, data, batch_size, tta, None))
}

/// [`evaluate_tta`] on the thread that calls it; under data parallelism each
/// rank evaluates its [`shard`](crate::data::shard) of `data`, and every rank
/// gets the whole evaluation, predictions in the order of `data`.
fn evaluate_on_this_thread(
    model: &mut dyn Module,
    data: &dyn Dataset,
    batch_size: usize,
    tta: Tta,
    parallel: Option<&DataParallel>,
) -> Evaluation {
    model.set_training(false);
    let (mut loss_sum, mut counted, mut predictions, mut labels) = (0.0f64, 0usize, Vec::new(), Vec::new());
    let all: Vec<usize> = (0..data.len()).collect();
    let mine = parallel.map_or(&all[..], |dp| dp.share(&all));
    no_grad(|| {
        for batch in mine.chunks(batch_size.max(1)) {
            crate::threads::keep_workers_polling();
            let (x, y) = data.batch(batch);
            let logits = tta.logits(model, &x);
            let loss = model.loss(&x, &logits, &y, CrossEntropyOptions::default());
            let n = metrics::counted(&y);
            if n > 0 {
                loss_sum += loss.item() as f64 * n as f64;
                counted += n;
            }
            predictions.extend(model.predict(&x, &logits));
            labels.extend(y);
        }
    });
    if let Some(dp) = parallel {
        let mut sums = [loss_sum, counted as f64];
        dp.sum(&mut sums);
        (loss_sum, counted) = (sums[0], sums[1] as usize);
        predictions = dp
            .gather(&predictions.iter().map(|&p| p as u64).collect::<Vec<_>>())
            .into_iter()
            .map(|p| p as usize)
            .collect();
        labels =
            dp.gather(&labels.iter().map(|&y| y as u64).collect::<Vec<_>>()).into_iter().map(|y| y as i64).collect();
    }
    Evaluation::new(loss_sum / counted.max(1) as f64, predictions, labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{load_idx_dir, ImageDataset};
    use crate::nn::lenet5;
    use crate::optim::{AdamConfig, LrScheduler, Schedule, SgdConfig};
    use crate::Rng;

    fn mnist_slice(n: usize) -> (ImageDataset, ImageDataset) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
        let (train, test) = load_idx_dir(&dir).unwrap();
        let cut = |d: &ImageDataset, n: usize| ImageDataset {
            images: d.images[..n * 784].to_vec(),
            labels: d.labels[..n].to_vec(),
            ..d.clone()
        };
        (cut(&train, n), cut(&test, n / 4))
    }

    /// Trains LeNet-5 for one epoch on `threads` threads; returns the metrics and weights.
    fn run(threads: usize, data: &(ImageDataset, ImageDataset)) -> (FitReport, Vec<Vec<f32>>) {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let mut model = lenet5([1, 28, 28], 10, &mut Rng::new(3)).unwrap();
            let mut opt = Optimizer::new(model.named_parameters(), AdamConfig::default()).unwrap();
            let o = FitOptions { epochs: 1, batch_size: 32, seed: 3, ..Default::default() };
            let mut lr = LrScheduler::constant(opt.lr());
            let mut report = fit(&mut model, &mut opt, &mut lr, &data.0, Some(&data.1), &o, &mut []).unwrap();
            report.train_seconds = 0.0;
            report.examples_per_second = 0.0;
            report.epochs.iter_mut().for_each(|e| e.train_seconds = 0.0);
            (report, model.named_parameters().iter().map(|(_, p)| p.to_vec()).collect())
        })
    }

    #[test]
    fn resuming_from_a_checkpoint_gives_the_same_bits() {
        use crate::nn::{load_state_dict, save_state_dict};
        use crate::optim::{load_optimizer_state, save_optimizer_state};
        let data = mnist_slice(256);
        let dir = std::env::temp_dir().join(format!("saddle-resume-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fresh = || {
            let model = lenet5([1, 28, 28], 10, &mut Rng::new(5)).unwrap();
            let opt = Optimizer::new(model.named_parameters(), AdamConfig::default()).unwrap();
            (model, opt)
        };
        let o = FitOptions { epochs: 2, batch_size: 32, ..Default::default() };
        // A warm-up, a cosine over the run, and a plateau state that the checkpoint must carry.
        let schedule: Schedule = "warmup:4:cosine".parse().unwrap();
        let scheduler = || LrScheduler::new(schedule.clone(), 1e-3, 16).unwrap();
        // 2N steps straight.
        let (mut a, mut opt_a) = fresh();
        fit(&mut a, &mut opt_a, &mut scheduler(), &data.0, None, &o, &mut []).unwrap();
        // N steps, save, load into fresh objects, N more.
        let (mut b, mut opt_b) = fresh();
        let mut lr_b = scheduler();
        fit(&mut b, &mut opt_b, &mut lr_b, &data.0, None, &FitOptions { epochs: 1, ..o.clone() }, &mut []).unwrap();
        save_state_dict(&b, &dir.join("model.safetensors")).unwrap();
        save_optimizer_state(&opt_b, &dir.join("optimizer.safetensors")).unwrap();
        crate::io::write_json(&dir.join("scheduler.json"), &lr_b).unwrap();
        let (mut c, mut opt_c) = fresh();
        load_state_dict(&c, &dir.join("model.safetensors")).unwrap();
        load_optimizer_state(&mut opt_c, &dir.join("optimizer.safetensors")).unwrap();
        let mut lr_c: LrScheduler = crate::io::read_json(&dir.join("scheduler.json"), "a scheduler").unwrap();
        fit(
            &mut c,
            &mut opt_c,
            &mut lr_c,
            &data.0,
            None,
            &FitOptions { start: Position { epoch: 1, step: 8, ..Default::default() }, ..o },
            &mut [],
        )
        .unwrap();
        let weights = |m: &dyn Module| m.named_parameters().iter().map(|(_, p)| p.to_vec()).collect::<Vec<_>>();
        assert!(weights(&a) == weights(&c), "resumed weights differ from an uninterrupted run");
        assert_eq!(opt_a.state(), opt_c.state());
    }

    /// Collects each step's loss.
    #[derive(Default)]
    struct Losses(Vec<f32>);
    impl Observer for Losses {
        fn on_step(&mut self, m: &StepMetrics) -> Result<()> {
            self.0.push(m.loss);
            Ok(())
        }
    }

    /// A small network with batch norm: conv 3×3 (8) → batch norm → ReLU → max-pool 4 → linear.
    fn normed_net(rng: &mut Rng) -> crate::nn::Sequential {
        use crate::nn::{
            BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, Flatten, Linear, MaxPool2d, ReLU, Sequential,
        };
        Sequential::new(vec![
            Box::new(Conv2d::new(Conv2dConfig::new(1, 8, 3), rng)),
            Box::new(BatchNorm::new_2d(BatchNormConfig::new(8))),
            Box::new(ReLU),
            Box::new(MaxPool2d::new(4)),
            Box::new(Flatten),
            Box::new(Linear::new(8 * 6 * 6, 10, true, rng)),
        ])
    }

    /// 50 steps with SGD and momentum (batches of 25: shares of 12 and 13,
    /// or 8, 8 and 9; the epoch's last batch has 1 image, which every rank
    /// takes whole) of LeNet-5, or of [`normed_net`] with `normed`, on
    /// `parallel`'s rank or alone; the step losses, the weights and buffers,
    /// and the held-out evaluation. (Adam would scale the rounding
    /// differences of near-zero gradients up to whole steps of the learning
    /// rate: measured 1.9e-5 of the largest weight after 50 steps.)
    fn fifty_steps(
        data: &(ImageDataset, ImageDataset),
        parallel: Option<DataParallel>,
        normed: bool,
        sync_batch_norm: bool,
    ) -> (Vec<f32>, Vec<f32>, Evaluation) {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        pool.install(|| {
            let mut rng = Rng::new(11);
            let mut model: Box<dyn Module> = if normed {
                Box::new(normed_net(&mut rng))
            } else {
                Box::new(lenet5([1, 28, 28], 10, &mut rng).unwrap())
            };
            if let Some(dp) = &parallel {
                if !dp.is_root() {
                    // Other ranks start from other weights: rank 0's must reach them.
                    model.named_parameters().iter().for_each(|(_, p)| p.data_mut().fill(0.5));
                }
                dp.broadcast_module(&*model);
            }
            let sgd = SgdConfig { lr: 0.02, momentum: 0.9, ..Default::default() };
            let mut opt = Optimizer::new(model.named_parameters(), sgd).unwrap();
            let o = FitOptions {
                epochs: 2,
                batch_size: 25,
                seed: 4,
                max_steps: Some(50),
                parallel,
                sync_batch_norm,
                ..Default::default()
            };
            let mut lr = LrScheduler::constant(opt.lr());
            let mut losses = Losses::default();
            fit(&mut *model, &mut opt, &mut lr, &data.0, None, &o, &mut [&mut losses]).unwrap();
            let evaluation = evaluate_on_this_thread(&mut *model, &data.1, 16, Tta::None, o.parallel.as_ref());
            let state = model.named_parameters().into_iter().chain(model.named_buffers());
            (losses.0, state.flat_map(|(_, p)| p.to_vec()).collect(), evaluation)
        })
    }

    /// The largest difference between `a` and `b`, over the largest magnitude in `b`.
    fn relative(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
    }

    /// Runs [`fifty_steps`] on `ranks` threads, one rank each.
    fn on_ranks(
        ranks: usize,
        data: &(ImageDataset, ImageDataset),
        normed: bool,
        sync: bool,
    ) -> Vec<(Vec<f32>, Vec<f32>, Evaluation)> {
        let group = crate::dist::Threads::group(ranks);
        std::thread::scope(|s| {
            let handles: Vec<_> = group
                .into_iter()
                .map(|c| s.spawn(move || fifty_steps(data, Some(DataParallel::new(c)), normed, sync)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    /// Data parallelism over 2 and 3 ranks gives the model one process gives
    /// with the whole batch, up to the order of float sums; every rank holds
    /// the same bits; and a second run gives them again.
    #[test]
    fn data_parallel_ranks_give_the_model_of_one_process() {
        let data = mnist_slice(1201); // 48 batches of 25 and one of 1
        let (losses, weights, evaluation) = fifty_steps(&data, None, false, false);
        assert_eq!(losses.len(), 50);
        for ranks in [2, 3] {
            let runs = on_ranks(ranks, &data, false, false);
            for (rank, (l, w, e)) in runs.iter().enumerate() {
                assert!(w == &runs[0].1 && e == &runs[0].2, "rank {rank} of {ranks} holds other weights than rank 0");
                assert!(l == &runs[0].0, "rank {rank} of {ranks} saw other losses than rank 0");
            }
            let (l, w, e) = &runs[0];
            assert!(relative(l, &losses) < 1e-5, "{ranks} ranks: losses differ by {:e}", relative(l, &losses));
            assert!(relative(w, &weights) < 1e-5, "{ranks} ranks: weights differ by {:e}", relative(w, &weights));
            assert_eq!(e.labels, evaluation.labels, "{ranks} ranks: the evaluation gathers the test set in order");
            assert!((e.loss - evaluation.loss).abs() < 1e-4 * evaluation.loss, "{ranks} ranks: test loss {}", e.loss);
            let again = on_ranks(ranks, &data, false, false);
            assert!(again[0].0 == *l && again[0].1 == *w, "{ranks} ranks: a second run differs");
        }
    }

    /// With batch norm, ranks that synchronize its statistics give one
    /// process's model (running estimates included); ranks that do not,
    /// another one.
    #[test]
    fn synchronized_batch_norm_gives_the_model_of_one_process() {
        let data = mnist_slice(1201);
        let (losses, state, _) = fifty_steps(&data, None, true, false);
        let (l, w, _) = on_ranks(2, &data, true, true).swap_remove(0);
        assert!(relative(&l, &losses) < 1e-5, "synchronized: losses differ by {:e}", relative(&l, &losses));
        assert!(relative(&w, &state) < 1e-5, "synchronized: weights differ by {:e}", relative(&w, &state));
        let (_, w, _) = on_ranks(2, &data, true, false).swap_remove(0);
        assert!(
            relative(&w, &state) > 1e-4,
            "per-rank statistics should give another model: {:e}",
            relative(&w, &state)
        );
    }

    #[test]
    fn same_seed_same_bits_whatever_the_thread_count() {
        let data = mnist_slice(640);
        let (r1, w1) = run(1, &data);
        let (r2, w2) = run(2, &data);
        let (r3, w3) = run(3, &data);
        assert!(w1 == w2 && w1 == w3, "weights differ between 1, 2 and 3 threads");
        assert!(r1 == r2 && r1 == r3, "metrics differ between 1, 2 and 3 threads");
        // And it learned something: chance is 10%.
        let (_, acc) = r1.epochs[0].test.unwrap();
        assert!(acc > 0.3, "test accuracy after one epoch (20 steps) on 640 images: {acc}");
    }
}
