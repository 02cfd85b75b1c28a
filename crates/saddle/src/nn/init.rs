//! PyTorch's default initializers.
//!
//! `nn.Linear` and `nn.Conv2d` draw weights with `kaiming_uniform_(a = √5)`:
//! gain `√(2/(1 + a²)) = √(1/3)`, bound `gain · √(3/fan_in) = 1/√fan_in`; and
//! biases from `U(−1/√fan_in, 1/√fan_in)`. `fan_in` is `in_features` for a
//! linear layer and `in_channels/groups · KH · KW` for a convolution.
//!
//! Uses: `tensor`, `rng`.

use crate::{Rng, Tensor};

/// `U(−b, b)` with `b = gain · √(3 / fan_in)` and `gain = √(2 / (1 + a²))`
/// (`torch.nn.init.kaiming_uniform_(t, a)` with leaky-ReLU gain).
pub fn kaiming_uniform(shape: &[usize], fan_in: usize, a: f32, rng: &mut Rng) -> Tensor {
    let gain = (2.0 / (1.0 + a * a)).sqrt();
    let bound = gain * (3.0 / fan_in.max(1) as f32).sqrt();
    Tensor::uniform(shape, -bound, bound, rng)
}

/// `U(−1/√fan_in, 1/√fan_in)`: PyTorch's default for biases.
pub fn uniform_fan_in(shape: &[usize], fan_in: usize, rng: &mut Rng) -> Tensor {
    let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
    Tensor::uniform(shape, -bound, bound, rng)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kaiming_with_sqrt5_has_bound_one_over_sqrt_fan_in() {
        let t = kaiming_uniform(&[64, 100], 100, 5f32.sqrt(), &mut Rng::new(0));
        let max = t.to_vec().iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(max <= 0.1 + 1e-6 && max > 0.095, "max |w| = {max}");
    }
}
