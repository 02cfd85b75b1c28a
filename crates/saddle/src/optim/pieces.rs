//! The pieces optimizers are built from, one element at a time.
//!
//! - weight decay: L2 `g ← g + λθ`, or decoupled `θ ← θ(1 − ηλ)` (AdamW);
//! - direction: heavy-ball momentum `b ← μb + (1 − τ)g` (first step `b ← g`);
//!   an exponential average `m ← lerp(m, g, 1 − β)`;
//! - magnitude: a sum `s ← s + g²` (Adagrad) or an average
//!   `v ← βv + (1 − β)g²` (RMSProp, Adam), used as `σ = √v + ε`.
//!
//! Each optimizer's update is one loop over its elements that calls these in
//! the order of its algorithm box, so a step reads and writes each buffer once.
//! Each piece mirrors PyTorch's arithmetic order (its `lerp`, `addcmul`,
//! `addcdiv`), so results agree to the last bit where the operations are the
//! same. Scalars derived from hyperparameters (`1 − β`) are computed in `f64`,
//! as PyTorch computes them in Python floats, then cast: see [`Coefficients`].

/// Hyperparameter-derived scalars, computed once per step in `f64` and cast to `f32`.
#[derive(Clone, Copy, Debug)]
pub struct Coefficients {
    /// β (or α, or μ).
    pub beta: f32,
    /// 1 − β.
    pub one_minus_beta: f32,
}

impl Coefficients {
    /// β and 1 − β for a decay rate `beta`.
    pub fn new(beta: f64) -> Self {
        Coefficients { beta: beta as f32, one_minus_beta: (1.0 - beta) as f32 }
    }
}

/// L2 weight decay folded into the gradient: `g + λθ`.
#[inline(always)]
pub fn l2_decay(g: f32, theta: f32, lambda: f32) -> f32 {
    if lambda != 0.0 {
        g + lambda * theta
    } else {
        g
    }
}

/// Heavy-ball momentum: `μb + (1 − τ)g`, or `g` on the first step (`keep = 1 − τ`).
#[inline(always)]
pub fn momentum(b: f32, g: f32, mu: f32, keep: f32, first: bool) -> f32 {
    if first {
        g
    } else {
        b * mu + keep * g
    }
}

/// `lerp(m, g, w)` with `w = 1 − β`, as PyTorch computes it: `m + w(g − m)` for
/// `w < ½`, else `g − (g − m)(1 − w)`. An exponential average of `g`.
#[inline(always)]
pub fn ema(m: f32, g: f32, c: Coefficients) -> f32 {
    let w = c.one_minus_beta;
    if w < 0.5 {
        m + w * (g - m)
    } else {
        g - (g - m) * (1.0 - w)
    }
}

/// Exponential average of the squared gradient: `βv + (1 − β)g²`.
#[inline(always)]
pub fn ema_sq(v: f32, g: f32, c: Coefficients) -> f32 {
    v * c.beta + c.one_minus_beta * g * g
}

/// Running sum of squared gradients (Adagrad): `s + g²`.
#[inline(always)]
pub fn sum_sq(s: f32, g: f32) -> f32 {
    s + g * g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_by_hand() {
        assert_eq!(l2_decay(1.0, 10.0, 0.1), 2.0);
        let b = momentum(0.0, 1.0, 0.9, 1.0, true);
        assert!((momentum(b, 1.0, 0.9, 1.0, false) - 1.9).abs() < 1e-6);
        let m = ema(0.0, 1.0, Coefficients::new(0.9));
        assert!((m - 0.1).abs() < 1e-7);
        // w = 0.8 ≥ ½: the other branch of lerp.
        assert!((ema(m, 1.0, Coefficients::new(0.2)) - 0.82).abs() < 1e-6);
        assert!((ema_sq(0.0, 2.0, Coefficients::new(0.999)) - 0.004).abs() < 1e-7);
        assert_eq!(sum_sq(1.0, 3.0), 10.0);
    }
}
