//! Adagrad: the configuration and its update (see [`AdagradConfig`]).
//!
//! Uses: `optim::pieces`, `tensor`, `error`.

use super::{non_negative, pieces, update_params, ParamState};
use crate::{Result, Tensor};
use std::collections::BTreeMap;

/// Adagrad (`torch.optim.Adagrad`): the size of each step shrinks with the sum
/// of all past squared gradients.
///
/// ```text
/// g ← ∇θ + λθ
/// η_t ← η / (1 + (t − 1)·lr_decay)
/// s ← s + g²                          magnitude: sum over all steps   (sum)
/// θ ← θ − η_t · g / (√s + ε)
/// ```
///
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

impl AdagradConfig {
    pub(super) fn validate(&self) -> Result<()> {
        non_negative("lr", self.lr)?;
        non_negative("lr_decay", self.lr_decay)?;
        non_negative("weight_decay", self.weight_decay)?;
        non_negative("initial_accumulator_value", self.initial_accumulator_value)?;
        non_negative("eps", self.eps)
    }

    /// One step over `params`.
    pub(super) fn update(&self, params: &[(String, Tensor)], state: &mut BTreeMap<String, ParamState>) {
        let c = *self;
        let (eps, wd) = (c.eps as f32, c.weight_decay as f32);
        let buffers = [("sum", c.initial_accumulator_value as f32)];
        update_params(params, state, &buffers, &|step, g, theta, bufs| {
            let neg_clr = -(c.lr / (1.0 + (step - 1) as f64 * c.lr_decay)) as f32;
            for ((t, &g), s) in theta.iter_mut().zip(g).zip(bufs[0].iter_mut()) {
                let g = pieces::l2_decay(g, *t, wd);
                *s = pieces::sum_sq(*s, g); // magnitude: every past gradient
                *t += neg_clr * (g / (s.sqrt() + eps));
            }
        });
    }
}
