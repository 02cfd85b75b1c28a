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

/// The shape and settings of a [`Conv2d`]: `nn.Conv2d(in_channels,
/// out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
/// bias=True)`. The methods set square values; the fields take pairs
/// `(height, width)`.
///
/// ```
/// use saddle::nn::{Conv2d, Conv2dConfig, Module};
/// use saddle::{Rng, Tensor};
/// // A 3×3 filter over a colour image: 3·3·3 weights and a bias per output channel.
/// let conv = Conv2d::new(Conv2dConfig::new(3, 16, 3).padding(1), &mut Rng::new(0));
/// assert_eq!(conv.weight.shape(), &[16, 3, 3, 3]);
/// assert_eq!(conv.num_parameters(), 16 * (3 * 3 * 3 + 1));
/// assert_eq!(conv.forward(&Tensor::zeros(&[2, 3, 32, 32])).shape(), &[2, 16, 32, 32]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dConfig {
    /// Channels C of the input.
    pub in_channels: usize,
    /// Channels OC of the output: the number of filters.
    pub out_channels: usize,
    /// `(KH, KW)`.
    pub kernel_size: (usize, usize),
    /// Stride, padding, dilation, groups.
    pub options: Conv2dOptions,
    /// Whether the layer has a bias.
    pub bias: bool,
}

impl Conv2dConfig {
    /// `in_channels → out_channels` with a square `kernel_size`, stride 1, no padding, a bias.
    pub fn new(in_channels: usize, out_channels: usize, kernel_size: usize) -> Self {
        Conv2dConfig {
            in_channels,
            out_channels,
            kernel_size: (kernel_size, kernel_size),
            options: Conv2dOptions::default(),
            bias: true,
        }
    }
    /// The step between output positions, both ways.
    pub fn stride(mut self, stride: usize) -> Self {
        self.options.stride = (stride, stride);
        self
    }
    /// Zeros added on each side, both ways.
    pub fn padding(mut self, padding: usize) -> Self {
        self.options.padding = (padding, padding);
        self
    }
    /// The spacing between kernel taps, both ways.
    pub fn dilation(mut self, dilation: usize) -> Self {
        self.options.dilation = (dilation, dilation);
        self
    }
    /// Channels split into this many independent groups.
    pub fn groups(mut self, groups: usize) -> Self {
        self.options.groups = groups;
        self
    }
    /// With or without a bias.
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }
}

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
    /// The layer `config` describes, with PyTorch's default init (weights and
    /// bias uniform in `±1/√fan_in`, `fan_in = C/groups·KH·KW`). Panics if
    /// `groups` does not divide both channel counts.
    pub fn new(config: Conv2dConfig, rng: &mut Rng) -> Self {
        let Conv2dConfig { in_channels, out_channels, kernel_size, options, bias } = config;
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
    fn forward_relu(&self, x: &Tensor) -> Option<Tensor> {
        Some(x.conv2d_relu(&self.weight, self.bias.as_ref(), self.options))
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

/// Max pooling as a layer (`torch.nn.MaxPool2d`): `[N, C, H, W]` → `[N, C, OH, OW]`.
pub struct MaxPool2d {
    /// Window, stride, padding, dilation, ceil mode.
    pub options: MaxPool2dOptions,
}

impl MaxPool2d {
    /// `nn.MaxPool2d(k)`: `k×k` windows with stride `k`; other settings through [`MaxPool2d::with_options`].
    pub fn new(kernel_size: usize) -> Self {
        MaxPool2d { options: MaxPool2dOptions::new(kernel_size) }
    }
    /// Pooling with every setting given.
    pub fn with_options(options: MaxPool2dOptions) -> Self {
        MaxPool2d { options }
    }
}

impl Module for MaxPool2d {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.max_pool2d(self.options)
    }
    fn describe(&self) -> String {
        let o = &self.options;
        format!("MaxPool2d(kernel_size={:?}, stride={:?}, padding={:?})", o.kernel_size, o.stride, o.padding)
    }
}

/// Average pooling as a layer (`torch.nn.AvgPool2d`): `[N, C, H, W]` → `[N, C, OH, OW]`.
pub struct AvgPool2d {
    /// Window, stride, padding, ceil mode, whether padding counts.
    pub options: AvgPool2dOptions,
}

impl AvgPool2d {
    /// `nn.AvgPool2d(k)`: `k×k` windows with stride `k`; other settings through [`AvgPool2d::with_options`].
    pub fn new(kernel_size: usize) -> Self {
        AvgPool2d { options: AvgPool2dOptions::new(kernel_size) }
    }
    /// Pooling with every setting given.
    pub fn with_options(options: AvgPool2dOptions) -> Self {
        AvgPool2d { options }
    }
}

impl Module for AvgPool2d {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.avg_pool2d(self.options)
    }
    fn describe(&self) -> String {
        let o = &self.options;
        format!("AvgPool2d(kernel_size={:?}, stride={:?}, padding={:?})", o.kernel_size, o.stride, o.padding)
    }
}

/// Adaptive average pooling to a fixed output size (`torch.nn.AdaptiveAvgPool2d`):
/// `[N, C, H, W]` → `[N, C, OH, OW]`; `(1, 1)` is global average pooling.
pub struct AdaptiveAvgPool2d {
    /// `(OH, OW)`.
    pub output_size: (usize, usize),
}

impl AdaptiveAvgPool2d {
    /// `nn.AdaptiveAvgPool2d((OH, OW))`.
    pub fn new(output_size: (usize, usize)) -> Self {
        AdaptiveAvgPool2d { output_size }
    }
}

impl Module for AdaptiveAvgPool2d {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.adaptive_avg_pool2d(self.output_size)
    }
    fn describe(&self) -> String {
        format!("AdaptiveAvgPool2d(output_size={:?})", self.output_size)
    }
}
