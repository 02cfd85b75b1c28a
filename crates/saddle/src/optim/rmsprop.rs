//! RMSProp (`torch.optim.RMSprop`): each step is divided by the root mean
//! square of recent gradients, averaged with weight `α`.
//!
//! ```text
//! g ← ∇θ + λθ
//! v ← αv + (1 − α)g²                      magnitude              (square_avg)
//! if centered: ḡ ← lerp(ḡ, g, 1 − α);  σ ← √(v − ḡ²) + ε   else  σ ← √v + ε   (grad_avg)
//! if μ > 0:  b ← μb + g/σ;  θ ← θ − ηb    else  θ ← θ − η g/σ     (momentum_buffer)
//! ```
//!
//! Uses: `optim::pieces`, `tensor`, `error`.

use super::{non_negative, pieces, update_params, Optimizer, ParamState};
use crate::{Error, Result, Tensor};
use std::collections::BTreeMap;

/// RMSprop hyperparameters; `Default` is PyTorch's (`lr = 1e-2`, `alpha = 0.99`, `eps = 1e-8`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsPropConfig {
    /// Learning rate η.
    pub lr: f64,
    /// Smoothing constant α of the average of squares.
    pub alpha: f64,
    /// ε added to the denominator.
    pub eps: f64,
    /// L2 penalty λ.
    pub weight_decay: f64,
    /// Momentum μ.
    pub momentum: f64,
    /// Divide by the estimated standard deviation rather than the RMS.
    pub centered: bool,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        RmsPropConfig { lr: 1e-2, alpha: 0.99, eps: 1e-8, weight_decay: 0.0, momentum: 0.0, centered: false }
    }
}

/// `torch.optim.RMSprop`.
pub struct RmsProp {
    params: Vec<(String, Tensor)>,
    cfg: RmsPropConfig,
    state: BTreeMap<String, ParamState>,
}

impl RmsProp {
    /// RMSprop over `params`; errors name a bad hyperparameter.
    pub fn new(params: Vec<(String, Tensor)>, cfg: RmsPropConfig) -> Result<Self> {
        non_negative("lr", cfg.lr)?;
        if !(0.0..=1.0).contains(&cfg.alpha) {
            return Err(Error::config("alpha", format!("must be in [0, 1], got {}", cfg.alpha)));
        }
        non_negative("eps", cfg.eps)?;
        non_negative("weight_decay", cfg.weight_decay)?;
        non_negative("momentum", cfg.momentum)?;
        Ok(RmsProp { params, cfg, state: BTreeMap::new() })
    }
}

impl Optimizer for RmsProp {
    fn step(&mut self) {
        let c = self.cfg;
        let a = pieces::Coefficients::new(c.alpha);
        let (eps, mu, neg_lr, wd) = (c.eps as f32, c.momentum as f32, -c.lr as f32, c.weight_decay as f32);
        let mut buffers = vec![("square_avg", 0.0)];
        if c.centered {
            buffers.push(("grad_avg", 0.0));
        }
        if c.momentum > 0.0 {
            buffers.push(("momentum_buffer", 0.0));
        }
        update_params(&self.params, &mut self.state, &buffers, |_, g, theta, bufs| {
            let (v, rest) = bufs.split_first_mut().expect("square_avg");
            let (gbar, b): (Option<&mut [f32]>, Option<&mut [f32]>) = match (c.centered, rest) {
                (true, [gbar, b]) => (Some(gbar), Some(b)),
                (true, [gbar]) => (Some(gbar), None),
                (false, [b]) => (None, Some(b)),
                _ => (None, None),
            };
            let n = theta.len();
            let (v, g) = (&mut v[..n], &g[..n]);
            // σ = √v + ε, or √(v − ḡ²) + ε when centered; written into `d` as g/σ.
            let mut d = [0.0f32; super::CHUNK];
            let d = &mut d[..n];
            match gbar {
                Some(gbar) => {
                    let gbar = &mut gbar[..n];
                    for i in 0..n {
                        let g = pieces::l2_decay(g[i], theta[i], wd);
                        v[i] = pieces::ema_sq(v[i], g, a); // magnitude: recent gradients
                        gbar[i] = pieces::ema(gbar[i], g, a);
                        d[i] = g / ((v[i] + -gbar[i] * gbar[i]).sqrt() + eps);
                    }
                }
                None => {
                    for i in 0..n {
                        let g = pieces::l2_decay(g[i], theta[i], wd);
                        v[i] = pieces::ema_sq(v[i], g, a);
                        d[i] = g / (v[i].sqrt() + eps);
                    }
                }
            }
            match b {
                Some(b) => {
                    let b = &mut b[..n];
                    for i in 0..n {
                        b[i] = b[i] * mu + d[i];
                        theta[i] += neg_lr * b[i];
                    }
                }
                None => (0..n).for_each(|i| theta[i] += neg_lr * d[i]),
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
            "RMSprop(lr={}, alpha={}, eps={:e}, weight_decay={}, momentum={}, centered={})",
            c.lr, c.alpha, c.eps, c.weight_decay, c.momentum, c.centered
        )
    }
}
