//! Pretrained word vectors (GloVe, word2vec's text format) for a tagger's
//! word embedding.
//!
//! Letters: V vocabulary size, D vector size.
//!
//! A file holds one word per line, `word v₁ v₂ … v_D`, separated by spaces;
//! word2vec's text format starts with a line `count D`, which is skipped.
//! Gzip-compressed files are read as they are. Only the vectors of words the
//! vocabulary holds are kept, each under its [`word_form`](super::word_form): the first line
//! whose word has that form wins (GloVe and word2vec list the most frequent
//! words first).
//!
//! Uses: `data::tagging` (word indices), `data::text` (vocabulary), `error`.

use super::{word_index, Vocab};
use crate::{Error, Result};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// The vectors a file gives the words of a vocabulary.
#[derive(Clone, Debug, PartialEq)]
pub struct WordVectors {
    /// D.
    pub dim: usize,
    /// `[V]`: the vector of each word of the vocabulary, if the file has one
    /// (never for `<pad>` and `<unk>`).
    pub vectors: Vec<Option<Vec<f32>>>,
    /// Vectors the file holds.
    pub lines: usize,
}

impl WordVectors {
    /// Words of the vocabulary with a vector.
    pub fn found(&self) -> usize {
        self.vectors.iter().filter(|v| v.is_some()).count()
    }
}

/// The longest line read: a vector of 10⁵ numbers is far beyond any published set.
const MAX_LINE: usize = 4 << 20;

/// Reads the vectors in `path` of the words of `vocab`; an error names the
/// file, line and column of a line that is not `word` and `D` numbers.
///
/// ```
/// use saddle::data::{read_word_vectors, Vocab};
/// let path = std::env::temp_dir().join(format!("saddle-doc-{}.vec", std::process::id()));
/// std::fs::write(&path, "2 3\nBoston 0.1 0.2 0.3\nparis 1 2 3\n").unwrap();
/// let v = read_word_vectors(&path, &Vocab::build(["boston", "to"], 1)).unwrap();
/// assert_eq!((v.dim, v.lines, v.found()), (3, 2, 1));
/// assert_eq!(v.vectors[Vocab::build(["boston", "to"], 1).index("boston")], Some(vec![0.1, 0.2, 0.3]));
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub fn read_word_vectors(path: &Path, vocab: &Vocab) -> Result<WordVectors> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut raw = BufReader::new(file);
    let gzip = raw.fill_buf().map_err(|e| Error::io(path, e))?.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read> = if gzip { Box::new(flate2::read::MultiGzDecoder::new(raw)) } else { Box::new(raw) };
    let mut reader = BufReader::new(reader);
    let at =
        |line: usize, column: usize, what: String| Error::format(path, format!("line {line}, column {column}: {what}"));
    let mut out = WordVectors { dim: 0, vectors: vec![None; vocab.len()], lines: 0 };
    let mut buf = Vec::new();
    for n in 1.. {
        buf.clear();
        let read =
            (&mut reader).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf).map_err(|e| Error::io(path, e))?;
        if read == 0 {
            break;
        }
        if buf.len() > MAX_LINE && !buf.ends_with(b"\n") {
            return Err(at(n, 1, format!("a line longer than {MAX_LINE} bytes")));
        }
        let line = std::str::from_utf8(&buf).map_err(|e| at(n, e.valid_up_to() + 1, "not UTF-8 text".into()))?;
        // Each field with the character column where it starts.
        let (mut fields, mut column) = (Vec::new(), 1);
        for f in line.trim_end_matches(['\n', '\r']).split(' ') {
            if !f.is_empty() {
                fields.push((column, f));
            }
            column += f.chars().count() + 1;
        }
        if fields.is_empty() {
            continue;
        }
        // word2vec's header: the number of vectors and their size.
        if n == 1 && fields.len() == 2 && fields.iter().all(|(_, f)| f.parse::<usize>().is_ok()) {
            continue;
        }
        if out.dim == 0 {
            out.dim = fields.len() - 1;
            if out.dim == 0 {
                return Err(at(n, 1, "a word without numbers; expected 'word v1 v2 …'".into()));
            }
        }
        if fields.len() <= out.dim {
            let what = format!("{} numbers where the first vector has {}", fields.len() - 1, out.dim);
            return Err(at(n, 1, what));
        }
        // A word with spaces (GloVe's 840B set has some): all but the last D fields.
        let split = fields.len() - out.dim;
        let word = fields[..split].iter().map(|(_, f)| *f).collect::<Vec<_>>().join(" ");
        out.lines += 1;
        let i = word_index(vocab, &word);
        if i == Vocab::UNK || out.vectors[i].is_some() {
            continue;
        }
        let mut v = Vec::with_capacity(out.dim);
        for (k, &(column, f)) in fields[split..].iter().enumerate() {
            match f.parse::<f32>() {
                Ok(x) if x.is_finite() => v.push(x),
                _ => return Err(at(n, column, format!("'{f}' is not a finite number (value {} of '{word}')", k + 1))),
            }
        }
        out.vectors[i] = Some(v);
    }
    if out.lines == 0 {
        return Err(Error::format(path, "holds no word vectors; expected lines 'word v1 v2 …'"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        crate::data::scratch_file("vectors", name, bytes)
    }

    #[test]
    fn glove_word2vec_and_gzip_read_alike_and_forms_match() {
        let vocab = Vocab::build(["the", "flight", "000", "new york"], 1);
        let glove = "the 1 2\nThe 9 9\nflight 3 4\n838 5 6\nnew york 7 8\nzebra 0 0\n";
        let a = read_word_vectors(&write("g.txt", glove.as_bytes()), &vocab).unwrap();
        assert_eq!((a.dim, a.lines, a.found()), (2, 6, 4));
        assert_eq!(a.vectors[vocab.index("the")], Some(vec![1.0, 2.0]), "the first of a form wins");
        assert_eq!(a.vectors[vocab.index("000")], Some(vec![5.0, 6.0]), "digits read as 0");
        assert_eq!(a.vectors[vocab.index("new york")], Some(vec![7.0, 8.0]));
        assert_eq!(a.vectors[Vocab::UNK], None);
        let w2v = read_word_vectors(&write("w.txt", format!("6 2\n{glove}").as_bytes()), &vocab).unwrap();
        assert_eq!(w2v, a);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, glove.as_bytes()).unwrap();
        assert_eq!(read_word_vectors(&write("g.txt.gz", &gz.finish().unwrap()), &vocab).unwrap(), a);
    }

    #[test]
    fn bad_lines_are_named() {
        let vocab = Vocab::build(["a", "b"], 1);
        for (text, needle) in [
            ("a 1 2\nb 3\n", "line 2, column 1: 1 numbers where the first vector has 2"),
            ("a 1 2\nb 3 x\n", "line 2, column 5: 'x' is not a finite number (value 2 of 'b')"),
            ("a\n", "line 1, column 1: a word without numbers"),
            ("", "holds no word vectors"),
        ] {
            let e = read_word_vectors(&write("bad.txt", text.as_bytes()), &vocab).unwrap_err().to_string();
            assert!(e.contains("bad.txt: ") && e.contains(needle), "{e}");
        }
        assert!(read_word_vectors(Path::new("/nonexistent/vectors.txt"), &vocab).is_err());
    }
}
