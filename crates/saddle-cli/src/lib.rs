//! The `saddle` command as a library target, so that it compiles while the
//! `saddle` library is still being optimized (cargo starts a dependent
//! library as soon as its dependency's metadata exists, a binary only once
//! the dependency is built); `main.rs` is the binary around [`main`]. One
//! file per subcommand; no numerics here, only arguments, tables and calls
//! into the library's public API. Not an API of its own: everything but
//! [`main`] is private.

/// Writes `line` to stderr in one write, as `main` writes every error:
/// `eprintln!` writes each piece of its format on its own, and under mpirun
/// the ranks' lines, and mpirun's own, interleaved mid-line in one stderr.
fn say(line: String) {
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
}

/// Rust ignores SIGPIPE, so printing into a closed pipe (`saddle … | head`)
/// panics; the default action ends the program quietly, as other tools do.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restores the default action of one signal, first thing in main,
    // before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

mod bench;
mod diagnose;
mod eval;
mod grad_flow;
mod launch;
mod lr_find;
mod optim_lab;
mod plot;
mod predict;
mod report;
mod schedule;
mod slots;
mod train;

use clap::{CommandFactory, FromArgMatches, Subcommand};
use std::process::ExitCode;

/// saddle: deep-learning training in Rust that tells you why training is stuck.
#[derive(clap::Parser)]
#[command(name = "saddle", version, about, long_about = None)]
struct Cli {
    /// Worker threads for the numeric kernels (default: all cores).
    #[arg(long, global = true, value_name = "N", value_parser = at_least::<1>)]
    threads: Option<u32>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model (mnist: digits; images: colour photos; slots: tag words) into a run directory.
    Train(Box<train::TrainArgs>),
    /// Test accuracy and confusion matrix (images) or slot F1 per type (slots) of a finished run.
    Eval(eval::EvalArgs),
    /// Tag each word of a sentence with its slot, with a finished `train slots` run.
    Tag(slots::TagArgs),
    /// Classify a picture (PNG or PGM) with a finished run.
    Predict(predict::PredictArgs),
    /// The learning-rate range test: a fresh model trained while the rate grows; suggests a rate.
    LrFind(Box<lr_find::LrFindArgs>),
    /// Print and plot a learning-rate schedule before training with it.
    Schedule(schedule::ScheduleArgs),
    /// Every optimizer on 2-D error surfaces and on MNIST, plotted side by side.
    OptimLab(optim_lab::OptimLabArgs),
    /// Why the loss stopped falling: verdicts on its plateaus, the Hessian, the landscape; writes report.html.
    Diagnose(diagnose::DiagnoseArgs),
    /// Vanishing and exploding gradients through time, RNN against LSTM, plotted.
    GradFlow(grad_flow::GradFlowArgs),
    /// Measure kernel and model speed, to compare with `tools/bench_torch.py`.
    Bench(bench::BenchArgs),
}

/// A value parser for counts: a whole number of at least `MIN`, or an error
/// that says so (`--epochs -1`: "must be a whole number ≥ 1, got -1").
pub(crate) fn at_least<const MIN: u32>(text: &str) -> Result<u32, String> {
    match text.trim().parse::<i64>() {
        Ok(n) if n >= MIN as i64 && n <= u32::MAX as i64 => Ok(n as u32),
        Ok(n) if n < MIN as i64 => Err(format!("must be a whole number ≥ {MIN}, got {n}")),
        Ok(n) => Err(format!("must be at most {}, got {n}", u32::MAX)),
        Err(_) => Err(format!("must be a whole number ≥ {MIN}, got '{text}'")),
    }
}

/// Runs the command line given to the process and returns its exit status.
pub fn main() -> ExitCode {
    saddle::memory::keep_freed_memory();
    quiet_on_closed_pipe();
    // A value such as `-1` reaches its option's parser, which says what the
    // option accepts, instead of being taken for a flag.
    let matches =
        Cli::command().allow_negative_numbers(true).mut_subcommands(|c| c.allow_negative_numbers(true)).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // Started by `mpirun` with other ranks: join the job (data-parallel training).
    let job = match launch::join() {
        Ok(job) => job,
        Err(e) => {
            say(format!("error: {e}\n"));
            return ExitCode::FAILURE;
        }
    };
    let on_ranks = match &cli.command {
        Command::Train(_) => true,
        Command::Bench(b) => b.is_collective(),
        _ => false,
    };
    if let (Some(j), false) = (&job, on_ranks) {
        if j.rank() == 0 {
            let what = matches.subcommand_name().unwrap_or("?");
            say(format!("error: `saddle {what}` runs on one process; under mpirun only `saddle train` and `saddle bench allreduce` run on several ranks\n"));
        }
        // Every rank takes this branch. Once rank 0 has printed (the sum is
        // a barrier), each leaves MPI in order (`MPI_Finalize`): an abort
        // from another rank could end rank 0 before its line was out.
        j.parallel.any(false);
        drop(job);
        return ExitCode::from(2);
    }
    let threads = cli.threads.map(|t| t as usize).or_else(|| job.as_ref().map(launch::Job::default_threads));
    // The command runs on a worker of the pool, so the kernels' parallel loops
    // start from a thread that takes its own share: no third thread waits to
    // be woken between steps. With the main thread outside the pool, three
    // threads share two cores, and a step slows down whenever a worker loses
    // its core to it (the README's benchmarks give the measurement).
    let pool = match rayon::ThreadPoolBuilder::new().num_threads(threads.unwrap_or(0)).stack_size(8 << 20).build() {
        Ok(pool) => pool,
        Err(e) => {
            say(format!("error: --threads: {e}\n"));
            return ExitCode::FAILURE;
        }
    };
    let done = |r: saddle::Result<()>| r.map(|()| ExitCode::SUCCESS);
    let result = pool.install(|| match cli.command {
        Command::Train(args) => train::run(*args, job.as_ref().map(|j| &j.parallel)),
        Command::Eval(args) => done(eval::run(args)),
        Command::Tag(args) => done(slots::tag(args)),
        Command::Predict(args) => done(predict::run(args)),
        Command::LrFind(args) => done(lr_find::run(*args)),
        Command::Schedule(args) => done(schedule::run(args)),
        Command::OptimLab(args) => done(optim_lab::run(args)),
        Command::Diagnose(args) => done(diagnose::run(args)),
        Command::GradFlow(args) => done(grad_flow::run(args)),
        Command::Bench(args) => done(bench::run(args, job.as_ref().map(|j| &j.parallel))),
    });
    match (result, &job) {
        (Ok(code), _) => code,
        (Err(e), None) => {
            say(format!("error: {e}\n"));
            ExitCode::FAILURE
        }
        // The other ranks would wait for this one in their next collective: end them all.
        (Err(e), Some(job)) => {
            say(format!("error (rank {} of {}): {e}\n", job.rank(), job.size()));
            job.abort(1)
        }
    }
}
