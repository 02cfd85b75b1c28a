//! `saddle schedule`: a learning-rate schedule, in the text form of
//! `--schedule` (parsed by the library's `Schedule`), printed and plotted
//! before any training.

use crate::plot;
use clap::Args;
use saddle::optim::Schedule;
use saddle::{Error, Result};
use std::path::PathBuf;

/// The grammar of `--schedule`, shown in `--help`.
pub const SPEC_HELP: &str = "Learning-rate schedule, by steps (optimizer updates):
  constant                               η
  step:SIZE[:GAMMA]                      η·γ^⌊t/SIZE⌋ (γ = 0.1)
  multistep:M1,M2,…[:GAMMA]              ×γ at each milestone step
  exp:GAMMA                              η·γ^t
  cosine[:T_MAX[:ETA_MIN]]               cosine down to ETA_MIN over T_MAX steps (all of them)
  cosine-restarts:T0[:T_MULT[:ETA_MIN]]  cosine, restarted after T0, T0·T_MULT, … steps
  invsqrt[:TIMESCALE]                    η/√(1 + t/TIMESCALE) (100)
  onecycle[:PCT_START]                   up to η over PCT_START (0.3) of the steps, then down
  plateau[:PATIENCE[:FACTOR]]            ×FACTOR (0.1) after PATIENCE (10) epochs without a lower test loss
  warmup:W:SCHEDULE                      a linear ramp up to η over W steps, then SCHEDULE over the rest (as --warmup W)";

/// Renames the field of a config error to the flag that carried the value,
/// so `schedule: …` from the library reads `--schedule: …` on the command line.
pub fn flag(name: &'static str) -> impl Fn(Error) -> Error {
    move |e| match e {
        Error::Config { message, .. } => Error::config(name, message),
        other => other,
    }
}

#[derive(Args)]
#[command(after_help = SPEC_HELP)]
pub struct ScheduleArgs {
    /// The schedule, as given to `saddle train --schedule` (see below).
    spec: String,
    /// Base learning rate η.
    #[arg(long, default_value_t = 0.001)]
    lr: f64,
    /// Steps to show.
    #[arg(long, default_value_t = 1000, value_parser = crate::at_least::<1>)]
    steps: u32,
    /// Linear warm-up steps: up to --lr, then the schedule over the remaining steps.
    #[arg(long, default_value_t = 0)]
    warmup: usize,
    /// Where to write the plot (PNG and SVG) [default: schedule-SPEC].
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: ScheduleArgs) -> Result<()> {
    let steps = args.steps as usize;
    let mut schedule: Schedule = args.spec.parse().map_err(flag("--schedule"))?;
    if schedule.plateau().is_some() {
        return Err(Error::config(
            "--schedule",
            "plateau follows the test loss during training; it cannot be drawn ahead of time",
        ));
    }
    if args.warmup > 0 {
        schedule = Schedule::Warmup { steps: args.warmup, inner: Box::new(schedule) };
    }
    if !(args.lr > 0.0 && args.lr.is_finite()) {
        return Err(Error::config("--lr", format!("must be a positive number, got {}", args.lr)));
    }
    println!("schedule {} with base lr {}", schedule.describe(steps), args.lr);
    println!("{:>8}  {:>12}", "step", "lr");
    let shown: Vec<usize> = (0..=20).map(|i| i * (steps - 1) / 20).collect();
    for t in shown.iter().copied().collect::<std::collections::BTreeSet<_>>() {
        println!("{t:>8}  {:>12.6e}", schedule.lr(args.lr, t, steps));
    }
    let rates: Vec<f64> = (0..steps).map(|t| schedule.lr(args.lr, t, steps)).collect();
    let (peak_at, peak) = rates.iter().enumerate().fold((0, f64::MIN), |m, (t, &r)| if r > m.1 { (t, r) } else { m });
    println!("peak {peak:.6e} at step {peak_at}");
    let name: String = args.spec.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    let stem = args.out.unwrap_or_else(|| PathBuf::from(format!("schedule-{name}")));
    let points = rates.iter().enumerate().map(|(t, &r)| (t as f64, r)).collect();
    let files = plot::lines(
        &stem,
        &format!("learning rate: {}", schedule.describe(steps)),
        "step",
        "learning rate",
        &[plot::Series { name: String::new(), points }],
        false,
    )?;
    println!("plot      {}", files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "));
    Ok(())
}
