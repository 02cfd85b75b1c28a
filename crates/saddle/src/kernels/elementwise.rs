//! Element-wise loops with NumPy broadcasting, and the reduction that undoes a
//! broadcast in backward (`sum_to_shape`).
//!
//! Large maps run in parallel over disjoint chunks of the output; reductions
//! run in a fixed order (column sums, one thread a run of columns), so
//! results never depend on the number of threads.
//!
//! Uses: `tensor::shape` helpers only through plain slices.

use super::{in_parts, Fresh};
use rayon::prelude::*;

/// Below this many elements a map runs in one thread.
const PARALLEL_MIN: usize = 1 << 15;

/// Values a worker thread's part of a parallel map holds.
const RUN: usize = 4096;

/// `out[i] = f(x[i])`.
pub fn map(x: &[f32], f: impl Fn(f32) -> f32 + Sync) -> Vec<f32> {
    if x.len() < PARALLEL_MIN {
        return x.iter().map(|&v| f(v)).collect();
    }
    let mut out = Fresh::new(x.len());
    in_parts(out.unwritten(), RUN, &|i, o| {
        o.iter_mut().zip(&x[i * RUN..]).for_each(|(o, &v)| {
            o.write(f(v));
        })
    });
    // SAFETY: the parts cover `out`, and each wrote all its values.
    unsafe { out.written() }
}

/// `out[i] = f(a[i], b[i])` for equal lengths.
pub fn zip_map(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "zip_map: lengths differ");
    if a.len() < PARALLEL_MIN {
        return a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect();
    }
    let mut out = Fresh::new(a.len());
    in_parts(out.unwritten(), RUN, &|i, o| {
        o.iter_mut().zip(&a[i * RUN..]).zip(&b[i * RUN..]).for_each(|((o, &x), &y)| {
            o.write(f(x, y));
        })
    });
    // SAFETY: the parts cover `out`, and each wrote all its values.
    unsafe { out.written() }
}

/// [`map`] for a costly `f` (GELU's erf and exponential): each run of 4096
/// values compiled for AVX-512 where the processor has it (checked once, at
/// run time), on the worker threads from 16K values. `f` must be inlined
/// into the run (`#[inline(always)]` on the closure) to be compiled so.
///
/// ```
/// use saddle::kernels::elementwise::map_widest;
/// let y = map_widest(&[1.0, 4.0, 9.0], #[inline(always)] |v| v.sqrt());
/// assert_eq!(y, vec![1.0, 2.0, 3.0]);
/// ```
pub fn map_widest(x: &[f32], f: impl Fn(f32) -> f32 + Sync) -> Vec<f32> {
    zip_map_widest(x, x, |v, _| f(v))
}

/// [`zip_map`] for a costly `f`, as [`map_widest`] runs it.
///
/// ```
/// use saddle::kernels::elementwise::zip_map_widest;
/// let y = zip_map_widest(&[1.0, 2.0], &[3.0, 4.0], #[inline(always)] |a, b| a.mul_add(b, 1.0));
/// assert_eq!(y, vec![4.0, 9.0]);
/// ```
pub fn zip_map_widest(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "zip_map_widest: lengths differ");
    super::filled(a.len(), RUN, |i, out| {
        let (a, b) = (&a[i * RUN..][..out.len()], &b[i * RUN..][..out.len()]);
        super::widest(
            #[inline(always)]
            || out.iter_mut().zip(a).zip(b).for_each(|((o, &a), &b)| *o = f(a, b)),
        )
    })
}

/// `a[i] = f(a[i], b[i])` for equal lengths, in place.
pub fn zip_apply(a: &mut [f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) {
    assert_eq!(a.len(), b.len(), "zip_apply: lengths differ");
    if a.len() < PARALLEL_MIN {
        a.iter_mut().zip(b).for_each(|(x, &y)| *x = f(*x, y));
    } else {
        in_parts(a, RUN, &|i, a| a.iter_mut().zip(&b[i * RUN..]).for_each(|(x, &y)| *x = f(*x, y)));
    }
}

/// `eˣ` in `f64` for `|x| ≤ 700` (callers clamp; NaN stays NaN), within
/// about 1e-14 relative, in plain arithmetic that vectorizes (no call into
/// libm): `x = k·ln 2 + r` with `k = round(x / ln 2)` and `|r| ≤ ½ ln 2`
/// (Cody and Waite's two-part ln 2, so `k·ln2_hi` is exact), `eʳ` by its
/// Taylor series to `r¹¹/11!` (the next term is below 7e-15) in fused
/// multiply-adds, and `2ᵏ` written straight into the exponent bits.
///
/// The series is summed by Estrin's scheme: pairs of terms `a + b·r`, then
/// pairs of pairs with `r²`, then with `r⁴` and `r⁸`, a chain of 5
/// operations where Horner's form chained 11, so that one value's
/// polynomial no longer waits on each step of the last. [`sigmoid`] and
/// [`tanh`] over 491 520 values went from 2.86 and 3.81 ns a value to 2.48
/// and 3.22 (one thread of a Zen 3 EPYC), and both give the same bits as
/// with Horner's form for every `f32` below 1024 in magnitude, as does
/// [`gelu_slope`] below 16; [`erf`] differs in the last bit for 126 of those
/// 2.2 billion inputs, all near ±5e-5, where its own error is far larger.
#[inline(always)]
fn exp64(x: f64) -> f64 {
    // Adding 1.5·2⁵² rounds to an integer k and leaves k in the low mantissa bits.
    const SHIFT: f64 = 6_755_399_441_055_744.0;
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000); // 0.693147180369…, 32 bits
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76); // ln 2 − LN2_HI
    let t = x * std::f64::consts::LOG2_E + SHIFT;
    let k = t - SHIFT;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    // The coefficients 1/i!, paired: r + 1, 1/2! + r/3!, …, 1/10! + r/11!.
    let f = |n: f64| 1.0 / n;
    let (r2, p0, p2) = (r * r, r + 1.0, f(6.0).mul_add(r, f(2.0)));
    let (p4, p6) = (f(120.0).mul_add(r, f(24.0)), f(5_040.0).mul_add(r, f(720.0)));
    let (p8, p10) = (f(362_880.0).mul_add(r, f(40_320.0)), f(39_916_800.0).mul_add(r, f(3_628_800.0)));
    let (r4, q0, q4, q8) = (r2 * r2, p2.mul_add(r2, p0), p6.mul_add(r2, p4), p10.mul_add(r2, p8));
    let p = (q8 * (r4 * r4)) + q4.mul_add(r4, q0);
    // 2ᵏ: the biased exponent k + 1023 in bits 52…62 (|k| ≤ 1010 here).
    let scale = f64::from_bits((t.to_bits() << 52).wrapping_add(1023 << 52));
    p * scale
}

/// `1/d` for `1 ≤ d ≤ 2`, within about 2⁻⁴⁶ relative: the `f32` quotient
/// (relative error below 2⁻²³) refined by one Newton step in `f64`,
/// `q + q·(1 − d·q)`, which squares the error. In these loops a vector
/// `f64` division is the slowest instruction (the sigmoid's loop waited on
/// it for half its time); the `f32` one is several times faster.
#[inline(always)]
fn recip_1_to_2(d: f64) -> f64 {
    let q = (1.0 / d as f32) as f64;
    q.mul_add((-d).mul_add(q, 1.0), q)
}

/// `σ(x) = 1/(1 + e⁻ˣ)`, evaluated in `f64` and rounded once: correctly
/// rounded to `f32` but for rare ties. With `e = e^{−|x|} ≤ 1`, `σ(x) = 1/(1 + e)`
/// for `x ≥ 0` and `e/(1 + e)` below, so the quotient's divisor stays in `[1, 2]`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    let e = exp64((-(x as f64).abs()).clamp(-700.0, 0.0));
    let q = recip_1_to_2(1.0 + e);
    (if x >= 0.0 { q } else { e * q }) as f32
}

/// `tanh x`, correctly rounded to `f32` but for rare ties: evaluated in
/// `f64` as `(1 − e^{−2|x|}) / (1 + e^{−2|x|})`, or by its series
/// `x − x³/3 + 2x⁵/15 − 17x⁷/315` below `|x| = 1/16` (next term < 1e-12·|x|).
/// Many times faster than the `f32` libm `tanhf`, and over slices
/// ([`tanh_in_place`]) it vectorizes.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let a = (x as f64).abs();
    let y = if a < 0.0625 {
        let a2 = a * a;
        a * (1.0 - a2 * (1.0 / 3.0 - a2 * (2.0 / 15.0 - a2 * (17.0 / 315.0))))
    } else {
        let e = exp64((-2.0 * a).clamp(-700.0, 0.0));
        (1.0 - e) * recip_1_to_2(1.0 + e)
    };
    (y as f32).copysign(x)
}

/// `erf x = 2/√π ∫₀ˣ e^{−t²} dt` within 1.5e-7 (absolute), evaluated in
/// `f64`: Abramowitz and Stegun 7.1.26, `1 − (a₁t + … + a₅t⁵)·e^{−x²}` with
/// `t = 1/(1 + p|x|)`, odd in `x`.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let (y, _) = erf_and_gaussian(x as f64);
    y as f32
}

/// `(erf x, e^{−x²})` in `f64`, as [`erf`] computes them.
#[inline(always)]
fn erf_and_gaussian(x: f64) -> (f64, f64) {
    const P: f64 = 0.327_591_1;
    const A: [f64; 5] = [0.254_829_592, -0.284_496_736, 1.421_413_741, -1.453_152_027, 1.061_405_429];
    let a = x.abs();
    let t = 1.0 / (1.0 + P * a);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let e = exp64((-a * a).max(-700.0));
    ((1.0 - poly * e).copysign(x), e)
}

/// GELU, `z·Φ(z) = ½z(1 + erf(z/√2))`, with [`erf`]'s approximation.
///
/// ```
/// use saddle::kernels::elementwise::gelu;
/// assert!((gelu(1.0) - 0.841_344_7).abs() < 1e-6 && gelu(-9.0).abs() < 1e-7);
/// ```
#[inline(always)]
pub fn gelu(z: f32) -> f32 {
    0.5 * z * (1.0 + erf(z * std::f32::consts::FRAC_1_SQRT_2))
}

/// GELU's slope `Φ(z) + z·φ(z)`, with `Φ(z) = ½(1 + erf(z/√2))` ([`erf`]'s
/// approximation) and the standard normal density `φ(z) = e^{−z²/2}/√(2π)`,
/// in `f64` and rounded once. The one exponential `e^{−z²/2}` serves both
/// terms: with one each, 8192 slopes took 18.1 µs instead of 12.8 (one
/// thread of a Xeon, AVX-512).
///
/// ```
/// use saddle::kernels::elementwise::gelu_slope;
/// // Φ(1) + φ(1) = 0.841 345 + 0.241 971
/// assert!((gelu_slope(1.0) - 1.083_315).abs() < 1e-6);
/// assert!((gelu_slope(0.0) - 0.5).abs() < 1e-7 && gelu_slope(-9.0).abs() < 1e-7);
/// ```
#[inline(always)]
pub fn gelu_slope(z: f32) -> f32 {
    let z = z as f64;
    let (erf, e) = erf_and_gaussian(z * std::f64::consts::FRAC_1_SQRT_2);
    (0.5 * (1.0 + erf) + z * e * 0.398_942_280_401_432_7) as f32
}

/// `x ← σ(x)` element by element (see [`sigmoid`]), with AVX-512 where present.
pub fn sigmoid_in_place(x: &mut [f32]) {
    super::widest(|| x.iter_mut().for_each(|v| *v = sigmoid(*v)));
}

/// `x ← tanh x` element by element (see [`tanh`]), with AVX-512 where present.
pub fn tanh_in_place(x: &mut [f32]) {
    super::widest(|| x.iter_mut().for_each(|v| *v = tanh(*v)));
}

/// Partial sums that [`sum`] and [`sum_pairs`] keep, side by side in vector registers.
const PARTIALS: usize = 8;

/// `Σ f(v)` over `xs` in `f64`: element `i` goes to partial sum `i mod 8`,
/// and the partial sums are added in order at the end, so the additions
/// vectorize where one running sum would wait on each add in turn. One
/// thread, a fixed order.
#[inline]
pub(crate) fn sum(xs: &[f32], f: impl Fn(f32) -> f64) -> f64 {
    sum_pairs(xs, xs, |v, _| f(v))
}

/// `Σ f(a_i, b_i)` in `f64`, summed as [`sum`] sums.
#[inline]
pub(crate) fn sum_pairs(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f64) -> f64 {
    let mut partial = [0.0f64; PARTIALS];
    let (ca, cb) = (a.chunks_exact(PARTIALS), b.chunks_exact(PARTIALS));
    let tail: f64 = ca.remainder().iter().zip(cb.remainder()).map(|(&a, &b)| f(a, b)).sum();
    for (a, b) in ca.zip(cb) {
        for k in 0..PARTIALS {
            partial[k] += f(a[k], b[k]);
        }
    }
    partial.iter().sum::<f64>() + tail
}

/// Strides of `shape` read as a broadcast into `out` (right-aligned): 0 along
/// every dimension where `shape` has size 1 or no dimension at all.
pub fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let offset = out.len() - shape.len();
    let mut s = vec![0; out.len()];
    let mut stride = 1;
    for i in (0..shape.len()).rev() {
        s[i + offset] = if shape[i] == 1 { 0 } else { stride };
        stride *= shape[i];
    }
    s
}

/// Calls `f(i, ia, ib)` for every flat index `i` of `out`, with the flat indices
/// `ia`, `ib` of the elements of `a` and `b` that broadcast to it, in row-major order.
fn for_each_broadcast(out: &[usize], sa: &[usize], sb: &[usize], mut f: impl FnMut(usize, usize, usize)) {
    let total: usize = out.iter().product();
    if total == 0 {
        return;
    }
    let r = out.len();
    if r == 0 {
        f(0, 0, 0);
        return;
    }
    let last = out[r - 1];
    let (la, lb) = (sa[r - 1], sb[r - 1]);
    let mut idx = vec![0usize; r];
    let (mut oa, mut ob) = (0usize, 0usize);
    let mut i = 0;
    while i < total {
        for j in 0..last {
            f(i + j, oa + j * la, ob + j * lb);
        }
        i += last;
        // advance the multi-index over all dimensions but the last
        let mut d = r - 1;
        while d > 0 {
            d -= 1;
            idx[d] += 1;
            oa += sa[d];
            ob += sb[d];
            if idx[d] < out[d] {
                break;
            }
            oa -= sa[d] * out[d];
            ob -= sb[d] * out[d];
            idx[d] = 0;
        }
    }
}

/// `out = f(a, b)` where `a` and `b` broadcast to `out_shape`.
pub fn broadcast_zip(
    a: &[f32],
    a_shape: &[usize],
    b: &[f32],
    b_shape: &[usize],
    out_shape: &[usize],
    f: impl Fn(f32, f32) -> f32 + Sync,
) -> Vec<f32> {
    if a_shape == b_shape {
        return zip_map(a, b, f);
    }
    if b.len() == 1 && a_shape == out_shape {
        let y = b[0];
        return map(a, |x| f(x, y));
    }
    if a.len() == 1 && b_shape == out_shape {
        let x = a[0];
        return map(b, |y| f(x, y));
    }
    let sa = broadcast_strides(a_shape, out_shape);
    let sb = broadcast_strides(b_shape, out_shape);
    let mut out = vec![0.0; out_shape.iter().product()];
    for_each_broadcast(out_shape, &sa, &sb, |i, ia, ib| out[i] = f(a[ia], b[ib]));
    out
}

/// The column sums of `m: [R, W]`: `out[j] = Σ_r m[r][j]`, each column
/// summed over the rows in order, so the bits do not depend on the threads,
/// which take runs of 64 columns each where `m` is large.
pub fn column_sums(m: &[f32], w: usize) -> Vec<f32> {
    const COLUMNS: usize = 64;
    let mut out = vec![0.0f32; w];
    let run = |(p, sums): (usize, &mut [f32])| {
        m.chunks_exact(w).for_each(|row| sums.iter_mut().zip(&row[p * COLUMNS..]).for_each(|(s, x)| *s += x))
    };
    if m.len() < PARALLEL_MIN {
        out.chunks_mut(COLUMNS).enumerate().for_each(run);
    } else {
        out.par_chunks_mut(COLUMNS).enumerate().for_each(run);
    }
    out
}

/// Reverses a broadcast: sums `g` (of shape `g_shape`) down to `shape`, which
/// broadcasts to `g_shape`. One thread, fixed order.
pub fn sum_to_shape(g: &[f32], g_shape: &[usize], shape: &[usize]) -> Vec<f32> {
    if g_shape == shape {
        return g.to_vec();
    }
    let s = broadcast_strides(shape, g_shape);
    let zeros = vec![0; g_shape.len()];
    let mut out = vec![0.0; shape.iter().product()];
    for_each_broadcast(g_shape, &s, &zeros, |i, io, _| out[io] += g[i]);
    out
}

/// Copies `x` (of shape `shape`) broadcast up to `out_shape`.
pub fn expand(x: &[f32], shape: &[usize], out_shape: &[usize]) -> Vec<f32> {
    if shape == out_shape {
        return x.to_vec();
    }
    let s = broadcast_strides(shape, out_shape);
    let zeros = vec![0; out_shape.len()];
    let mut out = vec![0.0; out_shape.iter().product()];
    for_each_broadcast(out_shape, &s, &zeros, |i, ix, _| out[i] = x[ix]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_sums_add_each_column_down_the_rows_in_order() {
        // Large enough for the parallel runs, with a last run of 13 columns.
        for (rows, w) in [(7, 5), (600, 141)] {
            let m: Vec<f32> = (0..rows * w).map(|i| (i as f32 * 0.61).sin()).collect();
            let sums = column_sums(&m, w);
            for (j, &s) in sums.iter().enumerate() {
                let exact = (0..rows).fold(0.0f32, |acc, r| acc + m[r * w + j]);
                assert_eq!(s.to_bits(), exact.to_bits(), "column {j} of {rows}×{w}");
            }
        }
    }

    /// The largest error of `f` against `exact`, in units in the last place
    /// of the exact value rounded to `f32`, dense near 0, then out to ±20, and
    /// at the smallest magnitudes; through the slice form too.
    fn worst_ulps(f: fn(f32) -> f32, in_place: fn(&mut [f32]), exact: fn(f64) -> f64) -> f64 {
        let xs: Vec<f32> = (-200_000..=200_000)
            .map(|i| (i as f32 / 10_000.0) * (i as f32 / 200_000.0).abs().max(1e-3))
            .flat_map(|x| [x, x * 1e-30])
            .collect();
        let mut slice = xs.clone();
        in_place(&mut slice);
        let mut worst = 0.0f64;
        for (&x, &y) in xs.iter().zip(&slice) {
            assert_eq!(f(x).to_bits(), y.to_bits(), "slice and scalar differ at {x}");
            let e = exact(x as f64);
            let ulp = (e as f32).abs().max(f32::MIN_POSITIVE) as f64 * f32::EPSILON as f64;
            worst = worst.max((y as f64 - e).abs() / ulp);
        }
        worst
    }

    #[test]
    fn gelu_slope_is_the_derivative_of_gelu() {
        for i in -4000..=4000 {
            let z = i as f32 / 500.0;
            // Φ(z) + z·φ(z), with erf's own approximation and φ from the standard library's exponential.
            let (zd, phi) = (z as f64, (-0.5 * (z as f64).powi(2)).exp() / (2.0 * std::f64::consts::PI).sqrt());
            let phi_cdf = 0.5 * (1.0 + erf_and_gaussian(zd * std::f64::consts::FRAC_1_SQRT_2).0);
            let exact = phi_cdf + zd * phi;
            assert!((gelu_slope(z) as f64 - exact).abs() <= 1e-7, "at {z}: {} vs {exact}", gelu_slope(z));
        }
    }

    #[test]
    fn tanh_is_within_half_an_ulp_of_f64() {
        let worst = worst_ulps(tanh, tanh_in_place, f64::tanh);
        assert!(worst <= 0.5 + 1e-6, "tanh: {worst} ulp from the exact value");
        assert!(tanh(f32::NAN).is_nan() && tanh(f32::INFINITY) == 1.0 && tanh(-0.0).is_sign_negative());
    }

    #[test]
    fn sigmoid_is_within_half_an_ulp_of_f64() {
        let worst = worst_ulps(sigmoid, sigmoid_in_place, |x| 1.0 / (1.0 + (-x).exp()));
        assert!(worst <= 0.5 + 1e-6, "sigmoid: {worst} ulp from the exact value");
        assert!(sigmoid(f32::NAN).is_nan() && sigmoid(f32::INFINITY) == 1.0 && sigmoid(f32::NEG_INFINITY) == 0.0);
        // e⁻ˣ far past f32's range: σ(−100) = 3.72e-44 is 26.5 steps of the
        // smallest subnormal (1/(1 + e¹⁰⁰) in Python), rounded to 27; σ(−110) rounds to 0.
        assert_eq!(sigmoid(-100.0), f32::from_bits(27));
        assert_eq!(sigmoid(-110.0), 0.0);
    }

    /// Naive twin: unravel every output index and ravel it into each input.
    fn naive_broadcast_zip(a: &[f32], sa: &[usize], b: &[f32], sb: &[usize], out: &[usize]) -> Vec<f32> {
        let n: usize = out.iter().product();
        let ravel = |shape: &[usize], idx: &[usize]| {
            let off = idx.len() - shape.len();
            shape.iter().enumerate().fold(0, |acc, (d, &s)| acc * s + if s == 1 { 0 } else { idx[d + off] })
        };
        (0..n)
            .map(|mut i| {
                let mut idx = vec![0; out.len()];
                for d in (0..out.len()).rev() {
                    idx[d] = i % out[d];
                    i /= out[d];
                }
                a[ravel(sa, &idx)] * 10.0 + b[ravel(sb, &idx)]
            })
            .collect()
    }

    #[test]
    fn broadcast_zip_matches_naive_twin() {
        let cases: &[(&[usize], &[usize], &[usize])] = &[
            (&[2, 3], &[3], &[2, 3]),
            (&[2, 1], &[1, 4], &[2, 4]),
            (&[3, 1, 5], &[4, 1], &[3, 4, 5]),
            (&[1], &[2, 2], &[2, 2]),
            (&[4, 1, 1], &[1, 3, 2], &[4, 3, 2]),
        ];
        for &(sa, sb, so) in cases {
            let a: Vec<f32> = (0..sa.iter().product::<usize>()).map(|v| v as f32).collect();
            let b: Vec<f32> = (0..sb.iter().product::<usize>()).map(|v| v as f32 * 0.5).collect();
            let fast = broadcast_zip(&a, sa, &b, sb, so, |x, y| x * 10.0 + y);
            assert_eq!(fast, naive_broadcast_zip(&a, sa, &b, sb, so), "{sa:?} {sb:?}");
        }
    }

    #[test]
    fn sum_to_shape_sums_the_broadcast_dimensions() {
        // g: [2, 3] → [3] sums rows; → [2, 1] sums columns; → [] sums all.
        let g = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(sum_to_shape(&g, &[2, 3], &[3]), vec![5.0, 7.0, 9.0]);
        assert_eq!(sum_to_shape(&g, &[2, 3], &[2, 1]), vec![6.0, 15.0]);
        assert_eq!(sum_to_shape(&g, &[2, 3], &[]), vec![21.0]);
        assert_eq!(expand(&[1.0, 2.0], &[2, 1], &[2, 3]), vec![1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
    }
}
