//! SGEMM: the only place that names the GEMM crate.
//!
//! `C[M, N] (+)= op(A) · op(B)`, with `op(A): [M, K]`, `op(B): [K, N]`, all
//! row-major, where `op` is the identity or the transpose. Backward passes use
//! the transposes without copying: for `C = A·B`, `dA = dC·Bᵀ`, `dB = Aᵀ·dC`.
//!
//! The crate is faer (its x86 kernels use AVX-512 where the processor has it).
//! It was chosen by measurement against `gemm` and `matrixmultiply` on the
//! 2-core machine this project is developed on (see the README's benchmark
//! table). Work is split over blocks of `C`, never over `K`, so each output is
//! summed in the same order whatever the number of threads (tested below).
//!
//! Uses: nothing.

use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

/// Whether an operand is used as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transpose {
    /// Use the operand as stored.
    No,
    /// Use the operand's transpose.
    Yes,
}

/// Products smaller than this many multiply-adds run in the calling thread.
const PARALLEL_MIN_FLOPS: usize = 1 << 22;

/// `c[m, n] = op(a) · op(b)` (or `+=` when `accumulate`), with `op(a): [m, k]` and
/// `op(b): [k, n]`. `a` is stored `[m, k]` (`[k, m]` if transposed), `b` `[k, n]`
/// (`[n, k]` if transposed), `c` `[m, n]`.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    ta: Transpose,
    b: &[f32],
    tb: Transpose,
    c: &mut [f32],
    accumulate: bool,
) {
    assert_eq!(a.len(), m * k, "sgemm: a has {} elements, expected m·k = {m}·{k}", a.len());
    assert_eq!(b.len(), k * n, "sgemm: b has {} elements, expected k·n = {k}·{n}", b.len());
    assert_eq!(c.len(), m * n, "sgemm: c has {} elements, expected m·n = {m}·{n}", c.len());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.fill(0.0);
        }
        return;
    }
    let a = match ta {
        Transpose::No => MatRef::from_row_major_slice(a, m, k),
        Transpose::Yes => MatRef::from_row_major_slice(a, k, m).transpose(),
    };
    let b = match tb {
        Transpose::No => MatRef::from_row_major_slice(b, k, n),
        Transpose::Yes => MatRef::from_row_major_slice(b, n, k).transpose(),
    };
    let c = MatMut::from_row_major_slice_mut(c, m, n);
    let accum = if accumulate { Accum::Add } else { Accum::Replace };
    if m * n * k < PARALLEL_MIN_FLOPS {
        faer::linalg::matmul::matmul(c, accum, a, b, 1.0f32, Par::Seq);
        return;
    }
    // Split C along its longer side into blocks whose size depends only on the
    // shape (never on the thread count), and let each thread run faer's
    // sequential kernel on whole blocks: every output is then summed by the same
    // code in the same order whatever the number of threads. Measured here, this
    // beats faer's own parallel split by about 10% on two cores.
    let by_cols = n >= m;
    let len = if by_cols { n } else { m };
    let width = len.div_ceil(8).next_multiple_of(16).clamp(64, 512);
    let mut blocks = Vec::with_capacity(len.div_ceil(width));
    let mut rest = c;
    let mut start = 0;
    while start < len {
        let w = width.min(len - start);
        let (head, tail) = if by_cols { rest.split_at_col_mut(w) } else { rest.split_at_row_mut(w) };
        blocks.push((start, head));
        rest = tail;
        start += w;
    }
    blocks.into_par_iter().for_each(|(start, block)| {
        if by_cols {
            let b = b.subcols(start, block.ncols());
            faer::linalg::matmul::matmul(block, accum, a, b, 1.0f32, Par::Seq);
        } else {
            let a = a.subrows(start, block.nrows());
            faer::linalg::matmul::matmul(block, accum, a, b, 1.0f32, Par::Seq);
        }
    });
}

/// Naive twin of [`sgemm`], summing in `f64`: the test oracle.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_naive(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    ta: Transpose,
    b: &[f32],
    tb: Transpose,
    c: &mut [f32],
    accumulate: bool,
) {
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f64;
            for p in 0..k {
                let av = if ta == Transpose::No { a[i * k + p] } else { a[p * m + i] };
                let bv = if tb == Transpose::No { b[p * n + j] } else { b[j * k + p] };
                acc += av as f64 * bv as f64;
            }
            let prev = if accumulate { c[i * n + j] } else { 0.0 };
            c[i * n + j] = prev + acc as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;

    fn random(len: usize, rng: &mut Rng) -> Vec<f32> {
        (0..len).map(|_| rng.uniform(-1.0, 1.0)).collect()
    }

    #[test]
    fn matches_naive_twin_for_every_transpose_and_odd_sizes() {
        let mut rng = Rng::new(0);
        for &(m, n, k) in &[(1, 1, 1), (3, 5, 7), (17, 9, 33), (64, 65, 130), (0, 3, 2), (2, 3, 0)] {
            for ta in [Transpose::No, Transpose::Yes] {
                for tb in [Transpose::No, Transpose::Yes] {
                    for accumulate in [false, true] {
                        let (a, b) = (random(m * k, &mut rng), random(k * n, &mut rng));
                        let c0 = random(m * n, &mut rng);
                        let (mut fast, mut slow) = (c0.clone(), c0.clone());
                        sgemm(m, n, k, &a, ta, &b, tb, &mut fast, accumulate);
                        sgemm_naive(m, n, k, &a, ta, &b, tb, &mut slow, accumulate);
                        for (x, y) in fast.iter().zip(&slow) {
                            assert!((x - y).abs() <= 1e-5 * (1.0 + k as f32), "{m}x{n}x{k} {ta:?} {tb:?}: {x} vs {y}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn result_does_not_depend_on_the_thread_count() {
        let mut rng = Rng::new(1);
        let (m, n, k) = (257, 300, 511);
        let (a, b) = (random(m * k, &mut rng), random(k * n, &mut rng));
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let mut c = vec![0.0; m * n];
            pool.install(|| sgemm(m, n, k, &a, Transpose::No, &b, Transpose::No, &mut c, false));
            c
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(3));
    }
}
