//! Ready-made networks for image classification (by name: `train::ImageModel`).
//!
//! `lenet5`: conv 6@5×5 pad 2 → ReLU → max-pool 2 → conv 16@5×5 → ReLU →
//! max-pool 2 → flatten → 120 → ReLU → 84 → ReLU → classes (LeCun et al. 1998,
//! with ReLU and max pooling as is usual today). For a `[C, 28, 28]` input the
//! flattened size is 16·5·5 = 400. `mlp`: flatten → 256 → ReLU → 128 → ReLU → classes.
//!
//! Uses: `nn` layers, `error`.

use super::{Conv2d, Conv2dConfig, Flatten, Linear, MaxPool2d, ReLU, Sequential};
use crate::{Error, Result, Rng};

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

/// A two-hidden-layer perceptron over flattened `[channels, height, width]` images.
pub fn mlp(input: [usize; 3], classes: usize, rng: &mut Rng) -> Sequential {
    Sequential::new(vec![
        Box::new(Flatten),
        Box::new(Linear::new(input.iter().product(), 256, true, rng)),
        Box::new(ReLU),
        Box::new(Linear::new(256, 128, true, rng)),
        Box::new(ReLU),
        Box::new(Linear::new(128, classes, true, rng)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Module;
    use crate::Tensor;

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
