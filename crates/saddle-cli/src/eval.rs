//! `saddle eval`: test accuracy and the confusion matrix of an image run;
//! precision, recall and F1 per slot type of a slot-filling run.

use clap::Args;
use saddle::train::{Evaluated, Run};
use saddle::Result;
use std::path::PathBuf;

#[derive(Args)]
pub struct EvalArgs {
    /// A run directory written by `saddle train`.
    run: PathBuf,
    /// Evaluate on this dataset folder instead of the run's own.
    #[arg(long)]
    data: Option<PathBuf>,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let mut run = Run::open(&args.run)?;
    let (model, epochs) = (run.config.spec.model_name(), run.summary.epochs);
    println!("run       {} ({model}, {epochs} epochs)", args.run.display());
    match run.evaluate(args.data.as_deref())? {
        Evaluated::Slots { metrics, source, sentences } => {
            println!("data      {source}: {sentences} test sentences, {} words", metrics.tokens);
            crate::slots::print_metrics(&metrics);
        }
        Evaluated::Images { evaluation: e, confusion, source } => {
            let n = e.labels.len();
            println!("data      {source} ({n} test images)");
            println!("accuracy  {:.2}%  ({} of {n})", 100.0 * e.accuracy, (e.accuracy * n as f32).round());
            println!("loss      {:.4}", e.loss);
            println!();
            println!("confusion matrix (rows: true class, columns: predicted)");
            let header: String = (0..confusion.len()).map(|c| format!("{c:>6}")).collect();
            println!("{:>6}{header}{:>9}", "", "recall");
            for (c, row) in confusion.iter().enumerate() {
                let cells: String = row.iter().map(|v| format!("{v:>6}")).collect();
                let total: usize = row.iter().sum();
                println!("{c:>6}{cells}{:>8.2}%", 100.0 * row[c] as f64 / total.max(1) as f64);
            }
        }
    }
    Ok(())
}
