//! Activations: `relu` (and `add_relu`, a residual sum's), `sigmoid`, `tanh`, `gelu`, `silu`, `softmax` and `log_softmax`.
//!
//! `relu(x) = max(x, 0)`, gradient `1[x > 0]` (0 at 0, as PyTorch).
//! `σ(x) = 1/(1 + e⁻ˣ)`, `σ' = σ(1 − σ)`. `tanh' = 1 − tanh²`.
//! `gelu(x) = x·Φ(x)`, `gelu' = Φ + x·φ`. `silu(x) = x·σ(x)`, `silu' = σ(1 + x(1 − σ))`.
//! Along `dim`: `softmax(x)ᵢ = e^{xᵢ − m} / Σⱼ e^{xⱼ − m}` with `m = maxⱼ xⱼ`;
//! backward `dxᵢ = yᵢ(gᵢ − Σⱼ gⱼyⱼ)`. `log_softmax(x)ᵢ = xᵢ − m − log Σⱼ e^{xⱼ − m}`;
//! backward `dxᵢ = gᵢ − e^{yᵢ} Σⱼ gⱼ`.
//!
//! Uses: `tensor`, `kernels::elementwise`.

use super::{share_gradient, split_at_dim};
use crate::kernels::elementwise::{
    gelu, gelu_slope, map, map_widest, sigmoid, tanh, zip_apply, zip_map, zip_map_widest,
};
use crate::tensor::{Backward, Tensor};

impl Tensor {
    /// `max(x, 0)` (`torch.relu`); gradient `1[x > 0]` (0 at 0, as PyTorch).
    pub fn relu(&self) -> Tensor {
        Tensor::from_op(map(&self.data(), |v| v.max(0.0)), self.shape(), &[self], ReluBackward("relu"))
    }

    /// `relu(a + b)` for `a`, `b` of one shape, in one pass (a residual
    /// block's sum and activation): the same values and gradients as
    /// `a.add(b).relu()`, `∂/∂a = ∂/∂b = gout·1[y > 0]`, without the sum's
    /// tensor.
    ///
    /// ```
    /// use saddle::Tensor;
    /// let a = Tensor::from_vec(vec![1.0, -2.0, 0.5], &[3]);
    /// let b = Tensor::from_vec(vec![-3.0, 1.0, 0.5], &[3]);
    /// assert_eq!(a.add_relu(&b).to_vec(), [0.0, 0.0, 1.0]);
    /// ```
    pub fn add_relu(&self, other: &Tensor) -> Tensor {
        if self.shape() != other.shape() {
            panic!("add_relu: shapes {:?} and {:?} differ", self.shape(), other.shape());
        }
        let out = zip_map(&self.data(), &other.data(), |a, b| (a + b).max(0.0));
        Tensor::from_op(out, self.shape(), &[self, other], ReluBackward("add_relu"))
    }
}

/// The backward pass of `relu` and `add_relu`: each input's gradient is
/// `gout·1[y > 0]`, computed in `gout`'s buffer.
struct ReluBackward(&'static str);

impl Backward for ReluBackward {
    fn name(&self) -> &'static str {
        self.0
    }
    fn reads_input(&self, _i: usize) -> bool {
        false
    }
    fn backward(&self, inputs: &[Tensor], out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        self.backward_owned(inputs, out, g.to_vec())
    }
    fn backward_owned(&self, inputs: &[Tensor], out: &[f32], mut g: Vec<f32>) -> Vec<Option<Vec<f32>>> {
        zip_apply(&mut g, out, |g, y| if y > 0.0 { g } else { 0.0 });
        share_gradient(g, inputs)
    }
}

impl Tensor {
    /// `σ(x) = 1 / (1 + e⁻ˣ)` (`torch.sigmoid`); gradient `σ(1 − σ)`.
    pub fn sigmoid(&self) -> Tensor {
        let out = map(&self.data(), sigmoid);
        Tensor::from_op(out, self.shape(), &[self], SigmoidBackward)
    }
}

struct SigmoidBackward;

impl Backward for SigmoidBackward {
    fn name(&self) -> &'static str {
        "sigmoid"
    }
    fn reads_input(&self, _i: usize) -> bool {
        false
    }
    fn backward(&self, _inputs: &[Tensor], out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        vec![Some(zip_map(g, out, |g, y| g * y * (1.0 - y)))]
    }
}

impl Tensor {
    /// Hyperbolic tangent (`torch.tanh`); gradient `1 − tanh²`.
    pub fn tanh(&self) -> Tensor {
        Tensor::from_op(map(&self.data(), tanh), self.shape(), &[self], TanhBackward)
    }
}

struct TanhBackward;

impl Backward for TanhBackward {
    fn name(&self) -> &'static str {
        "tanh"
    }
    fn reads_input(&self, _i: usize) -> bool {
        false
    }
    fn backward(&self, _inputs: &[Tensor], out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        vec![Some(zip_map(g, out, |g, y| g * (1.0 - y * y)))]
    }
}

impl Tensor {
    /// GELU in its exact form (`torch.nn.functional.gelu`, `approximate='none'`):
    /// `x·Φ(x) = ½x(1 + erf(x/√2))`; gradient `Φ(x) + x·φ(x)`, with `φ` the
    /// standard normal density. `erf` is within 1.5e-7.
    ///
    /// ```
    /// use saddle::Tensor;
    /// let y = Tensor::from_vec(vec![-1.0, 0.0, 1.0], &[3]).gelu().to_vec();
    /// assert!((y[0] + 0.158_655_3).abs() < 1e-6 && y[1] == 0.0 && (y[2] - 0.841_344_7).abs() < 1e-6);
    /// ```
    pub fn gelu(&self) -> Tensor {
        // `gelu` is `#[inline(always)]`, so each run compiles it in.
        let out = map_widest(&self.data(), gelu);
        Tensor::from_op(out, self.shape(), &[self], GeluBackward)
    }

    /// SiLU, also called swish (`torch.nn.functional.silu`): `x·σ(x)`;
    /// gradient `σ(x)·(1 + x·(1 − σ(x)))`.
    pub fn silu(&self) -> Tensor {
        Tensor::from_op(map(&self.data(), |v| v * sigmoid(v)), self.shape(), &[self], SiluBackward)
    }
}

struct GeluBackward;

impl Backward for GeluBackward {
    fn name(&self) -> &'static str {
        "gelu"
    }
    fn backward(&self, inputs: &[Tensor], _out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        let dx = zip_map_widest(
            g,
            &inputs[0].data(),
            #[inline(always)]
            |g, x| g * gelu_slope(x),
        );
        vec![Some(dx)]
    }
}

struct SiluBackward;

impl Backward for SiluBackward {
    fn name(&self) -> &'static str {
        "silu"
    }
    fn backward(&self, inputs: &[Tensor], _out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        let dx = zip_map(g, &inputs[0].data(), |g, x| {
            let s = sigmoid(x);
            g * s * (1.0 + x * (1.0 - s))
        });
        vec![Some(dx)]
    }
}

/// Calls `f(lane)` for every 1-D lane along `dim` of a `[outer, size, inner]`
/// buffer, giving it the lane's element indices (`base + j·inner`).
fn for_each_lane(outer: usize, size: usize, inner: usize, mut f: impl FnMut(&mut dyn Iterator<Item = usize>)) {
    for o in 0..outer {
        for i in 0..inner {
            let base = o * size * inner + i;
            f(&mut (0..size).map(|j| base + j * inner));
        }
    }
}

fn softmax_impl(x: &Tensor, dim: usize, log: bool) -> Tensor {
    let op = if log { "log_softmax" } else { "softmax" };
    let (outer, size, inner) = split_at_dim(op, x.shape(), dim);
    let xd = x.data();
    let mut out = vec![0.0f32; xd.len()];
    for_each_lane(outer, size, inner, |lane| {
        let idx: Vec<usize> = lane.collect();
        let m = idx.iter().map(|&k| xd[k]).fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = idx.iter().map(|&k| (xd[k] - m).exp()).sum();
        for &k in &idx {
            out[k] = if log { xd[k] - m - sum.ln() } else { (xd[k] - m).exp() / sum };
        }
    });
    drop(xd);
    Tensor::from_op(out, x.shape(), &[x], SoftmaxBackward { dim, log })
}

struct SoftmaxBackward {
    dim: usize,
    log: bool,
}

impl Backward for SoftmaxBackward {
    fn name(&self) -> &'static str {
        if self.log {
            "log_softmax"
        } else {
            "softmax"
        }
    }
    fn backward(&self, inputs: &[Tensor], out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        let (outer, size, inner) = split_at_dim(self.name(), inputs[0].shape(), self.dim);
        let mut dx = vec![0.0f32; out.len()];
        for_each_lane(outer, size, inner, |lane| {
            let idx: Vec<usize> = lane.collect();
            if self.log {
                let gsum: f32 = idx.iter().map(|&k| g[k]).sum();
                idx.iter().for_each(|&k| dx[k] = g[k] - out[k].exp() * gsum);
            } else {
                let dot: f32 = idx.iter().map(|&k| g[k] * out[k]).sum();
                idx.iter().for_each(|&k| dx[k] = out[k] * (g[k] - dot));
            }
        });
        vec![Some(dx)]
    }
}

impl Tensor {
    /// Softmax along `dim` (`torch.softmax(x, dim)`): `yᵢ = e^{xᵢ − m} / Σⱼ e^{xⱼ − m}`
    /// with `m = maxⱼ xⱼ`; backward `dxᵢ = yᵢ(gᵢ − Σⱼ gⱼyⱼ)`.
    pub fn softmax(&self, dim: usize) -> Tensor {
        softmax_impl(self, dim, false)
    }
    /// Log-softmax along `dim` (`torch.log_softmax(x, dim)`), computed stably:
    /// `yᵢ = xᵢ − m − log Σⱼ e^{xⱼ − m}`; backward `dxᵢ = gᵢ − e^{yᵢ} Σⱼ gⱼ`.
    pub fn log_softmax(&self, dim: usize) -> Tensor {
        softmax_impl(self, dim, true)
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{gradcheck, Fixtures};
    use crate::{Rng, Tensor};

    #[test]
    fn activations_match_pytorch() {
        let fx = Fixtures::load("activation");
        for case in fx.cases("act") {
            let x = fx.param(&case, "x");
            let out = match case.attr("op") {
                "relu" => x.relu(),
                "sigmoid" => x.sigmoid(),
                "tanh" => x.tanh(),
                "gelu" => x.gelu(),
                "silu" => x.silu(),
                "softmax" => x.softmax(case.attr_usize("dim")),
                "log_softmax" => x.log_softmax(case.attr_usize("dim")),
                other => panic!("unknown op {other}"),
            };
            fx.check_forward_backward(&case, &out, &[("x", &x)]);
        }
    }

    #[test]
    fn smooth_activations_match_pytorch() {
        let fx = Fixtures::load("cnn_parts");
        for case in fx.cases("act") {
            let x = fx.param(&case, "x");
            let out = if case.attr("op") == "gelu" { x.gelu() } else { x.silu() };
            fx.check_forward_backward(&case, &out, &[("x", &x)]);
        }
    }

    #[test]
    fn activations_gradcheck() {
        let mut rng = Rng::new(20);
        let x = Tensor::uniform(&[3, 4, 5], -2.0, 2.0, &mut rng);
        let xs = std::slice::from_ref(&x);
        gradcheck("relu", xs, |t| t[0].relu(), &mut rng);
        gradcheck("sigmoid", xs, |t| t[0].sigmoid(), &mut rng);
        gradcheck("tanh", xs, |t| t[0].tanh(), &mut rng);
        gradcheck("gelu", xs, |t| t[0].gelu(), &mut rng);
        gradcheck("silu", xs, |t| t[0].silu(), &mut rng);
        for dim in 0..3 {
            gradcheck("softmax", xs, |t| t[0].softmax(dim), &mut rng);
            gradcheck("log_softmax", xs, |t| t[0].log_softmax(dim), &mut rng);
        }
    }

    #[test]
    fn add_relu_is_the_sum_then_relu_bit_for_bit() {
        // 43 200 values, enough for the element-wise loops to run in parallel.
        let mut rng = Rng::new(21);
        let a = Tensor::uniform(&[4, 3, 60, 60], -1.0, 1.0, &mut rng);
        let b = Tensor::uniform(&[4, 3, 60, 60], -1.0, 1.0, &mut rng);
        let g = Tensor::normal(a.shape(), 0.0, 1.0, &mut rng);
        let run = |fused: bool, grads: (bool, bool)| {
            let leaf = |t: &Tensor, on: bool| if on { t.detach().requires_grad() } else { t.detach() };
            let (a, b) = (leaf(&a, grads.0), leaf(&b, grads.1));
            let y = if fused { a.add_relu(&b) } else { a.add(&b).relu() };
            y.backward_with(&g);
            (y.to_vec(), a.grad().map(|t| t.to_vec()), b.grad().map(|t| t.to_vec()))
        };
        for grads in [(true, true), (true, false), (false, true)] {
            assert!(run(true, grads) == run(false, grads), "add_relu differs from add then relu ({grads:?})");
        }
        let small = [Tensor::uniform(&[2, 5], -1.0, 1.0, &mut rng), Tensor::uniform(&[2, 5], -1.0, 1.0, &mut rng)];
        gradcheck("add_relu", &small, |t| t[0].add_relu(&t[1]), &mut rng);
    }

    #[test]
    fn log_softmax_is_stable_for_large_logits() {
        let x = Tensor::from_vec(vec![1000.0, 0.0, -1000.0], &[1, 3]);
        let y = x.log_softmax(1).to_vec();
        assert_eq!(y[0], 0.0);
        assert_eq!(y[1], -1000.0);
        assert!(y.iter().all(|v| v.is_finite()));
    }
}
