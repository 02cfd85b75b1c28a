//! Colour-image datasets from disk: folders of JPEG and PNG files, one per
//! class (torchvision's `ImageFolder`), and CIFAR-10's binary batches.
//!
//! Letters: N images, K classes, H, W the size every image is brought to.
//!
//! **Image folders**: `DIR/train/<class>/*.jpg|*.jpeg|*.png` and
//! `DIR/test/<class>/…`; classes are the training folder's subfolders sorted
//! by name, label `k` the `k`-th. Without `test/`, a seeded share of the
//! training images (`val_split`) is held out as the test set. Files are
//! decoded once, in parallel, into `[3, H, W]` bytes (grey repeated to RGB,
//! alpha dropped); images whose sizes differ need a `size` to be resized to.
//!
//! **CIFAR-10 binary**: `data_batch_1.bin` … `data_batch_5.bin` and
//! `test_batch.bin` (in `DIR` or `DIR/cifar-10-batches-bin`), each a run of
//! 3073-byte records: a label byte, then 32×32 R, G and B planes. Class names
//! come from `batches.meta.txt` when it is there.
//!
//! Uses: `data::images`, `data::photo`, `rng`, `error`.

use super::images::{pixel_statistics, ImageDataset};
use super::RgbImage;
use crate::{Error, Result, Rng};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The most classes an image dataset may have (labels are bytes).
pub const MAX_CLASSES: usize = 256;

/// A loaded image dataset: training and test images with their class names.
pub struct ImageSet {
    /// Training images (normalized by their own per-channel statistics).
    pub train: ImageDataset,
    /// Test images, normalized as the training images.
    pub test: ImageDataset,
    /// Class `k`'s name.
    pub classes: Vec<String>,
    /// Where they came from, in words.
    pub source: String,
}

/// How [`load_images`] reads a folder.
#[derive(Clone, Copy)]
pub struct LoadOptions<'a> {
    /// Resize every image to `(H, W)`; `None`: all images must have one size.
    pub size: Option<(usize, usize)>,
    /// Without a `test/` folder, this share of the training images is held out.
    pub val_split: f32,
    /// Seed of that split.
    pub seed: u64,
    /// Skip the training images where a test set exists on its own (evaluation).
    pub test_only: bool,
    /// Called as `(done, total)` while images are decoded, from any thread.
    pub progress: &'a (dyn Fn(usize, usize) + Sync),
}

impl Default for LoadOptions<'_> {
    fn default() -> Self {
        LoadOptions { size: None, val_split: 0.1, seed: 0, test_only: false, progress: &|_, _| {} }
    }
}

/// Reads whichever layout `dir` holds: CIFAR-10 binary batches, or image
/// folders (`train/` and optionally `test/`).
pub fn load_images(dir: &Path, opt: &LoadOptions<'_>) -> Result<ImageSet> {
    if !dir.is_dir() {
        return Err(Error::io(dir, std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder")));
    }
    if let Some(o) = opt.size.filter(|&(h, w)| h == 0 || w == 0) {
        return Err(Error::config("size", format!("must be at least 1×1 pixels, got {}×{}", o.0, o.1)));
    }
    for d in [dir.to_path_buf(), dir.join("cifar-10-batches-bin")] {
        if d.join("test_batch.bin").is_file() || d.join("data_batch_1.bin").is_file() {
            return load_cifar_binary(&d, opt);
        }
    }
    if dir.join("train").is_dir() {
        return load_image_folder(dir, opt);
    }
    Err(Error::format(
        dir,
        "no images found; expected train/<class>/*.jpg|*.png (and test/<class>/…) folders, or CIFAR-10's data_batch_1.bin … data_batch_5.bin and test_batch.bin",
    ))
}

/// Whether `path` names a JPEG or PNG file by its extension.
fn is_picture(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["jpg", "jpeg", "png"].contains(&e.to_ascii_lowercase().as_str()))
}

/// The sorted entries of `dir` that pass `keep`.
fn entries(dir: &Path, keep: impl Fn(&Path) -> bool) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if keep(&path) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// The class folders of `split` (`train/` or `test/`) and their pictures.
fn class_folders(split: &Path) -> Result<Vec<(String, Vec<PathBuf>)>> {
    let folders = entries(split, Path::is_dir)?;
    if folders.is_empty() {
        return Err(Error::format(split, "has no class folders; expected one folder of images per class"));
    }
    folders
        .into_iter()
        .map(|folder| {
            let name = folder.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let files = entries(&folder, |p| p.is_file() && is_picture(p))?;
            if files.is_empty() {
                return Err(Error::format(&folder, "is an empty class folder: it holds no .jpg, .jpeg or .png file"));
            }
            Ok((name, files))
        })
        .collect()
}

/// Decodes `files` in parallel (resized to `size`, else all of one size), as `[N, 3, H, W]` bytes.
fn decode_all(
    files: &[PathBuf],
    size: Option<(usize, usize)>,
    opt: &LoadOptions<'_>,
    done: &AtomicUsize,
    total: usize,
) -> Result<(Vec<u8>, (usize, usize))> {
    let images: Vec<Result<RgbImage>> = files
        .par_iter()
        .map(|path| {
            let img = RgbImage::open(path)?;
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if n % 256 == 0 || n == total {
                (opt.progress)(n, total);
            }
            Ok(match size {
                Some((h, w)) => img.resize(h, w),
                None => img,
            })
        })
        .collect();
    let mut bytes = Vec::new();
    let mut first: Option<(usize, usize, &Path)> = None;
    for (img, path) in images.into_iter().zip(files) {
        let img = img?;
        match first {
            None => first = Some((img.height, img.width, path)),
            Some((h, w, p)) if (h, w) != (img.height, img.width) => {
                return Err(Error::format(
                    path,
                    format!(
                        "is {}×{} pixels but {} is {h}×{w}: images of different sizes need --size H[xW] to be resized to one",
                        img.height,
                        img.width,
                        p.display()
                    ),
                ))
            }
            Some(_) => {}
        }
        bytes.extend_from_slice(&img.pixels);
    }
    let (h, w, _) = first.expect("at least one file");
    Ok((bytes, (h, w)))
}

/// Image folders: `train/` and `test/` (or a held-out share of `train/`).
fn load_image_folder(dir: &Path, opt: &LoadOptions<'_>) -> Result<ImageSet> {
    let train_classes = class_folders(&dir.join("train"))?;
    if train_classes.len() > MAX_CLASSES {
        return Err(Error::format(
            dir.join("train"),
            format!("has {} class folders; saddle reads at most {MAX_CLASSES}", train_classes.len()),
        ));
    }
    let names: Vec<String> = train_classes.iter().map(|(n, _)| n.clone()).collect();
    let labelled = |classes: Vec<(String, Vec<PathBuf>)>| -> (Vec<PathBuf>, Vec<u8>) {
        let mut files = Vec::new();
        let mut labels = Vec::new();
        for (name, paths) in classes {
            let k = names.iter().position(|n| *n == name).expect("checked") as u8;
            labels.extend(std::iter::repeat_n(k, paths.len()));
            files.extend(paths);
        }
        (files, labels)
    };
    let test_dir = dir.join("test");
    let test_classes = if test_dir.is_dir() {
        let classes = class_folders(&test_dir)?;
        if let Some((name, _)) = classes.iter().find(|(n, _)| !names.contains(n)) {
            return Err(Error::format(
                test_dir.join(name),
                format!("is a class that train/ does not have (its classes: {})", names.join(", ")),
            ));
        }
        Some(classes)
    } else {
        if !(opt.val_split > 0.0 && opt.val_split < 1.0) {
            return Err(Error::config(
                "val_split",
                format!(
                    "{} has no test/ folder, so a share in (0, 1) of train/ is held out; got {}",
                    dir.display(),
                    opt.val_split
                ),
            ));
        }
        None
    };
    let (train_files, train_labels) = labelled(train_classes);
    let test = test_classes.map(labelled);
    let skip_train = opt.test_only && test.is_some();
    let total = test.as_ref().map_or(0, |(f, _)| f.len()) + if skip_train { 0 } else { train_files.len() };
    let done = AtomicUsize::new(0);
    let (source, train, test) = match test {
        Some((test_files, test_labels)) => {
            let (test_bytes, size) = decode_all(&test_files, opt.size, opt, &done, total)?;
            let (train_bytes, train_size) =
                if skip_train { (Vec::new(), size) } else { decode_all(&train_files, opt.size, opt, &done, total)? };
            if train_size != size {
                return Err(Error::format(
                    &test_dir,
                    format!(
                        "test images are {}×{} pixels, training images {}×{}: pass --size H[xW]",
                        size.0, size.1, train_size.0, train_size.1
                    ),
                ));
            }
            let shape = [3, size.0, size.1];
            let train_labels = if skip_train { Vec::new() } else { train_labels };
            (
                format!("{} (image folders)", dir.display()),
                (train_bytes, train_labels, shape),
                (test_bytes, test_labels, shape),
            )
        }
        None => {
            let (bytes, size) = decode_all(&train_files, opt.size, opt, &done, total)?;
            let shape = [3, size.0, size.1];
            let per = 3 * size.0 * size.1;
            let mut order: Vec<usize> = (0..train_labels.len()).collect();
            Rng::new(opt.seed ^ 0x005E_ED0F_5A11).shuffle(&mut order);
            let held = ((train_labels.len() as f64 * opt.val_split as f64).round() as usize)
                .clamp(1, train_labels.len().saturating_sub(1).max(1));
            let (test_idx, train_idx) = order.split_at(held);
            let pick = |idx: &[usize]| -> (Vec<u8>, Vec<u8>) {
                let mut sorted = idx.to_vec();
                sorted.sort_unstable();
                (
                    sorted.iter().flat_map(|&i| bytes[i * per..][..per].iter().copied()).collect(),
                    sorted.iter().map(|&i| train_labels[i]).collect(),
                )
            };
            let ((trb, trl), (teb, tel)) = (pick(train_idx), pick(test_idx));
            (
                format!("{} (image folders; test = a seeded {:.0}% of train)", dir.display(), opt.val_split * 100.0),
                (trb, trl, shape),
                (teb, tel, shape),
            )
        }
    };
    Ok(assemble(train, test, names, source))
}

/// The datasets from `(bytes, labels, shape)`, the test set normalized as the training set.
fn assemble(
    train: (Vec<u8>, Vec<u8>, [usize; 3]),
    test: (Vec<u8>, Vec<u8>, [usize; 3]),
    classes: Vec<String>,
    source: String,
) -> ImageSet {
    let norm = pixel_statistics(&train.0, train.2);
    let mut train = ImageDataset::new(train.0, train.1, train.2);
    let mut test = ImageDataset::new(test.0, test.1, test.2);
    (train.norm, test.norm) = (norm.clone(), norm);
    ImageSet { train, test, classes, source }
}

/// The bytes per CIFAR-10 record: a label and a 3×32×32 image.
pub const CIFAR_RECORD: usize = 1 + 3 * 32 * 32;

/// Reads one CIFAR-10 batch file: `(images, labels)`.
fn read_cifar_file(path: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if raw.is_empty() || raw.len() % CIFAR_RECORD != 0 {
        return Err(Error::format(
            path,
            format!("is {} bytes, not a whole number of {CIFAR_RECORD}-byte CIFAR-10 records (a label byte and 3×32×32 pixels)", raw.len()),
        ));
    }
    let mut images = Vec::with_capacity(raw.len() / CIFAR_RECORD * (CIFAR_RECORD - 1));
    let mut labels = Vec::with_capacity(raw.len() / CIFAR_RECORD);
    for (i, record) in raw.chunks_exact(CIFAR_RECORD).enumerate() {
        if record[0] >= 10 {
            return Err(Error::format(path, format!("record {i} has label {}; CIFAR-10 labels are 0 to 9", record[0])));
        }
        labels.push(record[0]);
        images.extend_from_slice(&record[1..]);
    }
    Ok((images, labels))
}

fn load_cifar_binary(dir: &Path, opt: &LoadOptions<'_>) -> Result<ImageSet> {
    let test_path = dir.join("test_batch.bin");
    let train_paths: Vec<PathBuf> = (1..=5).map(|i| dir.join(format!("data_batch_{i}.bin"))).collect();
    let mut missing = train_paths.iter().chain([&test_path]).filter(|p| !p.is_file());
    if let Some(m) = missing.next() {
        return Err(Error::format(
            dir,
            format!("holds CIFAR-10 batches but not {}", m.file_name().unwrap_or_default().to_string_lossy()),
        ));
    }
    let mut train = (Vec::new(), Vec::new());
    if !opt.test_only {
        for p in &train_paths {
            let (images, labels) = read_cifar_file(p)?;
            train.0.extend(images);
            train.1.extend(labels);
        }
    }
    let test = read_cifar_file(&test_path)?;
    let meta = dir.join("batches.meta.txt");
    let names: Vec<String> = match std::fs::read_to_string(&meta) {
        Ok(text) => text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect(),
        Err(_) => (0..10).map(|k| k.to_string()).collect(),
    };
    if names.len() != 10 {
        return Err(Error::format(&meta, format!("names {} classes; CIFAR-10 has 10", names.len())));
    }
    let resize = |(images, labels): (Vec<u8>, Vec<u8>)| -> (Vec<u8>, Vec<u8>, [usize; 3]) {
        match opt.size.filter(|&s| s != (32, 32)) {
            None => (images, labels, [3, 32, 32]),
            Some((h, w)) => {
                let out = images
                    .par_chunks(3 * 32 * 32)
                    .flat_map_iter(|p| RgbImage { height: 32, width: 32, pixels: p.to_vec() }.resize(h, w).pixels)
                    .collect();
                (out, labels, [3, h, w])
            }
        }
    };
    Ok(assemble(resize(train), resize(test), names, format!("{} (CIFAR-10 binary)", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("saddle-folder-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn png(path: &Path, w: u32, h: u32, rgb: [u8; 3]) {
        let mut bytes = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut bytes, w, h);
            enc.set_color(png::ColorType::Rgb);
            let data: Vec<u8> = (0..w * h).flat_map(|_| rgb).collect();
            enc.write_header().unwrap().write_image_data(&data).unwrap();
        }
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn folders_give_sorted_classes_and_a_seeded_split_without_test() {
        let d = tmp("split");
        for i in 0..5 {
            png(&d.join(format!("train/red/{i}.png")), 4, 4, [200, 0, 0]);
            png(&d.join(format!("train/blue/{i}.PNG")), 4, 4, [0, 0, 200]);
        }
        std::fs::write(d.join("train/red/notes.txt"), "not a picture").unwrap();
        let set = load_images(&d, &LoadOptions { val_split: 0.2, ..Default::default() }).unwrap();
        assert_eq!(set.classes, ["blue", "red"]);
        assert_eq!((set.train.labels.len(), set.test.labels.len()), (8, 2));
        assert_eq!(set.train.shape, [3, 4, 4]);
        assert_eq!(set.test.norm, set.train.norm);
        let again = load_images(&d, &LoadOptions { val_split: 0.2, ..Default::default() }).unwrap();
        assert_eq!(again.test.labels, set.test.labels);
        // Mixed sizes need --size; with one, every image is brought to it.
        png(&d.join("train/red/big.png"), 8, 6, [200, 0, 0]);
        let e = load_images(&d, &LoadOptions::default()).err().unwrap().to_string();
        assert!(e.contains("big.png") && e.contains("--size"), "{e}");
        let sized = load_images(&d, &LoadOptions { size: Some((5, 3)), ..Default::default() }).unwrap();
        assert_eq!(sized.train.shape, [3, 5, 3]);
        let e = load_images(&d, &LoadOptions { size: Some((0, 3)), ..Default::default() }).err().unwrap().to_string();
        assert!(e.contains("at least 1×1"), "{e}");
    }

    #[test]
    fn bad_folders_are_named() {
        let d = tmp("bad");
        png(&d.join("train/cat/0.png"), 2, 2, [1, 2, 3]);
        std::fs::create_dir_all(d.join("train/dog")).unwrap();
        let e = load_images(&d, &LoadOptions::default()).err().unwrap().to_string();
        assert!(e.contains("dog") && e.contains("empty class folder"), "{e}");
        png(&d.join("train/dog/0.png"), 2, 2, [1, 2, 3]);
        png(&d.join("test/bird/0.png"), 2, 2, [1, 2, 3]);
        let e = load_images(&d, &LoadOptions::default()).err().unwrap().to_string();
        assert!(e.contains("bird") && e.contains("train/ does not have"), "{e}");
        std::fs::remove_dir_all(d.join("test/bird")).unwrap();
        std::fs::create_dir_all(d.join("test/cat")).unwrap();
        std::fs::write(d.join("test/cat/0.jpg"), b"\xFF\xD8\xFF\xE0 cut short").unwrap();
        let e = load_images(&d, &LoadOptions::default()).err().unwrap().to_string();
        assert!(e.contains("0.jpg") && e.contains("JPEG"), "{e}");
        let empty = tmp("empty");
        assert!(load_images(&empty, &LoadOptions::default()).err().unwrap().to_string().contains("no images found"));
    }

    #[test]
    fn cifar_binary_batches() {
        let d = tmp("cifar");
        let record = |label: u8, v: u8| [vec![label], vec![v; 3072]].concat();
        for i in 1..=5 {
            std::fs::write(d.join(format!("data_batch_{i}.bin")), [record(i, 10 * i), record(0, 1)].concat()).unwrap();
        }
        std::fs::write(d.join("test_batch.bin"), record(9, 3)).unwrap();
        let set = load_images(&d, &LoadOptions::default()).unwrap();
        assert_eq!((set.train.labels.len(), set.test.labels.len(), set.train.shape), (10, 1, [3, 32, 32]));
        assert_eq!(set.train.labels[..4], [1, 0, 2, 0]);
        assert_eq!(set.classes[9], "9");
        std::fs::write(
            d.join("batches.meta.txt"),
            "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n",
        )
        .unwrap();
        assert_eq!(load_images(&d, &LoadOptions::default()).unwrap().classes[9], "truck");
        let big = load_images(&d, &LoadOptions { size: Some((40, 40)), ..Default::default() }).unwrap();
        assert_eq!(big.test.shape, [3, 40, 40]);
        std::fs::write(d.join("test_batch.bin"), vec![0u8; 3074]).unwrap();
        let e = load_images(&d, &LoadOptions::default()).err().unwrap().to_string();
        assert!(e.contains("3074 bytes") && e.contains("3073-byte"), "{e}");
    }
}
