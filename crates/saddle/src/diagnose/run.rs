//! [`diagnose_run`]: the whole diagnosis of a finished run in one call.
//!
//! Uses: `train` (runs), `diagnose` (curvature, verdicts, landscape, flow), `data`, `error`.

use super::{
    curvature, dataset_gradient, density_on, diagnose, escape, filter_normalized_direction, final_weights,
    hessian_trace, interpolate, mean_loss, read_records, slice_2d, spectral_density, time_flow, verdict::agree,
    Curvature, Evidence, Finding, Objective, Record, Verdict,
};
use crate::data::IGNORE;
use crate::nn::{Module, Tagger};
use crate::ops::CrossEntropyOptions;
use crate::train::{Divergence, Model, Run};
use crate::{Error, Result, Rng, Tensor};
use std::path::PathBuf;

/// Settings of [`diagnose_run`]; `Default` is what `saddle diagnose` uses.
#[derive(Clone, Debug, PartialEq)]
pub struct DiagnoseOptions {
    /// Training examples (images, sentences) that curvature and landscape are measured on.
    pub probe: usize,
    /// Lanczos steps for the extreme eigenvalues (each costs two gradients on the probe).
    pub lanczos: usize,
    /// Points per axis of the 2-D landscape slice.
    pub grid: usize,
    /// A dataset folder instead of the run's own.
    pub data: Option<PathBuf>,
    /// Draw the 1-D landscape slice from this run's final weights (the same
    /// model, another seed or optimizer) rather than from the initialization.
    pub from: Option<PathBuf>,
}

impl Default for DiagnoseOptions {
    fn default() -> Self {
        DiagnoseOptions { probe: 256, lanczos: 20, grid: 13, data: None, from: None }
    }
}

/// What [`diagnose_run`] found: the verdicts with the numbers they rest on,
/// and the curves behind them.
#[derive(Clone, Debug)]
pub struct Diagnosis {
    /// The layers of the monitor's records.
    pub layers: Vec<String>,
    /// The measurements taken while training (`diagnostics.csv`).
    pub records: Vec<Record>,
    /// Examples in the probe, and what they are (`images`, `sentences`).
    pub probe: (usize, &'static str),
    /// Parameters of the model.
    pub parameters: usize,
    /// Curvature at the final weights; its gradient norm and escape step over `wide_examples`.
    pub curvature: Curvature,
    /// Training examples the gradient and the escape step are averaged over.
    pub wide_examples: usize,
    /// Hutchinson's estimate of the Hessian's trace, and its standard error.
    pub trace: (f64, f64),
    /// The spectral density `(λ, φ(λ))` on a grid over the measured spectrum.
    pub spectrum: Vec<(f64, f64)>,
    /// Recurrent models: `‖∂L/∂h_t‖` for t = 1…T, L the loss of each sentence's last word.
    pub flow: Option<Vec<f64>>,
    /// One verdict per plateau of the loss; for a run that diverged, the last
    /// one is the explosion, ending at the step whose loss was not finite.
    pub findings: Vec<Finding>,
    /// Where and how training diverged, if it did.
    pub diverged: Option<Divergence>,
    /// The verdict on the final weights.
    pub end: Finding,
    /// `(α, L)` from the start (α = 0) to the trained weights (α = 1).
    pub line: Vec<(f64, f64)>,
    /// What the start of `line` is: the initialization, or another run.
    pub line_from: String,
    /// The 2-D slice on filter-normalized directions: coordinates, and `L` on the grid.
    pub plane: (Vec<f64>, Vec<Vec<f64>>),
}

/// Training examples the gradient at the final weights, and the loss along
/// the direction of negative curvature, are averaged over.
const WIDE_EXAMPLES: usize = 4096;

fn flat(m: &dyn Module) -> Vec<f32> {
    m.named_parameters().iter().flat_map(|(_, p)| p.to_vec()).collect()
}

fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| a + (b - a) * i as f64 / (n - 1) as f64).collect()
}

/// Diagnoses the finished `run`: verdicts on the plateaus of its loss and on
/// its final weights, the Hessian's extreme eigenvalues, trace and spectral
/// density there, slices of the loss landscape, and the gradient flow through
/// time for a recurrent model. The run's model is left in evaluation mode.
pub fn diagnose_run(run: &mut Run, o: &DiagnoseOptions) -> Result<Diagnosis> {
    crate::tensor::on_worker(|| diagnose_on_this_thread(run, o))
}

/// [`diagnose_run`] on the thread that calls it.
fn diagnose_on_this_thread(run: &mut Run, o: &DiagnoseOptions) -> Result<Diagnosis> {
    let csv = run.path.join("diagnostics.csv");
    if !csv.is_file() {
        return Err(Error::format(
            &run.path,
            "no diagnostics.csv: the run was trained with --monitor-every 0 or by an older saddle; train it again",
        ));
    }
    let (layers, records) = read_records(&csv)?;
    if records.is_empty() {
        return Err(Error::format(&csv, "holds no measurements (the run was shorter than --monitor-every steps)"));
    }
    if o.grid < 3 || o.lanczos < 2 || o.probe < 1 {
        return Err(Error::config("options", "needs a probe of at least 1 example, 2 Lanczos steps and a grid of 3"));
    }
    let data = run.data(o.data.as_deref())?;
    let train = data.train.as_ref();
    // Curvature and landscape are of the loss without dropout.
    run.model.set_training(false);
    let model = &run.model;
    let n = o.probe.min(train.len());
    let probe: Vec<usize> = (0..n).collect();
    let (x, y) = train.batch(&probe);
    let loss = || model.loss(&x, &model.forward(&x), &y, CrossEntropyOptions::default());
    let params: Vec<Tensor> = model.named_parameters().into_iter().map(|(_, p)| p).collect();
    let f = Objective::new(params, &loss);

    let mut c = curvature(&f, o.lanczos, 0);
    // Whether the weights sit at a critical point, and whether the direction
    // of negative curvature leads down, are questions about the training
    // loss, not the probe's: both are measured on many more examples, and
    // on examples outside the probe where the data has enough, so that a
    // direction found on the probe is not judged on the probe.
    let first = if train.len() >= n + 512 { n } else { 0 };
    let wide_idx: Vec<usize> = (first..train.len().min(first + WIDE_EXAMPLES)).collect();
    let wide: Vec<(Tensor, Vec<i64>)> = wide_idx.chunks(512).map(|b| train.batch(b)).collect();
    (_, c.grad_norm, c.grad_noise) = dataset_gradient(model, &wide);
    let wide_loss = || mean_loss(model, &wide);
    c.escape = escape(&Objective::new(f.params().to_vec(), &wide_loss), &c.min_direction);
    let trace = hessian_trace(&f, 8, 1);
    let nodes = spectral_density(&f, 2, o.lanczos, 2);
    let flow = model.as_tagger().map(|t| last_word_flow(t, &x));
    let evidence = Evidence { records: &records, layers: &layers, curvature: Some(&c), time_flow: flow.as_deref() };
    let mut findings = diagnose(&evidence);
    let mut end = final_weights(&evidence).expect("curvature and records are there");
    let diverged = run.summary.diverged.clone();
    if let Some(d) = &diverged {
        // The explosion is the last plateau's verdict and the final weights': it
        // extends a plateau already found exploding, and nothing at weights
        // from just before a divergence is a minimum.
        let blast = explosion(d, &records);
        match findings.last_mut().filter(|f| f.verdict == Verdict::Exploding) {
            Some(last) => {
                last.to_step = d.step;
                last.evidence.extend(blast.evidence.iter().cloned());
            }
            None => findings.push(blast.clone()),
        }
        end = blast;
    }
    agree(&findings, &mut end);

    // Landscape: from the initialization (or another run) to the trained weights, and around them.
    let (start, line_from) = match &o.from {
        Some(p) => (weights_of(p, model)?, p.display().to_string()),
        None => (flat(&run.initial_model()?), "the initialization".to_string()),
    };
    let alphas = linspace(-0.25, 1.25, 31);
    let line = interpolate(&f, &start, &f.point(), &alphas);
    let mut rng = Rng::new(3);
    let (d1, d2) = (filter_normalized_direction(&f, &mut rng), filter_normalized_direction(&f, &mut rng));
    let coords = linspace(-1.0, 1.0, o.grid);
    let plane = slice_2d(&f, &d1, &d2, &coords);
    let spectrum = spectrum_points(&nodes, c.lambda_min, c.lambda_max);
    Ok(Diagnosis {
        layers,
        probe: (n, if model.as_tagger().is_some() { "sentences" } else { "images" }),
        parameters: f.dim(),
        wide_examples: wide_idx.len(),
        trace,
        spectrum,
        flow,
        findings,
        diverged,
        end,
        line: alphas.into_iter().zip(line).collect(),
        line_from,
        plane: (coords, plane),
        records,
        curvature: c,
    })
}

/// The verdict on a run that diverged: from the first record whose largest
/// gradient norm passed ten times the run's median, to the step that was not finite.
fn explosion(d: &Divergence, records: &[Record]) -> Finding {
    let mut norms: Vec<f32> = records.iter().map(|r| r.grad_norm).filter(|g| g.is_finite()).collect();
    norms.sort_by(f32::total_cmp);
    let median = norms.get(norms.len() / 2).copied().unwrap_or(f32::NAN);
    let first = records
        .iter()
        .find(|r| r.grad_norm_max.is_nan() || r.grad_norm_max > 10.0 * median)
        .map_or(d.step, |r| r.step.min(d.step));
    let peak = records
        .iter()
        .filter(|r| r.grad_norm_max.is_finite())
        .max_by(|a, b| a.grad_norm_max.total_cmp(&b.grad_norm_max));
    let mut evidence = vec![format!(
        "at step {} the loss was {} and the gradient norm {} (learning rate {:.3e}): training stopped before that update",
        d.step, d.loss, d.grad_norm, d.lr
    )];
    if let Some(p) = peak {
        evidence.push(format!(
            "the gradient norm rose from {median:.3e} (median of the run) to {:.3e} at step {} before it",
            p.grad_norm_max, p.step
        ));
    }
    Finding::new((first, d.step), f64::NAN, Verdict::Exploding, evidence, records)
}

/// The final weights of the run at `path`, which must hold the same model as `model`.
fn weights_of(path: &std::path::Path, model: &Model) -> Result<Vec<f32>> {
    let other = Run::open(path)?;
    let shapes = |m: &dyn Module| -> Vec<(String, Vec<usize>)> {
        m.named_parameters().into_iter().map(|(n, p)| (n, p.shape().to_vec())).collect()
    };
    if shapes(&other.model) != shapes(model) {
        return Err(Error::config(
            "--from",
            format!(
                "{} holds another model ({}) than the run diagnosed",
                path.display(),
                other.config.spec.model_name()
            ),
        ));
    }
    Ok(flat(&other.model))
}

/// The SLQ density on a grid spanning the measured spectrum, floored at a
/// millionth of its peak so that a log scale shows the outliers, not the
/// Gaussian tails between them.
fn spectrum_points(nodes: &[(f64, f64)], lo: f64, hi: f64) -> Vec<(f64, f64)> {
    let pad = 0.05 * (hi - lo).abs().max(1e-6);
    let grid = linspace(lo - pad, hi + pad, 400);
    let sigma = (hi - lo).abs().max(1e-6) / 100.0;
    let density = density_on(nodes, &grid, sigma);
    let floor = 1e-6 * density.iter().copied().fold(0.0, f64::max);
    grid.into_iter().zip(density.into_iter().map(|d| d.max(floor))).collect()
}

/// `‖∂L/∂h_t‖` where L is the loss of each sentence's last word only: how far
/// back in the sentence that word's error reaches.
fn last_word_flow(tagger: &Tagger, x: &Tensor) -> Vec<f64> {
    let (b, t) = (x.shape()[0], x.shape()[1]);
    let mut targets = vec![IGNORE; b * t];
    for (row, len) in Tagger::lengths(x).into_iter().enumerate() {
        if len > 0 {
            // Any tag will do: the flow measures how the gradient travels, not its sign.
            targets[row * t + len - 1] = 0;
        }
    }
    time_flow(t, &[b, tagger.rnn.config().hidden_size], |probes| {
        tagger.forward_probed(x, Some(probes)).cross_entropy(&targets, CrossEntropyOptions::default())
    })
}
