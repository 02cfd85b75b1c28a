//! `saddle grad-flow`: vanishing and exploding gradients made visible.
//!
//! Two measurements. The lecture's one-unit linear recurrence `h_t = w·h_{t−1}`,
//! `h_0 = 1`, over 1000 steps: `h_1000 = w^1000` is about 0 for w = 0.99, 1
//! for w = 1 and about 20 000 for w = 1.01, and so is its gradient
//! `1000·w^999`. Then the adding problem, whose first marked value lies near
//! the start of the sequence: an Elman RNN and an LSTM (forget-gate bias 1),
//! each trained with several seeds, with and without clipping; the test error
//! of each, and the norm of `∂L/∂h_t` at every step t, before and after
//! training, show how much of the loss reaches the start. With the defaults the
//! RNN stays at the error of always answering 1 and the LSTM solves the task.

use crate::plot::{self, Series};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use saddle::diagnose::{adding_batch, time_flow};
use saddle::nn::{Linear, Module, Recurrent, RecurrentConfig};
use saddle::ops::Reduction;
use saddle::optim::{clip_grad_norm, AdamConfig, Optimizer};
use saddle::{Error, Result, Rng, Tensor};
use std::path::PathBuf;

#[derive(Args)]
#[command(
    after_help = "Writes recurrence.png/.svg (h_t of the one-unit recurrence) and grad-flow.png/.svg\n(‖∂L/∂h_t‖ for every step t, log scale) into --out."
)]
pub struct GradFlowArgs {
    /// Folder for the plots.
    #[arg(long, default_value = "grad-flow")]
    out: PathBuf,
    /// Sequence length T of the adding problem (at least 10: the first marker lies in the first tenth).
    #[arg(long, default_value_t = 60, value_parser = crate::at_least::<10>)]
    steps: u32,
    /// Training steps of the adding problem, for each model and seed.
    #[arg(long, default_value_t = 1500)]
    train_steps: usize,
    /// Hidden units.
    #[arg(long, default_value_t = 32, value_parser = crate::at_least::<1>)]
    hidden_size: u32,
    /// Clipping threshold for the clipped runs.
    #[arg(long, default_value_t = 1.0)]
    clip_norm: f32,
    /// The LSTM's forget-gate bias at initialization (Jozefowicz et al. 2015: 1; PyTorch's init: about 0).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    forget_bias: f32,
    /// Seeds to train each model with (accuracies are given for each).
    #[arg(long, default_value_t = 3, value_parser = crate::at_least::<1>)]
    seeds: u32,
    /// Seed of the first run; the others follow it.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

const BATCH: usize = 64;
/// Sequences in the held-out batch that measures accuracy.
const TEST: usize = 1000;

/// The mean squared error of `rnn` + `fc` on a batch, with probes after every
/// step, and the share of answers within 0.1 of the sum.
fn loss(rnn: &Recurrent, fc: &Linear, x: &Tensor, y: &Tensor, probes: Option<&[Tensor]>) -> (Tensor, f32) {
    let (out, _) = rnn.forward_probed(x, None, None, probes);
    let t = out.shape()[1];
    let answer = fc.forward(&out.narrow(1, t - 1, 1).squeeze(1));
    let close = answer.to_vec().iter().zip(y.to_vec()).filter(|(a, y)| (*a - y).abs() < 0.1).count();
    (answer.mse_loss(y, Reduction::Mean), close as f32 / y.shape()[0] as f32)
}

/// ‖∂L/∂h_t‖ for t = 1…T on one batch (Frobenius norm over the batch).
fn grad_norms(rnn: &Recurrent, fc: &Linear, x: &Tensor, y: &Tensor, h: usize) -> Vec<f64> {
    time_flow(x.shape()[1], &[x.shape()[0], h], |probes| loss(rnn, fc, x, y, Some(probes)).0)
}

/// One model trained on the adding problem, and what was measured of it.
struct Trained {
    mse: f32,
    accuracy: f32,
    init: Vec<f64>,
    flow: Vec<f64>,
    /// Steps at which clipping changed the gradient.
    clipped: usize,
    largest_norm: f32,
}

pub fn run(args: GradFlowArgs) -> Result<()> {
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let mut written = lecture_recurrence(&args.out)?;
    let t = args.steps as usize;
    print_setup(&args);
    let bar = ProgressBar::new(4 * args.seeds as u64 * args.train_steps as u64);
    bar.set_style(
        ProgressStyle::with_template("training  [{bar:28}] {pos:>7}/{len} steps  ETA {eta:>3}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    println!(
        "{:<22} {:>12} {:>12} {:>11}  test MSE, within ±0.1 (each seed)",
        "model", "‖∂L/∂h_1‖", "‖∂L/∂h_T‖", "h_1 / h_T"
    );
    let (mut flows, mut medians) = (Vec::new(), Vec::new());
    for (name, lstm) in [("rnn", false), ("lstm", true)] {
        for clip in [None, Some(args.clip_norm)] {
            let runs: Vec<Trained> =
                (0..args.seeds as u64).map(|k| train(&args, lstm, clip, args.seed + k, &bar)).collect::<Result<_>>()?;
            let first = &runs[0];
            bar.suspend(|| {
                if clip.is_none() {
                    report(&format!("{name} at initialization"), &first.init, "");
                }
                let label = match clip {
                    Some(c) => format!("{name}, trained, clip {c}"),
                    None => format!("{name}, trained"),
                };
                let each: Vec<String> =
                    runs.iter().map(|r| format!("{:.4} {:.0}%", r.mse, 100.0 * r.accuracy)).collect();
                report(&label, &first.flow, &each.join(", "));
                if let Some(c) = clip {
                    let (fired, steps) = (runs.iter().map(|r| r.clipped).sum::<usize>(), runs.len() * args.train_steps);
                    let largest = runs.iter().map(|r| r.largest_norm).fold(0.0f32, f32::max);
                    println!("{:<22} clipping fired in {fired} of {steps} steps (largest norm {largest:.3})", "");
                    if fired == 0 {
                        println!("{:<22} never above {c}: the same run as without it, so not drawn", "");
                    }
                }
            });
            if clip.is_none() {
                flows.push(Series { name: format!("{name}, initialization"), points: indexed(&first.init) });
            }
            if clip.is_none() || runs.iter().any(|r| r.clipped > 0) {
                let label =
                    if clip.is_some() { format!("{name}, trained, clipped") } else { format!("{name}, trained") };
                flows.push(Series { name: label, points: indexed(&first.flow) });
            }
            if clip.is_none() {
                let mut mse: Vec<f32> = runs.iter().map(|r| r.mse).collect();
                mse.sort_by(f32::total_cmp);
                medians.push((name, mse[mse.len() / 2], first.flow[0] / first.flow[t - 1].max(1e-300)));
            }
        }
    }
    bar.finish_and_clear();
    let title = format!("gradient flowing back through {t} steps: ‖∂L/∂h_t‖ (log scale)");
    written.extend(plot::lines(&args.out.join("grad-flow"), &title, "step t", "‖∂L/∂h_t‖", &flows, true)?);
    println!();
    print_conclusion(t, &medians);
    println!("plots     {}", written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
    Ok(())
}

/// What the adding problem is and how it is trained and measured.
fn print_setup(args: &GradFlowArgs) {
    let t = args.steps;
    println!();
    println!(
        "the adding problem: {t} steps of (value, marker); answer the sum of the two marked values, the first marked in the first tenth"
    );
    println!(
        "{} training steps of Adam (lr 0.01) on batches of {BATCH}, each model with seeds {}–{}; always answering 1 scores MSE 0.167",
        args.train_steps,
        args.seed,
        args.seed + args.seeds as u64 - 1
    );
    println!(
        "‖∂L/∂h_t‖ on one batch of {BATCH} (seed {}); test MSE and share of answers within ±0.1 on {TEST} new sequences",
        args.seed
    );
}

/// What the plot shows, in words, from each model's median error and flow after training.
fn print_conclusion(t: usize, medians: &[(&str, f32, f64)]) {
    println!("what the plot shows: how much of the error at step {t} reaches the state at each earlier step t.");
    for &(name, mse, ratio) in medians {
        let verdict = match mse {
            m if m < 0.05 => "solves the task",
            m if m > 0.15 => "does no better than always answering 1",
            _ => "learns part of it",
        };
        println!(
            "  {name}: ‖∂L/∂h_1‖/‖∂L/∂h_{t}‖ = {ratio:.1e} after training; median test MSE {mse:.4}: it {verdict}"
        );
    }
    println!(
        "  the RNN's gradient is multiplied at every step by W_hh and tanh' < 1 and vanishes; the LSTM's cell adds\n  \
         c_t = f·c_(t−1) + i·g, so with its forget gate near 1 the gradient reaches the first marker"
    );
}

/// Trains a fresh RNN or LSTM (seed `seed`) on the adding problem; measures its flow before and after, and its error.
fn train(args: &GradFlowArgs, lstm: bool, clip: Option<f32>, seed: u64, bar: &ProgressBar) -> Result<Trained> {
    let (t, h) = (args.steps as usize, args.hidden_size as usize);
    let mut rng = Rng::new(seed);
    let cfg = RecurrentConfig { batch_first: true, ..RecurrentConfig::new(2, h) };
    let rnn = if lstm { Recurrent::lstm(cfg, &mut rng) } else { Recurrent::rnn(cfg, &mut rng) };
    if lstm {
        // The forget gate's bias, b_ih + b_hh over units H..2H, set to --forget-bias.
        for (name, b) in rnn.named_parameters() {
            let value = if name == "bias_ih_l0" { args.forget_bias } else { 0.0 };
            if name.starts_with("bias_") {
                b.data_mut()[h..2 * h].fill(value);
            }
        }
    }
    let fc = Linear::new(h, 1, true, &mut rng);
    let mut params = rnn.named_parameters();
    params.extend(fc.named_parameters().into_iter().map(|(n, p)| (format!("fc.{n}"), p)));
    let mut data = Rng::new(seed + 1000);
    let (probe_x, probe_y) = adding_batch(BATCH, t, &mut data);
    let init = grad_norms(&rnn, &fc, &probe_x, &probe_y, h);
    let mut opt = Optimizer::new(params, AdamConfig { lr: 0.01, ..Default::default() })?;
    let (mut clipped, mut largest_norm) = (0, 0.0f32);
    for _ in 0..args.train_steps {
        let (x, y) = adding_batch(BATCH, t, &mut data);
        opt.zero_grad();
        loss(&rnn, &fc, &x, &y, None).0.backward();
        let norm = match clip {
            Some(c) => clip_grad_norm(opt.params(), c, false)?,
            None => saddle::optim::global_grad_norm(opt.params()),
        };
        largest_norm = largest_norm.max(norm);
        clipped += clip.is_some_and(|c| norm > c) as usize;
        opt.step();
        bar.inc(1);
    }
    let (x, y) = adding_batch(TEST, t, &mut data);
    let (mse, accuracy) = saddle::no_grad(|| loss(&rnn, &fc, &x, &y, None));
    let mse = mse.item();
    opt.zero_grad();
    let flow = grad_norms(&rnn, &fc, &probe_x, &probe_y, h);
    Ok(Trained { mse, accuracy, init, flow, clipped, largest_norm })
}

/// The lecture's `h_t = w·h_(t−1)` over 1000 steps for w = 0.99, 1 and 1.01: printed and plotted.
fn lecture_recurrence(out: &std::path::Path) -> Result<Vec<PathBuf>> {
    // The lecture's recurrence.
    println!("h_t = w·h_(t−1), h_0 = 1, 1000 steps");
    println!("{:>6}  {:>12}  {:>14}", "w", "h_1000", "dh_1000/dw");
    let mut curves = Vec::new();
    for w0 in [0.99f32, 1.0, 1.01] {
        let w = Tensor::from_vec(vec![w0], &[1]).requires_grad();
        let mut h = Tensor::ones(&[1]);
        let mut points = vec![(0.0, 1.0)];
        for t in 1..=1000 {
            h = h.mul(&w);
            points.push((t as f64, h.item() as f64));
        }
        h.sum_all().backward();
        println!("{w0:>6}  {:>12.4e}  {:>14.4e}", h.item(), w.grad().map_or(f32::NAN, |g| g.item()));
        curves.push(Series { name: format!("w = {w0}"), points });
    }
    plot::lines(&out.join("recurrence"), "h_t = w·h_(t−1): vanishing and exploding", "t", "h_t", &curves, true)
}

fn indexed(v: &[f64]) -> Vec<(f64, f64)> {
    v.iter().enumerate().map(|(i, &g)| ((i + 1) as f64, g)).collect()
}

fn report(label: &str, norms: &[f64], accuracy: &str) {
    let (first, last) = (norms[0], norms[norms.len() - 1]);
    println!("{label:<22} {first:>12.3e} {last:>12.3e} {:>11.3e}  {accuracy}", first / last.max(1e-30));
}
