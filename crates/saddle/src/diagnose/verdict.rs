//! From measurements to a sentence: find the plateaus of the loss, and say of
//! each why the loss stopped falling.

use super::{Curvature, Record};
use std::fmt;

/// Why the loss stopped falling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The gradient stays large and successive updates point back and forth
    /// (negative cosine): the step overshoots across a ravine.
    Oscillating,
    /// The gradient is small and the Hessian has a clearly negative
    /// eigenvalue: a saddle point, not a minimum.
    SaddlePoint,
    /// The gradient is small and no eigenvalue is clearly negative.
    LocalMinimum,
    /// The gradient is small but the curvature was not measured here (only
    /// the checkpoint at the end of training can be probed).
    CriticalPoint,
    /// Updates are tiny relative to the weights.
    LearningRateTooSmall,
    /// Gradient norms spike, clipping fires often, or the loss is not finite.
    Exploding,
    /// The gradient dies out across layers or time steps.
    Vanishing,
    /// The loss is flat and no measurement explains it.
    Undetermined,
    /// Not at a critical point: the gradient is still large, the loss can
    /// still fall along it.
    Descending,
    /// A stretch that falls too little for the eye at each point, but over
    /// its length by far more than its noise: training is still working.
    SlowDescent,
}

impl Verdict {
    /// What to try, in general; [`Finding::advice`] fits it to the run.
    pub fn advice(self) -> &'static str {
        match self {
            Verdict::Oscillating => {
                "lower the learning rate (÷3 to ÷10), add warm-up, or use momentum or Adam, which damp the back-and-forth"
            }
            Verdict::SaddlePoint => {
                "this is not a minimum: start from random weights (not zeros, whose symmetry no gradient breaks); momentum, an adaptive optimizer (Adam) or gradient noise moves off it; a step along the negative-curvature direction lowers the loss"
            }
            Verdict::LocalMinimum => {
                "this is a minimum of this model: decay the learning rate to settle, or change the model or the data if the loss is still too high"
            }
            Verdict::CriticalPoint => {
                "the gradient is small: run `saddle diagnose` on a checkpoint taken here to tell a saddle from a minimum"
            }
            Verdict::LearningRateTooSmall => "raise the learning rate (×10), or use an adaptive optimizer (Adam)",
            Verdict::Exploding => "clip the gradient norm (--clip-norm 1), lower the learning rate, or add warm-up",
            Verdict::Vanishing => {
                "use an LSTM or GRU instead of a plain RNN (its additive cell carries the gradient), ReLU instead of saturating activations, or shorter sequences"
            }
            Verdict::Undetermined => {
                "the measurements do not explain the plateau: try a decaying learning rate, a larger model, or more data"
            }
            Verdict::Descending => "not stuck: train longer, or with a larger learning rate if progress is slow",
            Verdict::SlowDescent => "healthy: the loss is still falling; train longer if it should go lower",
        }
    }

    /// Whether the verdict is a problem to fix, as opposed to a run that
    /// learns (still descending) or has settled (a local minimum).
    pub fn is_problem(self) -> bool {
        !matches!(self, Verdict::LocalMinimum | Verdict::Descending | Verdict::SlowDescent)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Oscillating => "oscillating",
            Verdict::SaddlePoint => "saddle point",
            Verdict::LocalMinimum => "local minimum",
            Verdict::CriticalPoint => "critical point",
            Verdict::LearningRateTooSmall => "learning rate too small",
            Verdict::Exploding => "exploding gradients",
            Verdict::Vanishing => "vanishing gradients",
            Verdict::Undetermined => "undetermined",
            Verdict::Descending => "still descending",
            Verdict::SlowDescent => "slow, steady descent",
        })
    }
}

/// A plateau and why: the steps it spans, the verdict, and the numbers the
/// verdict rests on, as sentences.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// First step of the plateau.
    pub from_step: usize,
    /// Last step of the plateau.
    pub to_step: usize,
    /// Mean loss over the plateau.
    pub loss: f64,
    /// The verdict.
    pub verdict: Verdict,
    /// The measurements it rests on, one per line; for a saddle point or a
    /// local minimum the last says which threshold decided.
    pub evidence: Vec<String>,
    /// What to try, fitted to the run: advice it already follows (a
    /// decaying learning rate) is not given.
    pub advice: String,
}

impl Finding {
    /// A finding with the advice fitted to what `records` show of the run.
    pub fn new(steps: (usize, usize), loss: f64, verdict: Verdict, evidence: Vec<String>, records: &[Record]) -> Self {
        Finding { from_step: steps.0, to_step: steps.1, loss, verdict, evidence, advice: advise(verdict, records) }
    }
}

/// `(peak, last)` learning rate when the run's rate fell to under half its peak.
fn decayed(records: &[Record]) -> Option<(f64, f64)> {
    let peak = records.iter().map(|r| r.lr as f64).fold(0.0, f64::max);
    let last = records.last()?.lr as f64;
    (last < 0.5 * peak).then_some((peak, last))
}

/// [`Verdict::advice`], without what the run already does.
fn advise(verdict: Verdict, records: &[Record]) -> String {
    match (verdict, decayed(records)) {
        (Verdict::LocalMinimum, Some((peak, last))) => format!(
            "this is a minimum of this model, reached with the learning rate already decayed ({} → {}): to lower the loss, change the model (wider, deeper) or the data (more, augmented); for another minimum, another seed",
            num(peak),
            num(last)
        ),
        (Verdict::Undetermined, Some(_)) => {
            "the measurements do not explain the plateau, and the learning rate already decays: try a larger model or more data".into()
        }
        (v, _) => v.advice().into(),
    }
}

/// What a verdict may rest on.
#[derive(Clone, Copy, Debug, Default)]
pub struct Evidence<'a> {
    /// The [`Monitor`](super::Monitor)'s records, in step order.
    pub records: &'a [Record],
    /// Layer names of the records' `layer_norms`.
    pub layers: &'a [String],
    /// Curvature measured at the end of training.
    pub curvature: Option<&'a Curvature>,
    /// `‖∂L/∂h_t‖` for t = 1…T at the end of training (recurrent models).
    pub time_flow: Option<&'a [f64]>,
}

/// Thresholds of the verdicts, in one place.
mod limits {
    /// A plateau: over a tenth of the run, the smoothed loss falls by less
    /// than this fraction of its value, or by less than twice its noise.
    pub const FLAT_RELATIVE: f64 = 0.01;
    /// Still descending: over a whole stretch that looked flat at each point,
    /// the loss fell by more than this fraction (and more than its noise).
    pub const SLOW_DESCENT: f64 = 0.02;
    /// A small gradient: below this fraction of the largest seen before.
    pub const SMALL_GRADIENT: f64 = 0.05;
    /// A clearly negative eigenvalue: λ_min below −this·λ_max (and a step
    /// along it lowers the loss by more than 1%).
    pub const NEGATIVE_CURVATURE: f64 = 0.05;
    /// Oscillation: median cosine of successive updates below this.
    pub const OSCILLATING_COSINE: f64 = -0.2;
    /// Learning rate too small: median ‖Δθ‖/‖θ‖ below this.
    pub const TINY_UPDATE: f64 = 1e-5;
    /// Exploding: clipping fired in this fraction of the steps…
    pub const CLIPPED: f64 = 0.25;
    /// …or the largest norm is this many times the median.
    pub const SPIKE: f64 = 10.0;
    /// Vanishing: smallest over largest layer (or time-step) gradient norm.
    pub const COLLAPSE: f64 = 1e-4;
    /// A blow-up: one update moved the weights by this fraction of their norm
    /// (healthy runs: about 1e-3, under 0.2 at their first steps).
    pub const BLOWN: f64 = 0.5;
}

/// `x` in plain notation when that is short, else in scientific notation.
fn num(x: f64) -> String {
    if x == 0.0 || (1e-3..1e5).contains(&x.abs()) {
        format!("{x:.4}")
    } else {
        format!("{x:.3e}")
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// The noise `σ` of one record's loss, read off the differences of
/// consecutive records: their median absolute value ×1.4826/√2, robust to the
/// trend and to spikes.
fn noise_per_record(loss: &[f64]) -> f64 {
    1.4826 / 2f64.sqrt() * median(loss.windows(2).map(|p| (p[1] - p[0]).abs()).collect())
}

/// The plateaus of the loss, as ranges of record indices `[start, end]`:
/// stretches at least a tenth of the run long over which the smoothed loss
/// falls by less than 1% of its value, or by less than twice the noise of
/// the difference of two smoothed values (a rising or non-finite loss counts
/// as not falling); one that ends within a tenth of the run from its end is
/// taken to reach it. Needs at least 10 records.
///
/// The noise `σ` of one record is read off the differences of consecutive
/// records (their median absolute value ×1.4826/√2, robust to the trend and
/// to spikes); a mean of `w` records then differs from another by about
/// `σ·√(2/w)`.
pub fn plateaus(records: &[Record]) -> Vec<(usize, usize)> {
    let n = records.len();
    if n < 10 {
        return Vec::new();
    }
    // Centered moving average over w records, as long as the span compared.
    let span = (n / 10).max(2);
    let w = span;
    let loss: Vec<f64> = records.iter().map(|r| r.loss as f64).collect();
    let smooth: Vec<f64> = (0..n)
        .map(|i| {
            let (a, b) = (i.saturating_sub(w / 2), (i + w / 2 + 1).min(n));
            loss[a..b].iter().sum::<f64>() / (b - a) as f64
        })
        .collect();
    let noise = 2.0 * noise_per_record(&loss) * (2.0 / w as f64).sqrt();
    let mut out: Vec<(usize, usize)> = Vec::new();
    for i in 0..n - span {
        let (a, b) = (smooth[i], smooth[i + span]);
        let fall = a - b;
        let flat = !(fall > limits::FLAT_RELATIVE * a.abs() && fall > noise);
        if flat {
            // Within one span of the end is at the end: that is the resolution.
            let end = if i + 2 * span >= n { n - 1 } else { i + span };
            match out.last_mut() {
                Some(last) if last.1 >= i => last.1 = last.1.max(end),
                _ => out.push((i, end)),
            }
        }
    }
    out
}

/// Finds the plateaus of `e.records` and classifies each, in this order:
/// exploding (non-finite values, clipping or spikes); a slow descent (the
/// loss still fell by more than its noise and 2%); a saddle point (a small
/// gradient and clearly negative curvature, where it was measured); vanishing
/// (layer or time-step norms collapse; exploding instead when an update
/// before moved the weights by over half their norm); another small
/// gradient (a local minimum by the curvature, else a critical point);
/// oscillating; learning rate too small; a pause (the loss went on to fall
/// well below it) or a fall within the noise but above 2%, both healthy;
/// else undetermined. Vanishing is not a verdict once the loss has fallen by
/// 95%: what is learned is learned.
pub fn diagnose(e: &Evidence) -> Vec<Finding> {
    plateaus(e.records).into_iter().map(|(a, b)| classify(e, a, b)).collect()
}

/// Saddle point or local minimum, from the curvature at a point whose
/// gradient is small; adds the numbers to `evidence`.
fn critical_point(c: &Curvature, evidence: &mut Vec<String>) -> Verdict {
    evidence.push(format!(
        "at the final weights: gradient norm {:.3e}{}; Hessian λ_max = {:.4e}, λ_min = {:.4e} (λ_min/λ_max = {:.3}, Lanczos, {} steps)",
        c.grad_norm,
        if c.grad_noise.is_finite() { format!(" (sampling noise σ = {:.3e})", c.grad_noise) } else { String::new() },
        c.lambda_max,
        c.lambda_min,
        c.ratio(),
        c.iterations
    ));
    let e = &c.escape;
    evidence.push(if e.alpha == 0.0 {
        "no step along the direction of λ_min lowers the loss".to_string()
    } else {
        let change = if e.before == 0.0 {
            String::new()
        } else {
            format!(" ({:+.1}%)", 100.0 * (e.after - e.before) / e.before.abs())
        };
        format!(
            "a step of {:.3e} along the direction of λ_min takes the loss from {} to {}{change}",
            e.alpha,
            num(e.before),
            num(e.after)
        )
    });
    let fall = 100.0 * (e.before - e.after) / e.before.abs().max(1e-6);
    let steep = c.ratio() < -limits::NEGATIVE_CURVATURE;
    let (verdict, why) = match (c.clearly_negative(limits::NEGATIVE_CURVATURE), steep) {
        (true, _) => (
            Verdict::SaddlePoint,
            format!(
                "a saddle point: λ_min/λ_max = {:.3} is below −{} and a step along its direction lowers the loss by {fall:.1}%, more than the 1% a saddle needs",
                c.ratio(),
                limits::NEGATIVE_CURVATURE
            ),
        ),
        (false, true) => (
            Verdict::LocalMinimum,
            format!(
                "a minimum although λ_min < 0: a step along its direction lowers the loss by only {fall:.1}%, under the 1% a saddle needs (a sliver of non-convexity or noise of the measurement, not a way down)"
            ),
        ),
        (false, false) => (
            Verdict::LocalMinimum,
            format!(
                "a minimum: λ_min/λ_max = {:.3} is not below −{}, no clearly negative curvature",
                c.ratio(),
                limits::NEGATIVE_CURVATURE
            ),
        ),
    };
    evidence.push(format!("so {why}"));
    verdict
}

/// The verdict on the final weights, whatever the loss curve did: a saddle
/// point or a local minimum when the gradient there is below 5% of the
/// largest logged, else still descending. Needs the curvature.
pub fn final_weights(e: &Evidence) -> Option<Finding> {
    let c = e.curvature?;
    let last = e.records.last()?;
    let g_peak = peak_gradient(e.records);
    let mut evidence = vec![if g_peak > 0.0 {
        format!(
            "‖∇L‖ at the final weights is {:.3e}, {:.1}% of the largest gradient norm logged in training ({g_peak:.3e}){}",
            c.grad_norm,
            100.0 * c.grad_norm / g_peak,
            noise_note(c)
        )
    } else {
        format!("‖∇L‖ at the final weights is {:.3e}; every gradient norm logged in training was 0", c.grad_norm)
    }];
    let verdict = if stationary(c, g_peak) { critical_point(c, &mut evidence) } else { Verdict::Descending };
    Some(Finding::new((last.step, last.step), c.loss, verdict, evidence, e.records))
}

/// The largest finite gradient norm of `records`.
fn peak_gradient(records: &[Record]) -> f64 {
    records.iter().map(|x| x.grad_norm as f64).filter(|v| v.is_finite()).fold(0.0, f64::max)
}

/// Whether the gradient at the measured point is small: under 5% of the
/// largest logged in training, or within twice its sampling noise (the data
/// cannot tell it from zero; so it is at a point whose only gradient is noise
/// of the mini-batches, such as a saddle where every weight starts at zero).
fn stationary(c: &Curvature, g_peak: f64) -> bool {
    c.grad_norm <= limits::SMALL_GRADIENT * g_peak || within_noise(c)
}

/// Whether the gradient is within twice its sampling noise (false where the noise was not measured).
fn within_noise(c: &Curvature) -> bool {
    c.grad_norm <= 2.0 * c.grad_noise
}

/// A note that the gradient is within twice its sampling noise, when it is.
fn noise_note(c: &Curvature) -> String {
    if within_noise(c) {
        "; within twice its sampling noise: the data cannot tell it from zero".into()
    } else {
        String::new()
    }
}

/// Makes the verdict on the final weights `end` agree with the loss curve's
/// last finding: weights whose loss is still falling are passing through,
/// whatever the curvature there (a saddle becomes still descending); weights
/// held on a plateau that is a problem are held by that problem (its advice
/// is theirs).
pub(crate) fn agree(findings: &[Finding], end: &mut Finding) {
    match findings.last().filter(|f| f.to_step >= end.to_step) {
        Some(last) if last.verdict.is_problem() && !end.verdict.is_problem() => {
            end.evidence.push(format!("but the plateau that reaches them is a problem: {}", last.verdict));
            end.advice.clone_from(&last.advice);
        }
        Some(Finding { verdict: Verdict::SlowDescent, .. }) | None if end.verdict == Verdict::SaddlePoint => {
            end.evidence.push(
                "but the loss is still falling at the end of training, so the weights pass this negative curvature by: not stuck"
                    .into(),
            );
            end.verdict = Verdict::Descending;
            end.advice = Verdict::Descending.advice().into();
        }
        _ => {}
    }
}

fn classify(e: &Evidence, a: usize, b: usize) -> Finding {
    let r = &e.records[a..=b];
    let at_end = b + 1 == e.records.len();
    let col = |f: fn(&Record) -> f32| r.iter().map(|x| f(x) as f64).collect::<Vec<f64>>();
    let loss = col(|x| x.loss).iter().sum::<f64>() / r.len() as f64;
    let g = median(col(|x| x.grad_norm));
    let g_max = col(|x| x.grad_norm_max).into_iter().fold(0.0, f64::max);
    let g_peak = peak_gradient(&e.records[..=b]);
    let clipped = col(|x| x.clipped).iter().sum::<f64>() / r.len() as f64;
    let cosine = median(col(|x| x.update_cosine));
    let ratio = median(col(|x| x.update_ratio));
    let nonfinite = r.iter().any(|x| !x.loss.is_finite() || !x.grad_norm.is_finite());
    // The loss at the plateau's two ends: the mean of its first and last
    // quarter (mini-batch losses are noisy).
    let quarter = (r.len() / 4).max(1);
    let mean_loss = |x: &[Record]| x.iter().map(|x| x.loss as f64).sum::<f64>() / x.len() as f64;
    let (from, to) = (mean_loss(&r[..quarter]), mean_loss(&r[r.len() - quarter..]));
    let mut evidence = vec![format!(
        "loss {} → {} over steps {}–{}; gradient norm {g:.3e} (median), {:.1}% of its peak {g_peak:.3e}",
        num(from),
        num(to),
        r[0].step,
        r[r.len() - 1].step,
        100.0 * g / g_peak.max(f64::MIN_POSITIVE)
    )];
    let finding =
        |verdict, evidence| Finding::new((r[0].step, r[r.len() - 1].step), loss, verdict, evidence, e.records);

    if nonfinite || clipped >= limits::CLIPPED || (g > 0.0 && g_max > limits::SPIKE * g) {
        evidence.push(format!(
            "largest gradient norm {g_max:.3e} = {}× the median; clipping fired in {:.0}% of the steps{}",
            num(g_max / g.max(f64::MIN_POSITIVE)),
            100.0 * clipped,
            if nonfinite { "; the loss or the gradient is not finite" } else { "" }
        ));
        return finding(Verdict::Exploding, evidence);
    }
    // Flat at each point need not be flat over the stretch: a loss that falls
    // by more than twice the noise of the two quarters' means, and by more
    // than 2%, from one end to the other is still being lowered.
    let sigma = noise_per_record(&e.records.iter().map(|x| x.loss as f64).collect::<Vec<_>>());
    let noise = 2.0 * sigma * (2.0 / quarter as f64).sqrt();
    let descending = from - to > noise && from - to > limits::SLOW_DESCENT * from.abs();
    if descending {
        evidence.push(format!(
            "the loss fell by {:.1}% over the stretch, {:.1}σ of the difference of its ends (σ = {}); update cosine {cosine:.2}: still learning",
            100.0 * (from - to) / from.abs().max(f64::MIN_POSITIVE),
            2.0 * (from - to) / noise.max(f64::MIN_POSITIVE),
            num(noise / 2.0)
        ));
        return finding(Verdict::SlowDescent, evidence);
    }
    // A small gradient: the logged (mini-batch) norms, or the full gradient at the checkpoint.
    let curvature = e.curvature.filter(|_| at_end);
    let small = g <= limits::SMALL_GRADIENT * g_peak || curvature.is_some_and(|c| stationary(c, g_peak));
    // A saddle explains layers without gradient: at a point where a layer's
    // weights are zero, the layers before it get none, and the way out is the
    // negative curvature that couples them, not a better-conditioned network.
    let point = curvature.filter(|_| small).map(|c| {
        let mut why = Vec::new();
        (critical_point(c, &mut why), why)
    });
    if let Some((Verdict::SaddlePoint, why)) = &point {
        evidence.extend(why.iter().cloned());
        return finding(Verdict::SaddlePoint, evidence);
    }
    let layer_collapse = median(
        r.iter()
            .map(|x| {
                let max = x.layer_norms.iter().fold(0.0f32, |m, &v| m.max(v)) as f64;
                let min = x.layer_norms.iter().fold(f32::INFINITY, |m, &v| m.min(v)) as f64;
                if max > 0.0 && x.layer_norms.len() > 1 {
                    min / max
                } else {
                    f64::NAN
                }
            })
            .collect(),
    );
    let first = e.records[0].loss as f64;
    let converged = first.is_finite() && first > 0.0 && loss <= 0.05 * first;
    if layer_collapse < limits::COLLAPSE && !converged {
        let last = &r[r.len() - 1];
        let (lo, hi) = (0..last.layer_norms.len()).fold((0, 0), |(lo, hi), i| {
            let v = &last.layer_norms;
            (if v[i] < v[lo] { i } else { lo }, if v[i] > v[hi] { i } else { hi })
        });
        evidence.push(format!(
            "layer gradient norms collapse: {} has {:.3e}, {} has {:.3e} (ratio {layer_collapse:.1e})",
            e.layers.get(lo).map_or("?", String::as_str),
            last.layer_norms[lo],
            e.layers.get(hi).map_or("?", String::as_str),
            last.layer_norms[hi]
        ));
        // Layers that stopped getting a gradient after a step that threw the
        // weights far (dead ReLUs, saturated units) were killed by an explosion.
        let blow = e.records[..=b]
            .iter()
            .filter(|x| x.update_ratio.is_finite())
            .max_by(|x, y| x.update_ratio.total_cmp(&y.update_ratio));
        if let Some(blow) = blow.filter(|x| x.update_ratio as f64 > limits::BLOWN) {
            evidence.push(format!(
                "before that, an update in the steps up to {} moved the weights by {:.2}× their norm (gradient norm up to {:.3e}): the step threw the units where they no longer respond, and the gradient has not come back",
                blow.step, blow.update_ratio, blow.grad_norm_max
            ));
            return finding(Verdict::Exploding, evidence);
        }
        return Finding {
            advice: "ReLU instead of saturating activations (sigmoid, tanh), batch normalization or residual connections, or an initialization scaled to each layer's width (Kaiming, Xavier)".into(),
            ..finding(Verdict::Vanishing, evidence)
        };
    }
    if let (true, false, Some(flow)) = (at_end, converged, e.time_flow) {
        let (first, last) = (flow[0], flow[flow.len() - 1]);
        if last > 0.0 && first / last < limits::COLLAPSE {
            evidence.push(format!(
                "through time: ‖∂L/∂h_1‖ = {first:.3e} against ‖∂L/∂h_{}‖ = {last:.3e} (ratio {:.1e}): what happened {} steps back no longer reaches the loss",
                flow.len(),
                first / last,
                flow.len() - 1
            ));
            return Finding {
                advice: "an LSTM or GRU instead of a plain RNN (its additive cell carries the gradient), or shorter sequences (what matters nearer to where it is needed)".into(),
                ..finding(Verdict::Vanishing, evidence)
            };
        }
    }
    if small {
        let Some((verdict, why)) = point else {
            return finding(Verdict::CriticalPoint, evidence);
        };
        evidence.extend(why);
        return finding(verdict, evidence);
    }
    if cosine < limits::OSCILLATING_COSINE {
        evidence.push(format!("successive updates point back and forth: median cos(Δθ_t, Δθ_t−1) = {cosine:.2}"));
        return finding(Verdict::Oscillating, evidence);
    }
    if ratio < limits::TINY_UPDATE {
        evidence.push(format!("updates move the weights by {ratio:.1e} of their norm per step (healthy: about 1e-3)"));
        return finding(Verdict::LearningRateTooSmall, evidence);
    }
    evidence.push(format!("update ratio ‖Δθ‖/‖θ‖ = {ratio:.1e}, update cosine {cosine:.2}"));
    // Nothing measured explains it, and the loss went on to fall well below
    // it: a pause in the noise of the mini-batches, not a place training stopped.
    let later = &e.records[b + 1..];
    if later.len() >= quarter {
        let after = mean_loss(&later[later.len() - quarter..]);
        if to - after > noise && to - after > limits::SLOW_DESCENT * to.abs() {
            evidence.push(format!(
                "after it the loss went on to fall to {} ({:.1}% lower): a pause in the noise, not a stop",
                num(after),
                100.0 * (to - after) / to.abs().max(f64::MIN_POSITIVE)
            ));
            return finding(Verdict::SlowDescent, evidence);
        }
    }
    // An alarm without a cause needs a loss that stopped: one that still fell
    // by more than 2%, if within its noise, is too short or too noisy to call stuck.
    if from - to > limits::SLOW_DESCENT * from.abs() {
        evidence.push(format!(
            "the loss fell by {:.1}% over the stretch, within its noise (σ = {}) but more than a plateau's 2%: not shown to be stuck",
            100.0 * (from - to) / from.abs().max(f64::MIN_POSITIVE),
            num(noise / 2.0)
        ));
        return finding(Verdict::SlowDescent, evidence);
    }
    finding(Verdict::Undetermined, evidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(step: usize, loss: f32) -> Record {
        Record {
            step,
            loss,
            lr: 0.1,
            grad_norm: 1.0,
            grad_norm_max: 1.0,
            clipped: 0.0,
            update_ratio: 1e-3,
            update_cosine: 0.5,
            layer_norms: vec![],
        }
    }

    /// The default MNIST run's numbers: λ_min/λ_max = −0.229, but the step lowers the loss by 0.7%.
    #[test]
    fn a_verdict_says_which_threshold_decided_and_its_advice_fits_the_run() {
        let curvature = |after: f64| Curvature {
            loss: 0.0076,
            grad_norm: 0.05,
            grad_noise: f64::NAN,
            lambda_max: 41.7,
            lambda_min: -9.56,
            min_direction: vec![],
            escape: crate::diagnose::Escape { before: 1.0, alpha: 0.01, after },
            iterations: 20,
        };
        let decaying: Vec<Record> =
            (0..100).map(|i| Record { lr: 0.1 * (1.0 - i as f32 / 100.0), ..record(i, 1.0) }).collect();
        let constant: Vec<Record> = (0..100).map(|i| record(i, 1.0)).collect();
        for (records, decays) in [(&decaying, true), (&constant, false)] {
            let c = curvature(0.993);
            let e = Evidence { records, curvature: Some(&c), ..Default::default() };
            let f = final_weights(&e).unwrap();
            assert_eq!(f.verdict, Verdict::LocalMinimum);
            let why = f.evidence.last().unwrap();
            assert!(why.contains("lowers the loss by only 0.7%, under the 1% a saddle needs"), "{why}");
            assert_eq!(f.advice.contains("decay the learning rate"), !decays, "{}", f.advice);
        }
        let c = curvature(0.95);
        let f = final_weights(&Evidence { records: &constant, curvature: Some(&c), ..Default::default() }).unwrap();
        assert_eq!(f.verdict, Verdict::SaddlePoint);
        assert!(f.evidence.last().unwrap().contains("lowers the loss by 5.0%, more than the 1% a saddle needs"));
    }

    /// The run: after a fast fall, the loss goes from 0.150 to 0.106
    /// in noisy steps, flat at each point for the eye and the local test,
    /// falling by 29% over the stretch: healthy. The same stretch without the
    /// fall is a plateau to explain.
    #[test]
    fn a_slow_noisy_descent_is_healthy_and_a_flat_stretch_is_not() {
        let run = |tail_fall: f32| -> Vec<Record> {
            let mut rng = crate::Rng::new(1);
            (0..700)
                .map(|i| {
                    let loss = match i {
                        0..100 => 2.0 - 1.85 * i as f32 / 100.0,
                        _ => 0.15 - tail_fall * (i - 100) as f32 / 600.0 + rng.normal(0.0, 0.03),
                    };
                    record(i, loss)
                })
                .collect()
        };
        for (fall, healthy) in [(0.044, true), (0.0, false)] {
            let records = run(fall);
            let findings = diagnose(&Evidence { records: &records, ..Default::default() });
            assert!(!findings.is_empty(), "the local test sees a stretch either way");
            let f = findings.last().unwrap();
            assert_eq!(f.verdict == Verdict::SlowDescent, healthy, "{f:?}");
            assert_eq!(f.verdict.is_problem(), !healthy, "{f:?}");
        }
    }

    /// A stretch whose loss fell by 5%, within its noise (±0.1 from one
    /// record to the next): not shown to be stuck, so no alarm; by 0.5%: a
    /// plateau without a cause.
    #[test]
    fn an_unexplained_stretch_is_an_alarm_only_when_its_loss_stopped() {
        for (fall, alarm) in [(0.05f32, false), (0.005, true)] {
            let records: Vec<Record> = (0..200)
                .map(|i| {
                    let loss = match i {
                        0..100 => 3.0 - 2.0 * i as f32 / 100.0,
                        _ => 1.0 - fall * (i - 100) as f32 / 100.0 + if i % 2 == 0 { 0.1 } else { -0.1 },
                    };
                    record(i, loss)
                })
                .collect();
            let f = diagnose(&Evidence { records: &records, ..Default::default() }).pop().unwrap();
            assert_eq!(f.verdict, if alarm { Verdict::Undetermined } else { Verdict::SlowDescent }, "{f:?}");
        }
    }

    /// The end's verdict follows the curve: a saddle whose loss still falls
    /// is passed by; a minimum on a vanishing plateau takes its advice.
    #[test]
    fn the_final_weights_agree_with_the_last_stretch() {
        let at = |verdict| Finding::new((0, 99), 1.0, verdict, vec![], &[]);
        let mut end = Finding::new((99, 99), 1.0, Verdict::SaddlePoint, vec![], &[]);
        agree(&[at(Verdict::SlowDescent)], &mut end);
        assert_eq!(end.verdict, Verdict::Descending);
        let mut end = Finding::new((99, 99), 1.0, Verdict::SaddlePoint, vec![], &[]);
        agree(&[at(Verdict::SaddlePoint)], &mut end);
        assert_eq!(end.verdict, Verdict::SaddlePoint);
        let mut end = Finding::new((99, 99), 1.0, Verdict::LocalMinimum, vec![], &[]);
        agree(&[at(Verdict::Vanishing)], &mut end);
        assert_eq!((end.verdict, end.advice.as_str()), (Verdict::LocalMinimum, Verdict::Vanishing.advice()));
    }

    #[test]
    fn plateau_between_two_falls() {
        // Falls from 2 to 1 over 30 records, flat for 40, falls to 0.1 over 30.
        let loss = |i: usize| match i {
            0..30 => 2.0 - i as f32 / 30.0,
            30..70 => 1.0,
            _ => 1.0 - 0.9 * (i - 70) as f32 / 30.0,
        };
        let records: Vec<Record> = (0..100).map(|i| record(i, loss(i))).collect();
        let p = plateaus(&records);
        assert_eq!(p.len(), 1, "{p:?}");
        let (a, b) = p[0];
        assert!((27..=32).contains(&a) && (68..=72).contains(&b), "{p:?}");
        // Steady progress has no plateau.
        let falling: Vec<Record> = (0..100).map(|i| record(i, 2.0 - i as f32 / 60.0)).collect();
        assert!(plateaus(&falling).is_empty());
    }
}
