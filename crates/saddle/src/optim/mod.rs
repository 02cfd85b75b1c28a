//! Optimizers: `θ ← θ − (η_t / σ_t) · m_t`, over parameter groups.
//!
//! Each update rule is assembled from the pieces in [`pieces`]: the direction
//! `m_t` (the gradient, or momentum), the magnitude `σ_t` (1, or the root mean
//! square of past gradients: Adagrad sums them all, RMSProp averages them
//! with `α`) and weight decay (L2 added to the gradient, or decoupled). Adam is
//! momentum and RMSProp with bias correction, visibly so. The rate `η_t` comes
//! from the schedule ([`LrScheduler`]), which tells the optimizer before each
//! step: one owner for the rate, so a checkpoint holds all of it.
//!
//! Hyperparameter structs default to PyTorch's defaults and are validated at
//! construction, naming the bad value. State is kept per parameter name under
//! PyTorch's state names (`momentum_buffer`, `exp_avg`, `exp_avg_sq`, `sum`,
//! `square_avg`, …) and saved with a checkpoint, so training resumes exactly.
//!
//! Uses: `tensor`, `io` (through `state`), `error`.

mod adagrad;
mod adam;
mod clip;
mod lookahead;
pub mod pieces;
mod rmsprop;
pub mod schedule;
mod scheduler;
mod sgd;
mod spec;
mod state;

pub use adagrad::AdagradConfig;
pub use adam::{AdamConfig, WeightDecay};
pub use clip::{clip_grad_norm, clip_grad_value, global_grad_norm};
pub use lookahead::Lookahead;
pub use rmsprop::RmsPropConfig;
pub use schedule::Schedule;
pub use scheduler::{LrScheduler, ReduceLrOnPlateau};
pub use sgd::SgdConfig;
pub use spec::{Family, OptimizerSpec};
pub use state::{load_optimizer_state, save_optimizer_state, ParamState};

use crate::{Error, Result, Tensor};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Parameters that share their hyperparameters: one entry of PyTorch's
/// `optimizer.param_groups`.
#[derive(Clone)]
pub struct ParamGroup {
    /// The parameters, by name.
    pub params: Vec<(String, Tensor)>,
    /// This group's rate is `lr_scale · η_t` (1 by default).
    pub lr_scale: f64,
    /// This group's weight decay λ, in place of the optimizer's (for example
    /// 0 for biases and normalization weights); `None` keeps the optimizer's.
    pub weight_decay: Option<f64>,
}

impl ParamGroup {
    /// A group of `params` with the optimizer's own hyperparameters.
    pub fn new(params: Vec<(String, Tensor)>) -> Self {
        ParamGroup { params, lr_scale: 1.0, weight_decay: None }
    }
}

/// An optimizer: an update rule ([`OptimizerSpec`]) over parameter groups,
/// with the learning rate it was last told and each parameter's state
/// (`torch.optim.Optimizer`).
///
/// ```
/// use saddle::optim::{Optimizer, SgdConfig};
/// use saddle::Tensor;
/// // One step of SGD on L(θ) = θ², from θ = 1 with η = 0.1: θ ← 1 − 0.1·2 = 0.8.
/// let theta = Tensor::from_vec(vec![1.0], &[1]).requires_grad();
/// let mut opt = Optimizer::new(vec![("theta".into(), theta.clone())], SgdConfig { lr: 0.1, ..Default::default() }).unwrap();
/// theta.mul(&theta).sum_all().backward();
/// opt.step();
/// assert!((theta.item() - 0.8).abs() < 1e-7);
/// ```
pub struct Optimizer {
    rule: OptimizerSpec,
    groups: Vec<ParamGroup>,
    /// Every group's parameters, in order.
    params: Vec<(String, Tensor)>,
    lr: f64,
    state: BTreeMap<String, ParamState>,
}

impl Optimizer {
    /// The update rule `rule` (any of the configs, or an [`OptimizerSpec`])
    /// over `params`, one group; errors name a bad hyperparameter.
    pub fn new(params: Vec<(String, Tensor)>, rule: impl Into<OptimizerSpec>) -> Result<Self> {
        Optimizer::with_groups(vec![ParamGroup::new(params)], rule)
    }

    /// The update rule over parameter groups, each with its own rate factor and weight decay.
    pub fn with_groups(groups: Vec<ParamGroup>, rule: impl Into<OptimizerSpec>) -> Result<Self> {
        let rule = rule.into();
        rule.validate()?;
        for (i, g) in groups.iter().enumerate() {
            non_negative(&format!("param_groups[{i}].lr_scale"), g.lr_scale)?;
            if let Some(wd) = g.weight_decay {
                non_negative(&format!("param_groups[{i}].weight_decay"), wd)?;
            }
        }
        let params = groups.iter().flat_map(|g| g.params.iter().cloned()).collect();
        Ok(Optimizer { lr: rule.lr(), rule, groups, params, state: BTreeMap::new() })
    }

    /// One update of every parameter that has a gradient, at the current rate.
    pub fn step(&mut self) {
        for g in &self.groups {
            let rule = self.rule.for_group(self.lr * g.lr_scale, g.weight_decay);
            rule.update(&g.params, &mut self.state);
        }
    }
    /// The current learning rate η (of groups with `lr_scale` 1).
    pub fn lr(&self) -> f64 {
        self.lr
    }
    /// Sets η; the schedule calls this before each step.
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
    /// The update rule and its hyperparameters, with the rate it started from.
    pub fn rule(&self) -> &OptimizerSpec {
        &self.rule
    }
    /// The parameter groups.
    pub fn groups(&self) -> &[ParamGroup] {
        &self.groups
    }
    /// Every parameter, by name.
    pub fn params(&self) -> &[(String, Tensor)] {
        &self.params
    }
    /// Per-parameter state, keyed by parameter name.
    pub fn state(&self) -> &BTreeMap<String, ParamState> {
        &self.state
    }
    /// Mutable per-parameter state (for loading a checkpoint).
    pub fn state_mut(&mut self) -> &mut BTreeMap<String, ParamState> {
        &mut self.state
    }
    /// Forgets every parameter's gradient.
    pub fn zero_grad(&self) {
        self.params.iter().for_each(|(_, p)| p.zero_grad());
    }
    /// The effective hyperparameters at the current rate, as PyTorch prints them.
    pub fn describe(&self) -> String {
        self.rule.with_lr(self.lr).to_string()
    }
}

/// `Ok` if `v` is finite and `≥ 0`, else a config error naming `field` and `v`.
pub(crate) fn non_negative(field: &str, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(Error::config(field, format!("must be a finite number ≥ 0, got {v}")))
    }
}

/// Elements per call of an update closure (RMSprop keeps a stack buffer this long).
pub(crate) const CHUNK: usize = 1 << 14;

/// An optimizer's rule over one chunk: `update(step, g, θ, buffers)`. A
/// trait object, so that [`update_params`]'s threads are compiled once, not
/// once for each optimizer.
pub(crate) type Update<'a> = dyn Fn(u64, &[f32], &mut [f32], &mut [&mut [f32]]) + Sync + 'a;

/// The loop all optimizers share. For every parameter with a gradient: count
/// the step, take its `buffers` (created with the given initial value on the
/// first step), and run `update(step, g, θ, buffers)` over chunks of at most
/// [`CHUNK`] elements. The update is element-wise, so the result does not
/// depend on how the elements are shared among threads.
///
/// A parameter larger than one chunk is cut into one contiguous part per
/// thread, and thread `i` of the pool always updates part `i`
/// (`rayon::broadcast`): each core then finds its part of θ, g and the state
/// in its own caches at the next step, as with OpenMP's static schedule.
/// Work stealing (`par_chunks`) hands the chunks to whichever thread is free,
/// so many arrive from the other core's cache (the README's benchmarks give
/// the measurement).
pub(crate) fn update_params(
    params: &[(String, Tensor)],
    state: &mut BTreeMap<String, ParamState>,
    buffers: &[(&str, f32)],
    update: &Update<'_>,
) {
    for (name, p) in params {
        let n = p.numel();
        p.with_grad_mut(|g| {
            let s = state.entry(name.clone()).or_default();
            s.step += 1;
            let step = s.step;
            let mut bufs: Vec<Vec<f32>> = buffers.iter().map(|&(b, init)| s.take(b, n, init)).collect();
            {
                let mut theta = p.data_mut();
                let threads = if n > CHUNK { rayon::current_num_threads() } else { 1 };
                // Parts start on 64-byte boundaries, so no cache line is written by two cores.
                let part = n.div_ceil(threads).next_multiple_of(16).max(1);
                let mut parts: Vec<Part> =
                    theta.chunks_mut(part).map(|t| Part { theta: t, bufs: Vec::new() }).collect();
                for b in bufs.iter_mut() {
                    b.chunks_mut(part).zip(parts.iter_mut()).for_each(|(c, p)| p.bufs.push(c));
                }
                let run = |i: usize, Part { theta, mut bufs }: Part| {
                    let g = &g[i * part..][..theta.len()];
                    for (j, th) in theta.chunks_mut(CHUNK).enumerate() {
                        let mut bs: Vec<&mut [f32]> =
                            bufs.iter_mut().map(|b| &mut b[j * CHUNK..][..th.len()]).collect();
                        update(step, &g[j * CHUNK..][..th.len()], th, &mut bs);
                    }
                };
                if parts.len() == 1 {
                    run(0, parts.pop().expect("one part"));
                } else {
                    let parts: Vec<Mutex<Option<Part>>> = parts.into_iter().map(|p| Mutex::new(Some(p))).collect();
                    rayon::broadcast(|ctx| {
                        let taken = parts.get(ctx.index()).and_then(|p| p.lock().ok()?.take());
                        if let Some(part) = taken {
                            run(ctx.index(), part);
                        }
                    });
                }
            }
            for (&(b, _), v) in buffers.iter().zip(bufs) {
                s.put(b, v);
            }
        });
    }
}

/// One thread's share of a parameter: its part of θ and of each state buffer.
struct Part<'a> {
    theta: &'a mut [f32],
    bufs: Vec<&'a mut [f32]>,
}

/// Builds the optimizer a fixture case names (`optim=Adam lr=0.01 …`).
#[cfg(test)]
pub(crate) fn from_fixture(case: &crate::ops::testing::Case, params: Vec<(String, Tensor)>) -> Optimizer {
    let f = |k: &str, d: f64| case.get(k).map_or(d, |v| v.parse().unwrap());
    let b = |k: &str| case.get(k) == Some("true");
    let rule = match case.attr("optim") {
        "SGD" => OptimizerSpec::Sgd(SgdConfig {
            lr: f("lr", 1e-3),
            momentum: f("momentum", 0.0),
            dampening: f("dampening", 0.0),
            weight_decay: f("weight_decay", 0.0),
            nesterov: b("nesterov"),
        }),
        "Adagrad" => OptimizerSpec::Adagrad(AdagradConfig {
            lr: f("lr", 1e-2),
            lr_decay: f("lr_decay", 0.0),
            weight_decay: f("weight_decay", 0.0),
            initial_accumulator_value: f("initial_accumulator_value", 0.0),
            ..Default::default()
        }),
        "RMSprop" => OptimizerSpec::RmsProp(RmsPropConfig {
            lr: f("lr", 1e-2),
            alpha: f("alpha", 0.99),
            weight_decay: f("weight_decay", 0.0),
            momentum: f("momentum", 0.0),
            centered: b("centered"),
            ..Default::default()
        }),
        name @ ("Adam" | "AdamW") => {
            let base = if name == "AdamW" { AdamConfig::adamw() } else { AdamConfig::default() };
            let betas = case.get("betas").map_or(base.betas, |v| {
                let (a, b) = v.split_once(',').unwrap();
                (a.parse().unwrap(), b.parse().unwrap())
            });
            let weight_decay = base.weight_decay.with_lambda(f("weight_decay", base.weight_decay.lambda()));
            OptimizerSpec::Adam(AdamConfig { lr: f("lr", 1e-3), betas, weight_decay, amsgrad: b("amsgrad"), ..base })
        }
        other => panic!("unknown optimizer {other}"),
    };
    Optimizer::new(params, rule).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{assert_close, Fixtures};
    use crate::ops::Reduction;

    /// The fixture's model: `y = tanh(x·W1ᵀ + b1)·W2ᵀ + b2`, `L = mse(y, t)`.
    fn loss(p: &[(String, Tensor)], x: &Tensor, t: &Tensor) -> Tensor {
        x.linear(&p[0].1, Some(&p[1].1)).tanh().linear(&p[2].1, Some(&p[3].1)).mse_loss(t, Reduction::Mean)
    }

    #[test]
    fn every_optimizer_follows_pytorch_for_100_steps() {
        let fx = Fixtures::load("optim");
        for case in fx.cases("opt") {
            let get = |k: &str| fx.tensor(&crate::ops::testing::Case::named("data"), k);
            let (x, t) = (get("x"), get("t"));
            let params: Vec<(String, Tensor)> =
                ["w1", "b1", "w2", "b2"].iter().map(|k| (k.to_string(), get(k).requires_grad())).collect();
            let mut opt = from_fixture(&case, params.clone());
            for step in 1..=100 {
                opt.zero_grad();
                loss(&params, &x, &t).backward();
                opt.step();
                if step % 10 == 0 {
                    for (k, p) in &params {
                        let want = fx.tensor(&case, &format!("step{step}/{k}"));
                        assert_close(&format!("{} step {step} {k}", case.name), &p.to_vec(), &want.to_vec(), 1e-5);
                    }
                }
            }
        }
    }

    #[test]
    fn every_optimizer_converges_on_a_quadratic_bowl() {
        // L(θ) = ½ Σ aᵢθᵢ² with curvatures 1 and 10, from θ = (3, −2).
        let fx = Fixtures::load("optim");
        for case in fx.cases("opt") {
            let theta = Tensor::from_vec(vec![3.0, -2.0], &[2]).requires_grad();
            let a = Tensor::from_vec(vec![1.0, 10.0], &[2]);
            let mut opt = from_fixture(&case, vec![("theta".into(), theta.clone())]);
            // A step size that suits each family on this bowl: Adagrad's shrinks as 1/√t.
            opt.set_lr(match case.attr("optim") {
                "Adagrad" => 0.5,
                "RMSprop" => 0.01,
                _ => 0.05,
            });
            for _ in 0..3000 {
                opt.zero_grad();
                theta.mul(&theta).mul(&a).sum_all().mul_scalar(0.5).backward();
                opt.step();
            }
            let v = theta.to_vec();
            // Weight decay moves the minimum only slightly; L2 penalties pull it to 0 too.
            assert!(v.iter().all(|x| x.abs() < 0.05), "{}: θ = {v:?} after 3000 steps", case.name);
        }
    }

    /// Gradient descent on f(x, y) = x² − y², whose origin is a saddle point.
    fn descend_saddle(start: [f32; 2], steps: usize) -> Vec<f32> {
        let p = Tensor::from_vec(start.to_vec(), &[2]).requires_grad();
        let mut opt =
            Optimizer::new(vec![("p".into(), p.clone())], SgdConfig { lr: 0.1, ..Default::default() }).unwrap();
        let sign = Tensor::from_vec(vec![1.0, -1.0], &[2]);
        for _ in 0..steps {
            opt.zero_grad();
            p.mul(&p).mul(&sign).sum_all().backward();
            opt.step();
        }
        p.to_vec()
    }

    #[test]
    fn gradient_descent_stalls_at_a_saddle_and_a_perturbation_escapes() {
        // On the ridge y = 0 the gradient (2x, −2y) never gains a y component:
        // descent walks into the saddle and stops, although f is unbounded below.
        let stalled = descend_saddle([1.0, 0.0], 200);
        assert!(stalled[0].abs() < 1e-6 && stalled[1] == 0.0, "{stalled:?}");
        // A perturbation of 1e-6 along y grows by 1.2 per step and escapes.
        let escaped = descend_saddle([1.0, 1e-6], 200);
        assert!(escaped[1].abs() > 1.0, "{escaped:?}");
    }

    #[test]
    fn optimizer_state_uses_pytorch_names_and_round_trips() {
        let fx = Fixtures::load("optim");
        let dir = std::env::temp_dir().join(format!("saddle-optim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for case in fx.cases("opt") {
            let p = Tensor::from_vec(vec![1.0, -2.0], &[2]).requires_grad();
            let mut opt = from_fixture(&case, vec![("layer.weight".into(), p.clone())]);
            p.mul(&p).sum_all().backward();
            opt.step();
            let path = dir.join("state.safetensors");
            save_optimizer_state(&opt, &path).unwrap();
            let mut fresh = from_fixture(&case, vec![("layer.weight".into(), p.clone())]);
            load_optimizer_state(&mut fresh, &path).unwrap();
            assert_eq!(fresh.state(), opt.state(), "{}", case.name);
            let names: Vec<&String> = opt.state()["layer.weight"].buffers.keys().collect();
            let expected: &[&str] = match case.attr("optim") {
                "SGD" if case.get("momentum").is_some() => &["momentum_buffer"],
                "SGD" => &[],
                "Adagrad" => &["sum"],
                "RMSprop" => &["square_avg"],
                _ => &["exp_avg", "exp_avg_sq"],
            };
            assert!(expected.iter().all(|e| names.iter().any(|n| n == e)), "{}: {names:?}", case.name);
        }
        let mut other = from_fixture(&fx.cases("opt")[0], vec![("other".into(), Tensor::zeros(&[2]).requires_grad())]);
        let e = load_optimizer_state(&mut other, &dir.join("state.safetensors")).unwrap_err().to_string();
        assert!(e.contains("state for 'layer.weight', which the model does not have"), "{e}");
    }
}
