//! Layers: the [`Module`] trait, its layers with PyTorch's parameter names,
//! shapes and default initialization, and [`Sequential`].
//!
//! A layer is a plain struct: a constructor taking its sizes and `&mut Rng`,
//! a `forward`, and a parameter visitor of a few lines that names each
//! parameter as PyTorch's `state_dict()` does (`weight`, `bias`; `0.weight`
//! inside a `Sequential`), so state dicts move between saddle and PyTorch as
//! safetensors files ([`save_state_dict`], [`load_state_dict`]).
//!
//! Uses: `ops`, `tensor`, `rng`, `error`.

mod conv;
mod crf;
mod dropout;
mod init;
mod linear;
mod models;
mod norm;
mod recurrent;
mod resnet;
mod state;
mod tagger;

pub use conv::{AdaptiveAvgPool2d, AvgPool2d, Conv2d, Conv2dConfig, MaxPool2d};
pub use crf::Crf;
pub use dropout::Dropout;
pub use init::{dirac, kaiming_uniform, patch_whitening, uniform_fan_in};
pub use linear::Linear;
pub use models::{lenet5, mlp, Activation, MlpShape};
pub use norm::{BatchNorm, BatchNormConfig};
pub use recurrent::{CellKind, Embedding, Indices, Recurrent, RecurrentConfig, RecurrentState};
pub use resnet::{resnet20, speedrun, whiten_first_layer, BasicBlock, ConvGroup, GlobalMaxPool, ResNet};
pub use state::{load_state_dict, save_state_dict};
// The file functions live in `io`; these names stay for code written against them.
#[doc(no_inline)]
pub use crate::io::{read_safetensors, write_safetensors, StateDict};
pub use tagger::{Tagger, TaggerConfig};

use crate::ops::CrossEntropyOptions;
use crate::Tensor;

/// A layer or a network: a function of its input with named parameters.
///
/// ```
/// use saddle::nn::{Linear, Module, ReLU, Sequential};
/// use saddle::{Rng, Tensor};
/// let mut rng = Rng::new(0);
/// let net = Sequential::new(vec![
///     Box::new(Linear::new(4, 8, true, &mut rng)),
///     Box::new(ReLU),
///     Box::new(Linear::new(8, 2, true, &mut rng)),
/// ]);
/// let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
/// assert_eq!(net.forward(&Tensor::zeros(&[3, 4])).shape(), &[3, 2]);
/// ```
pub trait Module: Send + Sync {
    /// The layer's output for input `x`.
    fn forward(&self, x: &Tensor) -> Tensor;

    /// Calls `f(name, parameter)` for each parameter, names prefixed by `prefix`
    /// (PyTorch's `state_dict()` keys).
    fn visit_parameters(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Tensor)) {}

    /// Calls `f(name, buffer)` for each buffer: state that is saved and loaded
    /// with the parameters but never trained by an optimizer (batch norm's
    /// `running_mean`, `running_var`, `num_batches_tracked`), named as in
    /// PyTorch's `state_dict()`.
    fn visit_buffers(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Tensor)) {}

    /// Switches between training (`true`) and evaluation behaviour (dropout,
    /// batch statistics against running estimates).
    fn set_training(&mut self, _training: bool) {}

    /// A short description such as `Linear(in_features=4, out_features=8)`.
    fn describe(&self) -> String;

    /// `relu(self.forward(x))` as one op, where the layer has one
    /// ([`Conv2d`]: [`Tensor::conv2d_relu`]), with the same values and
    /// gradients as the two layers; `None` where it has not. [`Sequential`]
    /// calls it for a layer followed by [`ReLU`].
    fn forward_relu(&self, _x: &Tensor) -> Option<Tensor> {
        None
    }
    /// Whether the layer is [`ReLU`], which the layer before it may fuse
    /// ([`forward_relu`](Self::forward_relu)).
    fn is_relu(&self) -> bool {
        false
    }
    /// The training loss of `out = self.forward(x)` against labels `y`: by
    /// default the cross-entropy of `out` as `[N, C]` scores of `N` labelled
    /// rows, with `options`. A network with a likelihood of its own (a
    /// tagger with a CRF) says so here.
    fn loss(&self, _x: &Tensor, out: &Tensor, y: &[i64], options: CrossEntropyOptions) -> Tensor {
        out.cross_entropy(y, options)
    }
    /// The predicted label of each row of `out = self.forward(x)`: by default
    /// its highest score.
    fn predict(&self, _x: &Tensor, out: &Tensor) -> Vec<usize> {
        out.argmax(1)
    }

    /// All parameters with their PyTorch names, in registration order.
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        self.visit_parameters("", &mut |name, t| out.push((name.to_string(), t.clone())));
        out
    }

    /// All buffers with their PyTorch names, in registration order.
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        self.visit_buffers("", &mut |name, t| out.push((name.to_string(), t.clone())));
        out
    }

    /// Parameters then buffers: what PyTorch's `state_dict()` holds.
    fn state_dict(&self) -> Vec<(String, Tensor)> {
        let mut out = self.named_parameters();
        out.extend(self.named_buffers());
        out
    }

    /// The total number of parameter elements.
    fn num_parameters(&self) -> usize {
        self.named_parameters().iter().map(|(_, t)| t.numel()).sum()
    }
}

/// `prefix + name`, with a dot between when `prefix` is not empty.
pub(crate) fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Layers applied in order (`torch.nn.Sequential`); the parameters of layer
/// `i` are named `i.weight`, `i.bias`, …. A layer followed by a [`ReLU`]
/// runs both as one op where it has one ([`Module::forward_relu`]).
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
}

impl Sequential {
    /// A network of `layers`, applied first to last.
    pub fn new(layers: Vec<Box<dyn Module>>) -> Self {
        Sequential { layers }
    }
    /// The layers.
    pub fn layers(&self) -> &[Box<dyn Module>] {
        &self.layers
    }
}

impl Module for Sequential {
    fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = x.clone();
        let mut i = 0;
        while let Some(layer) = self.layers.get(i) {
            let fused = self.layers.get(i + 1).filter(|next| next.is_relu()).and_then(|_| layer.forward_relu(&h));
            i += if fused.is_some() { 2 } else { 1 };
            h = fused.unwrap_or_else(|| layer.forward(&h));
        }
        h
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        for (i, layer) in self.layers.iter().enumerate() {
            layer.visit_parameters(&join(prefix, &i.to_string()), f);
        }
    }
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        for (i, layer) in self.layers.iter().enumerate() {
            layer.visit_buffers(&join(prefix, &i.to_string()), f);
        }
    }
    fn set_training(&mut self, training: bool) {
        self.layers.iter_mut().for_each(|l| l.set_training(training));
    }
    fn describe(&self) -> String {
        let inner: Vec<String> =
            self.layers.iter().enumerate().map(|(i, l)| format!("  ({i}): {}", l.describe())).collect();
        format!("Sequential(\n{}\n)", inner.join("\n"))
    }
}

/// `max(x, 0)` as a layer (`torch.nn.ReLU`).
pub struct ReLU;
/// `x·Φ(x)` as a layer (`torch.nn.GELU`, the exact erf form).
pub struct GELU;
/// `x·σ(x)` as a layer (`torch.nn.SiLU`).
pub struct SiLU;
/// `c·x` for a fixed `c`, as a layer (no parameters).
pub struct Scale(pub f32);
/// `1/(1 + e⁻ˣ)` as a layer (`torch.nn.Sigmoid`).
pub struct Sigmoid;
/// `tanh(x)` as a layer (`torch.nn.Tanh`).
pub struct Tanh;

impl Module for ReLU {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.relu()
    }
    fn is_relu(&self) -> bool {
        true
    }
    fn describe(&self) -> String {
        "ReLU()".into()
    }
}
impl Module for GELU {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.gelu()
    }
    fn describe(&self) -> String {
        "GELU(approximate='none')".into()
    }
}
impl Module for SiLU {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.silu()
    }
    fn describe(&self) -> String {
        "SiLU()".into()
    }
}
impl Module for Scale {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.mul_scalar(self.0)
    }
    fn describe(&self) -> String {
        format!("Scale({})", self.0)
    }
}
impl Module for Sigmoid {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.sigmoid()
    }
    fn describe(&self) -> String {
        "Sigmoid()".into()
    }
}
impl Module for Tanh {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.tanh()
    }
    fn describe(&self) -> String {
        "Tanh()".into()
    }
}

/// Flattens all dimensions after the first: `[N, …]` → `[N, ∏…]` (`torch.nn.Flatten`).
pub struct Flatten;

impl Module for Flatten {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.flatten(1)
    }
    fn describe(&self) -> String {
        "Flatten()".into()
    }
}
