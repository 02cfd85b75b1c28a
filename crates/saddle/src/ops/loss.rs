//! Losses: softmax cross-entropy with integer targets, and mean squared error.
//!
//! Letters: N rows (examples or tokens), C classes.
//!
//! `cross_entropy`: `ℓᵢ = −Σ_c qᵢ_c log softmax(zᵢ)_c` with `qᵢ = (1 − ε)·onehot(tᵢ) + ε/C`
//! (label smoothing `ε`, 0 by default) for `logits z: [N, C]` and `targets t: [N]`; rows whose target equals `ignore_index` add nothing, and
//! the mean divides by the number of rows that count (as PyTorch; NaN if none
//! does). Backward: `∂ℓᵢ/∂zᵢ = softmax(zᵢ) − qᵢ`.
//! `mse_loss`: `ℓ = (p − y)²` element-wise, `∂ℓ/∂p = 2(p − y)`.
//!
//! Uses: `tensor`.

use crate::tensor::{shape_mismatch, Backward, Tensor};

/// How per-element losses are combined, as PyTorch's `reduction=`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// Keep one loss per element (`'none'`).
    None,
    /// Average (`'mean'`, the default).
    #[default]
    Mean,
    /// Add up (`'sum'`).
    Sum,
}

/// Settings of [`Tensor::cross_entropy`]; `Default` is PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CrossEntropyOptions {
    /// How row losses are combined.
    pub reduction: Reduction,
    /// Rows with this target are skipped (PyTorch's default: −100).
    pub ignore_index: i64,
    /// `ε`: the target becomes `(1 − ε)·onehot(t) + ε/C` (PyTorch's `label_smoothing`, default 0).
    pub label_smoothing: f32,
}

impl Default for CrossEntropyOptions {
    fn default() -> Self {
        CrossEntropyOptions { reduction: Reduction::Mean, ignore_index: -100, label_smoothing: 0.0 }
    }
}

impl Tensor {
    /// `torch.nn.functional.cross_entropy(logits, targets, reduction=…, ignore_index=…,
    /// label_smoothing=ε)` with `logits: [N, C]` and `targets: [N]` in `0..C`
    /// (or `ignore_index`): `ℓᵢ = −Σ_c qᵢ_c log softmax(zᵢ)_c` with
    /// `qᵢ = (1 − ε)·onehot(tᵢ) + ε/C` (`ℓᵢ = −log softmax(zᵢ)[tᵢ]` for `ε = 0`);
    /// rows whose target is `ignore_index` add nothing, and the mean divides
    /// by the rows that count (NaN if none does).
    /// Backward: `∂ℓᵢ/∂zᵢ = softmax(zᵢ) − qᵢ`.
    ///
    /// ```
    /// use saddle::{ops::CrossEntropyOptions, Tensor};
    /// let logits = Tensor::from_vec(vec![0.0, 0.0, 5.0, -5.0], &[2, 2]);
    /// let loss = logits.cross_entropy(&[1, 0], CrossEntropyOptions::default());
    /// // row 0: −log ½ = 0.6931; row 1: −log σ(10) ≈ 4.5e−5
    /// assert!((loss.item() - 0.34660).abs() < 1e-4);
    /// ```
    pub fn cross_entropy(&self, targets: &[i64], opt: CrossEntropyOptions) -> Tensor {
        let s = self.shape();
        if s.len() != 2 || targets.len() != s[0] {
            panic!("cross_entropy: logits {s:?} must be [N, C] with N = {} targets", targets.len());
        }
        let (n, c) = (s[0], s[1]);
        let z = self.data();
        let mut probs = vec![0.0f32; n * c];
        let mut losses = vec![0.0f32; n];
        let mut count = 0usize;
        let eps = opt.label_smoothing;
        for i in 0..n {
            let row = &z[i * c..][..c];
            let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let p = &mut probs[i * c..][..c];
            p.iter_mut().zip(row).for_each(|(p, v)| *p = (v - m).exp());
            let sum: f32 = p.iter().sum();
            p.iter_mut().for_each(|p| *p /= sum);
            let t = targets[i];
            if t == opt.ignore_index {
                continue;
            }
            if t < 0 || t as usize >= c {
                panic!("cross_entropy: target {t} at row {i} is out of range for {c} classes");
            }
            // log p_c = z_c − m − log Σ
            let log_z = m + sum.ln();
            let nll = log_z - row[t as usize];
            losses[i] = if eps == 0.0 {
                nll
            } else {
                let mean_nll = log_z - row.iter().sum::<f32>() / c as f32;
                (1.0 - eps) * nll + eps * mean_nll
            };
            count += 1;
        }
        drop(z);
        let (out, shape) = match opt.reduction {
            Reduction::None => (losses, vec![n]),
            Reduction::Sum => (vec![losses.iter().sum()], vec![]),
            Reduction::Mean => (vec![losses.iter().sum::<f32>() / count as f32], vec![]),
        };
        let back = CrossEntropyBackward { probs, targets: targets.to_vec(), opt, count };
        Tensor::from_op(out, &shape, &[self], back)
    }
}

struct CrossEntropyBackward {
    probs: Vec<f32>,
    targets: Vec<i64>,
    opt: CrossEntropyOptions,
    count: usize,
}

impl Backward for CrossEntropyBackward {
    fn name(&self) -> &'static str {
        "cross_entropy"
    }
    fn backward(&self, _inputs: &[Tensor], _out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        let n = self.targets.len();
        let c = self.probs.len() / n.max(1);
        let mut dz = vec![0.0f32; n * c];
        for (i, &t) in self.targets.iter().enumerate() {
            if t == self.opt.ignore_index {
                continue;
            }
            let scale = match self.opt.reduction {
                Reduction::None => g[i],
                Reduction::Sum => g[0],
                Reduction::Mean => g[0] / self.count as f32,
            };
            let row = &mut dz[i * c..][..c];
            let eps = self.opt.label_smoothing;
            let spread = eps / c as f32;
            row.iter_mut().zip(&self.probs[i * c..][..c]).for_each(|(d, p)| *d = (p - spread) * scale);
            row[t as usize] -= (1.0 - eps) * scale;
        }
        vec![Some(dz)]
    }
}

impl Tensor {
    /// `torch.nn.functional.mse_loss(self, target, reduction=…)`; shapes must match:
    /// `ℓ = (p − y)²` element-wise, `∂ℓ/∂p = 2(p − y)`.
    pub fn mse_loss(&self, target: &Tensor, reduction: Reduction) -> Tensor {
        if self.shape() != target.shape() {
            shape_mismatch("mse_loss", self.shape(), target.shape());
        }
        let diff: Vec<f32> = self.data().iter().zip(target.data().iter()).map(|(p, y)| p - y).collect();
        let sq: Vec<f32> = diff.iter().map(|d| d * d).collect();
        let (out, shape) = match reduction {
            Reduction::None => (sq, self.shape().to_vec()),
            Reduction::Sum => (vec![sq.iter().sum()], vec![]),
            Reduction::Mean => (vec![sq.iter().sum::<f32>() / sq.len() as f32], vec![]),
        };
        Tensor::from_op(out, &shape, &[self, target], MseBackward { diff, reduction })
    }
}

struct MseBackward {
    diff: Vec<f32>,
    reduction: Reduction,
}

impl Backward for MseBackward {
    fn name(&self) -> &'static str {
        "mse_loss"
    }
    fn backward(&self, inputs: &[Tensor], _out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        let n = self.diff.len() as f32;
        let dp: Vec<f32> = match self.reduction {
            Reduction::None => self.diff.iter().zip(g).map(|(d, g)| 2.0 * d * g).collect(),
            Reduction::Sum => self.diff.iter().map(|d| 2.0 * d * g[0]).collect(),
            Reduction::Mean => self.diff.iter().map(|d| 2.0 * d * g[0] / n).collect(),
        };
        let dy = inputs[1].is_requires_grad().then(|| dp.iter().map(|v| -v).collect());
        vec![Some(dp), dy]
    }
}

#[cfg(test)]
mod tests {
    use super::{CrossEntropyOptions, Reduction};
    use crate::ops::testing::{gradcheck, Fixtures};
    use crate::{Rng, Tensor};

    fn reduction(s: &str) -> Reduction {
        match s {
            "none" => Reduction::None,
            "sum" => Reduction::Sum,
            _ => Reduction::Mean,
        }
    }

    #[test]
    fn losses_match_pytorch() {
        let fx = Fixtures::load("loss");
        for case in fx.cases("cross_entropy") {
            let z = fx.param(&case, "logits");
            let t = fx.indices(&case, "targets");
            let opt = CrossEntropyOptions {
                reduction: reduction(case.attr("reduction")),
                ignore_index: case.attr("ignore_index").parse().unwrap(),
                label_smoothing: 0.0,
            };
            fx.check_forward_backward(&case, &z.cross_entropy(&t, opt), &[("logits", &z)]);
        }
        let parts = Fixtures::load("cnn_parts");
        for case in parts.cases("cross_entropy") {
            let z = parts.param(&case, "logits");
            let t = parts.indices(&case, "targets");
            let opt = CrossEntropyOptions {
                reduction: reduction(case.attr("reduction")),
                ignore_index: case.attr("ignore_index").parse().unwrap(),
                label_smoothing: case.attr_f32("label_smoothing"),
            };
            parts.check_forward_backward(&case, &z.cross_entropy(&t, opt), &[("logits", &z)]);
        }
        for case in fx.cases("mse") {
            let (p, y) = (fx.param(&case, "pred"), fx.param(&case, "target"));
            fx.check_forward_backward(
                &case,
                &p.mse_loss(&y, reduction(case.attr("reduction"))),
                &[("pred", &p), ("target", &y)],
            );
        }
    }

    #[test]
    fn losses_gradcheck() {
        let mut rng = Rng::new(90);
        let z = Tensor::uniform(&[5, 4], -2.0, 2.0, &mut rng);
        let t = [3, -100, 0, 1, 3];
        for r in [Reduction::Mean, Reduction::Sum, Reduction::None] {
            for label_smoothing in [0.0, 0.3] {
                let opt = CrossEntropyOptions { reduction: r, ignore_index: -100, label_smoothing };
                gradcheck("cross_entropy", std::slice::from_ref(&z), |x| x[0].cross_entropy(&t, opt), &mut rng);
            }
        }
        let y = Tensor::uniform(&[5, 4], -2.0, 2.0, &mut rng);
        gradcheck("mse_loss", &[z, y], |x| x[0].mse_loss(&x[1], Reduction::Mean), &mut rng);
    }

    #[test]
    #[should_panic(expected = "cross_entropy: target 7 at row 1 is out of range for 4 classes")]
    fn out_of_range_target_is_named() {
        Tensor::zeros(&[2, 4]).cross_entropy(&[0, 7], CrossEntropyOptions::default());
    }
}
