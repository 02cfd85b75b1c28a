//! PyTorch's default initializers.
//!
//! `nn.Linear` and `nn.Conv2d` draw weights with `kaiming_uniform_(a = √5)`:
//! gain `√(2/(1 + a²)) = √(1/3)`, bound `gain · √(3/fan_in) = 1/√fan_in`; and
//! biases from `U(−1/√fan_in, 1/√fan_in)`. `fan_in` is `in_features` for a
//! linear layer and `in_channels/groups · KH · KW` for a convolution.
//!
//! Two initializers of the CIFAR-10 speed records (Jordan 2024) fit a
//! convolution to its input instead: [`dirac`] makes filters identities, and
//! [`patch_whitening`] makes a first layer that decorrelates the pixels of
//! each patch.
//!
//! Uses: `tensor`, `rng`, `kernels::eigen`.

use crate::kernels::eigen::symmetric_eigen;
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

/// Makes the first `min(O, I)` filters of a convolution weight `[O, I, KH,
/// KW]` identities: filter `o` is 1 at the centre tap of input channel `o`
/// and 0 elsewhere, so output `o` starts as a copy of input `o`
/// (`torch.nn.init.dirac_(w[:I])`); the other filters are left as they are.
///
/// ```
/// use saddle::nn::dirac;
/// use saddle::Tensor;
/// let w = Tensor::ones(&[3, 2, 3, 3]);
/// dirac(&w);
/// let v = w.to_vec();
/// assert_eq!((v[4], v[0], v[9 + 4], v[18 + 9 + 4]), (1.0, 0.0, 0.0, 1.0)); // w[0,0,1,1], w[0,0,0,0], w[0,1,1,1], w[1,1,1,1]
/// assert!(v[36..].iter().all(|&x| x == 1.0)); // filter 2 untouched
/// ```
pub fn dirac(weight: &Tensor) {
    let s = weight.shape();
    assert_eq!(s.len(), 4, "dirac: a convolution weight [O, I, KH, KW], got {s:?}");
    let (i, kh, kw) = (s[1], s[2], s[3]);
    let filter = i * kh * kw;
    let mut w = weight.data_mut();
    for o in 0..s[0].min(i) {
        let f = &mut w[o * filter..(o + 1) * filter];
        f.fill(0.0);
        f[o * kh * kw + (kh / 2) * kw + kw / 2] = 1.0;
    }
}

/// The weights `[2D, C, KH, KW]` (`D = C·KH·KW`) of a convolution that
/// whitens the `KH×KW` patches of `images` `[N, C, H, W]`.
///
/// With `x` a patch flattened in `(c, i, j)` order, `Σ = E[x xᵀ]` over every
/// patch position of every image (not centred), and `Σ = Σ_k λ_k v_k v_kᵀ`
/// its eigen-decomposition with `λ_1 ≥ … ≥ λ_D`, filter `k` is `v_k /
/// √(λ_k + ε)` and filter `D + k` its negative: the first `D` outputs are
/// uncorrelated with variance `λ_k / (λ_k + ε) ≈ 1`, and the pairs let a
/// following GELU keep both signs. This is the frozen first layer of
/// airbench (Jordan 2024), which uses 5000 training images and `ε = 5·10⁻⁴`.
/// Each eigenvector's sign is arbitrary, so the result is PyTorch's up to
/// swapping filters `k` and `D + k`.
///
/// ```
/// use saddle::nn::patch_whitening;
/// use saddle::{Rng, Tensor};
/// let images = Tensor::normal(&[8, 3, 6, 6], 0.0, 1.0, &mut Rng::new(0));
/// let w = patch_whitening(&images, (2, 2), 5e-4);
/// assert_eq!(w.shape(), &[24, 3, 2, 2]);
/// ```
pub fn patch_whitening(images: &Tensor, kernel: (usize, usize), eps: f64) -> Tensor {
    let s = images.shape();
    assert_eq!(s.len(), 4, "patch_whitening: images [N, C, H, W], got {s:?}");
    let (n, c, h, w, (kh, kw)) = (s[0], s[1], s[2], s[3], kernel);
    assert!(kh >= 1 && kw >= 1 && kh <= h && kw <= w, "patch_whitening: a {kh}×{kw} patch in a {h}×{w} image");
    let d = c * kh * kw;
    let x = images.data();
    let (mut sigma, mut patch) = (vec![0f64; d * d], vec![0f64; d]);
    for img in x.chunks_exact(c * h * w) {
        for (y0, x0) in (0..=h - kh).flat_map(|y| (0..=w - kw).map(move |x| (y, x))) {
            for (k, p) in patch.iter_mut().enumerate() {
                let (ch, i, j) = (k / (kh * kw), k / kw % kh, k % kw);
                *p = img[(ch * h + y0 + i) * w + x0 + j] as f64;
            }
            for a in 0..d {
                let pa = patch[a];
                sigma[a * d..a * d + a + 1].iter_mut().zip(&patch).for_each(|(s, &pb)| *s += pa * pb);
            }
        }
    }
    let count = (n * (h - kh + 1) * (w - kw + 1)).max(1) as f64;
    for a in 0..d {
        for b in 0..=a {
            sigma[a * d + b] /= count;
            sigma[b * d + a] = sigma[a * d + b];
        }
    }
    let (values, vectors) = symmetric_eigen(&sigma, d);
    let mut out = vec![0f32; 2 * d * d];
    for k in 0..d {
        let e = d - 1 - k; // descending
        let scale = 1.0 / (values[e].max(0.0) + eps).sqrt();
        for r in 0..d {
            let v = (vectors[r * d + e] * scale) as f32;
            out[k * d + r] = v;
            out[(d + k) * d + r] = -v;
        }
    }
    Tensor::from_vec(out, &[2 * d, c, kh, kw])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whitened patches have the identity as their second moment (up to
    /// `λ/(λ + ε)`), and the second half of the filters negates the first.
    #[test]
    fn whitening_decorrelates_patches() {
        let mut rng = Rng::new(3);
        // Correlated channels: c1 = c0 + noise, c2 = 0.5·c0 + other noise.
        let base = Tensor::normal(&[16, 1, 8, 8], 0.0, 1.0, &mut rng).to_vec();
        let noise = Tensor::normal(&[16, 2, 8, 8], 0.0, 0.1, &mut rng).to_vec();
        let mut data = Vec::new();
        for i in 0..16 {
            let (b, e, f) =
                (&base[i * 64..(i + 1) * 64], &noise[i * 128..i * 128 + 64], &noise[i * 128 + 64..(i + 1) * 128]);
            data.extend_from_slice(b);
            data.extend(b.iter().zip(e).map(|(x, n)| x + n));
            data.extend(b.iter().zip(f).map(|(x, n)| 0.5 * x + n));
        }
        let images = Tensor::from_vec(data, &[16, 3, 8, 8]);
        let w = patch_whitening(&images, (2, 2), 1e-8).to_vec();
        let y = images.conv2d(&Tensor::from_vec(w.clone(), &[24, 3, 2, 2]), None, Default::default()).to_vec();
        let positions = 16 * 7 * 7;
        for a in 0..12 {
            for b in 0..12 {
                let m: f64 = (0..positions)
                    .map(|p| {
                        let (img, q) = (p / 49, p % 49);
                        y[(img * 24 + a) * 49 + q] as f64 * y[(img * 24 + b) * 49 + q] as f64
                    })
                    .sum::<f64>()
                    / positions as f64;
                let want = if a == b { 1.0 } else { 0.0 };
                assert!((m - want).abs() < 2e-3, "E[y{a} y{b}] = {m}");
            }
        }
        assert!(w[..144].iter().zip(&w[144..]).all(|(a, b)| *a == -b));
    }

    #[test]
    fn kaiming_with_sqrt5_has_bound_one_over_sqrt_fan_in() {
        let t = kaiming_uniform(&[64, 100], 100, 5f32.sqrt(), &mut Rng::new(0));
        let max = t.to_vec().iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(max <= 0.1 + 1e-6 && max > 0.095, "max |w| = {max}");
    }
}
