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
        let (c1, c2) = (pieces::Coefficients::new(c.betas.0), pieces::Coefficients::new(c.betas.1));
        let (eps, wd) = (c.eps as f32, c.weight_decay as f32);
        let buffers: &[(&str, f32)] = if c.amsgrad {
            &[("exp_avg", 0.0), ("exp_avg_sq", 0.0), ("max_exp_avg_sq", 0.0)]
        } else {
            &[("exp_avg", 0.0), ("exp_avg_sq", 0.0)]
        };
        // AdamW multiplies θ by 1 − ηλ; Adam adds λθ to g. The other is the identity.
        let (decay, l2) = if c.decoupled { ((1.0 - c.lr * c.weight_decay) as f32, 0.0) } else { (1.0, wd) };
        update_params(&self.params, &mut self.state, buffers, |step, g, theta, bufs| {
            // Bias corrections in f64, as PyTorch computes them in Python floats.
            let bc1 = 1.0 - c.betas.0.powi(step as i32);
            let bc2_sqrt = (1.0 - c.betas.1.powi(step as i32)).sqrt() as f32;
            let neg_step_size = -(c.lr / bc1) as f32;
            let n = theta.len();
            let (m, rest) = bufs.split_first_mut().expect("exp_avg");
            let (v, vmax) = rest.split_first_mut().expect("exp_avg_sq");
            let (m, v, g) = (&mut m[..n], &mut v[..n], &g[..n]);
            // One loop per variant, so that each vectorizes.
            match vmax.first_mut() {
                None => {
                    for i in 0..n {
                        theta[i] *= decay;
                        let g = pieces::l2_decay(g[i], theta[i], l2);
                        m[i] = pieces::ema(m[i], g, c1); // direction
                        v[i] = pieces::ema_sq(v[i], g, c2); // magnitude
                        theta[i] += neg_step_size * (m[i] / (v[i].sqrt() / bc2_sqrt + eps));
                    }
                }
                Some(vmax) => {
                    let vmax = &mut vmax[..n];
                    for i in 0..n {
                        theta[i] *= decay;
                        let g = pieces::l2_decay(g[i], theta[i], l2);
                        m[i] = pieces::ema(m[i], g, c1);
                        v[i] = pieces::ema_sq(v[i], g, c2);
                        vmax[i] = vmax[i].max(v[i]); // amsgrad: the largest v so far
                        theta[i] += neg_step_size * (m[i] / (vmax[i].sqrt() / bc2_sqrt + eps));
                    }
                }
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
