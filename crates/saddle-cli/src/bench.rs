//! `saddle bench`: speed measurements that print one JSON object per line
//! (`--json`), in the same form as `tools/bench_torch.py`, so the two can be
//! compared side by side in one run on one machine.

use clap::{Args, ValueEnum};
use saddle::kernels::gemm::{sgemm, Transpose};
use saddle::Rng;
use std::time::Instant;

#[derive(Args)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum)]
    what: Target,
    /// Print one JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Matrix sizes for `gemm` (square, M = N = K).
    #[arg(long, value_delimiter = ',', default_values_t = [256, 512, 1024, 2048])]
    sizes: Vec<usize>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Target {
    /// Single-precision matrix product C = A·B: GFLOP/s, median of repeated runs.
    Gemm,
}

pub fn run(args: BenchArgs) -> Result<(), String> {
    match args.what {
        Target::Gemm => gemm(&args),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn gemm(args: &BenchArgs) -> Result<(), String> {
    if let Some(bad) = args.sizes.iter().find(|&&n| n == 0) {
        return Err(format!("--sizes: {bad} is not a matrix size (must be ≥ 1)"));
    }
    if !args.json {
        println!("{:>6}  {:>10}  {:>8}", "n", "GFLOP/s", "runs");
    }
    let mut rng = Rng::new(0);
    for &n in &args.sizes {
        let a: Vec<f32> = (0..n * n).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let b: Vec<f32> = (0..n * n).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let mut c = vec![0.0f32; n * n];
        let flops = 2.0 * (n as f64).powi(3);
        // About 2 s of work per size, at least 5 runs, after one warm-up.
        let runs = ((4e11 / flops) as usize).clamp(5, 200);
        sgemm(n, n, n, &a, Transpose::No, &b, Transpose::No, &mut c, false);
        let times: Vec<f64> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                sgemm(n, n, n, &a, Transpose::No, &b, Transpose::No, &mut c, false);
                t.elapsed().as_secs_f64()
            })
            .collect();
        let gflops = flops / median(times) / 1e9;
        if args.json {
            println!(
                "{{\"bench\":\"gemm\",\"impl\":\"saddle\",\"n\":{n},\"gflops\":{gflops:.1},\"threads\":{},\"runs\":{runs}}}",
                rayon::current_num_threads()
            );
        } else {
            println!("{n:>6}  {gflops:>10.1}  {runs:>8}");
        }
    }
    Ok(())
}
