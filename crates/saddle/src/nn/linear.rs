//! `Linear`: `y = x·Wᵀ + b` (`torch.nn.Linear`).
//!
//! Letters: I `in_features`, O `out_features`. `weight: [O, I]`, `bias: [O]`;
//! `x: [*, I]` → `y: [*, O]`. Default init as PyTorch (see `init`).
//!
//! Uses: `ops`, `nn::init`.

use super::{init, join, Module};
use crate::{Rng, Tensor};

/// A fully connected layer with PyTorch's names, shapes and initialization.
pub struct Linear {
    /// `[out_features, in_features]`.
    pub weight: Tensor,
    /// `[out_features]`, if the layer has a bias.
    pub bias: Option<Tensor>,
    /// I.
    pub in_features: usize,
    /// O.
    pub out_features: usize,
}

impl Linear {
    /// `nn.Linear(in_features, out_features, bias)` with PyTorch's default init.
    pub fn new(in_features: usize, out_features: usize, bias: bool, rng: &mut Rng) -> Self {
        let weight = init::kaiming_uniform(&[out_features, in_features], in_features, 5f32.sqrt(), rng).requires_grad();
        let bias = bias.then(|| init::uniform_fan_in(&[out_features], in_features, rng).requires_grad());
        Linear { weight, bias, in_features, out_features }
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, self.bias.as_ref())
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        f(&join(prefix, "weight"), &self.weight);
        if let Some(b) = &self.bias {
            f(&join(prefix, "bias"), b);
        }
    }
    fn describe(&self) -> String {
        format!(
            "Linear(in_features={}, out_features={}, bias={})",
            self.in_features,
            self.out_features,
            self.bias.is_some()
        )
    }
}
