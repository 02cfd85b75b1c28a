//! `saddle bench`: speed measurements that print one JSON object per line
//! (`--json`), in the same form as `tools/bench_torch.py`, so the two can be
//! compared side by side in one run on one machine; and `saddle bench
//! diagnosis`, the labelled runs against the diagnosis.

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use saddle::diagnose::{labelled_runs, LabelledRun, Verdict};
use saddle::dist::DataParallel;
use saddle::kernels::gemm::{sgemm, Accumulate, Dims, Operand};
use saddle::nn::{lenet5, Module};
use saddle::ops::CrossEntropyOptions;
use saddle::optim::{AdamConfig, Family, Optimizer};
use saddle::train::{Observer, StepMetrics};
use saddle::{no_grad, Error, Result, Rng, Tensor};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
#[command(
    after_help = "Compare with PyTorch in the same run:\n  saddle bench gemm --json; python3 tools/bench_torch.py gemm\n  saddle bench lenet --json; python3 tools/bench_torch.py lenet\n  saddle bench optim --json; python3 tools/bench_torch.py optim\n  saddle bench lstm --json; python3 tools/bench_torch.py lstm\n  saddle bench crf --json; python3 tools/bench_torch.py crf\n  saddle bench cifar --json; python3 tools/bench_torch.py cifar\n\nThe diagnosis against runs whose right verdict is known (about 5 minutes; 15 with the corpora):\n  saddle bench diagnosis --corpora ../shared/data"
)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum)]
    what: Target,
    /// Print one JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Matrix sizes for `gemm` (square, M = N = K), separated by commas: `--sizes 256,1024`.
    #[arg(long, value_name = "N,N,…", value_delimiter = ',', default_values_t = [256, 512, 1024, 2048])]
    sizes: Vec<usize>,
    /// `diagnosis`: a folder holding `atis/` and `cifar10/`, for the runs on them.
    #[arg(long, value_name = "DIR")]
    corpora: Option<PathBuf>,
    /// `diagnosis`: where the runs are written (default: a new temporary folder).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// `diagnosis`: only the runs of these names.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    only: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Target {
    /// Single-precision matrix product C = A·B: GFLOP/s, median of repeated runs.
    Gemm,
    /// LeNet-5 on 28×28 images: training images/s (batch 64, Adam), inference
    /// images/s (batch 1000), peak resident memory.
    Lenet,
    /// One optimizer step over 1M and 10M parameters, for every optimizer: milliseconds.
    Optim,
    /// Embedding(1000, 100) → LSTM(100 → 128) → Linear(128, 20), batch 32 × 24
    /// steps, Adam: training tokens/s; also the bidirectional LSTM, the GRU and the RNN.
    Lstm,
    /// A linear-chain CRF over 20 tags, batch 32 × 24 words: the negative
    /// log-likelihood forward and backward, and Viterbi decoding, in tokens/s.
    Crf,
    /// The colour-image networks on 32×32×3 images, batch 512, Nesterov SGD:
    /// training and inference images/s and peak resident memory, the default
    /// (speedrun) network first, then ResNet-20.
    Cifar,
    /// The all-reduce of data-parallel training, under `mpirun -n R` (built
    /// with `--features mpi`): seconds per call and bandwidth for messages of
    /// 1 KiB to 64 MiB of f32. The transport is mpirun's (`--mca btl tcp,self`
    /// for TCP, the path between machines; shared memory on one machine by default).
    Allreduce,
    /// The labelled runs (`saddle::diagnose::labelled_runs`): each trained and
    /// diagnosed, its verdict against the one known by how it is built; a
    /// table, the confusion matrix and the false alarms on healthy runs.
    Diagnosis,
}

impl BenchArgs {
    /// Whether every rank of an MPI job takes part (the others run on one process).
    pub fn is_collective(&self) -> bool {
        matches!(self.what, Target::Allreduce)
    }
}

pub fn run(args: BenchArgs, parallel: Option<&DataParallel>) -> Result<()> {
    match args.what {
        Target::Allreduce => allreduce(&args, parallel),
        Target::Gemm => gemm(&args),
        Target::Lenet => lenet(&args),
        Target::Optim => optim(&args),
        Target::Lstm => lstm(&args),
        Target::Crf => crf(&args),
        Target::Cifar => cifar(&args),
        Target::Diagnosis => diagnosis(&args),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Calls `f` at least 5 times and for at least half a second: long enough
/// for a new process's threads to spread over the cores and its heap to
/// reach the size a step needs.
fn warm_up(mut f: impl FnMut()) {
    let t = Instant::now();
    let mut calls = 0;
    while calls < 5 || t.elapsed().as_secs_f64() < 0.5 {
        f();
        calls += 1;
    }
}

/// Median seconds of `runs` calls of `f`, after one warm-up call, with the
/// pool's workers polling for work (`saddle::threads`), as they do in
/// `train::fit` and `train::evaluate`.
fn time(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..runs)
            .map(|_| {
                saddle::threads::keep_workers_polling();
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// Seconds per all-reduce of 1 KiB … 64 MiB (every fourfold size), the
/// median of 5 rounds, each the mean of enough calls for about 0.1 s; the
/// algorithm bandwidth (bytes / seconds) and the bus bandwidth (× 2(R−1)/R,
/// what a ring moves through each link), as NCCL's tests report them.
fn allreduce(args: &BenchArgs, parallel: Option<&DataParallel>) -> Result<()> {
    let dp = parallel.ok_or_else(|| {
        Error::config(
            "allreduce",
            "needs several ranks: `mpirun -n 2 saddle bench allreduce`, with saddle built with --features mpi",
        )
    })?;
    let (ranks, root) = (dp.size(), dp.is_root());
    let transport = std::env::var("OMPI_MCA_btl").unwrap_or_else(|_| "default".into());
    if root && !args.json {
        println!("all-reduce (sum of f32) over {ranks} ranks, transport: {transport}");
        println!("{:>10} {:>12} {:>12} {:>12}", "bytes", "µs/call", "algbw GB/s", "busbw GB/s");
    }
    for bytes in (0..9).map(|k| 1024usize << (2 * k)) {
        let mut buffer = vec![1.0f32; bytes / 4];
        let calls = ((256 << 20) / bytes).clamp(4, 2000);
        dp.collective().sum_f32(&mut buffer); // warm-up: connections, registration
        let rounds: Vec<f64> = (0..5)
            .map(|_| {
                dp.any(false); // start together
                let t = Instant::now();
                for _ in 0..calls {
                    dp.collective().sum_f32(&mut buffer); // values grow to ∞: as fast to add
                }
                t.elapsed().as_secs_f64() / calls as f64
            })
            .collect();
        let mut seconds = [median(rounds)];
        dp.sum(&mut seconds); // every rank's median, averaged below
        let seconds = seconds[0] / ranks as f64;
        let algbw = bytes as f64 / seconds / 1e9;
        let busbw = algbw * 2.0 * (ranks - 1) as f64 / ranks as f64;
        if !root {
            continue;
        }
        if args.json {
            println!("{{\"bench\":\"allreduce\",\"impl\":\"saddle\",\"ranks\":{ranks},\"transport\":\"{transport}\",\"bytes\":{bytes},\"seconds\":{seconds:.3e},\"algbw_gb_s\":{algbw:.3},\"busbw_gb_s\":{busbw:.3}}}");
        } else {
            println!("{bytes:>10} {:>12.1} {algbw:>12.3} {busbw:>12.3}", seconds * 1e6);
        }
    }
    Ok(())
}

fn gemm(args: &BenchArgs) -> Result<()> {
    if let Some(bad) = args.sizes.iter().find(|&&n| n == 0) {
        return Err(Error::config("--sizes", format!("{bad} is not a matrix size (must be ≥ 1)")));
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
        // About 2 s of work per size, at least 5 runs.
        let runs = ((4e11 / flops) as usize).clamp(5, 200);
        let seconds = time(runs, || {
            sgemm(Dims { m: n, n, k: n }, Operand::Stored(&a), Operand::Stored(&b), &mut c, Accumulate::Overwrite)
        });
        let gflops = flops / seconds / 1e9;
        let threads = rayon::current_num_threads();
        if args.json {
            println!("{{\"bench\":\"gemm\",\"impl\":\"saddle\",\"n\":{n},\"gflops\":{gflops:.1},\"threads\":{threads},\"runs\":{runs}}}");
        } else {
            println!("{n:>6}  {gflops:>10.1}  {runs:>8}");
        }
    }
    Ok(())
}

/// Peak resident set size of this process in MiB (Linux `VmHWM`), if known.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn lenet(args: &BenchArgs) -> Result<()> {
    let mut rng = Rng::new(0);
    let model = lenet5([1, 28, 28], 10, &mut rng)?;
    let mut opt = Optimizer::new(model.named_parameters(), AdamConfig::default())?;
    let x = Tensor::normal(&[64, 1, 28, 28], 0.0, 1.0, &mut rng);
    let y: Vec<i64> = (0..64).map(|i| i % 10).collect();
    let train_step = || {
        let loss = model.forward(&x).cross_entropy(&y, CrossEntropyOptions::default());
        opt.zero_grad();
        loss.backward();
        opt.step();
    };
    let mut train_step = train_step;
    for _ in 0..10 {
        train_step(); // reach steady state
    }
    let train = 64.0 / time(100, &mut train_step);
    let xe = Tensor::normal(&[1000, 1, 28, 28], 0.0, 1.0, &mut rng);
    let infer = 1000.0
        / time(10, || {
            no_grad(|| model.forward(&xe));
        });
    let rss = peak_rss_mib().unwrap_or(f64::NAN);
    let threads = rayon::current_num_threads();
    if args.json {
        println!("{{\"bench\":\"lenet\",\"impl\":\"saddle\",\"train_images_per_s\":{train:.0},\"infer_images_per_s\":{infer:.0},\"peak_rss_mib\":{rss:.1},\"threads\":{threads}}}");
    } else {
        println!("LeNet-5, {threads} threads");
        println!("  training  (batch 64, Adam)  {train:>9.0} images/s");
        println!("  inference (batch 1000)      {infer:>9.0} images/s");
        println!("  peak resident memory        {rss:>9.1} MiB");
    }
    Ok(())
}

fn optim(args: &BenchArgs) -> Result<()> {
    let threads = rayon::current_num_threads();
    if !args.json {
        println!("{:>10}  {:>10}  {:>10}", "optimizer", "params", "ms/step");
    }
    let mut rng = Rng::new(0);
    for n in [1_000_000usize, 10_000_000] {
        let p = Tensor::uniform(&[n], -1.0, 1.0, &mut rng).requires_grad();
        // ∂(Σ p ⊙ c)/∂p = c: a gradient that stays in place while the optimizer steps.
        p.mul(&Tensor::uniform(&[n], -1.0, 1.0, &mut rng)).sum_all().backward();
        for o in Family::ALL {
            let mut opt =
                Optimizer::new(vec![("p".into(), p.clone())], o.spec().with_lr(1e-4).with_weight_decay(0.01))?;
            let runs = if n > 1_000_000 { 10 } else { 50 };
            let ms = 1e3 * time(runs, || opt.step());
            if args.json {
                println!(
                    "{{\"bench\":\"optim\",\"impl\":\"saddle\",\"optim\":\"{}\",\"params\":{n},\"ms\":{ms:.3},\"threads\":{threads}}}",
                    o.name()
                );
            } else {
                println!("{:>10}  {n:>10}  {ms:>10.3}", o.name());
            }
        }
    }
    Ok(())
}

fn lstm(args: &BenchArgs) -> Result<()> {
    use saddle::nn::{CellKind, Tagger, TaggerConfig};
    let (batch, steps) = (32usize, 24usize);
    let threads = rayon::current_num_threads();
    for (name, cell, bidirectional) in [
        ("lstm", CellKind::Lstm, false),
        ("bilstm", CellKind::Lstm, true),
        ("gru", CellKind::Gru, false),
        ("rnn", CellKind::RnnTanh, false),
    ] {
        let mut rng = Rng::new(0);
        let cfg = TaggerConfig { bidirectional, ..TaggerConfig::new(cell, 1000, 20, 100, 128) };
        let model = Tagger::new(cfg, &mut rng);
        let mut opt = Optimizer::new(model.named_parameters(), AdamConfig::default())?;
        // Word indices 1…999 (0 is padding), tags 0…19.
        let x = Tensor::from_vec((0..batch * steps).map(|_| (1 + rng.below(999)) as f32).collect(), &[batch, steps]);
        let y: Vec<i64> = (0..batch * steps).map(|_| rng.below(20) as i64).collect();
        let mut step = || {
            let loss = model.forward(&x).cross_entropy(&y, CrossEntropyOptions::default());
            opt.zero_grad();
            loss.backward();
            opt.step();
        };
        warm_up(&mut step);
        let tokens = (batch * steps) as f64 / time(30, &mut step);
        let rss = peak_rss_mib().unwrap_or(f64::NAN);
        if args.json {
            println!("{{\"bench\":\"lstm\",\"impl\":\"saddle\",\"model\":\"{name}\",\"train_tokens_per_s\":{tokens:.0},\"peak_rss_mib\":{rss:.1},\"threads\":{threads}}}");
        } else {
            println!("{name:>7}  training {tokens:>9.0} tokens/s  (peak resident {rss:.1} MiB)");
        }
    }
    Ok(())
}

fn crf(args: &BenchArgs) -> Result<()> {
    let (batch, steps, tags) = (32usize, 24usize, 20usize);
    let mut rng = Rng::new(0);
    let crf = saddle::nn::Crf::new(tags, &mut rng);
    let e = Tensor::normal(&[batch, steps, tags], 0.0, 1.0, &mut rng).requires_grad();
    let y: Vec<i64> = (0..batch * steps).map(|_| rng.below(tags) as i64).collect();
    let lengths = vec![steps; batch];
    let threads = rayon::current_num_threads();
    let nll = time(200, || crf.nll(&e, &y, &lengths).backward());
    let decode = time(200, || {
        crf.decode(&e, &lengths);
    });
    for (op, seconds) in [("nll_forward_backward", nll), ("viterbi", decode)] {
        let tokens = (batch * steps) as f64 / seconds;
        if args.json {
            println!("{{\"bench\":\"crf\",\"impl\":\"saddle\",\"op\":\"{op}\",\"tokens_per_s\":{tokens:.0},\"threads\":{threads}}}");
        } else {
            println!(
                "{op:>22}  {tokens:>11.0} tokens/s  ({:.3} ms a batch of {batch} × {steps}, {tags} tags)",
                seconds * 1e3
            );
        }
    }
    Ok(())
}

fn cifar(args: &BenchArgs) -> Result<()> {
    use saddle::nn::{resnet20, speedrun};
    use saddle::optim::SgdConfig;
    let batch = 512;
    let threads = rayon::current_num_threads();
    for name in ["speedrun", "resnet20"] {
        let mut rng = Rng::new(0);
        let mut model: Box<dyn Module> = match name {
            "speedrun" => Box::new(speedrun(3, 10, &mut rng)),
            _ => Box::new(resnet20(3, 10, &mut rng)),
        };
        let sgd = SgdConfig { lr: 0.01, momentum: 0.9, nesterov: true, ..SgdConfig::default() };
        let mut opt = Optimizer::new(model.named_parameters(), sgd)?;
        let x = Tensor::normal(&[batch, 3, 32, 32], 0.0, 1.0, &mut rng);
        let y: Vec<i64> = (0..batch as i64).map(|i| i % 10).collect();
        model.set_training(true);
        let mut step = || {
            let loss = model.forward(&x).cross_entropy(&y, CrossEntropyOptions::default());
            opt.zero_grad();
            loss.backward();
            opt.step();
        };
        step();
        let train = batch as f64 / time(5, &mut step);
        model.set_training(false);
        let infer = batch as f64
            / time(5, || {
                no_grad(|| model.forward(&x));
            });
        let rss = peak_rss_mib().unwrap_or(f64::NAN);
        if args.json {
            println!("{{\"bench\":\"cifar\",\"impl\":\"saddle\",\"model\":\"{name}\",\"train_images_per_s\":{train:.0},\"infer_images_per_s\":{infer:.0},\"peak_rss_mib\":{rss:.1},\"threads\":{threads}}}");
        } else {
            println!("{name:>9}  training {train:>7.0} images/s  inference {infer:>7.0} images/s  (peak resident {rss:.1} MiB)");
        }
    }
    Ok(())
}

/// A spinner with the run's name and its step.
struct Steps(ProgressBar);

impl Observer for Steps {
    fn on_step(&mut self, m: &StepMetrics) -> Result<()> {
        self.0.set_message(format!("step {}, loss {:.4}", m.step + 1, m.loss));
        Ok(())
    }
}

fn diagnosis(args: &BenchArgs) -> Result<()> {
    let mut runs = labelled_runs(args.corpora.as_deref());
    if let Some(name) = args.only.iter().find(|n| !runs.iter().any(|r| &r.name == n)) {
        let names: Vec<&str> = runs.iter().map(|r| r.name).collect();
        return Err(Error::config(
            "--only",
            format!("no labelled run is called '{name}'; they are {}", names.join(", ")),
        ));
    }
    if !args.only.is_empty() {
        runs.retain(|r| args.only.iter().any(|n| n == r.name));
    }
    let out = args.out.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("saddle-labelled-{}-{}", std::process::id(), crate::train::timestamp()))
    });
    println!("{} labelled runs, trained into {}", runs.len(), out.display());
    println!();
    println!("{:<20} {:<34} {:<26} {:>7}", "run", "expected", "given", "seconds");
    let mut graded: Vec<(&LabelledRun, Verdict)> = Vec::new();
    for r in &runs {
        let bar = ProgressBar::new_spinner().with_prefix(r.name);
        bar.set_style(ProgressStyle::with_template("{prefix} {spinner} {elapsed} {msg}").expect("valid template"));
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        let t = Instant::now();
        let diagnosis = r.train_and_diagnose(&out, &mut [&mut Steps(bar.clone())]);
        bar.finish_and_clear();
        let given = diagnosis?.verdict();
        let mark = if r.expected.accepts(given) { "" } else { "  ✗ wrong" };
        let expected = r.expected.to_string();
        println!("{:<20} {expected:<34} {:<26} {:>7.1}{mark}", r.name, given.to_string(), t.elapsed().as_secs_f64());
        graded.push((r, given));
    }
    // Rows: what each run should get; columns: the verdicts given, in the order first met.
    let mut columns: Vec<Verdict> = Vec::new();
    for &(_, v) in &graded {
        if !columns.contains(&v) {
            columns.push(v);
        }
    }
    let mut rows: Vec<String> = Vec::new();
    for (r, _) in &graded {
        if !rows.contains(&r.expected.to_string()) {
            rows.push(r.expected.to_string());
        }
    }
    println!();
    println!("confusion (rows: expected; columns: given)");
    let width = columns.iter().map(|c| c.to_string().chars().count()).max().unwrap_or(0).max(4) + 2;
    let header: String = columns.iter().map(|c| format!("{:>width$}", c.to_string())).collect();
    println!("{:<34}{header}", "");
    for row in &rows {
        let cells: String = columns
            .iter()
            .map(|c| {
                let n = graded.iter().filter(|(r, v)| &r.expected.to_string() == row && v == c).count();
                format!("{:>width$}", if n == 0 { ".".to_string() } else { n.to_string() })
            })
            .collect();
        println!("{row:<34}{cells}");
    }
    let right = graded.iter().filter(|(r, v)| r.expected.accepts(*v)).count();
    let healthy: Vec<_> = graded.iter().filter(|(r, _)| r.expected.is_healthy()).collect();
    let alarms = healthy.iter().filter(|(_, v)| v.is_problem()).count();
    println!();
    println!("{right} of {} named right; false alarms on healthy runs: {alarms} of {}", graded.len(), healthy.len());
    Ok(())
}
