//! Batch normalization layers (`torch.nn.BatchNorm1d`, `torch.nn.BatchNorm2d`).
//!
//! Letters: N batch, C `num_features`, L positions, H, W height and width.
//!
//! `y = γ·(x − μ)/√(σ² + ε) + β` per channel, with the batch's statistics in
//! training and the running estimates in evaluation (see
//! [`Tensor::batch_norm`]). Parameters `weight` (γ, ones) and `bias` (β,
//! zeros) when `affine`; buffers `running_mean` (zeros), `running_var` (ones)
//! and `num_batches_tracked` (a scalar count) when `track_running_stats`,
//! saved with the state dict but never given to an optimizer.
//!
//! Uses: `ops::batch_norm`, `nn::Module`.

use super::{join, Conv2d, Module};
use crate::ops::{batch_norm_scale, NormActivation, RunningStats};
use crate::{is_grad_enabled, Tensor};

/// A batch-norm layer's settings, PyTorch's names and defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormConfig {
    /// Channels C.
    pub num_features: usize,
    /// Added to the variance (1e-5).
    pub eps: f32,
    /// Weight of each batch in the running estimates (0.1); `None`: cumulative average.
    pub momentum: Option<f32>,
    /// Learn γ and β (true).
    pub affine: bool,
    /// Keep running estimates for evaluation (true); without them evaluation
    /// also uses the batch's statistics.
    pub track_running_stats: bool,
}

impl BatchNormConfig {
    /// PyTorch's defaults for `num_features` channels.
    pub fn new(num_features: usize) -> Self {
        BatchNormConfig { num_features, eps: 1e-5, momentum: Some(0.1), affine: true, track_running_stats: true }
    }
}

/// Batch normalization over `[N, C]`, `[N, C, L]` (`BatchNorm1d`) or
/// `[N, C, H, W]` (`BatchNorm2d`).
///
/// ```
/// use saddle::nn::{BatchNorm, BatchNormConfig, Module};
/// use saddle::Tensor;
/// let bn = BatchNorm::new_2d(BatchNormConfig::new(3));
/// let names: Vec<String> = bn.state_dict().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]);
/// let y = bn.forward(&Tensor::arange(0.0, 24.0, 1.0).reshape(&[2, 3, 2, 2]));
/// assert_eq!(bn.num_batches_tracked.item(), 1.0);
/// assert!(y.mean_all().item().abs() < 1e-6);
/// ```
pub struct BatchNorm {
    /// γ: `[C]`, if affine.
    pub weight: Option<Tensor>,
    /// β: `[C]`, if affine.
    pub bias: Option<Tensor>,
    /// `[C]`, a buffer.
    pub running_mean: Tensor,
    /// `[C]`, a buffer.
    pub running_var: Tensor,
    /// `[]`: training batches seen, a buffer.
    pub num_batches_tracked: Tensor,
    /// The settings.
    pub config: BatchNormConfig,
    /// Input ranks accepted: 2 or 3 for 1-d, 4 for 2-d.
    spatial_dims: usize,
    training: bool,
}

impl BatchNorm {
    fn new(config: BatchNormConfig, spatial_dims: usize) -> Self {
        let c = config.num_features;
        let (weight, bias) = if config.affine {
            (Some(Tensor::ones(&[c]).requires_grad()), Some(Tensor::zeros(&[c]).requires_grad()))
        } else {
            (None, None)
        };
        BatchNorm {
            weight,
            bias,
            running_mean: Tensor::zeros(&[c]),
            running_var: Tensor::ones(&[c]),
            num_batches_tracked: Tensor::scalar(0.0),
            config,
            spatial_dims,
            training: true,
        }
    }
    /// `nn.BatchNorm1d`: input `[N, C]` or `[N, C, L]`.
    pub fn new_1d(config: BatchNormConfig) -> Self {
        BatchNorm::new(config, 1)
    }
    /// `nn.BatchNorm2d`: input `[N, C, H, W]`.
    pub fn new_2d(config: BatchNormConfig) -> Self {
        BatchNorm::new(config, 2)
    }

    /// `f(self.forward(x))` for `f` ReLU or GELU, fused into one op
    /// ([`Tensor::batch_norm_activation`]): the same values and gradients,
    /// faster, with one activation less kept for the backward pass.
    ///
    /// ```
    /// use saddle::nn::{BatchNorm, BatchNormConfig, Module};
    /// use saddle::ops::NormActivation;
    /// use saddle::Tensor;
    /// let bn = BatchNorm::new_2d(BatchNormConfig::new(2));
    /// let x = Tensor::from_vec(vec![1.0, 3.0, 10.0, 30.0], &[2, 2, 1, 1]);
    /// let y = bn.forward_activation(&x, NormActivation::Relu);
    /// assert_eq!(y.to_vec(), bn.forward(&x).relu().to_vec());
    /// ```
    pub fn forward_activation(&self, x: &Tensor, activation: NormActivation) -> Tensor {
        self.normalize(x, Some(activation))
    }

    /// `conv` followed by this layer as one convolution, where that gives
    /// the same values but for rounding: in evaluation, with running
    /// estimates, where no gradient is recorded (inference). With
    /// `s = γ/√(σ̄² + ε)` per output channel `o`, `w′[o] = s[o]·w[o]` and
    /// `b′[o] = s[o]·(b[o] − μ̄[o]) + β[o]` (PyTorch's `fuse_conv_bn_eval`):
    /// one pass over the activations instead of two. `None` otherwise, or if
    /// the channels differ.
    ///
    /// ```
    /// use saddle::nn::{BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, Module};
    /// use saddle::{no_grad, Rng, Tensor};
    /// let mut rng = Rng::new(0);
    /// let conv = Conv2d::new(Conv2dConfig::new(3, 4, 3), &mut rng);
    /// let mut bn = BatchNorm::new_2d(BatchNormConfig::new(4));
    /// let x = Tensor::normal(&[2, 3, 8, 8], 0.0, 1.0, &mut rng);
    /// bn.forward(&conv.forward(&x)); // running estimates from one batch
    /// bn.set_training(false);
    /// assert!(bn.fold(&conv).is_none(), "gradients are recorded");
    /// let folded = no_grad(|| bn.fold(&conv)).unwrap();
    /// let (a, b) = no_grad(|| (folded.forward(&x), bn.forward(&conv.forward(&x))));
    /// assert!(a.to_vec().iter().zip(b.to_vec()).all(|(a, b)| (a - b).abs() < 1e-5));
    /// ```
    pub fn fold(&self, conv: &Conv2d) -> Option<Conv2d> {
        let oc = conv.weight.shape()[0];
        if self.training || !self.config.track_running_stats || is_grad_enabled() || oc != self.config.num_features {
            return None;
        }
        let (mean, var) = (self.running_mean.to_vec(), self.running_var.to_vec());
        let gamma = self.weight.as_ref().map(|w| w.to_vec());
        let beta = self.bias.as_ref().map(|b| b.to_vec());
        // s as the op computes its scale.
        let s: Vec<f32> =
            (0..oc).map(|o| batch_norm_scale(var[o] as f64, self.config.eps, gamma.as_ref().map(|g| g[o])).1).collect();
        let bias = conv.bias.as_ref().map_or(vec![0.0; oc], |b| b.to_vec());
        let b: Vec<f32> = (0..oc).map(|o| s[o] * (bias[o] - mean[o]) + beta.as_ref().map_or(0.0, |b| b[o])).collect();
        let mut w = conv.weight.to_vec();
        let per = w.len() / oc.max(1);
        w.chunks_mut(per.max(1)).zip(&s).for_each(|(w, s)| w.iter_mut().for_each(|v| *v *= s));
        Some(Conv2d {
            weight: Tensor::from_vec(w, conv.weight.shape()),
            bias: Some(Tensor::from_vec(b, &[oc])),
            options: conv.options,
        })
    }

    fn normalize(&self, x: &Tensor, activation: Option<NormActivation>) -> Tensor {
        let rank = x.ndim();
        let ok = if self.spatial_dims == 2 { rank == 4 } else { rank == 2 || rank == 3 };
        if !ok || x.shape()[1] != self.config.num_features {
            panic!("{}: input {:?} does not fit {} features", self.describe(), x.shape(), self.config.num_features);
        }
        let c = &self.config;
        let track = c.track_running_stats;
        let momentum = if self.training && track {
            let mut count = self.num_batches_tracked.data_mut();
            count[0] += 1.0;
            c.momentum.unwrap_or(1.0 / count[0])
        } else {
            0.0
        };
        let running = track.then_some(RunningStats { mean: &self.running_mean, var: &self.running_var, momentum });
        let (w, b) = (self.weight.as_ref(), self.bias.as_ref());
        match activation {
            None => x.batch_norm(w, b, running, self.training, c.eps),
            Some(f) => x.batch_norm_activation(w, b, running, self.training, c.eps, f),
        }
    }
}

impl Module for BatchNorm {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.normalize(x, None)
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        if let (Some(w), Some(b)) = (&self.weight, &self.bias) {
            f(&join(prefix, "weight"), w);
            f(&join(prefix, "bias"), b);
        }
    }
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        if self.config.track_running_stats {
            f(&join(prefix, "running_mean"), &self.running_mean);
            f(&join(prefix, "running_var"), &self.running_var);
            f(&join(prefix, "num_batches_tracked"), &self.num_batches_tracked);
        }
    }
    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
    fn describe(&self) -> String {
        let c = &self.config;
        let momentum = c.momentum.map_or("None".to_string(), |m| m.to_string());
        format!(
            "BatchNorm{}d({}, eps={}, momentum={momentum}, affine={}, track_running_stats={})",
            self.spatial_dims, c.num_features, c.eps, c.affine, c.track_running_stats
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{assert_close, Fixtures};

    #[test]
    fn the_layer_tracks_running_statistics_as_pytorch_and_evaluates_with_them() {
        let fx = Fixtures::load("cnn_parts");
        let case = &fx.cases("running")[0];
        let mut bn = BatchNorm::new_2d(BatchNormConfig::new(3));
        *bn.weight.as_ref().unwrap().data_mut() = fx.tensor(case, "weight").to_vec();
        *bn.bias.as_ref().unwrap().data_mut() = fx.tensor(case, "bias").to_vec();
        for step in 0..case.attr_usize("steps") {
            let y = bn.forward(&fx.tensor(case, &format!("x{step}")));
            assert_close("training output", &y.to_vec(), &fx.tensor(case, &format!("y{step}")).to_vec(), 1e-5);
        }
        assert_eq!(bn.num_batches_tracked.item(), 5.0);
        assert_close("running_var", &bn.running_var.to_vec(), &fx.tensor(case, "running_var").to_vec(), 1e-5);
        bn.set_training(false);
        let y = bn.forward(&fx.tensor(case, "x_eval"));
        assert_close("evaluation", &y.to_vec(), &fx.tensor(case, "y_eval").to_vec(), 1e-5);
        assert_eq!(bn.num_batches_tracked.item(), 5.0, "evaluation counts no batch");
        assert_eq!(bn.named_parameters().len(), 2, "buffers are not parameters");
    }

    #[test]
    fn cumulative_average_and_no_running_statistics() {
        let bn = BatchNorm::new_1d(BatchNormConfig { momentum: None, ..BatchNormConfig::new(1) });
        bn.forward(&Tensor::from_vec(vec![1.0, 3.0], &[2, 1]));
        bn.forward(&Tensor::from_vec(vec![5.0, 7.0], &[2, 1]));
        assert_eq!(bn.running_mean.to_vec(), vec![4.0], "the mean of 2 and 6");
        let mut plain = BatchNorm::new_1d(BatchNormConfig { track_running_stats: false, ..BatchNormConfig::new(2) });
        plain.set_training(false);
        assert!(plain.named_buffers().is_empty());
        let y = plain.forward(&Tensor::from_vec(vec![0.0, 0.0, 2.0, 4.0], &[2, 2]));
        assert_close("batch statistics in evaluation", &y.to_vec(), &[-1.0, -1.0, 1.0, 1.0], 1e-4);
    }
}
