//! `saddle predict`: classify one picture with a trained run.

use clap::Args;
use saddle::data::GreyImage;
use saddle::nn::Module;
use saddle::train::Run;
use saddle::{no_grad, Error, Result, Tensor};
use std::path::PathBuf;

#[derive(Args)]
#[command(
    after_help = "The picture (PNG or PGM, any size) is converted to grey and resized to the model's input.\nDark ink on a light background is inverted to match MNIST's light ink on black."
)]
pub struct PredictArgs {
    /// A run directory written by `saddle train`.
    run: PathBuf,
    /// The picture to classify.
    image: PathBuf,
}

pub fn run(args: PredictArgs) -> Result<()> {
    let run = Run::open(&args.run)?;
    let Some([c, h, w]) = run.config.input else {
        return Err(Error::config(
            "RUN",
            "the run holds a tagger; predict classifies pictures (`saddle tag` tags words)",
        ));
    };
    if c != 1 {
        return Err(Error::config(
            "RUN",
            format!("the model takes {c} channels; predict handles grey (1-channel) models"),
        ));
    }
    let picture = GreyImage::open(&args.image)?;
    let model = &run.model;
    let mut small = picture.resize(h, w);
    let inverted = small.border_mean() > 0.5;
    if inverted {
        small.pixels.iter_mut().for_each(|p| *p = 1.0 - *p);
    }
    let norm = run.config.normalization.unwrap_or(saddle::data::Normalization { mean: 0.0, std: 1.0 });
    let x: Vec<f32> = small.pixels.iter().map(|p| (p - norm.mean) / norm.std).collect();
    let probs = no_grad(|| model.forward(&Tensor::from_vec(x, &[1, 1, h, w])).softmax(1)).to_vec();
    let best = probs.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i);
    println!(
        "{}: {}×{} pixels{}",
        args.image.display(),
        picture.width,
        picture.height,
        if inverted { ", inverted (dark ink on light)" } else { "" }
    );
    println!("class {best} ({:.2}%)", 100.0 * probs[best]);
    for (class, p) in probs.iter().enumerate() {
        let bar = "#".repeat((p * 40.0).round() as usize);
        println!("  {class:>2}  {:>6.2}%  {bar}", 100.0 * p);
    }
    Ok(())
}
