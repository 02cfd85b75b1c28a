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
//! `U[ξ][o][c] = (G w[o, c] Gᵀ)[ξ]`, `V[ξ][c][t] = (Bᵀ d[c, t] B)[ξ]`,
//! `M[ξ] = U[ξ] · V[ξ]: [OC, T]`, `y[o, tile t] = Aᵀ M[·][o][t] A`.
//!
//! Tile `t = (image, a, b)` reads rows `4a..4a + 6` and columns `4b..4b + 6`
//! of its image zero-padded into a `(4th + 2) × (4tw + 2)` plane, with the
//! image at offset (ph, pw); outputs beyond (OH, OW) are cropped. Backward
//! passes are the exact adjoints, `dM = A dY Aᵀ`, `dU[ξ] = dM[ξ] · V[ξ]ᵀ`,
//! `dw = Gᵀ dU G`, `dV[ξ] = U[ξ]ᵀ · dM[ξ]` and `dx += B dV Bᵀ` over the
//! overlapping input tiles. The transforms are exact in real arithmetic; in
//! `f32` they cost a few ulps of the largest terms (see the tests).
//!
//! **How the transforms run.** Each 2-D transform is a 1-D map applied to
//! a tile's rows, then to its columns. Where the values a map reads lie
//! side by side across tiles (`M`, `V`, and the input's rows once
//! transformed, `R[i][k][t]`), 16 tiles are computed at once
//! (`map_lanes`), which the compiler turns into vector instructions. The
//! input's rows are read from the padded plane and transformed a tile at a
//! time, and the adjoint adds them back the same way, overlapping tiles in a
//! fixed order.
//!
//! Like im2col, these run in the calling thread on a few images at a time.
//!
//! Uses: `kernels::conv`.

use super::conv::ConvGeometry;
use super::grow;
use std::array::from_fn;

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

    /// `w: [OC, C, 3, 3]` → `U: [36, OC, C]`, `U[ξ][o][c] = (G w[o, c] Gᵀ)[ξ]`.
    pub fn filter(&self, w: &[f32], oc: usize) -> Vec<f32> {
        let c = self.c;
        let mut u = vec![0.0; POINTS * oc * c];
        for (oci, wf) in w[..oc * c * 9].chunks_exact(9).enumerate() {
            let f = two_d(from_fn::<_, 3, _>(|i| from_fn(|j| wf[i * 3 + j])), filter);
            for (xi, v) in f.iter().flatten().enumerate() {
                u[xi * oc * c + oci] = *v;
            }
        }
        u
    }

    /// The adjoint of [`filter`](Self::filter): `du: [36, OC, C]` →
    /// `dw: [OC, C, 3, 3]`, `dw[o, c] = Gᵀ dU[·][o][c] G`, overwriting `dw`.
    pub fn filter_adjoint(&self, du: &[f32], oc: usize, dw: &mut [f32]) {
        let c = self.c;
        for (oci, d) in dw[..oc * c * 9].chunks_exact_mut(9).enumerate() {
            let f = two_d(from_fn::<_, 6, _>(|i| from_fn(|j| du[(i * 6 + j) * oc * c + oci])), filter_adjoint);
            d.iter_mut().zip(f.iter().flatten()).for_each(|(d, v)| *d = *v);
        }
    }

    /// Rows and columns of the zero-padded plane that the tiles read.
    fn plane(&self) -> (usize, usize) {
        (4 * self.th + 2, 4 * self.tw + 2)
    }

    /// `x: [n, C, H, W]` → `v: [36, C, T]` with `T = n·th·tw`,
    /// `V[ξ][c][t] = (Bᵀ d[c, t] B)[ξ]`. `scratch` is grown as needed.
    pub fn input(&self, x: &[f32], n: usize, v: &mut [f32], scratch: &mut Vec<f32>) {
        let (c, tiles, (ph, pw)) = (self.c, n * self.tiles(), self.plane());
        // R[i][k][t] = (Bᵀ d[t][i][·])[k], a tile's rows transformed: [36, T].
        let (r, plane) = grow(scratch, POINTS * tiles + ph * pw).split_at_mut(POINTS * tiles);
        plane.fill(0.0);
        for ci in 0..c {
            for image in 0..n {
                let src = &x[(image * c + ci) * self.h * self.w..][..self.h * self.w];
                for (y, row) in src.chunks_exact(self.w).enumerate() {
                    plane[(y + self.padding.0) * pw + self.padding.1..][..self.w].copy_from_slice(row);
                }
                for (i, t, at) in self.tile_rows(image) {
                    for (b, d) in plane[at..][..pw].windows(6).step_by(4).enumerate() {
                        let out = input(d.try_into().expect("6 values"));
                        out.iter().enumerate().for_each(|(k, v)| r[(6 * i + k) * tiles + t + b] = *v);
                    }
                }
            }
            // Columns: V[6k + s][ci] = (Bᵀ R[·][s])[k].
            for s in 0..6 {
                let (from, to) = (from_fn(|i| (6 * i + s) * tiles), from_fn(|k| ((6 * k + s) * c + ci) * tiles));
                map_lanes(r, from, v, to, tiles, input);
            }
        }
    }

    /// The adjoint of [`input`](Self::input): `dv: [36, C, T]` → `dx: [n, C,
    /// H, W]`, the sum of `B dV Bᵀ` over the tiles that read each pixel,
    /// overwriting `dx`. `scratch` is grown as needed.
    pub fn input_adjoint(&self, dv: &[f32], n: usize, dx: &mut [f32], scratch: &mut Vec<f32>) {
        let (c, tiles, (ph, pw)) = (self.c, n * self.tiles(), self.plane());
        let (r, plane) = grow(scratch, POINTS * tiles + ph * pw).split_at_mut(POINTS * tiles);
        for ci in 0..c {
            for s in 0..6 {
                let (from, to) = (from_fn(|k| ((6 * k + s) * c + ci) * tiles), from_fn(|i| (6 * i + s) * tiles));
                map_lanes(dv, from, r, to, tiles, input_adjoint);
            }
            for image in 0..n {
                // Overlapping tiles add into the plane in a fixed order.
                plane.fill(0.0);
                for (i, t, at) in self.tile_rows(image) {
                    let row = &mut plane[at..][..pw];
                    for b in 0..self.tw {
                        let out = input_adjoint(from_fn(|k| r[(6 * i + k) * tiles + t + b]));
                        row[4 * b..][..6].iter_mut().zip(out).for_each(|(p, v)| *p += v);
                    }
                }
                let dst = &mut dx[(image * c + ci) * self.h * self.w..][..self.h * self.w];
                for (y, row) in dst.chunks_exact_mut(self.w).enumerate() {
                    row.copy_from_slice(&plane[(y + self.padding.0) * pw + self.padding.1..][..self.w]);
                }
            }
        }
    }

    /// `(i, t, at)` for every row `i` of every tile row `a` of `image`: its
    /// tiles `(a, b)`, numbered `t + b`, read `plane[at + 4b..][..6]`.
    fn tile_rows(&self, image: usize) -> impl Iterator<Item = (usize, usize, usize)> {
        let (th, tw, pw) = (self.th, self.tw, self.plane().1);
        (0..th * 6).map(move |k| (k % 6, (image * th + k / 6) * tw, (4 * (k / 6) + k % 6) * pw))
    }

    /// `m: [36, OC, T]` → `y: [n, OC, OH, OW]`, `y[o, tile t] = Aᵀ M[·][o][t] A`
    /// cropped to the image, overwriting `y`. `scratch` is grown as needed.
    pub fn output(&self, m: &[f32], oc: usize, n: usize, y: &mut [f32], scratch: &mut Vec<f32>) {
        let (tiles, l) = (n * self.tiles(), self.oh * self.ow);
        let stride = oc * tiles;
        // Q: [4][6] of T, Z: [16] of T.
        let (q, z) = grow(scratch, 40 * tiles).split_at_mut(24 * tiles);
        for o in 0..oc {
            // Columns: Q[r][j] = (Aᵀ M[·, j])[r]; rows: Z[4r + s] = (Aᵀ Q[r])[s].
            for j in 0..6 {
                let from = from_fn(|i| (6 * i + j) * stride + o * tiles);
                map_lanes(m, from, q, from_fn(|r| (r * 6 + j) * tiles), tiles, output);
            }
            for r in 0..4 {
                let from = from_fn(|j| (r * 6 + j) * tiles);
                map_lanes(q, from, z, from_fn(|s| (4 * r + s) * tiles), tiles, output);
            }
            for image in 0..n {
                let dst = &mut y[(image * oc + o) * l..][..l];
                for (row, dst) in dst.chunks_exact_mut(self.ow).enumerate() {
                    let (z, t0) = (&z[4 * (row % 4) * tiles..], (image * self.th + row / 4) * self.tw);
                    dst.iter_mut().enumerate().for_each(|(x, d)| *d = z[(x % 4) * tiles + t0 + x / 4]);
                }
            }
        }
    }

    /// The adjoint of [`output`](Self::output): `dy: [n, OC, OH, OW]` →
    /// `dm: [36, OC, T]`, `dM[·][o][t] = A dY Aᵀ` with the tile's `dY` zero
    /// beyond the image. `scratch` is grown as needed.
    pub fn output_adjoint(&self, dy: &[f32], oc: usize, n: usize, dm: &mut [f32], scratch: &mut Vec<f32>) {
        let (tiles, l) = (n * self.tiles(), self.oh * self.ow);
        let stride = oc * tiles;
        let (q, z) = grow(scratch, 40 * tiles).split_at_mut(24 * tiles);
        for o in 0..oc {
            z.fill(0.0);
            for image in 0..n {
                let src = &dy[(image * oc + o) * l..][..l];
                for (row, src) in src.chunks_exact(self.ow).enumerate() {
                    let (z, t0) = (&mut z[4 * (row % 4) * tiles..], (image * self.th + row / 4) * self.tw);
                    src.iter().enumerate().for_each(|(x, v)| z[(x % 4) * tiles + t0 + x / 4] = *v);
                }
            }
            for r in 0..4 {
                let to = from_fn(|j| (r * 6 + j) * tiles);
                map_lanes(z, from_fn(|s| (4 * r + s) * tiles), q, to, tiles, output_adjoint);
            }
            for j in 0..6 {
                let to = from_fn(|i| (6 * i + j) * stride + o * tiles);
                map_lanes(q, from_fn(|r| (r * 6 + j) * tiles), dm, to, tiles, output_adjoint);
            }
        }
    }
}

/// Tiles that [`map_lanes`] computes together, in vector registers.
const LANES: usize = 16;

/// `dst[to[o] + k] = f(src[from[0] + k], …, src[from[I − 1] + k])[o]` for
/// every lane `k < len`.
///
/// [`LANES`] lanes at a time, in loops of fixed length over plain arrays,
/// which the compiler turns into vector instructions.
#[inline(always)]
fn map_lanes<const I: usize, const O: usize>(
    src: &[f32],
    from: [usize; I],
    dst: &mut [f32],
    to: [usize; O],
    len: usize,
    f: impl Fn([f32; I]) -> [f32; O],
) {
    let mut y = [[0.0f32; LANES]; O];
    for k in (0..len).step_by(LANES) {
        // The last block may be short: its missing lanes are neither read nor written.
        let w = LANES.min(len - k);
        let x = from.map(|from| &src[from + k..][..w]);
        if w == LANES {
            let x: [&[f32; LANES]; I] = x.map(|x| x.try_into().expect("LANES values"));
            for j in 0..LANES {
                let out = f(from_fn(|i| x[i][j]));
                (0..O).for_each(|o| y[o][j] = out[o]);
            }
        } else {
            for j in 0..w {
                let out = f(from_fn(|i| x[i][j]));
                (0..O).for_each(|o| y[o][j] = out[o]);
            }
        }
        for (y, to) in y.iter().zip(to) {
            let d = &mut dst[to + k..][..w];
            if w == LANES {
                *<&mut [f32; LANES]>::try_from(d).expect("LANES values") = *y;
            } else {
                d.iter_mut().zip(y).for_each(|(d, y)| *d = *y);
            }
        }
    }
}

/// `F X Fᵀ` for the linear map `f(v) = F v`: `f` on every column, then on every row.
fn two_d<const I: usize, const O: usize>(x: [[f32; I]; I], f: fn([f32; I]) -> [f32; O]) -> [[f32; O]; O] {
    let cols: [[f32; O]; I] = from_fn(|j| f(from_fn(|i| x[i][j])));
    from_fn(|r| f(from_fn(|j| cols[j][r])))
}

/// `Bᵀ d`.
#[inline(always)]
fn input(d: [f32; 6]) -> [f32; 6] {
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
fn input_adjoint(v: [f32; 6]) -> [f32; 6] {
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
fn filter(g: [f32; 3]) -> [f32; 6] {
    let (even, odd) = (g[0] + g[2], g[1]);
    let (quarter, sixth) = (g[0] / 24.0 + g[2] / 6.0, g[1] / 12.0);
    [g[0] / 4.0, -(even + odd) / 6.0, (odd - even) / 6.0, quarter + sixth, quarter - sixth, g[2]]
}

/// `Gᵀ u`, the adjoint of [`filter`].
fn filter_adjoint(u: [f32; 6]) -> [f32; 3] {
    let (plus, minus) = (u[1] + u[2], u[1] - u[2]);
    let (sum, diff) = (u[3] + u[4], u[3] - u[4]);
    [u[0] / 4.0 - plus / 6.0 + sum / 24.0, -minus / 6.0 + diff / 12.0, -plus / 6.0 + sum / 6.0 + u[5]]
}

/// `Aᵀ m`.
#[inline(always)]
fn output(m: [f32; 6]) -> [f32; 4] {
    let (p1, m1, p2, m2) = (m[1] + m[2], m[1] - m[2], m[3] + m[4], m[3] - m[4]);
    [m[0] + p1 + p2, m1 + m2 * 2.0, p1 + p2 * 4.0, m1 + m2 * 8.0 + m[5]]
}

/// `A y`, the adjoint of [`output`].
#[inline(always)]
fn output_adjoint(y: [f32; 4]) -> [f32; 6] {
    let (even, odd) = (y[0] + y[2], y[1] + y[3]);
    let (even4, odd2) = (y[0] + y[2] * 4.0, y[1] * 2.0 + y[3] * 8.0);
    [y[0], even + odd, even - odd, even4 + odd2, even4 - odd2, y[3]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::conv::tests::conv_direct;
    use crate::kernels::gemm::{sgemm, Accumulate, Dims, Operand};

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len).map(|i| (((i * 7919 + seed * 104729) % 2003) as f32 / 1001.0) - 1.0).collect()
    }

    fn geometry(n: usize, c: usize, h: usize, w: usize, p: usize) -> ConvGeometry {
        ConvGeometry { n, c, h, w, kernel: (3, 3), stride: (1, 1), padding: (p, p), dilation: (1, 1) }
    }

    /// `y = Aᵀ (U[ξ] · V[ξ]) A` for the whole batch.
    fn winograd_forward(t: &Winograd, x: &[f32], w: &[f32], n: usize, oc: usize) -> Vec<f32> {
        let (c, tiles) = (t.c, n * t.tiles());
        let u = t.filter(w, oc);
        let (mut v, mut plane) = (vec![f32::NAN; POINTS * c * tiles], Vec::new());
        t.input(x, n, &mut v, &mut plane);
        let mut m = vec![0.0; POINTS * oc * tiles];
        for xi in 0..POINTS {
            sgemm(
                Dims { m: oc, n: tiles, k: c },
                Operand::Stored(&u[xi * oc * c..][..oc * c]),
                Operand::Stored(&v[xi * c * tiles..][..c * tiles]),
                &mut m[xi * oc * tiles..][..oc * tiles],
                Accumulate::Overwrite,
            );
        }
        let mut y = vec![f32::NAN; n * oc * t.oh * t.ow];
        t.output(&m, oc, n, &mut y, &mut Vec::new());
        y
    }

    #[test]
    fn tiles_match_direct_convolution() {
        // Padding 0, 1 and 2; sizes that fill their tiles and sizes that leave them ragged.
        for (h, w, p) in [(8, 8, 1), (7, 9, 0), (5, 6, 2), (13, 11, 1), (10, 10, 0)] {
            let (n, c, oc) = (2, 16, 17);
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
        let (n, c, oc, h, w) = (2, 16, 16, 9, 7);
        let t = Winograd::new(&geometry(n, c, h, w, 1), oc, 1).unwrap();
        let (tiles, plane) = (n * t.tiles(), &mut Vec::new());
        let close =
            |a: f64, b: f64, what: &str| assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "{what}: {a} vs {b}");

        let (x, dv) = (values(n * c * h * w, 3), values(POINTS * c * tiles, 4));
        let (mut v, mut dx) = (vec![0.0; dv.len()], vec![f32::NAN; x.len()]);
        t.input(&x, n, &mut v, plane);
        t.input_adjoint(&dv, n, &mut dx, plane);
        close(dot(&v, &dv), dot(&x, &dx), "input");

        let (m, dy) = (values(POINTS * oc * tiles, 5), values(n * oc * t.oh * t.ow, 6));
        let (mut y, mut dm) = (vec![0.0; dy.len()], vec![f32::NAN; m.len()]);
        t.output(&m, oc, n, &mut y, plane);
        t.output_adjoint(&dy, oc, n, &mut dm, plane);
        close(dot(&y, &dy), dot(&m, &dm), "output");

        let (wt, du) = (values(oc * c * 9, 7), values(POINTS * oc * c, 8));
        let mut dw = vec![f32::NAN; wt.len()];
        t.filter_adjoint(&du, oc, &mut dw);
        close(dot(&t.filter(&wt, oc), &du), dot(&wt, &dw), "filter");
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
