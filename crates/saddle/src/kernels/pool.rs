//! Max and average pooling over `(n, c)` planes, with PyTorch's window rules.
//!
//! Letters: N batch, C channels, H, W input size, KH, KW window, OH, OW output.
//!
//! Output size (PyTorch's `pooling_output_shape`):
//! `O = ⌊(I + 2p − d·(k − 1) − 1 + (ceil ? s − 1 : 0)) / s⌋ + 1`, less one if
//! `ceil_mode` made the last window start inside the right padding.
//! Max pooling keeps the first maximum of a window (ties go to the lowest
//! index; a NaN wins, as in PyTorch); its backward sums into that index, so overlapping windows
//! add up. Average pooling divides by the window clipped to the padded input
//! (`count_include_pad`) or to the input.
//!
//! Parallel over planes: each output plane depends on one input plane.
//!
//! Uses: nothing.

use super::lanes::{deinterleave, Lanes, LANES};
use super::{filled, tap_outputs, zeroed, Fresh};
use rayon::prelude::*;

/// The sizes of one 2-D pooling. Pairs are `(height, width)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeometry {
    /// Number of planes, N·C.
    pub planes: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Window size.
    pub kernel: (usize, usize),
    /// Step between windows.
    pub stride: (usize, usize),
    /// Implicit padding on each side.
    pub padding: (usize, usize),
    /// Spacing between window taps (max pooling only).
    pub dilation: (usize, usize),
    /// Round the output size up rather than down.
    pub ceil_mode: bool,
}

/// One dimension of PyTorch's `pooling_output_shape`, or `None` if no window fits.
pub fn pool_output_size(i: usize, k: usize, s: usize, p: usize, d: usize, ceil_mode: bool) -> Option<usize> {
    let num = (i + 2 * p) as isize - (d * (k - 1)) as isize - 1 + if ceil_mode { s as isize - 1 } else { 0 };
    if num < 0 {
        return None;
    }
    let mut o = num as usize / s + 1;
    if ceil_mode && (o - 1) * s >= i + p {
        o -= 1;
    }
    Some(o)
}

impl PoolGeometry {
    /// `(OH, OW)`, or `None` if no window fits.
    pub fn output(&self) -> Option<(usize, usize)> {
        Some((
            pool_output_size(self.h, self.kernel.0, self.stride.0, self.padding.0, self.dilation.0, self.ceil_mode)?,
            pool_output_size(self.w, self.kernel.1, self.stride.1, self.padding.1, self.dilation.1, self.ceil_mode)?,
        ))
    }
}

/// The taps `t` in `lo..hi` of window `o` along one dimension that fall inside
/// `0..size`, and the window's first input index `o·s − p` (taps at `+ t·d`).
#[inline]
fn taps(o: usize, k: usize, s: usize, p: usize, d: usize, size: usize) -> (usize, usize, isize) {
    let start = (o * s) as isize - p as isize;
    // start + t·d ≥ 0  ⇔  t ≥ ⌈−start / d⌉;   start + t·d < size  ⇔  t < ⌈(size − start) / d⌉
    let lo = if start >= 0 { 0 } else { ((-start) as usize).div_ceil(d) };
    let hi = ((size as isize - start).max(0) as usize).div_ceil(d).min(k);
    (lo.min(hi), hi, start)
}

/// Max pooling: `x: [N·C, H, W]` → `out: [N·C, OH, OW]`, and when `want_argmax`
/// the index within its plane of each output's maximum (for backward).
///
/// Loops run tap by tap over whole output rows (`out[x] = max(out[x], tap)`),
/// which the compiler vectorizes, rather than window by window, whose data-
/// dependent comparisons mispredict.
pub fn max_pool2d(x: &[f32], g: &PoolGeometry, want_argmax: bool) -> (Vec<f32>, Vec<u32>) {
    let (oh, ow) = g.output().expect("max_pool2d: window larger than padded input");
    let whole = 2 * oh <= g.h && 2 * ow <= g.w;
    if g.kernel == (2, 2) && g.stride == (2, 2) && g.padding == (0, 0) && g.dilation == (1, 1) && whole {
        return max_pool_2x2(x, g, want_argmax);
    }
    max_pool_any(x, g, want_argmax)
}

/// [`max_pool2d`] for any geometry.
fn max_pool_any(x: &[f32], g: &PoolGeometry, want_argmax: bool) -> (Vec<f32>, Vec<u32>) {
    let (oh, ow) = g.output().expect("max_pool2d: window larger than padded input");
    let (hw, l) = (g.h * g.w, oh * ow);
    let mut out = vec![f32::NEG_INFINITY; g.planes * l];
    let mut arg = vec![0u32; if want_argmax { g.planes * l } else { 0 }];
    if l == 0 {
        return (out, arg);
    }
    let ((kh, kw), (sh, sw), (ph, pw), (dh, dw)) = (g.kernel, g.stride, g.padding, g.dilation);
    // For each tap column tx: the outputs x whose window has it inside the
    // input, and the input column of output x: x·sw + off.
    let xtaps: Vec<(usize, usize, isize)> = (0..kw).map(|tx| tap_outputs(ow, tx, sw, pw, dw, g.w)).collect();
    let ytaps: Vec<_> = (0..oh).map(|y| taps(y, kh, sh, ph, dh, g.h)).collect();
    let arg_chunk = if want_argmax { l } else { 1 };
    let mut args: Vec<&mut [u32]> = arg.chunks_mut(arg_chunk).collect();
    args.resize_with(g.planes, Default::default);
    out.par_chunks_mut(l).zip(args.into_par_iter()).enumerate().for_each(|(pl, (o, a))| {
        let plane = &x[pl * hw..][..hw];
        for (y, &(ty0, ty1, ystart)) in ytaps.iter().enumerate() {
            let orow = &mut o[y * ow..][..ow];
            if want_argmax {
                // Value and index together, taps in window order: a strictly
                // larger value (or a NaN) replaces, so ties keep the first.
                let arow = &mut a[y * ow..][..ow];
                arow.fill(u32::MAX);
                for ty in ty0..ty1 {
                    let row = (ystart + (ty * dh) as isize) as usize * g.w;
                    for &(x0, x1, off) in &xtaps {
                        let first = row + (x0 as isize * sw as isize + off) as usize;
                        let taps = plane[first..].iter().step_by(sw);
                        for (j, ((best, at), &v)) in
                            orow[x0..x1].iter_mut().zip(arow[x0..x1].iter_mut()).zip(taps).enumerate()
                        {
                            let take = v > *best || v.is_nan() || *at == u32::MAX;
                            *best = if take { v } else { *best };
                            *at = if take { (first + j * sw) as u32 } else { *at };
                        }
                    }
                }
            } else {
                for ty in ty0..ty1 {
                    let src = &plane[(ystart + (ty * dh) as isize) as usize * g.w..][..g.w];
                    for &(x0, x1, off) in &xtaps {
                        let first = (x0 as isize * sw as isize + off) as usize;
                        for (best, &v) in orow[x0..x1].iter_mut().zip(src[first..].iter().step_by(sw)) {
                            *best = if v > *best || v.is_nan() { v } else { *best };
                        }
                    }
                }
            }
        }
    });
    (out, arg)
}

/// `0, 2, 4, …`: where each of [`LANES`] windows of width 2 starts.
const EVEN: [f32; LANES] = {
    let mut even = [0.0; LANES];
    let mut k = 0;
    while k < LANES {
        even[k] = 2.0 * k as f32;
        k += 1;
    }
    even
};

/// [`max_pool2d`] with 2×2 windows at stride 2 that all lie inside the input
/// (LeNet's, and most networks'): the four taps of each window read in
/// window order, with the same rule as the general loop (a strictly larger
/// value or a NaN replaces). The general loop's short strided rows made
/// LeNet-5's training steps about 15% slower. The windows of a row run
/// [`LANES`] at a time in vector lanes, the taps split into even and odd
/// columns; a row's last few windows fill the first lanes (the rest load
/// zeros and are not stored). Taking them one by one, with a branch per tap
/// that random data mispredicts half the time, cost LeNet-5 about 15% of its
/// training step (its rows are 14 and 5 windows wide).
fn max_pool_2x2(x: &[f32], g: &PoolGeometry, want_argmax: bool) -> (Vec<f32>, Vec<u32>) {
    let (oh, ow) = (g.h / 2, g.w / 2);
    let (w, hw, l) = (g.w, g.h * g.w, oh * ow);
    if l == 0 {
        return (Vec::new(), Vec::new());
    }
    let mut out = Fresh::new(g.planes * l);
    let mut arg = Fresh::new(if want_argmax { g.planes * l } else { 0 });
    let mut args: Vec<_> = arg.parts(l).collect();
    args.resize_with(g.planes, Default::default);
    // Indices ride in f32 lanes, exact below 2²⁴; larger planes take the scalar loop.
    let vector = if hw < 1 << 24 { ow } else { 0 };
    let parts: Vec<_> = out.parts(l).zip(args).collect();
    parts.into_par_iter().enumerate().for_each(|(pl, (o, a))| {
        let (o, a) = (zeroed(o), zeroed(a));
        let plane = &x[pl * hw..][..hw];
        for y in 0..oh {
            let top = 2 * y * w;
            for xo in (0..vector).step_by(LANES) {
                let (i, n) = (top + 2 * xo, LANES.min(ow - xo));
                let pair = |at: usize| {
                    let taps = &plane[at..at + 2 * n];
                    deinterleave(Lanes::load(taps), Lanes::load(&taps[LANES.min(2 * n)..]))
                };
                let ((t0, t1), (b0, b1)) = (pair(i), pair(i + w));
                let first = Lanes::load(&EVEN) + Lanes::splat(i as f32);
                let (best, at) = t0.max_at(first, t1, first + Lanes::splat(1.0));
                let (best, at) = best.max_at(at, b0, first + Lanes::splat(w as f32));
                let (best, at) = best.max_at(at, b1, first + Lanes::splat(w as f32 + 1.0));
                best.store(&mut o[y * ow + xo..][..n]);
                if want_argmax {
                    at.store_indices(&mut a[y * ow + xo..][..n]);
                }
            }
            for xo in vector..ow {
                let i = top + 2 * xo;
                let (mut best, mut at) = (plane[i], i);
                for j in [i + 1, i + w, i + w + 1] {
                    let v = plane[j];
                    if v > best || v.is_nan() {
                        (best, at) = (v, j);
                    }
                }
                o[y * ow + xo] = best;
                if want_argmax {
                    a[y * ow + xo] = at as u32;
                }
            }
        }
    });
    // SAFETY: each plane's parts of both went through `zeroed`.
    unsafe { (out.written(), arg.written()) }
}

/// Backward of [`max_pool2d`]: each output's gradient goes to its argmax.
pub fn max_pool2d_backward(gout: &[f32], arg: &[u32], g: &PoolGeometry) -> Vec<f32> {
    let (oh, ow) = g.output().expect("max_pool2d_backward: bad geometry");
    let (hw, l) = (g.h * g.w, oh * ow);
    if l == 0 || hw == 0 {
        return vec![0.0f32; g.planes * hw];
    }
    filled(g.planes * hw, hw, |pl, d| {
        for (go, &a) in gout[pl * l..][..l].iter().zip(&arg[pl * l..][..l]) {
            d[a as usize] += go;
        }
    })
}

/// The window of average-pooling output `o` along one dimension:
/// `(first, end)` clipped to the input, and its size clipped to the padded input.
fn avg_window(o: usize, k: usize, s: usize, p: usize, size: usize) -> (usize, usize, usize) {
    let start = (o * s) as isize - p as isize;
    let end = (start + k as isize).min((size + p) as isize);
    let padded = (end - start) as usize;
    (start.max(0) as usize, end.min(size as isize).max(0) as usize, padded)
}

/// Average pooling: `x: [N·C, H, W]` → `[N·C, OH, OW]` (dilation must be 1).
pub fn avg_pool2d(x: &[f32], g: &PoolGeometry, count_include_pad: bool) -> Vec<f32> {
    let (oh, ow) = g.output().expect("avg_pool2d: window larger than padded input");
    let (hw, l) = (g.h * g.w, oh * ow);
    let mut out = vec![0.0f32; g.planes * l];
    if l == 0 {
        return out;
    }
    out.par_chunks_mut(l).enumerate().for_each(|(pl, o)| {
        let plane = &x[pl * hw..][..hw];
        for y in 0..oh {
            let (y0, y1, py) = avg_window(y, g.kernel.0, g.stride.0, g.padding.0, g.h);
            for xo in 0..ow {
                let (x0, x1, px) = avg_window(xo, g.kernel.1, g.stride.1, g.padding.1, g.w);
                let mut sum = 0.0;
                for iy in y0..y1 {
                    sum += plane[iy * g.w + x0..iy * g.w + x1].iter().sum::<f32>();
                }
                let count = if count_include_pad { py * px } else { (y1 - y0) * (x1 - x0) };
                o[y * ow + xo] = sum / count as f32;
            }
        }
    });
    out
}

/// Backward of [`avg_pool2d`]: each output's gradient spreads evenly over its window.
pub fn avg_pool2d_backward(gout: &[f32], g: &PoolGeometry, count_include_pad: bool) -> Vec<f32> {
    let (oh, ow) = g.output().expect("avg_pool2d_backward: bad geometry");
    let (hw, l) = (g.h * g.w, oh * ow);
    if l == 0 || hw == 0 {
        return vec![0.0f32; g.planes * hw];
    }
    filled(g.planes * hw, hw, |pl, d| {
        let go = &gout[pl * l..][..l];
        for y in 0..oh {
            let (y0, y1, py) = avg_window(y, g.kernel.0, g.stride.0, g.padding.0, g.h);
            for xo in 0..ow {
                let (x0, x1, px) = avg_window(xo, g.kernel.1, g.stride.1, g.padding.1, g.w);
                let count = if count_include_pad { py * px } else { (y1 - y0) * (x1 - x0) };
                let share = go[y * ow + xo] / count as f32;
                for iy in y0..y1 {
                    d[iy * g.w + x0..iy * g.w + x1].iter_mut().for_each(|v| *v += share);
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `planes` planes of `h × w`, square windows of `k` at stride `s` with padding `p`.
    fn window(planes: usize, (h, w): (usize, usize), k: usize, s: usize, p: usize) -> PoolGeometry {
        PoolGeometry {
            planes,
            h,
            w,
            kernel: (k, k),
            stride: (s, s),
            padding: (p, p),
            dilation: (1, 1),
            ceil_mode: false,
        }
    }

    #[test]
    fn output_sizes_follow_pytorch() {
        // torch: MaxPool2d(2)(zeros(1,1,5,5)).shape[-1] == 2; with ceil_mode=True, 3.
        assert_eq!(pool_output_size(5, 2, 2, 0, 1, false), Some(2));
        assert_eq!(pool_output_size(5, 2, 2, 0, 1, true), Some(3));
        // ceil_mode must not start a window in the right padding: I=4, k=2, s=2, p=1 → 3.
        assert_eq!(pool_output_size(4, 2, 2, 1, 1, true), Some(3));
        assert_eq!(pool_output_size(2, 3, 1, 0, 1, false), None);
    }

    #[test]
    fn max_pool_ties_go_to_the_first_and_overlaps_add() {
        // One 3×3 plane of ones, window 2, stride 1: every window ties; the first
        // element of each window wins, and the centre is first of window (1,1) only.
        let g = window(1, (3, 3), 2, 1, 0);
        let (out, arg) = max_pool2d(&[1.0; 9], &g, true);
        assert_eq!(out, vec![1.0; 4]);
        assert_eq!(arg, vec![0, 1, 3, 4]);
        let dx = max_pool2d_backward(&[1.0, 2.0, 3.0, 4.0], &arg, &g);
        assert_eq!(dx, vec![1.0, 2.0, 0.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn the_2x2_path_equals_the_general_loop() {
        // Odd sizes (a row and a column left over), rows of whole and partial
        // blocks of vector lanes (LeNet-5's 14 and 5), small integers for ties, NaNs.
        for (h, w) in [(9, 7), (9, 37), (6, 16), (28, 28), (10, 11)] {
            let g = window(3, (h, w), 2, 2, 0);
            let mut rng = crate::Rng::new(0);
            let x: Vec<f32> = (0..3 * h * w)
                .map(|i| if i % 17 == 5 { f32::NAN } else { (rng.uniform(0.0, 4.0) as i32) as f32 - 2.0 })
                .collect();
            for want_argmax in [true, false] {
                let (fast, fast_arg) = max_pool_2x2(&x, &g, want_argmax);
                let (slow, slow_arg) = max_pool_any(&x, &g, want_argmax);
                assert_eq!(fast.len(), 3 * (h / 2) * (w / 2));
                assert!(fast.iter().zip(&slow).all(|(a, b)| a.to_bits() == b.to_bits()), "{fast:?} vs {slow:?}");
                assert_eq!(fast_arg, slow_arg);
            }
            assert!(max_pool_2x2(&x, &g, false).0.iter().any(|v| v.is_nan()), "some window holds a NaN");
        }
    }

    /// Naive twin of average pooling: every window cell checked against the bounds.
    #[test]
    fn avg_pool_matches_hand_computation_with_padding() {
        // 2×2 plane [[1,2],[3,4]], k=2, s=2, p=1: windows hold one pixel each.
        let g = window(1, (2, 2), 2, 2, 1);
        assert_eq!(avg_pool2d(&[1.0, 2.0, 3.0, 4.0], &g, true), vec![0.25, 0.5, 0.75, 1.0]);
        assert_eq!(avg_pool2d(&[1.0, 2.0, 3.0, 4.0], &g, false), vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(avg_pool2d_backward(&[4.0; 4], &g, true), vec![1.0; 4]);
    }
}
