//! Ready-made networks for image classification (by name: `train::ImageModel`).
//!
//! `lenet5`: conv 6@5×5 pad 2 → ReLU → max-pool 2 → conv 16@5×5 → ReLU →
//! max-pool 2 → flatten → 120 → ReLU → 84 → ReLU → classes (LeCun et al. 1998,
//! with ReLU and max pooling as is usual today). For a `[C, 28, 28]` input the
//! flattened size is 16·5·5 = 400. `mlp`: flatten → W₁ → f → W₂ → f → … →
//! classes, by default W = 256, 128 and f = ReLU ([`MlpShape`]).
//!
//! Uses: `nn` layers, `error`.

use super::{Conv2d, Conv2dConfig, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential, Sigmoid, Tanh};
use crate::{Error, Result, Rng, Tensor};
use std::fmt;
use std::str::FromStr;

/// LeNet-5 for `[channels, height, width]` images and `classes` outputs, in
/// `nn.Sequential` order (parameter names `0.weight`, `3.weight`, `7.weight`,
/// `9.weight`, `11.weight` and their biases).
pub fn lenet5(input: [usize; 3], classes: usize, rng: &mut Rng) -> Result<Sequential> {
    let [c, h, w] = input;
    // conv1 keeps the size (pad 2), pool halves it, conv2 (5×5) takes 4, pool halves.
    let side = |s: usize| (s / 2).checked_sub(4).map(|s| s / 2).filter(|&s| s > 0);
    let (Some(fh), Some(fw)) = (side(h), side(w)) else {
        return Err(Error::config("model", format!("lenet5 needs images of at least 12×12 pixels, got {h}×{w}")));
    };
    Ok(Sequential::new(vec![
        Box::new(Conv2d::new(Conv2dConfig::new(c, 6, 5).padding(2), rng)),
        Box::new(ReLU),
        Box::new(MaxPool2d::new(2)),
        Box::new(Conv2d::new(Conv2dConfig::new(6, 16, 5), rng)),
        Box::new(ReLU),
        Box::new(MaxPool2d::new(2)),
        Box::new(Flatten),
        Box::new(Linear::new(16 * fh * fw, 120, true, rng)),
        Box::new(ReLU),
        Box::new(Linear::new(120, 84, true, rng)),
        Box::new(ReLU),
        Box::new(Linear::new(84, classes, true, rng)),
    ]))
}

/// The nonlinearity `f` between the layers of a perceptron.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// `1/(1 + e⁻ˣ)`, whose slope is at most ¼: gradients shrink layer by layer.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// `f(x) = x`: the network is a product of matrices, linear in its input.
    Linear,
}

impl Activation {
    const ALL: [(Activation, &'static str); 4] = [
        (Activation::Relu, "relu"),
        (Activation::Sigmoid, "sigmoid"),
        (Activation::Tanh, "tanh"),
        (Activation::Linear, "linear"),
    ];

    /// `relu`, `sigmoid`, `tanh` or `linear`.
    pub fn name(self) -> &'static str {
        Activation::ALL.iter().find(|(a, _)| *a == self).map_or("relu", |(_, n)| n)
    }

    fn layer(self) -> Option<Box<dyn Module>> {
        match self {
            Activation::Relu => Some(Box::new(ReLU)),
            Activation::Sigmoid => Some(Box::new(Sigmoid)),
            Activation::Tanh => Some(Box::new(Tanh)),
            Activation::Linear => None,
        }
    }
}

/// The shape of a perceptron: the widths of its hidden layers, their
/// activation, and whether every weight and bias starts at zero instead of
/// PyTorch's default initialization.
///
/// Its text form is `mlp`, the default (256, 128, ReLU), or `mlp` followed by
/// `-W` for each hidden width, then `-ACTIVATION` and `-zeros` if wanted:
/// `mlp-100-100-100-100-100-100-sigmoid` is a deep sigmoid network whose
/// gradient vanishes through the layers, `mlp-64-linear-zeros` a linear
/// network at the saddle point of its origin, where every gradient but the
/// last bias's is zero.
///
/// ```
/// use saddle::nn::{Activation, MlpShape};
/// let shape: MlpShape = "mlp-64-64-sigmoid".parse().unwrap();
/// assert_eq!(shape, MlpShape { hidden: vec![64, 64], activation: Activation::Sigmoid, zero_init: false });
/// assert_eq!(shape.to_string(), "mlp-64-64-sigmoid");
/// assert_eq!("mlp".parse::<MlpShape>().unwrap(), MlpShape::default());
/// assert!("mlp-64-soft".parse::<MlpShape>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MlpShape {
    /// The widths of the hidden layers (none: a linear classifier).
    pub hidden: Vec<usize>,
    /// The nonlinearity after each hidden layer.
    pub activation: Activation,
    /// Start every weight and bias at zero.
    pub zero_init: bool,
}

impl Default for MlpShape {
    /// Two hidden layers, 256 and 128 wide, with ReLU.
    fn default() -> Self {
        MlpShape { hidden: vec![256, 128], activation: Activation::Relu, zero_init: false }
    }
}

impl MlpShape {
    /// Its number of parameters for `inputs` features and `classes` outputs.
    pub fn parameter_count(&self, inputs: u64, classes: u64) -> u64 {
        let widths: Vec<u64> = std::iter::once(inputs).chain(self.hidden.iter().map(|&w| w as u64)).collect();
        widths.iter().zip(widths[1..].iter().chain([&classes])).map(|(i, o)| i * o + o).sum()
    }
}

impl fmt::Display for MlpShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("mlp")?;
        let default = MlpShape::default();
        if self.hidden != default.hidden {
            self.hidden.iter().try_for_each(|w| write!(f, "-{w}"))?;
        }
        if self.activation != default.activation {
            write!(f, "-{}", self.activation.name())?;
        }
        if self.zero_init {
            f.write_str("-zeros")?;
        }
        Ok(())
    }
}

impl FromStr for MlpShape {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: String| {
            Error::config("model", format!("'{s}': {why}; expected mlp, or mlp-W-W-…[-relu|-sigmoid|-tanh|-linear][-zeros], as mlp-64-64-sigmoid"))
        };
        let mut parts = s.split('-');
        if parts.next() != Some("mlp") {
            return Err(bad("does not start with mlp".into()));
        }
        let mut shape = MlpShape { hidden: Vec::new(), ..MlpShape::default() };
        let (mut widths, mut activation) = (false, false);
        for part in parts {
            if let Ok(w) = part.parse::<usize>() {
                if activation || shape.zero_init {
                    return Err(bad(format!("the width {w} comes after the activation or zeros")));
                }
                if !(1..=1 << 16).contains(&w) {
                    return Err(bad(format!("a width must be from 1 to 65536, got {w}")));
                }
                shape.hidden.push(w);
                widths = true;
            } else if let Some(&(a, _)) = Activation::ALL.iter().find(|(_, n)| *n == part) {
                if activation || shape.zero_init {
                    return Err(bad(format!("'{part}' comes after another activation or zeros")));
                }
                shape.activation = a;
                activation = true;
            } else if part == "zeros" && !shape.zero_init {
                shape.zero_init = true;
            } else {
                return Err(bad(format!("'{part}' is not a width, an activation or zeros")));
            }
        }
        if !widths {
            shape.hidden = MlpShape::default().hidden;
        }
        if shape.hidden.len() > 64 {
            return Err(bad(format!("at most 64 hidden layers, got {}", shape.hidden.len())));
        }
        Ok(shape)
    }
}

/// A perceptron of `shape` over flattened `[channels, height, width]` images,
/// in `nn.Sequential` order (`1.weight`, then every second or every layer,
/// as the activation takes a slot or not).
pub fn mlp(input: [usize; 3], shape: &MlpShape, classes: usize, rng: &mut Rng) -> Sequential {
    let linear = |i: usize, o: usize, rng: &mut Rng| -> Box<dyn Module> {
        let mut l = Linear::new(i, o, true, rng);
        if shape.zero_init {
            l.weight = Tensor::zeros(&[o, i]).requires_grad();
            l.bias = Some(Tensor::zeros(&[o]).requires_grad());
        }
        Box::new(l)
    };
    let mut layers: Vec<Box<dyn Module>> = vec![Box::new(Flatten)];
    let mut inputs = input.iter().product();
    for &width in &shape.hidden {
        layers.push(linear(inputs, width, rng));
        layers.extend(shape.activation.layer());
        inputs = width;
    }
    layers.push(linear(inputs, classes, rng));
    Sequential::new(layers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Module;
    use crate::Tensor;

    #[test]
    fn sequential_runs_conv_and_relu_as_one_op_with_the_same_values_and_gradients() {
        let x = Tensor::uniform(&[4, 1, 28, 28], 0.0, 1.0, &mut Rng::new(1));
        let run = |fused: bool| {
            let net = lenet5([1, 28, 28], 10, &mut Rng::new(0)).unwrap();
            let y = if fused { net.forward(&x) } else { net.layers().iter().fold(x.clone(), |h, l| l.forward(&h)) };
            y.sum(&[0, 1], false).backward();
            let grads: Vec<Vec<f32>> = net.named_parameters().iter().map(|(_, p)| p.grad().unwrap().to_vec()).collect();
            (y.to_vec(), grads)
        };
        assert!(run(true) == run(false));
    }

    #[test]
    fn lenet5_shapes_names_and_size() {
        let net = lenet5([1, 28, 28], 10, &mut Rng::new(0)).unwrap();
        let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "0.weight",
                "0.bias",
                "3.weight",
                "3.bias",
                "7.weight",
                "7.bias",
                "9.weight",
                "9.bias",
                "11.weight",
                "11.bias"
            ]
        );
        // 156 + 2416 + 48120 + 10164 + 850 parameters, as LeNet-5 with a 400-input first FC layer.
        assert_eq!(net.num_parameters(), 61_706);
        assert_eq!(net.forward(&Tensor::zeros(&[2, 1, 28, 28])).shape(), &[2, 10]);
        let rgb = lenet5([3, 32, 32], 10, &mut Rng::new(0)).unwrap();
        assert_eq!(rgb.forward(&Tensor::zeros(&[1, 3, 32, 32])).shape(), &[1, 10]);
        assert!(lenet5([1, 8, 8], 10, &mut Rng::new(0)).is_err());
    }

    #[test]
    fn a_pytorch_state_dict_loads_and_gives_pytorch_logits() {
        // Written by tools/make_fixtures.py: lenet_state_dict().
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let net = lenet5([1, 28, 28], 10, &mut Rng::new(0)).unwrap();
        crate::nn::load_state_dict(&net, &dir.join("lenet5_state_dict.safetensors")).unwrap();
        let (io, _) = crate::io::read_safetensors(&dir.join("lenet5_io.safetensors")).unwrap();
        let (xs, x) = &io["x"];
        let logits = crate::no_grad(|| net.forward(&Tensor::from_vec(x.clone(), xs)));
        crate::ops::testing::assert_close("LeNet-5 logits", &logits.to_vec(), &io["logits"].1, 1e-5);
    }
}
