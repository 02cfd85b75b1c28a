//! Differentiable operations, one file per family, each with its forward, its
//! backward right under it, and its tests (a finite-difference gradient check
//! with a random upstream gradient, and parity with PyTorch fixtures).
//!
//! Ops are methods on [`Tensor`](crate::Tensor): `x.matmul(&w)`, `x.relu()`,
//! `x.conv2d(&w, Some(&b), Conv2dOptions::default())`.
//!
//! Uses: `tensor`, `kernels`, `rng`.

mod activation;
mod conv;
mod crf;
mod dropout;
mod elementwise;
mod embedding;
mod loss;
mod matmul;
mod movement;
mod norm;
mod pool;
mod recurrent;
mod reduce;
pub mod testing;

pub use crate::kernels::recurrent::CellKind;
pub use conv::Conv2dOptions;
pub use loss::{CrossEntropyOptions, Reduction};
pub(crate) use norm::channel_scale as batch_norm_scale;
pub use norm::{with_batch_norm_sums, NormActivation, ReplicaSum, RunningStats};
pub use pool::{AvgPool2dOptions, MaxPool2dOptions};
pub use recurrent::Recurrence;

/// Splits `shape` around `dim` into `(outer, size, inner)`: the products of the
/// dimensions before it, its own size, and the product of those after it.
pub(crate) fn split_at_dim(op: &str, shape: &[usize], dim: usize) -> (usize, usize, usize) {
    if dim >= shape.len() {
        panic!("{op}: dim {dim} is out of range for shape {shape:?}");
    }
    (shape[..dim].iter().product(), shape[dim], shape[dim + 1..].iter().product())
}

/// One gradient `g` for every input that needs it (`None` for the others):
/// the last of them gets `g`'s buffer, any before it a copy.
pub(crate) fn share_gradient(g: Vec<f32>, inputs: &[crate::Tensor]) -> Vec<Option<Vec<f32>>> {
    let mut grads: Vec<Option<Vec<f32>>> = inputs.iter().map(|t| t.is_requires_grad().then(Vec::new)).collect();
    if let Some(last) = grads.iter().rposition(Option::is_some) {
        grads[..last].iter_mut().flatten().for_each(|gi| *gi = g.clone());
        grads[last] = Some(g);
    }
    grads
}
