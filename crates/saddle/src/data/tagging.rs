//! Sentences as a [`Dataset`] for a tagger: word indices in, one tag index per
//! word out.
//!
//! Letters: B sentences in a batch, T the longest of them.
//!
//! A batch is `x: [B, T]`, the word indices (as `f32`, exact below 2²⁴) padded
//! with `<pad>` (0) after each sentence's end, and the labels of the `B·T`
//! positions in row-major order, [`IGNORE`](super::IGNORE) at padding and
//! for tags the tag set does not know. With each word's characters (for a
//! tagger with character features), `x: [B, T, 1 + W]`: at `[b, t, 0]` the
//! word's index, then the indices of its first `W` characters (`W` the
//! longest word of the batch, at most [`MAX_WORD_CHARS`]), padded with 0.
//!
//! Uses: `data::text`, `tensor`.

use super::{Dataset, TaggedSentence, Vocab, IGNORE};
use crate::Tensor;

/// The form under which a word is looked up in a vocabulary: lower-cased,
/// every ASCII digit written as `0`, so that numbers never seen in training
/// (flight numbers, times, fares) share the vector of those of the same shape.
///
/// ```
/// assert_eq!(saddle::data::word_form("Flight838"), "flight000");
/// ```
pub fn word_form(word: &str) -> String {
    word.chars().map(|c| if c.is_ascii_digit() { '0' } else { c }).collect::<String>().to_lowercase()
}

/// The index of a word of text in a word vocabulary: its [`word_form`]'s,
/// or `<unk>`'s for a word the vocabulary does not know and for the special
/// tokens typed as text (a `<pad>` among the words would end the sentence
/// there).
///
/// ```
/// use saddle::data::{word_index, Vocab};
/// let vocab = Vocab::build(["boston", "to"], 1);
/// assert_eq!(word_index(&vocab, "Boston"), vocab.index("boston"));
/// assert_eq!(word_index(&vocab, "<pad>"), Vocab::UNK);
/// ```
pub fn word_index(vocab: &Vocab, word: &str) -> usize {
    known_index(vocab, &word_form(word))
}

/// The index of `token` in `vocab`, or `<unk>`'s for a token it does not
/// know and for the special tokens met as text.
fn known_index(vocab: &Vocab, token: &str) -> usize {
    match vocab.get(token) {
        Some(i) if i > Vocab::UNK => i,
        _ => Vocab::UNK,
    }
}

/// Text split into words by [`tokenize`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tokens {
    /// The words to tag, in order.
    pub words: Vec<String>,
    /// Punctuation left out because the vocabulary does not know it.
    pub dropped: Vec<String>,
}

/// Punctuation split off the ends of a word.
fn is_edge_punctuation(c: char) -> bool {
    matches!(c, ',' | '.' | ';' | ':' | '!' | '?' | '"' | '\'' | '(' | ')' | '[' | ']' | '{' | '}')
        || matches!(c, '“' | '”' | '‘' | '’' | '…' | '«' | '»')
}

/// Splits `text` into words as the training corpora are split: at white
/// space, with punctuation at either end of a word (`boston,` `"denver"`)
/// split off as words of its own, unless `vocab` knows the word whole
/// (`a.m.`). Punctuation that `vocab` does not know is left out, into
/// [`Tokens::dropped`]: a corpus without punctuation (ATIS) never showed the
/// model any.
///
/// ```
/// use saddle::data::{tokenize, Vocab};
/// let atis = Vocab::build(["from", "boston", "to", "denver", "a.m."], 1);
/// let t = tokenize("from Boston, to (Denver) a.m.!", &atis);
/// assert_eq!(t.words, ["from", "Boston", "to", "Denver", "a.m."]);
/// assert_eq!(t.dropped, [",", "(", ")", "!"]);
/// let conll = Vocab::build([",", "boston"], 1);
/// assert_eq!(tokenize("boston,", &conll).words, ["boston", ","]);
/// ```
pub fn tokenize(text: &str, vocab: &Vocab) -> Tokens {
    let mut t = Tokens { words: Vec::new(), dropped: Vec::new() };
    let push = |piece: &str, t: &mut Tokens| {
        let punctuation = piece.chars().all(is_edge_punctuation);
        if punctuation && word_index(vocab, piece) == Vocab::UNK {
            t.dropped.push(piece.to_string());
        } else {
            t.words.push(piece.to_string());
        }
    };
    for piece in text.split_whitespace() {
        if word_index(vocab, piece) != Vocab::UNK {
            push(piece, &mut t);
            continue;
        }
        let start = piece.len() - piece.trim_start_matches(is_edge_punctuation).len();
        let stripped = start + piece[start..].trim_end_matches(is_edge_punctuation).len();
        // A word the vocabulary knows with some of the punctuation after it ("a.m." in "a.m.!") keeps it.
        let end = (stripped..=piece.len())
            .rev()
            .filter(|&k| piece.is_char_boundary(k))
            .find(|&k| word_index(vocab, &piece[start..k]) != Vocab::UNK)
            .unwrap_or(stripped);
        let core = &piece[start..end];
        piece[..start].chars().for_each(|c| push(c.encode_utf8(&mut [0; 4]), &mut t));
        if !core.is_empty() {
            push(core, &mut t);
        }
        piece[end..].chars().for_each(|c| push(c.encode_utf8(&mut [0; 4]), &mut t));
    }
    t
}

/// The most characters of a word that character features read: its first 24
/// (longer words, such as web addresses, are rare and long enough to tell).
pub const MAX_WORD_CHARS: usize = 24;

/// The indices in `chars` of the first [`MAX_WORD_CHARS`] characters of
/// `word`, as written (case kept), `<unk>`'s for a character `chars` does not know.
///
/// ```
/// use saddle::data::{char_indices, Vocab};
/// let chars = Vocab::build(["a", "b", "B"], 1);
/// assert_eq!(char_indices(&chars, "aBz"), vec![chars.index("a"), chars.index("B"), Vocab::UNK]);
/// ```
pub fn char_indices(chars: &Vocab, word: &str) -> Vec<usize> {
    word.chars().take(MAX_WORD_CHARS).map(|c| known_index(chars, c.encode_utf8(&mut [0; 4]))).collect()
}

/// Tagged sentences indexed by a word vocabulary and a tag set, and, for a
/// tagger with character features, by a character vocabulary.
#[derive(Clone, Debug)]
pub struct TaggedDataset {
    /// Word indices of each sentence.
    pub words: Vec<Vec<usize>>,
    /// Tag indices of each sentence (`IGNORE` for an unknown tag).
    pub tags: Vec<Vec<i64>>,
    /// The character indices of each word of each sentence; empty without
    /// character features.
    pub chars: Vec<Vec<Vec<usize>>>,
}

impl TaggedDataset {
    /// Indexes `sentences` (each word by its [`word_form`]) with `vocab` and `tagset`.
    pub fn new(sentences: &[TaggedSentence], vocab: &Vocab, tagset: &Vocab) -> Self {
        let words = sentences.iter().map(|s| s.words.iter().map(|w| word_index(vocab, w)).collect()).collect();
        let tags = sentences
            .iter()
            .map(|s| s.tags.iter().map(|t| tagset.get(t).map_or(IGNORE, |i| i as i64)).collect())
            .collect();
        TaggedDataset { words, tags, chars: Vec::new() }
    }

    /// Also each word's characters ([`char_indices`] in `chars`): batches
    /// then carry them, `x: [B, T, 1 + W]`.
    pub fn with_chars(mut self, sentences: &[TaggedSentence], chars: &Vocab) -> Self {
        self.chars = sentences.iter().map(|s| s.words.iter().map(|w| char_indices(chars, w)).collect()).collect();
        self
    }
}

/// `[B, T]` word indices padded with `<pad>` for `sentences`.
pub fn pad_batch(sentences: &[&[usize]]) -> Tensor {
    let t = sentences.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
    let mut x = vec![Vocab::PAD as f32; sentences.len() * t];
    for (b, s) in sentences.iter().enumerate() {
        x[b * t..][..s.len()].iter_mut().zip(s.iter()).for_each(|(d, &w)| *d = w as f32);
    }
    Tensor::from_vec(x, &[sentences.len(), t])
}

impl Dataset for TaggedDataset {
    fn len(&self) -> usize {
        self.words.len()
    }
    fn batch(&self, indices: &[usize]) -> (Tensor, Vec<i64>) {
        let sentences: Vec<&[usize]> = indices.iter().map(|&i| self.words[i].as_slice()).collect();
        let mut x = pad_batch(&sentences);
        let t = x.shape()[1];
        if !self.chars.is_empty() {
            let w = indices.iter().flat_map(|&i| self.chars[i].iter().map(Vec::len)).max().unwrap_or(0).max(1);
            let mut xc = vec![0.0f32; indices.len() * t * (1 + w)];
            for (b, &i) in indices.iter().enumerate() {
                for (k, (&word, chars)) in self.words[i].iter().zip(&self.chars[i]).enumerate() {
                    let row = &mut xc[(b * t + k) * (1 + w)..][..1 + w];
                    row[0] = word as f32;
                    row[1..].iter_mut().zip(chars).for_each(|(d, &c)| *d = c as f32);
                }
            }
            x = Tensor::from_vec(xc, &[indices.len(), t, 1 + w]);
        }
        let mut y = vec![IGNORE; indices.len() * t];
        for (b, &i) in indices.iter().enumerate() {
            y[b * t..][..self.tags[i].len()].copy_from_slice(&self.tags[i]);
        }
        (x, y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_pad_words_and_ignore_padded_tags() {
        let s = |w: &str, t: &str| TaggedSentence {
            words: w.split(' ').map(String::from).collect(),
            tags: t.split(' ').map(String::from).collect(),
            intent: None,
        };
        let data = [s("fly to Boston", "O O B-city"), s("leave", "B-nope")];
        let vocab = Vocab::build(["fly", "to", "boston", "leave"], 1);
        let tagset = Vocab::from_tokens(vec!["O".into(), "B-city".into()]);
        let d = TaggedDataset::new(&data, &vocab, &tagset);
        let (x, y) = d.batch(&[0, 1]);
        assert_eq!(x.shape(), &[2, 3]);
        let boston = vocab.index("boston") as f32;
        assert_eq!(x.to_vec()[2], boston, "words are lower-cased");
        assert_eq!(&x.to_vec()[4..], &[0.0, 0.0], "padding");
        assert_eq!(y, vec![0, 0, 1, IGNORE, IGNORE, IGNORE], "unknown tag and padding are ignored");
        // With characters: [B, T, 1 + W], the word then its characters, case kept.
        let chars = Vocab::build(["f", "l", "y", "B"], 1);
        let (x, _) = d.with_chars(&data, &chars).batch(&[0, 1]);
        assert_eq!(x.shape(), &[2, 3, 7], "'Boston' is the longest word: 6 characters");
        let c = |ch: &str| chars.index(ch) as f32;
        let unk = Vocab::UNK as f32;
        assert_eq!(&x.to_vec()[..7], &[vocab.index("fly") as f32, c("f"), c("l"), c("y"), 0.0, 0.0, 0.0]);
        assert_eq!(&x.to_vec()[14..21], &[boston, c("B"), unk, unk, unk, unk, unk]);
        assert_eq!(&x.to_vec()[35..], &[0.0; 7], "padding");
    }
}
