//! The learning-rate range test (Smith 2017, "Cyclical learning rates";
//! fastai's `lr_find`): train a fresh copy of a run's model for a few hundred
//! steps while the rate grows exponentially, and read off the rate where the
//! loss falls fastest before it blows up.
//!
//! Step `k` of `K` uses `η_k = η_start·(η_end/η_start)^(k/(K−1))`. While it
//! runs, the loss is smoothed as fastai does, `s_k = β·s_(k−1) + (1−β)·L_k`
//! with β = 0.98, debiased by `1 − β^(k+1)`, and the test stops when that
//! passes `divergence` times its lowest value, or is not finite. That average
//! lags about 50 steps behind the rate, so the rate is read off a centred
//! mean instead (`K/20` steps on each side), which does not lag: the
//! suggested rate is a tenth of the rate at its lowest point (Smith's rule:
//! the largest rate that still lowers the loss, divided by ten for margin).
//!
//! Uses: `train` (`fit`, data, run), `optim`.

use super::data::load_new;
use super::run::model_and_optimizer;
use super::{fit, FitOptions, Observer, OnLoad, RunSpec, StepMetrics};
use crate::optim::{LrScheduler, Schedule};
use crate::{Error, Result};

/// Settings of [`lr_find`].
#[derive(Clone, Debug, PartialEq)]
pub struct LrFindOptions {
    /// The first rate (fastai: 1e-7).
    pub start_lr: f64,
    /// The last rate (fastai: 10).
    pub end_lr: f64,
    /// Steps from the first rate to the last (fastai: 100).
    pub steps: usize,
    /// Stop when the smoothed loss passes this many times its lowest value (fastai: 4).
    pub divergence: f64,
}

impl Default for LrFindOptions {
    fn default() -> Self {
        LrFindOptions { start_lr: 1e-7, end_lr: 10.0, steps: 200, divergence: 4.0 }
    }
}

/// What the range test measured, and the rate it suggests.
#[derive(Clone, Debug, PartialEq)]
pub struct LrFind {
    /// The rate of each step taken.
    pub rates: Vec<f64>,
    /// The mini-batch loss of each step.
    pub losses: Vec<f64>,
    /// The centred mean of the loss around each step.
    pub smoothed: Vec<f64>,
    /// The rate at the lowest centred mean.
    pub rate_at_minimum: f64,
    /// The suggested rate: a tenth of `rate_at_minimum`.
    pub suggested: f64,
    /// Why the test ended, in words.
    pub stopped: String,
}

/// Runs the range test on a fresh model of `spec` (its data, model, optimizer
/// with its hyperparameters, batch size, label smoothing and clipping; not its
/// schedule or epochs). Nothing is written: no run directory, no state of an
/// existing run is touched.
///
/// ```no_run
/// use saddle::train::{lr_find, LrFindOptions, RunSpec};
/// let found = lr_find(&RunSpec::mnist(), &LrFindOptions::default(), &|_, _| {})?;
/// println!("suggested learning rate {:.1e}", found.suggested);
/// # Ok::<(), saddle::Error>(())
/// ```
pub fn lr_find(spec: &RunSpec, o: &LrFindOptions, on_load: OnLoad<'_>) -> Result<LrFind> {
    if !(o.start_lr > 0.0 && o.end_lr > o.start_lr && o.end_lr.is_finite()) || o.steps < 2 || o.divergence <= 1.0 {
        return Err(Error::config(
            "lr_find",
            format!(
                "needs 0 < start {} < end {}, at least 2 steps (got {}) and a divergence factor above 1 (got {})",
                o.start_lr, o.end_lr, o.steps, o.divergence
            ),
        ));
    }
    let (config, data) = load_new(spec, on_load)?;
    let (mut model, mut opt) = model_and_optimizer(&config, &data, true)?;
    // The exponential ramp is the `exp:γ` schedule from the first rate; `fit` runs the steps.
    let gamma = (o.end_lr / o.start_lr).powf(1.0 / (o.steps - 1) as f64);
    let mut lr = LrScheduler::new(Schedule::Exponential { gamma }, o.start_lr, o.steps)?;
    let train = data.train.as_ref();
    let fit_options = FitOptions {
        epochs: o.steps.div_ceil(train.len().div_ceil(spec.batch_size).max(1)),
        max_steps: Some(o.steps),
        batch_size: spec.batch_size,
        seed: spec.seed,
        clip_norm: spec.clip_norm,
        label_smoothing: spec.label_smoothing,
        ..FitOptions::default()
    };
    let mut ramp = Ramp {
        start: o.start_lr,
        gamma,
        divergence: o.divergence,
        average: 0.0,
        best: f64::INFINITY,
        stop: None,
        found: LrFind {
            rates: Vec::new(),
            losses: Vec::new(),
            smoothed: Vec::new(),
            rate_at_minimum: f64::NAN,
            suggested: f64::NAN,
            stopped: format!("reached the last rate, {:.1e}", o.end_lr),
        },
    };
    let report = fit(&mut model, &mut opt, &mut lr, train, None, &fit_options, &mut [&mut ramp])?;
    let mut found = ramp.found;
    if let Some(stop) = ramp.stop {
        found.stopped = stop;
    } else if let Some(d) = report.diverged {
        found.stopped = format!("stopped at {:.1e}, where the loss was not finite", d.lr);
    }
    let (n, half) = (found.losses.len(), (o.steps / 20).max(1));
    found.smoothed = (0..n)
        .map(|k| {
            let window = &found.losses[k.saturating_sub(half)..(k + half + 1).min(n)];
            window.iter().sum::<f64>() / window.len() as f64
        })
        .collect();
    let lowest = (0..n)
        .filter(|&k| found.smoothed[k].is_finite())
        .min_by(|&a, &b| found.smoothed[a].total_cmp(&found.smoothed[b]));
    found.rate_at_minimum = lowest.map_or(f64::NAN, |k| found.rates[k]);
    found.suggested = found.rate_at_minimum / 10.0;
    Ok(found)
}

/// Records each step of the ramp and asks `fit` to stop once the smoothed
/// loss passes `divergence` times its lowest value.
struct Ramp {
    start: f64,
    gamma: f64,
    divergence: f64,
    /// fastai's exponential average of the loss (β = 0.98), before debiasing.
    average: f64,
    best: f64,
    /// Why the ramp stopped early.
    stop: Option<String>,
    found: LrFind,
}

impl Observer for Ramp {
    fn on_step(&mut self, m: &StepMetrics) -> Result<()> {
        let (beta, k) = (0.98f64, m.step);
        // The rate as the schedule computed it, in f64 (the metrics carry it as f32).
        let rate = self.start * self.gamma.powi(k as i32);
        let loss = m.loss as f64;
        self.average = beta * self.average + (1.0 - beta) * loss;
        let smooth = self.average / (1.0 - beta.powi(k as i32 + 1));
        self.found.rates.push(rate);
        self.found.losses.push(loss);
        self.best = self.best.min(smooth);
        if !smooth.is_finite() || smooth > self.divergence * self.best {
            let shown = if smooth.is_finite() { format!("{smooth:.4}") } else { "was not finite and".into() };
            self.stop = Some(format!(
                "stopped at {rate:.1e}, where the smoothed loss {shown} passed {}× its lowest ({:.4})",
                self.divergence, self.best
            ));
        }
        Ok(())
    }
    fn should_stop(&self) -> bool {
        self.stop.is_some()
    }
}
