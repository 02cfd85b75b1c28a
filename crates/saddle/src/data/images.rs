//! Image classification data kept as bytes and converted per batch.
//!
//! Letters: N examples, C channels, H, W height and width.
//!
//! Images are stored as `u8` `[N, C, H, W]` (MNIST's 60 000 training images
//! take 47 MB this way, CIFAR-10's 50 000 take 154 MB: a quarter of their
//! `f32` size) and normalized when a batch is gathered, per channel:
//! `x = (p/255 − mean_c)/std_c`, with the mean and standard deviation of the
//! training pixels (0.1307 and 0.3081 for MNIST). Training batches are
//! augmented first, when the dataset has an [`Augment`].
//!
//! Uses: `data::idx`, `data::augment`, `tensor`, `error`.

use super::{read_idx, Augment, Dataset};
use crate::{Error, Result, Tensor};
use rayon::prelude::*;
use serde::{Deserialize, Deserializer, Serialize};
use std::path::{Path, PathBuf};

/// `x = (p/255 − mean_c) / std_c`, per channel `c`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Mean of each channel's training pixels, in `[0, 1]`.
    #[serde(deserialize_with = "per_channel")]
    pub mean: Vec<f32>,
    /// Standard deviation of each channel's training pixels.
    #[serde(deserialize_with = "per_channel")]
    pub std: Vec<f32>,
}

/// A list of numbers, or one number (the grey runs of earlier versions).
fn per_channel<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<f32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(f32),
        Many(Vec<f32>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(v) => vec![v],
        OneOrMany::Many(v) => v,
    })
}

impl Normalization {
    /// The pixel value `p` in `0..=255` of channel `c`, normalized.
    pub fn apply(&self, c: usize, p: u8) -> f32 {
        (p as f32 / 255.0 - self.mean[c]) / self.std[c]
    }
    /// Every byte's normalized value, per channel: `[C][256]`.
    fn table(&self) -> Vec<[f32; 256]> {
        (0..self.mean.len()).map(|c| std::array::from_fn(|p| self.apply(c, p as u8))).collect()
    }
    /// Each channel's mean as the nearest byte (what cutout fills with).
    pub fn mean_bytes(&self) -> Vec<u8> {
        self.mean.iter().map(|m| (m * 255.0).round().clamp(0.0, 255.0) as u8).collect()
    }
}

/// Labelled images, as bytes.
#[derive(Clone, Debug)]
pub struct ImageDataset {
    /// `[N, C, H, W]` pixel bytes.
    pub images: Vec<u8>,
    /// `[N]` class labels.
    pub labels: Vec<u8>,
    /// `[C, H, W]`.
    pub shape: [usize; 3],
    /// Applied when batches are gathered.
    pub norm: Normalization,
    /// Applied to training batches ([`Dataset::train_batch`]) only.
    pub augment: Augment,
    /// Seed of the augmentation's draws.
    pub seed: u64,
}

impl ImageDataset {
    /// `[N, C, H, W]` bytes and their labels, normalized by the images' own
    /// statistics and not augmented. Panics if the sizes disagree.
    pub fn new(images: Vec<u8>, labels: Vec<u8>, shape: [usize; 3]) -> Self {
        assert_eq!(
            images.len(),
            labels.len() * shape.iter().product::<usize>(),
            "ImageDataset: {} labels for {} bytes of {shape:?} images",
            labels.len(),
            images.len()
        );
        let norm = pixel_statistics(&images, shape);
        ImageDataset { images, labels, shape, norm, augment: Augment::default(), seed: 0 }
    }

    /// Reads an IDX image file (`[N, H, W]`) and its IDX label file (`[N]`).
    pub fn from_idx(images: &Path, labels: &Path) -> Result<Self> {
        let img = read_idx(images, 3)?;
        let lab = read_idx(labels, 1)?;
        if img.dims[0] != lab.dims[0] {
            return Err(Error::format(
                labels,
                format!(
                    "{} labels for {} images in {}: the counts must match",
                    lab.dims[0],
                    img.dims[0],
                    images.display()
                ),
            ));
        }
        if img.dims[0] == 0 {
            return Err(Error::format(images, "holds no images"));
        }
        Ok(ImageDataset::new(img.data, lab.data, [1, img.dims[1], img.dims[2]]))
    }

    /// Number of classes: the largest label plus one.
    pub fn classes(&self) -> usize {
        self.labels.iter().copied().max().map_or(0, |m| m as usize + 1)
    }

    /// One image as `[1, C, H, W]`, normalized.
    pub fn image(&self, i: usize) -> Tensor {
        self.batch(&[i]).0
    }

    /// Examples `indices` as a normalized batch, augmented for `epoch` if `augment`.
    fn gather(&self, indices: &[usize], epoch: Option<usize>) -> (Tensor, Vec<i64>) {
        let size: usize = self.shape.iter().product();
        let plane = self.shape[1] * self.shape[2];
        let table = self.norm.table();
        let fill = self.norm.mean_bytes();
        let mut x = vec![0.0f32; indices.len() * size];
        if size > 0 {
            x.par_chunks_mut(size).zip(indices.par_iter()).for_each_init(
                || vec![0u8; size],
                |scratch, (out, &i)| {
                    let src = &self.images[i * size..][..size];
                    let bytes = match epoch {
                        Some(e) if !self.augment.is_none() => {
                            self.augment.apply(src, self.shape, &fill, Augment::key(self.seed, e, i), scratch);
                            &scratch[..]
                        }
                        _ => src,
                    };
                    for (c, (o, b)) in out.chunks_exact_mut(plane).zip(bytes.chunks_exact(plane)).enumerate() {
                        o.iter_mut().zip(b).for_each(|(o, &p)| *o = table[c][p as usize]);
                    }
                },
            );
        }
        let [c, h, w] = self.shape;
        let y = indices.iter().map(|&i| self.labels[i] as i64).collect();
        (Tensor::from_vec(x, &[indices.len(), c, h, w]), y)
    }
}

/// Mean and standard deviation of each channel's pixels (`[N, C, H, W]`
/// bytes), scaled to `[0, 1]`; a flat channel's deviation is floored at 1e-6.
pub(crate) fn pixel_statistics(pixels: &[u8], shape: [usize; 3]) -> Normalization {
    let [c, h, w] = shape;
    let mut hist = vec![[0u64; 256]; c];
    if h * w > 0 {
        for (i, plane) in pixels.chunks_exact(h * w).enumerate() {
            let hc = &mut hist[i % c];
            plane.iter().for_each(|&p| hc[p as usize] += 1);
        }
    }
    let (mean, std) = hist
        .iter()
        .map(|hc| {
            let n = hc.iter().sum::<u64>().max(1) as f64;
            let mean = hc.iter().enumerate().map(|(v, &k)| v as f64 * k as f64).sum::<f64>() / n / 255.0;
            let var =
                hc.iter().enumerate().map(|(v, &k)| (v as f64 / 255.0 - mean).powi(2) * k as f64).sum::<f64>() / n;
            (mean as f32, (var.sqrt() as f32).max(1e-6))
        })
        .unzip();
    Normalization { mean, std }
}

impl Dataset for ImageDataset {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn batch(&self, indices: &[usize]) -> (Tensor, Vec<i64>) {
        self.gather(indices, None)
    }
    fn train_batch(&self, indices: &[usize], epoch: usize) -> (Tensor, Vec<i64>) {
        self.gather(indices, Some(epoch))
    }
}

/// The file `name` or `name.gz` in `dir`.
fn find(dir: &Path, name: &str) -> Result<PathBuf> {
    let plain = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    if plain.is_file() && gz.is_file() {
        Err(Error::format(
            dir,
            format!("both {name} and {name}.gz are here, and they may differ; keep the one to train on"),
        ))
    } else if plain.is_file() {
        Ok(plain)
    } else if gz.is_file() {
        Ok(gz)
    } else {
        Err(Error::format(
            dir,
            format!("no {name} or {name}.gz here; an IDX dataset folder holds train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (optionally .gz), as MNIST and Fashion-MNIST are distributed"),
        ))
    }
}

/// The MNIST bundled with saddle: `data/mnist` under the current folder, else
/// the copy in saddle's source tree (where it was built), made absolute.
pub fn bundled_mnist() -> PathBuf {
    let here = Path::new("data/mnist");
    let dir =
        if here.is_dir() { here.to_path_buf() } else { Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist") };
    std::fs::canonicalize(&dir).unwrap_or(dir)
}

/// Loads only the test set (`t10k-…`) of a folder in MNIST's layout, for
/// evaluation; its normalization is the test set's own until the caller sets
/// the training set's.
pub fn load_idx_test(dir: &Path) -> Result<ImageDataset> {
    if !dir.is_dir() {
        return Err(Error::io(dir, std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder")));
    }
    ImageDataset::from_idx(&find(dir, "t10k-images-idx3-ubyte")?, &find(dir, "t10k-labels-idx1-ubyte")?)
}

/// Loads `(train, test)` from a folder in MNIST's layout. The test set uses the
/// training set's normalization, and its labels and image size must agree.
pub fn load_idx_dir(dir: &Path) -> Result<(ImageDataset, ImageDataset)> {
    if !dir.is_dir() {
        return Err(Error::io(dir, std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder")));
    }
    let train = ImageDataset::from_idx(&find(dir, "train-images-idx3-ubyte")?, &find(dir, "train-labels-idx1-ubyte")?)?;
    let test_images = find(dir, "t10k-images-idx3-ubyte")?;
    let mut test = ImageDataset::from_idx(&test_images, &find(dir, "t10k-labels-idx1-ubyte")?)?;
    if test.shape != train.shape {
        return Err(Error::format(
            &test_images,
            format!(
                "test images are {:?}, training images {:?}: they must have the same size",
                test.shape, train.shape
            ),
        ));
    }
    if test.classes() > train.classes() {
        return Err(Error::format(
            &test_images,
            format!(
                "test labels go up to {}, but the training labels only to {}",
                test.classes() - 1,
                train.classes() - 1
            ),
        ));
    }
    test.norm = train.norm.clone();
    Ok((train, test))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_and_batches() {
        let n = pixel_statistics(&[0, 255, 0, 255], [1, 2, 2]);
        assert!((n.mean[0] - 0.5).abs() < 1e-6 && (n.std[0] - 0.5).abs() < 1e-6);
        let mut d = ImageDataset::new(vec![0, 255, 255, 0, 0, 0, 255, 255], vec![3, 1], [1, 2, 2]);
        let (x, y) = d.batch(&[1]);
        assert_eq!(x.shape(), &[1, 1, 2, 2]);
        assert_eq!(x.to_vec(), vec![-1.0, -1.0, 1.0, 1.0]);
        assert_eq!(y, vec![1]);
        assert_eq!(d.classes(), 4);
        d.augment = Augment { flip: true, ..Default::default() };
        let flips: Vec<Vec<f32>> = (0..8).map(|e| d.train_batch(&[0], e).0.to_vec()).collect();
        assert!(
            flips.iter().any(|f| f == &[-1.0, 1.0, 1.0, -1.0]) && flips.iter().any(|f| f == &[1.0, -1.0, -1.0, 1.0])
        );
        assert_eq!(d.batch(&[0]).0.to_vec(), vec![-1.0, 1.0, 1.0, -1.0], "evaluation is never augmented");
        // Two channels: each its own statistics.
        let rgb = ImageDataset::new(vec![0, 0, 100, 200, 10, 10, 100, 200], vec![0, 1], [2, 1, 2]);
        assert!((rgb.norm.mean[0] - 5.0 / 255.0).abs() < 1e-6 && (rgb.norm.mean[1] - 150.0 / 255.0).abs() < 1e-6);
        let old: Normalization = serde_json::from_str(r#"{"mean": 0.13, "std": 0.31}"#).unwrap();
        assert_eq!(old, Normalization { mean: vec![0.13], std: vec![0.31] });
    }
}
