//! Image classification data kept as bytes and converted per batch.
//!
//! Letters: N examples, C channels, H, W height and width.
//!
//! Images are stored as `u8` `[N, C, H, W]` (MNIST's 60 000 training images
//! take 47 MB this way, a quarter of their `f32` size) and normalized when a
//! batch is gathered: `x = (p/255 − mean)/std`, with the mean and standard
//! deviation of the training pixels (0.1307 and 0.3081 for MNIST).
//!
//! Uses: `data::idx`, `tensor`, `error`.

use super::{read_idx, Dataset};
use crate::{Error, Result, Tensor};
use std::path::{Path, PathBuf};

/// `x = (p/255 − mean) / std`, per pixel.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalization {
    /// Mean of the training pixels, in `[0, 1]`.
    pub mean: f32,
    /// Standard deviation of the training pixels.
    pub std: f32,
}

impl Normalization {
    /// The pixel value `p` in `0..=255`, normalized.
    pub fn apply(&self, p: u8) -> f32 {
        (p as f32 / 255.0 - self.mean) / self.std
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
}

impl ImageDataset {
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
        let shape = [1, img.dims[1], img.dims[2]];
        let norm = pixel_statistics(&img.data);
        Ok(ImageDataset { images: img.data, labels: lab.data, shape, norm })
    }

    /// Number of classes: the largest label plus one.
    pub fn classes(&self) -> usize {
        self.labels.iter().copied().max().map_or(0, |m| m as usize + 1)
    }

    /// One image as `[1, C, H, W]`, normalized.
    pub fn image(&self, i: usize) -> Tensor {
        self.batch(&[i]).0
    }
}

/// Mean and standard deviation of all pixels, scaled to `[0, 1]`.
fn pixel_statistics(pixels: &[u8]) -> Normalization {
    let mut hist = [0u64; 256];
    pixels.iter().for_each(|&p| hist[p as usize] += 1);
    let n = pixels.len().max(1) as f64;
    let mean = hist.iter().enumerate().map(|(v, &c)| v as f64 * c as f64).sum::<f64>() / n / 255.0;
    let var = hist.iter().enumerate().map(|(v, &c)| (v as f64 / 255.0 - mean).powi(2) * c as f64).sum::<f64>() / n;
    Normalization { mean: mean as f32, std: (var.sqrt() as f32).max(1e-6) }
}

impl Dataset for ImageDataset {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn batch(&self, indices: &[usize]) -> (Tensor, Vec<i64>) {
        let size: usize = self.shape.iter().product();
        let mut x = Vec::with_capacity(indices.len() * size);
        for &i in indices {
            x.extend(self.images[i * size..][..size].iter().map(|&p| self.norm.apply(p)));
        }
        let [c, h, w] = self.shape;
        let y = indices.iter().map(|&i| self.labels[i] as i64).collect();
        (Tensor::from_vec(x, &[indices.len(), c, h, w]), y)
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
    test.norm = train.norm;
    Ok((train, test))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_and_batches() {
        let n = pixel_statistics(&[0, 255, 0, 255]);
        assert!((n.mean - 0.5).abs() < 1e-6 && (n.std - 0.5).abs() < 1e-6);
        let d = ImageDataset {
            images: vec![0, 255, 255, 0, 0, 0, 255, 255],
            labels: vec![3, 1],
            shape: [1, 2, 2],
            norm: n,
        };
        let (x, y) = d.batch(&[1]);
        assert_eq!(x.shape(), &[1, 1, 2, 2]);
        assert_eq!(x.to_vec(), vec![-1.0, -1.0, 1.0, 1.0]);
        assert_eq!(y, vec![1]);
        assert_eq!(d.classes(), 4);
    }
}
