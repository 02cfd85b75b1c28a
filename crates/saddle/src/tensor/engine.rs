//! The autograd engine: a `Backward` trait, a topological sort and a reverse loop.
//!
//! For `L = f(g(x))` the engine walks the graph from `L` back to the leaves in
//! reverse topological order; at each node it hands the op the gradient of its
//! output, `∂L/∂out`, and receives `∂L/∂input` for each input, which it sums
//! into that input's gradient (a tensor used twice gets the sum of both).
//! Backward functions compute on plain buffers (DESIGN: no double backward).
//!
//! Uses: `tensor` (its parent).

use super::{shape_mismatch, Saved, Tensor};
use crate::kernels::elementwise::zip_apply;
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
    /// [`backward`](Self::backward) handed `gout`'s buffer, which the engine
    /// drops after the call: an op may compute an input's gradient in it
    /// (ReLU's `gout·1[y > 0]`, addition's `gout` itself) instead of in a
    /// fresh buffer. The engine calls this one; by default it calls `backward`.
    fn backward_owned(&self, inputs: &[Tensor], out: &[f32], gout: Vec<f32>) -> Vec<Option<Vec<f32>>> {
        self.backward(inputs, out, &gout)
    }
    /// Whether `backward` reads the values of input `i` (true unless said
    /// otherwise). The graph keeps an input that it does not read, and whose
    /// own op does not read its output, without its values, so they are
    /// freed once nothing else holds them: a convolution's output under
    /// max-pooling is not kept for the backward pass.
    fn reads_input(&self, _i: usize) -> bool {
        true
    }
    /// Whether `backward` reads `out` (true unless said otherwise).
    fn reads_output(&self) -> bool {
        true
    }
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
    with_grad_enabled(false, f)
}

/// Runs `f` with recording on or off, and restores this thread's setting after.
fn with_grad_enabled<T>(enabled: bool, f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            GRAD_ENABLED.with(|g| g.set(self.0));
        }
    }
    let _restore = Restore(GRAD_ENABLED.with(|g| g.replace(enabled)));
    f()
}

/// Runs `f` on a worker of rayon's global pool (on this thread if it is one),
/// with this thread's [`is_grad_enabled`].
///
/// The kernels' parallel loops then start from a thread that takes its own
/// share; started from a thread outside the pool, each loop leaves that
/// thread waiting beside the workers (one thread more than there are cores,
/// woken at every step). `fit`, `evaluate` and `diagnose_run` go through it.
/// The grad mode travels with `f` because a worker may run it while waiting
/// inside another job, say an evaluation under `no_grad` started from
/// another thread: `f` must not inherit that job's setting.
pub(crate) fn on_worker<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    let enabled = is_grad_enabled();
    // `scope` runs its body on a worker of the global pool and blocks here until it returns.
    rayon::scope(|_| with_grad_enabled(enabled, f))
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
    ///
    /// Each node of the graph frees what it saved for the backward pass (its
    /// inputs and buffers) as soon as the pass has gone through it, as
    /// PyTorch does without `retain_graph`: the memory of a step's
    /// activations comes back during the step, and back-propagating through
    /// the same graph again panics, naming the op.
    pub fn backward_with(&self, gout: &Tensor) {
        if gout.shape() != self.shape() {
            shape_mismatch("backward_with", self.shape(), gout.shape());
        }
        if !self.is_requires_grad() {
            panic!("backward: the tensor does not require a gradient (no input of its graph requires one)");
        }
        crate::threads::keep_workers_polling();
        let mut order = topological_order(self);
        let mut grads: HashMap<u64, Vec<f32>> = HashMap::new();
        grads.insert(self.id(), gout.to_vec());
        // Last in the order first; each node's saved values are freed once it is done.
        while let Some(t) = order.pop() {
            let Some(node) = t.node() else {
                if let Some(g) = grads.remove(&t.id()) {
                    t.accumulate_grad(g);
                }
                continue;
            };
            let saved = node.saved.lock().unwrap_or_else(|e| e.into_inner()).take();
            let (Some(g), Some(Saved { inputs, backward })) = (grads.remove(&t.id()), saved) else { continue };
            let input_grads = backward.backward_owned(&inputs, &t.data(), g);
            debug_assert_eq!(input_grads.len(), inputs.len(), "{}: one gradient per input", node.name);
            for (input, gi) in inputs.iter().zip(input_grads) {
                let Some(gi) = gi else { continue };
                if !input.is_requires_grad() {
                    continue;
                }
                assert_eq!(gi.len(), input.numel(), "{}: gradient size for input {:?}", node.name, input.shape());
                match grads.get_mut(&input.id()) {
                    Some(acc) => zip_apply(acc, &gi, |a, b| a + b),
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
            let saved = node.saved.lock().unwrap_or_else(|e| e.into_inner());
            let Some(saved) = saved.as_ref() else {
                panic!(
                    "backward: the graph through '{}' was already back-propagated, which freed what it saved; \
                     run the forward pass again",
                    node.name
                );
            };
            for input in saved.inputs.iter().rev() {
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
    fn the_backward_pass_leaves_the_other_workers_polling() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        pool.install(|| {
            let me = rayon::current_thread_index().unwrap();
            // (A few tries: a worker descheduled for `threads::POLL_FOR` stops polling.)
            let polled = (0..10).any(|_| {
                let w = Tensor::ones(&[3]).requires_grad();
                w.mul_scalar(2.0).sum_all().backward();
                rayon::broadcast(|b| b.index() == me || crate::threads::polling()) == [true, true]
            });
            assert!(polled, "the other worker polls after a backward pass");
        });
    }

    #[test]
    fn work_moved_onto_the_pool_keeps_its_callers_grad_mode() {
        use super::{is_grad_enabled, no_grad, on_worker};
        assert!(on_worker(is_grad_enabled));
        assert!(!no_grad(|| on_worker(is_grad_enabled)));
        // A worker waiting under `no_grad` runs jobs that other threads hand
        // the pool (`yield_now` lets it): they keep their own mode.
        for _ in 0..20 {
            let got = rayon::scope(|_| {
                no_grad(|| {
                    let (tx, rx) = std::sync::mpsc::channel();
                    let caller = std::thread::spawn(move || tx.send(on_worker(is_grad_enabled)).unwrap());
                    let got = loop {
                        match rx.try_recv() {
                            Ok(got) => break got,
                            Err(_) => _ = rayon::yield_now(),
                        }
                    };
                    caller.join().unwrap();
                    assert!(!is_grad_enabled(), "the waiting worker's own mode is back");
                    got
                })
            });
            assert!(got, "a job from a thread with gradients on ran without them");
        }
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

    /// Max-pooling does not read its input and a convolution does not read
    /// its output, so the graph keeps the convolution's output without its
    /// values: once the caller drops it, its memory is gone, and the
    /// gradients are those of a graph that kept it.
    #[test]
    fn values_no_backward_reads_are_not_kept() {
        use crate::ops::{Conv2dOptions, MaxPool2dOptions};
        let mut rng = crate::Rng::new(0);
        let x = Tensor::uniform(&[2, 3, 6, 6], -1.0, 1.0, &mut rng).requires_grad();
        let w = Tensor::uniform(&[4, 3, 3, 3], -1.0, 1.0, &mut rng).requires_grad();
        let grads = |keep: bool| {
            x.zero_grad();
            w.zero_grad();
            let y = x.conv2d(&w, None, Conv2dOptions::default());
            let weak = std::sync::Arc::downgrade(&y.0);
            let z = y.max_pool2d(MaxPool2dOptions::new(2)).mul(&Tensor::uniform(
                &[2, 4, 2, 2],
                -1.0,
                1.0,
                &mut crate::Rng::new(1),
            ));
            let kept = keep.then_some(y);
            assert_eq!(weak.upgrade().is_some(), keep, "the convolution's output is kept only by its caller");
            z.sum_all().backward();
            drop(kept);
            (x.grad().unwrap().to_vec(), w.grad().unwrap().to_vec())
        };
        assert_eq!(grads(false), grads(true));
    }

    /// The loss that the caller still holds keeps none of the graph alive
    /// after `backward`, and a second `backward` through it is an error.
    #[test]
    fn backward_frees_the_graph_as_it_goes() {
        let x = Tensor::from_vec(vec![1.0, 2.0], &[2]).requires_grad();
        let h = x.exp();
        let weak = std::sync::Arc::downgrade(&h.0);
        let loss = h.mul(&h).sum_all();
        drop(h);
        assert!(weak.upgrade().is_some(), "the graph holds h until the backward pass");
        loss.backward();
        assert!(weak.upgrade().is_none(), "h is freed by the backward pass");
        let again = std::panic::catch_unwind(|| loss.backward()).unwrap_err();
        let message = again.downcast_ref::<String>().unwrap();
        assert!(message.contains("'sum' was already back-propagated"), "{message}");
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
