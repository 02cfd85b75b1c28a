//! Tagged corpora as folders: which of the four layouts a folder holds, its
//! training, dev and test sentences, and the generated travel corpus when no
//! folder is given.
//!
//! Uses: `data::text`, `data::travel`, `error`.

use super::{read_atis, read_conll, read_conllu, read_seq_in_out, travel_corpus, ConlluColumn, TaggedSentence};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Sentences held out of the training file as the dev set when the corpus
/// has none: its last 500 (ATIS's usual split), at most a fifth of them.
pub const DEV_SENTENCES: usize = 500;

/// Training, dev and test sentences, and where they came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Corpus {
    /// Training sentences.
    pub train: Vec<TaggedSentence>,
    /// Held-out sentences, evaluated after each epoch.
    pub dev: Vec<TaggedSentence>,
    /// Test sentences.
    pub test: Vec<TaggedSentence>,
    /// The folder and its layout, or the generated corpus, in words.
    pub source: String,
}

/// The first of `names` that exists in `dir`.
fn first_file(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// The CoNLL-U file of one split in `dir`: `{split}.conllu` or, as
/// Universal Dependencies names them, `…-{split}.conllu` (`en_ewt-ud-train.conllu`),
/// each also gzip-compressed; an error if more than one is there.
fn conllu_file(dir: &Path, split: &str) -> Result<Option<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let stem = name.strip_suffix(".gz").unwrap_or(name);
            p.is_file() && stem.strip_suffix(".conllu").is_some_and(|s| s == split || s.ends_with(&format!("-{split}")))
        })
        .collect();
    found.sort();
    match found.len() {
        0 | 1 => Ok(found.pop()),
        _ => {
            let names: Vec<String> =
                found.iter().map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned()).collect();
            Err(Error::format(
                dir,
                format!("{} CoNLL-U files of the {split} split ({}); keep one", names.len(), names.join(", ")),
            ))
        }
    }
}

/// An error if `dir` holds both a plain and a gzip copy of one of `names`: they may differ.
fn unambiguous(dir: &Path, names: &[&str]) -> Result<()> {
    for n in names.iter().filter(|n| !n.ends_with(".gz")) {
        if dir.join(n).is_file() && dir.join(format!("{n}.gz")).is_file() {
            return Err(Error::format(dir, format!("both {n} and {n}.gz are here, and they may differ; keep one")));
        }
    }
    Ok(())
}

/// The last [`DEV_SENTENCES`] of `train` (at most a fifth), unless the corpus has a dev set.
fn split(
    mut train: Vec<TaggedSentence>,
    dev: Option<Vec<TaggedSentence>>,
) -> (Vec<TaggedSentence>, Vec<TaggedSentence>) {
    let dev = dev.unwrap_or_else(|| train.split_off(train.len().saturating_sub(DEV_SENTENCES.min(train.len() / 5))));
    (train, dev)
}

impl Corpus {
    /// The generated travel corpus: 3000 training, 300 dev and 500 test sentences.
    pub fn travel() -> Self {
        Corpus {
            train: travel_corpus(3000, 1),
            dev: travel_corpus(300, 2),
            test: travel_corpus(500, 3),
            source: "generated travel corpus (3000 / 300 / 500 sentences)".into(),
        }
    }

    /// Reads the corpus in `dir`, whichever of four layouts it holds (tried in this order):
    ///
    /// - `train/` and `test/` folders (and `valid/` or `dev/`) with `seq.in` and `seq.out`;
    /// - `train.conll` and `test.conll` (and `dev.conll` or `valid.conll`);
    /// - `train.conllu` and `test.conllu` (and `dev.conllu`), or Universal
    ///   Dependencies' names `…-train.conllu`, each word tagged with `column`;
    /// - ATIS files `train_dev` or `train`, and `test` (`.gz` or plain), one
    ///   `word:TAG … <=> intent` per line.
    ///
    /// Without a dev set, the last [`DEV_SENTENCES`] training sentences (at most a fifth) are one.
    pub fn open(dir: &Path, column: ConlluColumn) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::io(dir, std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder")));
        }
        let seq = |sub: &str| -> Option<Result<Vec<TaggedSentence>>> {
            let d = dir.join(sub);
            d.join("seq.in").is_file().then(|| read_seq_in_out(&d.join("seq.in"), &d.join("seq.out")))
        };
        if let Some(train) = seq("train") {
            let test = seq("test").ok_or_else(|| Error::format(dir, "has train/seq.in but no test/seq.in"))??;
            let dev = seq("valid").or_else(|| seq("dev")).transpose()?;
            let (train, dev) = split(train?, dev);
            return Ok(Corpus { train, dev, test, source: format!("{} (seq.in/seq.out)", dir.display()) });
        }
        if let Some(train) = first_file(dir, &["train.conll", "train.txt.conll"]) {
            let test = first_file(dir, &["test.conll"])
                .ok_or_else(|| Error::format(dir, "has train.conll but no test.conll"))?;
            let dev = first_file(dir, &["dev.conll", "valid.conll"]).map(|p| read_conll(&p)).transpose()?;
            let (train, dev) = split(read_conll(&train)?, dev);
            return Ok(Corpus { train, dev, test: read_conll(&test)?, source: format!("{} (CoNLL)", dir.display()) });
        }
        if let Some(train) = conllu_file(dir, "train")? {
            let test =
                conllu_file(dir, "test")?.ok_or_else(|| Error::format(dir, "has train.conllu but no test.conllu"))?;
            let dev = conllu_file(dir, "dev")?.map(|p| read_conllu(&p, column)).transpose()?;
            let (train, dev) = split(read_conllu(&train, column)?, dev);
            return Ok(Corpus {
                train,
                dev,
                test: read_conllu(&test, column)?,
                source: format!("{} (CoNLL-U, FORM → {})", dir.display(), column.name().to_uppercase()),
            });
        }
        let (train_names, test_names) =
            (["train_dev.gz", "train_dev", "train.gz", "train", "train.txt"], ["test.gz", "test", "test.txt"]);
        unambiguous(dir, &train_names)?;
        unambiguous(dir, &test_names)?;
        let (train, test) = (first_file(dir, &train_names), first_file(dir, &test_names));
        match (train, test) {
            (Some(train), Some(test)) => {
                let (train, dev) = split(read_atis(&train)?, None);
                Ok(Corpus {
                    train,
                    dev,
                    test: read_atis(&test)?,
                    source: format!("{} (ATIS word:TAG; dev = last {DEV_SENTENCES} of train)", dir.display()),
                })
            }
            _ => Err(Error::format(
                dir,
                "no corpus found; expected ATIS files (train_dev or train, and test; word:TAG … <=> intent per line), \
                 train/ and test/ folders with seq.in and seq.out, train.conll and test.conll, \
                 or train.conllu and test.conllu",
            )),
        }
    }

    /// [`Corpus::open`] on `dir`, or the travel corpus without one.
    pub fn open_or_travel(dir: Option<&Path>, column: ConlluColumn) -> Result<Self> {
        dir.map_or_else(|| Ok(Corpus::travel()), |d| Corpus::open(d, column))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_layout_is_found_and_a_dev_set_split_off_when_missing() {
        let dir = std::env::temp_dir().join(format!("saddle-corpus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("seq/train")).unwrap();
        std::fs::create_dir_all(dir.join("seq/test")).unwrap();
        let line = "fly:O to:O boston:B-city <=> flight\n";
        for (sub, n) in [("seq/train", 10), ("seq/test", 2)] {
            std::fs::write(dir.join(sub).join("seq.in"), "fly to boston\n".repeat(n)).unwrap();
            std::fs::write(dir.join(sub).join("seq.out"), "O O B-city\n".repeat(n)).unwrap();
        }
        let c = Corpus::open(&dir.join("seq"), ConlluColumn::Upos).unwrap();
        assert_eq!((c.train.len(), c.dev.len(), c.test.len()), (8, 2, 2), "a fifth of 10 held out");
        assert!(c.source.ends_with("(seq.in/seq.out)"));

        std::fs::create_dir_all(dir.join("conll")).unwrap();
        for f in ["train.conll", "test.conll", "dev.conll"] {
            std::fs::write(dir.join("conll").join(f), "fly O\nto O\nboston B-city\n\n").unwrap();
        }
        let c = Corpus::open(&dir.join("conll"), ConlluColumn::Upos).unwrap();
        assert_eq!((c.train.len(), c.dev.len(), c.test.len()), (1, 1, 1), "the corpus's own dev set");

        std::fs::create_dir_all(dir.join("atis")).unwrap();
        std::fs::write(dir.join("atis/train_dev"), line.repeat(3000)).unwrap();
        std::fs::write(dir.join("atis/test"), line).unwrap();
        let c = Corpus::open(&dir.join("atis"), ConlluColumn::Upos).unwrap();
        assert_eq!((c.train.len(), c.dev.len()), (2500, 500));
        assert_eq!(c.train[0].words, ["fly", "to", "boston"]);
        std::fs::write(dir.join("atis/test.gz"), b"").unwrap();
        assert!(Corpus::open(&dir.join("atis"), ConlluColumn::Upos)
            .unwrap_err()
            .to_string()
            .contains("both test and test.gz"));

        std::fs::create_dir_all(dir.join("ud")).unwrap();
        let word = "1\tfly\tfly\tVERB\tVB\t_\t0\troot\t_\t_\n\n";
        for f in ["en_x-ud-train.conllu", "en_x-ud-test.conllu", "dev.conllu"] {
            std::fs::write(dir.join("ud").join(f), word.repeat(3)).unwrap();
        }
        let c = Corpus::open(&dir.join("ud"), ConlluColumn::Xpos).unwrap();
        assert_eq!((c.train.len(), c.dev.len(), c.test.len()), (3, 3, 3));
        assert_eq!(c.train[0].tags, ["VB"]);
        assert!(c.source.ends_with("(CoNLL-U, FORM → XPOS)"), "{}", c.source);
        std::fs::write(dir.join("ud/train.conllu.gz"), b"").unwrap();
        let e = Corpus::open(&dir.join("ud"), ConlluColumn::Upos).unwrap_err().to_string();
        assert!(e.contains("2 CoNLL-U files of the train split (en_x-ud-train.conllu, train.conllu.gz)"), "{e}");

        std::fs::create_dir_all(dir.join("empty")).unwrap();
        assert!(Corpus::open(&dir.join("empty"), ConlluColumn::Upos)
            .unwrap_err()
            .to_string()
            .contains("no corpus found"));
        assert!(Corpus::open(&dir.join("absent"), ConlluColumn::Upos)
            .unwrap_err()
            .to_string()
            .contains("no such folder"));
        assert_eq!(Corpus::open_or_travel(None, ConlluColumn::Upos).unwrap().train.len(), 3000);
    }
}
