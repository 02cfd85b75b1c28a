//! The verdicts on cases whose truth is known: each must come out right, and
//! prints the numbers it rests on (`cargo test -- --nocapture` shows them).

use saddle::data::{load_idx_dir, ImageDataset};
use saddle::diagnose::{
    cue_batch, curvature, diagnose, final_weights, time_flow, Curvature, Evidence, Finding, Monitor, Objective, Verdict,
};
use saddle::nn::{lenet5, Linear, Module, Recurrent, RecurrentConfig};
use saddle::ops::{CrossEntropyOptions, Reduction};
use saddle::optim::{clip_grad_norm, global_grad_norm, AdamConfig, LrScheduler, Optimizer, Schedule, SgdConfig};
use saddle::train::{fit, FitOptions, Observer, StepMetrics};
use saddle::{Rng, Tensor};

/// Runs `steps` optimizer steps on `loss(step)`, watched by a [`Monitor`].
fn train(
    opt: &mut Optimizer,
    steps: usize,
    interval: usize,
    clip: Option<f32>,
    loss: impl Fn(usize) -> Tensor,
) -> Monitor {
    let mut monitor = Monitor::new(interval);
    for step in 0..steps {
        opt.zero_grad();
        let l = loss(step);
        l.backward();
        monitor.before_update(step, opt.params()).unwrap();
        let grad_norm = match clip {
            Some(c) => clip_grad_norm(opt.params(), c, false).unwrap(),
            None => global_grad_norm(opt.params()),
        };
        opt.step();
        let m = StepMetrics {
            step,
            epoch: 0,
            steps_per_epoch: steps,
            loss: l.item(),
            lr: opt.lr() as f32,
            grad_norm,
            clipped: clip.is_some_and(|c| grad_norm > c),
            batch_size: 1,
            correct: 0,
            running_loss: 0.0,
            running_accuracy: 0.0,
        };
        monitor.on_step(&m).unwrap();
    }
    monitor
}

fn sgd(params: Vec<(String, Tensor)>, lr: f64) -> Optimizer {
    Optimizer::new(params, SgdConfig { lr, ..Default::default() }).unwrap()
}

/// The verdict on the final weights, printed.
fn final_verdict(case: &str, m: &Monitor, curvature: &Curvature) -> Verdict {
    let e = Evidence { records: m.records(), layers: m.layers(), curvature: Some(curvature), time_flow: None };
    let f = final_weights(&e).unwrap();
    println!("{case}, final weights: {}", f.verdict);
    f.evidence.iter().for_each(|l| println!("    {l}"));
    f.verdict
}

/// The verdict on the plateau that reaches the end of training, printed.
fn last_verdict(case: &str, m: &Monitor, curvature: Option<&Curvature>, flow: Option<&[f64]>) -> Finding {
    let e = Evidence { records: m.records(), layers: m.layers(), curvature, time_flow: flow };
    let findings = diagnose(&e);
    println!("{case}:");
    for f in &findings {
        println!("  steps {}–{}: {}", f.from_step, f.to_step, f.verdict);
        f.evidence.iter().for_each(|l| println!("    {l}"));
    }
    let last = findings.last().unwrap_or_else(|| panic!("{case}: no plateau found"));
    assert_eq!(last.to_step + 1, m.records().last().unwrap().step + 1, "{case}: the last plateau must reach the end");
    last.clone()
}

#[test]
fn x2_minus_y2_at_the_origin_is_a_saddle() {
    let p = Tensor::from_vec(vec![0.0, 0.0], &[2]).requires_grad();
    let signs = Tensor::from_vec(vec![1.0, -1.0], &[2]);
    let loss = || p.mul(&p).mul(&signs).sum_all();
    let mut opt = sgd(vec![("p".into(), p.clone())], 0.1);
    let m = train(&mut opt, 100, 1, None, |_| loss());
    let f = Objective::new(vec![p.clone()], &loss);
    let c = curvature(&f, 2, 0);
    assert_eq!(last_verdict("x² − y² from the origin", &m, Some(&c), None).verdict, Verdict::SaddlePoint);
    assert_eq!(final_verdict("x² − y² from the origin", &m, &c), Verdict::SaddlePoint);
    assert!(c.escape.after < c.escape.before - 0.01);
    // A perturbed start rolls off the saddle.
    let q = Tensor::from_vec(vec![0.0, 1e-3], &[2]).requires_grad();
    let mut opt = sgd(vec![("q".into(), q.clone())], 0.1);
    train(&mut opt, 50, 1, None, |_| q.mul(&q).mul(&signs).sum_all());
    assert!(q.to_vec()[1].abs() > 1.0, "perturbed start: y = {}", q.to_vec()[1]);
}

#[test]
fn a_deep_linear_network_at_zero_is_a_saddle() {
    // Y = X Aᵀ learned by X W1ᵀ W2ᵀ from W1 = W2 = 0: every gradient is a
    // product with the other weight, zero, so descent never leaves.
    let mut rng = Rng::new(1);
    let x = Tensor::normal(&[64, 4], 0.0, 1.0, &mut rng);
    let a = Tensor::normal(&[3, 4], 0.0, 1.0, &mut rng);
    let y = x.linear(&a, None);
    let w1 = Tensor::zeros(&[5, 4]).requires_grad();
    let w2 = Tensor::zeros(&[3, 5]).requires_grad();
    let loss = || x.linear(&w1, None).linear(&w2, None).mse_loss(&y, Reduction::Mean);
    let mut opt = sgd(vec![("0.weight".into(), w1.clone()), ("1.weight".into(), w2.clone())], 0.05);
    let m = train(&mut opt, 200, 5, None, |_| loss());
    let f = Objective::new(vec![w1.clone(), w2.clone()], &loss);
    let c = curvature(&f, 35, 0);
    assert_eq!(last_verdict("deep linear network at zero", &m, Some(&c), None).verdict, Verdict::SaddlePoint);
    assert_eq!(final_verdict("deep linear network at zero", &m, &c), Verdict::SaddlePoint);
    assert!(c.escape.after < c.escape.before * 0.99);
}

#[test]
fn a_learning_rate_far_too_large_on_a_ravine_oscillates() {
    // L = ½x² + √(1 + (10y)²) − 1: a ravine along x whose walls rise linearly.
    // Stable descent across it needs η < 2/10² = 0.02; with η = 0.05 the
    // iterate bounces between the walls at |y| ≈ 0.23.
    let p = Tensor::from_vec(vec![1.0, 0.5], &[2]).requires_grad();
    let loss = || {
        let xy = p.mul(&Tensor::from_vec(vec![1.0, 10.0], &[2]));
        let sq = xy.mul(&xy);
        let x2 = sq.narrow(0, 0, 1).mul_scalar(0.5);
        let wall = sq.narrow(0, 1, 1).add_scalar(1.0).sqrt().add_scalar(-1.0);
        x2.add(&wall).sum_all()
    };
    let mut opt = sgd(vec![("p".into(), p.clone())], 0.05);
    let m = train(&mut opt, 400, 1, None, |_| loss());
    assert_eq!(last_verdict("ravine, η = 0.05", &m, None, None).verdict, Verdict::Oscillating);
}

#[test]
fn a_learning_rate_far_too_small_barely_moves() {
    // The same ravine from the same start with η = 1e-7.
    let p = Tensor::from_vec(vec![1.0, 0.5], &[2]).requires_grad();
    let loss = || p.mul(&p).sum_all();
    let mut opt = sgd(vec![("p".into(), p.clone())], 1e-7);
    let m = train(&mut opt, 200, 1, None, |_| loss());
    assert_eq!(last_verdict("bowl, η = 1e-7", &m, None, None).verdict, Verdict::LearningRateTooSmall);
}

#[test]
fn a_learning_rate_past_the_stability_limit_explodes() {
    // L = 5‖p‖²: descent diverges for η > 2/10; with η = 0.25 each step
    // multiplies p, and the gradient, by 1 − 10·0.25 = −1.5.
    let p = Tensor::from_vec(vec![1.0, 0.5], &[2]).requires_grad();
    let loss = || p.mul(&p).sum_all().mul_scalar(5.0);
    let mut opt = sgd(vec![("p".into(), p.clone())], 0.25);
    let m = train(&mut opt, 100, 1, None, |_| loss());
    assert_eq!(last_verdict("bowl, η = 0.25", &m, None, None).verdict, Verdict::Exploding);
}

#[test]
fn a_plain_rnn_on_long_sequences_vanishes() {
    let (steps, hidden, batch) = (100, 32, 32);
    let mut rng = Rng::new(0);
    let cfg = RecurrentConfig { batch_first: true, ..RecurrentConfig::new(2, hidden) };
    let rnn = Recurrent::rnn(cfg, &mut rng);
    let fc = Linear::new(hidden, 2, true, &mut rng);
    let loss = |x: &Tensor, y: &[i64], probes: Option<&[Tensor]>| {
        let (out, _) = rnn.forward_probed(x, None, None, probes);
        fc.forward(&out.narrow(1, steps - 1, 1).squeeze(1)).cross_entropy(y, CrossEntropyOptions::default())
    };
    let mut params = rnn.named_parameters();
    params.extend(fc.named_parameters().into_iter().map(|(n, p)| (format!("fc.{n}"), p)));
    let mut opt = Optimizer::new(params, AdamConfig { lr: 0.001, ..Default::default() }).unwrap();
    let batches: Vec<(Tensor, Vec<i64>)> = (0..300).map(|_| cue_batch(batch, steps, &mut rng)).collect();
    let m = train(&mut opt, 300, 10, None, |s| loss(&batches[s].0, &batches[s].1, None));
    let (x, y) = cue_batch(batch, steps, &mut rng);
    let flow = time_flow(steps, &[batch, hidden], |probes| loss(&x, &y, Some(probes)));
    assert_eq!(last_verdict("Elman RNN, cue 100 steps back", &m, None, Some(&flow)).verdict, Verdict::Vanishing);
}

#[test]
fn lenet_after_training_on_mnist_is_minimum_like() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    let (train_set, _) = load_idx_dir(&dir).unwrap();
    let n = 512;
    let data = ImageDataset {
        images: train_set.images[..n * 784].to_vec(),
        labels: train_set.labels[..n].to_vec(),
        ..train_set
    };
    let mut model = lenet5([1, 28, 28], 10, &mut Rng::new(0)).unwrap();
    let mut opt = Optimizer::new(model.named_parameters(), AdamConfig::default()).unwrap();
    let o = FitOptions { epochs: 32, batch_size: 32, ..Default::default() };
    let mut lr = LrScheduler::new(Schedule::Cosine { t_max: None, eta_min: 0.0 }, opt.lr(), 512).unwrap();
    let mut monitor = Monitor::new(2);
    fit(&mut model, &mut opt, &mut lr, &data, None, &o, &mut [&mut monitor]).unwrap();
    model.set_training(false);
    let probe: Vec<usize> = (0..512).collect();
    let (x, y) = saddle::data::Dataset::batch(&data, &probe);
    let loss = || model.forward(&x).cross_entropy(&y, CrossEntropyOptions::default());
    let params: Vec<Tensor> = model.named_parameters().into_iter().map(|(_, p)| p).collect();
    let c = curvature(&Objective::new(params, &loss), 20, 0);
    assert_eq!(
        last_verdict("LeNet-5 after 32 epochs on 512 MNIST images", &monitor, Some(&c), None).verdict,
        Verdict::LocalMinimum
    );
    assert_eq!(final_verdict("LeNet-5 after 32 epochs on 512 MNIST images", &monitor, &c), Verdict::LocalMinimum);
}
