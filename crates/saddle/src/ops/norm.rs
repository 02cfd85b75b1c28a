//! Batch normalization with PyTorch's semantics (`F.batch_norm`).
//!
//! Letters: N batch, C channels, S the positions of one channel in one example
//! (`H·W` for images, `L` for sequences, 1 for `[N, C]`), M = N·S.
//!
//! `y[n, c, s] = γ_c · x̂[n, c, s] + β_c`, `x̂ = (x − μ_c) / √(σ²_c + ε)`. In
//! training `μ_c` and `σ²_c` are the batch's mean and biased variance over
//! `(n, s)`, and the running estimates move towards them:
//! `μ̄ ← (1 − m)·μ̄ + m·μ_c`, `σ̄² ← (1 − m)·σ̄² + m·σ²_c·M/(M − 1)` (the
//! unbiased variance). In evaluation `μ̄` and `σ̄²` are used instead.
//! Backward in training, with `r = 1/√(σ² + ε)`:
//! `dx = γ·r/M · (M·g − Σg − x̂·Σ(g·x̂))`, `dγ = Σ g·x̂`, `dβ = Σ g`
//! (sums over `(n, s)`); in evaluation `dx = γ·r·g`.
//!
//! `batch_norm_activation` applies ReLU or GELU in the same pass, `y =
//! f(z)` for the normalized `z`, and keeps only `x` for the backward pass,
//! which recomputes `z` and starts from `dz = g·f′(z)`: the values and
//! gradients of the two ops in turn, bit for bit, in fewer passes over
//! memory.
//!
//! Statistics are summed in `f64`, one channel per task, each plane in eight
//! interleaved partial sums added in a fixed order; outputs are written one
//! `(n, c)` plane per task, so the bits never depend on the thread count.
//!
//! Synchronized batch norm (PyTorch's `SyncBatchNorm`): inside
//! [`with_batch_norm_sums`], a training-mode batch norm adds its per-channel
//! sums (`Σx` and `M`, then `Σ(x − μ)²`; in the backward pass `Σg` and
//! `Σg·x̂`) over the replicas that each hold a share of the batch, so `μ`,
//! `σ²` and `dx` are those of the whole batch. `dγ` and `dβ` stay this
//! share's: the gradient all-reduce adds them.
//!
//! Uses: `tensor`, `kernels::elementwise` (GELU and its slope; sums in partials).

use crate::kernels::elementwise::{gelu, gelu_slope, sum, sum_pairs};
use crate::kernels::widest;
use crate::tensor::{Backward, Tensor};
use rayon::prelude::*;
use std::cell::RefCell;
use std::sync::Arc;

/// Adds a vector over the replicas of a data-parallel job, in place (every
/// replica calls it with a vector of the same length, in the same order).
pub type ReplicaSum = Arc<dyn Fn(&mut [f64]) + Send + Sync>;

thread_local! {
    static REPLICA_SUM: RefCell<Option<ReplicaSum>> = const { RefCell::new(None) };
}

/// Runs `f` with every training-mode [`Tensor::batch_norm`] it calls on this
/// thread synchronized through `sum` (and their backward passes, whenever
/// they run); `None` runs `f` as it is.
///
/// ```
/// use saddle::ops::{with_batch_norm_sums, ReplicaSum};
/// use saddle::Tensor;
/// // One replica that pretends a second one holds the same share: the statistics are unchanged.
/// let twice: ReplicaSum = std::sync::Arc::new(|v: &mut [f64]| v.iter_mut().for_each(|x| *x *= 2.0));
/// let x = Tensor::from_vec(vec![1.0, 3.0, 10.0, 30.0], &[2, 2]);
/// let y = with_batch_norm_sums(Some(twice), || x.batch_norm(None, None, None, true, 0.0));
/// assert_eq!(y.to_vec(), vec![-1.0, -1.0, 1.0, 1.0]);
/// ```
pub fn with_batch_norm_sums<R>(sum: Option<ReplicaSum>, f: impl FnOnce() -> R) -> R {
    /// Puts the sum that was installed before back, even if `f` panics.
    struct Restore(Option<ReplicaSum>);
    impl Drop for Restore {
        fn drop(&mut self) {
            REPLICA_SUM.with(|s| *s.borrow_mut() = self.0.take());
        }
    }
    let _restore = Restore(REPLICA_SUM.with(|s| s.replace(sum)));
    f()
}

/// The activation that [`Tensor::batch_norm_activation`] applies after the
/// normalization, with the same formulas as [`Tensor::relu`] and
/// [`Tensor::gelu`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormActivation {
    /// `max(z, 0)`.
    Relu,
    /// `z·Φ(z) = ½·z·(1 + erf(z/√2))` (the erf form).
    Gelu,
}

impl NormActivation {
    #[inline(always)]
    fn apply(self, z: f32) -> f32 {
        match self {
            NormActivation::Relu => z.max(0.0),
            NormActivation::Gelu => gelu(z),
        }
    }
    /// `g·f′(z)`.
    #[inline(always)]
    fn backward(self, g: f32, z: f32) -> f32 {
        match self {
            NormActivation::Relu => {
                if z > 0.0 {
                    g
                } else {
                    0.0
                }
            }
            NormActivation::Gelu => g * gelu_slope(z),
        }
    }
}

/// The running estimates of a batch-norm layer, updated in place by a
/// training-mode [`Tensor::batch_norm`].
#[derive(Clone, Copy)]
pub struct RunningStats<'a> {
    /// `μ̄: [C]`.
    pub mean: &'a Tensor,
    /// `σ̄²: [C]`.
    pub var: &'a Tensor,
    /// The weight of this batch: `momentum`, or `1/t` for the cumulative average.
    pub momentum: f32,
}

/// A channel's `1/√(σ² + ε)`, in `f64` then rounded, and its scale
/// `γ/√(σ² + ε)` in `f32` (`γ = 1` without affine parameters): what
/// normalizes it, and what [`BatchNorm::fold`](crate::nn::BatchNorm::fold)
/// multiplies a convolution's filters by.
pub(crate) fn channel_scale(var: f64, eps: f32, gamma: Option<f32>) -> (f32, f32) {
    let inv_std = (1.0 / (var + eps as f64).sqrt()) as f32;
    (inv_std, inv_std * gamma.unwrap_or(1.0))
}

/// Channel `c`'s values: `N` runs of `S` contiguous elements.
fn channel(x: &[f32], c: usize, channels: usize, s: usize) -> impl Iterator<Item = &[f32]> {
    x.chunks_exact(s.max(1)).skip(c).step_by(channels)
}

impl Tensor {
    /// `torch.nn.functional.batch_norm(x, running_mean, running_var, weight, bias,
    /// training, momentum, eps)` for `x: [N, C, …]`, `weight`, `bias: [C]`:
    ///
    /// `y = γ·(x − μ)/√(σ² + ε) + β`, per channel,
    ///
    /// with `μ`, `σ²` the batch's mean and biased variance over every axis
    /// but `C` when `training` (or when there are no running estimates), and
    /// the running estimates otherwise. In training, `running` (if given) moves
    /// towards the batch's mean and unbiased variance by its `momentum`.
    ///
    /// ```
    /// use saddle::Tensor;
    /// let x = Tensor::from_vec(vec![1.0, 3.0, 10.0, 30.0], &[2, 2]); // two examples, two channels
    /// let y = x.batch_norm(None, None, None, true, 0.0);
    /// assert_eq!(y.to_vec(), vec![-1.0, -1.0, 1.0, 1.0]);
    /// ```
    pub fn batch_norm(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        running: Option<RunningStats<'_>>,
        training: bool,
        eps: f32,
    ) -> Tensor {
        self.batch_norm_impl(weight, bias, running, training, eps, None)
    }

    /// `f(batch_norm(x, …))` for `f` ReLU or GELU, in one pass: the same
    /// values and gradients, bit for bit, as [`Tensor::batch_norm`] followed
    /// by [`Tensor::relu`] or [`Tensor::gelu`], with two fewer passes over
    /// the data in each direction and without keeping the normalized values
    /// for the backward pass (it recomputes them from `x`), which saves one
    /// activation per layer. Backward: `dz = g·f′(z)`, then batch norm's
    /// backward with `dz` for `g`.
    ///
    /// ```
    /// use saddle::ops::NormActivation;
    /// use saddle::Tensor;
    /// let x = Tensor::from_vec(vec![1.0, 3.0, 10.0, 30.0], &[2, 2]);
    /// let y = x.batch_norm_activation(None, None, None, true, 0.0, NormActivation::Relu);
    /// assert_eq!(y.to_vec(), vec![0.0, 0.0, 1.0, 1.0]);
    /// ```
    pub fn batch_norm_activation(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        running: Option<RunningStats<'_>>,
        training: bool,
        eps: f32,
        activation: NormActivation,
    ) -> Tensor {
        self.batch_norm_impl(weight, bias, running, training, eps, Some(activation))
    }

    fn batch_norm_impl(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        running: Option<RunningStats<'_>>,
        training: bool,
        eps: f32,
        activation: Option<NormActivation>,
    ) -> Tensor {
        let shape = self.shape().to_vec();
        if shape.len() < 2 {
            panic!("batch_norm: input {shape:?} must be [N, C, …]");
        }
        let (n, c) = (shape[0], shape[1]);
        let s: usize = shape[2..].iter().product();
        for (what, t) in [("weight", weight), ("bias", bias), ("running_mean", running.map(|r| r.mean))]
            .into_iter()
            .chain([("running_var", running.map(|r| r.var))])
        {
            if let Some(t) = t.filter(|t| t.shape() != [c]) {
                panic!("batch_norm: {what} {:?} does not match input {shape:?} (expected [{c}])", t.shape());
            }
        }
        let batch_stats = training || running.is_none();
        let replicas = REPLICA_SUM.with(|r| r.borrow().clone()).filter(|_| batch_stats);
        let x = self.data();
        // M: the values per channel, over every replica's share.
        let m = match &replicas {
            None => n * s,
            Some(sum) => {
                let mut total = [(n * s) as f64];
                sum(&mut total);
                total[0] as usize
            }
        };
        if batch_stats && m <= 1 {
            panic!("batch_norm: training needs more than one value per channel, got input {shape:?}");
        }
        // Channel ch's mean and biased variance, in f64: its sum, then the
        // squares about its mean.
        let sums_of = |ch: usize| channel(&x, ch, c, s).map(|xs| sum(xs, |v| v as f64)).sum::<f64>();
        let squares_of =
            |ch: usize, mean: f64| channel(&x, ch, c, s).map(|xs| sum(xs, |v| (v as f64 - mean).powi(2))).sum::<f64>();
        // The statistics known before the pass over the channels: the running
        // estimates, or with replicas the sums over all of them (two passes,
        // each summed across the replicas). Otherwise each channel's task
        // finds its own, and its planes are still in cache when it normalizes.
        let known: Option<Vec<(f64, f64)>> = match (&replicas, batch_stats) {
            (_, false) => {
                let r = running.expect("evaluation uses the running estimates");
                let (rm, rv) = (r.mean.data(), r.var.data());
                Some(rm.iter().zip(rv.iter()).map(|(&a, &b)| (a as f64, b as f64)).collect())
            }
            (Some(add_replicas), true) => {
                let mut sums: Vec<f64> = (0..c).into_par_iter().map(sums_of).collect();
                add_replicas(&mut sums);
                let mean: Vec<f64> = sums.iter().map(|t| t / m as f64).collect();
                let mut squares: Vec<f64> = (0..c).into_par_iter().map(|ch| squares_of(ch, mean[ch])).collect();
                add_replicas(&mut squares);
                Some(mean.into_iter().zip(squares).map(|(mean, sq)| (mean, sq / m as f64)).collect())
            }
            (None, true) => None,
        };
        let gamma = weight.map(|w| w.to_vec());
        let shift: Vec<f32> = bias.map_or(vec![0.0; c], |b| b.to_vec());
        // z = (x − μ)·scale + shift with the mean, 1/√(σ² + ε) and scale in f32.
        let affine = |ch: usize, (mean, var): (f64, f64)| {
            let (inv_std, scale) = channel_scale(var, eps, gamma.as_ref().map(|g| g[ch]));
            (mean as f32, inv_std, scale)
        };
        let mut out = vec![0.0f32; x.len()];
        let mut planes: Vec<Vec<&mut [f32]>> = (0..c).map(|_| Vec::new()).collect();
        out.chunks_mut(s.max(1)).enumerate().for_each(|(plane, y)| planes[plane % c].push(y));
        let moments: Vec<(f64, f64)> = planes
            .into_par_iter()
            .enumerate()
            .map(|(ch, planes)| {
                let moments = match &known {
                    Some(known) => known[ch],
                    None => {
                        let mean = sums_of(ch) / m as f64;
                        (mean, squares_of(ch, mean) / m as f64)
                    }
                };
                let (mean, _, scale) = affine(ch, moments);
                for (y, xs) in planes.into_iter().zip(channel(&x, ch, c, s)) {
                    let affine = (mean, scale, shift[ch]);
                    match activation {
                        None => normalize_plane(y, xs, affine, |z| z),
                        Some(NormActivation::Relu) => normalize_plane(y, xs, affine, |z| NormActivation::Relu.apply(z)),
                        Some(NormActivation::Gelu) => widest(
                            #[inline(always)]
                            || normalize_plane(y, xs, affine, |z| NormActivation::Gelu.apply(z)),
                        ),
                    }
                }
                moments
            })
            .collect();
        if let (true, Some(r)) = (training, running) {
            let mom = r.momentum as f64;
            let unbias = m as f64 / (m - 1) as f64;
            let (mut rm, mut rv) = (r.mean.data_mut(), r.var.data_mut());
            for (ch, &(mean, var)) in moments.iter().enumerate() {
                rm[ch] = ((1.0 - mom) * rm[ch] as f64 + mom * mean) as f32;
                rv[ch] = ((1.0 - mom) * rv[ch] as f64 + mom * var * unbias) as f32;
            }
        }
        let ((mean, inv_std), scale): ((Vec<f32>, Vec<f32>), Vec<f32>) =
            moments.iter().enumerate().map(|(ch, &v)| affine(ch, v)).map(|(mean, r, k)| ((mean, r), k)).unzip();
        drop(x);
        let mut inputs = vec![self];
        inputs.extend(weight);
        inputs.extend(bias);
        let back = BatchNormBackward {
            mean,
            inv_std,
            scale,
            shift,
            activation,
            batch_stats,
            channels: c,
            has_weight: weight.is_some(),
            count: m,
            replicas,
        };
        Tensor::from_op(out, &shape, &inputs, back)
    }
}

struct BatchNormBackward {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    /// `z = (x − μ)·scale + shift` per channel, as the forward pass computed it.
    scale: Vec<f32>,
    shift: Vec<f32>,
    activation: Option<NormActivation>,
    batch_stats: bool,
    channels: usize,
    has_weight: bool,
    /// M, over every replica's share.
    count: usize,
    /// Synchronized batch norm: the sum over the replicas.
    replicas: Option<ReplicaSum>,
}

/// `y = f((x − μ)·scale + shift)` over one plane.
#[inline(always)]
fn normalize_plane(y: &mut [f32], xs: &[f32], (mu, scale, shift): (f32, f32, f32), f: impl Fn(f32) -> f32) {
    y.iter_mut().zip(xs).for_each(|(y, &v)| *y = f((v - mu) * scale + shift));
}

/// `(Σ a, Σ b)` of per-plane sums, added in plane order.
fn add(planes: impl Iterator<Item = (f64, f64)>) -> (f64, f64) {
    let planes: Vec<(f64, f64)> = planes.collect();
    (planes.iter().map(|p| p.0).sum(), planes.iter().map(|p| p.1).sum())
}

impl BatchNormBackward {
    /// `(Σ g, Σ g·x̂)` over one plane of channel `ch`.
    #[inline(always)]
    fn plane_sums(&self, ch: usize, xs: &[f32], gs: &[f32]) -> (f64, f64) {
        let (mu, r) = (self.mean[ch], self.inv_std[ch]);
        (sum(gs, |gv| gv as f64), sum_pairs(xs, gs, |v, gv| (gv * (v - mu) * r) as f64))
    }

    /// Turns channel `ch`'s planes of `g` (`s` values each, beside the
    /// batch's `x`) into `dz = df(g, z)` in place and returns the channel's
    /// `(Σ dz, Σ dz·x̂)`. Inlined, so that [`widest`] compiles it with its caller.
    #[inline(always)]
    fn write_dz(
        &self,
        ch: usize,
        planes: &mut [&mut [f32]],
        (x, s): (&[f32], usize),
        df: impl Fn(f32, f32) -> f32,
    ) -> (f64, f64) {
        let (c, mu, scale, shift) = (self.channels, self.mean[ch], self.scale[ch], self.shift[ch]);
        // A loop, not a closure handed to `add`, which would be compiled apart from `widest`.
        let mut sums = Vec::with_capacity(planes.len());
        for (d, xs) in planes.iter_mut().zip(channel(x, ch, c, s)) {
            for (d, &v) in d.iter_mut().zip(xs) {
                *d = df(*d, (v - mu) * scale + shift);
            }
            sums.push(self.plane_sums(ch, xs, d));
        }
        add(sums.into_iter())
    }

    /// Turns channel `ch`'s planes of `g` (or `dz`) into `dx` in place, from
    /// the channel's sums over the whole batch: `dx = k·(g − mean g − x̂·mean
    /// g·x̂)`, `k = r·γ`; `k·g` where the running estimates normalized.
    fn write_dx(&self, ch: usize, planes: &mut [&mut [f32]], (x, s): (&[f32], usize), (all_g, all_gx): (f64, f64)) {
        let m = self.count as f64;
        let (mu, r, k) = (self.mean[ch], self.inv_std[ch], self.scale[ch]);
        let (mg, mgx) = ((all_g / m) as f32, (all_gx / m) as f32);
        let f = |v: f32, gv: f32| if self.batch_stats { k * (gv - mg - (v - mu) * r * mgx) } else { k * gv };
        for (dx, xs) in planes.iter_mut().zip(channel(x, ch, self.channels, s)) {
            dx.iter_mut().zip(xs).for_each(|(d, &v)| *d = f(v, *d));
        }
    }
}

impl Backward for BatchNormBackward {
    fn name(&self) -> &'static str {
        "batch_norm"
    }
    fn reads_output(&self) -> bool {
        false
    }
    fn backward(&self, inputs: &[Tensor], out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        self.backward_owned(inputs, out, g.to_vec())
    }
    /// `dx` is computed in `g`'s buffer, and so is `dz` before it.
    fn backward_owned(&self, inputs: &[Tensor], _out: &[f32], mut g: Vec<f32>) -> Vec<Option<Vec<f32>>> {
        let c = self.channels;
        let x = inputs[0].data();
        let x = &x[..];
        let s = x.len() / (inputs[0].shape()[0] * c).max(1);
        let need_dx = inputs[0].is_requires_grad();
        // One task per channel: with an activation f, g becomes dz = g·f′(z)
        // in place, each plane summed (Σ g, Σ g·x̂) while it is in cache; then,
        // unless the sums must first be added over the replicas, dx while the
        // channel's planes are still in cache.
        let mut planes: Vec<Vec<&mut [f32]>> = (0..c).map(|_| Vec::new()).collect();
        g.chunks_mut(s.max(1)).enumerate().for_each(|(plane, d)| planes[plane % c].push(d));
        let alone = self.replicas.is_none();
        let sums: Vec<(f64, f64)> = planes
            .par_iter_mut()
            .enumerate()
            .map(|(ch, planes)| {
                let sums = match self.activation {
                    Some(NormActivation::Relu) => {
                        self.write_dz(ch, planes, (x, s), |gv, z| NormActivation::Relu.backward(gv, z))
                    }
                    Some(NormActivation::Gelu) => widest(
                        #[inline(always)]
                        || self.write_dz(ch, planes, (x, s), |gv, z| NormActivation::Gelu.backward(gv, z)),
                    ),
                    None => add(planes.iter().zip(channel(x, ch, c, s)).map(|(gs, xs)| self.plane_sums(ch, xs, gs))),
                };
                if alone && need_dx {
                    self.write_dx(ch, planes, (x, s), sums);
                }
                sums
            })
            .collect();
        // dx needs the sums over every replica's share; dγ and dβ are this share's.
        if let (Some(add_replicas), true) = (&self.replicas, need_dx) {
            let mut all: Vec<f64> = sums.iter().map(|p| p.0).chain(sums.iter().map(|p| p.1)).collect();
            add_replicas(&mut all);
            planes
                .par_iter_mut()
                .enumerate()
                .for_each(|(ch, planes)| self.write_dx(ch, planes, (x, s), (all[ch], all[c + ch])));
        }
        drop(planes);
        let gx = need_dx.then_some(g);
        let (sum_g, sum_gx): (Vec<f64>, Vec<f64>) = sums.into_iter().unzip();
        let mut grads = vec![gx];
        if self.has_weight {
            grads.push(inputs[1].is_requires_grad().then(|| sum_gx.iter().map(|&v| v as f32).collect()));
        }
        if inputs.len() > grads.len() {
            grads.push(Some(sum_g.iter().map(|&v| v as f32).collect()));
        }
        grads
    }
}

#[cfg(test)]
mod tests {
    use super::{NormActivation, RunningStats};
    use crate::ops::testing::{assert_close, gradcheck, Fixtures};
    use crate::{Rng, Tensor};

    #[test]
    fn batch_norm_matches_pytorch() {
        let fx = Fixtures::load("cnn_parts");
        for case in fx.cases("batch_norm") {
            let x = fx.param(&case, "x");
            let affine = case.attr_bool("affine");
            let training = case.attr_bool("training");
            let (w, b) =
                if affine { (Some(fx.param(&case, "weight")), Some(fx.param(&case, "bias"))) } else { (None, None) };
            let (rm, rv) = (fx.tensor(&case, "running_mean_before"), fx.tensor(&case, "running_var_before"));
            let momentum = case.attr_f32("momentum");
            let running = RunningStats { mean: &rm, var: &rv, momentum };
            let y = x.batch_norm(w.as_ref(), b.as_ref(), Some(running), training, case.attr_f32("eps"));
            let mut inputs = vec![("x", &x)];
            if let (Some(w), Some(b)) = (&w, &b) {
                inputs.extend([("weight", w), ("bias", b)]);
            }
            fx.check_forward_backward(&case, &y, &inputs);
            assert_close(
                &format!("{} running_mean", case.name),
                &rm.to_vec(),
                &fx.tensor(&case, "running_mean").to_vec(),
                1e-6,
            );
            assert_close(
                &format!("{} running_var", case.name),
                &rv.to_vec(),
                &fx.tensor(&case, "running_var").to_vec(),
                1e-6,
            );
        }
    }

    #[test]
    fn batch_norm_gradcheck() {
        let mut rng = Rng::new(110);
        let x = Tensor::uniform(&[3, 2, 4, 3], -2.0, 2.0, &mut rng);
        let w = Tensor::uniform(&[2], 0.5, 1.5, &mut rng);
        let b = Tensor::uniform(&[2], -1.0, 1.0, &mut rng);
        let eps = 1e-5;
        gradcheck(
            "batch_norm train",
            &[x.clone(), w.clone(), b.clone()],
            |t| t[0].batch_norm(Some(&t[1]), Some(&t[2]), None, true, eps),
            &mut rng,
        );
        let (rm, rv) = (Tensor::uniform(&[2], -0.5, 0.5, &mut rng), Tensor::uniform(&[2], 0.5, 2.0, &mut rng));
        gradcheck(
            "batch_norm eval",
            &[x.clone(), w, b],
            |t| {
                let running = RunningStats { mean: &rm, var: &rv, momentum: 0.1 };
                t[0].batch_norm(Some(&t[1]), Some(&t[2]), Some(running), false, eps)
            },
            &mut rng,
        );
        let x1 = Tensor::uniform(&[5, 3], -2.0, 2.0, &mut rng);
        gradcheck("batch_norm 1d no affine", &[x1], |t| t[0].batch_norm(None, None, None, true, eps), &mut rng);
    }

    #[test]
    fn running_statistics_after_several_steps_match_pytorch() {
        let fx = Fixtures::load("cnn_parts");
        let case = &fx.cases("running")[0];
        let (w, b) = (fx.tensor(case, "weight"), fx.tensor(case, "bias"));
        let (rm, rv) = (Tensor::zeros(&[3]), Tensor::ones(&[3]));
        let eps = 1e-5;
        for step in 0..case.attr_usize("steps") {
            let running = RunningStats { mean: &rm, var: &rv, momentum: 0.1 };
            let y = fx.tensor(case, &format!("x{step}")).batch_norm(Some(&w), Some(&b), Some(running), true, eps);
            assert_close(&format!("step {step}"), &y.to_vec(), &fx.tensor(case, &format!("y{step}")).to_vec(), 1e-5);
        }
        assert_close("running_mean", &rm.to_vec(), &fx.tensor(case, "running_mean").to_vec(), 1e-5);
        assert_close("running_var", &rv.to_vec(), &fx.tensor(case, "running_var").to_vec(), 1e-5);
        let running = RunningStats { mean: &rm, var: &rv, momentum: 0.1 };
        let y = fx.tensor(case, "x_eval").batch_norm(Some(&w), Some(&b), Some(running), false, eps);
        assert_close("evaluation", &y.to_vec(), &fx.tensor(case, "y_eval").to_vec(), 1e-5);
    }

    /// The fused op against batch norm then the activation: the same bits
    /// forward and backward, in training and evaluation, with and without γ
    /// and β, for images and for `[N, C]`.
    #[test]
    fn batch_norm_activation_is_batch_norm_then_the_activation() {
        let mut rng = Rng::new(111);
        for shape in [&[4, 3, 5, 6][..], &[7, 3]] {
            for (act, name) in [(NormActivation::Relu, "relu"), (NormActivation::Gelu, "gelu")] {
                for (affine, training) in [(true, true), (false, true), (true, false), (false, false)] {
                    let case = format!("{shape:?} {name} affine {affine} training {training}");
                    let x = Tensor::uniform(shape, -2.0, 3.0, &mut rng);
                    let (w, b) =
                        (Tensor::uniform(&[3], 0.5, 1.5, &mut rng), Tensor::uniform(&[3], -1.0, 1.0, &mut rng));
                    let g = Tensor::uniform(shape, -1.0, 1.0, &mut rng);
                    let run = |fused: bool| {
                        let (x, w, b) =
                            (x.detach().requires_grad(), w.detach().requires_grad(), b.detach().requires_grad());
                        let (rm, rv) =
                            (Tensor::from_vec(vec![0.1, -0.2, 0.3], &[3]), Tensor::from_vec(vec![0.9, 1.1, 1.3], &[3]));
                        let running = Some(RunningStats { mean: &rm, var: &rv, momentum: 0.1 });
                        let (w, b) = if affine { (Some(&w), Some(&b)) } else { (None, None) };
                        let y = if fused {
                            x.batch_norm_activation(w, b, running, training, 1e-5, act)
                        } else {
                            let z = x.batch_norm(w, b, running, training, 1e-5);
                            if act == NormActivation::Relu {
                                z.relu()
                            } else {
                                z.gelu()
                            }
                        };
                        y.backward_with(&g);
                        let grads = [Some(&x), w, b].map(|t| t.and_then(|t| t.grad()).map(|g| g.to_vec()));
                        (y.to_vec(), grads, rm.to_vec(), rv.to_vec())
                    };
                    assert_eq!(run(true), run(false), "{case}");
                }
            }
        }
    }

    #[test]
    fn batch_norm_activation_gradcheck() {
        let mut rng = Rng::new(112);
        let x = Tensor::uniform(&[3, 2, 4, 3], -2.0, 2.0, &mut rng);
        let w = Tensor::uniform(&[2], 0.5, 1.5, &mut rng);
        let b = Tensor::uniform(&[2], -1.0, 1.0, &mut rng);
        for act in [NormActivation::Relu, NormActivation::Gelu] {
            gradcheck(
                &format!("batch_norm_activation {act:?}"),
                &[x.clone(), w.clone(), b.clone()],
                |t| t[0].batch_norm_activation(Some(&t[1]), Some(&t[2]), None, true, 1e-5, act),
                &mut rng,
            );
        }
    }

    #[test]
    #[should_panic(expected = "training needs more than one value per channel")]
    fn one_value_per_channel_is_refused_in_training() {
        Tensor::zeros(&[1, 3]).batch_norm(None, None, None, true, 1e-5);
    }
}
