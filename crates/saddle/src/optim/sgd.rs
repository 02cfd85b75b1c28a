//! Stochastic gradient descent with momentum (`torch.optim.SGD`).
//!
//! ```text
//! g ← ∇θ + λθ                                  (weight_decay λ)
//! b ← μb + (1 − τ)g, first step b ← g           (momentum μ, dampening τ)
//! d ← g + μb if nesterov else b                 (d = g when μ = 0)
//! θ ← θ − η d
//! ```
//!
//! Uses: `optim::pieces`, `tensor`, `error`.

use super::{pieces, Optimizer};
use crate::{Error, Result, Tensor};
use std::collections::HashMap;

/// SGD hyperparameters; `Default` is PyTorch's (`lr = 1e-3`, no momentum).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate η.
    pub lr: f32,
    /// Momentum μ.
    pub momentum: f32,
    /// Dampening τ of the momentum.
    pub dampening: f32,
    /// L2 penalty λ.
    pub weight_decay: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig { lr: 1e-3, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false }
    }
}

/// `torch.optim.SGD`.
pub struct Sgd {
    params: Vec<(String, Tensor)>,
    cfg: SgdConfig,
    momentum_buffer: HashMap<String, Option<Vec<f32>>>,
}

impl Sgd {
    /// SGD over `params`; errors name a bad hyperparameter.
    pub fn new(params: Vec<(String, Tensor)>, cfg: SgdConfig) -> Result<Self> {
        super::non_negative("lr", cfg.lr)?;
        super::non_negative("momentum", cfg.momentum)?;
        super::non_negative("weight_decay", cfg.weight_decay)?;
        if cfg.nesterov && (cfg.momentum <= 0.0 || cfg.dampening != 0.0) {
            return Err(Error::config("nesterov", "needs momentum > 0 and dampening = 0"));
        }
        Ok(Sgd { params, cfg, momentum_buffer: HashMap::new() })
    }
}

impl Optimizer for Sgd {
    fn step(&mut self) {
        let c = self.cfg;
        for (name, p) in &self.params {
            let Some(mut g) = p.grad().map(|g| g.to_vec()) else { continue };
            let mut theta = p.data_mut();
            pieces::l2_decay(&mut g, &theta, c.weight_decay);
            if c.momentum != 0.0 {
                let buf = self.momentum_buffer.entry(name.clone()).or_default();
                pieces::momentum(buf, &g, c.momentum, c.dampening);
                let b = buf.as_ref().expect("set by momentum");
                if c.nesterov {
                    g.iter_mut().zip(b).for_each(|(g, b)| *g += c.momentum * b);
                } else {
                    g.copy_from_slice(b);
                }
            }
            theta.iter_mut().zip(&g).for_each(|(t, d)| *t -= c.lr * d);
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
        format!(
            "SGD(lr={}, momentum={}, dampening={}, weight_decay={}, nesterov={})",
            c.lr, c.momentum, c.dampening, c.weight_decay, c.nesterov
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_step_by_hand_and_validation() {
        // θ = 1, g = 2θ = 2, η = 0.1: θ ← 1 − 0.2 = 0.8.
        let p = Tensor::from_vec(vec![1.0], &[1]).requires_grad();
        let mut opt = Sgd::new(vec![("p".into(), p.clone())], SgdConfig { lr: 0.1, ..Default::default() }).unwrap();
        p.mul(&p).sum_all().backward();
        opt.step();
        assert!((p.item() - 0.8).abs() < 1e-7);
        let e = Sgd::new(vec![], SgdConfig { lr: -1.0, ..Default::default() }).err().unwrap().to_string();
        assert_eq!(e, "lr: must be a finite number ≥ 0, got -1");
    }
}
