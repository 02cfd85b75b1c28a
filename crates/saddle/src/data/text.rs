//! Tagged text for slot filling and part-of-speech tagging: readers for four layouts, a vocabulary, and
//! chunk metrics computed exactly as the CoNLL `conlleval` script does.
//!
//! Layouts, each giving one [`TaggedSentence`] per sentence:
//! - ATIS, one sentence per line: `word:TAG word:TAG … <=> intent` (the tag is
//!   after the last `:`, so words may contain colons);
//! - `seq.in` / `seq.out`: words on one line of the first file, tags on the
//!   same line of the second;
//! - CoNLL columns: one token per line, the word first and the tag last,
//!   sentences separated by blank lines;
//! - CoNLL-U (Universal Dependencies): ten tab-separated fields per word,
//!   the word `FORM` tagged with a chosen column ([`ConlluColumn`]).
//!
//! A malformed line is an [`Error::Format`] naming the file, the line and the
//! column. Gzip-compressed files are read as they are.
//!
//! Uses: `error`.

use crate::{Error, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// A sentence with one tag per word, and the sentence's intent if the layout has one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaggedSentence {
    /// The words.
    pub words: Vec<String>,
    /// One tag per word: slots in BIO form (`O`, `B-type`, `I-type`), parts of speech, ….
    pub tags: Vec<String>,
    /// The intent label (ATIS layout only).
    pub intent: Option<String>,
}

impl TaggedSentence {
    /// `words` to be tagged: their tags are empty, which no tag set knows,
    /// so a [`TaggedDataset`](super::TaggedDataset) labels them ignored.
    pub fn untagged(words: Vec<String>) -> Self {
        TaggedSentence { tags: vec![String::new(); words.len()], words, intent: None }
    }
}

/// The most words a sentence may have: a padded batch is `B × T`, so one
/// runaway line (a file without line breaks) would make every batch that large.
pub const MAX_SENTENCE_WORDS: usize = 1000;

/// The text of `path`, decompressing gzip; bytes that are not UTF-8 are named by line and column.
fn read_text(path: &Path) -> Result<String> {
    let bytes = super::read_maybe_gzip(path)?;
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = good.len() - good.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1) + 1;
        at(path, line, column, format!("byte {:#04x} is not UTF-8 text", e.as_bytes()[good.len()]))
    })
}

fn at(path: &Path, line: usize, column: usize, message: impl std::fmt::Display) -> Error {
    Error::format(path, format!("line {line}, column {column}: {message}"))
}

/// `text` for an error message: at most 80 characters, the rest elided.
pub(crate) fn quote(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((cut, _)) => format!("'{}…' ({} characters)", &text[..cut], text.chars().count()),
        None => format!("'{text}'"),
    }
}

/// An error if a sentence that reached `words` words (ending at `line`) is too long.
fn check_length(path: &Path, line: usize, words: usize) -> Result<()> {
    if words > MAX_SENTENCE_WORDS {
        return Err(at(
            path,
            line,
            1,
            format!("a sentence of more than {MAX_SENTENCE_WORDS} words (a missing line break?)"),
        ));
    }
    Ok(())
}

/// Reads the ATIS layout: `word:TAG … <=> intent`, one sentence per line.
pub fn read_atis(path: &Path) -> Result<Vec<TaggedSentence>> {
    let text = read_text(path)?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (tokens, intent) = match line.split_once("<=>") {
            Some((t, i)) => (t, Some(i.trim().to_string())),
            None => (line, None),
        };
        let (mut words, mut tags) = (Vec::new(), Vec::new());
        let mut column = 1;
        for token in tokens.split(' ') {
            if !token.is_empty() {
                match token.rsplit_once(':') {
                    Some((w, t)) if !w.is_empty() && !t.is_empty() => {
                        words.push(w.to_string());
                        tags.push(t.to_string());
                    }
                    _ => return Err(at(path, n + 1, column, format!("{} is not word:TAG", quote(token)))),
                }
            }
            column += token.chars().count() + 1;
        }
        if words.is_empty() {
            return Err(at(path, n + 1, 1, "no word:TAG tokens before '<=>'"));
        }
        check_length(path, n + 1, words.len())?;
        out.push(TaggedSentence { words, tags, intent });
    }
    Ok(out)
}

/// Reads the two-file layout: words in `seq_in`, tags in `seq_out`, line by line.
pub fn read_seq_in_out(seq_in: &Path, seq_out: &Path) -> Result<Vec<TaggedSentence>> {
    let (words, tags) = (read_text(seq_in)?, read_text(seq_out)?);
    let (wl, tl): (Vec<&str>, Vec<&str>) = (words.lines().collect(), tags.lines().collect());
    if wl.len() != tl.len() {
        return Err(Error::format(
            seq_out,
            format!("{} lines of tags for {} lines of words in {}", tl.len(), wl.len(), seq_in.display()),
        ));
    }
    let mut out = Vec::new();
    for (n, (w, t)) in wl.iter().zip(&tl).enumerate() {
        let w: Vec<String> = w.split_whitespace().map(String::from).collect();
        let t: Vec<String> = t.split_whitespace().map(String::from).collect();
        if w.len() != t.len() {
            return Err(at(seq_out, n + 1, 1, format!("{} tags for {} words", t.len(), w.len())));
        }
        check_length(seq_in, n + 1, w.len())?;
        if !w.is_empty() {
            out.push(TaggedSentence { words: w, tags: t, intent: None });
        }
    }
    Ok(out)
}

/// Reads CoNLL columns: word first, tag last, blank lines between sentences.
pub fn read_conll(path: &Path) -> Result<Vec<TaggedSentence>> {
    let text = read_text(path)?;
    let mut out = Vec::new();
    let mut current = TaggedSentence::default();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with("-DOCSTART-") {
            if !current.words.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 2 {
            return Err(at(path, n + 1, 1, format!("{} has one column; expected a word and a tag", quote(line))));
        }
        check_length(path, n + 1, current.words.len() + 1)?;
        current.words.push(cols[0].to_string());
        current.tags.push(cols[cols.len() - 1].to_string());
    }
    if !current.words.is_empty() {
        out.push(current);
    }
    Ok(out)
}

/// A column of a CoNLL-U file that a tagger can learn to predict from `FORM`.
///
/// ```
/// use saddle::data::ConlluColumn;
/// assert_eq!("xpos".parse::<ConlluColumn>().unwrap(), ConlluColumn::Xpos);
/// assert_eq!(ConlluColumn::default().to_string(), "upos");
/// assert!("form".parse::<ConlluColumn>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConlluColumn {
    /// Column 4: the universal part of speech (17 tags: `NOUN`, `VERB`, …).
    #[default]
    Upos,
    /// Column 5: the language-specific part of speech (Penn tags for English).
    Xpos,
    /// Column 6: the morphological features (`Number=Sing|Person=3`), each set one tag.
    Feats,
    /// Column 8: the dependency relation to the head word.
    Deprel,
}

impl ConlluColumn {
    const ALL: [ConlluColumn; 4] = [ConlluColumn::Upos, ConlluColumn::Xpos, ConlluColumn::Feats, ConlluColumn::Deprel];

    /// The column's name in the format's documentation, lower-cased.
    pub fn name(self) -> &'static str {
        match self {
            ConlluColumn::Upos => "upos",
            ConlluColumn::Xpos => "xpos",
            ConlluColumn::Feats => "feats",
            ConlluColumn::Deprel => "deprel",
        }
    }

    /// Its index among the ten fields (0-based).
    fn field(self) -> usize {
        match self {
            ConlluColumn::Upos => 3,
            ConlluColumn::Xpos => 4,
            ConlluColumn::Feats => 5,
            ConlluColumn::Deprel => 7,
        }
    }
}

impl std::fmt::Display for ConlluColumn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ConlluColumn {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        ConlluColumn::ALL.into_iter().find(|c| c.name() == s.to_lowercase()).ok_or_else(|| {
            Error::config(
                "tag column",
                format!("'{s}' is not a CoNLL-U column to tag with; expected upos, xpos, feats or deprel"),
            )
        })
    }
}

/// Reads a CoNLL-U file (Universal Dependencies): one word per line in ten
/// tab-separated fields `ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS
/// MISC`, a blank line after each sentence, `#` comment lines; each word
/// `FORM` tagged with `column`. As the format says, a multi-word token
/// (`ID` a range such as `3-4`, the surface form of the words that follow)
/// and an empty node (`ID` such as `8.1`) are not words of the sentence and
/// are skipped. Word IDs must count 1, 2, 3, … within each sentence; a line
/// that breaks the format names its file, line and column.
pub fn read_conllu(path: &Path, column: ConlluColumn) -> Result<Vec<TaggedSentence>> {
    let text = read_text(path)?;
    let mut out = Vec::new();
    let mut current = TaggedSentence::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            if !current.words.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        // The character column where field `i` starts.
        let col = |i: usize| fields[..i].iter().map(|f| f.chars().count() + 1).sum::<usize>() + 1;
        if fields.len() != 10 {
            let found = fields.len();
            return Err(at(
                path,
                n + 1,
                1,
                format!("{found} tab-separated fields; CoNLL-U has 10 (ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC)"),
            ));
        }
        let id = fields[0];
        let is_number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        match id.split_once(['-', '.']) {
            Some((a, b)) if is_number(a) && is_number(b) => continue,
            Some(_) => {
                return Err(at(
                    path,
                    n + 1,
                    1,
                    format!("ID {} is not a word number, a range (3-4) or an empty node (8.1)", quote(id)),
                ))
            }
            None => {}
        }
        let expected = current.words.len() + 1;
        if id.parse::<usize>().ok() != Some(expected) {
            return Err(at(
                path,
                n + 1,
                1,
                format!("ID {} where word {expected} of the sentence was expected (a missing blank line?)", quote(id)),
            ));
        }
        let (form, tag) = (fields[1], fields[column.field()]);
        for (i, value) in [(1, form), (column.field(), tag)] {
            if value.is_empty() {
                let what = if i == 1 { "FORM".to_string() } else { column.name().to_uppercase() };
                return Err(at(path, n + 1, col(i), format!("{what} is empty")));
            }
        }
        check_length(path, n + 1, expected)?;
        current.words.push(form.to_string());
        current.tags.push(tag.to_string());
    }
    if !current.words.is_empty() {
        out.push(current);
    }
    Ok(out)
}

/// Writes `sentences` as [`read_conll`] reads them: `word tag` per line, a
/// blank line after each sentence; atomically (a temporary file renamed).
///
/// ```
/// use saddle::data::{read_conll, write_conll, TaggedSentence};
/// let s = TaggedSentence { words: vec!["to".into(), "boston".into()], tags: vec!["O".into(), "B-city".into()], intent: None };
/// let path = std::env::temp_dir().join(format!("saddle-doc-{}.conll", std::process::id()));
/// write_conll(&path, &[s.clone()]).unwrap();
/// assert_eq!(read_conll(&path).unwrap(), vec![s]);
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub fn write_conll(path: &Path, sentences: &[TaggedSentence]) -> Result<()> {
    let mut text = String::new();
    for s in sentences {
        for (w, t) in s.words.iter().zip(&s.tags) {
            text += &format!("{w} {t}\n");
        }
        text.push('\n');
    }
    crate::io::write_atomically(path, text.as_bytes())
}

/// Token ↔ index, with `<pad>` = 0 and `<unk>` = 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vocab {
    itos: Vec<String>,
    stoi: HashMap<String, usize>,
}

impl Vocab {
    /// Index of the padding token.
    pub const PAD: usize = 0;
    /// Index of the unknown token.
    pub const UNK: usize = 1;

    /// The tokens seen at least `min_count` times, most frequent first (ties in
    /// alphabetical order), after `<pad>` and `<unk>` (which, met among the
    /// tokens, are not counted).
    pub fn build<'a>(tokens: impl IntoIterator<Item = &'a str>, min_count: usize) -> Self {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        tokens.into_iter().filter(|&t| t != "<pad>" && t != "<unk>").for_each(|t| *counts.entry(t).or_default() += 1);
        let mut kept: Vec<(&str, usize)> = counts.into_iter().filter(|&(_, c)| c >= min_count.max(1)).collect();
        kept.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let itos: Vec<String> =
            ["<pad>", "<unk>"].into_iter().chain(kept.into_iter().map(|(t, _)| t)).map(String::from).collect();
        let stoi = itos.iter().enumerate().map(|(i, t)| (t.clone(), i)).collect();
        Vocab { itos, stoi }
    }

    /// The vocabulary `tokens`, in this order (for tag sets and saved vocabularies).
    pub fn from_tokens(tokens: Vec<String>) -> Self {
        let stoi = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i)).collect();
        Vocab { itos: tokens, stoi }
    }

    /// The index of `token`, or `<unk>`'s.
    pub fn index(&self, token: &str) -> usize {
        self.stoi.get(token).copied().unwrap_or(Vocab::UNK)
    }
    /// The index of `token`, if known.
    pub fn get(&self, token: &str) -> Option<usize> {
        self.stoi.get(token).copied()
    }
    /// The token at `index`.
    pub fn token(&self, index: usize) -> &str {
        &self.itos[index]
    }
    /// Number of tokens, `<pad>` and `<unk>` included.
    pub fn len(&self) -> usize {
        self.itos.len()
    }
    /// Whether the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.itos.is_empty()
    }
    /// All tokens in index order.
    pub fn tokens(&self) -> &[String] {
        &self.itos
    }
}

/// A chunk: its type and its first and last word.
pub type Chunk = (String, usize, usize);

fn split_tag(tag: &str) -> (&str, &str) {
    match tag.split_once('-') {
        Some((prefix, kind)) => (prefix, kind),
        None => (tag, ""),
    }
}

/// Whether `tag` is a chunk tag: `O`, or `B-`, `I-`, `E-`, `S-` (and BILOU's
/// `L-`, `U-`) before a type.
fn is_chunk_tag(tag: &str) -> bool {
    tag == "O"
        || tag
            .split_once('-')
            .is_some_and(|(p, kind)| matches!(p, "B" | "I" | "E" | "S" | "L" | "U") && !kind.is_empty())
}

/// Whether `tags` mark chunks (every tag `O` or `B-`/`I-`/`E-`/`S-`/`L-`/`U-`
/// and a type, as BIO, IOB2, BIOES and BILOU do, one at least not `O`), so
/// that chunk precision, recall and F1 mean something; otherwise tags are
/// labels of single words, such as parts of speech.
///
/// ```
/// use saddle::data::marks_chunks;
/// assert!(marks_chunks(["O", "B-city", "I-city"]));
/// assert!(!marks_chunks(["NOUN", "VERB", "O"]));
/// ```
pub fn marks_chunks<'a>(tags: impl IntoIterator<Item = &'a str>) -> bool {
    let mut any = false;
    for t in tags {
        if !is_chunk_tag(t) {
            return false;
        }
        any |= t != "O";
    }
    any
}

/// The chunks of a tag sequence in BIO, IOB2, BIOES or BILOU form, with
/// `conlleval`'s rules: a chunk starts at `B-` or `S-`, at an `I-` or `E-`
/// after `O`, after a chunk of another type or after a chunk's end (an `I-`
/// with no `B-` before it opens a chunk); it ends before `O`, `B-`, `S-` or a
/// change of type, and at `E-` and `S-`. (`L-` reads as `E-`, `U-` as `S-`.)
pub fn chunks(tags: &[String]) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut open: Option<(String, usize)> = None;
    for (i, tag) in tags.iter().enumerate() {
        let (prefix, kind) = match split_tag(tag) {
            ("L", kind) => ("E", kind),
            ("U", kind) => ("S", kind),
            other => other,
        };
        let starts = match prefix {
            "B" | "S" => true,
            "I" | "E" => open.as_ref().is_none_or(|(t, _)| t != kind),
            _ => false,
        };
        let ends_before = open.is_some() && (starts || prefix == "O" || open.as_ref().is_some_and(|(t, _)| t != kind));
        if ends_before {
            let (t, s) = open.take().expect("open chunk");
            out.push((t, s, i - 1));
        }
        if starts {
            open = Some((kind.to_string(), i));
        }
        if matches!(prefix, "E" | "S") {
            if let Some((t, s)) = open.take() {
                out.push((t, s, i));
            }
        }
    }
    if let Some((t, s)) = open {
        out.push((t, s, tags.len() - 1));
    }
    out
}

/// Precision, recall and F1 (in %) for one chunk type or for all.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ChunkScore {
    /// Chunks found in the prediction.
    pub predicted: usize,
    /// Chunks in the reference.
    pub gold: usize,
    /// Chunks in both, same type and same span.
    pub correct: usize,
}

impl ChunkScore {
    /// `100 · correct / predicted`.
    pub fn precision(&self) -> f64 {
        if self.predicted == 0 {
            0.0
        } else {
            100.0 * self.correct as f64 / self.predicted as f64
        }
    }
    /// `100 · correct / gold`.
    pub fn recall(&self) -> f64 {
        if self.gold == 0 {
            0.0
        } else {
            100.0 * self.correct as f64 / self.gold as f64
        }
    }
    /// The harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

/// Tagging metrics over a corpus: chunks as `conlleval` reports them, token
/// accuracy, and each tag's counts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChunkMetrics {
    /// All chunk types together.
    pub overall: ChunkScore,
    /// Per chunk type.
    pub by_type: BTreeMap<String, ChunkScore>,
    /// Per tag, each word a unit: `gold` words have the tag, `predicted`
    /// were given it, `correct` both (so `recall` is the tag's accuracy).
    pub by_tag: BTreeMap<String, ChunkScore>,
    /// Tokens tagged correctly.
    pub correct_tokens: usize,
    /// Tokens.
    pub tokens: usize,
}

impl ChunkMetrics {
    /// Adds one sentence's gold and predicted tags (same length).
    pub fn add(&mut self, gold: &[String], predicted: &[String]) {
        assert_eq!(
            gold.len(),
            predicted.len(),
            "ChunkMetrics::add: {} gold tags, {} predicted",
            gold.len(),
            predicted.len()
        );
        self.tokens += gold.len();
        self.correct_tokens += gold.iter().zip(predicted).filter(|(g, p)| g == p).count();
        for (g, p) in gold.iter().zip(predicted) {
            let gold_tag = self.by_tag.entry(g.clone()).or_default();
            gold_tag.gold += 1;
            gold_tag.correct += usize::from(g == p);
            self.by_tag.entry(p.clone()).or_default().predicted += 1;
        }
        let (g, p) = (chunks(gold), chunks(predicted));
        for c in &g {
            self.overall.gold += 1;
            self.by_type.entry(c.0.clone()).or_default().gold += 1;
        }
        for c in &p {
            self.overall.predicted += 1;
            let s = self.by_type.entry(c.0.clone()).or_default();
            s.predicted += 1;
            if g.contains(c) {
                s.correct += 1;
                self.overall.correct += 1;
            }
        }
    }
    /// Token accuracy in %.
    pub fn token_accuracy(&self) -> f64 {
        100.0 * self.correct_tokens as f64 / self.tokens.max(1) as f64
    }
    /// Whether the gold tags mark chunks ([`marks_chunks`]): then chunk F1
    /// is the measure; otherwise token accuracy and the per-tag counts.
    pub fn has_chunks(&self) -> bool {
        marks_chunks(self.by_tag.iter().filter(|(_, s)| s.gold > 0).map(|(t, _)| t.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn chunks_follow_conlleval() {
        let c = |s: &str| chunks(&tags(s)).into_iter().map(|(t, a, b)| format!("{t}:{a}-{b}")).collect::<Vec<_>>();
        assert_eq!(c("B-city I-city O B-date"), ["city:0-1", "date:3-3"]);
        // An I- with no B- before it opens a chunk; a change of type closes one.
        assert_eq!(c("I-city I-city I-date O"), ["city:0-1", "date:2-2"]);
        assert_eq!(c("B-city B-city"), ["city:0-0", "city:1-1"]);
        assert_eq!(c("O I-time"), ["time:1-1"]);
        // BIOES (and BILOU): E- and S- end a chunk, so an I- after them opens a new one.
        assert_eq!(c("B-city E-city S-city I-city E-city"), ["city:0-1", "city:2-2", "city:3-4"]);
        assert_eq!(c("B-org L-org U-org"), ["org:0-1", "org:2-2"]);
    }

    #[test]
    fn tags_of_single_words_get_per_tag_counts_and_no_chunks() {
        let mut m = ChunkMetrics::default();
        m.add(&tags("PRON VERB DET NOUN"), &tags("PRON VERB DET VERB"));
        assert!(!m.has_chunks());
        assert_eq!(m.by_tag["NOUN"], ChunkScore { predicted: 0, gold: 1, correct: 0 });
        assert_eq!(m.by_tag["VERB"], ChunkScore { predicted: 2, gold: 1, correct: 1 });
        assert_eq!(m.token_accuracy(), 75.0);
        let mut m = ChunkMetrics::default();
        m.add(&tags("O B-LOC E-LOC"), &tags("O O O"));
        assert!(m.has_chunks());
    }

    #[test]
    fn precision_recall_f1_by_hand() {
        // Gold: city 1-1, date 3-4. Predicted: city 1-1 (right), date 3-3 (wrong span), time 5-5 (spurious).
        let mut m = ChunkMetrics::default();
        m.add(&tags("O B-city O B-date I-date O"), &tags("O B-city O B-date O B-time"));
        assert_eq!(m.overall, ChunkScore { predicted: 3, gold: 2, correct: 1 });
        assert!((m.overall.precision() - 100.0 / 3.0).abs() < 1e-9);
        assert!((m.overall.recall() - 50.0).abs() < 1e-9);
        assert!((m.overall.f1() - 40.0).abs() < 1e-9);
        assert_eq!(m.by_type["city"].f1(), 100.0);
        assert_eq!(m.by_type["time"], ChunkScore { predicted: 1, gold: 0, correct: 0 });
        assert!((m.token_accuracy() - 100.0 * 4.0 / 6.0).abs() < 1e-9);
        // An I- without B- in the prediction still matches a gold B- chunk of the same span.
        let mut m = ChunkMetrics::default();
        m.add(&tags("B-city I-city"), &tags("I-city I-city"));
        assert_eq!(m.overall.correct, 1);
    }

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        crate::data::scratch_file("text", name, text)
    }

    #[test]
    fn readers_and_their_errors() {
        let atis = read_atis(&write("a.txt", "i:O fly:O to:O 10:30:B-time <=> atis_flight\n")).unwrap();
        assert_eq!(atis[0].words, ["i", "fly", "to", "10:30"]);
        assert_eq!(atis[0].tags[3], "B-time");
        assert_eq!(atis[0].intent.as_deref(), Some("atis_flight"));
        let e = read_atis(&write("b.txt", "i:O\nfly:O to <=> x\n")).unwrap_err().to_string();
        assert!(e.ends_with("b.txt: line 2, column 7: 'to' is not word:TAG"), "{e}");
        let s = read_seq_in_out(&write("seq.in", "fly to boston\n"), &write("seq.out", "O O B-city\n")).unwrap();
        assert_eq!(s[0].tags, ["O", "O", "B-city"]);
        let e = read_seq_in_out(&write("seq2.in", "fly to\n"), &write("seq2.out", "O\n")).unwrap_err().to_string();
        assert!(e.contains("seq2.out: line 1, column 1: 1 tags for 2 words"), "{e}");
        let conllu = "# sent_id = 1\n# text = Google's here.\n\
                      1-2\tGoogle's\t_\t_\t_\t_\t_\t_\t_\t_\n\
                      1\tGoogle\tGoogle\tPROPN\tNNP\tNumber=Sing\t3\tnsubj\t_\t_\n\
                      2\t's\tbe\tAUX\tVBZ\t_\t3\tcop\t_\t_\n\
                      2.1\tis\tbe\tAUX\tVBZ\t_\t_\t_\t3:cop\t_\n\
                      3\there\there\tADV\tRB\t_\t0\troot\t_\tSpaceAfter=No\n\
                      4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_\n\n\
                      1\tYes\tyes\tINTJ\tUH\t_\t0\troot\t_\t_\n";
        let u = read_conllu(&write("a.conllu", conllu), ConlluColumn::Upos).unwrap();
        assert_eq!(u.len(), 2);
        assert_eq!(u[0].words, ["Google", "'s", "here", "."], "the range and the empty node are not words");
        assert_eq!(u[0].tags, ["PROPN", "AUX", "ADV", "PUNCT"]);
        let x = read_conllu(&write("b.conllu", conllu), ConlluColumn::Xpos).unwrap();
        assert_eq!(x[1].tags, ["UH"]);
        for (bad, needle) in [
            ("1\tGoogle\tGoogle\tPROPN\n", "line 1, column 1: 4 tab-separated fields; CoNLL-U has 10"),
            ("1\ta\ta\tX\tX\t_\t0\tr\t_\t_\n3\tb\tb\tX\tX\t_\t0\tr\t_\t_\n", "line 2, column 1: ID '3' where word 2"),
            ("1\ta\ta\t\tX\t_\t0\tr\t_\t_\n", "line 1, column 7: UPOS is empty"),
            ("1-x\ta\ta\tX\tX\t_\t0\tr\t_\t_\n", "ID '1-x' is not a word number"),
        ] {
            let e = read_conllu(&write("bad.conllu", bad), ConlluColumn::Upos).unwrap_err().to_string();
            assert!(e.contains("bad.conllu: ") && e.contains(needle), "{e}");
        }
        let c = read_conll(&write("c.conll", "EU NNP B-ORG\nrejects VBZ O\n\nPeter NNP B-PER\n")).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].tags, ["B-PER"]);
        let e = read_conll(&write("d.conll", "EU B-ORG\nrejects\n")).unwrap_err().to_string();
        assert!(e.contains("line 2, column 1"), "{e}");
    }

    #[test]
    fn runaway_input_is_refused_and_quoted_short() {
        let long = "w:O ".repeat(MAX_SENTENCE_WORDS + 1);
        let e = read_atis(&write("long.txt", &format!("i:O\n{long}\n"))).unwrap_err().to_string();
        assert!(e.contains("line 2, column 1: a sentence of more than 1000 words"), "{e}");
        let e = read_conll(&write("long.conll", &"w O\n".repeat(MAX_SENTENCE_WORDS + 1))).unwrap_err().to_string();
        assert!(e.contains("line 1001, column 1: a sentence of more than 1000 words"), "{e}");
        let token = "x".repeat(10_000_000);
        let e = read_atis(&write("token.txt", &format!("i:O {token}\n"))).unwrap_err().to_string();
        assert!(e.len() < 200 && e.contains("…' (10000000 characters) is not word:TAG"), "{e}");
        let path = write("latin1.txt", "");
        std::fs::write(&path, b"i:O\nfly:O caf\xe9:O\n").unwrap();
        let e = read_atis(&path).unwrap_err().to_string();
        assert!(e.ends_with("line 2, column 10: byte 0xe9 is not UTF-8 text"), "{e}");
    }

    #[test]
    fn vocabulary_with_pad_unk_and_min_count() {
        let v = Vocab::build("to boston to denver to boston".split(' '), 2);
        assert_eq!(v.tokens(), ["<pad>", "<unk>", "to", "boston"]);
        assert_eq!(v.index("denver"), Vocab::UNK);
        assert_eq!(v.index("to"), 2);
    }
}
