//! The pieces optimizers are built from, each a loop over one parameter's buffers.
//!
//! - weight decay: L2 `g ← g + λθ`, or decoupled `θ ← θ(1 − ηλ)` (AdamW);
//! - direction: heavy-ball momentum `b ← μb + (1 − τ)g` (first step `b ← g`);
//!   exponential average `m ← lerp(m, g, 1 − β)`;
//! - magnitude: a sum `s ← s + g²` (Adagrad) or an average
//!   `v ← βv + (1 − β)g²` (RMSProp, Adam), used as `σ = √v + ε`.
//!
//! Each mirrors PyTorch's arithmetic order (its `lerp`, `addcmul`, `addcdiv`)
//! so that results agree to the last bit where the operations are the same.
//! Hyperparameters are `f64`, like PyTorch's Python floats, and scalars derived
//! from them (`1 − β`) are computed in `f64` before the cast to `f32`.

/// L2 weight decay folded into the gradient: `g ← g + λθ`.
pub fn l2_decay(g: &mut [f32], theta: &[f32], lambda: f64) {
    if lambda != 0.0 {
        let l = lambda as f32;
        g.iter_mut().zip(theta).for_each(|(g, t)| *g += l * t);
    }
}

/// Decoupled weight decay (Loshchilov and Hutter): `θ ← θ · (1 − ηλ)`.
pub fn decoupled_decay(theta: &mut [f32], lr: f64, lambda: f64) {
    if lambda != 0.0 {
        let f = (1.0 - lr * lambda) as f32;
        theta.iter_mut().for_each(|t| *t *= f);
    }
}

/// Heavy-ball momentum `b ← μb + (1 − τ)g`; `b ← g` when `first`. Takes
/// `keep = 1 − τ`, computed by the caller in `f64` as PyTorch does.
pub fn momentum(b: &mut [f32], g: &[f32], mu: f32, keep: f32, first: bool) {
    if first {
        b.copy_from_slice(g);
    } else {
        b.iter_mut().zip(g).for_each(|(b, g)| *b = *b * mu + keep * g);
    }
}

/// `m ← lerp(m, g, w)` as PyTorch computes it: `m + w(g − m)` for `w < ½`,
/// else `g − (g − m)(1 − w)`. With `w = 1 − β`, an exponential average.
pub fn ema(m: &mut [f32], g: &[f32], beta: f64) {
    let w = (1.0 - beta) as f32;
    if w < 0.5 {
        m.iter_mut().zip(g).for_each(|(m, g)| *m += w * (g - *m));
    } else {
        m.iter_mut().zip(g).for_each(|(m, g)| *m = g - (g - *m) * (1.0 - w));
    }
}

/// Exponential average of the squared gradient: `v ← βv + (1 − β)g²`.
pub fn ema_sq(v: &mut [f32], g: &[f32], beta: f64) {
    let (b, w) = (beta as f32, (1.0 - beta) as f32);
    v.iter_mut().zip(g).for_each(|(v, g)| *v = *v * b + w * g * g);
}

/// Running sum of squared gradients (Adagrad): `s ← s + g²`.
pub fn sum_sq(s: &mut [f32], g: &[f32]) {
    s.iter_mut().zip(g).for_each(|(s, g)| *s += g * g);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_by_hand() {
        let mut g = vec![1.0, 2.0];
        l2_decay(&mut g, &[10.0, 20.0], 0.1);
        assert_eq!(g, vec![2.0, 4.0]);
        let mut b = vec![0.0];
        momentum(&mut b, &[1.0], 0.9, 1.0, true);
        momentum(&mut b, &[1.0], 0.9, 1.0, false);
        assert!((b[0] - 1.9).abs() < 1e-6);
        let mut m = vec![0.0];
        ema(&mut m, &[1.0], 0.9);
        assert!((m[0] - 0.1).abs() < 1e-7);
        ema(&mut m, &[1.0], 0.2); // w = 0.8 ≥ ½: the other branch of lerp
        assert!((m[0] - 0.82).abs() < 1e-6);
        let mut v = vec![0.0];
        ema_sq(&mut v, &[2.0], 0.999);
        assert!((v[0] - 0.004).abs() < 1e-7);
        let mut s = vec![1.0];
        sum_sq(&mut s, &[3.0]);
        assert_eq!(s[0], 10.0);
    }
}
