//! Adam and AdamW (`torch.optim.Adam`, `torch.optim.AdamW`): momentum for the
//! direction, RMSProp for the magnitude, both bias-corrected.
//!
//! ```text
//! g ← ∇θ + λθ                      (Adam's L2 weight decay)   or   θ ← θ(1 − ηλ)   (AdamW)
//! m ← lerp(m, g, 1 − β₁)           direction: momentum          (exp_avg)
//! v ← β₂v + (1 − β₂)g²             magnitude: RMSProp           (exp_avg_sq)
//! v̂ ← max(v̂, v) if amsgrad else v                               (max_exp_avg_sq)
//! θ ← θ − η/(1 − β₁ᵗ) · m / (√v̂ / √(1 − β₂ᵗ) + ε)
//! ```
//!
//! Uses: `optim::pieces`, `tensor`, `error`.

use super::{non_negative, pieces, update_params, Optimizer, ParamState};
use crate::{Error, Result, Tensor};
use std::collections::BTreeMap;

/// Adam hyperparameters; `Default` is PyTorch's (`lr = 1e-3`, `betas = (0.9, 0.999)`,
/// `eps = 1e-8`, no weight decay). `decoupled` makes it AdamW (whose PyTorch
/// default `weight_decay` is 0.01: use [`AdamConfig::adamw`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate η.
    pub lr: f64,
    /// (β₁, β₂).
    pub betas: (f64, f64),
    /// ε added to the denominator.
    pub eps: f64,
    /// Weight decay λ.
    pub weight_decay: f64,
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

/// `torch.optim.Adam` / `torch.optim.AdamW`.
pub struct Adam {
    params: Vec<(String, Tensor)>,
    cfg: AdamConfig,
    state: BTreeMap<String, ParamState>,
}

impl Adam {
    /// Adam over `params`; errors name a bad hyperparameter.
    pub fn new(params: Vec<(String, Tensor)>, cfg: AdamConfig) -> Result<Self> {
        non_negative("lr", cfg.lr)?;
        non_negative("eps", cfg.eps)?;
        for (i, b) in [cfg.betas.0, cfg.betas.1].into_iter().enumerate() {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::config(format!("betas[{i}]"), format!("must be in [0, 1), got {b}")));
            }
        }
        non_negative("weight_decay", cfg.weight_decay)?;
        Ok(Adam { params, cfg, state: BTreeMap::new() })
    }
}

impl Optimizer for Adam {
    fn step(&mut self) {
        let c = self.cfg;
        let (b1, b2) = c.betas;
        let eps = c.eps as f32;
        let buffers: &[(&str, f32)] = if c.amsgrad {
            &[("exp_avg", 0.0), ("exp_avg_sq", 0.0), ("max_exp_avg_sq", 0.0)]
        } else {
            &[("exp_avg", 0.0), ("exp_avg_sq", 0.0)]
        };
        update_params(&self.params, &mut self.state, buffers, |step, g, theta, bufs| {
            if c.decoupled {
                pieces::decoupled_decay(theta, c.lr, c.weight_decay);
            } else {
                pieces::l2_decay(g, theta, c.weight_decay);
            }
            let (m, rest) = bufs.split_first_mut().expect("exp_avg");
            let (v, vmax) = rest.split_first_mut().expect("exp_avg_sq");
            pieces::ema(m, g, b1); // direction
            pieces::ema_sq(v, g, b2); // magnitude
            let v: &[f32] = match vmax.first_mut() {
                Some(vmax) => {
                    vmax.iter_mut().zip(v.iter()).for_each(|(a, b)| *a = a.max(*b));
                    vmax
                }
                None => v,
            };
            // Bias corrections in f64, as PyTorch computes them in Python floats.
            let bc1 = 1.0 - b1.powi(step as i32);
            let bc2_sqrt = (1.0 - b2.powi(step as i32)).sqrt() as f32;
            let neg_step_size = -(c.lr / bc1) as f32;
            for ((t, m), v) in theta.iter_mut().zip(m.iter()).zip(v) {
                let denom = v.sqrt() / bc2_sqrt + eps;
                *t += neg_step_size * (m / denom);
            }
        });
    }
    fn lr(&self) -> f64 {
        self.cfg.lr
    }
    fn set_lr(&mut self, lr: f64) {
        self.cfg.lr = lr;
    }
    fn params(&self) -> &[(String, Tensor)] {
        &self.params
    }
    fn state(&self) -> &BTreeMap<String, ParamState> {
        &self.state
    }
    fn state_mut(&mut self) -> &mut BTreeMap<String, ParamState> {
        &mut self.state
    }
    fn describe(&self) -> String {
        let c = self.cfg;
        let name = if c.decoupled { "AdamW" } else { "Adam" };
        format!(
            "{name}(lr={}, betas=({}, {}), eps={:e}, weight_decay={}, amsgrad={})",
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
}
