//! Learning-rate schedules: `η_t` as a pure function of the step `t` (the
//! number of optimizer steps taken before this one, from 0), and their text
//! form, as `--schedule` and `config.json` write them.
//!
//! With base rate `η` and a run of `N` steps, as `torch.optim.lr_scheduler`
//! computes them when `scheduler.step()` follows every `optimizer.step()`:
//!
//! | text | schedule | `η_t` |
//! |---|---|---|
//! | `constant` | constant | `η` |
//! | `step:S[:γ]` | step | `η·γ^⌊t/S⌋` (`StepLR`, γ = 0.1) |
//! | `multistep:M1,M2,…[:γ]` | multi-step | `η·γ^(number of milestones ≤ t)` (`MultiStepLR`) |
//! | `exp:γ` | exponential | `η·γᵗ` (`ExponentialLR`) |
//! | `cosine[:T[:η_min]]` | cosine | `η_min + (η − η_min)(1 + cos(πt/T))/2` (`CosineAnnealingLR`; T = N) |
//! | `cosine-restarts:T₀[:m[:η_min]]` | cosine with restarts | the same within each cycle of `T₀, T₀·m, T₀·m², …` steps (`CosineAnnealingWarmRestarts`) |
//! | `invsqrt[:τ]` | inverse square root | `η/√(1 + t/τ)` (τ = 100) |
//! | `onecycle[:p]` | one-cycle | cosine from `η/25` up to `η` over the first `p·N` steps (p = 0.3), then down to `η/25/10⁴` (`OneCycleLR`) |
//! | `triangle:p:a:b` | triangle | linear from `a·η` up to `η` at step `⌊p·N⌋`, then down to `b·η` at step N (airbench's `np.interp`) |
//! | `plateau[:P[:f]]` | reduce on plateau | `η`, times `f` after more than `P` epochs without a lower held-out loss (see [`LrScheduler`](super::LrScheduler)) |
//! | `warmup:W:INNER` | warm-up, then `INNER` | `η·(t + 1)/W` for `t < W` (up to `η` at step `W − 1`), then `INNER` from its step 0 over the remaining `N − W` steps (`SequentialLR([LinearLR(1/W, total_iters=W−1), INNER], milestones=[W])`) |
//!
//! Uses: `error`.

use crate::{Error, Result};
use std::f64::consts::PI;
use std::fmt;
use std::str::FromStr;

/// A learning-rate schedule (see the module table); it reads and writes its
/// text form, which is how `config.json` stores it.
///
/// ```
/// use saddle::optim::Schedule;
/// let s: Schedule = "warmup:10:cosine".parse().unwrap();
/// assert_eq!(s, Schedule::Warmup { steps: 10, inner: Box::new(Schedule::Cosine { t_max: None, eta_min: 0.0 }) });
/// assert!((s.lr(0.1, 0, 110) - 0.01).abs() < 1e-12);   // warming up
/// assert!((s.lr(0.1, 9, 110) - 0.1).abs() < 1e-12);    // the base rate at the end of the ramp
/// assert!((s.lr(0.1, 60, 110) - 0.05).abs() < 1e-12);  // half way down the cosine over the other 100 steps
/// assert_eq!(s.to_string(), "warmup:10:cosine");
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
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
        /// Steps of the half period T; `None`: the whole run.
        t_max: Option<usize>,
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
    /// One cycle over the whole run, up to `η` and down (Smith and Topin 2017).
    OneCycle {
        /// Fraction of the run spent rising (PyTorch: 0.3).
        pct_start: f64,
    },
    /// Straight lines from `start·η` up to `η` at step `⌊peak_at·N⌋` and down
    /// to `end·η` at step `N` (the schedule of airbench, Jordan 2024).
    Triangle {
        /// Where the peak is, as a share of the run.
        peak_at: f64,
        /// The first rate, as a share of `η`.
        start: f64,
        /// The rate at step `N`, as a share of `η`.
        end: f64,
    },
    /// `η`, lowered by `factor` whenever the held-out loss has not improved
    /// for more than `patience` epochs (`ReduceLROnPlateau`); the only
    /// schedule with state, which [`LrScheduler`](super::LrScheduler) keeps.
    Plateau {
        /// Epochs without improvement tolerated (PyTorch: 10).
        patience: usize,
        /// Multiplier on each reduction (PyTorch: 0.1).
        factor: f64,
    },
    /// A linear ramp up to `η` over `steps` steps, then `inner` over the rest of the run.
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
    /// The learning rate for step `t` of a run of `total_steps` steps, given the base rate `base`.
    pub fn lr(&self, base: f64, t: usize, total_steps: usize) -> f64 {
        match self {
            Schedule::Constant | Schedule::Plateau { .. } => base,
            Schedule::Step { step_size, gamma } => base * gamma.powi((t / (*step_size).max(1)) as i32),
            Schedule::MultiStep { milestones, gamma } => {
                base * gamma.powi(milestones.iter().filter(|&&m| m <= t).count() as i32)
            }
            Schedule::Exponential { gamma } => base * gamma.powi(t as i32),
            Schedule::Cosine { t_max, eta_min } => {
                let t_max = t_max.unwrap_or(total_steps).max(1);
                eta_min + (base - eta_min) * (1.0 + (PI * t as f64 / t_max as f64).cos()) / 2.0
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
            Schedule::OneCycle { pct_start } => {
                let total_steps = total_steps.max(2);
                let (initial, peak) = (base / 25.0, base);
                let min = initial / 1e4;
                let rise_end = pct_start * total_steps as f64 - 1.0;
                let t = t as f64;
                if t <= rise_end {
                    anneal_cos(initial, peak, t / rise_end)
                } else {
                    anneal_cos(peak, min, (t - rise_end) / ((total_steps - 1) as f64 - rise_end))
                }
            }
            Schedule::Triangle { peak_at, start, end } => {
                let (n, t) = (total_steps.max(1) as f64, (t as f64).min(total_steps.max(1) as f64));
                let peak = (peak_at * n).floor();
                let share = if t < peak {
                    start + (1.0 - start) * t / peak
                } else {
                    1.0 + (end - 1.0) * (t - peak) / (n - peak)
                };
                base * share
            }
            Schedule::Warmup { steps, inner } => match t.checked_sub(*steps) {
                None => base * (t + 1) as f64 / *steps as f64,
                Some(after) => inner.lr(base, after, total_steps.saturating_sub(*steps)),
            },
        }
    }

    /// The reduce-on-plateau settings, if this schedule (or the one it wraps) is one.
    pub fn plateau(&self) -> Option<(usize, f64)> {
        match self {
            Schedule::Plateau { patience, factor } => Some((*patience, *factor)),
            Schedule::Warmup { inner, .. } => inner.plateau(),
            _ => None,
        }
    }

    /// A description with every value spelt out for a run of `total_steps`
    /// steps, such as `cosine(t_max=1000, eta_min=0)`.
    pub fn describe(&self, total_steps: usize) -> String {
        match self {
            Schedule::Constant => "constant".into(),
            Schedule::Step { step_size, gamma } => format!("step(step_size={step_size}, gamma={gamma})"),
            Schedule::MultiStep { milestones, gamma } => format!("multistep(milestones={milestones:?}, gamma={gamma})"),
            Schedule::Exponential { gamma } => format!("exponential(gamma={gamma})"),
            Schedule::Cosine { t_max, eta_min } => {
                format!("cosine(t_max={}, eta_min={eta_min})", t_max.unwrap_or(total_steps))
            }
            Schedule::CosineRestarts { t_0, t_mult, eta_min } => {
                format!("cosine-restarts(t_0={t_0}, t_mult={t_mult}, eta_min={eta_min})")
            }
            Schedule::InverseSqrt { timescale } => format!("inverse-sqrt(timescale={timescale})"),
            Schedule::OneCycle { pct_start } => {
                format!("one-cycle(total_steps={}, pct_start={pct_start})", total_steps.max(2))
            }
            Schedule::Triangle { peak_at, start, end } => {
                let peak = (peak_at * total_steps.max(1) as f64).floor();
                format!("triangle(total_steps={total_steps}, peak_step={peak}, start={start}, end={end})")
            }
            Schedule::Plateau { patience, factor } => {
                format!("reduce-on-plateau(patience={patience}, factor={factor})")
            }
            Schedule::Warmup { steps, inner } => {
                format!("warmup({steps}) then {}", inner.describe(total_steps.saturating_sub(*steps)))
            }
        }
    }

    /// Checks every value, as parsing the text form does.
    pub fn validate(&self) -> Result<()> {
        // The text form carries every value, so its parser is the one place that checks them.
        self.to_string().parse::<Schedule>().map(|_| ())
    }
}

impl fmt::Display for Schedule {
    /// The text form (see the module table); parsing it gives the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Constant => write!(f, "constant"),
            Schedule::Step { step_size, gamma } => write!(f, "step:{step_size}:{gamma}"),
            Schedule::MultiStep { milestones, gamma } => {
                let m: Vec<String> = milestones.iter().map(|m| m.to_string()).collect();
                write!(f, "multistep:{}:{gamma}", m.join(","))
            }
            Schedule::Exponential { gamma } => write!(f, "exp:{gamma}"),
            Schedule::Cosine { t_max: None, eta_min } if *eta_min == 0.0 => write!(f, "cosine"),
            Schedule::Cosine { t_max, eta_min } => {
                write!(f, "cosine:{}:{eta_min}", t_max.map_or(String::new(), |t| t.to_string()))
            }
            Schedule::CosineRestarts { t_0, t_mult, eta_min } => write!(f, "cosine-restarts:{t_0}:{t_mult}:{eta_min}"),
            Schedule::InverseSqrt { timescale } => write!(f, "invsqrt:{timescale}"),
            Schedule::OneCycle { pct_start } => write!(f, "onecycle:{pct_start}"),
            Schedule::Triangle { peak_at, start, end } => write!(f, "triangle:{peak_at}:{start}:{end}"),
            Schedule::Plateau { patience, factor } => write!(f, "plateau:{patience}:{factor}"),
            Schedule::Warmup { steps, inner } => write!(f, "warmup:{steps}:{inner}"),
        }
    }
}

/// The parts of one schedule's text, and its checks.
struct Spec<'a> {
    text: &'a str,
    kind: &'a str,
    args: Vec<&'a str>,
}

impl Spec<'_> {
    fn bad(&self, why: String) -> Error {
        Error::config("schedule", format!("'{}': {why}", self.text))
    }
    fn at_most(&self, n: usize) -> Result<()> {
        if self.args.len() > n {
            return Err(self.bad(format!("{} takes at most {n} values after its name", self.kind)));
        }
        Ok(())
    }
    /// Argument `i` as a number, `default` if absent (or empty, where `default` allows it).
    fn number<T: FromStr>(&self, i: usize, what: &str, default: Option<T>) -> Result<T> {
        match (self.args.get(i).copied().filter(|a| !a.is_empty()), default) {
            (Some(a), _) => a.parse().map_err(|_| self.bad(format!("{what} must be a number, got '{a}'"))),
            (None, Some(d)) => Ok(d),
            (None, None) => Err(self.bad(format!("{} needs {what}, as in {}", self.kind, example(self.kind)))),
        }
    }
    fn count(&self, i: usize, what: &str, default: Option<usize>) -> Result<usize> {
        let v = self.number(i, what, default)?;
        if v == 0 {
            return Err(self.bad(format!("{what} must be at least 1")));
        }
        Ok(v)
    }
    fn gamma(&self, i: usize, default: Option<f64>) -> Result<f64> {
        let g = self.number(i, "GAMMA", default)?;
        if !(g > 0.0 && g.is_finite()) {
            return Err(self.bad(format!("GAMMA must be positive, got {g}")));
        }
        Ok(g)
    }
    fn eta_min(&self, i: usize) -> Result<f64> {
        let e: f64 = self.number(i, "ETA_MIN", Some(0.0))?;
        if !(e >= 0.0 && e.is_finite()) {
            return Err(self.bad(format!("ETA_MIN must be a finite number ≥ 0, got {e}")));
        }
        Ok(e)
    }
    fn share(&self, i: usize, what: &str) -> Result<f64> {
        let v: f64 = self.number(i, what, None)?;
        if !(0.0..=1.0).contains(&v) {
            return Err(self.bad(format!("{what} must be from 0 to 1, got {v}")));
        }
        Ok(v)
    }
    fn fraction(&self, i: usize, what: &str, default: f64) -> Result<f64> {
        let v: f64 = self.number(i, what, Some(default))?;
        if !(v > 0.0 && v < 1.0) {
            return Err(self.bad(format!("{what} must be between 0 and 1, got {v}")));
        }
        Ok(v)
    }
}

fn example(kind: &str) -> &'static str {
    match kind {
        "step" => "step:1000:0.5",
        "multistep" => "multistep:500,800",
        "exp" => "exp:0.999",
        "cosine-restarts" => "cosine-restarts:500:2",
        "triangle" => "triangle:0.23:0.2:0.07",
        _ => "warmup:100:cosine",
    }
}

impl FromStr for Schedule {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        let mut parts = text.split(':');
        let kind = parts.next().unwrap_or("");
        let s = Spec { text, kind, args: parts.collect() };
        Ok(match kind {
            "constant" => {
                s.at_most(0)?;
                Schedule::Constant
            }
            "step" => {
                s.at_most(2)?;
                Schedule::Step { step_size: s.count(0, "SIZE", None)?, gamma: s.gamma(1, Some(0.1))? }
            }
            "multistep" => {
                s.at_most(2)?;
                let list = s.args.first().filter(|a| !a.is_empty()).ok_or_else(|| {
                    s.bad("multistep needs milestones, as in multistep:500,800".into())
                })?;
                let mut milestones = list
                    .split(',')
                    .map(|m| m.parse().map_err(|_| s.bad(format!("a milestone must be a number, got '{m}'"))))
                    .collect::<Result<Vec<usize>>>()?;
                milestones.sort_unstable();
                Schedule::MultiStep { milestones, gamma: s.gamma(1, Some(0.1))? }
            }
            "exp" => {
                s.at_most(1)?;
                Schedule::Exponential { gamma: s.gamma(0, None)? }
            }
            "cosine" => {
                s.at_most(2)?;
                let t_max = match s.args.first().filter(|a| !a.is_empty()) {
                    Some(_) => Some(s.count(0, "T_MAX", None)?),
                    None => None,
                };
                Schedule::Cosine { t_max, eta_min: s.eta_min(1)? }
            }
            "cosine-restarts" => {
                s.at_most(3)?;
                Schedule::CosineRestarts {
                    t_0: s.count(0, "T0", None)?,
                    t_mult: s.count(1, "T_MULT", Some(1))?,
                    eta_min: s.eta_min(2)?,
                }
            }
            "invsqrt" => {
                s.at_most(1)?;
                Schedule::InverseSqrt { timescale: s.count(0, "TIMESCALE", Some(100))? }
            }
            "onecycle" => {
                s.at_most(1)?;
                Schedule::OneCycle { pct_start: s.fraction(0, "PCT_START", 0.3)? }
            }
            "triangle" => {
                s.at_most(3)?;
                Schedule::Triangle {
                    peak_at: s.fraction(0, "PEAK_AT", 0.23)?,
                    start: s.share(1, "START")?,
                    end: s.share(2, "END")?,
                }
            }
            "plateau" => {
                s.at_most(2)?;
                Schedule::Plateau { patience: s.number(0, "PATIENCE", Some(10))?, factor: s.fraction(1, "FACTOR", 0.1)? }
            }
            "warmup" => {
                let steps = s.count(0, "W", None)?;
                let inner = text.splitn(3, ':').nth(2).filter(|i| !i.is_empty());
                let inner = inner.ok_or_else(|| s.bad("warmup needs the schedule it precedes, as in warmup:100:cosine".into()))?;
                Schedule::Warmup { steps, inner: Box::new(inner.parse()?) }
            }
            other => {
                return Err(s.bad(format!(
                    "unknown schedule '{other}'; expected constant, step, multistep, exp, cosine, cosine-restarts, invsqrt, onecycle, triangle, plateau or warmup"
                )))
            }
        })
    }
}

impl From<Schedule> for String {
    fn from(s: Schedule) -> String {
        s.to_string()
    }
}

impl TryFrom<String> for Schedule {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
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
            "cosine" => Schedule::Cosine { t_max: Some(u("t_max")), eta_min: f("eta_min") },
            "cosine_restarts" => Schedule::CosineRestarts { t_0: u("t_0"), t_mult: u("t_mult"), eta_min: f("eta_min") },
            "inverse_sqrt" => Schedule::InverseSqrt { timescale: u("timescale") },
            "one_cycle" => Schedule::OneCycle { pct_start: 0.3 },
            "warmup_step" => Schedule::Warmup {
                steps: u("warmup"),
                inner: Box::new(Schedule::Step { step_size: u("step_size"), gamma: f("gamma") }),
            },
            "warmup_cosine" => {
                Schedule::Warmup { steps: u("warmup"), inner: Box::new(Schedule::Cosine { t_max: None, eta_min: 0.0 }) }
            }
            other => panic!("unknown schedule {other}"),
        }
    }

    #[test]
    fn every_schedule_equals_pytorch_step_by_step() {
        let fx = Fixtures::load("schedule");
        for case in fx.cases("sched") {
            let s = from_case(&case);
            // Only the one-cycle case names its run's length; the others do not depend on it.
            let total = case.get("total_steps").map_or(60, |t| t.parse().unwrap());
            let ours: Vec<f32> = (0..60).map(|t| s.lr(0.1, t, total) as f32).collect();
            assert_close(&case.name, &ours, &fx.tensor(&case, "lr").to_vec(), 1e-6);
        }
    }

    /// airbench's `np.interp(t, [0, ⌊0.23·N⌋, N], [0.2, 1, 0.07])`, by hand for N = 100.
    #[test]
    fn triangle_is_airbenchs_interpolation() {
        let s: Schedule = "triangle:0.23:0.2:0.07".parse().unwrap();
        let at = |t| s.lr(2.0, t, 100) / 2.0;
        for (t, want) in
            [(0, 0.2), (23, 1.0), (100, 0.07), (10, 0.2 + 0.8 * 10.0 / 23.0), (50, 1.0 - 0.93 * 27.0 / 77.0)]
        {
            assert!((at(t) - want).abs() < 1e-12, "t = {t}: {} vs {want}", at(t));
        }
        assert_eq!(s.to_string(), "triangle:0.23:0.2:0.07");
        for bad in ["triangle", "triangle:0.23:0.2", "triangle:1.5:0.2:0.1", "triangle:0.2:-1:0.1"] {
            assert!(bad.parse::<Schedule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_table_by_hand() {
        // StepLR(step_size=2, gamma=0.5) from 1.0: 1, 1, 0.5, 0.5, 0.25.
        let s = Schedule::Step { step_size: 2, gamma: 0.5 };
        let got: Vec<f64> = (0..5).map(|t| s.lr(1.0, t, 5)).collect();
        assert_eq!(got, vec![1.0, 1.0, 0.5, 0.5, 0.25]);
        // Warm-up of 4 steps over a constant: 0.25, 0.5, 0.75, 1, 1.
        let w = Schedule::Warmup { steps: 4, inner: Box::new(Schedule::Constant) };
        let got: Vec<f64> = (0..5).map(|t| w.lr(1.0, t, 5)).collect();
        assert_eq!(got, vec![0.25, 0.5, 0.75, 1.0, 1.0]);
        // Warm-up comes before the cosine: the peak is the base rate, the cosine then spans the other steps.
        let w: Schedule = "warmup:100:cosine".parse().unwrap();
        let rates: Vec<f64> = (0..1000).map(|t| w.lr(1e-3, t, 1000)).collect();
        assert_eq!(rates.iter().cloned().fold(0.0, f64::max), 1e-3);
        assert_eq!((rates[99], rates[100]), (1e-3, 1e-3));
        assert!((rates[550] - 0.5e-3).abs() < 1e-15 && rates[999] < 1e-8);
    }

    #[test]
    fn text_forms_read_back_and_bad_ones_say_why() {
        for text in [
            "constant",
            "step:10:0.5",
            "multistep:5,20:0.1",
            "exp:0.999",
            "cosine",
            "cosine:100:0.001",
            "cosine::0.001",
            "cosine-restarts:50:2:0",
            "invsqrt:100",
            "onecycle:0.3",
            "plateau:3:0.5",
            "warmup:5:step:10:0.5",
            "warmup:100:cosine",
        ] {
            let s: Schedule = text.parse().unwrap();
            assert_eq!(s.to_string(), text);
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(serde_json::from_str::<Schedule>(&json).unwrap(), s, "{json}");
        }
        // Short forms take the defaults and are written out in full.
        assert_eq!("step:10".parse::<Schedule>().unwrap().to_string(), "step:10:0.1");
        assert_eq!("plateau".parse::<Schedule>().unwrap(), Schedule::Plateau { patience: 10, factor: 0.1 });
        for (text, needle) in [
            ("cosin", "unknown schedule 'cosin'"),
            ("step", "step needs SIZE"),
            ("step:x", "SIZE must be a number, got 'x'"),
            ("step:0", "SIZE must be at least 1"),
            ("exp:-1", "GAMMA must be positive"),
            ("exp:nan", "GAMMA must be positive"),
            ("cosine:100:-1", "ETA_MIN must be a finite number ≥ 0, got -1"),
            ("cosine:100:nan", "ETA_MIN must be a finite number ≥ 0, got NaN"),
            ("onecycle:2", "PCT_START must be between 0 and 1"),
            ("cosine:1:2:3", "at most 2 values"),
            ("warmup:5", "warmup needs the schedule it precedes"),
            ("warmup:5:cosin", "unknown schedule 'cosin'"),
        ] {
            let e = text.parse::<Schedule>().unwrap_err().to_string();
            assert!(e.starts_with("schedule: ") && e.contains(needle), "{text}: {e}");
        }
        assert!(Schedule::Step { step_size: 0, gamma: 0.1 }.validate().is_err());
    }
}
