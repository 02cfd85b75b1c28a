//! Train LeNet-5 on MNIST with saddle's building blocks: a dataset, a model,
//! an optimizer, a schedule and `fit()`. (`examples/runs.rs` does the same
//! through the run API, with a run directory, checkpoints and resume.)
//!
//! ```sh
//! cargo run --release -p saddle-cli --example mnist            # bundled data/mnist
//! cargo run --release -p saddle-cli --example mnist -- DIR 3   # another IDX folder, 3 epochs
//! ```

use saddle::data::load_idx_dir;
use saddle::nn::{lenet5, save_state_dict, Module};
use saddle::optim::{AdamConfig, LrScheduler, Optimizer, Schedule};
use saddle::train::{evaluate, fit, EpochMetrics, FitOptions, Observer};
use saddle::Rng;
use std::path::PathBuf;

/// Prints one line per epoch.
struct PrintEpochs;

impl Observer for PrintEpochs {
    fn on_epoch(&mut self, m: &EpochMetrics) -> saddle::Result<()> {
        let (test_loss, test_acc) = m.test.unwrap_or((f32::NAN, f32::NAN));
        println!(
            "epoch {}: train loss {:.4}, test loss {test_loss:.4}, test accuracy {:.2}% ({:.1} s)",
            m.epoch + 1,
            m.train_loss,
            100.0 * test_acc,
            m.train_seconds
        );
        Ok(())
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> saddle::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist"));
    let epochs = args.next().and_then(|e| e.parse().ok()).unwrap_or(2);

    let (train, test) = load_idx_dir(&dir)?; // images stay bytes; batches are normalized on the fly
    let mut model = lenet5(train.shape, train.classes(), &mut Rng::new(0))?;
    let mut opt = Optimizer::new(model.named_parameters(), AdamConfig::default())?;
    println!("LeNet-5 with {} parameters on {} images", model.num_parameters(), train.labels.len());

    let options = FitOptions { epochs, batch_size: 64, seed: 0, ..Default::default() };
    // The schedule owns the learning rate: η_t along half a cosine over every step of the run.
    let steps = epochs * train.labels.len().div_ceil(options.batch_size);
    let mut lr = LrScheduler::new(Schedule::Cosine { t_max: None, eta_min: 0.0 }, opt.lr(), steps)?;
    fit(&mut model, &mut opt, &mut lr, &train, Some(&test), &options, &mut [&mut PrintEpochs])?;

    let result = evaluate(&mut model, &test, 1000);
    println!("test accuracy {:.2}%", 100.0 * result.accuracy);
    let out = std::env::temp_dir().join("lenet5.safetensors");
    save_state_dict(&model, &out)?; // loads into torch.nn.Sequential LeNet-5 as is
    println!("weights saved to {}", out.display());
    Ok(())
}
