//! `--schedule SPEC` and `saddle schedule`: learning-rate schedules from the
//! command line, printed and plotted before any training.

use crate::plot;
use clap::Args;
use saddle::optim::{ReduceLrOnPlateau, Schedule};
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
  plateau[:PATIENCE[:FACTOR]]            ×FACTOR (0.1) after PATIENCE (10) epochs without a lower test loss";

/// What `--schedule` and `--warmup` resolve to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LrPlan {
    pub schedule: Option<Schedule>,
    pub plateau: Option<ReduceLrOnPlateau>,
}

impl LrPlan {
    pub fn describe(&self) -> String {
        match (&self.schedule, &self.plateau) {
            (Some(s), _) => s.describe(),
            (None, Some(p)) => format!("reduce-on-plateau(patience={}, factor={})", p.patience, p.factor),
            (None, None) => "constant".into(),
        }
    }
}

fn bad(message: impl Into<String>) -> Error {
    Error::config("--schedule", message)
}

fn number<T: std::str::FromStr>(spec: &str, what: &str, text: &str) -> Result<T> {
    text.parse().map_err(|_| bad(format!("'{spec}': {what} must be a number, got '{text}'")))
}

/// Parses `spec` for a run of `total_steps` steps, with an optional linear warm-up.
pub fn parse(spec: &str, total_steps: usize, warmup: usize) -> Result<LrPlan> {
    let mut parts = spec.split(':');
    let kind = parts.next().unwrap_or("");
    let args: Vec<&str> = parts.collect();
    let arg = |i: usize| args.get(i).copied();
    let max_args = |n: usize| {
        if args.len() > n {
            Err(bad(format!("'{spec}': {kind} takes at most {n} values after its name")))
        } else {
            Ok(())
        }
    };
    let positive =
        |v: usize, what: &str| if v == 0 { Err(bad(format!("'{spec}': {what} must be at least 1"))) } else { Ok(v) };
    let gamma = |i: usize| -> Result<f64> {
        let g: f64 = arg(i).map_or(Ok(0.1), |t| number(spec, "GAMMA", t))?;
        if g > 0.0 && g.is_finite() {
            Ok(g)
        } else {
            Err(bad(format!("'{spec}': GAMMA must be positive, got {g}")))
        }
    };
    let mut plan = LrPlan::default();
    let schedule = match kind {
        "constant" => {
            max_args(0)?;
            Schedule::Constant
        }
        "step" => {
            max_args(2)?;
            let size = arg(0).ok_or_else(|| bad(format!("'{spec}': step needs a step size, as in step:1000:0.5")))?;
            Schedule::Step { step_size: positive(number(spec, "SIZE", size)?, "SIZE")?, gamma: gamma(1)? }
        }
        "multistep" => {
            max_args(2)?;
            let list = arg(0).ok_or_else(|| bad(format!("'{spec}': multistep needs milestones, as in multistep:500,800")))?;
            let mut milestones = list.split(',').map(|m| number(spec, "a milestone", m)).collect::<Result<Vec<usize>>>()?;
            milestones.sort_unstable();
            Schedule::MultiStep { milestones, gamma: gamma(1)? }
        }
        "exp" => {
            max_args(1)?;
            if arg(0).is_none() {
                return Err(bad(format!("'{spec}': exp needs GAMMA, as in exp:0.999")));
            }
            Schedule::Exponential { gamma: gamma(0)? }
        }
        "cosine" => {
            max_args(2)?;
            let t_max = arg(0).map_or(Ok(total_steps), |t| number(spec, "T_MAX", t))?;
            let eta_min = arg(1).map_or(Ok(0.0), |t| number(spec, "ETA_MIN", t))?;
            Schedule::Cosine { t_max: positive(t_max, "T_MAX")?, eta_min }
        }
        "cosine-restarts" => {
            max_args(3)?;
            let t0 = arg(0).ok_or_else(|| bad(format!("'{spec}': cosine-restarts needs T0, as in cosine-restarts:500:2")))?;
            let t_mult = arg(1).map_or(Ok(1), |t| number(spec, "T_MULT", t))?;
            let eta_min = arg(2).map_or(Ok(0.0), |t| number(spec, "ETA_MIN", t))?;
            Schedule::CosineRestarts { t_0: positive(number(spec, "T0", t0)?, "T0")?, t_mult: positive(t_mult, "T_MULT")?, eta_min }
        }
        "invsqrt" => {
            max_args(1)?;
            let timescale = arg(0).map_or(Ok(100), |t| number(spec, "TIMESCALE", t))?;
            Schedule::InverseSqrt { timescale: positive(timescale, "TIMESCALE")? }
        }
        "onecycle" => {
            max_args(1)?;
            let pct_start: f64 = arg(0).map_or(Ok(0.3), |t| number(spec, "PCT_START", t))?;
            if !(pct_start > 0.0 && pct_start < 1.0) {
                return Err(bad(format!("'{spec}': PCT_START must be between 0 and 1, got {pct_start}")));
            }
            Schedule::OneCycle { total_steps: total_steps.max(2), pct_start }
        }
        "plateau" => {
            max_args(2)?;
            let patience = arg(0).map_or(Ok(10), |t| number(spec, "PATIENCE", t))?;
            let factor: f64 = arg(1).map_or(Ok(0.1), |t| number(spec, "FACTOR", t))?;
            if !(factor > 0.0 && factor < 1.0) {
                return Err(bad(format!("'{spec}': FACTOR must be between 0 and 1, got {factor}")));
            }
            plan.plateau = Some(ReduceLrOnPlateau::new(factor, patience));
            Schedule::Constant
        }
        other => {
            return Err(bad(format!(
                "unknown schedule '{other}'; expected constant, step, multistep, exp, cosine, cosine-restarts, invsqrt, onecycle or plateau"
            )))
        }
    };
    plan.schedule = match (warmup, schedule, plan.plateau.is_some()) {
        (0, Schedule::Constant, _) => None,
        (0, s, _) => Some(s),
        (w, s, _) => Some(Schedule::Warmup { steps: w, inner: Box::new(s) }),
    };
    Ok(plan)
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
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    steps: u32,
    /// Linear warm-up steps in front of the schedule.
    #[arg(long, default_value_t = 0)]
    warmup: usize,
    /// Where to write the plot (PNG and SVG) [default: schedule-SPEC].
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: ScheduleArgs) -> Result<()> {
    let steps = args.steps as usize;
    let plan = parse(&args.spec, steps, args.warmup)?;
    if plan.plateau.is_some() {
        return Err(bad("plateau follows the test loss during training; it cannot be drawn ahead of time"));
    }
    if !(args.lr > 0.0 && args.lr.is_finite()) {
        return Err(Error::config("--lr", format!("must be a positive number, got {}", args.lr)));
    }
    let schedule = plan.schedule.clone().unwrap_or(Schedule::Constant);
    println!("schedule {} with base lr {}", schedule.describe(), args.lr);
    println!("{:>8}  {:>12}", "step", "lr");
    let shown: Vec<usize> = (0..=20).map(|i| i * (steps - 1) / 20).collect();
    for t in shown.iter().copied().collect::<std::collections::BTreeSet<_>>() {
        println!("{t:>8}  {:>12.6e}", schedule.lr(args.lr, t));
    }
    let name: String = args.spec.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    let stem = args.out.unwrap_or_else(|| PathBuf::from(format!("schedule-{name}")));
    let points = (0..steps).map(|t| (t as f64, schedule.lr(args.lr, t))).collect();
    let files = plot::lines(
        &stem,
        &format!("learning rate: {}", schedule.describe()),
        "step",
        "learning rate",
        &[plot::Series { name: String::new(), points }],
        false,
    )?;
    println!("plot      {}", files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_bad_ones_say_why() {
        assert_eq!(parse("constant", 100, 0).unwrap(), LrPlan::default());
        assert_eq!(parse("cosine", 100, 0).unwrap().schedule, Some(Schedule::Cosine { t_max: 100, eta_min: 0.0 }));
        let w = parse("step:10:0.5", 100, 5).unwrap().schedule.unwrap();
        assert_eq!(w, Schedule::Warmup { steps: 5, inner: Box::new(Schedule::Step { step_size: 10, gamma: 0.5 }) });
        assert!(parse("plateau:3", 100, 0).unwrap().plateau.is_some());
        for (spec, needle) in [
            ("cosin", "unknown schedule 'cosin'"),
            ("step", "step needs a step size"),
            ("step:x", "SIZE must be a number, got 'x'"),
            ("step:0", "SIZE must be at least 1"),
            ("exp:-1", "GAMMA must be positive"),
            ("onecycle:2", "PCT_START must be between 0 and 1"),
            ("cosine:1:2:3", "at most 2 values"),
        ] {
            let e = parse(spec, 100, 0).unwrap_err().to_string();
            assert!(e.starts_with("--schedule: ") && e.contains(needle), "{spec}: {e}");
        }
    }
}
