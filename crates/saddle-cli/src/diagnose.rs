//! `saddle diagnose RUN`: why the loss stopped falling, in sentences backed by
//! numbers, and `RUN/report.html` with the curves behind them.

use crate::report::{self, Report};
use clap::Args;
use saddle::diagnose::{diagnose_run, DiagnoseOptions, Diagnosis};
use saddle::train::Run;
use saddle::Result;
use std::path::PathBuf;

#[derive(Args)]
#[command(
    after_help = "Reads RUN/diagnostics.csv (written by `saddle train`, every --monitor-every steps), finds the\nplateaus of the loss and classifies each: oscillating, saddle point, local minimum, learning rate\ntoo small, exploding or vanishing gradients. At the final weights it measures the Hessian's extreme\neigenvalues (Lanczos on Hessian-vector products), its trace and spectral density, slices of the\nloss landscape and, for recurrent models, the gradient flow through time. Writes RUN/report.html.\n\nExample:\n  saddle diagnose runs/mnist-lenet5-DATE"
)]
pub struct DiagnoseArgs {
    /// A run directory written by `saddle train`.
    pub run: PathBuf,
    /// Training examples (images, sentences) that curvature and landscape are measured on.
    #[arg(long, default_value_t = 256, value_parser = crate::at_least::<1>)]
    pub probe: u32,
    /// Lanczos steps for the extreme eigenvalues (each costs two gradients on the probe).
    #[arg(long, default_value_t = 20, value_parser = crate::at_least::<2>)]
    pub lanczos: u32,
    /// Points per axis of the 2-D landscape slice.
    #[arg(long, default_value_t = 13, value_parser = crate::at_least::<3>)]
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

impl DiagnoseArgs {
    fn options(&self) -> DiagnoseOptions {
        DiagnoseOptions {
            probe: self.probe as usize,
            lanczos: self.lanczos as usize,
            grid: self.grid as usize,
            data: self.data.clone(),
            from: self.from.clone(),
        }
    }
}

pub fn run(args: DiagnoseArgs) -> Result<()> {
    let mut run = Run::open(&args.run)?;
    let d = diagnose_run(&mut run, &args.options())?;
    println!("run       {} ({}, {} steps)", run.path.display(), run.config.spec.model_name(), run.summary.steps);
    let (n, unit) = d.probe;
    println!("probe     the first {n} training {unit} ({} parameters); Lanczos, {} steps", d.parameters, args.lanczos);
    println!();
    print_curvature(&d);
    println!();
    print_verdicts(&d);
    let path = run.path.join("report.html");
    report::write(&path, &Report { run: &run, diagnosis: &d })?;
    println!();
    println!("report    {}", path.display());
    Ok(())
}

fn print_curvature(d: &Diagnosis) {
    let c = &d.curvature;
    println!(
        "curvature at the final weights: probe loss {:.4}; ‖∇L‖ = {:.3e} over {} training examples; λ_max = {:.4e}, λ_min = {:.4e} (ratio {:.3}); trace ≈ {:.4e} ± {:.1e}",
        c.loss,
        c.grad_norm,
        d.wide_examples,
        c.lambda_max,
        c.lambda_min,
        c.ratio(),
        d.trace.0,
        d.trace.1
    );
    if let Some(flow) = &d.flow {
        println!(
            "gradient through time (loss of each sentence's last word): ‖∂L/∂h_1‖ = {:.3e}, ‖∂L/∂h_{}‖ = {:.3e}",
            flow[0],
            flow.len(),
            flow[flow.len() - 1]
        );
    }
}

fn print_verdicts(d: &Diagnosis) {
    if let Some(div) = &d.diverged {
        println!("training  {div}");
    }
    if d.findings.is_empty() {
        let (first, last) = (d.records[0].loss, d.records[d.records.len() - 1].loss);
        println!("no plateau: the loss kept falling, from {first:.4} to {last:.4}");
    }
    for (i, finding) in d.findings.iter().enumerate() {
        println!("{}: {}", crate::report::heading(i, finding), finding.verdict);
        for line in &finding.evidence {
            println!("  {line}");
        }
        println!("  try: {}", finding.advice);
    }
    // What the plateau reaching the end already said is not said twice.
    let end = &d.end;
    let said = d.findings.last().filter(|f| f.to_step == end.to_step);
    println!("final weights (step {}): {}", end.to_step, end.verdict);
    for line in end.evidence.iter().filter(|l| !said.is_some_and(|f| f.evidence.contains(l))) {
        println!("  {line}");
    }
    if !said.is_some_and(|f| f.verdict == end.verdict) {
        println!("  try: {}", end.advice);
    }
}
