//! Live warnings: the diagnosis while training, said once per kind of
//! problem, as soon as the records show it.

use super::{diagnose, Evidence, Finding, Monitor, Verdict};
use crate::train::{Observer, StepMetrics};
use crate::{Result, Tensor};

/// An [`Observer`] that measures what the [`Monitor`] measures and, at each
/// new record, looks for a problem that reaches the current step: the
/// [`diagnose`] verdict on a plateau that ends there, when it is a problem
/// ([`Verdict::is_problem`]) not yet warned of. A live warning needs more than
/// the diagnosis after the fact, which sees the whole run: but for exploding
/// gradients, the stretch must be at least 30 records long and a fifth of the
/// records so far (100 and a third for a plateau without a cause), its loss must not have fallen by more than 2% from its
/// first quarter to its last, and the learning rate must not have decayed
/// below half its peak (a schedule that winds down flattens the loss on
/// purpose).
///
/// ```
/// use saddle::diagnose::Watch;
/// let mut watch = Watch::new(10, false);
/// assert!(watch.take_warnings().is_empty());
/// ```
pub struct Watch {
    monitor: Monitor,
    warned: Vec<Verdict>,
    fresh: Vec<Finding>,
    stop: bool,
}

impl Watch {
    /// Records every `interval` steps; `stop`: ask training to end at the first warning.
    pub fn new(interval: usize, stop: bool) -> Self {
        Watch { monitor: Monitor::new(interval), warned: Vec::new(), fresh: Vec::new(), stop }
    }

    /// The warnings given since the last call, oldest first.
    pub fn take_warnings(&mut self) -> Vec<Finding> {
        std::mem::take(&mut self.fresh)
    }

    /// Every kind of problem warned of so far.
    pub fn warned(&self) -> &[Verdict] {
        &self.warned
    }

    fn check(&mut self) {
        let records = self.monitor.records();
        let Some(last) = records.last().filter(|_| records.len() >= 30) else {
            return;
        };
        let peak = records.iter().map(|r| r.lr).fold(0.0f32, f32::max);
        let winding_down = last.lr < 0.5 * peak;
        let findings = diagnose(&Evidence { records, layers: self.monitor.layers(), ..Default::default() });
        let Some(f) = findings.into_iter().last().filter(|f| f.to_step == last.step) else {
            return;
        };
        let stretch: Vec<f64> = records.iter().filter(|r| r.step >= f.from_step).map(|r| r.loss as f64).collect();
        let quarter = (stretch.len() / 4).max(1);
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (from, to) = (mean(&stretch[..quarter]), mean(&stretch[stretch.len() - quarter..]));
        // A plateau without a cause must be longer: a noisy epoch looks flat for a while.
        let unexplained = matches!(f.verdict, Verdict::Undetermined | Verdict::CriticalPoint);
        let (least, share) = if unexplained { (100, 3) } else { (30, 5) };
        let long = stretch.len() >= least && stretch.len() * share >= records.len();
        let stuck = long && (from - to <= 0.02 * from.abs() || from.is_nan() || to.is_nan());
        let live = f.verdict == Verdict::Exploding || (f.verdict.is_problem() && stuck && !winding_down);
        if live && !self.warned.contains(&f.verdict) {
            self.warned.push(f.verdict);
            self.fresh.push(f);
        }
    }
}

impl Observer for Watch {
    fn before_update(&mut self, step: usize, params: &[(String, Tensor)]) -> Result<()> {
        self.monitor.before_update(step, params)
    }
    fn on_step(&mut self, m: &StepMetrics) -> Result<()> {
        let before = self.monitor.records().len();
        self.monitor.on_step(m)?;
        if self.monitor.records().len() > before {
            self.check();
        }
        Ok(())
    }
    fn should_stop(&self) -> bool {
        self.stop && !self.warned.is_empty()
    }
}
