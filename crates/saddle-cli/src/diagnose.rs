//! `saddle diagnose RUN`: why the loss stopped falling, in sentences backed by
//! numbers, and `RUN/report.html` with the curves behind them.

use crate::report::{self, Report};
use clap::Args;
use saddle::data::{load_idx_dir, Dataset, TaggedDataset, IGNORE};
use saddle::diagnose::{
    curvature, dataset_gradient, density_on, diagnose, escape, filter_normalized_direction, final_weights,
    hessian_trace, interpolate, mean_loss, read_records, slice_2d, spectral_density, time_flow, Evidence, Objective,
};
use saddle::nn::{build_model, Module, Tagger};
use saddle::ops::CrossEntropyOptions;
use saddle::train::Run;
use saddle::{Error, Result, Rng, Tensor};
use std::path::PathBuf;

#[derive(Args)]
#[command(
    after_help = "Reads RUN/diagnostics.csv (written by `saddle train`, every --monitor-every steps), finds the\nplateaus of the loss and classifies each: oscillating, saddle point, local minimum, learning rate\ntoo small, exploding or vanishing gradients. At the final weights it measures the Hessian's extreme\neigenvalues (Lanczos on Hessian-vector products), its trace and spectral density, slices of the\nloss landscape and, for recurrent models, the gradient flow through time. Writes RUN/report.html.\n\nExample:\n  saddle diagnose runs/mnist-lenet5-DATE"
)]
pub struct DiagnoseArgs {
    /// A run directory written by `saddle train`.
    pub run: PathBuf,
    /// Training examples (images, sentences) that curvature and landscape are measured on.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub probe: u32,
    /// Lanczos steps for the extreme eigenvalues (each costs two gradients on the probe).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(2..))]
    pub lanczos: u32,
    /// Points per axis of the 2-D landscape slice.
    #[arg(long, default_value_t = 13, value_parser = clap::value_parser!(u32).range(3..))]
    pub grid: u32,
    /// Dataset folder, instead of the one the run was trained on.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Draw the 1-D landscape slice from this run's final weights (the same
    /// model, another seed or optimizer) rather than from the initialization.
    #[arg(long, value_name = "RUN")]
    pub from: Option<PathBuf>,
}

impl DiagnoseArgs {
    /// The defaults, for `saddle train --diagnose`.
    pub fn for_run(run: PathBuf) -> Self {
        DiagnoseArgs { run, probe: 256, lanczos: 20, grid: 13, data: None, from: None }
    }
}

/// The trained model, the same model at its initialization, and the training data.
struct Subject {
    model: Box<dyn Module>,
    init: Box<dyn Module>,
    data: Box<dyn Dataset>,
    /// Recurrent state size, for the gradient flow through time.
    tagger: Option<(Tagger, usize)>,
}

fn subject(run: &Run, data: Option<PathBuf>) -> Result<Subject> {
    let c = &run.config;
    if c.task == "slots" {
        let (model, vocab, tagset) = run.tagger()?;
        let cfg = c.tagger.expect("run.tagger() checked the config");
        let source = data.or_else(|| (c.data != "travel").then(|| PathBuf::from(&c.data)));
        let corpus = crate::slots::load(source.as_deref())?;
        let train = TaggedDataset::new(&corpus.train, &vocab, &tagset);
        // A second handle on the same weights, for the probed forward pass.
        let (mut probed, _, _) = run.tagger()?;
        probed.set_training(false);
        return Ok(Subject {
            model: Box::new(model),
            init: Box::new(Tagger::new(cfg, &mut Rng::new(c.seed))),
            data: Box::new(train),
            tagger: Some((probed, cfg.hidden_size)),
        });
    }
    let dir = data.unwrap_or_else(|| PathBuf::from(&c.data));
    let (mut train, _) = load_idx_dir(&dir)?;
    if train.shape != c.input {
        return Err(Error::format(
            &dir,
            format!("images are {:?} but the model in {} expects {:?}", train.shape, run.path.display(), c.input),
        ));
    }
    train.norm = c.normalization;
    Ok(Subject {
        model: Box::new(run.model()?),
        init: Box::new(build_model(&c.model, c.input, c.classes, &mut Rng::new(c.seed))?),
        data: Box::new(train),
        tagger: None,
    })
}

/// Training examples the gradient at the final weights, and the loss along
/// the direction of negative curvature, are averaged over.
const WIDE_EXAMPLES: usize = 4096;

fn flat(m: &dyn Module) -> Vec<f32> {
    m.named_parameters().iter().flat_map(|(_, p)| p.to_vec()).collect()
}

/// The final weights of the run at `path`, which must hold the same model as `model`.
fn weights_of(path: &std::path::Path, model: &dyn Module) -> Result<Vec<f32>> {
    let other = Run::open(path)?;
    let theirs: Box<dyn Module> =
        if other.config.task == "slots" { Box::new(other.tagger()?.0) } else { Box::new(other.model()?) };
    let shapes = |m: &dyn Module| -> Vec<(String, Vec<usize>)> {
        m.named_parameters().into_iter().map(|(n, p)| (n, p.shape().to_vec())).collect()
    };
    if shapes(theirs.as_ref()) != shapes(model) {
        return Err(Error::config(
            "--from",
            format!("{} holds another model ({}) than the run diagnosed", path.display(), other.config.model),
        ));
    }
    Ok(flat(theirs.as_ref()))
}

fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| a + (b - a) * i as f64 / (n - 1) as f64).collect()
}

pub fn run(args: DiagnoseArgs) -> Result<()> {
    let run = Run::open(&args.run)?;
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
    let mut s = subject(&run, args.data.clone())?;
    s.model.set_training(false);
    let n = (args.probe as usize).min(s.data.len());
    let probe: Vec<usize> = (0..n).collect();
    let (x, y) = s.data.batch(&probe);
    let model = s.model.as_ref();
    let loss = || model.forward(&x).cross_entropy(&y, CrossEntropyOptions::default());
    let params: Vec<Tensor> = model.named_parameters().into_iter().map(|(_, p)| p).collect();
    let f = Objective::new(params, &loss);
    println!("run       {} ({}, {} steps)", run.path.display(), run.config.model, run.summary.steps);
    println!(
        "probe     the first {n} training {} ({} parameters); Lanczos, {} steps",
        if s.tagger.is_some() { "sentences" } else { "images" },
        f.dim(),
        args.lanczos
    );

    let mut c = curvature(&f, args.lanczos as usize, 0);
    // Whether the weights sit at a critical point, and whether the direction
    // of negative curvature leads down, are questions about the training
    // loss, not the probe's: both are measured on many more examples, and
    // on examples outside the probe where the data has enough, so that a
    // direction found on the probe is not judged on the probe.
    let first = if s.data.len() >= n + 512 { n } else { 0 };
    let wide_idx: Vec<usize> = (first..s.data.len().min(first + WIDE_EXAMPLES)).collect();
    let wide_n = wide_idx.len();
    let wide: Vec<(Tensor, Vec<i64>)> = wide_idx.chunks(512).map(|b| s.data.batch(b)).collect();
    let (_, wide_grad) = dataset_gradient(model, &wide);
    c.grad_norm = wide_grad;
    let wide_loss = || mean_loss(model, &wide);
    c.escape = escape(&Objective::new(f.params().to_vec(), &wide_loss), &c.min_direction);
    let (trace, trace_se) = hessian_trace(&f, 8, 1);
    let nodes = spectral_density(&f, 2, args.lanczos as usize, 2);
    let flow = s.tagger.as_ref().map(|(tagger, hidden)| last_word_flow(tagger, *hidden, &x));
    let evidence = Evidence { records: &records, layers: &layers, curvature: Some(&c), time_flow: flow.as_deref() };
    let findings = diagnose(&evidence);
    let end = final_weights(&evidence).expect("curvature and records are there");

    // Landscape: from the initialization (or another run) to the trained weights, and around them.
    let (start, start_name) = match &args.from {
        Some(p) => (weights_of(p, model)?, p.display().to_string()),
        None => (flat(s.init.as_ref()), "the initialization".to_string()),
    };
    let theta = f.point();
    let alphas = linspace(-0.25, 1.25, 31);
    let line = interpolate(&f, &start, &theta, &alphas);
    let mut rng = Rng::new(3);
    let (d1, d2) = (filter_normalized_direction(&f, &mut rng), filter_normalized_direction(&f, &mut rng));
    let coords = linspace(-1.0, 1.0, args.grid as usize);
    let plane = slice_2d(&f, &d1, &d2, &coords);

    println!();
    println!(
        "curvature at the final weights: probe loss {:.4}; ‖∇L‖ = {:.3e} over {wide_n} training examples; λ_max = {:.4e}, λ_min = {:.4e} (ratio {:.3}); trace ≈ {:.4e} ± {:.1e}",
        c.loss,
        c.grad_norm,
        c.lambda_max,
        c.lambda_min,
        c.ratio(),
        trace,
        trace_se
    );
    if let Some(flow) = &flow {
        println!(
            "gradient through time (loss of each sentence's last word): ‖∂L/∂h_1‖ = {:.3e}, ‖∂L/∂h_{}‖ = {:.3e}",
            flow[0],
            flow.len(),
            flow[flow.len() - 1]
        );
    }
    println!();
    if findings.is_empty() {
        let (first, last) = (records[0].loss, records[records.len() - 1].loss);
        println!("no plateau: the loss kept falling, from {first:.4} to {last:.4}");
    }
    for (i, finding) in findings.iter().enumerate() {
        println!("plateau {} (steps {}–{}): {}", i + 1, finding.from_step, finding.to_step, finding.verdict);
        for line in &finding.evidence {
            println!("  {line}");
        }
        println!("  try: {}", finding.verdict.advice());
    }
    // What the plateau reaching the end already said is not said twice.
    let said = findings.last().filter(|f| f.to_step == end.to_step);
    println!("final weights (step {}): {}", end.to_step, end.verdict);
    for line in end.evidence.iter().filter(|l| !said.is_some_and(|f| f.evidence.contains(l))) {
        println!("  {line}");
    }
    if !said.is_some_and(|f| f.verdict == end.verdict) {
        println!("  try: {}", end.verdict.advice());
    }

    let r = Report {
        run: &run,
        layers: &layers,
        records: &records,
        findings: &findings,
        end: &end,
        curvature: &c,
        trace: (trace, trace_se),
        spectrum: spectrum_points(&nodes, c.lambda_min, c.lambda_max),
        flow: flow.as_deref(),
        line: alphas.iter().copied().zip(line).collect(),
        line_from: &start_name,
        plane: (&coords, &plane),
    };
    let path = run.path.join("report.html");
    report::write(&path, &r)?;
    println!();
    println!("report    {}", path.display());
    Ok(())
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
fn last_word_flow(tagger: &Tagger, hidden: usize, x: &Tensor) -> Vec<f64> {
    let (b, t) = (x.shape()[0], x.shape()[1]);
    let words = x.to_vec();
    let mut targets = vec![IGNORE; b * t];
    for row in 0..b {
        let len = words[row * t..(row + 1) * t].iter().position(|&w| w == 0.0).unwrap_or(t);
        if len > 0 {
            // Any tag will do: the flow measures how the gradient travels, not its sign.
            targets[row * t + len - 1] = 0;
        }
    }
    time_flow(t, &[b, hidden], |probes| {
        tagger.forward_probed(x, Some(probes)).cross_entropy(&targets, CrossEntropyOptions::default())
    })
}
