//! 2-D convolution with PyTorch's semantics (stride, padding, dilation, groups, bias).
//!
//! Letters: N batch, C input channels, H, W input size, OC output channels,
//! KH, KW kernel, OH, OW output size, L = OH·OW, G groups, Cg = C/G, OCg = OC/G.
//!
//! `y[n, o, i, j] = b[o] + Σ_{c, p, q} w[o, c, p, q] · x[n, g·Cg + c, i·sh − ph + p·dh, j·sw − pw + q·dw]`
//! where `g = o / OCg`: each filter's `Cg·KH·KW` weights and one bias are shared
//! across all positions. Computed as im2col then one GEMM per group:
//! `cols: [C·KH·KW, N·L]`, `y_g = W_g · cols_g: [OCg, N·L]`.
//! Backward: `dW_g = dy_g · cols_gᵀ`, `db = Σ_{n, l} dy`, `dcols_g = W_gᵀ · dy_g`,
//! `dx = col2im(dcols)`.
//!
//! Uses: `tensor`, `kernels::{conv, gemm}`.

use crate::kernels::conv::{col2im, im2col, ConvGeometry};
use crate::kernels::gemm::{sgemm, Accumulate, Dims, Operand};
use crate::tensor::{Backward, Tensor};

/// Settings of [`Tensor::conv2d`]; `Default` is PyTorch's (stride 1, padding 0,
/// dilation 1, groups 1). Pairs are `(height, width)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dOptions {
    /// Step between output positions.
    pub stride: (usize, usize),
    /// Zeros added on each side of the input.
    pub padding: (usize, usize),
    /// Spacing between kernel taps.
    pub dilation: (usize, usize),
    /// Input and output channels split into this many independent groups.
    pub groups: usize,
}

impl Default for Conv2dOptions {
    fn default() -> Self {
        Conv2dOptions { stride: (1, 1), padding: (0, 0), dilation: (1, 1), groups: 1 }
    }
}

impl Tensor {
    /// `torch.nn.functional.conv2d(x, weight, bias, stride, padding, dilation, groups)`
    /// with `x: [N, C, H, W]`, `weight: [OC, C/G, KH, KW]`, `bias: [OC]`;
    /// returns `[N, OC, OH, OW]`, `OH = ⌊(H + 2ph − dh·(KH − 1) − 1)/sh⌋ + 1`:
    ///
    /// `y[n, o, i, j] = b[o] + Σ_{c, p, q} w[o, c, p, q] · x[n, g·Cg + c, i·sh − ph + p·dh, j·sw − pw + q·dw]`
    ///
    /// where `g = o / OCg` (G groups, `Cg = C/G`, `OCg = OC/G`): each filter's
    /// `Cg·KH·KW` weights and one bias are shared across all positions.
    /// Computed as im2col and one GEMM per group, `cols: [C·KH·KW, N·L]`,
    /// `y_g = W_g · cols_g: [OCg, N·L]` with `L = OH·OW`; the backward pass is
    /// `dW_g = dy_g · cols_gᵀ`, `db = Σ_{n, l} dy`, `dcols_g = W_gᵀ · dy_g`,
    /// `dx = col2im(dcols)`.
    ///
    /// ```
    /// use saddle::{ops::Conv2dOptions, Tensor};
    /// let x = Tensor::ones(&[1, 3, 5, 5]); // one RGB image
    /// let w = Tensor::ones(&[4, 3, 3, 3]); // four 3×3×3 filters
    /// let y = x.conv2d(&w, None, Conv2dOptions { padding: (1, 1), ..Default::default() });
    /// assert_eq!(y.shape(), &[1, 4, 5, 5]);
    /// assert_eq!(y.to_vec()[6], 27.0); // an interior position sees 3·3·3 ones
    /// ```
    pub fn conv2d(&self, weight: &Tensor, bias: Option<&Tensor>, opt: Conv2dOptions) -> Tensor {
        let (xs, ws) = (self.shape(), weight.shape());
        if xs.len() != 4 || ws.len() != 4 {
            panic!("conv2d: input {xs:?} must be [N, C, H, W] and weight {ws:?} [OC, C/groups, KH, KW]");
        }
        let groups = opt.groups;
        if groups == 0 || xs[1] % groups != 0 || ws[0] % groups != 0 {
            panic!("conv2d: groups = {groups} must divide input channels {} and output channels {}", xs[1], ws[0]);
        }
        if xs[1] / groups != ws[1] {
            panic!("conv2d: input {xs:?} has {} channels but weight {ws:?} expects {}", xs[1], ws[1] * groups);
        }
        if opt.stride.0 == 0 || opt.stride.1 == 0 || opt.dilation.0 == 0 || opt.dilation.1 == 0 {
            panic!("conv2d: stride {:?} and dilation {:?} must be positive", opt.stride, opt.dilation);
        }
        let oc = ws[0];
        if let Some(b) = bias {
            if b.shape() != [oc] {
                panic!("conv2d: bias {:?} does not match weight {ws:?} (expected [{oc}])", b.shape());
            }
        }
        let geo = ConvGeometry {
            n: xs[0],
            c: xs[1],
            h: xs[2],
            w: xs[3],
            kernel: (ws[2], ws[3]),
            stride: opt.stride,
            padding: opt.padding,
            dilation: opt.dilation,
        };
        let Some((oh, ow)) = geo.output() else {
            panic!(
                "conv2d: kernel {:?} with dilation {:?} does not fit input {xs:?} padded by {:?}",
                (ws[2], ws[3]),
                opt.dilation,
                opt.padding
            );
        };
        let l = oh * ow;
        let x = self.data();
        let w = weight.data();
        let b = bias.map(|b| b.to_vec());
        let mut out = vec![0.0f32; geo.n * oc * l];
        let chunk = images_per_chunk(&geo);
        let mut saved_cols = None;
        for n0 in (0..geo.n).step_by(chunk) {
            let part = ConvGeometry { n: chunk.min(geo.n - n0), ..geo };
            let image = geo.c * geo.h * geo.w;
            let cols = im2col(&x[n0 * image..][..part.n * image], &part); // [C·KH·KW, n·L]
            let out_cm = forward_gemm(&w, &cols, &part, oc, groups); // [OC, n·L]
                                                                     // [OC, n, L] → out[n0 + n, OC, L], adding the bias.
            for n in 0..part.n {
                for o in 0..oc {
                    let bo = b.as_ref().map_or(0.0, |b| b[o]);
                    let src = &out_cm[o * part.n * l + n * l..][..l];
                    out[((n0 + n) * oc + o) * l..][..l].iter_mut().zip(src).for_each(|(d, s)| *d = s + bo);
                }
            }
            if chunk >= geo.n {
                saved_cols = Some(cols);
            }
        }
        drop((x, w));
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        Tensor::from_op(out, &[geo.n, oc, oh, ow], &inputs, Conv2dBackward { geo, groups, oc, saved_cols })
    }
}

/// `cols` is at most this many floats (8 MiB): large batches, at inference
/// especially, are convolved a chunk of images at a time.
const COLS_BUDGET: usize = 1 << 21;

fn images_per_chunk(geo: &ConvGeometry) -> usize {
    let (oh, ow) = geo.output().expect("checked");
    (COLS_BUDGET / (geo.rows() * oh * ow).max(1)).max(1)
}

/// `y_g = W_g · cols_g` for each group: `[OC, n·L]`.
fn forward_gemm(w: &[f32], cols: &[f32], part: &ConvGeometry, oc: usize, groups: usize) -> Vec<f32> {
    let (oh, ow) = part.output().expect("checked");
    let ncols = part.n * oh * ow;
    let (ocg, kk) = (oc / groups, part.rows() / groups);
    let mut out_cm = vec![0.0f32; oc * ncols];
    for g in 0..groups {
        // y_g = W_g · cols_g: [OCg, n·L]
        let (wg, cg) = (&w[g * ocg * kk..][..ocg * kk], &cols[g * kk * ncols..][..kk * ncols]);
        sgemm(
            Dims { m: ocg, n: ncols, k: kk },
            Operand::Stored(wg),
            Operand::Stored(cg),
            &mut out_cm[g * ocg * ncols..][..ocg * ncols],
            Accumulate::Overwrite,
        );
    }
    out_cm
}

struct Conv2dBackward {
    geo: ConvGeometry,
    groups: usize,
    oc: usize,
    /// `cols` of the forward pass when the batch fit in one chunk; recomputed otherwise.
    saved_cols: Option<Vec<f32>>,
}

impl Backward for Conv2dBackward {
    fn name(&self) -> &'static str {
        "conv2d"
    }
    fn backward(&self, inputs: &[Tensor], _out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        let (geo, oc, groups) = (&self.geo, self.oc, self.groups);
        let (oh, ow) = geo.output().expect("geometry checked in forward");
        let l = oh * ow;
        let (ocg, kk) = (oc / groups, geo.rows() / groups);
        let (need_x, need_w) = (inputs[0].is_requires_grad(), inputs[1].is_requires_grad());
        let x = inputs[0].data();
        let w = inputs[1].data();
        let image = geo.c * geo.h * geo.w;
        let mut gx = need_x.then(|| vec![0.0f32; geo.n * image]);
        let mut gw = need_w.then(|| vec![0.0f32; oc * kk]);
        let chunk = images_per_chunk(geo);
        for n0 in (0..geo.n).step_by(chunk) {
            let part = ConvGeometry { n: chunk.min(geo.n - n0), ..*geo };
            let ncols = part.n * l;
            // dy[n0 .. n0 + n]: [n, OC, L] → [OC, n·L]
            let mut g_cm = vec![0.0f32; oc * ncols];
            for n in 0..part.n {
                for o in 0..oc {
                    g_cm[o * ncols + n * l..][..l].copy_from_slice(&g[((n0 + n) * oc + o) * l..][..l]);
                }
            }
            if let Some(gw) = gw.as_mut() {
                let recomputed;
                let cols = match &self.saved_cols {
                    Some(c) => c,
                    None => {
                        recomputed = im2col(&x[n0 * image..][..part.n * image], &part);
                        &recomputed
                    }
                };
                for gi in 0..groups {
                    // dW_g (+)= dy_g · cols_gᵀ: [OCg, Cg·KH·KW]
                    let (dy, cg) = (&g_cm[gi * ocg * ncols..][..ocg * ncols], &cols[gi * kk * ncols..][..kk * ncols]);
                    sgemm(
                        Dims { m: ocg, n: kk, k: ncols },
                        Operand::Stored(dy),
                        Operand::Transposed(cg),
                        &mut gw[gi * ocg * kk..][..ocg * kk],
                        if n0 > 0 { Accumulate::Add } else { Accumulate::Overwrite },
                    );
                }
            }
            if let Some(gx) = gx.as_mut() {
                let mut dcols = vec![0.0f32; part.rows() * ncols];
                for gi in 0..groups {
                    // dcols_g = W_gᵀ · dy_g: [Cg·KH·KW, n·L]
                    let (wg, dy) = (&w[gi * ocg * kk..][..ocg * kk], &g_cm[gi * ocg * ncols..][..ocg * ncols]);
                    sgemm(
                        Dims { m: kk, n: ncols, k: ocg },
                        Operand::Transposed(wg),
                        Operand::Stored(dy),
                        &mut dcols[gi * kk * ncols..][..kk * ncols],
                        Accumulate::Overwrite,
                    );
                }
                gx[n0 * image..][..part.n * image].copy_from_slice(&col2im(&dcols, &part));
            }
        }
        let mut grads = vec![gx, gw];
        if let Some(b) = inputs.get(2) {
            // db[o] = Σ_{n, l} dy[n, o, l], summed in a fixed order.
            grads.push(b.is_requires_grad().then(|| {
                let mut db = vec![0.0f32; oc];
                g.chunks_exact(l.max(1)).enumerate().for_each(|(i, plane)| db[i % oc] += plane.iter().sum::<f32>());
                db
            }));
        }
        grads
    }
}

#[cfg(test)]
mod tests {
    use super::Conv2dOptions;
    use crate::ops::testing::{gradcheck, Fixtures};
    use crate::{Rng, Tensor};

    #[test]
    fn conv2d_matches_pytorch() {
        let fx = Fixtures::load("conv");
        for case in fx.cases("conv2d") {
            let (x, w) = (fx.param(&case, "x"), fx.param(&case, "weight"));
            let opt = Conv2dOptions {
                stride: case.attr_pair("stride"),
                padding: case.attr_pair("padding"),
                dilation: case.attr_pair("dilation"),
                groups: case.attr_usize("groups"),
            };
            if fx.has(&case, "bias") {
                let b = fx.param(&case, "bias");
                fx.check_forward_backward(
                    &case,
                    &x.conv2d(&w, Some(&b), opt),
                    &[("x", &x), ("weight", &w), ("bias", &b)],
                );
            } else {
                fx.check_forward_backward(&case, &x.conv2d(&w, None, opt), &[("x", &x), ("weight", &w)]);
            }
        }
    }

    #[test]
    fn conv2d_gradcheck() {
        let mut rng = Rng::new(60);
        let x = Tensor::uniform(&[2, 4, 6, 5], -1.0, 1.0, &mut rng);
        let w = Tensor::uniform(&[6, 2, 3, 2], -1.0, 1.0, &mut rng);
        let b = Tensor::uniform(&[6], -1.0, 1.0, &mut rng);
        let opt = Conv2dOptions { stride: (2, 1), padding: (1, 1), dilation: (1, 2), groups: 2 };
        gradcheck("conv2d", &[x, w, b], |t| t[0].conv2d(&t[1], Some(&t[2]), opt), &mut rng);
    }

    #[test]
    fn conv2d_forward_and_backward_do_not_depend_on_the_thread_count() {
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let mut rng = Rng::new(61);
                let x = Tensor::uniform(&[16, 6, 14, 14], -1.0, 1.0, &mut rng).requires_grad();
                let w = Tensor::uniform(&[16, 6, 5, 5], -1.0, 1.0, &mut rng).requires_grad();
                let y = x.conv2d(&w, None, Conv2dOptions::default());
                y.backward_with(&Tensor::uniform(y.shape(), -1.0, 1.0, &mut rng));
                (y.to_vec(), x.grad().unwrap().to_vec(), w.grad().unwrap().to_vec())
            })
        };
        let one = run(1);
        assert!(one == run(2) && one == run(3), "conv2d results differ between thread counts");
    }

    #[test]
    fn large_batches_are_chunked_with_the_same_result() {
        // 3·5·5 rows × 28·28 columns per image: 2^21 / 58800 = 35 images per chunk.
        let mut rng = Rng::new(62);
        let x = Tensor::uniform(&[80, 3, 28, 28], -1.0, 1.0, &mut rng).requires_grad();
        let w = Tensor::uniform(&[4, 3, 5, 5], -1.0, 1.0, &mut rng).requires_grad();
        let opt = Conv2dOptions { padding: (2, 2), ..Default::default() };
        let y = x.conv2d(&w, None, opt);
        let g = Tensor::uniform(y.shape(), -1.0, 1.0, &mut rng);
        y.backward_with(&g);
        // The same images one at a time (each a single chunk).
        let (mut gw, image) = (vec![0.0f32; 300], 3 * 28 * 28);
        for n in 0..80 {
            let xn = x.narrow(0, n, 1).detach().requires_grad();
            let wn = w.detach().requires_grad();
            let yn = xn.conv2d(&wn, None, opt);
            crate::ops::testing::assert_close("chunked forward", &yn.to_vec(), &y.narrow(0, n, 1).to_vec(), 1e-5);
            yn.backward_with(&g.narrow(0, n, 1).detach());
            let gx = x.grad().unwrap().to_vec();
            crate::ops::testing::assert_close(
                "chunked dx",
                &xn.grad().unwrap().to_vec(),
                &gx[n * image..][..image],
                1e-5,
            );
            gw.iter_mut().zip(wn.grad().unwrap().to_vec()).for_each(|(a, b)| *a += b);
        }
        crate::ops::testing::assert_close("chunked dW", &w.grad().unwrap().to_vec(), &gw, 1e-4);
    }

    #[test]
    #[should_panic(expected = "conv2d: input [8, 3, 28, 28] has 3 channels but weight [16, 1, 3, 3] expects 1")]
    fn conv2d_names_both_shapes() {
        Tensor::zeros(&[8, 3, 28, 28]).conv2d(&Tensor::zeros(&[16, 1, 3, 3]), None, Conv2dOptions::default());
    }
}
