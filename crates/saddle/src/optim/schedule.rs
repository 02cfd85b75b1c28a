//! Learning-rate schedules: `η_t` as a pure function of the step `t` (the
//! number of optimizer steps taken before this one, from 0), and
//! reduce-on-plateau, the one schedule that needs state.
//!
//! With base rate `η` (the optimizer's `lr`), as `torch.optim.lr_scheduler`
//! computes them when `scheduler.step()` follows every `optimizer.step()`:
//!
//! | schedule | `η_t` |
//! |---|---|
//! | constant | `η` |
//! | step | `η·γ^⌊t/s⌋` (`StepLR`) |
//! | multi-step | `η·γ^(number of milestones ≤ t)` (`MultiStepLR`) |
//! | exponential | `η·γᵗ` (`ExponentialLR`) |
//! | cosine | `η_min + (η − η_min)(1 + cos(πt/T))/2` (`CosineAnnealingLR`) |
//! | cosine with restarts | the same within each cycle of `T₀, T₀·m, T₀·m², …` steps (`CosineAnnealingWarmRestarts`) |
//! | inverse square root | `η/√(1 + t/τ)` |
//! | one-cycle | cosine from `η/25` up to `η` over the first 30% of steps, then down to `η/25/10⁴` (`OneCycleLR`) |
//! | warm-up `w` | `inner_t · min(1, (t + 1)/w)`: a linear ramp that wraps any of them |
//!
//! Uses: nothing.

use std::f64::consts::PI;

/// A learning-rate schedule (see the module table).
///
/// ```
/// use saddle::optim::Schedule;
/// let s = Schedule::Warmup { steps: 10, inner: Box::new(Schedule::Cosine { t_max: 100, eta_min: 0.0 }) };
/// assert!((s.lr(0.1, 0) - 0.01).abs() < 1e-12);   // warming up
/// assert!((s.lr(0.1, 50) - 0.05).abs() < 1e-12);  // half way down the cosine
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// `η`.
    Constant,
    /// Multiply by `gamma` every `step_size` steps.
    Step {
        /// Steps between decays.
        step_size: usize,
        /// Decay factor γ.
        gamma: f64,
    },
    /// Multiply by `gamma` at each milestone.
    MultiStep {
        /// Steps at which to decay, increasing.
        milestones: Vec<usize>,
        /// Decay factor γ.
        gamma: f64,
    },
    /// Multiply by `gamma` every step.
    Exponential {
        /// Decay factor γ.
        gamma: f64,
    },
    /// Half a cosine from `η` down to `eta_min` over `t_max` steps.
    Cosine {
        /// Steps of the half period T.
        t_max: usize,
        /// Final rate.
        eta_min: f64,
    },
    /// Cosine annealing restarted after `t_0`, then `t_0·t_mult`, … steps.
    CosineRestarts {
        /// Length of the first cycle T₀.
        t_0: usize,
        /// Growth of each cycle m (≥ 1).
        t_mult: usize,
        /// Rate at the end of each cycle.
        eta_min: f64,
    },
    /// `η/√(1 + t/τ)`.
    InverseSqrt {
        /// Time scale τ in steps.
        timescale: usize,
    },
    /// One cycle of `total_steps` up to `η` and down (Smith and Topin 2017).
    OneCycle {
        /// Length of the whole cycle.
        total_steps: usize,
        /// Fraction of the cycle spent rising (PyTorch: 0.3).
        pct_start: f64,
    },
    /// A linear warm-up over `steps` steps in front of `inner`.
    Warmup {
        /// Warm-up steps w.
        steps: usize,
        /// The schedule it wraps.
        inner: Box<Schedule>,
    },
}

/// `end + (start − end)(1 + cos(π·pct))/2`: PyTorch's `_annealing_cos`.
fn anneal_cos(start: f64, end: f64, pct: f64) -> f64 {
    end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0)
}

impl Schedule {
    /// The learning rate for step `t` given the base rate `base`.
    pub fn lr(&self, base: f64, t: usize) -> f64 {
        match self {
            Schedule::Constant => base,
            Schedule::Step { step_size, gamma } => base * gamma.powi((t / (*step_size).max(1)) as i32),
            Schedule::MultiStep { milestones, gamma } => {
                base * gamma.powi(milestones.iter().filter(|&&m| m <= t).count() as i32)
            }
            Schedule::Exponential { gamma } => base * gamma.powi(t as i32),
            Schedule::Cosine { t_max, eta_min } => {
                eta_min + (base - eta_min) * (1.0 + (PI * t as f64 / *t_max as f64).cos()) / 2.0
            }
            Schedule::CosineRestarts { t_0, t_mult, eta_min } => {
                let (t0, m) = (*t_0 as f64, *t_mult as f64);
                let (t_cur, t_i) = if *t_mult == 1 {
                    ((t % t_0) as f64, t0)
                } else {
                    let n = ((t as f64 / t0 * (m - 1.0) + 1.0).ln() / m.ln()).floor();
                    (t as f64 - t0 * (m.powf(n) - 1.0) / (m - 1.0), t0 * m.powf(n))
                };
                eta_min + (base - eta_min) * (1.0 + (PI * t_cur / t_i).cos()) / 2.0
            }
            Schedule::InverseSqrt { timescale } => base / (1.0 + t as f64 / *timescale as f64).sqrt(),
            Schedule::OneCycle { total_steps, pct_start } => {
                let (initial, peak) = (base / 25.0, base);
                let min = initial / 1e4;
                let rise_end = pct_start * *total_steps as f64 - 1.0;
                let t = t as f64;
                if t <= rise_end {
                    anneal_cos(initial, peak, t / rise_end)
                } else {
                    anneal_cos(peak, min, (t - rise_end) / ((*total_steps - 1) as f64 - rise_end))
                }
            }
            Schedule::Warmup { steps, inner } => inner.lr(base, t) * ((t + 1) as f64 / (*steps).max(1) as f64).min(1.0),
        }
    }

    /// A short description such as `cosine(t_max=1000, eta_min=0)`.
    pub fn describe(&self) -> String {
        match self {
            Schedule::Constant => "constant".into(),
            Schedule::Step { step_size, gamma } => format!("step(step_size={step_size}, gamma={gamma})"),
            Schedule::MultiStep { milestones, gamma } => format!("multistep(milestones={milestones:?}, gamma={gamma})"),
            Schedule::Exponential { gamma } => format!("exponential(gamma={gamma})"),
            Schedule::Cosine { t_max, eta_min } => format!("cosine(t_max={t_max}, eta_min={eta_min})"),
            Schedule::CosineRestarts { t_0, t_mult, eta_min } => {
                format!("cosine-restarts(t_0={t_0}, t_mult={t_mult}, eta_min={eta_min})")
            }
            Schedule::InverseSqrt { timescale } => format!("inverse-sqrt(timescale={timescale})"),
            Schedule::OneCycle { total_steps, pct_start } => {
                format!("one-cycle(total_steps={total_steps}, pct_start={pct_start})")
            }
            Schedule::Warmup { steps, inner } => format!("warmup({steps}) then {}", inner.describe()),
        }
    }
}

/// Reduce the learning rate when a metric stops improving
/// (`torch.optim.lr_scheduler.ReduceLROnPlateau`, mode `min`, relative threshold).
///
/// Unlike the [`Schedule`]s it is not a function of the step: it remembers the
/// best metric seen and how many epochs have passed without beating it by
/// `threshold`. After more than `patience` such epochs the rate is multiplied
/// by `factor` (not below `min_lr`), then `cooldown` epochs pass before
/// counting again.
#[derive(Clone, Debug, PartialEq)]
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
    best: f64,
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
            best: f64::INFINITY,
            bad_epochs: 0,
            cooldown_left: 0,
        }
    }

    /// Records this epoch's `metric` and returns the learning rate to use from
    /// now on, given the current one.
    pub fn step(&mut self, metric: f64, lr: f64) -> f64 {
        if metric < self.best * (1.0 - self.threshold) {
            self.best = metric;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{assert_close, Fixtures};

    /// The schedule a fixture case names.
    fn from_case(c: &crate::ops::testing::Case) -> Schedule {
        let u = |k: &str| c.attr_usize(k);
        let f = |k: &str| c.attr(k).parse::<f64>().unwrap();
        match c.attr("kind") {
            "constant" => Schedule::Constant,
            "step" => Schedule::Step { step_size: u("step_size"), gamma: f("gamma") },
            "multistep" => Schedule::MultiStep {
                milestones: c.attr("milestones").split(',').map(|m| m.parse().unwrap()).collect(),
                gamma: f("gamma"),
            },
            "exponential" => Schedule::Exponential { gamma: f("gamma") },
            "cosine" => Schedule::Cosine { t_max: u("t_max"), eta_min: f("eta_min") },
            "cosine_restarts" => Schedule::CosineRestarts { t_0: u("t_0"), t_mult: u("t_mult"), eta_min: f("eta_min") },
            "inverse_sqrt" => Schedule::InverseSqrt { timescale: u("timescale") },
            "one_cycle" => Schedule::OneCycle { total_steps: u("total_steps"), pct_start: 0.3 },
            "warmup_step" => Schedule::Warmup {
                steps: u("warmup"),
                inner: Box::new(Schedule::Step { step_size: u("step_size"), gamma: f("gamma") }),
            },
            other => panic!("unknown schedule {other}"),
        }
    }

    #[test]
    fn every_schedule_equals_pytorch_step_by_step() {
        let fx = Fixtures::load("schedule");
        for case in fx.cases("sched") {
            let s = from_case(&case);
            let ours: Vec<f32> = (0..60).map(|t| s.lr(0.1, t) as f32).collect();
            assert_close(&case.name, &ours, &fx.tensor(&case, "lr").to_vec(), 1e-6);
        }
    }

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
    fn a_table_by_hand() {
        // StepLR(step_size=2, gamma=0.5) from 1.0: 1, 1, 0.5, 0.5, 0.25.
        let s = Schedule::Step { step_size: 2, gamma: 0.5 };
        let got: Vec<f64> = (0..5).map(|t| s.lr(1.0, t)).collect();
        assert_eq!(got, vec![1.0, 1.0, 0.5, 0.5, 0.25]);
        // Warm-up of 4 steps over a constant: 0.25, 0.5, 0.75, 1, 1.
        let w = Schedule::Warmup { steps: 4, inner: Box::new(Schedule::Constant) };
        let got: Vec<f64> = (0..5).map(|t| w.lr(1.0, t)).collect();
        assert_eq!(got, vec![0.25, 0.5, 0.75, 1.0, 1.0]);
    }
}
