//! Adagrad (`torch.optim.Adagrad`): the size of each step shrinks with the sum
//! of all past squared gradients.
//!
//! ```text
//! g ← ∇θ + λθ
//! η_t ← η / (1 + (t − 1)·lr_decay)
//! s ← s + g²                          magnitude: sum over all steps   (sum)
//! θ ← θ − η_t · g / (√s + ε)
//! ```
//!
//! Uses: `optim::pieces`, `tensor`, `error`.

use super::{non_negative, pieces, update_params, Optimizer, ParamState};
use crate::{Result, Tensor};
use std::collections::BTreeMap;

/// Adagrad hyperparameters; `Default` is PyTorch's (`lr = 1e-2`, `eps = 1e-10`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdagradConfig {
    /// Learning rate η.
    pub lr: f64,
    /// Learning-rate decay per step.
    pub lr_decay: f64,
    /// L2 penalty λ.
    pub weight_decay: f64,
    /// Starting value of the sum `s`.
    pub initial_accumulator_value: f64,
    /// ε added to the denominator.
    pub eps: f64,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        AdagradConfig { lr: 1e-2, lr_decay: 0.0, weight_decay: 0.0, initial_accumulator_value: 0.0, eps: 1e-10 }
    }
}

/// `torch.optim.Adagrad`.
pub struct Adagrad {
    params: Vec<(String, Tensor)>,
    cfg: AdagradConfig,
    state: BTreeMap<String, ParamState>,
}

impl Adagrad {
    /// Adagrad over `params`; errors name a bad hyperparameter.
    pub fn new(params: Vec<(String, Tensor)>, cfg: AdagradConfig) -> Result<Self> {
        non_negative("lr", cfg.lr)?;
        non_negative("lr_decay", cfg.lr_decay)?;
        non_negative("weight_decay", cfg.weight_decay)?;
        non_negative("initial_accumulator_value", cfg.initial_accumulator_value)?;
        non_negative("eps", cfg.eps)?;
        Ok(Adagrad { params, cfg, state: BTreeMap::new() })
    }
}

impl Optimizer for Adagrad {
    fn step(&mut self) {
        let c = self.cfg;
        let (eps, wd) = (c.eps as f32, c.weight_decay as f32);
        let buffers = [("sum", c.initial_accumulator_value as f32)];
        update_params(&self.params, &mut self.state, &buffers, |step, g, theta, bufs| {
            let neg_clr = -(c.lr / (1.0 + (step - 1) as f64 * c.lr_decay)) as f32;
            for ((t, &g), s) in theta.iter_mut().zip(g).zip(bufs[0].iter_mut()) {
                let g = pieces::l2_decay(g, *t, wd);
                *s = pieces::sum_sq(*s, g); // magnitude: every past gradient
                *t += neg_clr * (g / (s.sqrt() + eps));
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
        format!(
            "Adagrad(lr={}, lr_decay={}, weight_decay={}, initial_accumulator_value={}, eps={:e})",
            c.lr, c.lr_decay, c.weight_decay, c.initial_accumulator_value, c.eps
        )
    }
}
