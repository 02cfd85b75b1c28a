//! SGD: the configuration and its update (see [`SgdConfig`]).
//!
//! Uses: `optim::pieces`, `tensor`, `error`.

use super::{non_negative, pieces, update_params, ParamState};
use crate::{Error, Result, Tensor};
use std::collections::BTreeMap;

/// Stochastic gradient descent with momentum (`torch.optim.SGD`).
///
/// ```text
/// g ← ∇θ + λθ                                  (weight_decay λ)
/// b ← μb + (1 − τ)g, first step b ← g           (momentum μ, dampening τ)
/// d ← g + μb if nesterov else b                 (d = g when μ = 0)
/// θ ← θ − η d
/// ```
///
/// SGD hyperparameters; `Default` is PyTorch's (`lr = 1e-3`, no momentum).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate η.
    pub lr: f64,
    /// Momentum μ.
    pub momentum: f64,
    /// Dampening τ of the momentum.
    pub dampening: f64,
    /// L2 penalty λ.
    pub weight_decay: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig { lr: 1e-3, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false }
    }
}

impl SgdConfig {
    pub(super) fn validate(&self) -> Result<()> {
        non_negative("lr", self.lr)?;
        non_negative("momentum", self.momentum)?;
        non_negative("dampening", self.dampening)?;
        non_negative("weight_decay", self.weight_decay)?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::config("nesterov", "needs momentum > 0 and dampening = 0"));
        }
        Ok(())
    }

    /// One step over `params`.
    pub(super) fn update(&self, params: &[(String, Tensor)], state: &mut BTreeMap<String, ParamState>) {
        let c = *self;
        let (mu, keep, neg_lr, wd) =
            (c.momentum as f32, (1.0 - c.dampening) as f32, -c.lr as f32, c.weight_decay as f32);
        if c.momentum == 0.0 {
            update_params(params, state, &[], &|_, g, theta, _| {
                for (t, &g) in theta.iter_mut().zip(g) {
                    *t += neg_lr * pieces::l2_decay(g, *t, wd);
                }
            });
            return;
        }
        update_params(params, state, &[("momentum_buffer", 0.0)], &|step, g, theta, bufs| {
            for ((t, &g), b) in theta.iter_mut().zip(g).zip(bufs[0].iter_mut()) {
                let g = pieces::l2_decay(g, *t, wd);
                *b = pieces::momentum(*b, g, mu, keep, step == 1);
                let d = if c.nesterov { g + mu * *b } else { *b };
                *t += neg_lr * d;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::Optimizer;

    #[test]
    fn one_step_by_hand_and_validation() {
        // θ = 1, g = 2θ = 2, η = 0.1: θ ← 1 − 0.2 = 0.8.
        let p = Tensor::from_vec(vec![1.0], &[1]).requires_grad();
        let mut opt =
            Optimizer::new(vec![("p".into(), p.clone())], SgdConfig { lr: 0.1, ..Default::default() }).unwrap();
        p.mul(&p).sum_all().backward();
        opt.step();
        assert!((p.item() - 0.8).abs() < 1e-7);
        let e = Optimizer::new(vec![], SgdConfig { lr: -1.0, ..Default::default() }).err().unwrap().to_string();
        assert_eq!(e, "lr: must be a finite number ≥ 0, got -1");
        let e = Optimizer::new(vec![], SgdConfig { nesterov: true, ..Default::default() }).err().unwrap().to_string();
        assert_eq!(e, "nesterov: needs momentum > 0 and dampening = 0");
    }
}
