//! A whole run through the library alone: train LeNet-5 on the bundled MNIST
//! into a run directory, stop after one epoch, resume from the directory,
//! evaluate the trained model and diagnose why its loss stopped falling.
//!
//! ```sh
//! cargo run --release -p saddle-cli --example runs            # into a temporary folder
//! cargo run --release -p saddle-cli --example runs -- DIR     # into DIR (which must not exist)
//! ```

use saddle::diagnose::{diagnose_run, DiagnoseOptions};
use saddle::train::{EpochMetrics, Evaluated, Observer, Outcome, Run, RunSpec, Trainer};
use std::path::PathBuf;

/// Prints each epoch, and asks to stop after `stop_after` of them.
struct StopAfter {
    stop_after: usize,
    seen: usize,
}

impl Observer for StopAfter {
    fn on_epoch(&mut self, m: &EpochMetrics) -> saddle::Result<()> {
        let (loss, accuracy) = m.test.unwrap_or((f32::NAN, f32::NAN));
        println!("epoch {}: test loss {loss:.4}, accuracy {:.2}%", m.epoch + 1, 100.0 * accuracy);
        self.seen += 1;
        Ok(())
    }
    fn should_stop(&self) -> bool {
        self.seen >= self.stop_after
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> saddle::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("saddle-example-run-{}", std::process::id())));
    // The default MNIST recipe, shortened to two epochs.
    let spec = RunSpec { epochs: 2, ..RunSpec::mnist() };

    let mut trainer = Trainer::create(&spec, &dir)?;
    let outcome = trainer.train(&mut [&mut StopAfter { stop_after: 1, seen: 0 }])?;
    assert!(matches!(outcome, Outcome::Stopped { epochs_done: 1, .. }));
    println!("stopped after one epoch; {} holds a checkpoint", dir.display());
    drop(trainer);

    // Later, perhaps in another process: continue from the directory alone.
    let mut trainer = Trainer::resume(&dir)?;
    let Outcome::Finished(summary) = trainer.train(&mut [&mut StopAfter { stop_after: usize::MAX, seen: 0 }])? else {
        unreachable!("nothing asks this one to stop");
    };
    println!(
        "finished: {} steps, {} accuracy {:.2}%",
        summary.steps,
        summary.held_out,
        100.0 * summary.held_out_accuracy
    );

    let mut run = Run::open(&dir)?;
    if let Evaluated::Images { evaluation, confusion, .. } = run.evaluate(None)? {
        let sevens = &confusion[7];
        println!(
            "evaluated: accuracy {:.2}%; sevens read as 7: {} of {}",
            100.0 * evaluation.accuracy,
            sevens[7],
            sevens.iter().sum::<usize>()
        );
    }

    let diagnosis =
        diagnose_run(&mut run, &DiagnoseOptions { probe: 128, lanczos: 10, grid: 5, ..Default::default() })?;
    let c = &diagnosis.curvature;
    println!("Hessian at the final weights: λ_max = {:.3e}, λ_min = {:.3e}", c.lambda_max, c.lambda_min);
    for f in &diagnosis.findings {
        println!("plateau (steps {}–{}): {}", f.from_step, f.to_step, f.verdict);
    }
    println!("final weights: {}; try: {}", diagnosis.end.verdict, diagnosis.end.advice);
    Ok(())
}
