//! Dropout: `y = x ⊙ m / (1 − p)` with `mᵢ ~ Bernoulli(1 − p)` drawn from the
//! caller's seeded [`Rng`]; identity in evaluation. Backward: `dx = dy ⊙ m / (1 − p)`.
//!
//! The mask cannot equal PyTorch's (the generators differ), so this op is
//! checked by its statistics and its gradient, not by a fixture.
//!
//! Uses: `tensor`, `rng`.

use crate::kernels::elementwise::zip_map;
use crate::tensor::{Backward, Tensor};
use crate::Rng;

impl Tensor {
    /// `torch.nn.functional.dropout(x, p, training)` with a seeded mask.
    /// Panics unless `0 ≤ p < 1`.
    pub fn dropout(&self, p: f32, training: bool, rng: &mut Rng) -> Tensor {
        assert!((0.0..1.0).contains(&p), "dropout: p must be in [0, 1), got {p}");
        if !training || p == 0.0 {
            return self.clone();
        }
        let keep = 1.0 / (1.0 - p);
        let mask: Vec<f32> = (0..self.numel()).map(|_| if rng.next_f32() < p { 0.0 } else { keep }).collect();
        let out = zip_map(&self.data(), &mask, |x, m| x * m);
        Tensor::from_op(out, self.shape(), &[self], DropoutBackward { mask })
    }
}

struct DropoutBackward {
    mask: Vec<f32>,
}

impl Backward for DropoutBackward {
    fn name(&self) -> &'static str {
        "dropout"
    }
    fn reads_input(&self, _i: usize) -> bool {
        false
    }
    fn reads_output(&self) -> bool {
        false
    }
    fn backward(&self, _inputs: &[Tensor], _out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        vec![Some(zip_map(g, &self.mask, |g, m| g * m))]
    }
}

#[cfg(test)]
mod tests {
    use crate::{Rng, Tensor};

    #[test]
    fn keeps_the_expected_fraction_scales_and_is_seeded() {
        let x = Tensor::ones(&[10_000]).requires_grad();
        let y = x.dropout(0.3, true, &mut Rng::new(1));
        let v = y.to_vec();
        let kept = v.iter().filter(|&&e| e != 0.0).count() as f32 / v.len() as f32;
        assert!((kept - 0.7).abs() < 0.02, "kept {kept}");
        assert!(v.iter().all(|&e| e == 0.0 || (e - 1.0 / 0.7).abs() < 1e-6));
        assert_eq!(v, x.dropout(0.3, true, &mut Rng::new(1)).to_vec());
        // Gradient: the same mask and scale.
        let g = Tensor::normal(&[10_000], 0.0, 1.0, &mut Rng::new(2));
        y.backward_with(&g);
        let gx = x.grad().unwrap().to_vec();
        for ((gx, g), y) in gx.iter().zip(g.to_vec()).zip(&v) {
            assert_eq!(*gx, g * y);
        }
        assert_eq!(x.dropout(0.3, false, &mut Rng::new(1)).to_vec(), x.to_vec());
    }
}
