//! Data parallelism: `R` processes (ranks) train one model. Each takes its
//! [`shard`](crate::data::shard) of every batch, and before each update the
//! gradients are summed over the ranks by all-reduce, so that every rank
//! applies the same update to the same weights. With `n_r` rows (labelled
//! examples or words) on rank `r`, `L_r` the mean loss of its rows and each
//! rank back-propagating `(n_r/n)·L_r`,
//!
//! ```text
//! g = Σ_r ∇((n_r / n) · L_r) = ∇L,   n = Σ_r n_r,
//! ```
//!
//! the gradient of the mean loss `L` over the whole batch: `R` ranks give the
//! model one process gives with the whole batch, up to the order of the float
//! sums. Batch norm uses each rank's share for its statistics, or, when
//! synchronized, the whole batch (then the model is one process's too).
//!
//! The transport is a [`Collective`]; `Mpi` (cargo feature `mpi`) is Open
//! MPI through the `mpi` crate. [`DataParallel`] is what
//! [`FitOptions::parallel`](crate::train::FitOptions::parallel) and
//! [`Trainer::create_distributed`](crate::train::Trainer::create_distributed) take.
//!
//! Uses: `tensor`, `nn` (the [`Module`] whose parameters and buffers are sent).

#[cfg(feature = "mpi")]
mod mpi;
#[cfg(feature = "mpi")]
pub use self::mpi::Mpi;

use crate::nn::Module;
use crate::Tensor;
use std::fmt;
use std::sync::Arc;

/// The collective operations data parallelism needs, over `size()` ranks.
/// Every rank calls each operation in the same order with buffers of the
/// same length; every rank gets the same bits back.
pub trait Collective: Send + Sync {
    /// This process's rank, `0 ≤ rank < size`.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn size(&self) -> usize;
    /// `values[i] ← Σ_r values_r[i]`, in place.
    fn sum_f32(&self, values: &mut [f32]);
    /// `values[i] ← Σ_r values_r[i]`, in place, in `f64`.
    fn sum_f64(&self, values: &mut [f64]);
    /// `values ← values_0`: rank 0's values, on every rank.
    fn broadcast_f32(&self, values: &mut [f32]);
    /// Every rank's `values` (of any length), concatenated in rank order.
    fn gather_u64(&self, values: &[u64]) -> Vec<u64>;
}

/// PyTorch DDP's default bucket: gradients go to the all-reduce in pieces of at most 25 MiB.
pub const BUCKET_BYTES: usize = 25 << 20;

/// Data-parallel training over a [`Collective`]: which share of a batch is
/// this rank's, and the broadcasts and reductions that keep the ranks'
/// models equal.
#[derive(Clone)]
pub struct DataParallel {
    comm: Arc<dyn Collective>,
    /// The most gradient bytes sent in one all-reduce ([`BUCKET_BYTES`]).
    pub bucket_bytes: usize,
}

impl fmt::Debug for DataParallel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DataParallel {{ rank: {}, size: {}, bucket_bytes: {} }}",
            self.rank(),
            self.size(),
            self.bucket_bytes
        )
    }
}

impl PartialEq for DataParallel {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.comm, &other.comm) && self.bucket_bytes == other.bucket_bytes
    }
}

impl DataParallel {
    /// Data parallelism over `comm`, with DDP's bucket size.
    pub fn new(comm: Arc<dyn Collective>) -> Self {
        DataParallel { comm, bucket_bytes: BUCKET_BYTES }
    }
    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.comm.rank()
    }
    /// The number of ranks.
    pub fn size(&self) -> usize {
        self.comm.size()
    }
    /// Whether this is rank 0, the one that writes files and prints.
    pub fn is_root(&self) -> bool {
        self.rank() == 0
    }
    /// The transport.
    pub fn collective(&self) -> &dyn Collective {
        &*self.comm
    }
    /// This rank's share of `batch` ([`shard`](crate::data::shard)).
    pub fn share<'a, T>(&self, batch: &'a [T]) -> &'a [T] {
        crate::data::shard(batch, self.rank(), self.size())
    }
    /// Rank 0's parameters and buffers, on every rank.
    pub fn broadcast_module(&self, model: &dyn Module) {
        for (_, t) in model.named_parameters().into_iter().chain(model.named_buffers()) {
            self.comm.broadcast_f32(&mut t.data_mut());
        }
    }
    /// Rank 0's buffers (batch-norm running estimates), on every rank, as
    /// DDP's `broadcast_buffers` does: the model evaluated and saved is rank 0's.
    pub fn broadcast_buffers(&self, model: &dyn Module) {
        for (_, t) in model.named_buffers() {
            self.comm.broadcast_f32(&mut t.data_mut());
        }
    }
    /// Whether `flag` holds on any rank.
    pub fn any(&self, flag: bool) -> bool {
        let mut v = [f64::from(u8::from(flag))];
        self.comm.sum_f64(&mut v);
        v[0] > 0.0
    }
    /// `values[i] ← Σ_r values_r[i]`.
    pub fn sum(&self, values: &mut [f64]) {
        self.comm.sum_f64(values);
    }
    /// Sums the gradients of `params` over the ranks, in place, in buckets
    /// of at most `bucket_bytes`: `g ← Σ_r g_r`. With each rank's loss
    /// scaled by its share of the batch's rows, `n_r/n`, before the backward
    /// pass (as [`fit`](crate::train::fit) does), that is the gradient of the
    /// whole batch's mean loss. A parameter without a gradient here counts
    /// as zeros; it keeps none only if no rank has one.
    pub fn sum_gradients(&self, params: &[(String, Tensor)]) {
        let mut present: Vec<f64> =
            params.iter().map(|(_, p)| f64::from(u8::from(p.with_grad_mut(|_| ()).is_some()))).collect();
        self.comm.sum_f64(&mut present);
        for ((_, p), &here) in params.iter().zip(&present) {
            if here > 0.0 && p.with_grad_mut(|_| ()).is_none() {
                p.accumulate_grad(vec![0.0; p.numel()]);
            }
        }
        let lens: Vec<usize> = params.iter().map(|(_, p)| p.numel()).collect();
        let numel: usize = lens.iter().sum();
        let cap = (self.bucket_bytes / 4).max(1);
        let mut buffer = vec![0.0f32; cap.min(numel)];
        let mut start = 0;
        while start < numel {
            let end = (start + cap).min(numel);
            let bucket = &mut buffer[..end - start];
            pieces(&lens, start, end, |i, from, to, at| {
                let piece = &mut bucket[at..at + to - from];
                if params[i].1.with_grad_mut(|g| piece.copy_from_slice(&g[from..to])).is_none() {
                    piece.fill(0.0);
                }
            });
            self.comm.sum_f32(bucket);
            pieces(&lens, start, end, |i, from, to, at| {
                params[i].1.with_grad_mut(|g| g[from..to].copy_from_slice(&bucket[at..at + to - from]));
            });
            start = end;
        }
    }
    /// The sum over the ranks as a synchronized batch norm needs it
    /// ([`with_batch_norm_sums`](crate::ops::with_batch_norm_sums)).
    pub fn replica_sum(&self) -> crate::ops::ReplicaSum {
        let comm = self.comm.clone();
        Arc::new(move |v: &mut [f64]| comm.sum_f64(v))
    }
    /// Every rank's `values`, concatenated in rank order.
    pub fn gather(&self, values: &[u64]) -> Vec<u64> {
        self.comm.gather_u64(values)
    }
}

/// Calls `f(tensor, from, to, at)` for each piece of the flat range
/// `start..end` over tensors of lengths `lens` laid end to end: elements
/// `from..to` of tensor `tensor` sit at `at..` of the bucket.
fn pieces(lens: &[usize], start: usize, end: usize, mut f: impl FnMut(usize, usize, usize, usize)) {
    let mut offset = 0;
    for (i, &len) in lens.iter().enumerate() {
        let (lo, hi) = (start.max(offset), end.min(offset + len));
        if lo < hi {
            f(i, lo - offset, hi - offset, lo - start);
        }
        offset += len;
        if offset >= end {
            break;
        }
    }
}

/// A [`Collective`] over threads of one process: `Threads::group(R)` gives
/// `R` ranks that meet in shared memory. Sums run in rank order, so every
/// rank gets the same bits. It lets a test or a laptop try data parallelism
/// without MPI; real runs use `Mpi` (feature `mpi`).
///
/// ```
/// use saddle::dist::{Collective, Threads};
/// let ranks = Threads::group(3);
/// let sums: Vec<Vec<f64>> = std::thread::scope(|s| {
///     let all: Vec<_> = ranks.iter().map(|c| s.spawn(move || {
///         let mut v = vec![c.rank() as f64, 1.0];
///         c.sum_f64(&mut v);
///         v
///     })).collect();
///     all.into_iter().map(|h| h.join().unwrap()).collect()
/// });
/// assert!(sums.iter().all(|v| v == &[3.0, 3.0]));
/// ```
pub struct Threads {
    rank: usize,
    shared: Arc<Meeting>,
}

/// Where the ranks of a [`Threads`] group leave their contributions.
struct Meeting {
    size: usize,
    state: std::sync::Mutex<Round>,
    changed: std::sync::Condvar,
}

/// One collective call in progress: the contributions so far, then all of
/// them, read by every rank before the next call may start.
#[derive(Default)]
struct Round {
    slots: Vec<Option<Box<dyn std::any::Any + Send + Sync>>>,
    arrived: usize,
    done: Option<Arc<Vec<Box<dyn std::any::Any + Send + Sync>>>>,
    leaving: usize,
    generation: u64,
}

impl Threads {
    /// `size` ranks, to be used from `size` threads, one each.
    pub fn group(size: usize) -> Vec<Arc<Threads>> {
        let round = Round { slots: (0..size).map(|_| None).collect(), ..Round::default() };
        let shared =
            Arc::new(Meeting { size, state: std::sync::Mutex::new(round), changed: std::sync::Condvar::new() });
        (0..size).map(|rank| Arc::new(Threads { rank, shared: shared.clone() })).collect()
    }

    /// `values ← Σ_r values_r`, added in rank order.
    fn sum_in_rank_order<T>(&self, values: &mut [T])
    where
        T: Copy + Default + std::ops::AddAssign + Send + Sync + 'static,
    {
        let all = self.meet(values.to_vec());
        values.fill(T::default());
        all.iter().for_each(|c| values.iter_mut().zip(c).for_each(|(v, x)| *v += *x));
    }

    /// Every rank's contribution, in rank order, once all have given theirs.
    fn meet<T: Clone + Send + Sync + 'static>(&self, mine: Vec<T>) -> Vec<Vec<T>> {
        let m = &*self.shared;
        let wait = |g| m.changed.wait(g).unwrap_or_else(|e| e.into_inner());
        let mut s = m.state.lock().unwrap_or_else(|e| e.into_inner());
        while s.leaving > 0 {
            s = wait(s);
        }
        s.slots[self.rank] = Some(Box::new(mine));
        s.arrived += 1;
        let generation = s.generation;
        if s.arrived == m.size {
            let all = s.slots.iter_mut().map(|c| c.take().expect("every rank gave")).collect();
            (s.done, s.arrived, s.leaving, s.generation) = (Some(Arc::new(all)), 0, m.size, generation + 1);
            m.changed.notify_all();
        } else {
            while s.generation == generation {
                s = wait(s);
            }
        }
        let all = s.done.clone().expect("the round is done");
        s.leaving -= 1;
        if s.leaving == 0 {
            m.changed.notify_all();
        }
        drop(s);
        all.iter().map(|c| c.downcast_ref::<Vec<T>>().expect("every rank calls the same collective").clone()).collect()
    }
}

impl Collective for Threads {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.shared.size
    }
    fn sum_f32(&self, values: &mut [f32]) {
        self.sum_in_rank_order(values);
    }
    fn sum_f64(&self, values: &mut [f64]) {
        self.sum_in_rank_order(values);
    }
    fn broadcast_f32(&self, values: &mut [f32]) {
        let all = self.meet(values.to_vec());
        values.copy_from_slice(&all[0]);
    }
    fn gather_u64(&self, values: &[u64]) -> Vec<u64> {
        self.meet(values.to_vec()).concat()
    }
}
