//! Adam and AdamW: the configuration and its update (see [`AdamConfig`]).
//!
//! Uses: `optim::pieces`, `tensor`, `error`.

use super::{non_negative, pieces, update_params, ParamState};
use crate::{Error, Result, Tensor};
use std::collections::BTreeMap;

/// How weight decay λ enters the update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WeightDecay {
    /// `g ← ∇θ + λθ`: the penalty `½λ‖θ‖²` added to the loss (`torch.optim.Adam`).
    L2(f64),
    /// `θ ← θ(1 − ηλ)`, apart from the adaptive step (`torch.optim.AdamW`,
    /// Loshchilov and Hutter 2019).
    Decoupled(f64),
}

impl WeightDecay {
    /// λ.
    pub fn lambda(self) -> f64 {
        match self {
            WeightDecay::L2(l) | WeightDecay::Decoupled(l) => l,
        }
    }
    /// The same kind of decay with another λ.
    pub fn with_lambda(self, lambda: f64) -> Self {
        match self {
            WeightDecay::L2(_) => WeightDecay::L2(lambda),
            WeightDecay::Decoupled(_) => WeightDecay::Decoupled(lambda),
        }
    }
}

/// Adam and AdamW (`torch.optim.Adam`, `torch.optim.AdamW`): momentum for the
/// direction, RMSProp for the magnitude, both bias-corrected.
///
/// ```text
/// g ← ∇θ + λθ                      (Adam's L2 weight decay)   or   θ ← θ(1 − ηλ)   (AdamW)
/// m ← lerp(m, g, 1 − β₁)           direction: momentum          (exp_avg)
/// v ← β₂v + (1 − β₂)g²             magnitude: RMSProp           (exp_avg_sq)
/// v̂ ← max(v̂, v) if amsgrad else v                               (max_exp_avg_sq)
/// θ ← θ − η/(1 − β₁ᵗ) · m / (√v̂ / √(1 − β₂ᵗ) + ε)
/// ```
///
/// `Default` is PyTorch's `Adam` (`lr = 1e-3`, `betas = (0.9, 0.999)`,
/// `eps = 1e-8`, no weight decay); [`AdamConfig::adamw`] is PyTorch's `AdamW`
/// (decoupled, `weight_decay = 0.01`).
///
/// ```
/// use saddle::optim::{AdamConfig, Optimizer};
/// use saddle::Tensor;
/// // With bias correction, Adam's first step is η·g/(|g| + ε) ≈ η·sign(g).
/// let p = Tensor::from_vec(vec![1.0, -2.0], &[2]).requires_grad();
/// let mut opt = Optimizer::new(vec![("p".into(), p.clone())], AdamConfig { lr: 0.01, ..Default::default() }).unwrap();
/// p.mul(&p).sum_all().backward();
/// opt.step();
/// let v = p.to_vec();
/// assert!((v[0] - 0.99).abs() < 1e-6 && (v[1] + 1.99).abs() < 1e-6);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate η.
    pub lr: f64,
    /// (β₁, β₂).
    pub betas: (f64, f64),
    /// ε added to the denominator.
    pub eps: f64,
    /// Weight decay: L2 (Adam) or decoupled (AdamW).
    pub weight_decay: WeightDecay,
    /// Keep the running maximum of `v` (Reddi et al. 2018).
    pub amsgrad: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig { lr: 1e-3, betas: (0.9, 0.999), eps: 1e-8, weight_decay: WeightDecay::L2(0.0), amsgrad: false }
    }
}

impl AdamConfig {
    /// PyTorch's `AdamW` defaults (decoupled `weight_decay = 0.01`).
    pub fn adamw() -> Self {
        AdamConfig { weight_decay: WeightDecay::Decoupled(0.01), ..Default::default() }
    }

    pub(super) fn validate(&self) -> Result<()> {
        non_negative("lr", self.lr)?;
        non_negative("eps", self.eps)?;
        for (i, b) in [self.betas.0, self.betas.1].into_iter().enumerate() {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::config(format!("betas[{i}]"), format!("must be in [0, 1), got {b}")));
            }
        }
        non_negative("weight_decay", self.weight_decay.lambda())
    }

    /// One step over `params`.
    pub(super) fn update(&self, params: &[(String, Tensor)], state: &mut BTreeMap<String, ParamState>) {
        let c = *self;
        let (c1, c2) = (pieces::Coefficients::new(c.betas.0), pieces::Coefficients::new(c.betas.1));
        let eps = c.eps as f32;
        let buffers: &[(&str, f32)] = if c.amsgrad {
            &[("exp_avg", 0.0), ("exp_avg_sq", 0.0), ("max_exp_avg_sq", 0.0)]
        } else {
            &[("exp_avg", 0.0), ("exp_avg_sq", 0.0)]
        };
        // AdamW multiplies θ by 1 − ηλ; Adam adds λθ to g. The other is the identity.
        let (decay, l2) = match c.weight_decay {
            WeightDecay::Decoupled(l) => ((1.0 - c.lr * l) as f32, 0.0),
            WeightDecay::L2(l) => (1.0, l as f32),
        };
        update_params(params, state, buffers, &|step, g, theta, bufs| {
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
}
