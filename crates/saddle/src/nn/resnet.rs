//! Networks for colour images: the CIFAR ResNet (He et al. 2016, §4.2) and a
//! fast network in the style of the CIFAR-10 speed records (Jordan 2024,
//! airbench).
//!
//! Letters: N batch, C channels, H, W size, K classes.
//!
//! **ResNet-20** (`6n + 2` layers with `n = 3`): conv 16@3×3 → BN → ReLU →
//! three stages of `n` basic blocks with 16, 32, 64 channels (the first block
//! of stages 2 and 3 has stride 2) → global average pooling → linear K. A
//! basic block is `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`;
//! where the shape changes the shortcut is the paper's option A, `x[:, :, ::2,
//! ::2]` with zero channels added on both sides, which has no parameters, so
//! the network has 0.27M (269 722 for K = 10). Names follow torchvision
//! (`conv1`, `bn1`, `layer1.0.conv1`, …, `fc`); convolutions are initialized
//! `kaiming_normal_(mode='fan_out', nonlinearity='relu')`, batch norm with
//! γ = 1 and β = 0, as torchvision does. In inference (evaluation without
//! gradients) each convolution and the batch norm after it run as one
//! convolution ([`BatchNorm::fold`]).
//!
//! **speedrun** (airbench94): conv 2C·4@2×2 → GELU → three conv groups of
//! 64, 256, 256 channels → global max pooling → linear K (no bias) → ×1/9. A
//! conv group is conv 3×3 → max-pool 2 → BN → GELU → conv 3×3 → BN → GELU
//! (convolutions without bias). About 0.24 GFLOP forward per 32×32 image,
//! 1.97M parameters for C = 3. As in airbench, the first layer's weights are
//! frozen (set them with [`whiten_first_layer`]; its bias trains), the group
//! convolutions start as identities on their first channels ([`dirac`]), and
//! batch norm has γ frozen at 1, `momentum` 0.4 and `ε` = 10⁻¹².
//!
//! Uses: `nn` layers, `ops`.

use super::{
    dirac, join, patch_whitening, BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, Flatten, Linear, Module, Scale,
    Sequential, GELU,
};
use crate::ops::MaxPool2dOptions;
use crate::ops::NormActivation::{Gelu, Relu};
use crate::{Rng, Tensor};

/// A 3×3 convolution without bias, `kaiming_normal_(mode='fan_out')` for ReLU.
fn conv3x3(input: usize, output: usize, stride: usize, rng: &mut Rng) -> Conv2d {
    let mut conv = Conv2d::new(Conv2dConfig::new(input, output, 3).stride(stride).padding(1).bias(false), rng);
    let std = (2.0 / (output * 9) as f32).sqrt();
    conv.weight = Tensor::normal(&[output, input, 3, 3], 0.0, std, rng).requires_grad();
    conv
}

fn batch_norm(channels: usize) -> BatchNorm {
    BatchNorm::new_2d(BatchNormConfig::new(channels))
}

/// `bn(conv(x))`, then ReLU if `relu`: in inference one convolution
/// ([`BatchNorm::fold`]), with the ReLU fused into it.
fn conv_bn(conv: &Conv2d, bn: &BatchNorm, x: &Tensor, relu: bool) -> Tensor {
    match (bn.fold(conv), relu) {
        (Some(c), true) => x.conv2d_relu(&c.weight, c.bias.as_ref(), c.options),
        (Some(c), false) => c.forward(x),
        (None, true) => bn.forward_activation(&conv.forward(x), Relu),
        (None, false) => bn.forward(&conv.forward(x)),
    }
}

/// The basic residual block of the CIFAR ResNet: two 3×3 convolutions with
/// batch norm, and the option-A shortcut where the shape changes.
pub struct BasicBlock {
    /// 3×3, stride 1 or 2.
    pub conv1: Conv2d,
    /// After `conv1`.
    pub bn1: BatchNorm,
    /// 3×3, stride 1.
    pub conv2: Conv2d,
    /// After `conv2`.
    pub bn2: BatchNorm,
    stride: usize,
    /// Zero channels added on each side of the shortcut.
    pad_channels: usize,
}

impl BasicBlock {
    /// A block from `input` to `output` channels (`output ≥ input`; a change
    /// needs stride 2).
    pub fn new(input: usize, output: usize, stride: usize, rng: &mut Rng) -> Self {
        assert!(output >= input && (output - input) % 2 == 0, "BasicBlock: {input} → {output} channels");
        BasicBlock {
            conv1: conv3x3(input, output, stride, rng),
            bn1: batch_norm(output),
            conv2: conv3x3(output, output, 1, rng),
            bn2: batch_norm(output),
            stride,
            pad_channels: (output - input) / 2,
        }
    }

    fn shortcut(&self, x: &Tensor) -> Tensor {
        if self.stride == 1 && self.pad_channels == 0 {
            return x.clone();
        }
        let sub = x.max_pool2d(MaxPool2dOptions {
            kernel_size: (1, 1),
            stride: (self.stride, self.stride),
            ..MaxPool2dOptions::new(1)
        });
        if self.pad_channels == 0 {
            return sub;
        }
        let s = sub.shape();
        let zeros = Tensor::zeros(&[s[0], self.pad_channels, s[2], s[3]]);
        Tensor::cat(&[&zeros, &sub, &zeros], 1)
    }
}

impl Module for BasicBlock {
    fn forward(&self, x: &Tensor) -> Tensor {
        let h = conv_bn(&self.conv1, &self.bn1, x, true);
        conv_bn(&self.conv2, &self.bn2, &h, false).add_relu(&self.shortcut(x))
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        self.conv1.visit_parameters(&join(prefix, "conv1"), f);
        self.bn1.visit_parameters(&join(prefix, "bn1"), f);
        self.conv2.visit_parameters(&join(prefix, "conv2"), f);
        self.bn2.visit_parameters(&join(prefix, "bn2"), f);
    }
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        self.bn1.visit_buffers(&join(prefix, "bn1"), f);
        self.bn2.visit_buffers(&join(prefix, "bn2"), f);
    }
    fn set_training(&mut self, training: bool) {
        self.bn1.set_training(training);
        self.bn2.set_training(training);
    }
    fn describe(&self) -> String {
        format!(
            "BasicBlock({} → {}, stride {})",
            self.conv1.weight.shape()[1],
            self.conv1.weight.shape()[0],
            self.stride
        )
    }
}

/// The CIFAR ResNet of `6n + 2` layers: `conv1`, `bn1`, `layer1` … `layer3`, `fc`.
pub struct ResNet {
    /// 3×3 from the image's channels to 16.
    pub conv1: Conv2d,
    /// After `conv1`.
    pub bn1: BatchNorm,
    /// Three stages of blocks (16, 32, 64 channels).
    pub layers: Vec<Vec<BasicBlock>>,
    /// 64 → K.
    pub fc: Linear,
}

impl ResNet {
    /// The CIFAR ResNet with `n` blocks per stage for `channels`-channel images and `classes` outputs.
    pub fn cifar(n: usize, channels: usize, classes: usize, rng: &mut Rng) -> Self {
        let conv1 = conv3x3(channels, 16, 1, rng);
        let mut layers = Vec::new();
        let mut width = 16;
        for (stage, out) in [16, 32, 64].into_iter().enumerate() {
            let blocks = (0..n)
                .map(|i| {
                    let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                    let block = BasicBlock::new(width, out, stride, rng);
                    width = out;
                    block
                })
                .collect();
            layers.push(blocks);
        }
        ResNet { conv1, bn1: batch_norm(16), layers, fc: Linear::new(64, classes, true, rng) }
    }

    fn blocks(&self) -> impl Iterator<Item = (String, &BasicBlock)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(s, blocks)| blocks.iter().enumerate().map(move |(i, b)| (format!("layer{}.{i}", s + 1), b)))
    }
}

/// ResNet-20 (He et al. 2016): 0.27M parameters, 91.25% on CIFAR-10 in the paper.
pub fn resnet20(channels: usize, classes: usize, rng: &mut Rng) -> ResNet {
    ResNet::cifar(3, channels, classes, rng)
}

impl Module for ResNet {
    fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = conv_bn(&self.conv1, &self.bn1, x, true);
        for (_, block) in self.blocks() {
            h = block.forward(&h);
        }
        self.fc.forward(&h.adaptive_avg_pool2d((1, 1)).flatten(1))
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        self.conv1.visit_parameters(&join(prefix, "conv1"), f);
        self.bn1.visit_parameters(&join(prefix, "bn1"), f);
        for (name, block) in self.blocks() {
            block.visit_parameters(&join(prefix, &name), f);
        }
        self.fc.visit_parameters(&join(prefix, "fc"), f);
    }
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        self.bn1.visit_buffers(&join(prefix, "bn1"), f);
        for (name, block) in self.blocks() {
            block.visit_buffers(&join(prefix, &name), f);
        }
    }
    fn set_training(&mut self, training: bool) {
        self.bn1.set_training(training);
        self.layers.iter_mut().flatten().for_each(|b| b.set_training(training));
    }
    fn describe(&self) -> String {
        let n = self.layers[0].len();
        format!("ResNet-{}(blocks per stage {n}, {} classes)", 6 * n + 2, self.fc.weight.shape()[0])
    }
}

/// conv 3×3 → max-pool 2 → BN → GELU → conv 3×3 → BN → GELU: one group of
/// the speedrun network (`conv1`, `norm1`, `conv2`, `norm2`).
pub struct ConvGroup {
    /// `input → output`, 3×3.
    pub conv1: Conv2d,
    /// After pooling.
    pub norm1: BatchNorm,
    /// `output → output`, 3×3.
    pub conv2: Conv2d,
    /// After `conv2`.
    pub norm2: BatchNorm,
}

impl ConvGroup {
    /// A group from `input` to `output` channels, initialized as airbench
    /// does: each convolution PyTorch's default with its first filters made
    /// identities ([`dirac`]); batch norm with γ = 1 frozen (not a
    /// gradient's target), `momentum` 0.4 and `ε` = 10⁻¹².
    pub fn new(input: usize, output: usize, rng: &mut Rng) -> Self {
        let conv = |i: usize, rng: &mut Rng| {
            let c = Conv2d::new(Conv2dConfig::new(i, output, 3).padding(1).bias(false), rng);
            dirac(&c.weight);
            c
        };
        let norm = || {
            let config = BatchNormConfig { eps: 1e-12, momentum: Some(0.4), ..BatchNormConfig::new(output) };
            let bn = BatchNorm::new_2d(config);
            bn.weight.iter().for_each(|w| w.set_requires_grad(false));
            bn
        };
        ConvGroup { conv1: conv(input, rng), norm1: norm(), conv2: conv(output, rng), norm2: norm() }
    }
}

impl Module for ConvGroup {
    fn forward(&self, x: &Tensor) -> Tensor {
        let h = self.conv1.forward(x).max_pool2d(MaxPool2dOptions::new(2));
        let h = self.norm1.forward_activation(&h, Gelu);
        self.norm2.forward_activation(&self.conv2.forward(&h), Gelu)
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        self.conv1.visit_parameters(&join(prefix, "conv1"), f);
        self.norm1.visit_parameters(&join(prefix, "norm1"), f);
        self.conv2.visit_parameters(&join(prefix, "conv2"), f);
        self.norm2.visit_parameters(&join(prefix, "norm2"), f);
    }
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        self.norm1.visit_buffers(&join(prefix, "norm1"), f);
        self.norm2.visit_buffers(&join(prefix, "norm2"), f);
    }
    fn set_training(&mut self, training: bool) {
        self.norm1.set_training(training);
        self.norm2.set_training(training);
    }
    fn describe(&self) -> String {
        let s = self.conv1.weight.shape();
        format!("ConvGroup({} → {})", s[1], s[0])
    }
}

/// The maximum over all positions of each channel: `[N, C, H, W]` → `[N, C, 1, 1]`.
pub struct GlobalMaxPool;

impl Module for GlobalMaxPool {
    fn forward(&self, x: &Tensor) -> Tensor {
        let s = x.shape();
        x.max_pool2d(MaxPool2dOptions { kernel_size: (s[2], s[3]), stride: (s[2], s[3]), ..MaxPool2dOptions::new(1) })
    }
    fn describe(&self) -> String {
        "GlobalMaxPool()".into()
    }
}

/// The speedrun network for `channels`-channel images (of at least 10×10
/// pixels) and `classes` outputs, as a `Sequential`: `0` the 2×2 convolution
/// (`2·channels·4` filters, weights frozen at PyTorch's default until
/// [`whiten_first_layer`] sets them), `2`, `3`, `4` the conv groups, `7` the
/// linear head.
pub fn speedrun(channels: usize, classes: usize, rng: &mut Rng) -> Sequential {
    let widths = [64, 256, 256];
    let whiten = Conv2d::new(Conv2dConfig::new(channels, 8 * channels, 2), rng);
    whiten.weight.set_requires_grad(false);
    Sequential::new(vec![
        Box::new(whiten),
        Box::new(GELU),
        Box::new(ConvGroup::new(8 * channels, widths[0], rng)),
        Box::new(ConvGroup::new(widths[0], widths[1], rng)),
        Box::new(ConvGroup::new(widths[1], widths[2], rng)),
        Box::new(GlobalMaxPool),
        Box::new(Flatten),
        Box::new(Linear::new(widths[2], classes, false, rng)),
        Box::new(Scale(1.0 / 9.0)),
    ])
}

/// Sets the weights of the speedrun network's first layer (`0.weight`) to
/// the [`patch_whitening`] of `images` `[N, C, H, W]`, normalized as the
/// network will see them; airbench uses 5000 training images and `ε` =
/// 5·10⁻⁴.
///
/// ```
/// use saddle::nn::{speedrun, whiten_first_layer, Module};
/// use saddle::{Rng, Tensor};
/// let mut rng = Rng::new(0);
/// let net = speedrun(3, 10, &mut rng);
/// whiten_first_layer(&net, &Tensor::normal(&[4, 3, 12, 12], 0.0, 1.0, &mut rng), 5e-4);
/// let w = net.named_parameters()[0].1.to_vec();
/// assert!(w[..144].iter().zip(&w[144..]).all(|(a, b)| *a == -b));
/// ```
pub fn whiten_first_layer(net: &dyn Module, images: &Tensor, eps: f64) {
    let params = net.named_parameters();
    let (_, weight) = params.iter().find(|(n, _)| n == "0.weight").expect("the speedrun network has 0.weight");
    let k = weight.shape();
    let w = patch_whitening(images, (k[2], k[3]), eps);
    assert_eq!(w.shape(), k, "whiten_first_layer: the first layer's shape");
    weight.data_mut().copy_from_slice(&w.data());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resnet20_has_the_papers_size_torchvisions_names_and_pytorchs_logits() {
        let net = resnet20(3, 10, &mut Rng::new(0));
        assert_eq!(net.num_parameters(), 269_722);
        let names: Vec<String> = net.state_dict().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), 19 * 5 + 19 + 2, "19 batch norms with 2 parameters and 3 buffers, 19 convs, fc");
        for name in
            ["conv1.weight", "bn1.running_var", "layer2.0.conv1.weight", "layer3.2.bn2.num_batches_tracked", "fc.bias"]
        {
            assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
        }
        // Written by tools/make_fixtures.py: resnet20().
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut net = net;
        crate::nn::load_state_dict(&net, &dir.join("resnet20_state_dict.safetensors")).unwrap();
        net.set_training(false);
        let (io, _) = crate::io::read_safetensors(&dir.join("resnet20_io.safetensors")).unwrap();
        let (xs, x) = &io["x"];
        // In inference each convolution and batch norm are folded into one; with gradients they are not.
        let logits = crate::no_grad(|| net.forward(&Tensor::from_vec(x.clone(), xs)));
        crate::ops::testing::assert_close("ResNet-20 logits", &logits.to_vec(), &io["logits"].1, 1e-4);
        let logits = net.forward(&Tensor::from_vec(x.clone(), xs));
        crate::ops::testing::assert_close("ResNet-20 logits, unfolded", &logits.to_vec(), &io["logits"].1, 1e-4);
    }

    #[test]
    fn speedrun_shapes_and_size() {
        let net = speedrun(3, 10, &mut Rng::new(0));
        assert_eq!(net.forward(&Tensor::zeros(&[2, 3, 32, 32])).shape(), &[2, 10]);
        assert_eq!(net.forward(&Tensor::zeros(&[2, 3, 100, 100])).shape(), &[2, 10], "any size of at least 10×10");
        assert_eq!(net.num_parameters(), 312 + 50_944 + 738_304 + 1_180_672 + 2560);
        assert_eq!(net.named_buffers().len(), 18);
    }
}
