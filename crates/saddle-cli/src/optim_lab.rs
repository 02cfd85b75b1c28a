//! `saddle optim-lab`: every optimizer on 2-D error surfaces and on MNIST, plotted.
//!
//! The surfaces are the lecture's: an ill-conditioned ravine, where plain
//! descent zig-zags across and crawls along; Rosenbrock's curved valley; the
//! saddle x² − y², where descent slows to a crawl near the critical point;
//! and a plateau, where the gradient is tiny far from the minimum and only
//! optimizers that divide by the gradient's size keep moving.

use crate::plot::{self, Series};
use clap::Args;
use saddle::data::{bundled_mnist, load_idx_dir, Dataset, ImageDataset};
use saddle::nn::{lenet5, Module};
use saddle::optim::{Family, LrScheduler, Optimizer};
use saddle::train::{evaluate, fit, FitOptions, Observer, StepMetrics};
use saddle::{Error, Result, Rng, Tensor};
use std::path::PathBuf;

#[derive(Args)]
#[command(
    after_help = "Writes, for each surface, surface-NAME.png/.svg (trajectories over the contours) and\nsurface-NAME-loss.png/.svg (loss per step), and mnist-loss.png/.svg (training loss of one epoch\nof LeNet-5 per optimizer, from the same seed)."
)]
pub struct OptimLabArgs {
    /// Folder for the plots.
    #[arg(long, default_value = "optim-lab")]
    out: PathBuf,
    /// Training images for the MNIST comparison (0 skips it).
    #[arg(long, default_value_t = 60000)]
    mnist_images: usize,
    /// Dataset folder in MNIST's IDX layout [default: the bundled data/mnist].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Seed of LeNet-5's initialization and the batch order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// A 2-D surface: its loss as saddle ops, its plot window, start and step sizes.
struct Surface {
    name: &'static str,
    title: &'static str,
    loss: fn(&Tensor, &Tensor) -> Tensor,
    start: [f32; 2],
    x: (f64, f64),
    y: (f64, f64),
    steps: usize,
    /// Learning rate for sgd, momentum/nesterov, adagrad, rmsprop, adam/adamw.
    lr: [f64; 5],
    log_loss: bool,
}

fn surfaces() -> Vec<Surface> {
    vec![
        Surface {
            name: "ravine",
            title: "ravine: f = x²/2 + 25y²",
            loss: |x, y| x.powf(2.0).mul_scalar(0.5).add(&y.powf(2.0).mul_scalar(25.0)),
            start: [-8.0, 1.5],
            x: (-9.0, 2.0),
            y: (-2.5, 2.5),
            steps: 150,
            lr: [0.038, 0.01, 1.0, 0.1, 0.3],
            log_loss: true,
        },
        Surface {
            name: "rosenbrock",
            title: "Rosenbrock: f = (1 − x)² + 100(y − x²)²",
            loss: |x, y| x.neg().add_scalar(1.0).powf(2.0).add(&y.sub(&x.powf(2.0)).powf(2.0).mul_scalar(100.0)),
            start: [-1.5, 2.0],
            x: (-2.0, 2.0),
            y: (-1.0, 3.0),
            steps: 1500,
            lr: [2e-4, 1e-4, 0.5, 3e-3, 0.03],
            log_loss: true,
        },
        Surface {
            name: "saddle",
            title: "saddle: f = x² − y², from near the ridge y = 0",
            loss: |x, y| x.powf(2.0).sub(&y.powf(2.0)),
            start: [1.8, 1e-3],
            x: (-2.0, 2.0),
            y: (-2.0, 2.0),
            steps: 60,
            lr: [0.05, 0.05, 0.2, 0.05, 0.1],
            log_loss: false,
        },
        Surface {
            name: "plateau",
            title: "plateau: f = 1 − exp(−(x² + y²)/2)",
            loss: |x, y| x.powf(2.0).add(&y.powf(2.0)).mul_scalar(-0.5).exp().neg().add_scalar(1.0),
            start: [3.2, 3.0],
            x: (-4.5, 4.5),
            y: (-4.5, 4.5),
            steps: 300,
            lr: [0.5, 0.5, 0.5, 0.02, 0.05],
            log_loss: true,
        },
    ]
}

fn lr_for(s: &Surface, o: Family) -> f64 {
    match o {
        Family::Sgd => s.lr[0],
        Family::Momentum | Family::Nesterov => s.lr[1],
        Family::Adagrad => s.lr[2],
        Family::RmsProp => s.lr[3],
        Family::Adam | Family::AdamW => s.lr[4],
    }
}

/// Points of a curve or a path.
type Points = Vec<(f64, f64)>;

/// The path and the loss per step of `o` on `s`.
fn descend(s: &Surface, o: Family) -> Result<(Points, Points)> {
    let p = Tensor::from_vec(s.start.to_vec(), &[2]).requires_grad();
    let mut opt = Optimizer::new(vec![("p".into(), p.clone())], o.spec().with_lr(lr_for(s, o)))?;
    let (mut path, mut losses) = (Vec::with_capacity(s.steps + 1), Vec::with_capacity(s.steps));
    for step in 0..s.steps {
        let v = p.to_vec();
        path.push((v[0] as f64, v[1] as f64));
        let loss = (s.loss)(&p.narrow(0, 0, 1), &p.narrow(0, 1, 1)).sum_all();
        losses.push((step as f64, loss.item() as f64));
        if !loss.item().is_finite() || v.iter().any(|c| c.abs() > 1e3) {
            break; // diverged or escaped far away: the plot shows where it went
        }
        opt.zero_grad();
        loss.backward();
        opt.step();
    }
    let v = p.to_vec();
    path.push((v[0] as f64, v[1] as f64));
    Ok((path, losses))
}

/// Collects the loss of every step.
struct Losses(Vec<(f64, f64)>);

impl Observer for Losses {
    fn on_step(&mut self, m: &StepMetrics) -> Result<()> {
        self.0.push((m.step as f64, m.loss as f64));
        Ok(())
    }
}

/// A running mean over `w` steps, so that curves of noisy minibatch losses can be told apart.
fn smooth(points: &[(f64, f64)], w: usize) -> Vec<(f64, f64)> {
    let mut sum = 0.0;
    points
        .iter()
        .enumerate()
        .map(|(i, &(x, y))| {
            sum += y;
            if i >= w {
                sum -= points[i - w].1;
            }
            (x, sum / (i + 1).min(w) as f64)
        })
        .collect()
}

pub fn run(args: OptimLabArgs) -> Result<()> {
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let mut written = Vec::new();
    println!("final loss after each surface's steps (lower is better)");
    print!("{:>12}", "");
    Family::ALL.iter().for_each(|o| print!("{:>11}", o.name()));
    println!();
    for s in surfaces() {
        written.extend(surface(&s, &args.out)?);
    }
    if args.mnist_images > 0 {
        written.extend(mnist(&args)?);
    }
    println!();
    println!("plots     {}", written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join("\n          "));
    Ok(())
}

/// Every optimizer on surface `s`: a row of final losses, the paths over the contours, the losses per step.
fn surface(s: &Surface, out: &std::path::Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let (mut paths, mut curves) = (Vec::new(), Vec::new());
    print!("{:>12}", s.name);
    for o in Family::ALL {
        let (path, losses) = descend(s, o)?;
        print!("{:>11.3e}", losses.last().map_or(f64::NAN, |l| l.1));
        // The loss curve ends where the path leaves the window, so that a path
        // escaping down an unbounded surface (the saddle) does not flatten the others.
        let inside = |&(x, y): &(f64, f64)| (s.x.0..=s.x.1).contains(&x) && (s.y.0..=s.y.1).contains(&y);
        let (name, kept) = match path.iter().position(|p| !inside(p)) {
            Some(k) => (format!("{} (left the window at step {k})", o.name()), k.min(losses.len())),
            None => (o.name().to_string(), losses.len()),
        };
        curves.push(Series { name, points: losses[..kept].to_vec() });
        paths.push(Series { name: format!("{} (η={})", o.name(), lr_for(s, o)), points: path });
    }
    println!();
    let f = s.loss;
    let value = move |x: f64, y: f64| {
        let t = |v: f64| Tensor::from_vec(vec![v as f32], &[1]);
        f(&t(x), &t(y)).item() as f64
    };
    written.extend(plot::trajectories(&out.join(format!("surface-{}", s.name)), s.title, &value, s.x, s.y, &paths)?);
    let title = format!("{}: loss per step", s.name);
    written.extend(plot::lines(
        &out.join(format!("surface-{}-loss", s.name)),
        &title,
        "step",
        "loss",
        &curves,
        s.log_loss,
    )?);
    Ok(written)
}

/// One epoch of LeNet-5 on MNIST with every optimizer, and their loss curves.
fn mnist(args: &OptimLabArgs) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let dir = args.data.clone().unwrap_or_else(bundled_mnist);
    let (train, test) = load_idx_dir(&dir)?;
    let n = args.mnist_images.min(train.len());
    let size: usize = train.shape.iter().product();
    let subset =
        ImageDataset { images: train.images[..n * size].to_vec(), labels: train.labels[..n].to_vec(), ..train.clone() };
    // The losses compared: on a fixed set of the training images and on the test set, after the epoch
    // (the last batch's loss depends on which 64 images it held).
    let fixed = n.min(5000);
    let probe = ImageDataset {
        images: subset.images[..fixed * size].to_vec(),
        labels: subset.labels[..fixed].to_vec(),
        ..subset.clone()
    };
    println!();
    println!("one epoch of LeNet-5 on {n} images of {}, seed {}; losses after the epoch, on the first {fixed} training images and on the {} test images", dir.display(), args.seed, test.len());
    let mut curves = Vec::new();
    for o in Family::ALL {
        let mut model = lenet5(subset.shape, train.classes(), &mut Rng::new(args.seed))?;
        let mut opt = Optimizer::new(model.named_parameters(), o.spec())?;
        let mut losses = Losses(Vec::new());
        let options = FitOptions { epochs: 1, batch_size: 64, seed: args.seed, ..Default::default() };
        let mut lr = LrScheduler::constant(o.default_lr());
        let report = fit(&mut model, &mut opt, &mut lr, &subset, Some(&test), &options, &mut [&mut losses])?;
        let (test_loss, test_acc) = report.epochs[0].test.unwrap_or((f32::NAN, f32::NAN));
        let train_loss = evaluate(&mut model, &probe, 1000).loss;
        println!(
            "  {:<9} η={:<6} train loss {train_loss:.4}  test loss {test_loss:.4}  test accuracy {:.2}%  ({:.1} s)",
            o.name(),
            o.default_lr(),
            100.0 * test_acc,
            report.train_seconds
        );
        curves.push(Series { name: format!("{} (η={})", o.name(), o.default_lr()), points: smooth(&losses.0, 20) });
    }
    let title = format!("LeNet-5 on MNIST: training loss, one epoch ({} images)", subset.len());
    written.extend(plot::lines(
        &args.out.join("mnist-loss"),
        &title,
        "step",
        "loss (mean of 20 steps)",
        &curves,
        true,
    )?);
    Ok(written)
}
