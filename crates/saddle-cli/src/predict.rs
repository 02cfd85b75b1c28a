//! `saddle predict`: classify one picture with a trained run.

use clap::Args;
use saddle::data::{GreyImage, Normalization, RgbImage};
use saddle::nn::Module;
use saddle::train::Run;
use saddle::{no_grad, Error, Result, Tensor};
use std::path::PathBuf;

#[derive(Args)]
#[command(
    after_help = "For a grey model (MNIST) the picture (PNG or PGM, any size) is converted to grey and prepared\nas MNIST's digits were: dark ink on a light background inverted to light ink on black, cropped to\nthe ink, scaled so its longer side is 20 of 28 pixels, and centred by its centre of mass.\nFor a colour model the picture (JPEG or PNG, any size) is resized to the model's input with an\nantialiasing filter, and the five likeliest classes are printed by name."
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
    let norm = run.config.normalization.clone().unwrap_or(Normalization { mean: vec![0.0; c], std: vec![1.0; c] });
    let (x, described) = match c {
        1 => {
            let picture = GreyImage::open(&args.image)?;
            let digit = picture.as_mnist_digit(h, w);
            let x: Vec<f32> = digit.image.pixels.iter().map(|p| (p - norm.mean[0]) / norm.std[0]).collect();
            let note = if digit.inverted { ", inverted (dark ink on light)" } else { "" };
            let (pw, ph) = (picture.width, picture.height);
            (x, format!("{pw}×{ph} pixels, grey{note}, cropped to the ink and centred by mass as MNIST's digits"))
        }
        3 => {
            let picture = RgbImage::open(&args.image)?;
            let small = picture.resize(h, w);
            let x = small
                .pixels
                .chunks_exact(h * w)
                .enumerate()
                .flat_map(|(ch, plane)| plane.iter().map(move |&p| (ch, p)));
            let x: Vec<f32> = x.map(|(ch, p)| norm.apply(ch, p)).collect();
            (x, format!("{}×{} pixels, resized to {w}×{h}", picture.width, picture.height))
        }
        _ => {
            return Err(Error::config(
                "RUN",
                format!("the model takes {c} channels; predict handles grey and RGB models"),
            ))
        }
    };
    let model = &run.model;
    let probs = no_grad(|| model.forward(&Tensor::from_vec(x, &[1, c, h, w])).softmax(1)).to_vec();
    let name = |k: usize| run.config.class_names.as_ref().map_or(k.to_string(), |n| n[k].clone());
    let mut ranked: Vec<usize> = (0..probs.len()).collect();
    ranked.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    println!("{}: {described}", args.image.display());
    println!("class {} ({:.2}%)", name(ranked[0]), 100.0 * probs[ranked[0]]);
    // Digits: every class in order; named classes: the five likeliest.
    let shown: Vec<usize> = if run.config.class_names.is_some() {
        ranked.into_iter().take(5).collect()
    } else {
        (0..probs.len()).collect()
    };
    let width = shown.iter().map(|&k| name(k).chars().count()).max().unwrap_or(2).max(2);
    for k in shown {
        let bar = "#".repeat((probs[k] * 40.0).round() as usize);
        println!("  {:>width$}  {:>6.2}%  {bar}", name(k), 100.0 * probs[k]);
    }
    Ok(())
}
