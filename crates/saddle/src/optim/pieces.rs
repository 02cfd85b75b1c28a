//! The pieces optimizers are built from, each a loop over one parameter's buffers.
//!
//! - weight decay: L2 `g ← g + λθ`, or decoupled `θ ← θ(1 − ηλ)` (AdamW);
//! - direction: heavy-ball momentum `b ← μb + (1 − τ)g` (first step `b ← g`),
//!   Nesterov `g ← g + μb`; exponential average `m ← m + (1 − β)(g − m)`;
//! - magnitude: `v ← βv + (1 − β)g²`, used as `σ = √v̂ + ε`.
//!
//! Each mirrors PyTorch's arithmetic order so results agree to the last bit
//! where the operations are the same.

/// L2 weight decay folded into the gradient: `g ← g + λθ`.
pub fn l2_decay(g: &mut [f32], theta: &[f32], lambda: f32) {
    if lambda != 0.0 {
        g.iter_mut().zip(theta).for_each(|(g, t)| *g += lambda * t);
    }
}

/// Decoupled weight decay (Loshchilov and Hutter): `θ ← θ · (1 − ηλ)`.
pub fn decoupled_decay(theta: &mut [f32], lr: f32, lambda: f32) {
    if lambda != 0.0 {
        let f = 1.0 - lr * lambda;
        theta.iter_mut().for_each(|t| *t *= f);
    }
}

/// Heavy-ball momentum buffer `b ← μb + (1 − τ)g`, `b ← g` on the first step.
pub fn momentum(buf: &mut Option<Vec<f32>>, g: &[f32], mu: f32, dampening: f32) {
    match buf {
        None => *buf = Some(g.to_vec()),
        Some(b) => b.iter_mut().zip(g).for_each(|(b, g)| *b = mu * *b + (1.0 - dampening) * g),
    }
}

/// Exponential moving average of the gradient: `m ← m + (1 − β)(g − m)` (PyTorch's `lerp_`).
pub fn ema(m: &mut [f32], g: &[f32], beta: f32) {
    let w = 1.0 - beta;
    m.iter_mut().zip(g).for_each(|(m, g)| *m += w * (g - *m));
}

/// Exponential moving average of the squared gradient: `v ← βv + (1 − β)g²`.
pub fn ema_sq(v: &mut [f32], g: &[f32], beta: f32) {
    let w = 1.0 - beta;
    v.iter_mut().zip(g).for_each(|(v, g)| *v = *v * beta + w * g * g);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_by_hand() {
        let mut g = vec![1.0, 2.0];
        l2_decay(&mut g, &[10.0, 20.0], 0.1);
        assert_eq!(g, vec![2.0, 4.0]);
        let mut b = None;
        momentum(&mut b, &[1.0], 0.9, 0.0);
        momentum(&mut b, &[1.0], 0.9, 0.0);
        assert!((b.unwrap()[0] - 1.9).abs() < 1e-6);
        let mut m = vec![0.0];
        ema(&mut m, &[1.0], 0.9);
        assert!((m[0] - 0.1).abs() < 1e-7);
        let mut v = vec![0.0];
        ema_sq(&mut v, &[2.0], 0.999);
        assert!((v[0] - 0.004).abs() < 1e-7);
    }
}
