//! Training: the run specification ([`RunSpec`]) and the run API
//! ([`Trainer`] to create, train and resume a run; [`Run`] to open a
//! finished one), over [`fit`], a loop you can read aloud; [`evaluate`]; the
//! [`Observer`] trait through which progress bars, run logs and the
//! [`Monitor`] watch training, so that `train` never depends on `diagnose`.
//!
//! Uses: `nn`, `optim`, `data`, `io`, `tensor`, `error`.

mod data;
mod metrics;
mod monitor;
mod run;
mod spec;

pub use data::{Model, RunData, Vocabularies};
pub use metrics::{confusion_matrix, slot_metrics, Evaluation};
pub use monitor::{layer_of, read_records, write_records, Monitor, Record};
pub use run::{Evaluated, Outcome, Run, Summary, Trainer};
pub use spec::{ImageModel, RunConfig, RunSpec, TaggerSpec, Task, RUN_FORMAT};

use crate::data::{Dataset, Loader};
use crate::nn::Module;
use crate::ops::CrossEntropyOptions;
use crate::optim::{clip_grad_norm, global_grad_norm, LrScheduler, Optimizer};
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
    /// Epochs already trained: resuming a run starts here, with the same
    /// batches and learning rates as an uninterrupted run.
    pub start_epoch: usize,
    /// Batch size for evaluation.
    pub eval_batch_size: usize,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 64,
            seed: 0,
            clip_norm: None,
            error_if_nonfinite: false,
            start_epoch: 0,
            eval_batch_size: 64,
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
    pub train_loss: f32,
    /// Training accuracy over the epoch (running).
    pub train_accuracy: f32,
    /// Loss and accuracy on the held-out set, if one was given.
    pub test: Option<(f32, f32)>,
    /// Seconds spent training in this epoch (evaluation excluded).
    pub train_seconds: f64,
}

/// Watches training. Every method has a default that does nothing.
pub trait Observer {
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
    /// Asked after each epoch: `true` ends training there (the run API
    /// checkpoints first, so the run can resume).
    fn should_stop(&self) -> bool {
        false
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
    /// Optimizer steps taken.
    pub steps: usize,
}

/// Trains a classifier with softmax cross-entropy.
///
/// Each step: next batch, forward, loss, zero grads, backward, clip,
/// lr = schedule(step), step, metrics, observers. After each epoch: evaluate
/// on `test`, tell the schedule the epoch's loss (reduce-on-plateau), observers;
/// stop early if an observer asks.
pub fn fit(
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
    let (mut step, mut train_seconds, mut seen_total) = (o.start_epoch * steps_per_epoch, 0.0, 0usize);
    let mut epochs = Vec::new();
    for epoch in o.start_epoch..o.epochs {
        model.set_training(true);
        let started = Instant::now();
        // `seen` counts labelled rows (images, or tokens for a tagger), `examples` batch items.
        let (mut loss_sum, mut correct_sum, mut seen, mut examples) = (0.0f64, 0usize, 0usize, 0usize);
        for batch in loader.epoch(epoch) {
            let (x, y) = train.batch(&batch);
            let logits = model.forward(&x);
            let loss = logits.cross_entropy(&y, CrossEntropyOptions::default());
            opt.zero_grad();
            loss.backward();
            for ob in observers.iter_mut() {
                ob.before_update(step, opt.params())?;
            }
            let grad_norm = match o.clip_norm {
                Some(c) => clip_grad_norm(opt.params(), c, o.error_if_nonfinite)?,
                None => global_grad_norm(opt.params()),
            };
            opt.set_lr(lr.lr(step));
            opt.step();

            let correct = metrics::count_correct(&logits, &y);
            let counted = metrics::counted(&y);
            loss_sum += loss.item() as f64 * counted as f64;
            correct_sum += correct;
            seen += counted;
            examples += batch.len();
            let m = StepMetrics {
                step,
                epoch,
                steps_per_epoch,
                loss: loss.item(),
                lr: opt.lr() as f32,
                grad_norm,
                clipped: o.clip_norm.is_some_and(|c| grad_norm > c),
                batch_size: batch.len(),
                correct,
                running_loss: (loss_sum / seen.max(1) as f64) as f32,
                running_accuracy: correct_sum as f32 / seen.max(1) as f32,
            };
            for ob in observers.iter_mut() {
                ob.on_step(&m)?;
            }
            step += 1;
        }
        let epoch_seconds = started.elapsed().as_secs_f64();
        train_seconds += epoch_seconds;
        seen_total += examples;
        let test = test.map(|t| {
            let e = evaluate(model, t, o.eval_batch_size);
            (e.loss, e.accuracy)
        });
        let train_loss = (loss_sum / seen.max(1) as f64) as f32;
        lr.end_epoch(test.map_or(train_loss, |(l, _)| l) as f64);
        let m = EpochMetrics {
            epoch,
            steps: step,
            train_loss,
            train_accuracy: correct_sum as f32 / seen.max(1) as f32,
            test,
            train_seconds: epoch_seconds,
        };
        for ob in observers.iter_mut() {
            ob.on_epoch(&m)?;
        }
        epochs.push(m);
        if observers.iter().any(|ob| ob.should_stop()) {
            break;
        }
    }
    model.set_training(true);
    Ok(FitReport {
        epochs,
        train_seconds,
        examples_per_second: seen_total as f64 / train_seconds.max(1e-9),
        steps: step,
    })
}

/// Loss, accuracy and predictions of `model` on all of `data`, in evaluation
/// mode and without recording a graph. Rows labelled [`IGNORE`](crate::data::IGNORE)
/// (padding) count for nothing. Leaves the model in evaluation mode.
pub fn evaluate(model: &mut dyn Module, data: &dyn Dataset, batch_size: usize) -> Evaluation {
    model.set_training(false);
    let (mut loss_sum, mut counted, mut predictions, mut labels) = (0.0f64, 0usize, Vec::new(), Vec::new());
    let all: Vec<usize> = (0..data.len()).collect();
    no_grad(|| {
        for batch in all.chunks(batch_size.max(1)) {
            let (x, y) = data.batch(batch);
            let logits = model.forward(&x);
            let loss = logits.cross_entropy(&y, CrossEntropyOptions::default());
            let n = metrics::counted(&y);
            if n > 0 {
                loss_sum += loss.item() as f64 * n as f64;
                counted += n;
            }
            predictions.extend(logits.argmax(1));
            labels.extend(y);
        }
    });
    Evaluation::new(loss_sum / counted.max(1) as f64, predictions, labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{load_idx_dir, ImageDataset};
    use crate::nn::lenet5;
    use crate::optim::{AdamConfig, LrScheduler, Schedule};
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
        fit(&mut c, &mut opt_c, &mut lr_c, &data.0, None, &FitOptions { start_epoch: 1, ..o }, &mut []).unwrap();
        let weights = |m: &dyn Module| m.named_parameters().iter().map(|(_, p)| p.to_vec()).collect::<Vec<_>>();
        assert!(weights(&a) == weights(&c), "resumed weights differ from an uninterrupted run");
        assert_eq!(opt_a.state(), opt_c.state());
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
