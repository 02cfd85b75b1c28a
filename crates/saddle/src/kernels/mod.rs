//! Plain functions over `&[f32]` slices: GEMM, im2col/col2im, Winograd
//! tiles, pooling, element-wise loops and reductions, the steps of a
//! recurrence, and the eigen-decomposition of small symmetric matrices (in
//! `f64`). No tensors and no autograd here; each fast kernel has a naive
//! twin in its tests as the oracle (Winograd's is the direct convolution,
//! the recurrence's the same steps written with separate ops, in
//! `ops::recurrent`).
//!
//! Threads: kernels run in parallel (rayon) only over independent outputs,
//! never by splitting one sum, so results are the same for any thread count.
//!
//! Uses: nothing else in the crate.

pub mod conv;
pub mod eigen;
pub mod elementwise;
pub mod gemm;
mod lanes;
pub mod pool;
pub mod recurrent;
pub mod winograd;

use std::mem::MaybeUninit;

/// Along one dimension of a sliding window (convolution or pooling): the
/// outputs `o` in `lo..hi` whose tap `t` reads inside `0..size`, and the offset
/// `off` such that output `o` reads input `o·s + off` (`s` stride, `p`
/// padding, `d` dilation).
#[inline]
pub(crate) fn tap_outputs(out: usize, t: usize, s: usize, p: usize, d: usize, size: usize) -> (usize, usize, isize) {
    let off = (t * d) as isize - p as isize;
    // o·s + off ≥ 0  ⇔  o ≥ ⌈−off / s⌉;   o·s + off < size  ⇔  o < ⌈(size − off) / s⌉
    let lo = if off >= 0 { 0 } else { ((-off) as usize).div_ceil(s) };
    let hi = if (size as isize) <= off { 0 } else { ((size as isize - off) as usize).div_ceil(s) };
    (lo.min(out), hi.min(out).max(lo.min(out)), off)
}

/// Runs `f` compiled for AVX-512 where the processor has it (checked once,
/// at run time), else for AVX2 with FMA where it has those, else as built.
/// For loops that divide, take square roots or evaluate polynomials, whose
/// throughput grows with the vector width. What `f` computes, element by
/// element, is the same IEEE operations either way (`mul_add` is one fused
/// instruction with FMA, a libm call that rounds the same way without), so
/// the bits do not change; `f` and what it calls must be inlined into it
/// (`#[inline]`) to be compiled with the wider instructions.
#[inline(always)]
pub(crate) fn widest<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vl") {
            #[target_feature(enable = "avx512f,avx512vl")]
            fn avx512<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            // SAFETY: the processor has the features `avx512` is compiled for.
            return unsafe { avx512(f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            #[target_feature(enable = "avx2,fma")]
            fn avx2<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            // SAFETY: the processor has the features `avx2` is compiled for.
            return unsafe { avx2(f) };
        }
    }
    f()
}

/// A buffer of `len` values that no thread has written yet, for a kernel
/// whose worker threads fill it a part each: [`Fresh::parts`] cuts it, each
/// worker zeroes its part ([`zeroed`]) and then fills it, and
/// [`Fresh::written`] holds the values. `vec![0.0; len]` instead has the
/// calling thread clear all of it (`calloc` hands out freed memory, which it
/// must clear) while the other workers wait: a tenth of an LSTM tagger's
/// training step on 2 threads. [`filled`] does all of it for one buffer.
pub(crate) struct Fresh<T>(Vec<T>, usize);

impl<T> Fresh<T> {
    pub(crate) fn new(len: usize) -> Fresh<T> {
        Fresh(Vec::with_capacity(len), len)
    }
    /// Consecutive parts of `size` values (the last one shorter), which
    /// together cover the buffer.
    pub(crate) fn parts(&mut self, size: usize) -> std::slice::ChunksMut<'_, MaybeUninit<T>> {
        self.unwritten().chunks_mut(size.max(1))
    }
    /// The whole buffer as one part.
    pub(crate) fn unwritten(&mut self) -> &mut [MaybeUninit<T>] {
        &mut self.0.spare_capacity_mut()[..self.1]
    }
    /// The values.
    ///
    /// # Safety
    /// Every value has been written (each part through [`zeroed`], say).
    pub(crate) unsafe fn written(mut self) -> Vec<T> {
        // SAFETY: the first `len` values were written, as the caller promises.
        unsafe { self.0.set_len(self.1) };
        self.0
    }
}

/// `part` set to zeros, as the values it now holds.
pub(crate) fn zeroed<T: Copy + Default>(part: &mut [MaybeUninit<T>]) -> &mut [T] {
    part.fill(MaybeUninit::new(T::default()));
    // SAFETY: every value was written just above.
    unsafe { written(part) }
}

/// `part` set to a copy of `src` (as long), as the values it now holds.
pub(crate) fn copied<'a, T: Copy>(part: &'a mut [MaybeUninit<T>], src: &[T]) -> &'a mut [T] {
    assert_eq!(part.len(), src.len(), "copied: a part of {} values for {} values", part.len(), src.len());
    part.iter_mut().zip(src).for_each(|(d, &s)| _ = d.write(s));
    // SAFETY: every value was written just above.
    unsafe { written(part) }
}

/// The values `part` holds.
///
/// # Safety
/// Every value of `part` has been written.
pub(crate) unsafe fn written<T>(part: &mut [MaybeUninit<T>]) -> &mut [T] {
    // SAFETY: `MaybeUninit<T>` has the layout of `T`, and the caller
    // promises that each value was written.
    unsafe { &mut *(part as *mut [MaybeUninit<T>] as *mut [T]) }
}

/// `len` values made in parts of `size` on the worker threads: part `i` is
/// zeroed, then handed to `fill(i, part)`, by the same thread (see
/// [`Fresh`]). A thread takes parts of at least 16K values in all.
pub(crate) fn filled<T: Copy + Default + Send>(
    len: usize,
    size: usize,
    fill: impl Fn(usize, &mut [T]) + Sync,
) -> Vec<T> {
    let mut v = Fresh::new(len);
    in_parts(v.unwritten(), size, &|i, part| fill(i, zeroed(part)));
    // SAFETY: every part went through `zeroed`.
    unsafe { v.written() }
}

/// `run(i, part)` for each consecutive part `i` of `size` values of `out`
/// (the last one shorter), on the worker threads, which take parts of at
/// least 16K values in all. `run` is a trait object so that the kernels'
/// parallel loops share one copy of rayon's splitting and joining, where a
/// closure type would compile a copy for each loop (ARCHITECTURE.md, Build).
pub(crate) fn in_parts<T: Send>(out: &mut [T], size: usize, run: &(dyn Fn(usize, &mut [T]) + Sync)) {
    use rayon::prelude::*;
    let size = size.max(1);
    out.par_chunks_mut(size).with_min_len((1usize << 14).div_ceil(size)).enumerate().for_each(|(i, part)| run(i, part));
}

/// `m: [rows, cols]` transposed, `[cols, rows]`, in square tiles that stay
/// in the first-level cache (an element at a time along `m`'s rows, the
/// writes a whole output row apart, took 8 times as long).
pub(crate) fn transposed(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const TILE: usize = 16;
    let mut t = vec![0.0f32; rows * cols];
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..rows.min(r0 + TILE) {
                for c in c0..cols.min(c0 + TILE) {
                    t[c * rows + r] = m[r * cols + c];
                }
            }
        }
    }
    t
}

/// The first `len` elements of `v`, grown (with zeros) if it is shorter: a
/// buffer that a worker keeps from one task to the next.
pub(crate) fn grow(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if v.len() < len {
        v.resize(len, 0.0);
    }
    &mut v[..len]
}

#[cfg(test)]
mod tests {
    #[test]
    fn filled_zeroes_every_part_and_hands_each_its_index() {
        // Parts of 3 values, the last one of 1; fill writes only a part's first value.
        let len = 3 * 20_000 + 1;
        let v = super::filled(len, 3, |i, part: &mut [f32]| part[0] = i as f32 + 1.0);
        assert_eq!(v.len(), len);
        for (j, &x) in v.iter().enumerate() {
            assert_eq!(x, if j % 3 == 0 { (j / 3) as f32 + 1.0 } else { 0.0 }, "value {j}");
        }
    }

    #[test]
    fn transposed_moves_every_value_across_the_diagonal() {
        // Sizes that leave part tiles at both edges.
        let (rows, cols) = (37, 21);
        let m: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
        let t = super::transposed(&m, rows, cols);
        for r in 0..rows {
            for c in 0..cols {
                assert_eq!(t[c * rows + r], m[r * cols + c], "({r}, {c})");
            }
        }
    }
}
