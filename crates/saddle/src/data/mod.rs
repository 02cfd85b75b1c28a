//! Data: the [`Dataset`] trait, a seeded [`Loader`], the IDX format (MNIST and
//! any dataset in its layout), image datasets kept as bytes, and tagged text
//! for slot filling (ATIS, `seq.in`/`seq.out`, CoNLL, and which of them a
//! folder holds; vocabularies; chunk F1).
//!
//! Uses: `tensor`, `rng`, `error`.

mod augment;
mod corpus;
mod folder;
mod idx;
mod images;
mod loader;
mod photo;
mod picture;
mod tagging;
mod text;
mod travel;
mod vectors;

pub use augment::{Augment, DEFAULT_CROP, DEFAULT_CUTOUT};
pub use corpus::{Corpus, DEV_SENTENCES};
pub use folder::{load_images, ImageSet, LoadOptions, CIFAR_RECORD, MAX_CLASSES};
pub use idx::{read_idx, Idx};
pub use images::{bundled_mnist, load_idx_dir, load_idx_test, ImageDataset, Normalization};
pub use loader::{shard, Loader};
pub use photo::RgbImage;
pub use picture::{GreyImage, MnistDigit, MAX_PIXELS};
pub use tagging::{char_indices, pad_batch, tokenize, word_form, word_index, TaggedDataset, Tokens, MAX_WORD_CHARS};
pub use text::{
    chunks, marks_chunks, read_atis, read_conll, read_conllu, read_seq_in_out, write_conll, Chunk, ChunkMetrics,
    ChunkScore, ConlluColumn, TaggedSentence, Vocab, MAX_SENTENCE_WORDS,
};
pub use travel::travel_corpus;
pub use vectors::{read_word_vectors, WordVectors};

use crate::{Error, Result, Tensor};
use std::io::Read;
use std::path::Path;

/// The label of a row that counts for nothing (padding), as PyTorch's
/// `ignore_index` default.
pub const IGNORE: i64 = -100;

/// Labelled examples that can be gathered into a batch.
pub trait Dataset: Send + Sync {
    /// The number of examples.
    fn len(&self) -> usize;
    /// Whether there are no examples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The inputs of examples `indices` as one tensor (batch first) and the
    /// labels of the rows of the model's output: one per image for a
    /// classifier, one per position for a tagger, [`IGNORE`] for padding.
    fn batch(&self, indices: &[usize]) -> (Tensor, Vec<i64>);
    /// A training batch of epoch `epoch`: [`Dataset::batch`], augmented where
    /// the dataset augments (the same `(epoch, indices)` give the same bits).
    fn train_batch(&self, indices: &[usize], epoch: usize) -> (Tensor, Vec<i64>) {
        let _ = epoch;
        self.batch(indices)
    }
}

/// The most bytes a gzip file may decompress to (1 GiB; MNIST's training
/// images are 47 MB): a small file that expands without end is an error.
pub const MAX_DECOMPRESSED: u64 = 1 << 30;

/// The bytes of `path`, decompressed if they are gzip (recognized by their
/// magic bytes, not the file name); every member of a multi-member gzip file
/// (`cat a.gz b.gz`) is read, as `gunzip` does.
pub(crate) fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&raw[..])
        .take(MAX_DECOMPRESSED + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::format(path, format!("corrupt gzip stream ({e})")))?;
    if out.len() as u64 > MAX_DECOMPRESSED {
        return Err(Error::format(path, format!("decompresses to more than {MAX_DECOMPRESSED} bytes")));
    }
    Ok(out)
}

/// Writes `bytes` to the file `name` in the scratch folder `saddle-{folder}-{pid}`,
/// for the readers' tests.
#[cfg(test)]
pub(crate) fn scratch_file(folder: &str, name: &str, bytes: impl AsRef<[u8]>) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("saddle-{folder}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn every_member_of_a_gzip_file_is_read() {
        let gz = |bytes: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(bytes).unwrap();
            e.finish().unwrap()
        };
        let path = std::env::temp_dir().join(format!("saddle-members-{}.gz", std::process::id()));
        std::fs::write(&path, [gz(b"first "), gz(b"second")].concat()).unwrap();
        assert_eq!(read_maybe_gzip(&path).unwrap(), b"first second");
        std::fs::write(&path, &gz(b"cut short")[..12]).unwrap();
        assert!(read_maybe_gzip(&path).unwrap_err().to_string().contains("corrupt gzip"));
    }
}
