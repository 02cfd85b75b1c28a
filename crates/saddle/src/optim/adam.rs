//! Adam and AdamW (`torch.optim.Adam`, `torch.optim.AdamW`): momentum for the
//! direction, RMSProp for the magnitude, both bias-corrected.
//!
//! ```text
//! g ← ∇θ + λθ                      (Adam's L2 weight decay)   or   θ ← θ(1 − ηλ)   (AdamW)
//! m ← m + (1 − β₁)(g − m)          direction: momentum
//! v ← β₂v + (1 − β₂)g²             magnitude: RMSProp (v_max ← max(v_max, v) with amsgrad)
//! θ ← θ − η/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
//! ```
//!
//! Uses: `optim::pieces`, `tensor`, `error`.

use super::{pieces, Optimizer};
use crate::{Error, Result, Tensor};
use std::collections::HashMap;

/// Adam hyperparameters; `Default` is PyTorch's (`lr = 1e-3`, `betas = (0.9, 0.999)`,
/// `eps = 1e-8`, no weight decay). `decoupled` makes it AdamW (whose PyTorch
/// default `weight_decay` is 0.01: use [`AdamConfig::adamw`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate η.
    pub lr: f32,
    /// (β₁, β₂).
    pub betas: (f32, f32),
    /// ε added to the denominator.
    pub eps: f32,
    /// Weight decay λ.
    pub weight_decay: f32,
    /// Keep the running maximum of `v` (Reddi et al. 2018).
    pub amsgrad: bool,
    /// Decoupled weight decay (AdamW) instead of L2.
    pub decoupled: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig { lr: 1e-3, betas: (0.9, 0.999), eps: 1e-8, weight_decay: 0.0, amsgrad: false, decoupled: false }
    }
}

impl AdamConfig {
    /// PyTorch's `AdamW` defaults (`weight_decay = 0.01`).
    pub fn adamw() -> Self {
        AdamConfig { weight_decay: 0.01, decoupled: true, ..Default::default() }
    }
}

#[derive(Default)]
struct State {
    step: u64,
    exp_avg: Vec<f32>,
    exp_avg_sq: Vec<f32>,
    max_exp_avg_sq: Vec<f32>,
}

/// `torch.optim.Adam` / `torch.optim.AdamW`.
pub struct Adam {
    params: Vec<(String, Tensor)>,
    cfg: AdamConfig,
    state: HashMap<String, State>,
}

impl Adam {
    /// Adam over `params`; errors name a bad hyperparameter.
    pub fn new(params: Vec<(String, Tensor)>, cfg: AdamConfig) -> Result<Self> {
        super::non_negative("lr", cfg.lr)?;
        super::non_negative("eps", cfg.eps)?;
        for (i, b) in [cfg.betas.0, cfg.betas.1].into_iter().enumerate() {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::config(format!("betas[{i}]"), format!("must be in [0, 1), got {b}")));
            }
        }
        super::non_negative("weight_decay", cfg.weight_decay)?;
        Ok(Adam { params, cfg, state: HashMap::new() })
    }
}

impl Optimizer for Adam {
    fn step(&mut self) {
        let c = self.cfg;
        let (b1, b2) = c.betas;
        for (name, p) in &self.params {
            let Some(mut g) = p.grad().map(|g| g.to_vec()) else { continue };
            let mut theta = p.data_mut();
            let s = self.state.entry(name.clone()).or_insert_with(|| State {
                exp_avg: vec![0.0; g.len()],
                exp_avg_sq: vec![0.0; g.len()],
                ..Default::default()
            });
            s.step += 1;
            if c.decoupled {
                pieces::decoupled_decay(&mut theta, c.lr, c.weight_decay);
            } else {
                pieces::l2_decay(&mut g, &theta, c.weight_decay);
            }
            pieces::ema(&mut s.exp_avg, &g, b1);
            pieces::ema_sq(&mut s.exp_avg_sq, &g, b2);
            // Bias corrections in f64, as PyTorch computes them in Python floats.
            let bc1 = 1.0 - (b1 as f64).powi(s.step as i32);
            let bc2_sqrt = (1.0 - (b2 as f64).powi(s.step as i32)).sqrt() as f32;
            let step_size = (c.lr as f64 / bc1) as f32;
            let v: &[f32] = if c.amsgrad {
                if s.max_exp_avg_sq.is_empty() {
                    s.max_exp_avg_sq = vec![0.0; g.len()];
                }
                s.max_exp_avg_sq.iter_mut().zip(&s.exp_avg_sq).for_each(|(m, v)| *m = m.max(*v));
                &s.max_exp_avg_sq
            } else {
                &s.exp_avg_sq
            };
            for ((t, m), v) in theta.iter_mut().zip(&s.exp_avg).zip(v) {
                let denom = v.sqrt() / bc2_sqrt + c.eps;
                *t -= step_size * (m / denom);
            }
        }
    }
    fn lr(&self) -> f32 {
        self.cfg.lr
    }
    fn set_lr(&mut self, lr: f32) {
        self.cfg.lr = lr;
    }
    fn params(&self) -> &[(String, Tensor)] {
        &self.params
    }
    fn describe(&self) -> String {
        let c = self.cfg;
        let name = if c.decoupled { "AdamW" } else { "Adam" };
        format!(
            "{name}(lr={}, betas=({}, {}), eps={}, weight_decay={}, amsgrad={})",
            c.lr, c.betas.0, c.betas.1, c.eps, c.weight_decay, c.amsgrad
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_moves_each_weight_by_about_lr() {
        // With bias correction, Adam's first step is η·g/(|g| + ε) ≈ η·sign(g).
        let p = Tensor::from_vec(vec![1.0, -2.0], &[2]).requires_grad();
        let mut opt = Adam::new(vec![("p".into(), p.clone())], AdamConfig { lr: 0.01, ..Default::default() }).unwrap();
        p.mul(&p).sum_all().backward();
        opt.step();
        let v = p.to_vec();
        assert!((v[0] - 0.99).abs() < 1e-6 && (v[1] + 1.99).abs() < 1e-6, "{v:?}");
        let e = Adam::new(vec![], AdamConfig { betas: (0.9, 1.0), ..Default::default() }).err().unwrap().to_string();
        assert_eq!(e, "betas[1]: must be in [0, 1), got 1");
    }

    #[test]
    fn converges_on_a_quadratic_bowl() {
        let p = Tensor::from_vec(vec![3.0, -4.0], &[2]).requires_grad();
        let mut opt = Adam::new(vec![("p".into(), p.clone())], AdamConfig { lr: 0.1, ..Default::default() }).unwrap();
        for _ in 0..500 {
            opt.zero_grad();
            p.mul(&p).sum_all().backward();
            opt.step();
        }
        assert!(p.to_vec().iter().all(|v| v.abs() < 1e-2), "{:?}", p.to_vec());
    }
}
