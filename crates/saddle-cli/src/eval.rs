//! `saddle eval`: test accuracy, per-class accuracy and the confusion matrix
//! (labelled by class name) of an image run;
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
            let k = confusion.len();
            let names: Vec<String> = match &run.config.class_names {
                Some(n) => n.clone(),
                None => (0..k).map(|c| c.to_string()).collect(),
            };
            // Columns are as wide as the largest count; names longer than that are cut in the header.
            let cell = confusion.iter().flatten().max().map_or(1, |m| m.to_string().len()).max(4) + 1;
            let label = names.iter().map(|n| n.chars().count()).max().unwrap_or(1).min(14);
            println!("confusion matrix (rows: true class; columns: predicted class, by the first letters of its name)");
            let header: String =
                names.iter().map(|n| format!("{:>cell$}", n.chars().take(cell - 1).collect::<String>())).collect();
            println!("{:>label$}{header}{:>9}", "", "accuracy");
            for (c, row) in confusion.iter().enumerate() {
                let cells: String = row.iter().map(|v| format!("{v:>cell$}")).collect();
                let total: usize = row.iter().sum();
                let name: String = names[c].chars().take(label).collect();
                println!("{name:>label$}{cells}{:>8.2}%", 100.0 * row[c] as f64 / total.max(1) as f64);
            }
        }
    }
    Ok(())
}
