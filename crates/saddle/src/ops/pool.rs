//! Max and average pooling with PyTorch's semantics (kernel, stride, padding,
//! dilation for max, ceil_mode, count_include_pad for average).
//!
//! Letters: N batch, C channels, H, W input size, OH, OW output size.
//!
//! `max_pool2d`: `y[n, c, i, j] = max over the window`, the first maximum wins
//! ties; `dx` receives each `dy` at its window's argmax (overlapping windows
//! add). `avg_pool2d`: `y = Σ window / count`, `count` the window clipped to the
//! padded input (`count_include_pad`) or to the input itself.
//! `adaptive_avg_pool2d`: output `(i, j)` averages rows `⌊i·H/OH⌋ .. ⌈(i+1)·H/OH⌉`
//! and the columns likewise; `dx` spreads each `dy` evenly over its window.
//!
//! Uses: `tensor`, `kernels::pool`.

use crate::kernels::pool::{avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward, PoolGeometry};
use crate::tensor::{Backward, Tensor};
use rayon::prelude::*;

/// Settings of [`Tensor::max_pool2d`], as `torch.nn.MaxPool2d`: the stride
/// defaults to the kernel size. Pairs are `(height, width)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2dOptions {
    /// Window size.
    pub kernel_size: (usize, usize),
    /// Step between windows.
    pub stride: (usize, usize),
    /// Implicit `−∞` padding on each side (at most half the kernel).
    pub padding: (usize, usize),
    /// Spacing between window taps.
    pub dilation: (usize, usize),
    /// Round the output size up.
    pub ceil_mode: bool,
}

impl MaxPool2dOptions {
    /// A square window of `k` with stride `k`, no padding (`nn.MaxPool2d(k)`).
    pub fn new(k: usize) -> Self {
        MaxPool2dOptions { kernel_size: (k, k), stride: (k, k), padding: (0, 0), dilation: (1, 1), ceil_mode: false }
    }
}

/// Settings of [`Tensor::avg_pool2d`], as `torch.nn.AvgPool2d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool2dOptions {
    /// Window size.
    pub kernel_size: (usize, usize),
    /// Step between windows.
    pub stride: (usize, usize),
    /// Implicit zero padding on each side (at most half the kernel).
    pub padding: (usize, usize),
    /// Round the output size up.
    pub ceil_mode: bool,
    /// Count padded zeros in the divisor (PyTorch's default: true).
    pub count_include_pad: bool,
}

impl AvgPool2dOptions {
    /// A square window of `k` with stride `k` (`nn.AvgPool2d(k)`).
    pub fn new(k: usize) -> Self {
        AvgPool2dOptions {
            kernel_size: (k, k),
            stride: (k, k),
            padding: (0, 0),
            ceil_mode: false,
            count_include_pad: true,
        }
    }
}

fn geometry(
    op: &str,
    x: &Tensor,
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: (usize, usize),
    dilation: (usize, usize),
    ceil_mode: bool,
) -> (PoolGeometry, [usize; 4]) {
    let s = x.shape();
    if s.len() != 4 {
        panic!("{op}: input {s:?} must be [N, C, H, W]");
    }
    if kernel.0 == 0 || kernel.1 == 0 || stride.0 == 0 || stride.1 == 0 || dilation.0 == 0 || dilation.1 == 0 {
        panic!("{op}: kernel {kernel:?}, stride {stride:?} and dilation {dilation:?} must be positive");
    }
    if 2 * padding.0 > kernel.0 || 2 * padding.1 > kernel.1 {
        panic!("{op}: padding {padding:?} must be at most half of kernel {kernel:?}");
    }
    let g = PoolGeometry { planes: s[0] * s[1], h: s[2], w: s[3], kernel, stride, padding, dilation, ceil_mode };
    let Some((oh, ow)) = g.output() else {
        panic!("{op}: kernel {kernel:?} does not fit input {s:?} padded by {padding:?}");
    };
    (g, [s[0], s[1], oh, ow])
}

impl Tensor {
    /// `torch.nn.functional.max_pool2d`: `[N, C, H, W]` → `[N, C, OH, OW]`,
    /// `y[n, c, i, j]` the maximum over its window (the first maximum wins ties);
    /// backward, each `dy` goes to its window's argmax (overlapping windows add).
    ///
    /// ```
    /// use saddle::{ops::MaxPool2dOptions, Tensor};
    /// let x = Tensor::arange(0.0, 16.0, 1.0).reshape(&[1, 1, 4, 4]);
    /// assert_eq!(x.max_pool2d(MaxPool2dOptions::new(2)).to_vec(), vec![5.0, 7.0, 13.0, 15.0]);
    /// ```
    pub fn max_pool2d(&self, opt: MaxPool2dOptions) -> Tensor {
        let (g, shape) =
            geometry("max_pool2d", self, opt.kernel_size, opt.stride, opt.padding, opt.dilation, opt.ceil_mode);
        let want_argmax = crate::is_grad_enabled() && self.is_requires_grad();
        let (out, argmax) = max_pool2d(&self.data(), &g, want_argmax);
        Tensor::from_op(out, &shape, &[self], MaxPool2dBackward { g, argmax })
    }

    /// `torch.nn.functional.avg_pool2d`: `[N, C, H, W]` → `[N, C, OH, OW]`,
    /// `y = Σ window / count` with `count` the window clipped to the padded input
    /// (`count_include_pad`) or to the input itself.
    pub fn avg_pool2d(&self, opt: AvgPool2dOptions) -> Tensor {
        let (g, shape) = geometry("avg_pool2d", self, opt.kernel_size, opt.stride, opt.padding, (1, 1), opt.ceil_mode);
        let out = avg_pool2d(&self.data(), &g, opt.count_include_pad);
        Tensor::from_op(out, &shape, &[self], AvgPool2dBackward { g, count_include_pad: opt.count_include_pad })
    }
}

/// The input rows `⌊i·H/OH⌋ .. ⌈(i + 1)·H/OH⌉` of adaptive pooling's output row `i`.
fn adaptive_window(i: usize, input: usize, output: usize) -> std::ops::Range<usize> {
    (i * input / output)..((i + 1) * input).div_ceil(output)
}

impl Tensor {
    /// `torch.nn.functional.adaptive_avg_pool2d(x, (OH, OW))`: `[N, C, H, W]` →
    /// `[N, C, OH, OW]`, each output the mean of its window, rows
    /// `⌊i·H/OH⌋ .. ⌈(i + 1)·H/OH⌉` and columns likewise (windows may overlap
    /// or, when the output is larger, repeat). `(1, 1)` is global average pooling.
    ///
    /// ```
    /// use saddle::Tensor;
    /// let x = Tensor::arange(0.0, 8.0, 1.0).reshape(&[1, 2, 2, 2]);
    /// assert_eq!(x.adaptive_avg_pool2d((1, 1)).to_vec(), vec![1.5, 5.5]);
    /// ```
    pub fn adaptive_avg_pool2d(&self, output: (usize, usize)) -> Tensor {
        let s = self.shape();
        if s.len() != 4 || output.0 == 0 || output.1 == 0 {
            panic!("adaptive_avg_pool2d: input {s:?} must be [N, C, H, W] and the output size {output:?} positive");
        }
        let (h, w, (oh, ow)) = (s[2], s[3], output);
        let x = self.data();
        let mut out = vec![0.0f32; s[0] * s[1] * oh * ow];
        if h * w > 0 {
            out.par_chunks_mut(oh * ow).zip(x.par_chunks(h * w)).for_each(|(y, plane)| {
                for i in 0..oh {
                    let rows = adaptive_window(i, h, oh);
                    for j in 0..ow {
                        let cols = adaptive_window(j, w, ow);
                        let sum: f32 = rows.clone().map(|r| plane[r * w..][cols.clone()].iter().sum::<f32>()).sum();
                        y[i * ow + j] = sum / (rows.len() * cols.len()) as f32;
                    }
                }
            });
        }
        drop(x);
        Tensor::from_op(out, &[s[0], s[1], oh, ow], &[self], AdaptiveAvgPoolBackward { input: (h, w), output })
    }
}

struct AdaptiveAvgPoolBackward {
    input: (usize, usize),
    output: (usize, usize),
}

impl Backward for AdaptiveAvgPoolBackward {
    fn name(&self) -> &'static str {
        "adaptive_avg_pool2d"
    }
    fn reads_input(&self, _i: usize) -> bool {
        false
    }
    fn reads_output(&self) -> bool {
        false
    }
    fn backward(&self, _inputs: &[Tensor], _out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        let ((h, w), (oh, ow)) = (self.input, self.output);
        let mut dx = vec![0.0f32; g.len() / (oh * ow) * h * w];
        if h * w > 0 {
            dx.par_chunks_mut(h * w).zip(g.par_chunks(oh * ow)).for_each(|(plane, gy)| {
                for i in 0..oh {
                    let rows = adaptive_window(i, h, oh);
                    for j in 0..ow {
                        let cols = adaptive_window(j, w, ow);
                        let share = gy[i * ow + j] / (rows.len() * cols.len()) as f32;
                        rows.clone().for_each(|r| plane[r * w..][cols.clone()].iter_mut().for_each(|d| *d += share));
                    }
                }
            });
        }
        vec![Some(dx)]
    }
}

struct MaxPool2dBackward {
    g: PoolGeometry,
    argmax: Vec<u32>,
}

impl Backward for MaxPool2dBackward {
    fn name(&self) -> &'static str {
        "max_pool2d"
    }
    fn reads_input(&self, _i: usize) -> bool {
        false
    }
    fn reads_output(&self) -> bool {
        false
    }
    fn backward(&self, _inputs: &[Tensor], _out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        vec![Some(max_pool2d_backward(g, &self.argmax, &self.g))]
    }
}

struct AvgPool2dBackward {
    g: PoolGeometry,
    count_include_pad: bool,
}

impl Backward for AvgPool2dBackward {
    fn name(&self) -> &'static str {
        "avg_pool2d"
    }
    fn reads_input(&self, _i: usize) -> bool {
        false
    }
    fn reads_output(&self) -> bool {
        false
    }
    fn backward(&self, _inputs: &[Tensor], _out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        vec![Some(avg_pool2d_backward(g, &self.g, self.count_include_pad))]
    }
}

#[cfg(test)]
mod tests {
    use super::{AvgPool2dOptions, MaxPool2dOptions};
    use crate::ops::testing::{gradcheck, Fixtures};
    use crate::{Rng, Tensor};

    #[test]
    fn pooling_matches_pytorch() {
        let fx = Fixtures::load("pool");
        for case in fx.cases("max_pool2d") {
            let x = fx.param(&case, "x");
            let opt = MaxPool2dOptions {
                kernel_size: case.attr_pair("kernel"),
                stride: case.attr_pair("stride"),
                padding: case.attr_pair("padding"),
                dilation: case.attr_pair("dilation"),
                ceil_mode: case.attr_bool("ceil_mode"),
            };
            fx.check_forward_backward(&case, &x.max_pool2d(opt), &[("x", &x)]);
        }
        for case in fx.cases("avg_pool2d") {
            let x = fx.param(&case, "x");
            let opt = AvgPool2dOptions {
                kernel_size: case.attr_pair("kernel"),
                stride: case.attr_pair("stride"),
                padding: case.attr_pair("padding"),
                ceil_mode: case.attr_bool("ceil_mode"),
                count_include_pad: case.attr_bool("count_include_pad"),
            };
            fx.check_forward_backward(&case, &x.avg_pool2d(opt), &[("x", &x)]);
        }
    }

    #[test]
    fn adaptive_average_pooling_matches_pytorch() {
        let fx = Fixtures::load("cnn_parts");
        for case in fx.cases("adaptive_avg_pool2d") {
            let x = fx.param(&case, "x");
            fx.check_forward_backward(&case, &x.adaptive_avg_pool2d(case.attr_pair("output")), &[("x", &x)]);
        }
    }

    #[test]
    fn pooling_gradcheck() {
        let mut rng = Rng::new(70);
        let x = Tensor::uniform(&[2, 3, 7, 6], -1.0, 1.0, &mut rng);
        let xs = std::slice::from_ref(&x);
        let max = MaxPool2dOptions {
            kernel_size: (3, 2),
            stride: (2, 1),
            padding: (1, 1),
            dilation: (1, 1),
            ceil_mode: true,
        };
        gradcheck("max_pool2d", xs, |t| t[0].max_pool2d(max), &mut rng);
        let avg = AvgPool2dOptions {
            kernel_size: (3, 3),
            stride: (2, 2),
            padding: (1, 1),
            ceil_mode: true,
            count_include_pad: false,
        };
        gradcheck("avg_pool2d", xs, |t| t[0].avg_pool2d(avg), &mut rng);
        for size in [(1, 1), (3, 4), (9, 7)] {
            gradcheck("adaptive_avg_pool2d", xs, |t| t[0].adaptive_avg_pool2d(size), &mut rng);
        }
    }
}
