//! `Conv2d`, `MaxPool2d`, `AvgPool2d` and `AdaptiveAvgPool2d` as layers (`torch.nn` names).
//!
//! Letters: N batch, C `in_channels`, OC `out_channels`, KH, KW `kernel_size`.
//! `Conv2d.weight: [OC, C/groups, KH, KW]`, `bias: [OC]`; each filter's
//! `C/groups·KH·KW` weights and one bias are shared across all positions.
//!
//! Uses: `ops`, `nn::init`.

use super::{init, join, Module};
use crate::ops::{AvgPool2dOptions, Conv2dOptions, MaxPool2dOptions};
use crate::{Rng, Tensor};

/// A 2-D convolution layer (`torch.nn.Conv2d`).
pub struct Conv2d {
    /// `[out_channels, in_channels/groups, KH, KW]`.
    pub weight: Tensor,
    /// `[out_channels]`, if the layer has a bias.
    pub bias: Option<Tensor>,
    /// Stride, padding, dilation, groups.
    pub options: Conv2dOptions,
}

impl Conv2d {
    /// `nn.Conv2d(in_channels, out_channels, kernel_size, …)` with PyTorch's
    /// default init. Panics if `groups` does not divide both channel counts.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel_size: (usize, usize),
        options: Conv2dOptions,
        bias: bool,
        rng: &mut Rng,
    ) -> Self {
        let g = options.groups;
        assert!(
            g > 0 && in_channels % g == 0 && out_channels % g == 0,
            "Conv2d: groups = {g} must divide in_channels {in_channels} and out_channels {out_channels}"
        );
        let fan_in = in_channels / g * kernel_size.0 * kernel_size.1;
        let shape = [out_channels, in_channels / g, kernel_size.0, kernel_size.1];
        let weight = init::kaiming_uniform(&shape, fan_in, 5f32.sqrt(), rng).requires_grad();
        let bias = bias.then(|| init::uniform_fan_in(&[out_channels], fan_in, rng).requires_grad());
        Conv2d { weight, bias, options }
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.conv2d(&self.weight, self.bias.as_ref(), self.options)
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        f(&join(prefix, "weight"), &self.weight);
        if let Some(b) = &self.bias {
            f(&join(prefix, "bias"), b);
        }
    }
    fn describe(&self) -> String {
        let s = self.weight.shape();
        let o = &self.options;
        format!(
            "Conv2d({}, {}, kernel_size=({}, {}), stride={:?}, padding={:?}, dilation={:?}, groups={})",
            s[1] * o.groups,
            s[0],
            s[2],
            s[3],
            o.stride,
            o.padding,
            o.dilation,
            o.groups
        )
    }
}

/// Max pooling as a layer (`torch.nn.MaxPool2d`).
pub struct MaxPool2d(pub MaxPool2dOptions);

impl Module for MaxPool2d {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.max_pool2d(self.0)
    }
    fn describe(&self) -> String {
        format!(
            "MaxPool2d(kernel_size={:?}, stride={:?}, padding={:?})",
            self.0.kernel_size, self.0.stride, self.0.padding
        )
    }
}

/// Average pooling as a layer (`torch.nn.AvgPool2d`).
pub struct AvgPool2d(pub AvgPool2dOptions);

impl Module for AvgPool2d {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.avg_pool2d(self.0)
    }
    fn describe(&self) -> String {
        format!(
            "AvgPool2d(kernel_size={:?}, stride={:?}, padding={:?})",
            self.0.kernel_size, self.0.stride, self.0.padding
        )
    }
}

/// Adaptive average pooling to a fixed output size (`torch.nn.AdaptiveAvgPool2d`);
/// `(1, 1)` is global average pooling.
pub struct AdaptiveAvgPool2d(pub (usize, usize));

impl Module for AdaptiveAvgPool2d {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.adaptive_avg_pool2d(self.0)
    }
    fn describe(&self) -> String {
        format!("AdaptiveAvgPool2d(output_size={:?})", self.0)
    }
}
