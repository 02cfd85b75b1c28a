//! Live warnings: the diagnosis while training, said once per kind of
//! problem, as soon as the records show it.

use super::{diagnose, Evidence, Finding, Record, Verdict};
use crate::train::Observer;
use crate::Result;

/// An [`Observer`] that reads the run's [`Monitor`](super::Monitor) records
/// as [`Trainer::train`](crate::train::Trainer::train) hands them over
/// ([`Observer::on_record`]), measuring nothing itself, and at each new
/// record looks for a problem that reaches the current step: the
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
/// use saddle::train::{Observer, Record};
/// let mut watch = Watch::new(false);
/// // A loss that stopped at 2.3 while the gradient spikes every tenth record.
/// for i in 0..60 {
///     let spike = if i % 10 == 9 { 40.0 } else { 1.0 };
///     let r = Record { step: 10 * i + 9, loss: 2.3, lr: 0.1, grad_norm: 1.0, grad_norm_max: spike, clipped: 0.0,
///                      update_ratio: 1e-3, update_cosine: 0.1, layer_norms: vec![] };
///     watch.on_record(&r, &[]).unwrap();
/// }
/// let warnings = watch.take_warnings();
/// assert_eq!(warnings[0].verdict.to_string(), "exploding gradients");
/// assert!(watch.take_warnings().is_empty(), "said once");
/// ```
pub struct Watch {
    records: Vec<Record>,
    layers: Vec<String>,
    warned: Vec<Verdict>,
    fresh: Vec<Finding>,
    stop: bool,
}

impl Watch {
    /// A watch with no records yet; `stop`: ask training to end at the first warning.
    pub fn new(stop: bool) -> Self {
        Watch { records: Vec::new(), layers: Vec::new(), warned: Vec::new(), fresh: Vec::new(), stop }
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
        let records = &self.records;
        let Some(last) = records.last().filter(|_| records.len() >= 30) else {
            return;
        };
        let peak = records.iter().map(|r| r.lr).fold(0.0f32, f32::max);
        let winding_down = last.lr < 0.5 * peak;
        let findings = diagnose(&Evidence { records, layers: &self.layers, ..Default::default() });
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
    fn on_record(&mut self, record: &Record, layers: &[String]) -> Result<()> {
        if self.layers.is_empty() {
            self.layers = layers.to_vec();
        }
        self.records.push(record.clone());
        self.check();
        Ok(())
    }
    fn should_stop(&self) -> bool {
        self.stop && !self.warned.is_empty()
    }
}
