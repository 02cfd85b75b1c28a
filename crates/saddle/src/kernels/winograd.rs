//! Winograd's minimal filtering F(4×4, 3×3): a 3×3 convolution of stride 1
//! with 4× fewer multiplications than im2col (Lavin & Gray 2016).
//!
//! Letters: C input channels, OC output channels, H, W input size, OH, OW
//! output size, `th = ⌈OH/4⌉`, `tw = ⌈OW/4⌉` tiles per image, T tiles in all
//! (`n·th·tw`), ξ one of the 36 points of a 6×6 tile (`ξ = 6i + j`).
//!
//! In one dimension, four outputs `y_i = Σ_k d[i + k]·g[k]` of six inputs `d`
//! and a 3-tap filter `g` are `y = Aᵀ[(G g) ⊙ (Bᵀ d)]`: 6 products instead
//! of 12 (the points 0, ±1, ±2 and ∞). Nested for two dimensions, one 4×4
//! output tile of a 6×6 input tile `d` is `Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`: 36
//! products instead of 144. Summed over input channels, the products become
//! 36 independent GEMMs:
//!
//! `U[ξ][o][c] = (G w[o, c] Gᵀ)[ξ]`, `V[ξ][t][c] = (Bᵀ d[c, t] B)[ξ]`,
//! `M[ξ] = V[ξ] · U[ξ]ᵀ: [T, OC]`, `y[o, tile t] = Aᵀ M[·][t][o] A`.
//!
//! Tile `t = (image, a, b)` reads rows `4a..4a + 6` and columns `4b..4b + 6`
//! of its image zero-padded into a `(4th + 2) × (4tw + 2)` plane, with the
//! image at offset (ph, pw); outputs beyond (OH, OW) are cropped. Backward
//! passes are the exact adjoints, `dM = A dY Aᵀ`, `dU[ξ] = dM[ξ]ᵀ · V[ξ]`,
//! `dw = Gᵀ dU G`, `dV[ξ] = dM[ξ] · U[ξ]` and `dx += B dV Bᵀ` over the
//! overlapping input tiles. The transforms are exact in real arithmetic; in
//! `f32` they cost a few ulps of the largest terms (see the tests).
//!
//! **How the transforms run.** Channels are the vector lanes: the images
//! are first turned channels-last (`to_planes`, eight channels by eight
//! pixels at a time through a register transpose), so that the 36 values a
//! tile reads are 36 vector loads of 8 channels each; each 2-D transform is
//! then a 1-D map on the columns and on the rows of that 6×6 array of
//! vectors (`Lanes`), and its results are stored 8 channels at a time into
//! `V` (`[T, C]` rows, channels contiguous). The output runs the other way
//! round. The 36 matrices of `V`, `M`, `U` and their gradients lie a few
//! pages and one cache line apart (`spaced`): the transforms touch all 36
//! at each tile, and whole pages apart they would share cache sets.
//!
//! Like im2col, these run in the calling thread on a few images at a time.
//!
//! Uses: `kernels::conv`.

use super::conv::ConvGeometry;
use super::gemm::{Accumulate, Dims, Operand, Product};
use super::grow;
use super::lanes::{transpose, Lanes, LANES};
use std::array::from_fn;
use std::ops::{Add, Div, Mul, Sub};

/// Points of a transformed tile: 6 × 6.
pub const POINTS: usize = 36;

/// A 3×3 convolution of stride 1 as Winograd tiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Winograd {
    c: usize,
    h: usize,
    w: usize,
    padding: (usize, usize),
    oh: usize,
    ow: usize,
    th: usize,
    tw: usize,
}

impl Winograd {
    /// The tiling of `geo`, if it is a 3×3 convolution of stride 1 and
    /// dilation 1 (one group) with at least 16 input and output channels and
    /// whose tiles are at least half filled (`8·th·tw ≤ OH·OW`): where the
    /// transforms cost less than the multiplications they save.
    pub fn new(geo: &ConvGeometry, out_channels: usize, groups: usize) -> Option<Self> {
        let plain = geo.kernel == (3, 3) && geo.stride == (1, 1) && geo.dilation == (1, 1) && groups == 1;
        if !plain || geo.c < 16 || out_channels < 16 {
            return None;
        }
        let (oh, ow) = geo.output()?;
        let (th, tw) = (oh.div_ceil(4), ow.div_ceil(4));
        (8 * th * tw <= oh * ow).then_some(Winograd {
            c: geo.c,
            h: geo.h,
            w: geo.w,
            padding: geo.padding,
            oh,
            ow,
            th,
            tw,
        })
    }

    /// Tiles per image, `th·tw`.
    pub fn tiles(&self) -> usize {
        self.th * self.tw
    }

    /// `w: [OC, C, 3, 3]` → `U`: 36 matrices `[OC, C]`, a few pages apart
    /// (module docs), `U[ξ][o][c] = (G w[o, c] Gᵀ)[ξ]`, as [`forward`](Self::forward) takes it.
    pub fn filter(&self, w: &[f32], oc: usize) -> Vec<f32> {
        let (len, us) = (oc * self.c, spaced(oc * self.c));
        let mut u = vec![0.0; POINTS * us];
        // LANES filters at a time, the lanes of each tap gathered from their filters.
        for (block, w) in w[..len * 9].chunks(9 * LANES).enumerate() {
            let mut taps = [[0.0; LANES]; 9];
            for (k, g) in w.chunks_exact(9).enumerate() {
                g.iter().zip(&mut taps).for_each(|(v, tap)| tap[k] = *v);
            }
            let f = two_d(from_fn(|i| from_fn(|j| Lanes::load(&taps[i * 3 + j]))), filter);
            for (xi, p) in f.iter().flatten().enumerate() {
                let at = xi * us + block * LANES;
                p.store(&mut u[at..at + w.len() / 9]);
            }
        }
        u
    }

    /// The adjoint of [`filter`](Self::filter): `du` laid out as `U` →
    /// `dw: [OC, C, 3, 3]`, `dw[o, c] = Gᵀ dU[·][o][c] G`, overwriting `dw`.
    fn filter_adjoint(&self, du: &[f32], oc: usize, dw: &mut [f32]) {
        let (len, us) = (oc * self.c, spaced(oc * self.c));
        for (block, dw) in dw[..len * 9].chunks_mut(9 * LANES).enumerate() {
            let at = |xi: usize| xi * us + block * LANES;
            let d = from_fn(|i| from_fn(|j| Lanes::load(&du[at(6 * i + j)..at(6 * i + j) + dw.len() / 9])));
            let mut taps = [[0.0; LANES]; 9];
            two_d(d, filter_adjoint).iter().flatten().zip(&mut taps).for_each(|(f, tap)| f.store(tap));
            for (k, d) in dw.chunks_exact_mut(9).enumerate() {
                d.iter_mut().zip(&taps).for_each(|(d, tap)| *d = tap[k]);
            }
        }
    }

    /// Rows and columns of the zero-padded plane that the tiles read.
    fn plane(&self) -> (usize, usize) {
        (4 * self.th + 2, 4 * self.tw + 2)
    }

    /// The pixel where each tile starts in `n` images' planes of `rows ×
    /// cols` pixels laid end to end: tile `(a, b)` at row `4a`, column `4b`.
    fn corners(&self, n: usize, (rows, cols): (usize, usize)) -> impl Iterator<Item = usize> {
        let (th, tw) = (self.th, self.tw);
        (0..n * th * tw).map(move |t| (t / (th * tw)) * rows * cols + (t / tw % th) * 4 * cols + (t % tw) * 4)
    }

    /// The convolution of a task's `n` images `x: [n, C, H, W]` by the
    /// transformed filters `u` (from [`filter`](Self::filter)) into `y: [n, OC, OH, OW]`:
    /// `V = Bᵀ d B`, `M[ξ] = V[ξ] · U[ξ]ᵀ`, `y = Aᵀ M A`. `mm` runs the 36
    /// products; the buffers are grown as needed.
    pub fn forward(
        &self,
        (x, n): (&[f32], usize),
        u: &[f32],
        oc: usize,
        y: &mut [f32],
        buffers: [&mut Vec<f32>; 3],
        mm: Product,
    ) {
        let (c, tiles) = (self.c, n * self.tiles());
        let [v, m, planes] = buffers;
        let (vs, ms, us) = (spaced(tiles * c), spaced(tiles * oc), spaced(oc * c));
        let v = grow(v, POINTS * vs);
        self.input(x, n, v, planes);
        let m = grow(m, POINTS * ms);
        for (xi, m) in m.chunks_exact_mut(ms).enumerate() {
            let (v, u) = (&v[xi * vs..][..tiles * c], &u[xi * us..][..oc * c]);
            let m = &mut m[..tiles * oc];
            mm(Dims { m: tiles, n: oc, k: c }, Operand::Stored(v), Operand::Transposed(u), m, Accumulate::Overwrite);
        }
        self.output(m, oc, n, y, planes);
    }

    /// The backward pass of [`forward`](Self::forward) for the output
    /// gradient `dy: [n, OC, OH, OW]`: `dM = A dY Aᵀ`, then, where asked,
    /// the filter gradient `dw = Gᵀ (dM[ξ]ᵀ · V[ξ]) G` and the input gradient
    /// `dx = Σ B (dM[ξ] · U[ξ]) Bᵀ`, both overwritten. `dy` is `None` where
    /// it is in `dx` (of the same size), which it is read from first.
    pub fn backward(
        &self,
        (x, dy, n): (&[f32], Option<&[f32]>, usize),
        u: &[f32],
        oc: usize,
        (dw, dx): (Option<&mut [f32]>, Option<&mut [f32]>),
        buffers: [&mut Vec<f32>; 4],
        mm: Product,
    ) {
        let (c, tiles) = (self.c, n * self.tiles());
        let [v, dm, du, planes] = buffers;
        let (vs, ms, us) = (spaced(tiles * c), spaced(tiles * oc), spaced(oc * c));
        let dm = grow(dm, POINTS * ms);
        self.output_adjoint(dy.or(dx.as_deref()).expect("dy, or dx holding it"), oc, n, dm, planes);
        let v = grow(v, POINTS * vs);
        if let Some(dw) = dw {
            self.input(x, n, v, planes);
            let du = grow(du, POINTS * us);
            for (xi, du) in du.chunks_exact_mut(us).enumerate() {
                let du = &mut du[..oc * c];
                let (dm, v) = (&dm[xi * ms..][..tiles * oc], &v[xi * vs..][..tiles * c]);
                mm(
                    Dims { m: oc, n: c, k: tiles },
                    Operand::Transposed(dm),
                    Operand::Stored(v),
                    du,
                    Accumulate::Overwrite,
                );
            }
            self.filter_adjoint(du, oc, dw);
        }
        if let Some(dx) = dx {
            for (xi, dv) in v.chunks_exact_mut(vs).enumerate() {
                let (dm, u, dv) = (&dm[xi * ms..][..tiles * oc], &u[xi * us..][..oc * c], &mut dv[..tiles * c]);
                mm(Dims { m: tiles, n: c, k: oc }, Operand::Stored(dm), Operand::Stored(u), dv, Accumulate::Overwrite);
            }
            self.input_adjoint(v, n, dx, planes);
        }
    }

    /// `x: [n, C, H, W]` → `v`: 36 matrices `[T, C]` ([`spaced`] apart) with
    /// `T = n·th·tw`, `V[ξ][t][c] = (Bᵀ d[c, t] B)[ξ]`. `scratch` is grown as needed.
    fn input(&self, x: &[f32], n: usize, v: &mut [f32], scratch: &mut Vec<f32>) {
        let (c, (ph, pw)) = (self.c, self.plane());
        let (stride, vs) = (c.next_multiple_of(LANES), spaced(n * self.tiles() * c));
        let planes = grow(scratch, n * ph * pw * stride);
        clear_border(planes, n, (ph, pw, stride), self.padding, (self.h, self.w));
        to_planes(x, (n, c, self.h, self.w), planes, (ph, pw, stride), self.padding);
        for (t, at) in self.corners(n, (ph, pw)).enumerate() {
            for cb in (0..c).step_by(LANES) {
                let d = from_fn(|i| from_fn(|j| Lanes::load(&planes[(at + i * pw + j) * stride + cb..])));
                let out = two_d(d, input);
                for xi in 0..POINTS {
                    out[xi / 6][xi % 6].store(&mut v[xi * vs + t * c + cb..xi * vs + (t + 1) * c]);
                }
            }
        }
    }

    /// The adjoint of [`input`](Self::input): `dv` laid out as `v` → `dx: [n, C,
    /// H, W]`, the sum of `B dV Bᵀ` over the tiles that read each pixel (in
    /// tile order), overwriting `dx`. `scratch` is grown as needed.
    fn input_adjoint(&self, dv: &[f32], n: usize, dx: &mut [f32], scratch: &mut Vec<f32>) {
        let (c, (ph, pw)) = (self.c, self.plane());
        let (stride, vs) = (c.next_multiple_of(LANES), spaced(n * self.tiles() * c));
        let planes = grow(scratch, n * ph * pw * stride);
        planes.fill(0.0);
        for (t, at) in self.corners(n, (ph, pw)).enumerate() {
            for cb in (0..c).step_by(LANES) {
                let d = from_fn(|i| from_fn(|j| Lanes::load(&dv[(6 * i + j) * vs + t * c + cb..][..c - cb])));
                let out = two_d(d, input_adjoint);
                for (i, row) in out.iter().enumerate() {
                    for (j, &value) in row.iter().enumerate() {
                        let at = (at + i * pw + j) * stride + cb;
                        (Lanes::load(&planes[at..]) + value).store(&mut planes[at..]);
                    }
                }
            }
        }
        from_planes(planes, (ph, pw, stride), self.padding, dx, (n, c, self.h, self.w));
    }

    /// `m`: 36 matrices `[T, OC]` ([`spaced`] apart) → `y: [n, OC, OH, OW]`,
    /// `y[o, tile t] = Aᵀ M[·][t][o] A` cropped to the image, overwriting `y`.
    /// `scratch` is grown as needed.
    fn output(&self, m: &[f32], oc: usize, n: usize, y: &mut [f32], scratch: &mut Vec<f32>) {
        let (ms, (qh, qw)) = (spaced(n * self.tiles() * oc), (4 * self.th, 4 * self.tw));
        let stride = oc.next_multiple_of(LANES);
        let planes = grow(scratch, n * qh * qw * stride);
        for (t, at) in self.corners(n, (qh, qw)).enumerate() {
            for ob in (0..oc).step_by(LANES) {
                let d = from_fn(|i| from_fn(|j| Lanes::load(&m[(6 * i + j) * ms + t * oc + ob..][..oc - ob])));
                let out = two_d(d, output);
                for (r, row) in out.iter().enumerate() {
                    for (s, value) in row.iter().enumerate() {
                        value.store(&mut planes[(at + r * qw + s) * stride + ob..]);
                    }
                }
            }
        }
        from_planes(planes, (qh, qw, stride), (0, 0), y, (n, oc, self.oh, self.ow));
    }

    /// The adjoint of [`output`](Self::output): `dy: [n, OC, OH, OW]` →
    /// `dm` laid out as `m`, `dM[·][t][o] = A dY Aᵀ` with the tile's `dY`
    /// zero beyond the image. `scratch` is grown as needed.
    fn output_adjoint(&self, dy: &[f32], oc: usize, n: usize, dm: &mut [f32], scratch: &mut Vec<f32>) {
        let (ms, (qh, qw)) = (spaced(n * self.tiles() * oc), (4 * self.th, 4 * self.tw));
        let stride = oc.next_multiple_of(LANES);
        let planes = grow(scratch, n * qh * qw * stride);
        clear_border(planes, n, (qh, qw, stride), (0, 0), (self.oh, self.ow));
        to_planes(dy, (n, oc, self.oh, self.ow), planes, (qh, qw, stride), (0, 0));
        for (t, at) in self.corners(n, (qh, qw)).enumerate() {
            for ob in (0..oc).step_by(LANES) {
                let z = from_fn(|r| from_fn(|s| Lanes::load(&planes[(at + r * qw + s) * stride + ob..])));
                let out = two_d(z, output_adjoint);
                for xi in 0..POINTS {
                    out[xi / 6][xi % 6].store(&mut dm[xi * ms + t * oc + ob..xi * ms + (t + 1) * oc]);
                }
            }
        }
    }
}

/// The distance between the 36 matrices of `V`, `M` and their gradients,
/// for matrices of `len` values: a whole number of 4 KiB pages and one cache
/// line more. The transforms read or write all 36 at once, and a distance of
/// whole pages would put them in the same cache sets, more than a set holds.
fn spaced(len: usize) -> usize {
    len.next_multiple_of(1024) + 16
}

/// Zeros every value of the pixels of `n` planes of `rows × cols` pixels
/// of `stride` values that lie outside the `h × w` image at `(top, left)`.
fn clear_border(
    planes: &mut [f32],
    n: usize,
    (rows, cols, stride): (usize, usize, usize),
    (top, left): (usize, usize),
    (h, w): (usize, usize),
) {
    for plane in planes.chunks_exact_mut(rows * cols * stride).take(n) {
        let (above, rest) = plane.split_at_mut(top * cols * stride);
        let (image, below) = rest.split_at_mut(h * cols * stride);
        above.fill(0.0);
        below.fill(0.0);
        for row in image.chunks_exact_mut(cols * stride) {
            row[..left * stride].fill(0.0);
            row[(left + w) * stride..].fill(0.0);
        }
    }
}

/// `planes[image][y + top][x + left][c] = src[image][c][y][x]`: images
/// `[C, H, W]` into channels-last planes of `rows × cols` pixels of
/// `stride` values each (a multiple of [`LANES`] at least `C`), with zeros
/// in the channels from `C` to `stride`. Other pixels are left as they are.
fn to_planes(
    src: &[f32],
    (n, c, h, w): (usize, usize, usize, usize),
    planes: &mut [f32],
    (rows, cols, stride): (usize, usize, usize),
    (top, left): (usize, usize),
) {
    for (src, plane) in src.chunks_exact(c * h * w).zip(planes.chunks_exact_mut(rows * cols * stride)).take(n) {
        for cb in (0..c).step_by(LANES) {
            for y in 0..h {
                for x0 in (0..w).step_by(LANES) {
                    // Rows of LANES pixels of LANES channels, turned into each pixel's channels.
                    let row = |k: usize| match cb + k < c {
                        true => Lanes::load(&src[((cb + k) * h + y) * w + x0..]),
                        false => Lanes::zero(),
                    };
                    let pixels = transpose(from_fn(row));
                    for (x, pixel) in pixels.iter().take(w - x0).enumerate() {
                        pixel.store(&mut plane[((y + top) * cols + x0 + x + left) * stride + cb..]);
                    }
                }
            }
        }
    }
}

/// The inverse of [`to_planes`]: `dst[image][c][y][x] = planes[image][y + top][x + left][c]`.
fn from_planes(
    planes: &[f32],
    (rows, cols, stride): (usize, usize, usize),
    (top, left): (usize, usize),
    dst: &mut [f32],
    (n, c, h, w): (usize, usize, usize, usize),
) {
    for (dst, plane) in dst.chunks_exact_mut(c * h * w).zip(planes.chunks_exact(rows * cols * stride)).take(n) {
        for cb in (0..c).step_by(LANES) {
            for y in 0..h {
                for x0 in (0..w).step_by(LANES) {
                    // Each pixel's LANES channels, turned into rows of channels.
                    let len = LANES.min(w - x0);
                    let pixel = |x: usize| match x < len {
                        true => Lanes::load(&plane[((y + top) * cols + x0 + x + left) * stride + cb..]),
                        false => Lanes::zero(),
                    };
                    for (k, row) in transpose(from_fn(pixel)).iter().take(c - cb).enumerate() {
                        let at = ((cb + k) * h + y) * w + x0;
                        row.store(&mut dst[at..at + len]);
                    }
                }
            }
        }
    }
}

/// What the 1-D transforms compute on: one number, or [`Lanes`].
trait Value: Copy + Add<Output = Self> + Sub<Output = Self> + Mul<f32, Output = Self> + Div<f32, Output = Self> {}

impl Value for f32 {}

impl Value for Lanes {}

/// `F X Fᵀ` for the linear map `f(v) = F v`: `f` on every column, then on every row.
#[inline(always)]
fn two_d<T: Value, const I: usize, const O: usize>(x: [[T; I]; I], f: fn([T; I]) -> [T; O]) -> [[T; O]; O] {
    let cols: [[T; O]; I] = from_fn(|j| f(from_fn(|i| x[i][j])));
    from_fn(|r| f(from_fn(|j| cols[j][r])))
}

/// `Bᵀ d`.
#[inline(always)]
fn input<T: Value>(d: [T; 6]) -> [T; 6] {
    [
        d[0] * 4.0 - d[2] * 5.0 + d[4],
        (d[1] + d[2]) * -4.0 + d[3] + d[4],
        (d[1] - d[2]) * 4.0 - d[3] + d[4],
        (d[3] - d[1]) * 2.0 - d[2] + d[4],
        (d[1] - d[3]) * 2.0 - d[2] + d[4],
        d[1] * 4.0 - d[3] * 5.0 + d[5],
    ]
}

/// `B v`, the adjoint of [`input`].
#[inline(always)]
fn input_adjoint<T: Value>(v: [T; 6]) -> [T; 6] {
    [
        v[0] * 4.0,
        (v[2] - v[1] + v[5]) * 4.0 + (v[4] - v[3]) * 2.0,
        v[0] * -5.0 - (v[1] + v[2]) * 4.0 - v[3] - v[4],
        v[1] - v[2] + (v[3] - v[4]) * 2.0 - v[5] * 5.0,
        v[0] + v[1] + v[2] + v[3] + v[4],
        v[5],
    ]
}

/// `G g`.
#[inline(always)]
fn filter<T: Value>(g: [T; 3]) -> [T; 6] {
    let (even, odd) = (g[0] + g[2], g[1]);
    let (quarter, sixth) = (g[0] / 24.0 + g[2] / 6.0, g[1] / 12.0);
    [g[0] / 4.0, (even + odd) / -6.0, (odd - even) / 6.0, quarter + sixth, quarter - sixth, g[2]]
}

/// `Gᵀ u`, the adjoint of [`filter`].
#[inline(always)]
fn filter_adjoint<T: Value>(u: [T; 6]) -> [T; 3] {
    let (plus, minus) = (u[1] + u[2], u[1] - u[2]);
    let (sum, diff) = (u[3] + u[4], u[3] - u[4]);
    [u[0] / 4.0 - plus / 6.0 + sum / 24.0, diff / 12.0 - minus / 6.0, sum / 6.0 - plus / 6.0 + u[5]]
}

/// `Aᵀ m`.
#[inline(always)]
fn output<T: Value>(m: [T; 6]) -> [T; 4] {
    let (p1, m1, p2, m2) = (m[1] + m[2], m[1] - m[2], m[3] + m[4], m[3] - m[4]);
    [m[0] + p1 + p2, m1 + m2 * 2.0, p1 + p2 * 4.0, m1 + m2 * 8.0 + m[5]]
}

/// `A y`, the adjoint of [`output`].
#[inline(always)]
fn output_adjoint<T: Value>(y: [T; 4]) -> [T; 6] {
    let (even, odd) = (y[0] + y[2], y[1] + y[3]);
    let (even4, odd2) = (y[0] + y[2] * 4.0, y[1] * 2.0 + y[3] * 8.0);
    [y[0], even + odd, even - odd, even4 + odd2, even4 - odd2, y[3]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::conv::tests::conv_direct;
    use crate::kernels::gemm::sgemm;

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len).map(|i| (((i * 7919 + seed * 104729) % 2003) as f32 / 1001.0) - 1.0).collect()
    }

    fn geometry(n: usize, c: usize, h: usize, w: usize, p: usize) -> ConvGeometry {
        ConvGeometry { n, c, h, w, kernel: (3, 3), stride: (1, 1), padding: (p, p), dilation: (1, 1) }
    }

    /// `y = Aᵀ (V[ξ] · U[ξ]ᵀ) A` for the whole batch.
    fn winograd_forward(t: &Winograd, x: &[f32], w: &[f32], n: usize, oc: usize) -> Vec<f32> {
        let mut y = vec![f32::NAN; n * oc * t.oh * t.ow];
        let mut buffers: [Vec<f32>; 3] = Default::default();
        t.forward((x, n), &t.filter(w, oc), oc, &mut y, buffers.each_mut(), sgemm);
        y
    }

    #[test]
    fn tiles_match_direct_convolution() {
        // Padding 0, 1 and 2; sizes that fill their tiles and sizes that leave them ragged.
        // Channels that fill their vector lanes and channels that do not.
        for (h, w, p, c, oc) in
            [(8, 8, 1, 16, 17), (7, 9, 0, 19, 16), (5, 6, 2, 16, 24), (13, 11, 1, 24, 17), (10, 10, 0, 17, 33)]
        {
            let n = 2;
            let geo = geometry(n, c, h, w, p);
            let t = Winograd::new(&geo, oc, 1).expect("a Winograd shape");
            let (x, wt) = (values(n * c * h * w, 1), values(oc * c * 9, 2));
            let (fast, direct) = (winograd_forward(&t, &x, &wt, n, oc), conv_direct(&x, &wt, &geo, oc, 1));
            let scale = direct.iter().fold(0.0f32, |a, v| a.max(v.abs()));
            let worst = fast.iter().zip(&direct).fold(0.0f32, |a, (f, d)| a.max((f - d).abs()));
            // Measured: at most 4.8·10⁻⁶ of the largest output (Zen 3).
            assert!(worst <= 1e-5 * scale, "{h}×{w} padding {p}: error {worst} against a largest output of {scale}");
        }
    }

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(a, b)| *a as f64 * *b as f64).sum()
    }

    #[test]
    fn the_backward_transforms_are_adjoints() {
        // ⟨F(x), y⟩ = ⟨x, Fᵀ(y)⟩ for the input, output and filter transforms.
        let (n, c, oc, h, w) = (2, 19, 17, 9, 7);
        let t = Winograd::new(&geometry(n, c, h, w, 1), oc, 1).unwrap();
        let (tiles, plane) = (n * t.tiles(), &mut Vec::new());
        let close =
            |a: f64, b: f64, what: &str| assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "{what}: {a} vs {b}");

        let (x, dv) = (values(n * c * h * w, 3), values(POINTS * spaced(c * tiles), 4));
        let (mut v, mut dx) = (vec![0.0; dv.len()], vec![f32::NAN; x.len()]);
        t.input(&x, n, &mut v, plane);
        t.input_adjoint(&dv, n, &mut dx, plane);
        close(dot(&v, &dv), dot(&x, &dx), "input");

        // The gaps between the 36 matrices stay zero in what the transforms write.
        let (m, dy) = (values(POINTS * spaced(oc * tiles), 5), values(n * oc * t.oh * t.ow, 6));
        let (mut y, mut dm) = (vec![0.0; dy.len()], vec![0.0; m.len()]);
        t.output(&m, oc, n, &mut y, plane);
        t.output_adjoint(&dy, oc, n, &mut dm, plane);
        close(dot(&y, &dy), dot(&m, &dm), "output");

        let (wt, du) = (values(oc * c * 9, 7), values(POINTS * spaced(oc * c), 8));
        let mut dw = vec![f32::NAN; wt.len()];
        t.filter_adjoint(&du, oc, &mut dw);
        close(dot(&t.filter(&wt, oc), &du), dot(&wt, &dw), "filter");
    }

    #[test]
    fn filter_transforms_of_lanes_match_one_filter_at_a_time() {
        // 19·17 filters: whole blocks of lanes and a last one of 3.
        let (c, oc) = (19, 17);
        let t = Winograd::new(&geometry(1, c, 8, 8, 1), oc, 1).unwrap();
        let (wt, du) = (values(oc * c * 9, 9), values(POINTS * spaced(oc * c), 10));
        let u = t.filter(&wt, oc);
        let mut dw = vec![f32::NAN; wt.len()];
        t.filter_adjoint(&du, oc, &mut dw);
        let us = spaced(oc * c);
        for (f, g) in wt.chunks_exact(9).enumerate() {
            let one = two_d(from_fn(|i| from_fn(|j| g[i * 3 + j])), filter);
            let back = two_d(from_fn(|i| from_fn(|j| du[(6 * i + j) * us + f])), filter_adjoint);
            for xi in 0..POINTS {
                assert_eq!(u[xi * us + f].to_bits(), one[xi / 6][xi % 6].to_bits(), "U, filter {f}, point {xi}");
            }
            for k in 0..9 {
                assert_eq!(dw[f * 9 + k].to_bits(), back[k / 3][k % 3].to_bits(), "dw, filter {f}, tap {k}");
            }
        }
    }

    #[test]
    fn only_plain_wide_three_by_three_convolutions_qualify() {
        let geo = geometry(1, 16, 8, 8, 1);
        assert!(Winograd::new(&geo, 16, 1).is_some());
        assert!(Winograd::new(&ConvGeometry { stride: (2, 2), ..geo }, 16, 1).is_none());
        assert!(Winograd::new(&ConvGeometry { dilation: (1, 2), ..geo }, 16, 1).is_none());
        assert!(Winograd::new(&ConvGeometry { kernel: (5, 5), ..geo }, 16, 1).is_none());
        assert!(Winograd::new(&geo, 16, 2).is_none());
        assert!(Winograd::new(&ConvGeometry { c: 3, ..geo }, 16, 1).is_none());
        assert!(Winograd::new(&geo, 8, 1).is_none());
        // A 2×2 output fills a quarter of its one tile.
        assert!(Winograd::new(&geometry(1, 16, 2, 2, 1), 16, 1).is_none());
    }

    /// The dense matrix of a linear map on `I` values.
    fn matrix<const I: usize, const O: usize>(f: fn([f32; I]) -> [f32; O]) -> [[f32; I]; O] {
        let cols: [[f32; O]; I] = from_fn(|k| f(from_fn(|i| (i == k) as u8 as f32)));
        from_fn(|r| from_fn(|k| cols[k][r]))
    }

    #[test]
    fn each_adjoint_is_the_transpose_of_its_map() {
        fn transposed<const I: usize, const O: usize>(f: fn([f32; I]) -> [f32; O], g: fn([f32; O]) -> [f32; I]) {
            let (a, b) = (matrix(f), matrix(g));
            for i in 0..I {
                for o in 0..O {
                    assert!((a[o][i] - b[i][o]).abs() < 1e-7, "entry ({o}, {i})");
                }
            }
        }
        transposed(input, input_adjoint);
        transposed(filter, filter_adjoint);
        transposed(output, output_adjoint);
    }

    #[test]
    fn one_dimension_is_a_correlation() {
        // y_i = Σ_k d[i + k]·g[k] for Aᵀ[(G g) ⊙ (Bᵀ d)].
        let (d, g) = ([0.3, -1.2, 2.5, 0.7, -0.4, 1.9], [0.5, -2.0, 1.5]);
        let (u, v) = (filter(g), input(d));
        let y = output(from_fn(|i| u[i] * v[i]));
        for (i, y) in y.iter().enumerate() {
            let direct: f32 = (0..3).map(|k| d[i + k] * g[k]).sum();
            assert!((y - direct).abs() < 1e-5, "y[{i}] = {y}, direct {direct}");
        }
    }
}
