//! SGEMM: the only place that names the GEMM crate.
//!
//! `C[M, N] (+)= op(A) · op(B)`, with `op(A): [M, K]`, `op(B): [K, N]`, all
//! row-major, where `op` is the identity or the transpose. Backward passes use
//! the transposes without copying: for `C = A·B`, `dA = dC·Bᵀ`, `dB = Aᵀ·dC`.
//!
//! The crate is `gemm`, through its f32 half `gemm-f32` (x86 kernels with
//! AVX-512 where the processor has it, chosen at run time). It replaced faer
//! after an interleaved measurement on a 2-core Xeon: as fast or faster on
//! every benchmark (the speedrun network's training about +15%), for a
//! fraction of the build time (README, Benchmarks). Work is split over blocks
//! of `C`, never over `K`, so each output is summed in the same order whatever
//! the number of threads (tested below).
//!
//! Uses: nothing.

use gemm_common::Parallelism;
use rayon::prelude::*;

/// The sizes of a product `op(a) · op(b)`: `op(a): [m, k]`, `op(b): [k, n]`, `c: [m, n]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// Rows of `op(a)` and `c`.
    pub m: usize,
    /// Columns of `op(b)` and `c`.
    pub n: usize,
    /// Columns of `op(a)`, rows of `op(b)`: the length of each sum.
    pub k: usize,
}

/// An operand of [`sgemm`]: its row-major values, used as stored or transposed.
#[derive(Clone, Copy, Debug)]
pub enum Operand<'a> {
    /// `op(x) = x`.
    Stored(&'a [f32]),
    /// `op(x) = xᵀ`.
    Transposed(&'a [f32]),
}

impl<'a> Operand<'a> {
    /// The values, whichever way they are used.
    pub fn values(&self) -> &'a [f32] {
        match *self {
            Operand::Stored(x) | Operand::Transposed(x) => x,
        }
    }
    fn transposed(&self) -> bool {
        matches!(self, Operand::Transposed(_))
    }
}

/// Whether [`sgemm`] overwrites `c` or adds the product to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accumulate {
    /// `c = op(a) · op(b)`.
    Overwrite,
    /// `c += op(a) · op(b)`.
    Add,
}

/// A product of two matrices: [`sgemm`] or [`sgemm_sequential`].
pub type Product = fn(Dims, Operand, Operand, &mut [f32], Accumulate);

/// Products smaller than this many multiply-adds run in the calling thread.
/// At 2²¹ LeNet-5's first fully connected layer (`[64, 400]·[400, 120]`,
/// 3.1M) and its gradients are split, and its training step gained 2–5%
/// over 2²² (10 interleaved rounds on a 2-core Xeon).
const PARALLEL_MIN_FLOPS: usize = 1 << 21;

/// `c[m, n] = op(a) · op(b)` (or `+=`), with `op(a): [m, k]` and `op(b): [k, n]`:
/// `a` is stored `[m, k]` (`[k, m]` if transposed), `b` `[k, n]` (`[n, k]` if
/// transposed), `c` `[m, n]`.
///
/// ```
/// use saddle::kernels::gemm::{sgemm, Accumulate, Dims, Operand};
/// // [1 2] · [3 4]ᵀ = 1·3 + 2·4 = 11
/// let mut c = [0.0];
/// sgemm(Dims { m: 1, n: 1, k: 2 }, Operand::Stored(&[1.0, 2.0]), Operand::Transposed(&[3.0, 4.0]), &mut c, Accumulate::Overwrite);
/// assert_eq!(c, [11.0]);
/// ```
pub fn sgemm(dims: Dims, a: Operand, b: Operand, c: &mut [f32], mode: Accumulate) {
    product(dims, a, b, c, mode, true)
}

/// [`sgemm`] in the calling thread alone, for callers that already run one
/// product per thread. The sums are `sgemm`'s where `sgemm` runs the product
/// whole or `c`'s shorter side exceeds 64; where it splits a narrower `c`, a
/// block's kernel may cut `K` into other cache blocks and round otherwise
/// (`[16, 800]·[800, 200]` does).
/// A caller whose products change size with the thread count (the
/// recurrences' blocks of rows) uses this one throughout, so that its bits
/// do not.
pub fn sgemm_sequential(dims: Dims, a: Operand, b: Operand, c: &mut [f32], mode: Accumulate) {
    product(dims, a, b, c, mode, false)
}

fn product(dims: Dims, a: Operand, b: Operand, c: &mut [f32], mode: Accumulate, parallel: bool) {
    let Dims { m, n, k } = dims;
    let (ta, tb, a, b) = (a.transposed(), b.transposed(), a.values(), b.values());
    assert_eq!(a.len(), m * k, "sgemm: a has {} elements, expected m·k = {m}·{k}", a.len());
    assert_eq!(b.len(), k * n, "sgemm: b has {} elements, expected k·n = {k}·{n}", b.len());
    assert_eq!(c.len(), m * n, "sgemm: c has {} elements, expected m·n = {m}·{n}", c.len());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if mode == Accumulate::Overwrite {
            c.fill(0.0);
        }
        return;
    }
    // The distances between rows and between columns of op(a) and op(b).
    let a = Strided { ptr: a.as_ptr(), rows: if ta { 1 } else { k }, cols: if ta { m } else { 1 } };
    let b = Strided { ptr: b.as_ptr(), rows: if tb { 1 } else { n }, cols: if tb { k } else { 1 } };
    let add = mode == Accumulate::Add;
    if !parallel || m * n * k < PARALLEL_MIN_FLOPS {
        // SAFETY: the lengths of a, b and c were checked against m, n, k above.
        unsafe { block(m, n, k, a, b, c.as_mut_ptr(), n, add) };
        return;
    }
    // Split C along its longer side into blocks, and let each thread run the
    // sequential kernel on whole blocks (`block_width`).
    let by_cols = n >= m;
    let len = if by_cols { n } else { m };
    let width = block_width(m.min(n), len);
    let c = SendPtr(c.as_mut_ptr());
    (0..len.div_ceil(width)).into_par_iter().for_each(|i| {
        let (start, w) = (i * width, width.min(len - i * width));
        // SAFETY: the blocks are disjoint column (or row) ranges of c, and every
        // pointer stays inside the lengths checked above.
        unsafe {
            if by_cols {
                block(m, w, k, a, b.offset(start * b.cols), c.get().add(start), n, add)
            } else {
                block(w, n, k, a.offset(start * a.rows), b, c.get().add(start * n), n, add)
            }
        }
    });
}

/// The width of the blocks that C's longer side (`len`) is cut into, for a
/// C whose shorter side is `short`, such that every output is summed in the
/// same order whatever the number of threads.
///
/// A block's sums depend on its size only through the crate's cache blocks
/// of K: a block of at most 64 by 64 takes its small-product path, which
/// cuts K every 512, and any other block its general path, whose cut
/// depends on K alone (and the processor). With `short > 64` every block of
/// any width takes the general path, so the blocks follow the thread count:
/// one per thread, each packing its operands once (the LSTM tagger's
/// products gained 4 to 13% on 2 cores over about eight blocks; README,
/// benchmarks). With `short ≤ 64` the blocks depend on the shape alone:
/// about an eighth of `len`, 64 to 512 wide.
fn block_width(short: usize, len: usize) -> usize {
    if short > 64 {
        len.div_ceil(rayon::current_num_threads()).next_multiple_of(16).max(64)
    } else {
        len.div_ceil(8).next_multiple_of(16).clamp(64, 512)
    }
}

/// A matrix in memory: its first element, and how far apart its rows and its
/// columns lie.
#[derive(Clone, Copy)]
struct Strided {
    ptr: *const f32,
    rows: usize,
    cols: usize,
}

// SAFETY: only ever read, while the slice it points into is borrowed.
unsafe impl Send for Strided {}
unsafe impl Sync for Strided {}

impl Strided {
    unsafe fn offset(self, elements: usize) -> Strided {
        Strided { ptr: self.ptr.add(elements), ..self }
    }
}

/// The output of a parallel product, written by blocks that do not overlap.
struct SendPtr(*mut f32);

// SAFETY: each thread writes its own block of the output (see `product`).
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    fn get(&self) -> *mut f32 {
        self.0
    }
}

/// `c[m, n] (+)= a[m, k] · b[k, n]` in the calling thread, `c` row-major with
/// `ldc` between rows.
///
/// # Safety
/// Every element the sizes and strides reach must lie inside its allocation.
#[allow(clippy::too_many_arguments)]
unsafe fn block(m: usize, n: usize, k: usize, a: Strided, b: Strided, c: *mut f32, ldc: usize, add: bool) {
    // The kernels want their output column-major (unit stride down a column;
    // handed C as it is they ran at a third of their speed), and a row-major
    // C is a column-major Cᵀ[n, m] = op(b)ᵀ · op(a)ᵀ.
    let kernel = gemm_f32::gemm::f32::get_gemm_fn();
    let s = |x: usize| x as isize;
    kernel(
        n,
        m,
        k,
        // Each matrix: pointer, column stride, row stride.
        c,
        s(ldc),
        1,
        add,
        b.ptr,
        s(b.rows),
        s(b.cols),
        a.ptr,
        s(a.rows),
        s(a.cols),
        // Cᵀ ← (1 if add, else 0)·Cᵀ + 1·op(b)ᵀ·op(a)ᵀ, nothing conjugated, in this thread.
        if add { 1.0 } else { 0.0 },
        1.0,
        false,
        false,
        false,
        Parallelism::None,
    )
}

/// Naive twin of [`sgemm`], summing in `f64`: the test oracle.
pub fn sgemm_naive(dims: Dims, a: Operand, b: Operand, c: &mut [f32], mode: Accumulate) {
    let Dims { m, n, k } = dims;
    let (ta, tb, a, b) = (a.transposed(), b.transposed(), a.values(), b.values());
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f64;
            for p in 0..k {
                let av = if ta { a[p * m + i] } else { a[i * k + p] };
                let bv = if tb { b[j * k + p] } else { b[p * n + j] };
                acc += av as f64 * bv as f64;
            }
            let prev = if mode == Accumulate::Add { c[i * n + j] } else { 0.0 };
            c[i * n + j] = prev + acc as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;

    fn operand(x: &[f32], transposed: bool) -> Operand<'_> {
        if transposed {
            Operand::Transposed(x)
        } else {
            Operand::Stored(x)
        }
    }

    fn random(len: usize, rng: &mut Rng) -> Vec<f32> {
        (0..len).map(|_| rng.uniform(-1.0, 1.0)).collect()
    }

    #[test]
    fn matches_naive_twin_for_every_transpose_and_odd_sizes() {
        let mut rng = Rng::new(0);
        // The last two are above PARALLEL_MIN_FLOPS: split into blocks of rows, then of columns.
        let sizes =
            [(1, 1, 1), (3, 5, 7), (17, 9, 33), (64, 65, 130), (0, 3, 2), (2, 3, 0), (300, 257, 64), (70, 300, 256)];
        for &(m, n, k) in &sizes {
            for ta in [false, true] {
                for tb in [false, true] {
                    for mode in [Accumulate::Overwrite, Accumulate::Add] {
                        let (a, b) = (random(m * k, &mut rng), random(k * n, &mut rng));
                        let c0 = random(m * n, &mut rng);
                        let (mut fast, mut slow) = (c0.clone(), c0.clone());
                        sgemm(Dims { m, n, k }, operand(&a, ta), operand(&b, tb), &mut fast, mode);
                        sgemm_naive(Dims { m, n, k }, operand(&a, ta), operand(&b, tb), &mut slow, mode);
                        for (x, y) in fast.iter().zip(&slow) {
                            assert!(
                                (x - y).abs() <= 1e-5 * (1.0 + k as f32),
                                "{m}x{n}x{k} transposed {ta} {tb}: {x} vs {y}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn result_does_not_depend_on_the_thread_count() {
        let mut rng = Rng::new(1);
        // Blocks by thread count (the shorter side above 64), with K in one
        // cache block and in several (the LSTM tagger's weight gradient,
        // A transposed); then blocks by shape alone, some of them small
        // enough for the crate's small-product path.
        for (m, n, k, ta, by_threads) in [
            (257, 300, 511, false, true),
            (512, 100, 768, true, true),
            (300, 70, 1100, false, true),
            (40, 200, 800, false, false),
        ] {
            let (a, b) = (random(m * k, &mut rng), random(k * n, &mut rng));
            let dims = Dims { m, n, k };
            let run = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let mut c = vec![0.0; m * n];
                pool.install(|| sgemm(dims, operand(&a, ta), Operand::Stored(&b), &mut c, Accumulate::Overwrite));
                c
            };
            let one = run(1);
            for threads in [2, 3, 4] {
                assert!(one == run(threads), "{m}x{n}x{k}: {threads} threads sum otherwise than one");
            }
            if by_threads {
                let mut alone = vec![0.0; m * n];
                sgemm_sequential(dims, operand(&a, ta), Operand::Stored(&b), &mut alone, Accumulate::Overwrite);
                assert!(one == alone, "{m}x{n}x{k}: sgemm_sequential sums otherwise than sgemm");
            }
        }
    }

    #[test]
    fn a_row_of_the_product_does_not_depend_on_the_rows_beside_it() {
        // The recurrences run two blocks of rows in one product or each in
        // its own, by the thread count (`kernels::recurrent`): each row of C
        // must come out the same from a product of any number of rows (two
        // or more), for sums of one cache block of K and of several,
        // overwritten and added to.
        let mut rng = Rng::new(2);
        for (n, k) in [(512, 128), (128, 512), (300, 1100), (800, 200), (200, 800)] {
            let m = 35;
            let (a, b) = (random(m * k, &mut rng), random(k * n, &mut rng));
            let c0 = random(m * n, &mut rng);
            for mode in [Accumulate::Overwrite, Accumulate::Add] {
                let mut whole = c0.clone();
                sgemm_sequential(Dims { m, n, k }, Operand::Stored(&a), Operand::Stored(&b), &mut whole, mode);
                // A product of one row runs the crate's matrix-vector kernel,
                // which may round otherwise: no block of one row is compared.
                for rows in (2..=16).filter(|rows| m % rows != 1) {
                    let mut blocks = c0.clone();
                    for (a, c) in a.chunks(rows * k).zip(blocks.chunks_mut(rows * n)) {
                        let dims = Dims { m: c.len() / n, n, k };
                        sgemm_sequential(dims, Operand::Stored(a), Operand::Stored(&b), c, mode);
                    }
                    assert!(whole == blocks, "n = {n}, k = {k}, {mode:?}: blocks of {rows} rows differ");
                }
            }
        }
    }
}
