//! The autograd engine: a `Backward` trait, a topological sort and a reverse loop.
//!
//! For `L = f(g(x))` the engine walks the graph from `L` back to the leaves in
//! reverse topological order; at each node it hands the op the gradient of its
//! output, `∂L/∂out`, and receives `∂L/∂input` for each input, which it sums
//! into that input's gradient (a tensor used twice gets the sum of both).
//! Backward functions compute on plain buffers (DESIGN: no double backward).
//!
//! Uses: `tensor` (its parent).

use super::{shape_mismatch, Tensor};
use std::cell::Cell;
use std::collections::{HashMap, HashSet};

/// The backward half of a differentiable op.
///
/// Given the op's inputs, its output values and `gout = ∂L/∂out` (same shape as
/// the output), returns `∂L/∂input` for each input, in order, with `None` for an
/// input that needs no gradient.
pub trait Backward: Send + Sync {
    /// The op's name, for error messages and `Debug`.
    fn name(&self) -> &'static str;
    /// `∂L/∂inputs` from `∂L/∂out`.
    fn backward(&self, inputs: &[Tensor], out: &[f32], gout: &[f32]) -> Vec<Option<Vec<f32>>>;
}

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops on this thread record a graph (false inside [`no_grad`]).
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Runs `f` without recording a graph, like `with torch.no_grad():`.
///
/// ```
/// use saddle::{no_grad, Tensor};
/// let w = Tensor::ones(&[2]).requires_grad();
/// let y = no_grad(|| w.mul_scalar(2.0));
/// assert!(y.is_leaf() && !y.is_requires_grad());
/// ```
pub fn no_grad<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            GRAD_ENABLED.with(|g| g.set(self.0));
        }
    }
    let _restore = Restore(GRAD_ENABLED.with(|g| g.replace(false)));
    f()
}

impl Tensor {
    /// Back-propagates from a one-element tensor (`∂L/∂L = 1`), summing
    /// `∂L/∂leaf` into the gradient of every leaf that requires one.
    pub fn backward(&self) {
        if self.numel() != 1 {
            panic!("backward: called on shape {:?}; use backward_with(gradient) for a non-scalar output", self.shape());
        }
        self.backward_with(&Tensor::ones(self.shape()));
    }

    /// Back-propagates an upstream gradient `gout = ∂L/∂self` of this tensor's shape.
    pub fn backward_with(&self, gout: &Tensor) {
        if gout.shape() != self.shape() {
            shape_mismatch("backward_with", self.shape(), gout.shape());
        }
        if !self.is_requires_grad() {
            panic!("backward: the tensor does not require a gradient (no input of its graph requires one)");
        }
        let order = topological_order(self);
        let mut grads: HashMap<u64, Vec<f32>> = HashMap::new();
        grads.insert(self.id(), gout.to_vec());
        for t in order.iter().rev() {
            let Some(g) = grads.remove(&t.id()) else { continue };
            let Some(node) = t.node() else {
                t.accumulate_grad(&g);
                continue;
            };
            let input_grads = {
                let out = t.data();
                node.backward.backward(&node.inputs, &out, &g)
            };
            debug_assert_eq!(input_grads.len(), node.inputs.len(), "{}: one gradient per input", node.backward.name());
            for (input, gi) in node.inputs.iter().zip(input_grads) {
                let Some(gi) = gi else { continue };
                if !input.is_requires_grad() {
                    continue;
                }
                assert_eq!(
                    gi.len(),
                    input.numel(),
                    "{}: gradient size for input {:?}",
                    node.backward.name(),
                    input.shape()
                );
                match grads.get_mut(&input.id()) {
                    Some(acc) => acc.iter_mut().zip(&gi).for_each(|(a, b)| *a += b),
                    None => {
                        grads.insert(input.id(), gi);
                    }
                }
            }
        }
    }
}

/// Every tensor that requires a gradient and that `root` depends on, each after
/// all of its inputs (iterative depth-first search, so deep graphs such as
/// 1000-step recurrences do not overflow the stack).
fn topological_order(root: &Tensor) -> Vec<Tensor> {
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    let mut stack: Vec<(Tensor, bool)> = vec![(root.clone(), false)];
    while let Some((t, children_done)) = stack.pop() {
        if children_done {
            order.push(t);
            continue;
        }
        if !seen.insert(t.id()) {
            continue;
        }
        stack.push((t.clone(), true));
        if let Some(node) = t.node() {
            for input in node.inputs.iter().rev() {
                if input.is_requires_grad() && !seen.contains(&input.id()) {
                    stack.push((input.clone(), false));
                }
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    #[test]
    fn a_tensor_used_twice_sums_its_gradients() {
        // y = x·x + x  ⇒  dy/dx = 2x + 1
        let x = Tensor::from_vec(vec![3.0, -1.0], &[2]).requires_grad();
        x.mul(&x).add(&x).sum_all().backward();
        assert_eq!(x.grad().unwrap().to_vec(), vec![7.0, -1.0]);
    }

    #[test]
    fn diamond_graph() {
        // a = 2x, b = x², c = a·b = 2x³  ⇒  dc/dx = 6x²
        let x = Tensor::from_vec(vec![1.5], &[1]).requires_grad();
        let a = x.mul_scalar(2.0);
        let b = x.mul(&x);
        a.mul(&b).sum_all().backward();
        assert!((x.grad().unwrap().item() - 6.0 * 1.5 * 1.5).abs() < 1e-6);
    }

    #[test]
    fn gradients_accumulate_across_backward_calls_until_zeroed() {
        let x = Tensor::from_vec(vec![1.0], &[1]).requires_grad();
        x.mul_scalar(3.0).sum_all().backward();
        x.mul_scalar(3.0).sum_all().backward();
        assert_eq!(x.grad().unwrap().item(), 6.0);
        x.zero_grad();
        assert!(x.grad().is_none());
    }

    #[test]
    fn a_parameter_reused_across_many_steps() {
        // h_t = w·h_{t−1}, h_0 = 1, 1000 steps: dh/dw = 1000·w^999.
        let w = Tensor::from_vec(vec![1.0], &[1]).requires_grad();
        let mut h = Tensor::ones(&[1]);
        for _ in 0..1000 {
            h = h.mul(&w);
        }
        h.sum_all().backward();
        assert_eq!(w.grad().unwrap().item(), 1000.0);
    }

    #[test]
    fn no_grad_records_nothing_and_restores() {
        let x = Tensor::ones(&[2]).requires_grad();
        let y = crate::no_grad(|| x.exp());
        assert!(y.is_leaf() && !y.is_requires_grad());
        assert!(crate::is_grad_enabled());
        assert!(!x.exp().is_leaf());
    }

    #[test]
    fn inputs_without_requires_grad_get_no_gradient() {
        let x = Tensor::ones(&[2]).requires_grad();
        let c = Tensor::ones(&[2]);
        x.mul(&c).sum_all().backward();
        assert!(c.grad().is_none());
        assert!(x.grad().is_some());
    }
}
