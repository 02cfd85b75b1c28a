//! Helpers shared by the command-line tests.
#![allow(dead_code)] // each test binary uses its own share of them

use saddle::data::read_idx;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `saddle` binary with `args`.
pub fn saddle(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_saddle")).args(args).output().expect("the saddle binary runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A fresh, empty scratch folder for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("saddle-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Asserts a failure with one `error:` line that contains every `needle`.
#[track_caller]
pub fn assert_fails_with(o: &Output, needles: &[&str]) {
    assert!(!o.status.success(), "expected a failure, got success: {}", stdout(o));
    let err = stderr(o);
    assert!(!err.contains("panicked"), "panic instead of an error: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
}

pub fn idx_bytes(magic: u32, dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut b = magic.to_be_bytes().to_vec();
    dims.iter().for_each(|&d| b.extend((d as u32).to_be_bytes()));
    b.extend(data);
    b
}

/// Writes an IDX dataset folder of the first `train` and `test` MNIST images,
/// cropped to `side × side` pixels.
pub fn small_mnist(dir: &Path, train: usize, test: usize, side: usize) {
    let mnist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    for (split, n) in [("train", train), ("t10k", test)] {
        let images = read_idx(&mnist.join(format!("{split}-images-idx3-ubyte.gz")), 3).unwrap();
        let labels = read_idx(&mnist.join(format!("{split}-labels-idx1-ubyte.gz")), 1).unwrap();
        let off = (28 - side) / 2;
        let pixels: Vec<u8> = (0..n)
            .flat_map(|i| (0..side * side).map(move |p| (i, p)))
            .map(|(i, p)| images.data[i * 784 + (off + p / side) * 28 + off + p % side])
            .collect();
        std::fs::write(dir.join(format!("{split}-images-idx3-ubyte")), idx_bytes(0x0803, &[n, side, side], &pixels))
            .unwrap();
        std::fs::write(dir.join(format!("{split}-labels-idx1-ubyte")), idx_bytes(0x0801, &[n], &labels.data[..n]))
            .unwrap();
    }
}

/// A scratch folder `name` with an IDX dataset of 28×28 MNIST images in its `data/`.
pub fn mnist_folder(name: &str, train: usize, test: usize) -> (PathBuf, PathBuf) {
    let dir = scratch(name);
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    small_mnist(&data, train, test, 28);
    (dir, data)
}
