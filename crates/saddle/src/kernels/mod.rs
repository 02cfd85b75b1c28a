//! Plain functions over `&[f32]` slices: GEMM, im2col/col2im, pooling,
//! element-wise loops and reductions. No tensors and no autograd here; each
//! fast kernel has a naive twin in its tests as the oracle.
//!
//! Threads: kernels run in parallel (rayon) only over independent outputs,
//! never by splitting one sum, so results are the same for any thread count.
//!
//! Uses: nothing else in the crate.

pub mod conv;
pub mod elementwise;
pub mod gemm;
pub mod pool;
