//! Reductions: `sum`, `mean` and `max` over axes, with `keepdim`.
//!
//! `sum` over axes `A`: `out[k] = Σ_{i ↦ k} x[i]`; backward broadcasts `g`
//! back to `x`'s shape. `mean` divides by `∏_{a∈A} size(a)`. `max(dim)` keeps
//! the first maximum along `dim` (as `torch.max(x, dim)` on CPU) and sends the
//! gradient to it.
//!
//! Uses: `tensor`, `kernels::elementwise`.

use super::split_at_dim;
use crate::kernels::elementwise::{expand, sum_to_shape};
use crate::tensor::{numel, Backward, Tensor};

/// `x`'s shape with the reduced axes set to 1.
fn kept_shape(op: &str, shape: &[usize], dims: &[usize]) -> Vec<usize> {
    let mut kept = shape.to_vec();
    for &d in dims {
        if d >= shape.len() {
            panic!("{op}: dim {d} is out of range for shape {shape:?}");
        }
        kept[d] = 1;
    }
    kept
}

/// The output shape: `x`'s with the reduced axes set to 1 (`keepdim`) or removed.
fn output_shape(shape: &[usize], dims: &[usize], keepdim: bool) -> Vec<usize> {
    if keepdim {
        kept_shape("reduce", shape, dims)
    } else {
        (0..shape.len()).filter(|d| !dims.contains(d)).map(|d| shape[d]).collect()
    }
}

fn sum_impl(x: &Tensor, dims: &[usize], keepdim: bool, scale: f32, op: &'static str) -> Tensor {
    let kept = kept_shape(op, x.shape(), dims);
    let mut out = sum_to_shape(&x.data(), x.shape(), &kept);
    if scale != 1.0 {
        out.iter_mut().for_each(|v| *v *= scale);
    }
    Tensor::from_op(out, &output_shape(x.shape(), dims, keepdim), &[x], SumBackward { kept, scale, op })
}

struct SumBackward {
    kept: Vec<usize>,
    scale: f32,
    op: &'static str,
}

impl Backward for SumBackward {
    fn name(&self) -> &'static str {
        self.op
    }
    fn backward(&self, inputs: &[Tensor], _out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        let mut dx = expand(g, &self.kept, inputs[0].shape());
        if self.scale != 1.0 {
            dx.iter_mut().for_each(|v| *v *= self.scale);
        }
        vec![Some(dx)]
    }
}

impl Tensor {
    /// Sum over `dims` (`torch.sum(x, dims, keepdim)`).
    pub fn sum(&self, dims: &[usize], keepdim: bool) -> Tensor {
        sum_impl(self, dims, keepdim, 1.0, "sum")
    }
    /// Mean over `dims` (`torch.mean(x, dims, keepdim)`).
    pub fn mean(&self, dims: &[usize], keepdim: bool) -> Tensor {
        let count: usize = dims.iter().map(|&d| self.shape().get(d).copied().unwrap_or(1)).product();
        sum_impl(self, dims, keepdim, 1.0 / count as f32, "mean")
    }
    /// Sum of all elements, as a scalar `[]`.
    pub fn sum_all(&self) -> Tensor {
        let dims: Vec<usize> = (0..self.ndim()).collect();
        self.sum(&dims, false)
    }
    /// Mean of all elements, as a scalar `[]`.
    pub fn mean_all(&self) -> Tensor {
        let dims: Vec<usize> = (0..self.ndim()).collect();
        self.mean(&dims, false)
    }

    /// Maximum along `dim` (the values of `torch.max(x, dim, keepdim)`).
    pub fn max(&self, dim: usize, keepdim: bool) -> Tensor {
        let (values, arg) = max_along(self, dim);
        let shape = output_shape(self.shape(), &[dim], keepdim);
        Tensor::from_op(values, &shape, &[self], MaxBackward { dim, arg })
    }

    /// Index of the first maximum along `dim` (`torch.argmax(x, dim)`), row-major
    /// over the other axes. Not differentiable.
    pub fn argmax(&self, dim: usize) -> Vec<usize> {
        max_along(self, dim).1
    }
}

/// `(values, indices)` of the first maximum along `dim` (NaN counts as largest).
fn max_along(x: &Tensor, dim: usize) -> (Vec<f32>, Vec<usize>) {
    let (outer, size, inner) = split_at_dim("max", x.shape(), dim);
    if size == 0 {
        panic!("max: dim {dim} of shape {:?} is empty", x.shape());
    }
    let xd = x.data();
    let mut values = vec![0.0f32; outer * inner];
    let mut arg = vec![0usize; outer * inner];
    for o in 0..outer {
        for i in 0..inner {
            let lane = |j: usize| xd[(o * size + j) * inner + i];
            let (mut best, mut at) = (lane(0), 0);
            for j in 1..size {
                let v = lane(j);
                if !best.is_nan() && (v > best || v.is_nan()) {
                    best = v;
                    at = j;
                }
            }
            values[o * inner + i] = best;
            arg[o * inner + i] = at;
        }
    }
    (values, arg)
}

struct MaxBackward {
    dim: usize,
    arg: Vec<usize>,
}

impl Backward for MaxBackward {
    fn name(&self) -> &'static str {
        "max"
    }
    fn backward(&self, inputs: &[Tensor], _out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        let (outer, size, inner) = split_at_dim("max", inputs[0].shape(), self.dim);
        let mut dx = vec![0.0f32; numel(inputs[0].shape())];
        for o in 0..outer {
            for i in 0..inner {
                dx[(o * size + self.arg[o * inner + i]) * inner + i] = g[o * inner + i];
            }
        }
        vec![Some(dx)]
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{gradcheck, Fixtures};
    use crate::{Rng, Tensor};

    #[test]
    fn reductions_match_pytorch() {
        let fx = Fixtures::load("reduce");
        for case in fx.cases("reduce") {
            let x = fx.param(&case, "x");
            let dims: Vec<usize> = case.attr("dims").split(',').map(|d| d.parse().unwrap()).collect();
            let keepdim = case.attr_bool("keepdim");
            let out = match case.attr("op") {
                "sum" => x.sum(&dims, keepdim),
                "mean" => x.mean(&dims, keepdim),
                "max" => x.max(dims[0], keepdim),
                other => panic!("unknown op {other}"),
            };
            fx.check_forward_backward(&case, &out, &[("x", &x)]);
        }
    }

    #[test]
    fn reductions_gradcheck() {
        let mut rng = Rng::new(30);
        let x = Tensor::uniform(&[3, 4, 5], -1.0, 1.0, &mut rng);
        let xs = std::slice::from_ref(&x);
        gradcheck("sum", xs, |t| t[0].sum(&[0, 2], false), &mut rng);
        gradcheck("mean", xs, |t| t[0].mean(&[1], true), &mut rng);
        gradcheck("max", xs, |t| t[0].max(2, false), &mut rng);
        gradcheck("sum_all", xs, |t| t[0].sum_all(), &mut rng);
    }

    #[test]
    fn max_ties_go_to_the_first() {
        let x = Tensor::from_vec(vec![1.0, 3.0, 3.0, 2.0], &[1, 4]).requires_grad();
        assert_eq!(x.argmax(1), vec![1]);
        x.max(1, false).sum_all().backward();
        assert_eq!(x.grad().unwrap().to_vec(), vec![0.0, 1.0, 0.0, 0.0]);
    }
}
