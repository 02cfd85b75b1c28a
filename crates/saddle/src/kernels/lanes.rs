//! [`Lanes`]: eight `f32` computed together, one vector register where the
//! build has AVX2 and FMA (`x86-64-v3`, this workspace's target), else an array.
//!
//! Arithmetic is lane by lane: each lane computes the IEEE operations that the
//! same expression computes on one `f32`, so results do not depend on which
//! form is built (tested below). Loads and stores take slices and are bounds
//! checked: a slice shorter than [`LANES`] reads zeros beyond its end and
//! writes only its length; `Lanes::write` stores into memory not yet
//! written (`MaybeUninit`), for kernels that overwrite their output whole.
//! [`transpose`] turns eight rows into eight columns, for moving between
//! channels-first and channels-last layouts; [`deinterleave`] splits even
//! and odd positions, for windows of stride 2.
//!
//! Uses: nothing.

use std::mem::MaybeUninit;
use std::ops::{Add, Div, Mul, Sub};

/// `s` as memory to be written without being read, the view that
/// [`Lanes::write`] stores through: a kernel that overwrites its output
/// can then take it unwritten (`MaybeUninit`), with no zeroing first.
#[inline(always)]
pub(crate) fn as_unwritten(s: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, and only `f32`
    // values are ever written through the view.
    unsafe { &mut *(s as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

/// Values in one [`Lanes`].
pub(crate) const LANES: usize = 8;

#[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma"))]
pub(crate) use avx::{deinterleave, transpose, Lanes};
#[cfg(not(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma")))]
pub(crate) use portable::{deinterleave, transpose, Lanes};

/// The array form, for every target.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma"), allow(dead_code))]
mod portable {
    use super::*;
    use std::array::from_fn;

    /// [`LANES`] values.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub(crate) struct Lanes([f32; LANES]);

    impl Lanes {
        /// All lanes zero.
        #[inline(always)]
        pub(crate) fn zero() -> Self {
            Lanes([0.0; LANES])
        }
        /// Every lane `v`.
        #[inline(always)]
        pub(crate) fn splat(v: f32) -> Self {
            Lanes([v; LANES])
        }
        /// `self · a + b` lane by lane, rounded once (a fused multiply-add).
        #[inline(always)]
        pub(crate) fn mul_add(self, a: Self, b: Self) -> Self {
            Lanes(from_fn(|k| self.0[k].mul_add(a.0[k], b.0[k])))
        }
        /// A running maximum `self` found at `at` meets `v` found at `v_at`:
        /// lane by lane, `(v, v_at)` where `v` is larger or NaN, else `(self, at)`.
        #[inline(always)]
        pub(crate) fn max_at(self, at: Self, v: Self, v_at: Self) -> (Self, Self) {
            let take: [bool; LANES] = from_fn(|k| v.0[k] > self.0[k] || v.0[k].is_nan());
            let pick = |a: Self, b: Self| Lanes(from_fn(|k| if take[k] { b.0[k] } else { a.0[k] }));
            (pick(self, v), pick(at, v_at))
        }
        /// The first [`LANES`] values of `s`, or all of them and zeros after.
        #[inline(always)]
        pub(crate) fn load(s: &[f32]) -> Self {
            match s.get(..LANES) {
                Some(all) => Lanes(all.try_into().expect("LANES values")),
                None => Lanes(from_fn(|k| s.get(k).copied().unwrap_or(0.0))),
            }
        }
        /// Writes the first `min(dst.len(), LANES)` lanes to `dst`.
        #[inline(always)]
        pub(crate) fn store(&self, dst: &mut [f32]) {
            self.write(as_unwritten(dst));
        }
        /// [`Lanes::store`] into memory not yet written.
        #[inline(always)]
        pub(crate) fn write(&self, dst: &mut [MaybeUninit<f32>]) {
            dst.iter_mut().zip(self.0).for_each(|(d, v)| {
                d.write(v);
            });
        }
        /// Writes lanes that hold whole numbers in `0..2³¹`, as integers, to
        /// the first `min(dst.len(), LANES)` of `dst`.
        #[inline(always)]
        pub(crate) fn store_indices(&self, dst: &mut [u32]) {
            dst.iter_mut().zip(self.0).for_each(|(d, v)| *d = v as u32);
        }
    }

    impl Add for Lanes {
        type Output = Self;
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            Lanes(from_fn(|k| self.0[k] + o.0[k]))
        }
    }

    impl Sub for Lanes {
        type Output = Self;
        #[inline(always)]
        fn sub(self, o: Self) -> Self {
            Lanes(from_fn(|k| self.0[k] - o.0[k]))
        }
    }

    impl Mul<f32> for Lanes {
        type Output = Self;
        #[inline(always)]
        fn mul(self, a: f32) -> Self {
            Lanes(from_fn(|k| self.0[k] * a))
        }
    }

    impl Div<f32> for Lanes {
        type Output = Self;
        #[inline(always)]
        fn div(self, a: f32) -> Self {
            Lanes(from_fn(|k| self.0[k] / a))
        }
    }

    /// `out[j]` holds lane `j` of every row: `out[j][k] = rows[k][j]`.
    #[inline(always)]
    pub(crate) fn transpose(rows: [Lanes; LANES]) -> [Lanes; LANES] {
        from_fn(|j| Lanes(from_fn(|k| rows[k].0[j])))
    }

    /// `(evens, odds)` of the `2·LANES` values `a` then `b`: lane `k` holds
    /// value `2k`, and value `2k + 1`.
    #[inline(always)]
    pub(crate) fn deinterleave(a: Lanes, b: Lanes) -> (Lanes, Lanes) {
        let at = |i: usize| if i < LANES { a.0[i] } else { b.0[i - LANES] };
        (Lanes(from_fn(|k| at(2 * k))), Lanes(from_fn(|k| at(2 * k + 1))))
    }
}

/// The AVX2 form: one `__m256` register.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma"))]
mod avx {
    // SAFETY (every `unsafe` below): this module is compiled only where the
    // build enables AVX2 (and so AVX), so its instructions exist; loads and
    // stores touch `LANES` values of a slice checked to hold them, or, masked,
    // only the first `len` of a slice of `len < LANES`.
    use super::*;
    use std::arch::x86_64::*;

    /// [`LANES`] values in one register.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Lanes(__m256);

    /// The mask of the first `len < LANES` lanes, for the masked loads of
    /// short slices: they touch no memory in the other lanes (no fault there
    /// either), and where a copy through an array called `memmove` for every
    /// short row, this is one instruction.
    #[inline(always)]
    fn first(len: usize) -> __m256i {
        const ONES_THEN_ZEROS: [i32; 2 * LANES] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];
        unsafe { _mm256_loadu_si256(ONES_THEN_ZEROS[LANES - len..].as_ptr().cast()) }
    }

    /// Writes the first `len < LANES` 32-bit lanes of `v` to `dst`: four, then
    /// two, then one at a time. A masked store (`vmaskmovps`) is one
    /// instruction, but AMD's Zen 3 runs it slowly: with it, LeNet-5 (whose
    /// rows of 28, 14, 10 and 5 values each end in one) took 4% longer in
    /// inference and 9% in training on one thread.
    ///
    /// # Safety
    ///
    /// `dst` must be valid for writes of `len` values of 4 bytes.
    #[inline(always)]
    unsafe fn store_first(v: __m256i, dst: *mut i32, len: usize) {
        let (mut part, mut at) = (_mm256_castsi256_si128(v), 0);
        if len >= 4 {
            _mm_storeu_si128(dst.cast(), part);
            (part, at) = (_mm256_extracti128_si256::<1>(v), 4);
        }
        if len - at >= 2 {
            _mm_storel_epi64(dst.add(at).cast(), part);
            (part, at) = (_mm_srli_si128::<8>(part), at + 2);
        }
        if len > at {
            dst.add(at).write_unaligned(_mm_cvtsi128_si32(part));
        }
    }

    impl Lanes {
        /// All lanes zero.
        #[inline(always)]
        pub(crate) fn zero() -> Self {
            Lanes(unsafe { _mm256_setzero_ps() })
        }
        /// Every lane `v`.
        #[inline(always)]
        pub(crate) fn splat(v: f32) -> Self {
            Lanes(unsafe { _mm256_set1_ps(v) })
        }
        /// `self · a + b` lane by lane, rounded once (a fused multiply-add).
        #[inline(always)]
        pub(crate) fn mul_add(self, a: Self, b: Self) -> Self {
            Lanes(unsafe { _mm256_fmadd_ps(self.0, a.0, b.0) })
        }
        /// A running maximum `self` found at `at` meets `v` found at `v_at`:
        /// lane by lane, `(v, v_at)` where `v` is larger or NaN, else `(self, at)`.
        #[inline(always)]
        pub(crate) fn max_at(self, at: Self, v: Self, v_at: Self) -> (Self, Self) {
            unsafe {
                let larger = _mm256_cmp_ps::<_CMP_GT_OQ>(v.0, self.0);
                let take = _mm256_or_ps(larger, _mm256_cmp_ps::<_CMP_UNORD_Q>(v.0, v.0));
                (Lanes(_mm256_blendv_ps(self.0, v.0, take)), Lanes(_mm256_blendv_ps(at.0, v_at.0, take)))
            }
        }
        /// The first [`LANES`] values of `s`, or all of them and zeros after.
        #[inline(always)]
        pub(crate) fn load(s: &[f32]) -> Self {
            match s.get(..LANES) {
                Some(all) => Lanes(unsafe { _mm256_loadu_ps(all.as_ptr()) }),
                None => Lanes(unsafe { _mm256_maskload_ps(s.as_ptr(), first(s.len())) }),
            }
        }
        /// Writes the first `min(dst.len(), LANES)` lanes to `dst`.
        #[inline(always)]
        pub(crate) fn store(&self, dst: &mut [f32]) {
            self.write(as_unwritten(dst));
        }
        /// [`Lanes::store`] into memory not yet written.
        #[inline(always)]
        pub(crate) fn write(&self, dst: &mut [MaybeUninit<f32>]) {
            match dst.get_mut(..LANES) {
                Some(all) => unsafe { _mm256_storeu_ps(all.as_mut_ptr().cast(), self.0) },
                None => unsafe { store_first(_mm256_castps_si256(self.0), dst.as_mut_ptr().cast(), dst.len()) },
            }
        }
        /// Writes lanes that hold whole numbers in `0..2³¹`, as integers, to
        /// the first `min(dst.len(), LANES)` of `dst`: converted together and
        /// stored as [`Lanes::store`] does (one at a time, with Rust's
        /// saturating `as` and a `memcpy`, they were most of LeNet-5's max
        /// pooling).
        #[inline(always)]
        pub(crate) fn store_indices(&self, dst: &mut [u32]) {
            let whole = unsafe { _mm256_cvttps_epi32(self.0) };
            match dst.get_mut(..LANES) {
                Some(all) => unsafe { _mm256_storeu_si256(all.as_mut_ptr().cast(), whole) },
                None => unsafe { store_first(whole, dst.as_mut_ptr().cast(), dst.len()) },
            }
        }
    }

    impl Add for Lanes {
        type Output = Self;
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            Lanes(unsafe { _mm256_add_ps(self.0, o.0) })
        }
    }

    impl Sub for Lanes {
        type Output = Self;
        #[inline(always)]
        fn sub(self, o: Self) -> Self {
            Lanes(unsafe { _mm256_sub_ps(self.0, o.0) })
        }
    }

    impl Mul<f32> for Lanes {
        type Output = Self;
        #[inline(always)]
        fn mul(self, a: f32) -> Self {
            Lanes(unsafe { _mm256_mul_ps(self.0, _mm256_set1_ps(a)) })
        }
    }

    impl Div<f32> for Lanes {
        type Output = Self;
        #[inline(always)]
        fn div(self, a: f32) -> Self {
            Lanes(unsafe { _mm256_div_ps(self.0, _mm256_set1_ps(a)) })
        }
    }

    /// `out[j]` holds lane `j` of every row: `out[j][k] = rows[k][j]`.
    /// Pairs of rows interleave, pairs of pairs combine within each 128-bit
    /// half, and the halves swap.
    #[inline(always)]
    pub(crate) fn transpose(r: [Lanes; LANES]) -> [Lanes; LANES] {
        unsafe {
            // t[2p] = (r[2p][0], r[2p+1][0], r[2p][1], r[2p+1][1] | the same for 4, 5), t[2p+1] for 2, 3 | 6, 7.
            let t = [
                _mm256_unpacklo_ps(r[0].0, r[1].0),
                _mm256_unpackhi_ps(r[0].0, r[1].0),
                _mm256_unpacklo_ps(r[2].0, r[3].0),
                _mm256_unpackhi_ps(r[2].0, r[3].0),
                _mm256_unpacklo_ps(r[4].0, r[5].0),
                _mm256_unpackhi_ps(r[4].0, r[5].0),
                _mm256_unpacklo_ps(r[6].0, r[7].0),
                _mm256_unpackhi_ps(r[6].0, r[7].0),
            ];
            // s[j] (j < 4): lane j of rows 0–3 | lane j + 4 of rows 0–3; s[4 + j] the same of rows 4–7.
            let s = [
                _mm256_shuffle_ps::<0x44>(t[0], t[2]),
                _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
                _mm256_shuffle_ps::<0x44>(t[1], t[3]),
                _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
                _mm256_shuffle_ps::<0x44>(t[4], t[6]),
                _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
                _mm256_shuffle_ps::<0x44>(t[5], t[7]),
                _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
            ];
            [
                Lanes(_mm256_permute2f128_ps::<0x20>(s[0], s[4])),
                Lanes(_mm256_permute2f128_ps::<0x20>(s[1], s[5])),
                Lanes(_mm256_permute2f128_ps::<0x20>(s[2], s[6])),
                Lanes(_mm256_permute2f128_ps::<0x20>(s[3], s[7])),
                Lanes(_mm256_permute2f128_ps::<0x31>(s[0], s[4])),
                Lanes(_mm256_permute2f128_ps::<0x31>(s[1], s[5])),
                Lanes(_mm256_permute2f128_ps::<0x31>(s[2], s[6])),
                Lanes(_mm256_permute2f128_ps::<0x31>(s[3], s[7])),
            ]
        }
    }

    /// `(evens, odds)` of the `2·LANES` values `a` then `b`: lane `k` holds
    /// value `2k`, and value `2k + 1`. Each half picks its evens (odds) of
    /// `a` and `b`, then the middle 64-bit quarters swap.
    #[inline(always)]
    pub(crate) fn deinterleave(a: Lanes, b: Lanes) -> (Lanes, Lanes) {
        unsafe {
            let order = |x: __m256| _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(x)));
            (Lanes(order(_mm256_shuffle_ps::<0x88>(a.0, b.0))), Lanes(order(_mm256_shuffle_ps::<0xDD>(a.0, b.0))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32).map(|i| ((i * 7919 + seed * 104_729) % 2003) as f32 / 97.0 - 10.0).collect()
    }

    fn read(l: Lanes) -> Vec<f32> {
        let mut v = vec![0.0; LANES];
        l.store(&mut v);
        v
    }

    #[test]
    fn arithmetic_is_lane_by_lane_and_matches_the_array_form() {
        let (a, b) = (values(LANES, 1), values(LANES, 2));
        let (x, y) = (Lanes::load(&a), Lanes::load(&b));
        let (p, q) = (portable::Lanes::load(&a), portable::Lanes::load(&b));
        let expect = |f: fn(f32, f32) -> f32| a.iter().zip(&b).map(|(a, b)| f(*a, *b)).collect::<Vec<_>>();
        assert_eq!(read(x + y), expect(|a, b| a + b));
        assert_eq!(read(x - y), expect(|a, b| a - b));
        assert_eq!(read(x * 1.7), expect(|a, _| a * 1.7));
        assert_eq!(read(x / 6.0), expect(|a, _| a / 6.0));
        assert_eq!(read(x.mul_add(y, x)), expect(|a, b| a.mul_add(b, a)));
        let mut fused = vec![0.0; LANES];
        p.mul_add(q, p).store(&mut fused);
        assert_eq!(read(x.mul_add(y, x)), fused);
        let mut out = vec![0.0; LANES];
        ((p + q) - p * 1.7 + q / 6.0).store(&mut out);
        assert_eq!(read((x + y) - x * 1.7 + y / 6.0), out);
        let whole: Vec<f32> = (0..LANES).map(|k| (k * 1_000_003 + (1 << 24) - 5) as f32).collect();
        for len in 0..=LANES {
            let expect: Vec<u32> = whole.iter().map(|&v| v as u32).chain([7; LANES]).take(LANES + 1).collect();
            let (mut a, mut p) = ([7; LANES + 1], [7; LANES + 1]);
            Lanes::load(&whole).store_indices(&mut a[..len]);
            portable::Lanes::load(&whole).store_indices(&mut p[..len]);
            assert_eq!(a[..len], expect[..len]);
            assert!(a[len..].iter().all(|&v| v == 7), "store of {len} stays in its slice");
            assert_eq!(a, p);
        }
    }

    #[test]
    fn short_slices_read_zeros_and_write_their_length() {
        let l = Lanes::load(&[1.0, 2.0, 3.0]);
        assert_eq!(read(l), [1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        let v = values(LANES, 3);
        for len in 0..LANES {
            let mut loaded = [0.0; LANES];
            loaded[..len].copy_from_slice(&v[..len]);
            assert_eq!(read(Lanes::load(&v[..len])), loaded, "load of {len}");
            // Written inside a longer buffer: the values after the slice stay.
            let mut buf = [9.0; 2 * LANES];
            Lanes::load(&v).store(&mut buf[1..1 + len]);
            assert_eq!(buf[1..1 + len], v[..len], "store of {len}");
            assert!(buf[1 + len..].iter().chain(&buf[..1]).all(|&b| b == 9.0), "store of {len} stays in its slice");
        }
        assert_eq!(read(Lanes::zero()), [0.0; LANES]);
    }

    #[test]
    fn deinterleave_splits_even_and_odd_positions() {
        let v = values(2 * LANES, 5);
        let (even, odd) = deinterleave(Lanes::load(&v), Lanes::load(&v[LANES..]));
        assert_eq!(read(even), v.iter().step_by(2).copied().collect::<Vec<_>>());
        assert_eq!(read(odd), v.iter().skip(1).step_by(2).copied().collect::<Vec<_>>());
    }

    #[test]
    fn max_at_takes_larger_values_and_nans_and_keeps_ties() {
        let best = [1.0, 2.0, f32::NAN, 4.0, 5.0, 6.0, 7.0, -1.0];
        let v = [0.5, 2.0, 9.0, f32::NAN, 6.0, 6.0, f32::NEG_INFINITY, f32::NAN];
        let (m, at) = Lanes::load(&best).max_at(Lanes::splat(0.0), Lanes::load(&v), Lanes::splat(1.0));
        let (m, at) = (read(m), read(at));
        assert_eq!(at, [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0]);
        assert_eq!(m[..2], [1.0, 2.0]);
        assert!(m[2].is_nan() && m[3].is_nan() && m[7].is_nan());
        assert_eq!(m[4..7], [6.0, 6.0, 7.0]);
        let (pm, pat) = portable::Lanes::load(&best).max_at(
            portable::Lanes::splat(0.0),
            portable::Lanes::load(&v),
            portable::Lanes::splat(1.0),
        );
        let mut p = vec![0.0; LANES];
        pat.store(&mut p);
        assert_eq!(p, at);
        pm.store(&mut p);
        assert_eq!(p[..2], m[..2]);
    }

    #[test]
    fn transpose_swaps_rows_and_lanes() {
        let m = values(LANES * LANES, 4);
        let rows = std::array::from_fn(|k| Lanes::load(&m[k * LANES..]));
        let cols = transpose(rows);
        for (j, col) in cols.into_iter().enumerate() {
            let expect: Vec<f32> = (0..LANES).map(|k| m[k * LANES + j]).collect();
            assert_eq!(read(col), expect, "column {j}");
        }
        let twice = transpose(transpose(rows));
        for k in 0..LANES {
            assert_eq!(read(twice[k]), m[k * LANES..][..LANES], "row {k}");
        }
    }
}
