//! [`Direct`]: a convolution of stride 1 as direct sums, forward and
//! weight gradient, in its wide form or by positions.
//!
//! Letters as in `kernels::conv`: C input channels, H, W input size, OC
//! output channels, KH, KW kernel size, OH, OW output size, L = OH·OW;
//! `Hp`, `Wp` the padded size.
//!
//! Uses: `kernels::lanes`.

use super::{copy, write, ConvGeometry};
use crate::kernels::lanes::{as_unwritten, transpose, Lanes, LANES};
use std::mem::MaybeUninit;

/// Output channels that [`Direct`] computes together, and vectors of
/// positions: 12 accumulators, 3 input vectors and a broadcast weight fill
/// 16 registers (AVX2's `ymm`, or half of AVX-512's `zmm`).
const DIRECT_CHANNELS: usize = 4;
const DIRECT_VECTORS: usize = 3;
/// The wide output's length is a multiple of this: whole runs of 3 vectors
/// of 16 positions (AVX-512), or of two runs of 3 vectors of 8 (AVX2).
const DIRECT_RUN: usize = 16 * DIRECT_VECTORS;
/// Output channels side by side in the other form of [`Direct`], with
/// channels in the lanes: two vectors of 8 (AVX2) or one of 16 (AVX-512).
const POSITION_CHANNELS: usize = 16;

/// A convolution computed directly, one image at a time, for stride 1
/// without dilation or groups: `x: [C, H, W]`, `w: [OC, C, KH, KW]` →
/// `y: [OC, OH·OW]`,
///
/// `y[o, i·OW + j] = Σ_{c, p, q} w[o, c, p, q] · x[c, i − ph + p, j − pw + q]`
///
/// (zero outside the image), each term added in the order `(c, p, q)` with
/// one rounding (a fused multiply-add). Where there are few output channels
/// (LeNet-5's 6 and 16), this beats im2col and a GEMM, whose copy of the
/// image `C·KH·KW` times over, and the GEMM's packing of that copy, cost more
/// than the products.
///
/// Each image is copied into planes `Hp × Wp` with the padding in place
/// (`Hp = H + 2ph`, `Wp = W + 2pw`). In a padded plane, tap `(p, q)` of output
/// row `i` reads from `(i + p)·Wp + q` on. The sums then run in one of two
/// forms, whichever computes fewer products:
///
/// - **wide**: over a "wide" output of `OH` rows of `Wp` positions, of which
///   the first `OW` of each row are kept, each tap reads one contiguous run,
///   so the positions fill the vectors (16 where the processor has AVX-512,
///   checked at run time, else 8) and four channels' weights are broadcast.
///   The `KW − 1` extra positions of each row are wasted work: 4 of every
///   32 for a 28-wide output and 5×5 filters, 4 of every 14 for a 10-wide one.
/// - **by positions**: 16 channels fill the vectors (zero weights past `OC`)
///   and each of 6 (AVX2) or 12 (AVX-512) output positions has its input
///   broadcast, so only the kept positions are computed; their sums are
///   turned back to `[OC, L]` eight by eight.
///
/// Each position's sum is the same operations in the same order in either
/// form and either width, so the bits depend on neither the processor nor
/// the form.
///
/// ```
/// use saddle::kernels::conv::{ConvGeometry, Direct};
/// // A 3×3 image 1…9 and a 2×2 filter [[1, 0], [0, 1]]: y[i, j] = x[i, j] + x[i + 1, j + 1].
/// let g = ConvGeometry { n: 1, c: 1, h: 3, w: 3, kernel: (2, 2), stride: (1, 1), padding: (0, 0), dilation: (1, 1) };
/// let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
/// let direct = Direct::new(&g, &[1.0, 0.0, 0.0, 1.0], 1);
/// let (mut padded, mut wide, mut y) = (Vec::new(), Vec::new(), vec![0.0; 4]);
/// direct.forward(&x, &mut padded, &mut wide, &mut y);
/// assert_eq!(y, [6.0, 8.0, 12.0, 14.0]);
/// ```
pub struct Direct {
    g: ConvGeometry,
    oc: usize,
    /// Where each of the `C·KH·KW` terms reads in the padded planes,
    /// relative to the output position.
    taps: Vec<usize>,
    /// The weights by blocks of [`DIRECT_CHANNELS`] output channels (wide)
    /// or of [`POSITION_CHANNELS`] (by positions), each block's `[C·KH·KW,
    /// channels]`: a term's weights side by side.
    w: Vec<f32>,
    /// By positions: where each output position `i·OW + j` reads its first
    /// term in the padded planes, `i·Wp + j`. Empty for the wide form.
    starts: Vec<usize>,
}

impl Direct {
    /// The convolution of `g` (its batch size unused) by `w: [OC, C, KH, KW]`.
    pub fn new(g: &ConvGeometry, w: &[f32], oc: usize) -> Self {
        let (oh, ow) = g.output().expect("Direct: kernel larger than padded input");
        let wide = oc * (oh * (g.w + 2 * g.padding.1)).next_multiple_of(DIRECT_RUN);
        Self::in_form(g, w, oc, oc.next_multiple_of(POSITION_CHANNELS) * oh * ow < wide)
    }

    /// [`Direct::new`] in the form chosen: by positions or wide.
    fn in_form(g: &ConvGeometry, w: &[f32], oc: usize, by_positions: bool) -> Self {
        assert!(g.stride == (1, 1) && g.dilation == (1, 1), "Direct: stride and dilation 1 only");
        let (oh, ow) = g.output().expect("Direct: kernel larger than padded input");
        let ((kh, kw), (hp, wp)) = (g.kernel, (g.h + 2 * g.padding.0, g.w + 2 * g.padding.1));
        let taps = (0..g.c).flat_map(|c| (0..kh).flat_map(move |p| (0..kw).map(move |q| (c * hp + p) * wp + q)));
        let taps: Vec<usize> = taps.collect();
        let rows = taps.len();
        let block = if by_positions { POSITION_CHANNELS } else { DIRECT_CHANNELS };
        let mut blocks = Vec::with_capacity(oc.next_multiple_of(block) * rows);
        for o in (0..oc).step_by(block) {
            let (channels, w) = ((oc - o).min(block), &w[o * rows..]);
            let width = if by_positions { block } else { channels };
            blocks.extend(
                (0..rows).flat_map(|r| (0..width).map(move |b| if b < channels { w[b * rows + r] } else { 0.0 })),
            );
        }
        let starts =
            if by_positions { (0..oh).flat_map(|i| (0..ow).map(move |j| i * wp + j)).collect() } else { Vec::new() };
        Direct { g: *g, oc, taps, w: blocks, starts }
    }

    /// `y ← conv(x)` for one image; `padded` and `wide` are scratch, grown as
    /// needed, and `y` may hold anything before.
    pub fn forward(&self, x: &[f32], padded: &mut Vec<f32>, wide: &mut Vec<f32>, y: &mut [f32]) {
        self.write(x, padded, wide, as_unwritten(y));
    }

    /// [`Direct::forward`] into `y` not yet written: every value of `y`
    /// is written (the sums are made in `wide`, then copied or transposed
    /// into `y`), so the caller need not zero it first.
    pub(crate) fn write(&self, x: &[f32], padded: &mut Vec<f32>, wide: &mut Vec<f32>, y: &mut [MaybeUninit<f32>]) {
        let (oh, ow) = self.g.output().expect("checked in new");
        let (wp, span) = (self.g.w + 2 * self.g.padding.1, self.span());
        self.pad(x, padded);
        let len = self.sums_len();
        if wide.len() < len {
            wide.resize(len, 0.0);
        }
        let wide = &mut wide[..len];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            #[target_feature(enable = "avx512f")]
            fn sums16(d: &Direct, padded: &[f32], span: usize, wide: &mut [f32]) {
                d.sums::<16>(padded, span, wide)
            }
            // SAFETY: the processor has the feature `sums16` is compiled for.
            unsafe { sums16(self, padded, span, wide) };
        } else {
            self.sums::<8>(padded, span, wide);
        }
        #[cfg(not(target_arch = "x86_64"))]
        self.sums::<8>(padded, span, wide);
        if self.starts.is_empty() {
            for (dst, src) in y.chunks_exact_mut(oh * ow).zip(wide.chunks_exact(span)) {
                for (d, s) in dst.chunks_exact_mut(ow).zip(src.chunks(wp)) {
                    write(&s[..ow], d);
                }
            }
        } else {
            self.to_channels(wide, y);
        }
    }

    /// `x: [C, H, W]` into `padded`: planes `Hp × Wp` with zeros around the
    /// image, then zeros as far as the last run of the wide output reads
    /// (`span − OH·Wp + KW − 1` past the last plane) and a vector more.
    fn pad(&self, x: &[f32], padded: &mut Vec<f32>) {
        let (g, (oh, _)) = (&self.g, self.g.output().expect("checked in new"));
        let ((ph, pw), (hp, wp)) = (g.padding, (g.h + 2 * g.padding.0, g.w + 2 * g.padding.1));
        padded.clear();
        padded.resize(g.c * hp * wp + (oh * wp).next_multiple_of(DIRECT_RUN) - oh * wp + g.kernel.1 + LANES, 0.0);
        for (c, src) in x.chunks_exact(g.h * g.w).enumerate() {
            for (r, row) in src.chunks_exact(g.w).enumerate() {
                copy(row, &mut padded[(c * hp + r + ph) * wp + pw..][..g.w]);
            }
        }
    }

    /// `dw += ∂L/∂w` for one image: `x: [C, H, W]`, `dy = ∂L/∂y: [OC, L]`,
    /// `dw: [OC, C·KH·KW]`,
    ///
    /// `dw[o, (c, p, q)] += Σ_{i, j} dy[o, i·OW + j] · x[c, i − ph + p, j − pw + q]`,
    ///
    /// the correlation of the image with the output's gradient, without
    /// im2col's copy of the image `C·KH·KW` times over, in the form of the
    /// forward pass:
    ///
    /// - **wide**: `dy` is laid out wide (each row `Wp` long, zero past
    ///   `OW`), so each term reads one contiguous run of the padded planes;
    ///   three channels and four terms at a time, in eight lanes of partial
    ///   sums over positions, added lane 0 to 7 at the end.
    /// - **by positions**: `dy` turned to `[L, 16]`, 16 channels in the
    ///   lanes and six terms at a time, each position's input broadcast;
    ///   each sum runs over the positions in order.
    ///
    /// Eight lanes on every processor, so the bits do not depend on it.
    /// `padded` and `wide` are scratch, grown as needed.
    pub fn weight_grad(&self, x: &[f32], dy: &[f32], padded: &mut Vec<f32>, wide: &mut Vec<f32>, dw: &mut [f32]) {
        self.pad(x, padded);
        if !self.starts.is_empty() {
            return self.weight_grad_by_positions(dy, padded, wide, dw);
        }
        let (oh, ow) = self.g.output().expect("checked in new");
        let (wp, rows) = (self.g.w + 2 * self.g.padding.1, self.taps.len());
        let span = (oh * wp).next_multiple_of(LANES);
        wide.clear();
        wide.resize(self.oc * span, 0.0);
        for (dst, src) in wide.chunks_exact_mut(span).zip(dy.chunks_exact(oh * ow)) {
            for (d, s) in dst.chunks_mut(wp).zip(src.chunks_exact(ow)) {
                copy(s, &mut d[..ow]);
            }
        }
        for o in (0..self.oc).step_by(GRAD_CHANNELS) {
            for r in (0..rows).step_by(GRAD_TAPS) {
                // A short last block repeats its last channel or term and keeps what is new.
                let channel = |b: usize| &wide[(o + b).min(self.oc - 1) * span..][..span];
                let tap = |t: usize| self.taps[(r + t).min(rows - 1)];
                let dys: [&[f32]; GRAD_CHANNELS] = std::array::from_fn(channel);
                let taps: [usize; GRAD_TAPS] = std::array::from_fn(tap);
                let sums = grad_block(padded, &taps, &dys, span);
                for (b, sums) in sums.iter().enumerate().take(self.oc - o) {
                    for (t, &v) in sums.iter().enumerate().take(rows - r) {
                        dw[(o + b) * rows + r + t] += v;
                    }
                }
            }
        }
    }

    /// [`Direct::weight_grad`] by positions, from the padded planes.
    fn weight_grad_by_positions(&self, dy: &[f32], padded: &[f32], by_position: &mut Vec<f32>, dw: &mut [f32]) {
        let (l, rows, oc) = (self.starts.len(), self.taps.len(), self.oc);
        let reach = self.taps.last().map_or(0, |t| t + 1);
        assert!(self.starts.last().is_none_or(|s| s + reach <= padded.len()), "weight_grad: taps past the planes");
        by_position.resize(l.next_multiple_of(LANES) * POSITION_CHANNELS, 0.0);
        for o in (0..oc).step_by(POSITION_CHANNELS) {
            // dy[o.., s] → by_position[s, 0..16], eight channels of eight positions at a time.
            for half in (0..POSITION_CHANNELS).step_by(LANES) {
                for s in (0..l).step_by(LANES) {
                    let channel = |k: usize| match o + half + k {
                        c if c < oc => Lanes::load(&dy[c * l + s..(c + 1) * l]),
                        _ => Lanes::zero(),
                    };
                    for (j, position) in transpose(std::array::from_fn(channel)).iter().enumerate() {
                        position.store(&mut by_position[(s + j) * POSITION_CHANNELS + half..][..LANES]);
                    }
                }
            }
            for r in (0..rows).step_by(POSITION_GRAD_TAPS) {
                // A short last block repeats its last term and keeps what is new.
                let taps: [usize; POSITION_GRAD_TAPS] = std::array::from_fn(|t| self.taps[(r + t).min(rows - 1)]);
                let mut acc = [[Lanes::zero(); 2]; POSITION_GRAD_TAPS];
                for (&start, dy) in self.starts.iter().zip(by_position.chunks_exact(POSITION_CHANNELS)) {
                    let dy = [Lanes::load(dy), Lanes::load(&dy[LANES..])];
                    for (acc, &tap) in acc.iter_mut().zip(&taps) {
                        // SAFETY: `starts` rise, so `start + tap ≤ starts[l − 1] + taps[last]`, checked above.
                        let x = Lanes::splat(unsafe { *padded.get_unchecked(start + tap) });
                        acc[0] = x.mul_add(dy[0], acc[0]);
                        acc[1] = x.mul_add(dy[1], acc[1]);
                    }
                }
                for (t, acc) in acc.iter().enumerate().take(rows - r) {
                    let mut sums = [0.0f32; POSITION_CHANNELS];
                    acc[0].store(&mut sums);
                    acc[1].store(&mut sums[LANES..]);
                    for (b, v) in sums.iter().enumerate().take(oc - o) {
                        dw[(o + b) * rows + r + t] += v;
                    }
                }
            }
        }
    }

    /// The length of one block's sums in `wide`: `OH·Wp` rounded up to
    /// whole runs (wide), or `L` rounded up to eight positions of
    /// [`POSITION_CHANNELS`] sums each (by positions).
    fn span(&self) -> usize {
        let (oh, ow) = self.g.output().expect("checked in new");
        if self.starts.is_empty() {
            (oh * (self.g.w + 2 * self.g.padding.1)).next_multiple_of(DIRECT_RUN)
        } else {
            (oh * ow).next_multiple_of(LANES) * POSITION_CHANNELS
        }
    }

    /// The length of all the sums: [`Direct::span`] for each channel (wide)
    /// or each block of channels (by positions).
    fn sums_len(&self) -> usize {
        self.span() * if self.starts.is_empty() { self.oc } else { self.oc.div_ceil(POSITION_CHANNELS) }
    }

    /// Every output channel's sums, in vectors of `V` lanes.
    #[inline(always)]
    fn sums<const V: usize>(&self, padded: &[f32], span: usize, wide: &mut [f32]) {
        let rows = self.taps.len();
        if !self.starts.is_empty() {
            let block = rows * POSITION_CHANNELS;
            for (w, out) in self.w.chunks_exact(block).zip(wide.chunks_exact_mut(span)) {
                match V {
                    16 => position_block::<16, 1, 12>(padded, &self.taps, w, &self.starts, out),
                    _ => position_block::<8, 2, 6>(padded, &self.taps, w, &self.starts, out),
                }
            }
            return;
        }
        for o in (0..self.oc).step_by(DIRECT_CHANNELS) {
            let block = (self.oc - o).min(DIRECT_CHANNELS);
            let (w, wide) = (&self.w[o * rows..][..block * rows], &mut wide[o * span..][..block * span]);
            match block {
                4 => direct_block::<4, V>(padded, &self.taps, w, span, wide),
                3 => direct_block::<3, V>(padded, &self.taps, w, span, wide),
                2 => direct_block::<2, V>(padded, &self.taps, w, span, wide),
                _ => direct_block::<1, V>(padded, &self.taps, w, span, wide),
            }
        }
    }

    /// By positions: `sums: [blocks, L rounded up to 8, 16]` → `y: [OC, L]`,
    /// eight positions of eight channels at a time.
    fn to_channels(&self, sums: &[f32], y: &mut [MaybeUninit<f32>]) {
        let l = self.starts.len();
        for (o, block) in (0..self.oc)
            .step_by(LANES)
            .zip(sums.chunks_exact(l.next_multiple_of(LANES) * POSITION_CHANNELS).flat_map(|b| [b, &b[LANES..]]))
        {
            for s in (0..l).step_by(LANES) {
                let rows = std::array::from_fn(|k| Lanes::load(&block[(s + k) * POSITION_CHANNELS..]));
                for (j, channel) in transpose(rows).iter().enumerate().take(self.oc - o) {
                    channel.write(&mut y[(o + j) * l + s..][..(l - s).min(LANES)]);
                }
            }
        }
    }
}

/// [`Direct`]'s sums for `B` output channels, `w: [C·KH·KW, B]`:
/// `wide[b, s] = Σ_r w[r, b] · padded[s + taps[r]]` for `s` in `0..span`, a
/// run of [`DIRECT_VECTORS`] vectors of `V` positions at a time. Written
/// over arrays for the compiler to vectorize (`V` lanes of one register
/// each), each lane is the same fused multiply-adds in the same order
/// whatever `V`, so both widths give the same bits.
#[inline(always)]
fn direct_block<const B: usize, const V: usize>(
    padded: &[f32],
    taps: &[usize],
    w: &[f32],
    span: usize,
    wide: &mut [f32],
) {
    for s in (0..span).step_by(V * DIRECT_VECTORS) {
        let mut acc = [[[0.0f32; V]; DIRECT_VECTORS]; B];
        for (&tap, wr) in taps.iter().zip(w.chunks_exact(B)) {
            let at = &padded[s + tap..][..V * DIRECT_VECTORS];
            for (acc, &wb) in acc.iter_mut().zip(wr) {
                for (acc, at) in acc.iter_mut().zip(at.chunks_exact(V)) {
                    for (a, &v) in acc.iter_mut().zip(at) {
                        *a = v.mul_add(wb, *a);
                    }
                }
            }
        }
        for (b, acc) in acc.iter().enumerate() {
            wide[b * span + s..][..V * DIRECT_VECTORS].copy_from_slice(acc.as_flattened());
        }
    }
}

/// Channels and terms of [`Direct::weight_grad`] computed together: 12
/// accumulators, 3 gradient vectors and a run of the image fill 16 registers
/// (with 4 runs of the image held at once instead, they spilled).
const GRAD_CHANNELS: usize = 3;
const GRAD_TAPS: usize = 4;
/// Terms of [`Direct::weight_grad`] by positions computed together: 6 terms
/// of 16 channels are 12 accumulators, with 2 gradient vectors and a
/// broadcast input.
const POSITION_GRAD_TAPS: usize = 6;

/// [`Direct::weight_grad`]'s sums for [`GRAD_CHANNELS`] channels' wide
/// gradients `dys` and [`GRAD_TAPS`] terms:
/// `Σ_s dys[b][s] · padded[s + taps[t]]` over `s` in `0..span`, in
/// [`LANES`] partial sums (position `s` in lane `s mod 8`) added in lane order.
#[inline(always)]
fn grad_block(
    padded: &[f32],
    taps: &[usize; GRAD_TAPS],
    dys: &[&[f32]; GRAD_CHANNELS],
    span: usize,
) -> [[f32; GRAD_TAPS]; GRAD_CHANNELS] {
    let mut acc = [[Lanes::zero(); GRAD_TAPS]; GRAD_CHANNELS];
    for s in (0..span).step_by(LANES) {
        let dy: [Lanes; GRAD_CHANNELS] = std::array::from_fn(|b| Lanes::load(&dys[b][s..][..LANES]));
        for (t, &tap) in taps.iter().enumerate() {
            let x = Lanes::load(&padded[s + tap..][..LANES]);
            for (acc, dy) in acc.iter_mut().zip(&dy) {
                acc[t] = dy.mul_add(x, acc[t]);
            }
        }
    }
    acc.map(|acc| {
        acc.map(|a| {
            let mut lanes = [0.0f32; LANES];
            a.store(&mut lanes);
            lanes.iter().sum()
        })
    })
}

/// [`Direct`]'s sums by positions for one block of `V·VECS` (=
/// [`POSITION_CHANNELS`]) channels, `w: [C·KH·KW, V·VECS]`:
/// `out[s, b] = Σ_r w[r, b] · padded[starts[s] + taps[r]]`, `P` positions at
/// a time (a short last run repeats the last position and keeps what is
/// new). `out` holds `L` rounded up to eight positions; those past `L` are
/// left as they were.
#[inline(always)]
fn position_block<const V: usize, const VECS: usize, const P: usize>(
    padded: &[f32],
    taps: &[usize],
    w: &[f32],
    starts: &[usize],
    out: &mut [f32],
) {
    let (l, reach) = (starts.len(), taps.last().map_or(0, |t| t + 1));
    assert!(starts.last().is_none_or(|s| s + reach <= padded.len()), "position_block: taps past the planes");
    for s in (0..l).step_by(P) {
        let at: [usize; P] = std::array::from_fn(|k| starts[(s + k).min(l - 1)]);
        let mut acc = [[[0.0f32; V]; VECS]; P];
        for (&tap, wr) in taps.iter().zip(w.chunks_exact(V * VECS)) {
            for (acc, &a) in acc.iter_mut().zip(&at) {
                // SAFETY: `starts` rise, so `a + tap ≤ starts[l − 1] + taps[last]`, checked above.
                let x = unsafe { *padded.get_unchecked(a + tap) };
                for (acc, wv) in acc.iter_mut().zip(wr.chunks_exact(V)) {
                    for (a, &wb) in acc.iter_mut().zip(wv) {
                        *a = x.mul_add(wb, *a);
                    }
                }
            }
        }
        for (k, acc) in acc.iter().enumerate().take(l - s) {
            out[(s + k) * V * VECS..][..V * VECS].copy_from_slice(acc.as_flattened());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::conv::tests::{conv_direct, source};

    /// [`Direct`]'s test shapes, one image each, with their output channels:
    /// padded and not, a rectangular kernel, 1×1 outputs, and 1 to 20
    /// output channels, so both forms see every block of channels with its
    /// remainder (4 at a time wide, 16 by positions) and short last runs.
    fn direct_shapes() -> impl Iterator<Item = (ConvGeometry, usize)> {
        [
            (1, 9, 11, (5, 5), (2, 2), 6),
            (3, 7, 6, (3, 2), (1, 0), 7),
            (2, 5, 5, (5, 5), (0, 0), 1),
            (6, 14, 14, (5, 5), (0, 0), 16),
            (2, 9, 9, (7, 7), (0, 0), 20),
            (2, 4, 9, (1, 3), (0, 1), 3),
        ]
        .into_iter()
        .map(|(c, h, w, kernel, padding, oc)| {
            (ConvGeometry { n: 1, c, h, w, kernel, stride: (1, 1), padding, dilation: (1, 1) }, oc)
        })
    }

    #[test]
    fn direct_matches_the_formula_in_both_forms_for_every_block_of_channels() {
        // Runs of 6 and 12 positions by positions, with a short last one.
        let (mut padded, mut wide) = (vec![f32::NAN; 7], vec![f32::NAN; 5000]);
        for (g, oc) in direct_shapes() {
            let x: Vec<f32> = (0..g.c * g.h * g.w).map(|i| ((i * 37 % 17) as f32 - 8.0) / 8.0).collect();
            let wt: Vec<f32> = (0..oc * g.rows()).map(|i| ((i * 13 % 11) as f32 - 5.0) / 5.0).collect();
            let (oh, ow) = g.output().unwrap();
            let expected = conv_direct(&x, &wt, &g, oc, 1);
            let mut first: Option<Vec<f32>> = None;
            for by_positions in [false, true] {
                let mut y = vec![f32::NAN; oc * oh * ow]; // every entry must be written
                let direct = Direct::in_form(&g, &wt, oc, by_positions);
                direct.forward(&x, &mut padded, &mut wide, &mut y);
                for (i, (a, b)) in y.iter().zip(&expected).enumerate() {
                    assert!((a - b).abs() < 1e-5, "{g:?}, {oc} channels, output {i}: {a} vs {b}");
                }
                // The other form: the same bits.
                let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                match &first {
                    Some(f) => assert_eq!(bits(f), bits(&y), "{g:?}: wide and by positions"),
                    None => first = Some(y),
                }
                // Vectors of 8 and of 16 lanes (AVX2 and AVX-512): the same bits.
                let (mut by8, mut by16) = (vec![0.0f32; direct.sums_len()], vec![0.0f32; direct.sums_len()]);
                direct.sums::<8>(&padded, direct.span(), &mut by8);
                direct.sums::<16>(&padded, direct.span(), &mut by16);
                assert_eq!(bits(&by8), bits(&by16), "{g:?}: 8 and 16 lanes");
            }
        }
        // LeNet-5's layers: the first wide (6 channels), the second by positions (10-wide outputs).
        let lenet = |c, h, oc, padding| {
            let g = ConvGeometry { n: 1, c, h, w: h, kernel: (5, 5), stride: (1, 1), padding, dilation: (1, 1) };
            !Direct::new(&g, &vec![0.0; oc * c * 25], oc).starts.is_empty()
        };
        assert!(!lenet(1, 28, 6, (2, 2)) && lenet(6, 14, 16, (0, 0)));
    }

    #[test]
    fn weight_grad_matches_the_formula_in_both_forms() {
        // Blocks of 3 channels and 4 terms with short last ones (wide), of 6
        // terms (by positions); two images added into `dw`.
        let (mut padded, mut scratch) = (Vec::new(), vec![f32::NAN; 3]);
        for (g, oc) in direct_shapes() {
            let (c, h, w, kernel) = (g.c, g.h, g.w, g.kernel);
            let (oh, ow) = g.output().unwrap();
            let (rows, l) = (g.rows(), oh * ow);
            let xs: Vec<f32> = (0..2 * c * h * w).map(|i| ((i * 37 % 17) as f32 - 8.0) / 8.0).collect();
            let dys: Vec<f32> = (0..2 * oc * l).map(|i| ((i * 13 % 11) as f32 - 5.0) / 5.0).collect();
            let mut expected = vec![0.5f32; oc * rows];
            for (n, o, r) in (0..2).flat_map(|n| (0..oc).flat_map(move |o| (0..rows).map(move |r| (n, o, r)))) {
                let tap = (r / (kernel.0 * kernel.1), r / kernel.1 % kernel.0, r % kernel.1);
                let mut sum = 0.0f64;
                for (y, x) in (0..oh).flat_map(|y| (0..ow).map(move |x| (y, x))) {
                    if let Some(at) = source(&g, (0, tap.0, tap.1, tap.2), (y, x)) {
                        sum += dys[(n * oc + o) * l + y * ow + x] as f64 * xs[n * c * h * w + at] as f64;
                    }
                }
                expected[o * rows + r] += sum as f32;
            }
            for by_positions in [false, true] {
                let direct = Direct::in_form(&g, &vec![0.0; oc * rows], oc, by_positions);
                let mut dw = vec![0.5f32; oc * rows];
                for (x, dy) in xs.chunks_exact(c * h * w).zip(dys.chunks_exact(oc * l)) {
                    direct.weight_grad(x, dy, &mut padded, &mut scratch, &mut dw);
                }
                for (i, (a, b)) in dw.iter().zip(&expected).enumerate() {
                    assert!(
                        (a - b).abs() < 1e-4 * (1.0 + b.abs()),
                        "{g:?}, {oc} channels, by positions {by_positions}, dw[{i}]: {a} vs {b}"
                    );
                }
            }
        }
    }
}
