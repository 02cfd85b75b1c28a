//! The `saddle` command. One file per subcommand; no numerics here, only
//! arguments, tables and calls into the library's public API.

mod bench;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// saddle: deep-learning training in Rust that tells you why training is stuck.
#[derive(Parser)]
#[command(name = "saddle", version, about, long_about = None)]
struct Cli {
    /// Worker threads for the numeric kernels (default: all cores).
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure kernel and model speed, to compare with `tools/bench_torch.py`.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        if n == 0 {
            eprintln!("error: --threads must be at least 1");
            return ExitCode::from(2);
        }
        if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(n).build_global() {
            eprintln!("error: --threads {n}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let result = match cli.command {
        Command::Bench(args) => bench::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
