//! [`LrScheduler`], the one owner of the learning rate, and
//! [`ReduceLrOnPlateau`], the one schedule that needs state.
//!
//! Uses: `optim::schedule`, `error`.

use super::{non_negative, Schedule};
use crate::Result;

/// Reduce the learning rate when a metric stops improving
/// (`torch.optim.lr_scheduler.ReduceLROnPlateau`, mode `min`, relative threshold).
///
/// Unlike the [`Schedule`]s it is not a function of the step: it remembers the
/// best metric seen and how many epochs have passed without beating it by
/// `threshold`. After more than `patience` such epochs the rate is multiplied
/// by `factor` (not below `min_lr`), then `cooldown` epochs pass before
/// counting again.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReduceLrOnPlateau {
    /// Multiplier on each reduction (PyTorch: 0.1).
    pub factor: f64,
    /// Epochs without improvement tolerated (PyTorch: 10).
    pub patience: usize,
    /// Relative improvement that counts (PyTorch: 1e-4).
    pub threshold: f64,
    /// Epochs to wait after a reduction (PyTorch: 0).
    pub cooldown: usize,
    /// Lower bound of the rate (PyTorch: 0).
    pub min_lr: f64,
    /// The lowest metric so far; `None` before the first.
    best: Option<f64>,
    bad_epochs: usize,
    cooldown_left: usize,
}

impl Default for ReduceLrOnPlateau {
    fn default() -> Self {
        ReduceLrOnPlateau::new(0.1, 10)
    }
}

impl ReduceLrOnPlateau {
    /// PyTorch's defaults with the given `factor` and `patience`.
    pub fn new(factor: f64, patience: usize) -> Self {
        ReduceLrOnPlateau {
            factor,
            patience,
            threshold: 1e-4,
            cooldown: 0,
            min_lr: 0.0,
            best: None,
            bad_epochs: 0,
            cooldown_left: 0,
        }
    }

    /// Records this epoch's `metric` and returns the learning rate to use from
    /// now on, given the current one.
    pub fn step(&mut self, metric: f64, lr: f64) -> f64 {
        if metric < self.best.unwrap_or(f64::INFINITY) * (1.0 - self.threshold) {
            self.best = Some(metric);
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        if self.cooldown_left > 0 {
            self.cooldown_left -= 1;
            self.bad_epochs = 0;
        }
        if self.bad_epochs > self.patience {
            self.cooldown_left = self.cooldown;
            self.bad_epochs = 0;
            let new = (lr * self.factor).max(self.min_lr);
            if lr - new > 1e-8 {
                return new;
            }
        }
        lr
    }
}

/// The learning rate of every step of a run: `η_t = schedule(η, t, N)`,
/// where the base `η` starts at the optimizer's rate and only
/// reduce-on-plateau lowers it. Training asks it for `η_t` and tells the
/// optimizer ([`crate::optim::Optimizer::set_lr`]); it is saved whole with a
/// checkpoint, so a resumed run continues with the same rates.
///
/// ```
/// use saddle::optim::{LrScheduler, Schedule};
/// let mut s = LrScheduler::new("plateau:0:0.5".parse().unwrap(), 0.1, 100).unwrap();
/// assert_eq!(s.lr(0), 0.1);
/// s.end_epoch(1.0); // the first epoch sets the best loss
/// s.end_epoch(1.0); // no better: halve
/// assert_eq!(s.lr(50), 0.05);
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LrScheduler {
    /// The schedule.
    pub schedule: Schedule,
    /// Steps of the whole run, N.
    pub total_steps: usize,
    /// The base rate now.
    base_lr: f64,
    /// Reduce-on-plateau's state, when the schedule is one.
    plateau: Option<ReduceLrOnPlateau>,
}

impl LrScheduler {
    /// `schedule` from base rate `base_lr` over a run of `total_steps` steps;
    /// errors name a bad value.
    pub fn new(schedule: Schedule, base_lr: f64, total_steps: usize) -> Result<Self> {
        schedule.validate()?;
        non_negative("lr", base_lr)?;
        let plateau = schedule.plateau().map(|(patience, factor)| ReduceLrOnPlateau::new(factor, patience));
        Ok(LrScheduler { schedule, total_steps, base_lr, plateau })
    }

    /// A constant rate.
    pub fn constant(lr: f64) -> Self {
        LrScheduler { schedule: Schedule::Constant, total_steps: 0, base_lr: lr, plateau: None }
    }

    /// `η_t` for step `t` (0-based).
    pub fn lr(&self, t: usize) -> f64 {
        self.schedule.lr(self.base_lr, t, self.total_steps)
    }

    /// The base rate now (lowered by reduce-on-plateau, if it has acted).
    pub fn base_lr(&self) -> f64 {
        self.base_lr
    }

    /// Records the loss that judges an epoch (held-out, or training without a
    /// held-out set); reduce-on-plateau may lower the base rate.
    pub fn end_epoch(&mut self, loss: f64) {
        if let Some(p) = self.plateau.as_mut() {
            self.base_lr = p.step(loss, self.base_lr);
        }
    }

    /// The schedule with every value spelt out for this run.
    pub fn describe(&self) -> String {
        self.schedule.describe(self.total_steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{assert_close, Fixtures};

    #[test]
    fn reduce_on_plateau_equals_pytorch_epoch_by_epoch() {
        let fx = Fixtures::load("schedule");
        let case = &fx.cases("plateau")[0];
        let mut p = ReduceLrOnPlateau { cooldown: case.attr_usize("cooldown"), ..ReduceLrOnPlateau::new(0.5, 2) };
        let mut lr = 0.1;
        let ours: Vec<f32> = fx
            .tensor(case, "metric")
            .to_vec()
            .iter()
            .map(|&m| {
                lr = p.step(m as f64, lr);
                lr as f32
            })
            .collect();
        assert_close("plateau", &ours, &fx.tensor(case, "lr").to_vec(), 1e-6);
    }

    #[test]
    fn the_scheduler_and_its_plateau_state_survive_a_round_trip() {
        let mut s = LrScheduler::new("warmup:2:plateau:1:0.5".parse().unwrap(), 0.1, 10).unwrap();
        assert_eq!((s.lr(0), s.lr(1)), (0.05, 0.1));
        for loss in [1.0, 0.9, 0.95] {
            s.end_epoch(loss);
        }
        let back: LrScheduler = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        // One more bad epoch is more than the patience of 1: both halve, because both remember.
        let (mut a, mut b) = (s, back);
        a.end_epoch(0.95);
        b.end_epoch(0.95);
        assert_eq!((a.lr(5), b.lr(5)), (0.05, 0.05));
    }
}
