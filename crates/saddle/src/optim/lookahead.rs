//! Lookahead (Zhang et al. 2019) with a decay that grows over the run, as
//! the CIFAR-10 speed records use it (Jordan 2024).
//!
//! Every `k` steps the slow weights `φ` move towards the fast weights `θ`
//! that the optimizer trains, and the fast weights restart from them:
//! `φ ← α_t·φ + (1 − α_t)·θ`, `θ ← φ`, with `α_t = α·(t/T)³` at step `t` of
//! `T`. Early in the run `α_t ≈ 0` and lookahead does nothing; near the end it
//! averages the last steps, as an exponential moving average of the weights
//! would. After the last step `θ ← φ`. `φ` is kept in the optimizer's state
//! as `lookahead_slow`, so checkpoints carry it.
//!
//! Uses: `optim::Optimizer`.

use super::Optimizer;
use serde::{Deserialize, Serialize};

/// The slow weights' buffer in each parameter's optimizer state.
const SLOW: &str = "lookahead_slow";

/// Lookahead's settings: a sync every `every` steps with decay `decay·(t/T)³`.
///
/// ```
/// use saddle::optim::{Lookahead, Optimizer, SgdConfig};
/// use saddle::Tensor;
/// let theta = Tensor::from_vec(vec![1.0], &[1]).requires_grad();
/// let mut opt = Optimizer::new(vec![("theta".into(), theta.clone())], SgdConfig { lr: 0.1, ..Default::default() }).unwrap();
/// let la = Lookahead { every: 1, decay: 0.5 };
/// la.after_step(&mut opt, 1, 1); // t = T: φ ← θ (the first sync), θ ← φ
/// theta.data_mut()[0] = 3.0;     // a step of the optimizer
/// la.after_step(&mut opt, 2, 2); // α = 0.5: φ ← 0.5·1 + 0.5·3 = 2
/// assert_eq!(theta.item(), 2.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lookahead {
    /// Steps between syncs k (airbench: 5).
    pub every: usize,
    /// The decay α reached at the end of the run (airbench: 0.95⁵).
    pub decay: f64,
}

impl Default for Lookahead {
    /// airbench94's settings.
    fn default() -> Self {
        Lookahead { every: 5, decay: 0.95f64.powi(5) }
    }
}

impl Lookahead {
    /// Called after `done` of the run's `total` steps: syncs when `done` is a
    /// multiple of `every`, and at `done == total` leaves the slow weights in
    /// the model. The first sync starts `φ` from `θ`.
    pub fn after_step(&self, opt: &mut Optimizer, done: usize, total: usize) {
        let every = self.every.max(1);
        if done % every == 0 {
            let alpha = self.decay * (done as f64 / total.max(1) as f64).min(1.0).powi(3);
            self.sync(opt, alpha);
        }
        if done == total {
            self.sync(opt, 1.0);
        }
    }

    /// `φ ← α·φ + (1 − α)·θ`, `θ ← φ` for every parameter with a gradient's state.
    fn sync(&self, opt: &mut Optimizer, alpha: f64) {
        let params = opt.params().to_vec();
        let state = opt.state_mut();
        for (name, p) in params.iter().filter(|(_, p)| p.is_requires_grad()) {
            let mut theta = p.data_mut();
            let s = state.entry(name.clone()).or_default();
            let mut slow = s.take(SLOW, 0, 0.0);
            if slow.len() != theta.len() {
                slow = theta.clone();
            }
            let (a, b) = (alpha as f32, (1.0 - alpha) as f32);
            for (phi, t) in slow.iter_mut().zip(theta.iter_mut()) {
                *phi = a * *phi + b * *t;
                *t = *phi;
            }
            s.put(SLOW, slow);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::SgdConfig;
    use crate::Tensor;

    /// Syncs at multiples of k with α·(t/T)³, and the model ends on φ.
    #[test]
    fn syncs_every_k_steps_with_a_cubic_decay() {
        let theta = Tensor::from_vec(vec![0.0], &[1]).requires_grad();
        let mut opt = Optimizer::new(vec![("t".into(), theta.clone())], SgdConfig::default()).unwrap();
        let la = Lookahead { every: 2, decay: 0.8 };
        let mut phi = None::<f32>;
        for done in 1..=5 {
            theta.data_mut()[0] += 1.0; // the optimizer's step
            let fast = theta.item();
            la.after_step(&mut opt, done, 5);
            if done % 2 == 0 {
                let a = 0.8 * (done as f32 / 5.0).powi(3);
                let p = phi.map_or(fast, |p| a * p + (1.0 - a) * fast);
                phi = Some(p);
                assert!((theta.item() - p).abs() < 1e-6, "step {done}");
            } else if done < 5 {
                assert_eq!(theta.item(), fast, "no sync at step {done}");
            }
        }
        assert_eq!(theta.item(), phi.unwrap(), "after the last step θ = φ");
        assert!(opt.state()["t"].buffers.contains_key(SLOW));
    }
}
