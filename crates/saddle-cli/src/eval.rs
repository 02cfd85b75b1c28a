//! `saddle eval`: test accuracy and the confusion matrix of an image run;
//! precision, recall and F1 per slot type of a slot-filling run.

use clap::Args;
use saddle::data::{load_idx_dir, Dataset};
use saddle::train::{confusion_matrix, evaluate, FitOptions, Run};
use saddle::{Error, Result};
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
    let run = Run::open(&args.run)?;
    if run.config.task == "slots" {
        return crate::slots::eval(&run, args.data.as_deref());
    }
    let mut model = run.model()?;
    let dir = args.data.unwrap_or_else(|| PathBuf::from(&run.config.data));
    let (_, mut test) = load_idx_dir(&dir)?;
    if test.shape != run.config.input {
        return Err(Error::format(
            &dir,
            format!(
                "images are {:?} but the model in {} expects {:?}",
                test.shape,
                args.run.display(),
                run.config.input
            ),
        ));
    }
    test.norm = run.config.normalization;
    let classes = run.config.classes;
    let e = evaluate(&mut model, &test, FitOptions::default().eval_batch_size);
    println!("run       {} ({}, {} epochs)", args.run.display(), run.config.model, run.summary.epochs);
    println!("data      {} ({} test images)", dir.display(), test.len());
    println!("accuracy  {:.2}%  ({} of {})", 100.0 * e.accuracy, (e.accuracy * test.len() as f32).round(), test.len());
    println!("loss      {:.4}", e.loss);
    println!();
    println!("confusion matrix (rows: true class, columns: predicted)");
    let m = confusion_matrix(&e.predictions, &e.labels, classes);
    let header: String = (0..classes).map(|c| format!("{c:>6}")).collect();
    println!("{:>6}{header}{:>9}", "", "recall");
    for (c, row) in m.iter().enumerate() {
        let cells: String = row.iter().map(|v| format!("{v:>6}")).collect();
        let total: usize = row.iter().sum();
        println!("{c:>6}{cells}{:>8.2}%", 100.0 * row[c] as f64 / total.max(1) as f64);
    }
    Ok(())
}
