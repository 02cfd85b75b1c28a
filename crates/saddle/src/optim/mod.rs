//! Optimizers: `θ ← θ − (η_t / σ_t) · m_t`.
//!
//! Each optimizer is assembled from the pieces in [`pieces`]: the direction
//! `m_t` (the gradient, or momentum), the magnitude `σ_t` (1, or the root mean
//! square of past gradients) and weight decay (L2 added to the gradient, or
//! decoupled). Adam is momentum and RMSProp with bias correction, visibly so.
//! Hyperparameter structs default to PyTorch's defaults and are validated at
//! construction, naming the bad value. State is kept per parameter name.
//!
//! Uses: `tensor`, `error`.

mod adam;
mod clip;
pub mod pieces;
mod sgd;

pub use adam::{Adam, AdamConfig};
pub use clip::{clip_grad_norm, global_grad_norm};
pub use sgd::{Sgd, SgdConfig};

use crate::{Error, Result, Tensor};

/// An optimizer over named parameters.
pub trait Optimizer: Send {
    /// One update of every parameter that has a gradient.
    fn step(&mut self);
    /// The current learning rate η.
    fn lr(&self) -> f32;
    /// Sets η (schedules call this before each step).
    fn set_lr(&mut self, lr: f32);
    /// The parameters, by name.
    fn params(&self) -> &[(String, Tensor)];
    /// Forgets every parameter's gradient.
    fn zero_grad(&self) {
        self.params().iter().for_each(|(_, p)| p.zero_grad());
    }
    /// A one-line summary of the effective hyperparameters.
    fn describe(&self) -> String;
}

/// `Ok` if `v` is finite and `≥ 0`, else a config error naming `field` and `v`.
pub(crate) fn non_negative(field: &str, v: f32) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(Error::config(field, format!("must be a finite number ≥ 0, got {v}")))
    }
}
