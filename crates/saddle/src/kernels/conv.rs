//! im2col and col2im: convolution as one GEMM; [`Direct`] (`conv/direct.rs`):
//! convolution as direct sums, for layers of few output channels.
//!
//! Letters: N batch, C input channels, H, W input height and width, OC output
//! channels, KH, KW kernel size, OH, OW output size, L = OH·OW, G groups.
//!
//! `cols: [C·KH·KW, N·L]`, row `(c, kh, kw)`, column `(n, oh, ow)`:
//! `cols[(c·KH + kh)·KW + kw, n·L + oh·OW + ow] = x[n, c, oh·sh − ph + kh·dh, ow·sw − pw + kw·dw]`
//! (zero outside the image). Because a group's input channels are contiguous,
//! group `g` owns the row block `[g·Cg·KH·KW, (g+1)·Cg·KH·KW)`, and
//! `out_g = W_g · cols_g: [OC/G, N·L]`.
//!
//! They run in the calling thread on a few images at a time, into buffers
//! the caller keeps: the convolution runs them in parallel over images.
//!
//! Uses: nothing.

use super::lanes::{as_unwritten, deinterleave, Lanes, LANES};
use super::tap_outputs;
use std::mem::MaybeUninit;

mod direct;
pub use direct::Direct;

/// The sizes of one 2-D convolution. Pairs are `(height, width)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Batch size N.
    pub n: usize,
    /// Input channels C.
    pub c: usize,
    /// Input height and width.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Kernel size (KH, KW).
    pub kernel: (usize, usize),
    /// Stride.
    pub stride: (usize, usize),
    /// Zero padding on each side.
    pub padding: (usize, usize),
    /// Spacing between kernel taps.
    pub dilation: (usize, usize),
}

impl ConvGeometry {
    /// Output size `(OH, OW)`: `⌊(H + 2p − d·(k − 1) − 1) / s⌋ + 1`, or `None` if
    /// the dilated kernel does not fit in the padded input.
    pub fn output(&self) -> Option<(usize, usize)> {
        let out = |i: usize, k: usize, s: usize, p: usize, d: usize| {
            let span = d * (k - 1) + 1;
            (i + 2 * p >= span).then(|| (i + 2 * p - span) / s + 1)
        };
        Some((
            out(self.h, self.kernel.0, self.stride.0, self.padding.0, self.dilation.0)?,
            out(self.w, self.kernel.1, self.stride.1, self.padding.1, self.dilation.1)?,
        ))
    }
    /// Rows of `cols`: C·KH·KW.
    pub fn rows(&self) -> usize {
        self.c * self.kernel.0 * self.kernel.1
    }
}

/// `x: [N, C, H, W]` → `cols: [C·KH·KW, N·OH·OW]`, every entry written
/// (zeros where a tap falls in the padding), so `cols` may hold anything before.
pub fn im2col(x: &[f32], g: &ConvGeometry, cols: &mut [f32]) {
    let (oh, ow) = g.output().expect("im2col: kernel larger than padded input");
    let (kh, kw) = g.kernel;
    let (sy, sx) = g.stride;
    let l = oh * ow;
    let ncols = g.n * l;
    assert_eq!(cols.len(), g.rows() * ncols, "im2col: cols has the wrong size");
    if ncols == 0 {
        return;
    }
    cols.chunks_exact_mut(ncols).enumerate().for_each(|(row, dst)| {
        let (c, ki, kj) = (row / (kh * kw), (row / kw) % kh, row % kw);
        let (y0, y1, offy) = tap_outputs(oh, ki, sy, g.padding.0, g.dilation.0, g.h);
        let (x0, x1, offx) = tap_outputs(ow, kj, sx, g.padding.1, g.dilation.1, g.w);
        for n in 0..g.n {
            let plane = &x[(n * g.c + c) * g.h * g.w..][..g.h * g.w];
            let image = &mut dst[n * l..][..l];
            if y0 == y1 || x0 == x1 {
                zero(image);
                continue;
            }
            // Rows of a few dozen values: two shapes, common in small networks,
            // are copied without a call or a masked store per row (a quarter
            // of a LeNet-5 step went to im2col row by row).
            if sx == 1 && sy == 1 && ow == g.w {
                // A convolution that keeps the width: rows y0..y1 read
                // consecutive input rows, so one run; then zeros where it
                // crossed the padding: one seam between two rows, the right
                // padding of one and the left of the next.
                let start = ((y0 as isize + offy) * g.w as isize + x0 as isize + offx) as usize;
                let (first, last) = (y0 * ow + x0, (y1 - 1) * ow + x1);
                copy(&plane[start..start + last - first], &mut image[first..last]);
                zero(&mut image[..first]);
                zero(&mut image[last..]);
                for y in y0 + 1..y1 {
                    zero(&mut image[(y - 1) * ow + x1..y * ow + x0]);
                }
                continue;
            }
            zero(&mut image[..y0 * ow]);
            zero(&mut image[y1 * ow..]);
            if sx == 1 && x0 == 0 && x1 == ow {
                // A tap inside the image across its width: whole rows, each
                // in full vectors where the last may run into the next row
                // (written after it) but not past `y1`.
                let src = &plane[(y0 as isize * sy as isize + offy) as usize * g.w + offx as usize..];
                let rows = &mut image[y0 * ow..y1 * ow];
                for y in 0..y1 - y0 {
                    for i in (0..ow).step_by(LANES) {
                        Lanes::load(&src[y * sy * g.w + i..]).store(&mut rows[y * ow + i..]);
                    }
                }
                continue;
            }
            for y in y0..y1 {
                let src = &plane[(y as isize * sy as isize + offy) as usize * g.w..][..g.w];
                let out = &mut image[y * ow..][..ow];
                zero(&mut out[..x0]);
                zero(&mut out[x1..]);
                let out = &mut out[x0..x1];
                let first = (x0 as isize * sx as isize + offx) as usize;
                if sx == 1 {
                    copy(&src[first..first + out.len()], out);
                } else if sx == 2 {
                    // LANES taps from the evens of 2·LANES pixels (one at a
                    // time, a stride-2 convolution's im2col ran at 5 GB/s).
                    for (i, out) in out.chunks_mut(LANES).enumerate() {
                        let pixels = &src[first + 2 * LANES * i..];
                        let (evens, _) =
                            deinterleave(Lanes::load(pixels), Lanes::load(&pixels[LANES.min(pixels.len())..]));
                        evens.store(out);
                    }
                } else {
                    out.iter_mut().enumerate().for_each(|(i, v)| *v = src[first + i * sx]);
                }
            }
        }
    });
}

/// `dst ← src`, a vector at a time (`copy_from_slice` calls `memcpy`).
#[inline(always)]
fn copy(src: &[f32], dst: &mut [f32]) {
    write(src, as_unwritten(dst));
}

/// [`copy`] into memory not yet written.
#[inline(always)]
fn write(src: &[f32], dst: &mut [MaybeUninit<f32>]) {
    dst.chunks_mut(LANES).zip(src.chunks(LANES)).for_each(|(d, s)| Lanes::load(s).write(d));
}

/// `dst ← 0`, a vector at a time (`fill` calls `memset`).
#[inline(always)]
fn zero(dst: &mut [f32]) {
    dst.chunks_mut(LANES).for_each(|d| Lanes::zero().store(d));
}

/// The adjoint of [`im2col`]: `dx += col2im(dcols)` for `dcols: [C·KH·KW,
/// N·OH·OW]` and `dx: [N, C, H, W]`, summing every column entry back into the
/// pixel it was read from.
pub fn col2im(dcols: &[f32], g: &ConvGeometry, dx: &mut [f32]) {
    let (oh, ow) = g.output().expect("col2im: kernel larger than padded input");
    let (kh, kw) = g.kernel;
    let (sy, sx) = g.stride;
    let l = oh * ow;
    let ncols = g.n * l;
    assert_eq!(dx.len(), g.n * g.c * g.h * g.w, "col2im: dx has the wrong size");
    if dx.is_empty() || ncols == 0 {
        return;
    }
    dx.chunks_exact_mut(g.h * g.w).enumerate().for_each(|(nc, plane)| {
        let (n, c) = (nc / g.c, nc % g.c);
        for ki in 0..kh {
            let (y0, y1, offy) = tap_outputs(oh, ki, sy, g.padding.0, g.dilation.0, g.h);
            for kj in 0..kw {
                let (x0, x1, offx) = tap_outputs(ow, kj, sx, g.padding.1, g.dilation.1, g.w);
                let src = &dcols[((c * kh + ki) * kw + kj) * ncols + n * l..][..l];
                for y in y0..y1 {
                    let row = &mut plane[(y as isize * sy as isize + offy) as usize * g.w..][..g.w];
                    let first = (x0 as isize * sx as isize + offx) as usize;
                    let s = &src[y * ow + x0..y * ow + x1];
                    if sx == 1 {
                        row[first..first + s.len()].iter_mut().zip(s).for_each(|(d, v)| *d += v);
                    } else {
                        s.iter().enumerate().for_each(|(i, v)| row[first + i * sx] += v);
                    }
                }
            }
        }
    });
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::kernels::gemm::{sgemm, Accumulate, Dims, Operand};

    /// Naive twin: direct convolution of `x: [N, C, H, W]` with `w: [OC, C/G, KH, KW]`.
    pub(crate) fn conv_direct(x: &[f32], w: &[f32], g: &ConvGeometry, oc: usize, groups: usize) -> Vec<f32> {
        let (oh, ow) = g.output().unwrap();
        let (cg, ocg) = (g.c / groups, oc / groups);
        let mut out = vec![0.0; g.n * oc * oh * ow];
        for n in 0..g.n {
            for o in 0..oc {
                let grp = o / ocg;
                for y in 0..oh {
                    for xo in 0..ow {
                        let mut acc = 0.0;
                        for c in 0..cg {
                            for ki in 0..g.kernel.0 {
                                for kj in 0..g.kernel.1 {
                                    let iy = (y * g.stride.0 + ki * g.dilation.0) as isize - g.padding.0 as isize;
                                    let ix = (xo * g.stride.1 + kj * g.dilation.1) as isize - g.padding.1 as isize;
                                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                        continue;
                                    }
                                    let xc = grp * cg + c;
                                    acc += x[((n * g.c + xc) * g.h + iy as usize) * g.w + ix as usize]
                                        * w[((o * cg + c) * g.kernel.0 + ki) * g.kernel.1 + kj];
                                }
                            }
                        }
                        out[((n * oc + o) * oh + y) * ow + xo] = acc;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn im2col_gemm_matches_direct_convolution() {
        let g =
            ConvGeometry { n: 2, c: 4, h: 7, w: 6, kernel: (3, 2), stride: (2, 1), padding: (1, 2), dilation: (2, 1) };
        let (groups, oc) = (2, 6);
        let x: Vec<f32> = (0..2 * 4 * 7 * 6).map(|i| ((i * 37 % 17) as f32 - 8.0) / 8.0).collect();
        let w: Vec<f32> = (0..oc * 2 * 3 * 2).map(|i| ((i * 13 % 11) as f32 - 5.0) / 5.0).collect();
        let (oh, ow) = g.output().unwrap();
        let ncols = g.n * oh * ow;
        let mut cols = vec![f32::NAN; g.rows() * ncols]; // every entry must be written
        im2col(&x, &g, &mut cols);
        let (kk, ocg) = (2 * 3 * 2, oc / groups);
        let mut out_cm = vec![0.0; oc * ncols]; // [OC, N·L]
        for grp in 0..groups {
            sgemm(
                Dims { m: ocg, n: ncols, k: kk },
                Operand::Stored(&w[grp * ocg * kk..][..ocg * kk]),
                Operand::Stored(&cols[grp * kk * ncols..][..kk * ncols]),
                &mut out_cm[grp * ocg * ncols..][..ocg * ncols],
                Accumulate::Overwrite,
            );
        }
        let direct = conv_direct(&x, &w, &g, oc, groups);
        let l = oh * ow;
        for n in 0..g.n {
            for o in 0..oc {
                for p in 0..l {
                    let a = out_cm[o * ncols + n * l + p];
                    let b = direct[(n * oc + o) * l + p];
                    assert!((a - b).abs() < 1e-5, "n={n} o={o} p={p}: {a} vs {b}");
                }
            }
        }
    }

    /// Where tap `(c, ki, kj)` of output `(n, y, x)` reads, if inside the image.
    pub(crate) fn source(
        g: &ConvGeometry,
        (n, c, ki, kj): (usize, usize, usize, usize),
        (y, x): (usize, usize),
    ) -> Option<usize> {
        let py = (y * g.stride.0 + ki * g.dilation.0).checked_sub(g.padding.0).filter(|&p| p < g.h)?;
        let px = (x * g.stride.1 + kj * g.dilation.1).checked_sub(g.padding.1).filter(|&p| p < g.w)?;
        Some(((n * g.c + c) * g.h + py) * g.w + px)
    }

    #[test]
    fn rows_match_their_formula_bit_for_bit() {
        // Each way im2col moves a row: stride-2 taps a vector at a time
        // (widths with and without a partial vector at the end, a dilation);
        // stride 1 keeping the width (one run per image, padding zeroed
        // after); taps inside the width (whole rows, the last vector running
        // on), also every other row; stride 1 changing the width, row by
        // row; other strides, one value at a time.
        for (w, kernel, stride, padding, dilation) in [
            (37, (3, 3), (2, 2), (1, 1), (1, 1)),
            (32, (3, 3), (2, 2), (1, 1), (1, 1)),
            (9, (2, 3), (2, 2), (1, 1), (2, 2)),
            (40, (1, 1), (2, 2), (1, 1), (1, 1)),
            (28, (5, 5), (1, 1), (2, 2), (1, 1)),
            (11, (3, 3), (1, 1), (2, 2), (2, 2)),
            (14, (5, 5), (1, 1), (0, 0), (1, 1)),
            (19, (3, 2), (2, 1), (1, 0), (1, 1)),
            (10, (2, 2), (1, 1), (1, 1), (1, 1)),
            (12, (3, 3), (1, 3), (1, 1), (1, 1)),
        ] {
            let g = ConvGeometry { n: 2, c: 3, h: 6, w, kernel, stride, padding, dilation };
            let (oh, ow) = g.output().unwrap();
            let ncols = g.n * oh * ow;
            let x: Vec<f32> = (0..g.n * g.c * g.h * w).map(|i| (i as f32 * 0.37).sin()).collect();
            let mut cols = vec![f32::NAN; g.rows() * ncols];
            im2col(&x, &g, &mut cols);
            let dcols: Vec<f32> = (0..cols.len()).map(|i| (i as f32 * 0.11).cos()).collect();
            // col2im adds to what dx holds.
            let mut dx: Vec<f32> = (0..x.len()).map(|i| (i as f32 * 0.7).cos()).collect();
            let mut expect = dx.clone();
            col2im(&dcols, &g, &mut dx);
            for n in 0..g.n {
                for c in 0..g.c {
                    for (ki, kj) in (0..kernel.0).flat_map(|ki| (0..kernel.1).map(move |kj| (ki, kj))) {
                        let row = (c * kernel.0 + ki) * kernel.1 + kj;
                        for (y, xo) in (0..oh).flat_map(|y| (0..ow).map(move |xo| (y, xo))) {
                            let at = row * ncols + (n * oh + y) * ow + xo;
                            let read = source(&g, (n, c, ki, kj), (y, xo));
                            assert_eq!(
                                cols[at].to_bits(),
                                read.map_or(0.0, |i| x[i]).to_bits(),
                                "im2col w={w} at {at}"
                            );
                            if let Some(i) = read {
                                expect[i] += dcols[at];
                            }
                        }
                    }
                }
            }
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&dx), bits(&expect), "col2im w={w}");
        }
    }

    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        // <im2col(x), y> = <x, col2im(y)> for all x, y; and each pixel's sum
        // is its taps' values in tap order, bit for bit: stride 2 with
        // dilation, and stride 1 with and without it.
        for g in [
            ConvGeometry { n: 2, c: 3, h: 5, w: 6, kernel: (3, 3), stride: (2, 2), padding: (1, 1), dilation: (1, 2) },
            ConvGeometry { n: 2, c: 2, h: 6, w: 13, kernel: (3, 5), stride: (1, 1), padding: (1, 2), dilation: (1, 1) },
            ConvGeometry { n: 1, c: 2, h: 7, w: 11, kernel: (2, 3), stride: (1, 1), padding: (0, 0), dilation: (2, 1) },
        ] {
            let x: Vec<f32> = (0..g.n * g.c * g.h * g.w).map(|i| (i as f32 * 0.37).sin()).collect();
            let (oh, ow) = g.output().unwrap();
            let mut cols = vec![f32::NAN; g.rows() * g.n * oh * ow];
            im2col(&x, &g, &mut cols);
            let y: Vec<f32> = (0..cols.len()).map(|i| (i as f32 * 0.11).cos()).collect();
            let lhs: f64 = cols.iter().zip(&y).map(|(a, b)| (*a as f64) * (*b as f64)).sum();
            let mut back = vec![0.0; x.len()];
            col2im(&y, &g, &mut back);
            let rhs: f64 = x.iter().zip(&back).map(|(a, b)| (*a as f64) * (*b as f64)).sum();
            assert!((lhs - rhs).abs() < 1e-4, "{g:?}: {lhs} vs {rhs}");
            // Each entry of `y` in order, into the pixel its column read.
            let (mut naive, l, (kh, kw)) = (vec![0.0f32; x.len()], oh * ow, g.kernel);
            for (k, v) in y.iter().enumerate() {
                let (row, col) = (k / (g.n * l), k % (g.n * l));
                if let Some(at) =
                    source(&g, (col / l, row / (kh * kw), row / kw % kh, row % kw), (col % l / ow, col % ow))
                {
                    naive[at] += v;
                }
            }
            assert!(back.iter().zip(&naive).all(|(a, b)| a.to_bits() == b.to_bits()), "{g:?}: tap order");
        }
    }
}
