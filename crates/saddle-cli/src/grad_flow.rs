//! `saddle grad-flow`: vanishing and exploding gradients made visible.
//!
//! Two measurements. The lecture's one-unit linear recurrence `h_t = w·h_{t−1}`,
//! `h_0 = 1`, over 1000 steps: `h_1000 = w^1000` is about 0 for w = 0.99, 1
//! for w = 1 and about 20 000 for w = 1.01, and so is its gradient
//! `1000·w^999`. Then a task whose cue lies far back: the first of T inputs
//! says which of two classes the sequence belongs to, the rest is noise, and
//! the class is read from the last state. For an Elman RNN and an LSTM, at
//! initialization and after training, with and without clipping, the norm of
//! `∂L/∂h_t` at every step t shows how much of the loss reaches the cue.

use crate::plot::{self, Series};
use clap::Args;
use saddle::diagnose::{cue_batch, time_flow};
use saddle::nn::{Linear, Module, Recurrent, RecurrentConfig};
use saddle::ops::CrossEntropyOptions;
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
    /// Sequence length T of the cue task: the cue is at the first step.
    #[arg(long, default_value_t = 30, value_parser = crate::at_least::<2>)]
    steps: u32,
    /// Training steps of the cue task.
    #[arg(long, default_value_t = 500)]
    train_steps: usize,
    /// Hidden units.
    #[arg(long, default_value_t = 32, value_parser = crate::at_least::<1>)]
    hidden_size: u32,
    /// Clipping threshold for the clipped runs.
    #[arg(long, default_value_t = 1.0)]
    clip_norm: f32,
    /// Seed of initialization and data.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

const BATCH: usize = 64;

/// The loss and accuracy of `rnn` + `fc` on a batch, with probes after every step.
fn loss(rnn: &Recurrent, fc: &Linear, x: &Tensor, y: &[i64], probes: Option<&[Tensor]>) -> (Tensor, f32) {
    let (out, _) = rnn.forward_probed(x, None, None, probes);
    let t = out.shape()[1];
    let logits = fc.forward(&out.narrow(1, t - 1, 1).squeeze(1));
    let correct = logits.argmax(1).iter().zip(y).filter(|(p, y)| **p as i64 == **y).count();
    (logits.cross_entropy(y, CrossEntropyOptions::default()), correct as f32 / y.len() as f32)
}

/// ‖∂L/∂h_t‖ for t = 1…T on one batch (Frobenius norm over the batch).
fn grad_norms(rnn: &Recurrent, fc: &Linear, x: &Tensor, y: &[i64], h: usize) -> Vec<f64> {
    time_flow(x.shape()[1], &[BATCH, h], |probes| loss(rnn, fc, x, y, Some(probes)).0)
}

pub fn run(args: GradFlowArgs) -> Result<()> {
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let mut written = lecture_recurrence(&args.out)?;
    // The cue task.
    let (t, h) = (args.steps as usize, args.hidden_size as usize);
    println!();
    println!("cue at step 1 of {t}, class read at step {t}; ‖∂L/∂h_t‖ on one batch of {BATCH}");
    println!("{:<24} {:>12} {:>12} {:>12} {:>9}", "model", "‖∂L/∂h_1‖", "‖∂L/∂h_T‖", "h_1 / h_T", "accuracy");
    let mut flows = Vec::new();
    for (name, lstm) in [("rnn", false), ("lstm", true)] {
        for clip in [None, Some(args.clip_norm)] {
            let mut rng = Rng::new(args.seed);
            let cfg = RecurrentConfig { batch_first: true, ..RecurrentConfig::new(2, h) };
            let rnn = if lstm { Recurrent::lstm(cfg, &mut rng) } else { Recurrent::rnn(cfg, &mut rng) };
            let fc = Linear::new(h, 2, true, &mut rng);
            let mut params = rnn.named_parameters();
            params.extend(fc.named_parameters().into_iter().map(|(n, p)| (format!("fc.{n}"), p)));
            let mut data = Rng::new(args.seed + 1);
            let (probe_x, probe_y) = cue_batch(BATCH, t, &mut data);
            if clip.is_none() {
                let init = grad_norms(&rnn, &fc, &probe_x, &probe_y, h);
                report(&format!("{name} at initialization"), &init, f32::NAN);
                flows.push(Series { name: format!("{name}, initialization"), points: indexed(&init) });
            }
            let opt = train_on_cues(&rnn, &fc, params, args.train_steps, clip, t, &mut data)?;
            let (x, y) = cue_batch(BATCH, t, &mut data);
            let accuracy = saddle::no_grad(|| loss(&rnn, &fc, &x, &y, None).1);
            opt.zero_grad();
            let trained = grad_norms(&rnn, &fc, &probe_x, &probe_y, h);
            let label = match clip {
                Some(c) => format!("{name}, trained, clip {c}"),
                None => format!("{name}, trained"),
            };
            report(&label, &trained, accuracy);
            flows.push(Series { name: label, points: indexed(&trained) });
        }
    }
    let title = format!("gradient flowing back through {t} steps: ‖∂L/∂h_t‖");
    written.extend(plot::lines(&args.out.join("grad-flow"), &title, "step t", "‖∂L/∂h_t‖", &flows, true)?);
    println!();
    println!("plots     {}", written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
    Ok(())
}

/// `steps` steps of Adam on fresh cue batches of `t` steps, clipped to `clip`.
fn train_on_cues(
    rnn: &Recurrent,
    fc: &Linear,
    params: Vec<(String, Tensor)>,
    steps: usize,
    clip: Option<f32>,
    t: usize,
    data: &mut Rng,
) -> Result<Optimizer> {
    let mut opt = Optimizer::new(params, AdamConfig { lr: 0.01, ..Default::default() })?;
    for _ in 0..steps {
        let (x, y) = cue_batch(BATCH, t, data);
        opt.zero_grad();
        loss(rnn, fc, &x, &y, None).0.backward();
        if let Some(c) = clip {
            clip_grad_norm(opt.params(), c, false)?;
        }
        opt.step();
    }
    Ok(opt)
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

fn report(label: &str, norms: &[f64], accuracy: f32) {
    let (first, last) = (norms[0], norms[norms.len() - 1]);
    let acc = if accuracy.is_nan() { "—".to_string() } else { format!("{:.1}%", 100.0 * accuracy) };
    println!("{label:<24} {first:>12.3e} {last:>12.3e} {:>12.3e} {acc:>9}", first / last.max(1e-30));
}
