//! `saddle train images` end to end on colour pictures the tests write: image
//! folders of PNG and JPEG files of several sizes, a tiny CIFAR-10 binary
//! set, the lecture's 100×100 example, and a clear error with no run left
//! behind for each kind of bad input.
//!
//! The classes differ in hue alone: every pixel of every class has the same
//! R + G + B, so a model that saw grey pictures could not tell them apart.

mod common;

use common::{assert_fails_with, saddle, scratch, stderr, stdout};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const CLASSES: [&str; 3] = ["blue", "green", "red"];

/// A `w × h` RGB picture (interleaved) of class `class` of `classes`: grey
/// 128 plus `d·(cos θ, cos(θ − 120°), cos(θ + 120°))` at the class's hue
/// angle `θ = 360°·class/classes`, with `d` drawn from 30…69 per pixel by
/// `seed`. The three cosines sum to 0, so R + G + B is the same everywhere.
fn hue_picture(class: usize, classes: usize, w: usize, h: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let theta = std::f64::consts::TAU * class as f64 / classes as f64;
    let third = std::f64::consts::TAU / 3.0;
    (0..w * h)
        .flat_map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let d = 30.0 + ((state >> 33) % 40) as f64;
            [theta, theta - third, theta + third].map(|a| (128.0 + d * a.cos()).round() as u8)
        })
        .collect()
}

fn write_png(path: &Path, w: usize, h: usize, rgb: &[u8]) {
    let mut bytes = Vec::new();
    let mut enc = png::Encoder::new(&mut bytes, w as u32, h as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.write_header().unwrap().write_image_data(rgb).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn write_jpeg(path: &Path, w: usize, h: usize, rgb: &[u8]) {
    let mut bytes = Vec::new();
    jpeg_encoder::Encoder::new(&mut bytes, 95).encode(rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// `DIR/train/<class>/` with 16 pictures per class and `DIR/test/<class>/`
/// with 6: PNGs of 12×12 and JPEGs of 20×16 in turn.
fn hue_folders(dir: &Path) {
    for (split, n) in [("train", 16), ("test", 6)] {
        for (c, name) in CLASSES.iter().enumerate() {
            for i in 0..n {
                let seed = (c * 1000 + i + if split == "test" { 500 } else { 0 }) as u64;
                let folder = dir.join(split).join(name);
                if i % 2 == 0 {
                    write_png(&folder.join(format!("{i}.png")), 12, 12, &hue_picture(c, 3, 12, 12, seed));
                } else {
                    write_jpeg(&folder.join(format!("{i}.jpg")), 20, 16, &hue_picture(c, 3, 20, 16, seed));
                }
            }
        }
    }
}

fn summary(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap()
}

/// Trains LeNet-5 on `data` into `run` (Adam at 3e-3, batches of 8, and
/// `extra`), asserts that it succeeded and returns what it printed.
fn train_lenet5(data: &Path, run: &Path, extra: &[&str]) -> String {
    let mut args = vec!["train", "images", "--data", data.to_str().unwrap(), "--model", "lenet5"];
    args.extend(["--batch-size", "8", "--optim", "adam", "--lr", "0.003", "--out", run.to_str().unwrap(), "--quiet"]);
    args.extend(extra);
    let o = saddle(&args);
    assert!(o.status.success(), "train failed: {}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

/// The folders and a LeNet-5 run trained on them at 16×16, shared by the tests.
fn folder_run() -> &'static (PathBuf, PathBuf) {
    static RUN: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = scratch("images-folders");
        let data = dir.join("data");
        hue_folders(&data);
        let run = dir.join("run");
        train_lenet5(&data, &run, &["--size", "16", "--epochs", "8"]);
        (data, run)
    })
}

#[test]
fn folders_of_png_and_jpeg_train_a_model_that_eval_and_predict_name_by_class() {
    let (_, run) = folder_run();
    let acc = summary(run)["held_out_accuracy"].as_f64().unwrap();
    assert!(acc >= 0.9, "three hues, 48 training pictures, 8 epochs: test accuracy {acc}");
    let config = std::fs::read_to_string(run.join("config.json")).unwrap();
    for name in CLASSES {
        assert!(config.contains(&format!("\"{name}\"")), "config.json keeps the class names: {config}");
    }

    let o = saddle(&["eval", run.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("18 test images") && out.contains("confusion matrix"), "{out}");
    for name in CLASSES {
        assert!(out.lines().any(|l| l.trim_start().starts_with(name) && l.ends_with('%')), "no row for {name}: {out}");
    }

    // A red picture of another size and format than any in the training set.
    let picture = run.parent().unwrap().join("red.png");
    write_png(&picture, 30, 24, &hue_picture(2, 3, 30, 24, 77));
    let o = saddle(&["predict", run.to_str().unwrap(), picture.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("class red") && out.contains("30×24 pixels, resized to 16×16"), "{out}");
    assert_eq!(out.lines().filter(|l| l.contains('%')).count(), 1 + 3, "the best class, then all three: {out}");
}

#[test]
fn the_lectures_100_by_100_example_trains_the_default_network_with_buffers_checked_on_load() {
    let (data, _) = folder_run();
    let dir = scratch("images-100");
    let run = dir.join("run");
    let o = saddle(&[
        "train",
        "images",
        "--data",
        data.to_str().unwrap(),
        "--size",
        "100",
        "--epochs",
        "1",
        "--out",
        run.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "train failed: {}{}", stdout(&o), stderr(&o));
    let s = summary(&run);
    assert_eq!(s["model"], "speedrun", "{s}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["tta"], "flip-translate", "the default recipe's TTA is written out");
    assert_eq!(config["schedule"], "triangle:0.23:0.2:0.07");
    let o = saddle(&["eval", run.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The batch-norm buffers are part of the checkpoint: missing or
    // mis-shaped, they are refused by name.
    let (tensors, _) = saddle::nn::read_safetensors(&run.join("model.safetensors")).unwrap();
    assert!(tensors.contains_key("2.norm1.running_var") && tensors.contains_key("2.norm1.num_batches_tracked"));
    let rewrite = |skip: &str, flatten: &str| {
        let copy = dir.join(format!("copy-{skip}{flatten}"));
        std::fs::create_dir_all(&copy).unwrap();
        for f in ["config.json", "metrics.csv", "summary.json"] {
            std::fs::copy(run.join(f), copy.join(f)).unwrap();
        }
        let list: Vec<(String, saddle::Tensor)> = tensors
            .iter()
            .filter(|(k, _)| k.as_str() != skip)
            .map(|(k, (shape, v))| {
                let shape = if k == flatten { vec![1, shape.iter().product()] } else { shape.clone() };
                (k.clone(), saddle::Tensor::from_vec(v.clone(), &shape))
            })
            .collect();
        saddle::nn::write_safetensors(&copy.join("model.safetensors"), &list, None).unwrap();
        saddle(&["eval", copy.to_str().unwrap()])
    };
    assert_fails_with(
        &rewrite("2.norm1.running_var", ""),
        &["model.safetensors", "missing tensor '2.norm1.running_var'"],
    );
    assert_fails_with(&rewrite("", "3.norm2.running_mean"), &["tensor '3.norm2.running_mean' has shape [1, 256]"]);
}

const CIFAR_NAMES: &str = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";

/// `data_batch_1.bin` … `data_batch_5.bin` (40 records each) and
/// `test_batch.bin` (30) of 32×32 pictures of ten hues (a label byte, then
/// the R, G and B planes), and `batches.meta.txt` with CIFAR-10's names.
fn tiny_cifar(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let record = |class: usize, seed: u64| {
        let rgb = hue_picture(class, 10, 32, 32, seed);
        let mut r = vec![class as u8];
        (0..3).for_each(|ch| r.extend(rgb.iter().skip(ch).step_by(3)));
        r
    };
    let batch =
        |first: u64, n: u64| -> Vec<u8> { (first..first + n).flat_map(|i| record(i as usize % 10, i)).collect() };
    for b in 1..=5 {
        std::fs::write(dir.join(format!("data_batch_{b}.bin")), batch(100 * b, 40)).unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), batch(900, 30)).unwrap();
    std::fs::write(dir.join("batches.meta.txt"), CIFAR_NAMES).unwrap();
}

#[test]
fn a_cifar_binary_folder_trains_and_predict_names_the_five_likeliest_classes() {
    let dir = scratch("images-cifar");
    let data = dir.join("cifar");
    tiny_cifar(&data);
    let run = dir.join("run");
    let out = train_lenet5(&data, &run, &["--epochs", "6"]);
    assert!(out.contains("200 training, 30 test images of [3, 32, 32], 10 classes: airplane, automobile"), "{out}");
    let acc = summary(&run)["held_out_accuracy"].as_f64().unwrap();
    assert!(acc >= 0.9, "ten hues in CIFAR's layout: test accuracy {acc}");

    let picture = dir.join("cat.jpg");
    write_jpeg(&picture, 40, 30, &hue_picture(3, 10, 40, 30, 5));
    let o = saddle(&["predict", run.to_str().unwrap(), picture.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("class cat"), "{out}");
    let ranked: Vec<&str> = out.lines().skip(2).collect();
    assert_eq!(ranked.len(), 5, "five likeliest of ten classes: {out}");
    assert!(ranked[0].trim_start().starts_with("cat") && ranked.iter().all(|l| l.contains('%')), "{out}");
}

#[test]
fn bad_pictures_folders_and_flags_are_named_and_leave_no_run() {
    let dir = scratch("images-bad");
    let run = dir.join("run");
    let r = run.to_str().unwrap();
    let train = |data: &Path, extra: &[&str]| {
        let mut args =
            vec!["train", "images", "--data", data.to_str().unwrap(), "--epochs", "1", "--out", r, "--quiet"];
        args.extend(extra);
        saddle(&args)
    };
    let data = dir.join("data");
    hue_folders(&data);

    assert_fails_with(&saddle(&["train", "images", "--out", r, "--quiet"]), &["--data"]);
    assert_fails_with(&train(&data, &[]), &["--size"]); // pictures of two sizes
    assert_fails_with(&train(&data, &["--size", "0"]), &["--size"]);
    assert_fails_with(&train(&data, &["--size", "16", "--augment", "spin"]), &["--augment", "spin"]);
    assert_fails_with(&train(&data, &["--size", "16", "--tta", "rotate"]), &["--tta", "flip-translate"]);

    let cut = data.join("train/red/3.jpg");
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert_fails_with(&train(&data, &["--size", "16"]), &["3.jpg"]);
    std::fs::write(&cut, &bytes).unwrap();

    std::fs::create_dir_all(data.join("test/violet")).unwrap();
    write_png(&data.join("test/violet/0.png"), 12, 12, &hue_picture(0, 3, 12, 12, 1));
    assert_fails_with(&train(&data, &["--size", "16"]), &["violet"]);

    let cifar = dir.join("cifar");
    tiny_cifar(&cifar);
    std::fs::write(cifar.join("data_batch_3.bin"), vec![0u8; 3073 * 2 + 5]).unwrap();
    assert_fails_with(&train(&cifar, &[]), &["data_batch_3.bin", "3073"]);

    assert!(!run.exists(), "a failed run must not leave a run directory");
}
