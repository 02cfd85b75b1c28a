//! Movement: `reshape`, `flatten`, `unsqueeze`, `squeeze`, `permute`,
//! `transpose`, `narrow`, `index_select`, `cat`, `stack`.
//!
//! None of these computes; each moves values, and its backward moves the
//! gradient back: the inverse permutation, zero padding around a narrow, a
//! scatter-add for `index_select` (an index picked twice gets both gradients),
//! and slices of the gradient for `cat`.
//!
//! Uses: `tensor`.

use super::split_at_dim;
use crate::tensor::{numel, strides, Backward, Tensor};

struct ReshapeBackward;

impl Backward for ReshapeBackward {
    fn name(&self) -> &'static str {
        "reshape"
    }
    fn reads_input(&self, _i: usize) -> bool {
        false
    }
    fn reads_output(&self) -> bool {
        false
    }
    fn backward(&self, _inputs: &[Tensor], _out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        vec![Some(g.to_vec())]
    }
    /// The values in the same order: `gout` itself.
    fn backward_owned(&self, _inputs: &[Tensor], _out: &[f32], gout: Vec<f32>) -> Vec<Option<Vec<f32>>> {
        vec![Some(gout)]
    }
}

/// `out[j] = x[i]` where `j` runs over the permuted shape in row-major order:
/// a row of the last output axis at a time, read with its one stride (or
/// copied where that stride is 1), the outer axes counted as an odometer.
fn permute_data(x: &[f32], shape: &[usize], perm: &[usize]) -> Vec<f32> {
    let s = strides(shape);
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let src_strides: Vec<usize> = perm.iter().map(|&p| s[p]).collect();
    let (n, r) = (x.len(), out_shape.len());
    if n == 0 || r == 0 {
        return x.to_vec();
    }
    let (len, step) = (out_shape[r - 1], src_strides[r - 1]);
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; r - 1];
    let mut off = 0usize;
    for _ in 0..n / len {
        if step == 1 {
            out.extend_from_slice(&x[off..][..len]);
        } else {
            out.extend((0..len).map(|i| x[off + i * step]));
        }
        for d in (0..r - 1).rev() {
            idx[d] += 1;
            off += src_strides[d];
            if idx[d] < out_shape[d] {
                break;
            }
            off -= src_strides[d] * out_shape[d];
            idx[d] = 0;
        }
    }
    out
}

struct PermuteBackward {
    perm: Vec<usize>,
}

impl Backward for PermuteBackward {
    fn name(&self) -> &'static str {
        "permute"
    }
    fn backward(&self, inputs: &[Tensor], _out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        let mut inverse = vec![0; self.perm.len()];
        self.perm.iter().enumerate().for_each(|(i, &p)| inverse[p] = i);
        let out_shape: Vec<usize> = self.perm.iter().map(|&p| inputs[0].shape()[p]).collect();
        vec![Some(permute_data(g, &out_shape, &inverse))]
    }
}

struct NarrowBackward {
    dim: usize,
    start: usize,
    len: usize,
}

impl Backward for NarrowBackward {
    fn name(&self) -> &'static str {
        "narrow"
    }
    fn backward(&self, inputs: &[Tensor], _out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        let (outer, size, inner) = split_at_dim("narrow", inputs[0].shape(), self.dim);
        // Each value written once, in order: zeros before the slice, its gradient, zeros after.
        let (before, after) = (self.start * inner, (size - self.start - self.len) * inner);
        let mut dx = Vec::with_capacity(outer * size * inner);
        for o in 0..outer {
            dx.resize(dx.len() + before, 0.0);
            dx.extend_from_slice(&g[o * self.len * inner..][..self.len * inner]);
            dx.resize(dx.len() + after, 0.0);
        }
        vec![Some(dx)]
    }
}

struct IndexSelectBackward {
    dim: usize,
    indices: Vec<usize>,
}

impl Backward for IndexSelectBackward {
    fn name(&self) -> &'static str {
        "index_select"
    }
    fn backward(&self, inputs: &[Tensor], _out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        let (outer, size, inner) = split_at_dim("index_select", inputs[0].shape(), self.dim);
        let k = self.indices.len();
        let mut dx = vec![0.0f32; outer * size * inner];
        for o in 0..outer {
            for (j, &ix) in self.indices.iter().enumerate() {
                let src = &g[(o * k + j) * inner..][..inner];
                dx[(o * size + ix) * inner..][..inner].iter_mut().zip(src).for_each(|(d, s)| *d += s);
            }
        }
        vec![Some(dx)]
    }
}

struct CatBackward {
    dim: usize,
}

impl Backward for CatBackward {
    fn name(&self) -> &'static str {
        "cat"
    }
    fn backward(&self, inputs: &[Tensor], _out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        let (outer, _, inner) = split_at_dim("cat", inputs[0].shape(), self.dim);
        let total: usize = inputs.iter().map(|t| t.shape()[self.dim]).sum();
        let mut offset = 0;
        inputs
            .iter()
            .map(|t| {
                let len = t.shape()[self.dim];
                let mut gi = Vec::with_capacity(t.numel());
                for o in 0..outer {
                    gi.extend_from_slice(&g[(o * total + offset) * inner..][..len * inner]);
                }
                offset += len;
                t.is_requires_grad().then_some(gi)
            })
            .collect()
    }
}

impl Tensor {
    /// The same values under a new shape with as many elements (`torch.reshape`).
    pub fn reshape(&self, shape: &[usize]) -> Tensor {
        if numel(shape) != self.numel() {
            panic!(
                "reshape: shape {:?} ({} elements) cannot become {shape:?} ({} elements)",
                self.shape(),
                self.numel(),
                numel(shape)
            );
        }
        Tensor::from_op(self.to_vec(), shape, &[self], ReshapeBackward)
    }

    /// Merges dimensions `start_dim..` into one (`torch.flatten(x, start_dim)`).
    pub fn flatten(&self, start_dim: usize) -> Tensor {
        if start_dim >= self.ndim() {
            panic!("flatten: start_dim {start_dim} is out of range for shape {:?}", self.shape());
        }
        let mut shape = self.shape()[..start_dim].to_vec();
        shape.push(self.shape()[start_dim..].iter().product());
        self.reshape(&shape)
    }

    /// Inserts a dimension of size 1 at `dim` (`torch.unsqueeze`).
    pub fn unsqueeze(&self, dim: usize) -> Tensor {
        if dim > self.ndim() {
            panic!("unsqueeze: dim {dim} is out of range for shape {:?}", self.shape());
        }
        let mut shape = self.shape().to_vec();
        shape.insert(dim, 1);
        self.reshape(&shape)
    }

    /// Removes dimension `dim`, which must have size 1 (`torch.squeeze(x, dim)`).
    pub fn squeeze(&self, dim: usize) -> Tensor {
        if self.shape().get(dim) != Some(&1) {
            panic!("squeeze: dim {dim} of shape {:?} does not have size 1", self.shape());
        }
        let mut shape = self.shape().to_vec();
        shape.remove(dim);
        self.reshape(&shape)
    }

    /// Reorders the dimensions: output dimension `i` is input dimension `perm[i]`
    /// (`torch.permute`). The result is a contiguous copy.
    pub fn permute(&self, perm: &[usize]) -> Tensor {
        let mut seen = vec![false; self.ndim()];
        if perm.len() != self.ndim() || !perm.iter().all(|&p| p < seen.len() && !std::mem::replace(&mut seen[p], true))
        {
            panic!("permute: {perm:?} is not a permutation of the dimensions of shape {:?}", self.shape());
        }
        let out = permute_data(&self.data(), self.shape(), perm);
        let shape: Vec<usize> = perm.iter().map(|&p| self.shape()[p]).collect();
        Tensor::from_op(out, &shape, &[self], PermuteBackward { perm: perm.to_vec() })
    }

    /// Swaps dimensions `d0` and `d1` (`torch.transpose`).
    pub fn transpose(&self, d0: usize, d1: usize) -> Tensor {
        let mut perm: Vec<usize> = (0..self.ndim()).collect();
        if d0 >= perm.len() || d1 >= perm.len() {
            panic!("transpose: dims ({d0}, {d1}) are out of range for shape {:?}", self.shape());
        }
        perm.swap(d0, d1);
        self.permute(&perm)
    }

    /// Elements `start..start + len` along `dim` (`torch.narrow`).
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Tensor {
        let (outer, size, inner) = split_at_dim("narrow", self.shape(), dim);
        if start + len > size {
            panic!("narrow: {start}..{} is out of range for dim {dim} of shape {:?}", start + len, self.shape());
        }
        let x = self.data();
        let mut out = Vec::with_capacity(outer * len * inner);
        for o in 0..outer {
            out.extend_from_slice(&x[(o * size + start) * inner..][..len * inner]);
        }
        drop(x);
        let mut shape = self.shape().to_vec();
        shape[dim] = len;
        Tensor::from_op(out, &shape, &[self], NarrowBackward { dim, start, len })
    }

    /// The slices at `indices` along `dim`, in that order (`torch.index_select`).
    pub fn index_select(&self, dim: usize, indices: &[usize]) -> Tensor {
        let (outer, size, inner) = split_at_dim("index_select", self.shape(), dim);
        if let Some(&bad) = indices.iter().find(|&&i| i >= size) {
            panic!("index_select: index {bad} is out of range for dim {dim} of shape {:?}", self.shape());
        }
        let x = self.data();
        let mut out = Vec::with_capacity(outer * indices.len() * inner);
        for o in 0..outer {
            for &i in indices {
                out.extend_from_slice(&x[(o * size + i) * inner..][..inner]);
            }
        }
        drop(x);
        let mut shape = self.shape().to_vec();
        shape[dim] = indices.len();
        Tensor::from_op(out, &shape, &[self], IndexSelectBackward { dim, indices: indices.to_vec() })
    }

    /// Joins tensors along `dim`; all other dimensions must agree (`torch.cat`).
    pub fn cat(tensors: &[&Tensor], dim: usize) -> Tensor {
        let first = tensors.first().expect("cat: no tensors");
        let (outer, _, inner) = split_at_dim("cat", first.shape(), dim);
        for t in tensors {
            let same = t.ndim() == first.ndim() && (0..t.ndim()).all(|d| d == dim || t.shape()[d] == first.shape()[d]);
            if !same {
                panic!("cat: shapes {:?} and {:?} differ outside dim {dim}", first.shape(), t.shape());
            }
        }
        let total: usize = tensors.iter().map(|t| t.shape()[dim]).sum();
        let datas: Vec<_> = tensors.iter().map(|t| t.data()).collect();
        let mut out = Vec::with_capacity(outer * total * inner);
        for o in 0..outer {
            for (t, d) in tensors.iter().zip(&datas) {
                let len = t.shape()[dim] * inner;
                out.extend_from_slice(&d[o * len..][..len]);
            }
        }
        drop(datas);
        let mut shape = first.shape().to_vec();
        shape[dim] = total;
        Tensor::from_op(out, &shape, tensors, CatBackward { dim })
    }

    /// Joins same-shaped tensors along a new dimension `dim` (`torch.stack`).
    pub fn stack(tensors: &[&Tensor], dim: usize) -> Tensor {
        let expanded: Vec<Tensor> = tensors.iter().map(|t| t.unsqueeze(dim)).collect();
        Tensor::cat(&expanded.iter().collect::<Vec<_>>(), dim)
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{gradcheck, Fixtures};
    use crate::{Rng, Tensor};

    fn usizes(s: &str) -> Vec<usize> {
        s.split(',').map(|v| v.parse().unwrap()).collect()
    }

    #[test]
    fn movement_matches_pytorch() {
        let fx = Fixtures::load("movement");
        for case in fx.cases("movement") {
            let x = fx.param(&case, "x");
            let out = match case.attr("op") {
                "permute" => x.permute(&usizes(case.attr("perm"))),
                "transpose" => x.transpose(case.attr_usize("d0"), case.attr_usize("d1")),
                "narrow" => x.narrow(case.attr_usize("dim"), case.attr_usize("start"), case.attr_usize("len")),
                "index_select" => x.index_select(case.attr_usize("dim"), &usizes(case.attr("indices"))),
                "reshape" => x.reshape(&usizes(case.attr("shape"))),
                other => panic!("unknown op {other}"),
            };
            fx.check_forward_backward(&case, &out, &[("x", &x)]);
        }
        for case in fx.cases("join") {
            let (a, b) = (fx.param(&case, "a"), fx.param(&case, "b"));
            let dim = case.attr_usize("dim");
            let out =
                if case.attr("op") == "cat" { Tensor::cat(&[&a, &b], dim) } else { Tensor::stack(&[&a, &b], dim) };
            fx.check_forward_backward(&case, &out, &[("a", &a), ("b", &b)]);
        }
    }

    #[test]
    fn movement_gradcheck() {
        let mut rng = Rng::new(50);
        let x = Tensor::uniform(&[2, 3, 4], -1.0, 1.0, &mut rng);
        let y = Tensor::uniform(&[2, 2, 4], -1.0, 1.0, &mut rng);
        let xs = std::slice::from_ref(&x);
        gradcheck("permute", xs, |t| t[0].permute(&[2, 0, 1]), &mut rng);
        gradcheck("narrow", xs, |t| t[0].narrow(1, 1, 2), &mut rng);
        gradcheck("narrow between", xs, |t| t[0].narrow(1, 1, 1), &mut rng);
        gradcheck("index_select", xs, |t| t[0].index_select(2, &[3, 0, 3]), &mut rng);
        gradcheck("flatten", xs, |t| t[0].flatten(1), &mut rng);
        gradcheck("cat", &[x.clone(), y.clone()], |t| Tensor::cat(&[&t[0], &t[1]], 1), &mut rng);
        gradcheck("stack", &[x.clone(), x], |t| Tensor::stack(&[&t[0], &t[1]], 3), &mut rng);
    }

    #[test]
    fn permute_round_trip_and_squeeze() {
        let x = Tensor::arange(0.0, 24.0, 1.0).reshape(&[2, 3, 4]);
        let back = x.permute(&[1, 2, 0]).permute(&[2, 0, 1]);
        assert_eq!(back.to_vec(), x.to_vec());
        assert_eq!(x.transpose(0, 2).shape(), &[4, 3, 2]);
        assert_eq!(x.unsqueeze(1).squeeze(1).shape(), &[2, 3, 4]);
    }

    #[test]
    fn permute_matches_its_definition_for_every_order_of_four_axes() {
        let shape = [2, 3, 4, 5];
        let x = Tensor::arange(0.0, 120.0, 1.0).reshape(&shape);
        let orders = (0..256).map(|k| [k % 4, k / 4 % 4, k / 16 % 4, k / 64]);
        for perm in orders.filter(|p| (0..4).all(|a| p.contains(&a))) {
            let y = x.permute(&perm);
            let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
            assert_eq!(y.shape(), &out_shape[..]);
            for (j, &got) in y.to_vec().iter().enumerate() {
                // out[o] = x[i] with i[perm[d]] = o[d].
                let (mut rest, mut i) = (j, [0; 4]);
                for d in (0..4).rev() {
                    i[perm[d]] = rest % out_shape[d];
                    rest /= out_shape[d];
                }
                assert_eq!(got, (((i[0] * 3 + i[1]) * 4 + i[2]) * 5 + i[3]) as f32, "{perm:?}, element {j}");
            }
        }
        assert_eq!(Tensor::from_vec(vec![7.0], &[]).permute(&[]).to_vec(), vec![7.0]);
    }

    #[test]
    #[should_panic(expected = "cat: shapes [2, 3] and [3, 3] differ outside dim 1")]
    fn cat_names_the_shapes() {
        Tensor::cat(&[&Tensor::zeros(&[2, 3]), &Tensor::zeros(&[3, 3])], 1);
    }
}
