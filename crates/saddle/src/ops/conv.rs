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
//! `dx = col2im(dcols)`. `N` here is a task's few images, not the batch
//! (`Tasks`): each task's `cols` lives in a buffer of its worker, and the
//! tasks' `dW_g` are summed in task order.
//!
//! A 3×3 convolution of stride 1 with at least 16 input and output channels
//! (one group) runs as Winograd tiles instead (`kernels::winograd`): 36
//! products per 4×4 output tile, `M[ξ] = V[ξ] · U[ξ]ᵀ: [T, OC]`, with T the
//! task's tiles, and their adjoints backward. It rounds differently: within
//! 10⁻⁵ of the largest output or gradient, not of each.
//!
//! Any other convolution of stride 1, one group and at most 24 output
//! channels runs its forward pass and its weight gradient as direct sums
//! (`kernels::conv::Direct`), one fused multiply-add per term: within 10⁻⁵
//! of im2col's, not bit for bit. Its input gradient is `Wᵀ · dy` and
//! `col2im`, per task.
//!
//! `conv2d_relu` is `relu(conv2d(…))` as one op: the ReLU where the bias is
//! added, and ReLU's `gout·1[y > 0]` in `gout`'s buffer before the backward.
//!
//! Uses: `tensor`, `kernels::{conv, elementwise, gemm, winograd}`.

use crate::kernels::conv::{col2im, im2col, ConvGeometry, Direct};
use crate::kernels::elementwise::{sum, zip_apply};
use crate::kernels::gemm::{sgemm, sgemm_sequential, Accumulate, Dims, Operand, Product};
use crate::kernels::winograd::Winograd;
use crate::kernels::{grow, written, zeroed, Fresh};
use crate::tensor::{is_grad_enabled, Backward, Tensor};
use rayon::prelude::*;
use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Mutex;

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
    /// `dx = col2im(dcols)`. A 3×3 convolution of stride 1 between at least
    /// 16 channels (one group) runs as Winograd F(4×4, 3×3) tiles instead,
    /// with 4× fewer multiplications, exact but for rounding (within 10⁻⁵ of
    /// the largest value; see `kernels::winograd`). Any other convolution of
    /// stride 1 and one group into at most 24 channels sums each output,
    /// and each weight's gradient, directly (`kernels::conv::Direct`), which
    /// rounds differently from im2col's products, within 10⁻⁵.
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
        self.convolve(weight, bias, opt, false)
    }

    /// `relu(conv2d(x, weight, bias))`, bit for bit, as one op: the ReLU is
    /// applied in the pass that adds the bias, while each output plane is
    /// still in cache, and there is no tensor of pre-activations. The
    /// gradient is the convolution's, from `gout·1[y > 0]` (ReLU's).
    /// [`Sequential`](crate::nn::Sequential) calls it for a
    /// [`Conv2d`](crate::nn::Conv2d) followed by a [`ReLU`](crate::nn::ReLU).
    ///
    /// ```
    /// use saddle::{ops::Conv2dOptions, Tensor};
    /// let x = Tensor::from_vec(vec![1.0, -2.0, 3.0, -4.0], &[1, 1, 2, 2]);
    /// let w = Tensor::ones(&[1, 1, 1, 1]);
    /// let y = x.conv2d_relu(&w, None, Conv2dOptions::default());
    /// assert_eq!(y.to_vec(), [1.0, 0.0, 3.0, 0.0]);
    /// ```
    pub fn conv2d_relu(&self, weight: &Tensor, bias: Option<&Tensor>, opt: Conv2dOptions) -> Tensor {
        self.convolve(weight, bias, opt, true)
    }

    fn convolve(&self, weight: &Tensor, bias: Option<&Tensor>, opt: Conv2dOptions, relu: bool) -> Tensor {
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
        let geo = geometry(xs, ws, opt);
        let Some((oh, ow)) = geo.output() else {
            panic!(
                "conv2d: kernel {:?} with dilation {:?} does not fit input {xs:?} padded by {:?}",
                (ws[2], ws[3]),
                opt.dilation,
                opt.padding
            );
        };
        let l = oh * ow;
        let (x, w) = (self.data(), weight.data());
        let (x, w, b) = (&x[..], &w[..], bias.map(|b| b.to_vec()));
        let mut out = Fresh::new(geo.n * oc * l);
        let wino = Winograd::new(&geo, oc, groups);
        let tasks = Tasks::new(&geo, wino.map_or(l, |t| t.tiles()));
        let image = geo.c * geo.h * geo.w;
        let u = wino.map(|t| t.filter(w, oc));
        let cols_len = geo.rows() * geo.n * l;
        let direct = (wino.is_none() && is_direct(&geo, oc, groups)).then(|| Direct::new(&geo, w, oc));
        let by_cols = wino.is_none() && direct.is_none();
        let keep = by_cols
            && weight.is_requires_grad()
            && is_grad_enabled()
            && keeps_cols(cols_len * std::mem::size_of::<f32>());
        if by_cols && !keep {
            KEPT.clear();
        }
        let mut kept = keep.then(|| KEPT.take(cols_len));
        let mut kept_t: Vec<Option<&mut [f32]>> = match kept.as_mut() {
            Some(k) => k.chunks_mut((tasks.per * geo.rows() * l).max(1)).map(Some).collect(),
            None => Vec::new(),
        };
        kept_t.resize_with(geo.n.div_ceil(tasks.per), || None);
        // Each task: cols = im2col(its images), y = W · cols: [OC, n·L] → out[n, OC, L] with the bias;
        // or, as Winograd tiles, V = Bᵀ d B, M[ξ] = V[ξ] · U[ξ]ᵀ, y = Aᵀ M A.
        tasks.run(
            out.parts(tasks.per * oc * l).zip(kept_t).enumerate().collect(),
            |(t, (out_t, kept_t)), [cols, y, plane, _]| {
                let part = ConvGeometry { n: out_t.len() / (oc * l), ..geo };
                let x_t = &x[t * tasks.per * image..][..part.n * image];
                let out_t = match (&direct, &wino, &u) {
                    // Direct sums write every output value, so their part is
                    // not zeroed first (at LeNet-5's sizes that was 5% of its
                    // inference).
                    (Some(direct), _, _) => {
                        for (x_n, y_n) in x_t.chunks_exact(image).zip(out_t.chunks_exact_mut(oc * l)) {
                            direct.write(x_n, cols, y, y_n);
                        }
                        // SAFETY: `Direct::write` wrote each image's whole output.
                        unsafe { written(out_t) }
                    }
                    (None, Some(wino), Some(u)) => {
                        let out_t = zeroed(out_t);
                        wino.forward((x_t, part.n), u, oc, out_t, [cols, y, plane], tasks.mm);
                        out_t
                    }
                    _ => {
                        let out_t = zeroed(out_t);
                        // The task's columns, in its worker's buffer or in those kept for the backward pass.
                        let cols = match kept_t {
                            Some(k) => k,
                            None => grow(cols, part.rows() * part.n * l),
                        };
                        im2col(x_t, &part, cols);
                        if part.n > 1 {
                            let y = grow(y, oc * part.n * l);
                            forward_gemm(w, cols, &part, oc, groups, y, tasks.mm);
                            for (n, dst) in out_t.chunks_exact_mut(oc * l).enumerate() {
                                for (o, d) in dst.chunks_exact_mut(l).enumerate() {
                                    d.copy_from_slice(&y[(o * part.n + n) * l..][..l]);
                                    finish(d, b.as_ref().map(|b| b[o]), relu);
                                }
                            }
                            return;
                        }
                        forward_gemm(w, cols, &part, oc, groups, out_t, tasks.mm);
                        out_t
                    }
                };
                out_t.chunks_exact_mut(l).enumerate().for_each(|(i, d)| finish(d, b.as_ref().map(|b| b[i % oc]), relu));
            },
        );
        // SAFETY: every task wrote all of its part of `out`: by direct sums,
        // or zeroed first thing.
        let out = unsafe { out.written() };
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        Tensor::from_op(out, &[geo.n, oc, oh, ow], &inputs, Conv2dBackward { geo, groups, oc, u, relu, cols: kept })
    }
}

/// The last pass over one output plane: `+ bias`, then `max(·, 0)` if
/// `relu` (the same operations as `add` and `relu`, so the same bits).
fn finish(plane: &mut [f32], bias: Option<f32>, relu: bool) {
    match (bias, relu) {
        (Some(b), false) => plane.iter_mut().for_each(|v| *v += b),
        (Some(b), true) => plane.iter_mut().for_each(|v| *v = (*v + b).max(0.0)),
        (None, true) => plane.iter_mut().for_each(|v| *v = v.max(0.0)),
        (None, false) => {}
    }
}

/// Whether the forward pass and the weight gradient run [`Direct`] rather
/// than im2col and a GEMM (so no `cols` are kept): stride 1, no dilation,
/// one group and at most 24 output channels. One image on one thread of the
/// Xeon, with AVX-512: LeNet-5's two layers (1 → 6 and 6 → 16 channels,
/// 5×5) took 3.0 and 5.1 µs instead of 6.3 and 16.2, ResNet-20's first (3 →
/// 16, 3×3) 9.6 instead of 13.3, the speedrun network's first (3 → 24, 2×2)
/// 8.6 instead of 9.8; 3 → 32 channels broke even (17.9 µs), and 3 → 64
/// took 35.3 against 31.4.
fn is_direct(geo: &ConvGeometry, oc: usize, groups: usize) -> bool {
    groups == 1 && geo.stride == (1, 1) && geo.dilation == (1, 1) && oc <= 24
}

/// The geometry of a convolution of `x: [N, C, H, W]` by `w: [OC, C/G, KH, KW]`.
fn geometry(xs: &[usize], ws: &[usize], opt: Conv2dOptions) -> ConvGeometry {
    ConvGeometry {
        n: xs[0],
        c: xs[1],
        h: xs[2],
        w: xs[3],
        kernel: (ws[2], ws[3]),
        stride: opt.stride,
        padding: opt.padding,
        dilation: opt.dilation,
    }
}

/// How a convolution is split: `per` images to one task, so that its products
/// have about 256 columns (`W · cols` has `L` per image, Winograd's `th·tw`;
/// late layers' small images would starve the kernel one at a time) but there
/// are at least four tasks where the batch has four images (so that
/// Winograd's transforms, which run inside a task, run in parallel too), and
/// the tasks run in parallel with one product at a time each, or, when there
/// are fewer than four, one after another with parallel products.
/// Both depend on the shape alone, never on the thread count, so the sums do
/// not either; the buffers of `cols` stay per task, a few MiB at most for
/// 32×32 images, instead of the whole batch's.
struct Tasks {
    per: usize,
    parallel: bool,
    mm: Product,
}

impl Tasks {
    fn new(geo: &ConvGeometry, columns_per_image: usize) -> Self {
        let per = 256usize.div_ceil(columns_per_image.max(1)).min(geo.n.div_ceil(4)).max(1);
        let parallel = geo.n.div_ceil(per) >= 4;
        Tasks { per, parallel, mm: if parallel { sgemm_sequential } else { sgemm } }
    }
    /// `f(item, scratch)` for every item. Each worker thread keeps its
    /// buffers from call to call: made afresh for each call, they were
    /// zeroed and faulted in again at every step (a tenth of the speedrun
    /// network's training time went to that).
    fn run<T: Send>(&self, items: Vec<T>, f: impl Fn(T, &mut Scratch) + Sync) {
        thread_local! {
            static KEPT: RefCell<Scratch> = RefCell::default();
        }
        if self.parallel {
            items.into_par_iter().for_each(|item| {
                // A task that waits inside `f` may run another here: that one gets fresh buffers.
                KEPT.with(|kept| match kept.try_borrow_mut() {
                    Ok(mut scratch) => f(item, &mut scratch),
                    Err(_) => f(item, &mut Default::default()),
                })
            });
        } else {
            let mut scratch = Default::default();
            items.into_iter().for_each(|item| f(item, &mut scratch));
        }
    }
}

/// A worker's buffers, grown as its tasks need.
type Scratch = [Vec<f32>; 4];

/// `y_g = W_g · cols_g` for each group into `y: [OC, n·L]`.
fn forward_gemm(w: &[f32], cols: &[f32], part: &ConvGeometry, oc: usize, groups: usize, y: &mut [f32], mm: Product) {
    let (oh, ow) = part.output().expect("checked");
    let ncols = part.n * oh * ow;
    let (ocg, kk) = (oc / groups, part.rows() / groups);
    for g in 0..groups {
        let (wg, cg) = (&w[g * ocg * kk..][..ocg * kk], &cols[g * kk * ncols..][..kk * ncols]);
        let yg = &mut y[g * ocg * ncols..][..ocg * ncols];
        mm(Dims { m: ocg, n: ncols, k: kk }, Operand::Stored(wg), Operand::Stored(cg), yg, Accumulate::Overwrite);
    }
}

/// Tasks whose weight-gradient partials are held at once before they are
/// summed, in task order, into `dW`.
const ROUND: usize = 16;

struct Conv2dBackward {
    geo: ConvGeometry,
    groups: usize,
    oc: usize,
    /// Winograd's transformed filters (`Winograd::filter`), from the forward pass.
    u: Option<Vec<f32>>,
    /// A ReLU fused after it ([`Tensor::conv2d_relu`]).
    relu: bool,
    /// The forward pass's `cols` of every task, one after another, where
    /// kept ([`KEEP_COLS_BYTES`]).
    cols: Option<Vec<f32>>,
}

impl Drop for Conv2dBackward {
    fn drop(&mut self) {
        if let Some(cols) = self.cols.take() {
            KEPT.give(cols);
        }
    }
}

/// The most bytes of `cols` a convolution keeps from its forward pass for
/// its weight gradient, instead of running `im2col` again per task while
/// the task's images are in cache. Measured on LeNet-5's training (2-core
/// Xeon, four interleaved pairs each), whose first layer's `cols` take 5,
/// 10 and 20 MB at batch 64, 128 and 256: kept, +8%, +6% and −6%.
const KEEP_COLS_BYTES: usize = 12 << 20;

/// Whether a convolution keeps `bytes` of `cols` for its backward pass.
fn keeps_cols(bytes: usize) -> bool {
    #[cfg(test)]
    if tests::RECOMPUTE_COLS.with(|r| r.get()) {
        return false;
    }
    bytes <= KEEP_COLS_BYTES
}

/// Kept `cols` buffers between steps, by length: a convolution takes one
/// of its length (made afresh, zeroed, it cost as much as the `im2col` it
/// saves) and its backward node gives it back when dropped. A length with
/// none means the shapes changed (a last, smaller batch; another model),
/// and an `im2col` convolution that keeps nothing (too large, or in
/// evaluation) means they may have: either drops the buffers held, which
/// would otherwise sit idle (13 MB through each epoch of `saddle train
/// mnist`, from its last batch).
static KEPT: ColsPool = ColsPool(Mutex::new(Vec::new()));

struct ColsPool(Mutex<Vec<Vec<f32>>>);

impl ColsPool {
    /// Buffers held at most.
    const MAX: usize = 8;
    fn take(&self, len: usize) -> Vec<f32> {
        let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match pool.iter().position(|v| v.len() == len) {
            Some(i) => pool.swap_remove(i),
            None => {
                pool.clear();
                vec![0.0; len]
            }
        }
    }
    fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
    fn give(&self, v: Vec<f32>) {
        let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() == Self::MAX {
            pool.remove(0);
        }
        pool.push(v);
    }
}

impl Backward for Conv2dBackward {
    fn name(&self) -> &'static str {
        if self.relu {
            "conv2d_relu"
        } else {
            "conv2d"
        }
    }
    fn reads_output(&self) -> bool {
        self.relu
    }
    fn backward_owned(&self, inputs: &[Tensor], out: &[f32], mut g: Vec<f32>) -> Vec<Option<Vec<f32>>> {
        if self.relu {
            // ReLU's backward, in gout's buffer.
            zip_apply(&mut g, out, |g, y| if y > 0.0 { g } else { 0.0 });
        }
        self.grads(inputs, Cow::Owned(g))
    }
    fn backward(&self, inputs: &[Tensor], out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        if self.relu {
            return self.backward_owned(inputs, out, g.to_vec());
        }
        self.grads(inputs, Cow::Borrowed(g))
    }
}

impl Conv2dBackward {
    /// `∂L/∂x`, `∂L/∂w`, `∂L/∂b` from `g = ∂L/∂y` of the convolution itself.
    /// A Winograd convolution that keeps its size (`C = OC`, the same `H×W`)
    /// writes `∂L/∂x` into `g`'s buffer where it owns it: each task reads its
    /// images' `dy` before it writes their `dx`.
    fn grads(&self, inputs: &[Tensor], g: Cow<'_, [f32]>) -> Vec<Option<Vec<f32>>> {
        let (geo, oc, groups) = (&self.geo, self.oc, self.groups);
        let (oh, ow) = geo.output().expect("geometry checked in forward");
        let l = oh * ow;
        let (ocg, kk) = (oc / groups, geo.rows() / groups);
        let (need_x, need_w) = (inputs[0].is_requires_grad(), inputs[1].is_requires_grad());
        let (x, w) = (inputs[0].data(), inputs[1].data());
        let (x, w) = (&x[..], &w[..]);
        let image = geo.c * geo.h * geo.w;
        let mut gw = need_w.then(|| vec![0.0f32; oc * kk]);
        let wino = Winograd::new(geo, oc, groups);
        // db[o] = Σ_{n, l} dy[n, o, l], in f64 and a fixed order; each plane in
        // partial sums (one chain of f32 additions was 5% of a LeNet-5 step).
        let gb = inputs.get(2).map(|b| {
            b.is_requires_grad().then(|| {
                let mut db = vec![0.0f64; oc];
                g.chunks_exact(l.max(1)).enumerate().for_each(|(i, plane)| db[i % oc] += sum(plane, |v| v as f64));
                db.into_iter().map(|v| v as f32).collect()
            })
        });
        // `dy` apart from `dx`, or `None` where `dx` is written over it.
        let held;
        let (mut gx, g): (Option<Vec<f32>>, Option<&[f32]>) = match g {
            Cow::Owned(g) if need_x && wino.is_some() && g.len() == geo.n * image => (Some(g), None),
            g => {
                held = g;
                (need_x.then(|| vec![0.0f32; geo.n * image]), Some(&held[..]))
            }
        };
        // A layer whose forward pass summed directly (so kept no columns) takes
        // its weight gradient the same way.
        let direct = (need_w && wino.is_none() && self.cols.is_none() && is_direct(geo, oc, groups))
            .then(|| Direct::new(&ConvGeometry { n: 1, ..*geo }, w, oc));
        let tasks = Tasks::new(geo, wino.map_or(l, |t| t.tiles()));
        let count = geo.n.div_ceil(tasks.per);
        let mut partials = vec![0.0f32; if need_w { ROUND.min(count) * oc * kk } else { 0 }];
        for r0 in (0..count).step_by(ROUND) {
            let round = ROUND.min(count - r0);
            let images = (r0 * tasks.per)..geo.n.min((r0 + round) * tasks.per);
            let mut pw: Vec<Option<&mut [f32]>> = partials.chunks_mut((oc * kk).max(1)).map(Some).collect();
            pw.resize_with(round, || None);
            // One slice of dx per task: the round's images in chunks of `per`.
            let px: Vec<Option<&mut [f32]>> = match gx.as_mut() {
                Some(gx) => gx[images.start * image..images.end * image]
                    .chunks_mut((tasks.per * image).max(1))
                    .map(Some)
                    .collect(),
                None => (0..round).map(|_| None).collect(),
            };
            let items: Vec<_> = pw.into_iter().zip(px).enumerate().collect();
            tasks.run(items, |(i, (pw, px)), [cols, dy_buf, du, plane]| {
                let n0 = (r0 + i) * tasks.per;
                let part = ConvGeometry { n: tasks.per.min(geo.n - n0), ..*geo };
                let x_t = &x[n0 * image..][..part.n * image];
                let g_t = g.map(|g| &g[n0 * oc * l..][..part.n * oc * l]);
                if let (Some(wino), Some(u)) = (&wino, &self.u) {
                    let dw = pw.map(|pw| &mut pw[..]);
                    wino.backward((x_t, g_t, part.n), u, oc, (dw, px), [cols, dy_buf, du, plane], tasks.mm);
                    return;
                }
                let (g, g_t) = (g.expect("dy apart from dx outside Winograd"), g_t.expect("as g"));
                let pw = match (pw, &direct) {
                    (Some(pw), Some(direct)) => {
                        pw.fill(0.0);
                        for (x_n, dy_n) in x_t.chunks_exact(image).zip(g_t.chunks_exact(oc * l)) {
                            direct.weight_grad(x_n, dy_n, du, plane, pw);
                        }
                        None
                    }
                    (pw, _) => pw,
                };
                if pw.is_none() && px.is_none() {
                    return; // a direct first layer: its weight gradient was all
                }
                let ncols = part.n * l;
                let cols = grow(cols, part.rows() * ncols);
                // dy of these images as [OC, n·L]
                let dy: &[f32] = if part.n == 1 {
                    g_t
                } else {
                    let dy = grow(dy_buf, oc * ncols);
                    for n in 0..part.n {
                        for o in 0..oc {
                            dy[o * ncols + n * l..][..l].copy_from_slice(&g[((n0 + n) * oc + o) * l..][..l]);
                        }
                    }
                    dy
                };
                if let Some(pw) = pw {
                    // The forward pass's columns of these images, or the same again.
                    let x_cols: &[f32] = match &self.cols {
                        Some(kept) => &kept[n0 * geo.rows() * l..][..part.rows() * ncols],
                        None => {
                            im2col(x_t, &part, cols);
                            cols
                        }
                    };
                    for gi in 0..groups {
                        // dW_g = dy_g · cols_gᵀ: [OCg, Cg·KH·KW]
                        let (dyg, cg) =
                            (&dy[gi * ocg * ncols..][..ocg * ncols], &x_cols[gi * kk * ncols..][..kk * ncols]);
                        let dims = Dims { m: ocg, n: kk, k: ncols };
                        let dst = &mut pw[gi * ocg * kk..][..ocg * kk];
                        (tasks.mm)(dims, Operand::Stored(dyg), Operand::Transposed(cg), dst, Accumulate::Overwrite);
                    }
                }
                if let Some(px) = px {
                    // dcols_g = W_gᵀ · dy_g: [Cg·KH·KW, n·L], in the buffer of cols.
                    for gi in 0..groups {
                        let (wg, dyg) = (&w[gi * ocg * kk..][..ocg * kk], &dy[gi * ocg * ncols..][..ocg * ncols]);
                        let dims = Dims { m: kk, n: ncols, k: ocg };
                        let dst = &mut cols[gi * kk * ncols..][..kk * ncols];
                        (tasks.mm)(dims, Operand::Transposed(wg), Operand::Stored(dyg), dst, Accumulate::Overwrite);
                    }
                    col2im(cols, &part, px);
                }
            });
            if let Some(gw) = gw.as_mut() {
                // dW += Σ partials, each element summed in task order.
                let partials = &partials[..round * oc * kk];
                gw.par_chunks_mut(4096).enumerate().for_each(|(j, dst)| {
                    for p in partials.chunks_exact(oc * kk) {
                        dst.iter_mut().zip(&p[j * 4096..]).for_each(|(d, v)| *d += v);
                    }
                });
            }
        }
        let mut grads = vec![gx, gw];
        grads.extend(gb);
        grads
    }
}

#[cfg(test)]
mod tests {
    use super::{geometry, is_direct, Conv2dOptions};
    use crate::kernels::winograd::Winograd;
    use crate::ops::testing::{assert_close, assert_close_to_scale, gradcheck, Fixtures};
    use crate::{Rng, Tensor};

    #[test]
    fn conv2d_matches_pytorch() {
        // `cnn_parts` holds a 3×3 convolution between 16 channels with padding 1, as Winograd tiles.
        let paths: Vec<(bool, bool)> =
            [Fixtures::load("conv"), Fixtures::load("cnn_parts")].iter().map(conv2d_cases_match).collect();
        assert_eq!(paths[0], (false, true), "the first fixtures take im2col's path, and some the direct one");
        assert!(paths[1].0, "the second fixtures take Winograd's path");
    }

    /// Whether any case took Winograd's path, and whether any took the direct one.
    fn conv2d_cases_match(fx: &Fixtures) -> (bool, bool) {
        let mut paths = (false, false);
        for case in fx.cases("conv2d") {
            let (x, w) = (fx.param(&case, "x"), fx.param(&case, "weight"));
            let opt = Conv2dOptions {
                stride: case.attr_pair("stride"),
                padding: case.attr_pair("padding"),
                dilation: case.attr_pair("dilation"),
                groups: case.attr_usize("groups"),
            };
            // Winograd's tiles round like sums of their largest terms (module docs of `kernels::winograd`).
            let tiled = Winograd::new(&geometry(x.shape(), w.shape(), opt), w.shape()[0], opt.groups).is_some();
            let compare = |what: &str, a: &[f32], e: &[f32]| {
                if tiled {
                    assert_close_to_scale(what, a, e, 1e-5)
                } else {
                    assert_close(what, a, e, 1e-5)
                }
            };
            paths.1 |= !tiled && is_direct(&geometry(x.shape(), w.shape(), opt), w.shape()[0], opt.groups);
            if fx.has(&case, "bias") {
                let b = fx.param(&case, "bias");
                let y = x.conv2d(&w, Some(&b), opt);
                fx.check_forward_backward_with(&case, &y, &[("x", &x), ("weight", &w), ("bias", &b)], compare);
            } else {
                fx.check_forward_backward_with(&case, &x.conv2d(&w, None, opt), &[("x", &x), ("weight", &w)], compare);
            }
            paths.0 |= tiled;
        }
        paths
    }

    #[test]
    fn conv2d_gradcheck() {
        let mut rng = Rng::new(60);
        let x = Tensor::uniform(&[2, 4, 6, 5], -1.0, 1.0, &mut rng);
        let w = Tensor::uniform(&[6, 2, 3, 2], -1.0, 1.0, &mut rng);
        let b = Tensor::uniform(&[6], -1.0, 1.0, &mut rng);
        let opt = Conv2dOptions { stride: (2, 1), padding: (1, 1), dilation: (1, 2), groups: 2 };
        gradcheck("conv2d", &[x, w, b], |t| t[0].conv2d(&t[1], Some(&t[2]), opt), &mut rng);
        // Winograd's tiles: 16 channels, 3×3, padding 1, a ragged 7×6 output.
        let x = Tensor::uniform(&[2, 16, 7, 6], -1.0, 1.0, &mut rng);
        let w = Tensor::uniform(&[16, 16, 3, 3], -0.3, 0.3, &mut rng);
        let b = Tensor::uniform(&[16], -1.0, 1.0, &mut rng);
        let opt = Conv2dOptions { padding: (1, 1), ..Default::default() };
        gradcheck("conv2d as Winograd tiles", &[x, w, b], |t| t[0].conv2d(&t[1], Some(&t[2]), opt), &mut rng);
    }

    #[test]
    fn conv2d_relu_is_conv2d_then_relu_bit_for_bit() {
        // One image per product, several (3 of 100 outputs each), Winograd's tiles; with and without a bias.
        for (n, c, size, k, pad, bias) in
            [(2, 1, 12, 5, 2, true), (16, 6, 14, 5, 0, true), (16, 6, 14, 5, 0, false), (3, 16, 9, 3, 1, true)]
        {
            let mut rng = Rng::new(63);
            let x = Tensor::uniform(&[n, c, size, size], -1.0, 1.0, &mut rng);
            let w = Tensor::uniform(&[16, c, k, k], -0.5, 0.5, &mut rng);
            let b = Tensor::uniform(&[16], -0.5, 0.5, &mut rng);
            let opt = Conv2dOptions { padding: (pad, pad), ..Default::default() };
            let run = |fused: bool| {
                let (x, w, b) = (x.detach().requires_grad(), w.detach().requires_grad(), b.detach().requires_grad());
                let b = bias.then_some(&b);
                let y = if fused { x.conv2d_relu(&w, b, opt) } else { x.conv2d(&w, b, opt).relu() };
                y.backward_with(&Tensor::uniform(y.shape(), -1.0, 1.0, &mut Rng::new(64)));
                let grads = [Some(&x), Some(&w), b].map(|t| t.map(|t| t.grad().unwrap().to_vec()));
                (y.to_vec(), grads)
            };
            let (fused, separate) = (run(true), run(false));
            assert!(fused.0.contains(&0.0) && fused.0.iter().any(|&v| v > 0.0));
            assert!(
                fused == separate,
                "conv2d_relu differs from conv2d then relu ({c} channels, {k}×{k}, bias {bias})"
            );
        }
        let mut rng = Rng::new(65);
        let x = Tensor::uniform(&[2, 3, 6, 5], -1.0, 1.0, &mut rng);
        let w = Tensor::uniform(&[4, 3, 3, 3], -1.0, 1.0, &mut rng);
        let b = Tensor::uniform(&[4], -1.0, 1.0, &mut rng);
        let opt = Conv2dOptions { padding: (1, 1), ..Default::default() };
        gradcheck("conv2d_relu", &[x, w, b], |t| t[0].conv2d_relu(&t[1], Some(&t[2]), opt), &mut rng);
    }

    #[test]
    fn conv2d_forward_and_backward_do_not_depend_on_the_thread_count() {
        // im2col (32 channels), direct sums (16), and Winograd's tiles in
        // three tasks run in turn (parallel products) and in five parallel tasks.
        for (n, c, oc, size, k, pad) in
            [(16, 3, 32, 10, 3, 1), (16, 6, 16, 14, 5, 0), (3, 16, 16, 9, 3, 1), (300, 16, 16, 8, 3, 1)]
        {
            let run = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                pool.install(|| {
                    let mut rng = Rng::new(61);
                    let x = Tensor::uniform(&[n, c, size, size], -1.0, 1.0, &mut rng).requires_grad();
                    let w = Tensor::uniform(&[oc, c, k, k], -1.0, 1.0, &mut rng).requires_grad();
                    let y = x.conv2d(&w, None, Conv2dOptions { padding: (pad, pad), ..Default::default() });
                    y.backward_with(&Tensor::uniform(y.shape(), -1.0, 1.0, &mut rng));
                    (y.to_vec(), x.grad().unwrap().to_vec(), w.grad().unwrap().to_vec())
                })
            };
            let one = run(1);
            assert!(
                one == run(2) && one == run(3),
                "conv2d results differ between thread counts ({c} channels, {k}×{k})"
            );
        }
    }

    #[test]
    fn batches_split_into_tasks_and_rounds_give_the_same_result() {
        // 6·6 outputs per image: ⌈256 / 36⌉ = 8 images per product, 25 tasks,
        // two rounds of weight-gradient partials.
        let mut rng = Rng::new(62);
        let x = Tensor::uniform(&[200, 3, 6, 6], -1.0, 1.0, &mut rng).requires_grad();
        let w = Tensor::uniform(&[4, 3, 5, 5], -1.0, 1.0, &mut rng).requires_grad();
        let opt = Conv2dOptions { padding: (2, 2), ..Default::default() };
        let y = x.conv2d(&w, None, opt);
        let g = Tensor::uniform(y.shape(), -1.0, 1.0, &mut rng);
        y.backward_with(&g);
        // The same images one at a time (each a single chunk).
        let (mut gw, image) = (vec![0.0f32; 300], 3 * 6 * 6);
        for n in 0..200 {
            let xn = x.narrow(0, n, 1).detach().requires_grad();
            let wn = w.detach().requires_grad();
            let yn = xn.conv2d(&wn, None, opt);
            crate::ops::testing::assert_close("one image forward", &yn.to_vec(), &y.narrow(0, n, 1).to_vec(), 1e-5);
            yn.backward_with(&g.narrow(0, n, 1).detach());
            let gx = x.grad().unwrap().to_vec();
            crate::ops::testing::assert_close(
                "one image dx",
                &xn.grad().unwrap().to_vec(),
                &gx[n * image..][..image],
                1e-5,
            );
            gw.iter_mut().zip(wn.grad().unwrap().to_vec()).for_each(|(a, b)| *a += b);
        }
        crate::ops::testing::assert_close("summed dW", &w.grad().unwrap().to_vec(), &gw, 1e-4);
    }

    thread_local! {
        /// Makes this thread's convolutions run `im2col` again in the backward pass.
        pub(super) static RECOMPUTE_COLS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    #[test]
    fn kept_columns_give_the_bits_of_recomputed_ones() {
        // Groups, stride, padding and dilation; 40 images in tasks of several.
        let mut rng = Rng::new(63);
        let x = Tensor::uniform(&[40, 4, 9, 7], -1.0, 1.0, &mut rng);
        let w = Tensor::uniform(&[6, 2, 3, 2], -1.0, 1.0, &mut rng);
        let b = Tensor::uniform(&[6], -1.0, 1.0, &mut rng);
        let opt = Conv2dOptions { stride: (2, 1), padding: (1, 2), dilation: (1, 2), groups: 2 };
        let run = |recompute: bool| {
            RECOMPUTE_COLS.with(|r| r.set(recompute));
            let (x, w, b) = (x.detach().requires_grad(), w.detach().requires_grad(), b.detach().requires_grad());
            let y = x.conv2d_relu(&w, Some(&b), opt);
            y.sum_all().backward();
            RECOMPUTE_COLS.with(|r| r.set(false));
            [y.to_vec(), x.grad().unwrap().to_vec(), w.grad().unwrap().to_vec(), b.grad().unwrap().to_vec()]
        };
        assert_eq!(run(false), run(true));
    }

    #[test]
    #[should_panic(expected = "conv2d: input [8, 3, 28, 28] has 3 channels but weight [16, 1, 3, 3] expects 1")]
    fn conv2d_names_both_shapes() {
        Tensor::zeros(&[8, 3, 28, 28]).conv2d(&Tensor::zeros(&[16, 1, 3, 3]), None, Conv2dOptions::default());
    }
}
