//! `saddle lr-find`: the learning-rate range test (Smith 2017) on a fresh
//! model of the run that `saddle train` would start with the same flags.

use crate::plot::{self, Series};
use crate::train::{spec, TrainArgs};
use clap::Args;
use saddle::train::{lr_find, LrFindOptions};
use saddle::{Error, Result};
use std::path::PathBuf;

#[derive(Args)]
#[command(
    after_help = "Takes the flags of `saddle train` (task, data, model, optimizer, batch size, clipping), trains a\nfresh model for --lr-steps steps while the learning rate grows exponentially from --start-lr to\n--end-lr, and stops once the smoothed loss passes 4× its lowest. Nothing is trained for keeps and\nno run directory is written; --out names the folder for lr-find.png and lr-find.svg [default: lr-find].\n\nExamples:\n  saddle lr-find mnist\n  saddle lr-find slots --data ~/atis --bidirectional --context 1 --dropout 0.5"
)]
pub struct LrFindArgs {
    #[command(flatten)]
    train: TrainArgs,
    /// Steps of the test, from the first rate to the last.
    #[arg(long, default_value_t = 200, value_parser = crate::at_least::<2>)]
    lr_steps: u32,
    /// The first learning rate.
    #[arg(long, default_value_t = 1e-7)]
    start_lr: f64,
    /// The last learning rate.
    #[arg(long, default_value_t = 10.0)]
    end_lr: f64,
}

pub fn run(args: LrFindArgs) -> Result<()> {
    let Some(task) = args.train.task else {
        return Err(Error::config("--resume", "lr-find starts from a fresh model: give a TASK (mnist, images, slots)"));
    };
    if args.train.resume.is_some() {
        return Err(Error::config("--resume", "lr-find starts from a fresh model: give a TASK, not --resume"));
    }
    let spec = spec(&args.train, task)?;
    let options = LrFindOptions {
        start_lr: args.start_lr,
        end_lr: args.end_lr,
        steps: args.lr_steps as usize,
        ..Default::default()
    };
    println!(
        "lr-find   {} {} with {}, batch size {}; rate {:.0e} → {:.0e} over {} steps",
        spec.task.name(),
        spec.model_name(),
        spec.optimizer.family().name(),
        spec.batch_size,
        options.start_lr,
        options.end_lr,
        options.steps
    );
    let found = lr_find(&spec, &options, &|_, _| {})?;
    println!("{:>12}  {:>10}  {:>10}", "rate", "loss", "mean");
    let n = found.rates.len();
    for k in (0..n).step_by((n / 12).max(1)).chain(std::iter::once(n - 1)) {
        println!("{:>12.3e}  {:>10.4}  {:>10.4}", found.rates[k], found.losses[k], found.smoothed[k]);
    }
    println!("{}", found.stopped);
    println!(
        "suggested learning rate {:.1e}: a tenth of {:.1e}, where the mean loss was lowest (--lr of these flags: {})",
        found.suggested,
        found.rate_at_minimum,
        spec.optimizer.lr()
    );
    let out = args.train.out.clone().unwrap_or_else(|| PathBuf::from("lr-find"));
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let points = |v: &[f64]| found.rates.iter().copied().zip(v.iter().copied()).collect::<Vec<_>>();
    let (lo, hi) = found.smoothed.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let series = [
        // The batches' losses above the smoothed curve's range (the last steps, diverging) are left out.
        Series {
            name: "loss of each batch".into(),
            points: points(&found.losses).into_iter().filter(|p| p.1 <= hi + 0.5 * (hi - lo)).collect(),
        },
        Series { name: "centred mean".into(), points: points(&found.smoothed) },
        Series {
            name: format!("suggested {:.1e}", found.suggested),
            points: vec![(found.suggested, lo), (found.suggested, hi)],
        },
    ];
    let title = format!("learning-rate range test: {} {}", spec.task.name(), spec.model_name());
    let files = plot::lines_log_x(&out.join("lr-find"), &title, "learning rate (log scale)", "training loss", &series)?;
    println!("plot      {}", files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "));
    Ok(())
}
