//! The `Tensor` handle: shape, data, gradient slot, and how tensors are made.
//!
//! A tensor is `f32`, row-major and contiguous. The handle is an `Arc`, so
//! cloning it is cheap and shares the storage; it is `Send + Sync`. A tensor
//! made by a differentiable op remembers the op (its [`Backward`]) and its
//! inputs, which is the graph that [`Tensor::backward`] walks.
//!
//! Letters: none; shapes are written `[d0, d1, …]`.
//!
//! Uses: `kernels`, `rng`.

mod engine;
mod shape;

pub(crate) use engine::on_worker;
pub use engine::{is_grad_enabled, no_grad, Backward};
pub use shape::{broadcast_shapes, numel, shape_mismatch, strides};

use crate::rng::Rng;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// An `f32` tensor with reverse-mode automatic differentiation.
///
/// ```
/// use saddle::Tensor;
/// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]).requires_grad();
/// let y = x.mul(&x).sum_all(); // y = Σ x², dy/dx = 2x
/// y.backward();
/// assert_eq!(y.item(), 14.0);
/// assert_eq!(x.grad().unwrap().to_vec(), vec![2.0, 4.0, 6.0]);
/// ```
#[derive(Clone)]
pub struct Tensor(Arc<Inner>);

struct Inner {
    id: u64,
    shape: Vec<usize>,
    data: RwLock<Vec<f32>>,
    grad: Mutex<Option<Vec<f32>>>,
    requires_grad: AtomicBool,
    node: Option<Arc<Node>>,
}

/// How a non-leaf tensor was made: the op, and until the backward pass has
/// gone through it (which frees them, as PyTorch does without
/// `retain_graph`), its inputs and its backward with what it saved.
pub(crate) struct Node {
    pub(crate) name: &'static str,
    reads_output: bool,
    pub(crate) saved: Mutex<Option<Saved>>,
}

/// What a node keeps for the backward pass.
pub(crate) struct Saved {
    pub(crate) inputs: Vec<Tensor>,
    pub(crate) backward: Box<dyn Backward>,
}

impl Tensor {
    fn make(data: Vec<f32>, shape: &[usize], node: Option<Arc<Node>>) -> Tensor {
        let requires_grad = node.is_some();
        Tensor(Arc::new(Inner {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            shape: shape.to_vec(),
            data: RwLock::new(data),
            grad: Mutex::new(None),
            requires_grad: AtomicBool::new(requires_grad),
            node,
        }))
    }

    /// A leaf tensor holding `data` in row-major order. Panics if `data.len()`
    /// is not the product of `shape`.
    pub fn from_vec(data: Vec<f32>, shape: &[usize]) -> Tensor {
        if data.len() != numel(shape) {
            panic!("from_vec: {} values cannot fill shape {shape:?} ({} elements)", data.len(), numel(shape));
        }
        Tensor::make(data, shape, None)
    }

    /// The result of a differentiable op. It joins the graph when gradients are
    /// enabled and some input requires a gradient; otherwise it is a plain leaf.
    pub fn from_op(data: Vec<f32>, shape: &[usize], inputs: &[&Tensor], backward: impl Backward + 'static) -> Tensor {
        debug_assert_eq!(data.len(), numel(shape), "{}: output size", backward.name());
        if Tensor::records(inputs) {
            Tensor::recorded(data, shape, inputs, Box::new(backward))
        } else {
            Tensor::make(data, shape, None)
        }
    }

    /// [`Tensor::from_op`]'s node in the graph, built once for every op
    /// rather than once for each op's type.
    fn recorded(data: Vec<f32>, shape: &[usize], inputs: &[&Tensor], backward: Box<dyn Backward>) -> Tensor {
        let inputs = inputs
            .iter()
            .enumerate()
            .map(|(i, t)| match t.node() {
                Some(n) if !backward.reads_input(i) && !n.reads_output => t.without_values(),
                _ => (*t).clone(),
            })
            .collect();
        let node = Node {
            name: backward.name(),
            reads_output: backward.reads_output(),
            saved: Mutex::new(Some(Saved { inputs, backward })),
        };
        Tensor::make(data, shape, Some(Arc::new(node)))
    }

    /// A 0-dimensional tensor holding `v`.
    pub fn scalar(v: f32) -> Tensor {
        Tensor::from_vec(vec![v], &[])
    }
    /// All zeros.
    pub fn zeros(shape: &[usize]) -> Tensor {
        Tensor::full(shape, 0.0)
    }
    /// All ones.
    pub fn ones(shape: &[usize]) -> Tensor {
        Tensor::full(shape, 1.0)
    }
    /// Every element equal to `v`.
    pub fn full(shape: &[usize], v: f32) -> Tensor {
        Tensor::from_vec(vec![v; numel(shape)], shape)
    }
    /// `[start, start + step, …]` up to but excluding `end`, like `torch.arange`.
    pub fn arange(start: f32, end: f32, step: f32) -> Tensor {
        assert!(step != 0.0, "arange: step must not be 0");
        let n = ((end - start) / step).ceil().max(0.0) as usize;
        let data: Vec<f32> = (0..n).map(|i| start + i as f32 * step).collect();
        Tensor::from_vec(data, &[n])
    }
    /// Uniform in `[low, high)`, drawn from `rng` in row-major order.
    pub fn uniform(shape: &[usize], low: f32, high: f32, rng: &mut Rng) -> Tensor {
        Tensor::from_vec((0..numel(shape)).map(|_| rng.uniform(low, high)).collect(), shape)
    }
    /// Normal with the given mean and standard deviation, drawn from `rng`.
    pub fn normal(shape: &[usize], mean: f32, std: f32, rng: &mut Rng) -> Tensor {
        Tensor::from_vec((0..numel(shape)).map(|_| rng.normal(mean, std)).collect(), shape)
    }

    /// A number unique to this tensor for the life of the process.
    pub fn id(&self) -> u64 {
        self.0.id
    }
    /// The shape, outermost dimension first.
    pub fn shape(&self) -> &[usize] {
        &self.0.shape
    }
    /// The number of dimensions.
    pub fn ndim(&self) -> usize {
        self.0.shape.len()
    }
    /// The number of elements.
    pub fn numel(&self) -> usize {
        numel(&self.0.shape)
    }
    /// Read access to the elements in row-major order.
    pub fn data(&self) -> RwLockReadGuard<'_, Vec<f32>> {
        self.0.data.read().unwrap_or_else(|e| e.into_inner())
    }
    /// Write access to the elements, for optimizers and initializers. Changing a
    /// tensor that a graph still needs for its backward gives wrong gradients,
    /// as in PyTorch.
    pub fn data_mut(&self) -> RwLockWriteGuard<'_, Vec<f32>> {
        self.0.data.write().unwrap_or_else(|e| e.into_inner())
    }
    /// A copy of the elements.
    pub fn to_vec(&self) -> Vec<f32> {
        self.data().clone()
    }
    /// The value of a one-element tensor. Panics otherwise.
    pub fn item(&self) -> f32 {
        if self.numel() != 1 {
            panic!("item: tensor of shape {:?} has {} elements, not 1", self.shape(), self.numel());
        }
        self.data()[0]
    }

    pub(crate) fn node(&self) -> Option<&Node> {
        self.0.node.as_deref()
    }
    /// The same graph node (id, shape, op and inputs) without the values: an
    /// edge of the graph for an op whose backward does not read them.
    fn without_values(&self) -> Tensor {
        Tensor(Arc::new(Inner {
            id: self.0.id,
            shape: self.0.shape.clone(),
            data: RwLock::new(Vec::new()),
            grad: Mutex::new(None),
            requires_grad: AtomicBool::new(self.requires_grad_flag()),
            node: self.0.node.clone(),
        }))
    }
    /// Whether an op on `inputs` is recorded for backward: gradients are
    /// enabled and some input requires one. An op whose forward keeps values
    /// only for its backward can skip them otherwise.
    pub(crate) fn records(inputs: &[&Tensor]) -> bool {
        is_grad_enabled() && inputs.iter().any(|t| t.requires_grad_flag())
    }
    fn requires_grad_flag(&self) -> bool {
        self.0.requires_grad.load(Ordering::Relaxed)
    }
    /// Marks a leaf as a parameter: `backward` will fill its gradient.
    pub fn requires_grad(self) -> Tensor {
        self.set_requires_grad(true);
        self
    }
    /// Sets whether a leaf collects gradients. Panics on a non-leaf tensor, whose
    /// flag follows from its inputs.
    pub fn set_requires_grad(&self, on: bool) {
        if self.0.node.is_some() {
            panic!("set_requires_grad: only a leaf tensor's flag can be set; use detach() first");
        }
        self.0.requires_grad.store(on, Ordering::Relaxed);
    }
    /// Whether gradients flow to this tensor.
    pub fn is_requires_grad(&self) -> bool {
        self.requires_grad_flag()
    }
    /// Whether this tensor was made by the user rather than by a recorded op.
    pub fn is_leaf(&self) -> bool {
        self.0.node.is_none()
    }
    fn grad_slot(&self) -> MutexGuard<'_, Option<Vec<f32>>> {
        self.0.grad.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// The gradient accumulated by `backward`, if any (leaves only, as in PyTorch).
    pub fn grad(&self) -> Option<Tensor> {
        self.grad_slot().as_ref().map(|g| Tensor::from_vec(g.clone(), self.shape()))
    }
    /// Runs `f` on the gradient buffer in place, if there is one (for clipping).
    pub fn with_grad_mut<R>(&self, f: impl FnOnce(&mut [f32]) -> R) -> Option<R> {
        self.grad_slot().as_mut().map(|g| f(g))
    }
    /// Forgets the accumulated gradient.
    pub fn zero_grad(&self) {
        *self.grad_slot() = None;
    }
    pub(crate) fn accumulate_grad(&self, g: Vec<f32>) {
        let mut slot = self.grad_slot();
        match slot.as_mut() {
            Some(acc) => acc.iter_mut().zip(&g).for_each(|(a, b)| *a += b),
            None => *slot = Some(g),
        }
    }
    /// A new leaf with a copy of the same values, outside any graph.
    pub fn detach(&self) -> Tensor {
        Tensor::from_vec(self.to_vec(), self.shape())
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let data = self.data();
        let shown: Vec<f32> = data.iter().take(8).copied().collect();
        write!(f, "Tensor(shape={:?}, data={:?}{}", self.shape(), shown, if data.len() > 8 { "…" } else { "" })?;
        if let Some(node) = self.node() {
            write!(f, ", op={}", node.name)?;
        } else if self.requires_grad_flag() {
            write!(f, ", requires_grad")?;
        }
        write!(f, ")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_and_accessors() {
        let t = Tensor::arange(0.0, 6.0, 1.0);
        assert_eq!(t.shape(), &[6]);
        assert_eq!(t.to_vec(), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(Tensor::arange(1.0, 2.0, 0.3).to_vec().len(), 4);
        assert_eq!(Tensor::full(&[2, 3], 7.0).to_vec(), vec![7.0; 6]);
        assert_eq!(Tensor::zeros(&[0, 3]).numel(), 0);
        assert_eq!(Tensor::scalar(3.0).item(), 3.0);
        let a = Tensor::normal(&[4], 0.0, 1.0, &mut Rng::new(5));
        let b = Tensor::normal(&[4], 0.0, 1.0, &mut Rng::new(5));
        assert_eq!(a.to_vec(), b.to_vec());
        fn is_send_sync<T: Send + Sync>() {}
        is_send_sync::<Tensor>();
    }

    #[test]
    #[should_panic(expected = "from_vec: 5 values cannot fill shape [2, 3]")]
    fn from_vec_names_the_mismatch() {
        Tensor::from_vec(vec![0.0; 5], &[2, 3]);
    }

    #[test]
    fn detach_leaves_the_graph() {
        let x = Tensor::ones(&[2]).requires_grad();
        let y = x.mul_scalar(3.0);
        assert!(!y.is_leaf());
        let d = y.detach();
        assert!(d.is_leaf() && !d.is_requires_grad());
        assert_eq!(d.to_vec(), vec![3.0, 3.0]);
    }
}
