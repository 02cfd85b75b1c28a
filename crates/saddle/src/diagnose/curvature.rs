//! Curvature of a loss at a point: Hessian-vector products by central
//! differences of exact gradients, the extreme Hessian eigenvalues by Lanczos,
//! the trace by Hutchinson's estimator, and the spectral density by stochastic
//! Lanczos quadrature.
//!
//! The engine has no double backward (DESIGN), so a Hessian-vector product is
//! `Hv ≈ (∇L(θ + εv) − ∇L(θ − εv)) / 2ε`: exact for a quadratic, with an error
//! of order `ε²` otherwise, and of order `u·‖∇L‖/ε` from `f32` rounding.

pub use crate::kernels::eigen::symmetric_eigen;
use crate::nn::Module;
use crate::ops::CrossEntropyOptions;
use crate::{no_grad, Rng, Tensor};

/// A loss as a function of parameters, at fixed data: `L(θ)`, `∇L(θ)` and
/// `H(θ)·v`, with `θ` the parameters flattened in their order.
///
/// Evaluating at another point writes into the parameters; every method puts
/// the original values back, bit for bit, before it returns.
///
/// ```
/// use saddle::diagnose::Objective;
/// use saddle::Tensor;
/// // L(x, y) = x² − y² at (1, 2): ∇L = (2, −4), H = diag(2, −2).
/// let p = Tensor::from_vec(vec![1.0, 2.0], &[2]).requires_grad();
/// let loss = || {
///     let s = Tensor::from_vec(vec![1.0, -1.0], &[2]);
///     p.mul(&p).mul(&s).sum_all()
/// };
/// let f = Objective::new(vec![p.clone()], &loss);
/// assert_eq!(f.gradient().1, vec![2.0, -4.0]);
/// let hv = f.hvp(&[0.0, 1.0]);
/// assert!((hv[0]).abs() < 1e-4 && (hv[1] + 2.0).abs() < 1e-4);
/// ```
pub struct Objective<'a> {
    params: Vec<Tensor>,
    loss: &'a dyn Fn() -> Tensor,
    eps: f64,
}

impl<'a> Objective<'a> {
    /// `loss()` computes a scalar from `params` (and fixed data). The finite
    /// difference step is `ε = 1e-3·max(1, ‖θ‖/√n)`, a thousandth of the
    /// typical parameter size.
    pub fn new(params: Vec<Tensor>, loss: &'a dyn Fn() -> Tensor) -> Self {
        let mut f = Objective { params, loss, eps: 0.0 };
        let theta = f.point();
        let rms = (theta.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / theta.len().max(1) as f64).sqrt();
        f.eps = 1e-3 * rms.max(1.0);
        f
    }

    /// Overrides the finite-difference step `ε` of [`Objective::hvp`].
    pub fn with_eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// The parameters, in the order of `θ`.
    pub fn params(&self) -> &[Tensor] {
        &self.params
    }

    /// The number of parameters `n`.
    pub fn dim(&self) -> usize {
        self.params.iter().map(Tensor::numel).sum()
    }

    /// The current point `θ`, flattened.
    pub fn point(&self) -> Vec<f32> {
        self.params.iter().flat_map(|p| p.to_vec()).collect()
    }

    /// Moves the parameters to `theta` (length [`Objective::dim`]).
    pub fn set_point(&self, theta: &[f32]) {
        assert_eq!(
            theta.len(),
            self.dim(),
            "Objective::set_point: {} values for {} parameters",
            theta.len(),
            self.dim()
        );
        let mut at = 0;
        for p in &self.params {
            let mut d = p.data_mut();
            let n = d.len();
            d.copy_from_slice(&theta[at..at + n]);
            at += n;
        }
    }

    /// `L(θ)`, without recording a graph.
    pub fn loss(&self) -> f64 {
        no_grad(|| (self.loss)().item() as f64)
    }

    /// `L(θ + d)` for a displacement `d` (the parameters are restored).
    pub fn loss_at(&self, d: &[f64]) -> f64 {
        let theta = self.point();
        self.set_point(&displaced(&theta, d, 1.0));
        let l = self.loss();
        self.set_point(&theta);
        l
    }

    /// `(L(θ), ∇L(θ))`. Gradients already accumulated in the parameters are
    /// forgotten.
    pub fn gradient(&self) -> (f64, Vec<f64>) {
        self.params.iter().for_each(Tensor::zero_grad);
        let loss = (self.loss)();
        loss.backward();
        let mut g = Vec::with_capacity(self.dim());
        for p in &self.params {
            match p.grad() {
                Some(t) => g.extend(t.to_vec().iter().map(|&v| v as f64)),
                None => g.extend(std::iter::repeat_n(0.0, p.numel())),
            }
            p.zero_grad();
        }
        (loss.item() as f64, g)
    }

    /// `H(θ)·v ≈ (∇L(θ + εv) − ∇L(θ − εv)) / 2ε`, two gradient evaluations.
    /// The steps actually taken in `f32` are used in the quotient, so rounding
    /// of `θ ± εv` does not bias the result.
    pub fn hvp(&self, v: &[f64]) -> Vec<f64> {
        let theta = self.point();
        let plus = displaced(&theta, v, self.eps);
        let minus = displaced(&theta, v, -self.eps);
        self.set_point(&plus);
        let (_, gp) = self.gradient();
        self.set_point(&minus);
        let (_, gm) = self.gradient();
        self.set_point(&theta);
        // The realized displacement along v: (θ⁺ − θ⁻)·v / ‖v‖² ≈ 2ε.
        let (mut num, mut den) = (0.0, 0.0);
        for ((p, m), vi) in plus.iter().zip(&minus).zip(v) {
            num += (*p as f64 - *m as f64) * vi;
            den += vi * vi;
        }
        let step = if den > 0.0 { num / den } else { 2.0 * self.eps };
        gp.iter().zip(&gm).map(|(a, b)| (a - b) / step).collect()
    }
}

/// Each batch's share of the labelled rows (those not
/// [`IGNORE`](crate::data::IGNORE)) of all `batches`.
fn shares(batches: &[(Tensor, Vec<i64>)]) -> Vec<f32> {
    let counted: Vec<usize> =
        batches.iter().map(|(_, y)| y.iter().filter(|&&t| t != crate::data::IGNORE).count()).collect();
    let total = counted.iter().sum::<usize>().max(1);
    counted.iter().map(|&c| c as f32 / total as f32).collect()
}

/// The mean loss ([`Module::loss`]: cross-entropy, or a CRF's likelihood) of `model` over every labelled row of `batches`,
/// as one scalar: a loss over more examples than one forward pass holds, for
/// an [`Objective`] that only evaluates (run it without a graph).
pub fn mean_loss(model: &dyn Module, batches: &[(Tensor, Vec<i64>)]) -> Tensor {
    let mut total = Tensor::scalar(0.0);
    for ((x, y), share) in batches.iter().zip(shares(batches)) {
        if share > 0.0 {
            total = total.add(&model.loss(x, &model.forward(x), y, CrossEntropyOptions::default()).mul_scalar(share));
        }
    }
    total
}

/// `(L, ‖∇L‖, σ)` of [`mean_loss`] over `batches`, one batch's graph at a
/// time: the gradient of the training loss itself, not of one mini-batch,
/// whose noise alone keeps its norm from vanishing at a minimum. Gradients
/// already in the parameters are forgotten.
///
/// `σ` is the sampling noise of that norm: with `g_b` each batch's gradient
/// and `w_b` its share, `σ² = Σ w_b‖g_b − ḡ‖² / (B − 1)`, `B = 1/Σ w_b²` the
/// effective number of batches (`NaN` with fewer than two). A norm within
/// about 2σ of zero is one the data cannot tell from zero.
pub fn dataset_gradient(model: &dyn Module, batches: &[(Tensor, Vec<i64>)]) -> (f64, f64, f64) {
    let params = model.named_parameters();
    let mut mean: Vec<f64> = Vec::new();
    let (mut loss, mut each_sq, mut w_sq) = (0.0, 0.0, 0.0);
    for ((x, y), share) in batches.iter().zip(shares(batches)) {
        if share == 0.0 {
            continue;
        }
        params.iter().for_each(|(_, p)| p.zero_grad());
        let l = model.loss(x, &model.forward(x), y, CrossEntropyOptions::default());
        l.backward();
        loss += share as f64 * l.item() as f64;
        let g: Vec<f64> = params
            .iter()
            .flat_map(|(_, p)| {
                p.with_grad_mut(|g| g.iter().map(|&v| v as f64).collect()).unwrap_or_else(|| vec![0.0; p.numel()])
            })
            .collect();
        mean.resize(g.len(), 0.0);
        mean.iter_mut().zip(&g).for_each(|(m, v)| *m += share as f64 * v);
        each_sq += share as f64 * dot(&g, &g);
        w_sq += (share as f64).powi(2);
    }
    params.iter().for_each(|(_, p)| p.zero_grad());
    let norm = norm(&mean);
    let b = 1.0 / w_sq;
    let noise = if b >= 2.0 - 1e-9 { ((each_sq - norm * norm).max(0.0) / (b - 1.0)).sqrt() } else { f64::NAN };
    (loss, norm, noise)
}

fn displaced(theta: &[f32], d: &[f64], scale: f64) -> Vec<f32> {
    theta.iter().zip(d).map(|(&t, &di)| (t as f64 + scale * di) as f32).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// A random unit vector of length `n` (Gaussian entries, normalized).
fn random_unit(n: usize, rng: &mut Rng) -> Vec<f64> {
    let mut v: Vec<f64> = (0..n).map(|_| rng.normal(0.0, 1.0) as f64).collect();
    let s = norm(&v).max(f64::MIN_POSITIVE);
    v.iter_mut().for_each(|x| *x /= s);
    v
}

/// The outcome of a Lanczos run: `T = QᵀHQ` tridiagonal, with its
/// eigenvalues (Ritz values, ascending) and their weights (the squared first
/// components of `T`'s eigenvectors, the quadrature weights of SLQ).
#[derive(Clone, Debug, PartialEq)]
pub struct Lanczos {
    /// Ritz values `θ_1 ≤ … ≤ θ_m`, approximations to eigenvalues of `H`.
    pub ritz: Vec<f64>,
    /// Weight of each Ritz value: `(e_1ᵀ s_i)²`, summing to 1.
    pub weights: Vec<f64>,
    /// Ritz vector of the smallest Ritz value: a unit direction of `H`'s most
    /// negative (least positive) curvature.
    pub min_vector: Vec<f64>,
    /// Ritz vector of the largest Ritz value.
    pub max_vector: Vec<f64>,
}

/// `m` steps of the Lanczos iteration on the symmetric operator `hv` of size
/// `n`, from the unit start `q1`, with full reorthogonalization (so the Ritz
/// values do not repeat). Stops early when the Krylov space is exhausted.
pub fn lanczos(n: usize, m: usize, q1: Vec<f64>, hv: &mut dyn FnMut(&[f64]) -> Vec<f64>) -> Lanczos {
    let m = m.clamp(1, n.max(1));
    let mut q: Vec<Vec<f64>> = vec![q1];
    let (mut alpha, mut beta) = (Vec::new(), Vec::new());
    loop {
        let j = q.len() - 1;
        let mut w = hv(&q[j]);
        let a = dot(&q[j], &w);
        alpha.push(a);
        // Two passes of Gram–Schmidt against every earlier vector.
        for _ in 0..2 {
            for qi in &q {
                let c = dot(qi, &w);
                w.iter_mut().zip(qi).for_each(|(x, y)| *x -= c * y);
            }
        }
        let b = norm(&w);
        if alpha.len() == m || b <= 1e-10 * a.abs().max(beta.last().copied().unwrap_or(0.0)).max(f64::MIN_POSITIVE) {
            break;
        }
        beta.push(b);
        q.push(w.iter().map(|x| x / b).collect());
    }
    let k = alpha.len();
    let mut t = vec![0.0; k * k];
    for i in 0..k {
        t[i * k + i] = alpha[i];
        if i + 1 < k {
            t[i * k + i + 1] = beta[i];
            t[(i + 1) * k + i] = beta[i];
        }
    }
    let (values, vectors) = symmetric_eigen(&t, k);
    let ritz_vector = |col: usize| {
        let mut v = vec![0.0; n];
        for (j, qj) in q.iter().enumerate() {
            let s = vectors[j * k + col];
            v.iter_mut().zip(qj).for_each(|(x, y)| *x += s * y);
        }
        v
    };
    Lanczos {
        weights: (0..k).map(|i| vectors[i].powi(2)).collect(),
        min_vector: ritz_vector(0),
        max_vector: ritz_vector(k - 1),
        ritz: values,
    }
}

/// What [`curvature`] measured at a point.
#[derive(Clone, Debug, PartialEq)]
pub struct Curvature {
    /// `L(θ)`.
    pub loss: f64,
    /// `‖∇L(θ)‖`.
    pub grad_norm: f64,
    /// The sampling noise of `grad_norm` ([`dataset_gradient`]'s σ); `NaN` where it was not measured.
    pub grad_noise: f64,
    /// The largest Hessian eigenvalue (Lanczos).
    pub lambda_max: f64,
    /// The smallest Hessian eigenvalue (Lanczos).
    pub lambda_min: f64,
    /// The unit direction of the smallest eigenvalue.
    pub min_direction: Vec<f64>,
    /// The best step along `min_direction` ([`escape`]).
    pub escape: Escape,
    /// Lanczos iterations (each two gradient evaluations).
    pub iterations: usize,
}

impl Curvature {
    /// `λ_min / λ_max`: −1 at a symmetric saddle, ≥ 0 at a minimum.
    pub fn ratio(&self) -> f64 {
        self.lambda_min / self.lambda_max.abs().max(f64::MIN_POSITIVE)
    }

    /// Whether the curvature is clearly negative: `λ_min < −fraction·|λ_max|`,
    /// and a step along its direction lowers the loss by more than 1% (a
    /// negative eigenvalue that no step can use is a sliver of non-convexity,
    /// or finite-difference noise, not a way down).
    pub fn clearly_negative(&self, fraction: f64) -> bool {
        let fall = self.escape.before - self.escape.after;
        self.ratio() < -fraction && fall > 0.01 * self.escape.before.abs().max(1e-6)
    }
}

/// The gradient and the extreme Hessian eigenvalues of `f` at its current
/// point, by `iterations` Lanczos steps from a random start drawn from `seed`,
/// and the [`escape`] along the direction of the smallest. Extreme
/// eigenvalues converge first: 20–40 steps resolve them well.
pub fn curvature(f: &Objective, iterations: usize, seed: u64) -> Curvature {
    let (loss, g) = f.gradient();
    let n = f.dim();
    let start = random_unit(n, &mut Rng::new(seed));
    let l = lanczos(n, iterations, start, &mut |v| f.hvp(v));
    Curvature {
        loss,
        grad_norm: norm(&g),
        grad_noise: f64::NAN,
        lambda_max: *l.ritz.last().expect("at least one Ritz value"),
        lambda_min: l.ritz[0],
        escape: escape(f, &l.min_vector),
        min_direction: l.min_vector,
        iterations: l.ritz.len(),
    }
}

/// Hutchinson's estimate of `tr H = E[zᵀHz]` over `samples` Rademacher
/// vectors `z` (entries ±1): the mean and its standard error.
pub fn hessian_trace(f: &Objective, samples: usize, seed: u64) -> (f64, f64) {
    let mut rng = Rng::new(seed);
    let n = f.dim();
    let draws: Vec<f64> = (0..samples.max(1))
        .map(|_| {
            let z: Vec<f64> = (0..n).map(|_| if rng.next_u64() & 1 == 1 { 1.0 } else { -1.0 }).collect();
            dot(&z, &f.hvp(&z))
        })
        .collect();
    let mean = draws.iter().sum::<f64>() / draws.len() as f64;
    let var = draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (draws.len().max(2) - 1) as f64;
    (mean, (var / draws.len() as f64).sqrt())
}

/// The spectral density of `H` by stochastic Lanczos quadrature (Ghorbani et
/// al. 2019): `runs` Lanczos runs of `iterations` steps from random starts
/// give nodes `θ_i` and weights `w_i`; the density is
/// `φ(x) = (1/runs) Σ_runs Σ_i w_i · N(x; θ_i, σ²)` on the returned nodes.
/// Returns every `(node, weight/runs)`; [`density_on`] smooths them.
pub fn spectral_density(f: &Objective, runs: usize, iterations: usize, seed: u64) -> Vec<(f64, f64)> {
    let mut rng = Rng::new(seed);
    let n = f.dim();
    let runs = runs.max(1);
    let mut nodes = Vec::new();
    for _ in 0..runs {
        let l = lanczos(n, iterations, random_unit(n, &mut rng), &mut |v| f.hvp(v));
        nodes.extend(l.ritz.iter().zip(&l.weights).map(|(&x, &w)| (x, w / runs as f64)));
    }
    nodes
}

/// `φ(x)` at each `x` of `grid`: the weighted nodes broadened by Gaussians of
/// width `sigma`.
pub fn density_on(nodes: &[(f64, f64)], grid: &[f64], sigma: f64) -> Vec<f64> {
    let c = 1.0 / (sigma * (2.0 * std::f64::consts::PI).sqrt());
    grid.iter()
        .map(|x| nodes.iter().map(|(t, w)| w * c * (-(x - t).powi(2) / (2.0 * sigma * sigma)).exp()).sum())
        .collect()
}

/// The result of [`escape`]: the loss before and after a step `alpha` along
/// the direction of most negative curvature.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Escape {
    /// `L(θ)`.
    pub before: f64,
    /// The signed step length taken along the unit direction.
    pub alpha: f64,
    /// `L(θ + α·d)`.
    pub after: f64,
}

/// Tries steps `α·d` along the unit direction `d` (both signs, lengths from
/// `10⁻³` to `1` times `max(1, ‖θ‖)`) and returns the one that lowers the loss
/// most, leaving the parameters where they were. At a saddle,
/// `L(θ + αd) ≈ L(θ) + ½λ_min α²` falls for either sign.
pub fn escape(f: &Objective, d: &[f64]) -> Escape {
    let before = f.loss();
    let scale = f.point().iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt().max(1.0);
    let mut best = Escape { before, alpha: 0.0, after: before };
    for k in 0..=12 {
        let length = scale * 1e-3 * 10f64.powf(k as f64 / 4.0);
        for alpha in [length, -length] {
            let step: Vec<f64> = d.iter().map(|x| alpha * x).collect();
            let after = f.loss_at(&step);
            if after < best.after {
                best = Escape { before, alpha, after };
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::{Mat, Side};

    fn exact_eigenvalues(h: &[f64], n: usize) -> Vec<f64> {
        Mat::<f64>::from_fn(n, n, |i, j| h[i * n + j]).self_adjoint_eigenvalues(Side::Lower).unwrap()
    }

    /// A random symmetric `n×n` matrix with eigenvalues spread over [−3, 10].
    fn random_symmetric(n: usize, rng: &mut Rng) -> Vec<f64> {
        let b: Vec<f64> = (0..n * n).map(|_| rng.normal(0.0, 1.0) as f64).collect();
        let mut h = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                h[i * n + j] = (b[i * n + j] + b[j * n + i]) * 0.5;
            }
        }
        h
    }

    #[test]
    fn jacobi_matches_faer() {
        let mut rng = Rng::new(1);
        let h = random_symmetric(12, &mut rng);
        let (values, vectors) = symmetric_eigen(&h, 12);
        let exact = exact_eigenvalues(&h, 12);
        for (a, b) in values.iter().zip(&exact) {
            assert!((a - b).abs() < 1e-10, "{a} vs {b}");
        }
        // H v = λ v for the first column.
        for row in 0..12 {
            let hv: f64 = (0..12).map(|j| h[row * 12 + j] * vectors[j * 12]).sum();
            assert!((hv - values[0] * vectors[row * 12]).abs() < 1e-10);
        }
    }

    /// L(θ) = ½ θᵀAθ with A symmetric: the Hessian is A everywhere, and the
    /// central difference is exact up to f32 rounding.
    #[test]
    fn quadratic_hvp_and_extreme_eigenvalues() {
        let n = 30;
        let mut rng = Rng::new(2);
        let a = random_symmetric(n, &mut rng);
        let a32: Vec<f32> = a.iter().map(|&x| x as f32).collect();
        let at = Tensor::from_vec(a32, &[n, n]);
        let theta = Tensor::normal(&[n, 1], 0.0, 1.0, &mut rng).requires_grad();
        let loss = || theta.transpose(0, 1).matmul(&at.matmul(&theta)).sum_all().mul_scalar(0.5);
        let f = Objective::new(vec![theta.clone()], &loss);
        let before = f.point();
        let v = random_unit(n, &mut rng);
        let hv = f.hvp(&v);
        assert_eq!(f.point(), before, "hvp must restore the parameters");
        let a_rounded: Vec<f64> = a.iter().map(|&x| x as f32 as f64).collect();
        for i in 0..n {
            let exact: f64 = (0..n).map(|j| a_rounded[i * n + j] * v[j]).sum();
            assert!((hv[i] - exact).abs() < 2e-3, "row {i}: {} vs {exact}", hv[i]);
        }
        let exact = exact_eigenvalues(&a_rounded, n);
        let c = curvature(&f, n, 7);
        let (lo, hi) = (exact[0], exact[n - 1]);
        assert!((c.lambda_min - lo).abs() < 1e-3 * hi.abs(), "λ_min {} vs {lo}", c.lambda_min);
        assert!((c.lambda_max - hi).abs() < 1e-3 * hi.abs(), "λ_max {} vs {hi}", c.lambda_max);
        let (trace, se) = hessian_trace(&f, 200, 3);
        let exact_trace: f64 = (0..n).map(|i| a_rounded[i * n + i]).sum();
        assert!((trace - exact_trace).abs() < 4.0 * se + 1e-3, "trace {trace} ± {se} vs {exact_trace}");
        // SLQ with n steps is exact quadrature: its nodes are the eigenvalues and
        // the weights sum to one.
        let nodes = spectral_density(&f, 2, n, 4);
        assert!((nodes.iter().map(|(_, w)| w).sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(nodes.iter().all(|(x, _)| *x >= lo - 1e-3 && *x <= hi + 1e-3));
    }

    /// The tiny MLP `y = w2·tanh(W1 x + b1) + b2`, 2 → 3 → 1, mean squared
    /// error on 5 points: 13 parameters.
    struct TinyMlp {
        x: Vec<[f64; 2]>,
        y: Vec<f64>,
    }

    impl TinyMlp {
        /// The loss in f64, from a flat θ = [W1 (3×2), b1 (3), w2 (1×3), b2].
        fn loss(&self, t: &[f64]) -> f64 {
            let mut sum = 0.0;
            for (x, y) in self.x.iter().zip(&self.y) {
                let mut out = t[12];
                for h in 0..3 {
                    out += t[9 + h] * (t[h * 2] * x[0] + t[h * 2 + 1] * x[1] + t[6 + h]).tanh();
                }
                sum += (out - y).powi(2);
            }
            sum / self.x.len() as f64
        }

        /// The exact Hessian, column by column, by second differences of the
        /// f64 loss (h = 1e-4: error about 1e-8).
        fn hessian(&self, t: &[f64]) -> Vec<f64> {
            let (n, h) = (t.len(), 1e-4);
            let mut out = vec![0.0; n * n];
            let at = |i: usize, si: f64, j: usize, sj: f64| {
                let mut p = t.to_vec();
                p[i] += si * h;
                p[j] += sj * h;
                self.loss(&p)
            };
            for i in 0..n {
                for j in 0..n {
                    out[i * n + j] = (at(i, 1.0, j, 1.0) - at(i, 1.0, j, -1.0) - at(i, -1.0, j, 1.0)
                        + at(i, -1.0, j, -1.0))
                        / (4.0 * h * h);
                }
            }
            out
        }
    }

    #[test]
    fn tiny_mlp_hessian_columns_and_eigenvalues() {
        let mut rng = Rng::new(5);
        let mlp = TinyMlp {
            x: (0..5).map(|_| [rng.normal(0.0, 1.0) as f64, rng.normal(0.0, 1.0) as f64]).collect(),
            y: (0..5).map(|_| rng.normal(0.0, 1.0) as f64).collect(),
        };
        let theta: Vec<f32> = (0..13).map(|_| rng.normal(0.0, 0.8)).collect();
        let w1 = Tensor::from_vec(theta[0..6].to_vec(), &[3, 2]).requires_grad();
        let b1 = Tensor::from_vec(theta[6..9].to_vec(), &[3]).requires_grad();
        let w2 = Tensor::from_vec(theta[9..12].to_vec(), &[1, 3]).requires_grad();
        let b2 = Tensor::from_vec(theta[12..13].to_vec(), &[1]).requires_grad();
        let xs: Vec<f32> = mlp.x.iter().flat_map(|p| [p[0] as f32, p[1] as f32]).collect();
        let x = Tensor::from_vec(xs, &[5, 2]);
        let y = Tensor::from_vec(mlp.y.iter().map(|&v| v as f32).collect(), &[5, 1]);
        let loss = || x.linear(&w1, Some(&b1)).tanh().linear(&w2, Some(&b2)).mse_loss(&y, crate::ops::Reduction::Mean);
        let f = Objective::new(vec![w1.clone(), b1.clone(), w2.clone(), b2.clone()], &loss);
        let t64: Vec<f64> = theta.iter().map(|&v| v as f64).collect();
        let exact = mlp.hessian(&t64);
        let scale = exact.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let mut worst = 0.0f64;
        for j in 0..13 {
            let mut e = vec![0.0; 13];
            e[j] = 1.0;
            let col = f.hvp(&e);
            for i in 0..13 {
                worst = worst.max((col[i] - exact[i * 13 + j]).abs() / scale);
            }
        }
        assert!(worst < 1e-3, "Hessian columns: worst error {worst:.2e} of the largest entry {scale:.3}");
        let eig = exact_eigenvalues(&exact, 13);
        let c = curvature(&f, 13, 9);
        let (lo, hi) = (eig[0], eig[12]);
        assert!((c.lambda_max - hi).abs() < 1e-3 * hi.abs(), "λ_max {} vs {hi}", c.lambda_max);
        assert!((c.lambda_min - lo).abs() < 1e-3 * hi.abs(), "λ_min {} vs {lo}", c.lambda_min);
    }

    #[test]
    fn escape_from_the_saddle_of_x2_minus_y2() {
        let p = Tensor::from_vec(vec![0.0, 0.0], &[2]).requires_grad();
        let s = Tensor::from_vec(vec![1.0, -1.0], &[2]);
        let loss = || p.mul(&p).mul(&s).sum_all();
        let f = Objective::new(vec![p.clone()], &loss);
        let c = curvature(&f, 2, 1);
        assert!(c.grad_norm == 0.0);
        assert!((c.lambda_max - 2.0).abs() < 1e-3 && (c.lambda_min + 2.0).abs() < 1e-3, "{c:?}");
        assert!(c.min_direction[1].abs() > 0.999, "the direction of negative curvature is y: {:?}", c.min_direction);
        let e = escape(&f, &c.min_direction);
        assert!(e.before == 0.0 && e.after < -0.1, "{e:?}");
        assert_eq!(f.point(), vec![0.0, 0.0]);
    }
}
