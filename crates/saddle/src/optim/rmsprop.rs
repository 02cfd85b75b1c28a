//! RMSprop: the configuration and its update (see [`RmsPropConfig`]).
//!
//! Uses: `optim::pieces`, `tensor`, `error`.

use super::{non_negative, pieces, update_params, ParamState};
use crate::{Error, Result, Tensor};
use std::collections::BTreeMap;

/// RMSProp (`torch.optim.RMSprop`): each step is divided by the root mean
/// square of recent gradients, averaged with weight `α`.
///
/// ```text
/// g ← ∇θ + λθ
/// v ← αv + (1 − α)g²                      magnitude              (square_avg)
/// if centered: ḡ ← lerp(ḡ, g, 1 − α);  σ ← √(v − ḡ²) + ε   else  σ ← √v + ε   (grad_avg)
/// if μ > 0:  b ← μb + g/σ;  θ ← θ − ηb    else  θ ← θ − η g/σ     (momentum_buffer)
/// ```
///
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

impl RmsPropConfig {
    pub(super) fn validate(&self) -> Result<()> {
        non_negative("lr", self.lr)?;
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(Error::config("alpha", format!("must be in [0, 1], got {}", self.alpha)));
        }
        non_negative("eps", self.eps)?;
        non_negative("weight_decay", self.weight_decay)?;
        non_negative("momentum", self.momentum)
    }

    /// One step over `params`.
    pub(super) fn update(&self, params: &[(String, Tensor)], state: &mut BTreeMap<String, ParamState>) {
        let c = *self;
        let a = pieces::Coefficients::new(c.alpha);
        let (eps, mu, neg_lr, wd) = (c.eps as f32, c.momentum as f32, -c.lr as f32, c.weight_decay as f32);
        let mut buffers = vec![("square_avg", 0.0)];
        if c.centered {
            buffers.push(("grad_avg", 0.0));
        }
        if c.momentum > 0.0 {
            buffers.push(("momentum_buffer", 0.0));
        }
        update_params(params, state, &buffers, &|_, g, theta, bufs| {
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
}
