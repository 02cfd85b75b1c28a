//! A sequence tagger: embedding → recurrent layers → linear, one tag per word.
//!
//! Letters: B batch, T time, V vocabulary, E embedding size, H hidden size, D
//! directions, C tags.
//!
//! `x: [B, T]` word indices (padded with index 0 after each sentence) →
//! `embedding: [B, T, W·E]`, each word's vector with those of its `k` neighbours
//! on each side, `W = 2k + 1`; with character features (`x: [B, T, 1 + L]`,
//! each word's index then its characters', see [`TaggedDataset`](crate::data::TaggedDataset)),
//! also the word's character CNN features `[B, T, F]`
//! (Ma & Hovy 2016: characters embedded `[B·T, L, Eᶜ]`, a convolution of
//! width 3 with `F` filters over them, the maximum of each filter over the
//! word), concatenated: `[B, T, W·E + F]` (dropout in training) → `rnn` (batch-first, with
//! each sentence's true length, so padding never reaches a state)
//! `: [B, T, D·H]` (dropout in training) → `fc: [B, T, C]`,
//! returned as `[B·T, C]` to meet one label per position. Parameter names are
//! those of a PyTorch module with attributes `embedding`, `rnn` and `fc`.
//!
//! Uses: `nn` layers.

use super::{
    join, uniform_fan_in, CellKind, Crf, Dropout, Embedding, Indices, Linear, Module, Recurrent, RecurrentConfig,
};
use crate::data::{Dataset, TaggedDataset};
use crate::ops::Conv2dOptions;
use crate::ops::CrossEntropyOptions;
use crate::{Rng, Tensor};

/// Sizes of a [`Tagger`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaggerConfig {
    /// The recurrence.
    pub cell: CellKind,
    /// V, `<pad>` (0) and `<unk>` (1) included.
    pub vocab_size: usize,
    /// C.
    pub tags: usize,
    /// E.
    pub embedding_dim: usize,
    /// H.
    pub hidden_size: usize,
    /// Recurrent layers.
    pub num_layers: usize,
    /// Run a second direction from each sentence's end.
    pub bidirectional: bool,
    /// Dropout on the word vectors and on the recurrent outputs, in training.
    #[serde(default)]
    pub dropout: f32,
    /// Words on each side whose vectors join each word's own (Mesnil et al.
    /// 2013's context window of `2·context + 1` words): the recurrence then
    /// reads `[e_{t−k} … e_{t+k}]: (2k+1)·E` at step `t`, zeros past either
    /// end of the sentence. A forward-only RNN sees `k` words ahead.
    #[serde(default)]
    pub context: usize,
    /// A CRF output layer: transition scores between tags, the likelihood
    /// of whole tag sequences in training, Viterbi decoding.
    #[serde(default)]
    pub crf: bool,
    /// Character features: the size of the character vocabulary (`<pad>`
    /// and `<unk>` included), 0 for none.
    #[serde(default)]
    pub char_vocab_size: usize,
    /// Eᶜ, the character-vector size.
    #[serde(default)]
    pub char_dim: usize,
    /// F, the character CNN's filters: features per word.
    #[serde(default)]
    pub char_filters: usize,
}

impl TaggerConfig {
    /// One recurrent layer of `hidden_size` over word vectors of
    /// `embedding_dim`, for `vocab_size` words and `tags` tags; one direction,
    /// no dropout, context, CRF or characters (set those fields after).
    ///
    /// ```
    /// use saddle::nn::{CellKind, Tagger, TaggerConfig};
    /// let cfg = TaggerConfig { bidirectional: true, crf: true, ..TaggerConfig::new(CellKind::Lstm, 50, 5, 16, 32) };
    /// let tagger = Tagger::new(cfg, &mut saddle::Rng::new(0));
    /// assert_eq!(tagger.fc.out_features, 5);
    /// ```
    pub fn new(cell: CellKind, vocab_size: usize, tags: usize, embedding_dim: usize, hidden_size: usize) -> Self {
        TaggerConfig {
            cell,
            vocab_size,
            tags,
            embedding_dim,
            hidden_size,
            num_layers: 1,
            bidirectional: false,
            dropout: 0.0,
            context: 0,
            crf: false,
            char_vocab_size: 0,
            char_dim: 0,
            char_filters: 0,
        }
    }

    /// Whether the tagger reads each word's characters.
    pub fn has_chars(&self) -> bool {
        self.char_vocab_size > 0 && self.char_filters > 0
    }
}

/// Character features of words (Ma & Hovy 2016): `chars: [N, L]` character
/// indices (0 padding) → `embedding: [N, L, Eᶜ]` → a convolution of width 3
/// (padding 1) with `F` filters, `[N, F, L]` → each filter's maximum over
/// the word, `[N, F]`. The convolution's weight is `[F, Eᶜ, 3]`, PyTorch's
/// `Conv1d`, both it and the bias from `U(−1/√(3Eᶜ), 1/√(3Eᶜ))`.
pub struct CharCnn {
    /// `[Vᶜ, Eᶜ]`, row 0 (padding) zero.
    pub embedding: Embedding,
    /// `[F, Eᶜ, 3]`.
    pub weight: Tensor,
    /// `[F]`.
    pub bias: Tensor,
}

impl CharCnn {
    /// Character vectors of `dim` for `vocab_size` characters, `filters` features.
    pub fn new(vocab_size: usize, dim: usize, filters: usize, rng: &mut Rng) -> Self {
        let embedding = Embedding::new(vocab_size, dim, Some(0), rng);
        let weight = uniform_fan_in(&[filters, dim, 3], 3 * dim, rng).requires_grad();
        let bias = uniform_fan_in(&[filters], 3 * dim, rng).requires_grad();
        CharCnn { embedding, weight, bias }
    }

    /// `[N, L]` character indices → `[N, F]` features.
    pub fn forward(&self, chars: &Indices) -> Tensor {
        let (n, l) = (chars.shape()[0], chars.shape()[1]);
        let (f, dim) = (self.weight.shape()[0], self.weight.shape()[1]);
        let e = self.embedding.forward(chars).permute(&[0, 2, 1]).reshape(&[n, dim, 1, l]);
        let options = Conv2dOptions { padding: (0, 1), ..Default::default() };
        let h = e.conv2d(&self.weight.reshape(&[f, dim, 1, 3]), Some(&self.bias), options); // [N, F, 1, L]
        h.reshape(&[n, f, l]).max(2, false)
    }
}

/// Embedding, recurrent layers and a linear layer to tag scores: `x: [B, T]`
/// word indices (padded with 0) → each word's vector with those of its `k`
/// neighbours on each side, `[B, T, (2k+1)·E]` (dropout in training) → the
/// recurrent layers over each sentence's true length, `[B, T, D·H]` (dropout)
/// → `fc`, returned as `[B·T, C]`, one row of tag scores per position;
/// with a [`Crf`], [`Module::loss`] is its likelihood per word (label
/// smoothing does not apply) and [`Module::predict`] its Viterbi path.
/// Parameter names are those of a PyTorch module with attributes
/// `embedding`, `rnn`, `fc` and `crf`. As a [`Module`], `x` holds the indices as
/// floats (the form of a dataset's batches), checked by
/// [`Indices::from_tensor`]: a value that is not a whole number panics.
/// [`Tagger::tag`] takes them as integers.
pub struct Tagger {
    /// `[V, E]`.
    pub embedding: Embedding,
    /// The recurrent layers (batch-first).
    pub rnn: Recurrent,
    /// `[C, D·H]`.
    pub fc: Linear,
    /// Dropout on the word vectors and the recurrent outputs.
    pub dropout: Dropout,
    /// The CRF over the tag scores, if any.
    pub crf: Option<Crf>,
    /// Character features, if any.
    pub chars: Option<CharCnn>,
    /// Words of context on each side.
    context: usize,
}

impl Tagger {
    /// A tagger with PyTorch's initialization of each layer.
    pub fn new(cfg: TaggerConfig, rng: &mut Rng) -> Self {
        let embedding = Embedding::new(cfg.vocab_size, cfg.embedding_dim, Some(0), rng);
        let chars = cfg.has_chars().then(|| CharCnn::new(cfg.char_vocab_size, cfg.char_dim, cfg.char_filters, rng));
        let char_features = if cfg.has_chars() { cfg.char_filters } else { 0 };
        let rc = RecurrentConfig {
            num_layers: cfg.num_layers,
            bidirectional: cfg.bidirectional,
            batch_first: true,
            ..RecurrentConfig::new((2 * cfg.context + 1) * cfg.embedding_dim + char_features, cfg.hidden_size)
        };
        let rnn = Recurrent::new(cfg.cell, rc, rng);
        let d = if cfg.bidirectional { 2 } else { 1 };
        let fc = Linear::new(d * cfg.hidden_size, cfg.tags, true, rng);
        let dropout = Dropout::new(cfg.dropout, rng);
        let crf = cfg.crf.then(|| Crf::new(cfg.tags, rng));
        Tagger { embedding, rnn, fc, dropout, crf, chars, context: cfg.context }
    }
}

impl Tagger {
    /// The most likely tag index of every word of each sentence of `data`
    /// (its tags are not read), `batch_size` sentences at a time, without
    /// recording a graph.
    pub fn tag(&self, data: &TaggedDataset, batch_size: usize) -> Vec<Vec<usize>> {
        let all: Vec<usize> = (0..data.words.len()).collect();
        let mut out = Vec::with_capacity(all.len());
        for chunk in all.chunks(batch_size.max(1)) {
            let (x, _) = data.batch(chunk);
            let t = x.shape()[1];
            let best = crate::no_grad(|| self.predict(&x, &self.forward(&x))); // [B·T]
            out.extend(chunk.iter().enumerate().map(|(b, &i)| best[b * t..][..data.words[i].len()].to_vec()));
        }
        out
    }
}

impl Tagger {
    /// [`Module::forward`], adding `probes[t]` (`[B, H]`) to the first
    /// recurrent layer's forward state after step `t`, as
    /// [`Recurrent::forward_probed`] does: after `backward`, each probe's
    /// gradient is `∂L/∂h_t`.
    pub fn forward_probed(&self, x: &Tensor, probes: Option<&[Tensor]>) -> Tensor {
        let (b, t) = (x.shape()[0], x.shape()[1]);
        let (words, chars) = split_words_and_chars(x);
        let idx = &words;
        let lengths = sentence_lengths(idx, t);
        // Each word with its context window: [B, T, W] indices, W = 2k + 1, 0 (padding) past the ends.
        let (k, w) = (self.context, 2 * self.context + 1);
        let window: Vec<usize> = (0..b * t * w)
            .map(|i| {
                let (row, s, j) = (i / (t * w), i / w % t, i % w);
                (s + j).checked_sub(k).filter(|&p| p < t).map_or(0, |p| idx[row * t + p])
            })
            .collect();
        let e = self.embedding.forward(&Indices::new(window, &[b, t, w]));
        let e = e.reshape(&[b, t, w * self.embedding.weight.shape()[1]]);
        let e = match (&self.chars, chars) {
            (Some(cnn), Some(chars)) => {
                let features = cnn.forward(&chars); // [B·T, F]
                Tensor::cat(&[&e, &features.reshape(&[b, t, features.shape()[1]])], 2)
            }
            (None, None) => e,
            (Some(_), None) => {
                panic!("Tagger: a tagger with character features needs x: [B, T, 1 + L], got {:?}", x.shape())
            }
            (None, Some(_)) => {
                panic!("Tagger: x {:?} holds characters, but the tagger has no character features", x.shape())
            }
        };
        let e = self.dropout.forward(&e); // [B, T, W·E (+ F)]
        let (h, _) = self.rnn.forward_probed(&e, Some(&lengths), None, probes); // [B, T, D·H]
        let c = self.fc.out_features;
        self.fc.forward(&self.dropout.forward(&h)).reshape(&[b * t, c]) // [B·T, C]
    }
}

/// Each sentence's length in `[B, T]` word indices: its words before the padding (index 0).
fn sentence_lengths(words: &[usize], t: usize) -> Vec<usize> {
    words.chunks(t).map(|row| row.iter().position(|&w| w == 0).unwrap_or(t)).collect()
}

/// `x: [B, T]` word indices, or `[B, T, 1 + L]` each word's index then its
/// characters': the `[B·T]` word indices, and the `[B·T, L]` character indices if any.
fn split_words_and_chars(x: &Tensor) -> (Vec<usize>, Option<Indices>) {
    let all = Indices::from_tensor(x);
    match *x.shape() {
        [_, _] => (all.values().to_vec(), None),
        [b, t, width] if width >= 2 => {
            let rows = all.values().chunks(width);
            let words = rows.clone().map(|r| r[0]).collect();
            let chars = rows.flat_map(|r| r[1..].iter().copied()).collect();
            (words, Some(Indices::new(chars, &[b * t, width - 1])))
        }
        _ => panic!("Tagger: x {:?} must be [B, T] word indices or [B, T, 1 + L] with characters", x.shape()),
    }
}

impl Tagger {
    /// Each sentence's length in a batch `x` (`[B, T]`, or `[B, T, 1 + L]`
    /// with characters): its words before the padding.
    pub fn lengths(x: &Tensor) -> Vec<usize> {
        sentence_lengths(&split_words_and_chars(x).0, x.shape()[1])
    }

    /// `[B·T, C]` tag scores as `[B, T, C]` emissions, and each sentence's length.
    fn emissions(x: &Tensor, out: &Tensor) -> (Tensor, Vec<usize>) {
        let (b, t) = (x.shape()[0], x.shape()[1]);
        (out.reshape(&[b, t, out.shape()[1]]), Tagger::lengths(x))
    }
}

impl Module for Tagger {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_probed(x, None)
    }
    fn loss(&self, x: &Tensor, out: &Tensor, y: &[i64], options: CrossEntropyOptions) -> Tensor {
        match &self.crf {
            None => out.cross_entropy(y, options),
            Some(crf) => {
                let (e, lengths) = Tagger::emissions(x, out);
                crf.nll(&e, y, &lengths)
            }
        }
    }
    fn predict(&self, x: &Tensor, out: &Tensor) -> Vec<usize> {
        let Some(crf) = &self.crf else { return out.argmax(1) };
        let (e, lengths) = Tagger::emissions(x, out);
        // Padding positions get tag 0; their labels are ignored.
        let mut tags = vec![0; out.shape()[0]];
        for (row, path) in tags.chunks_mut(e.shape()[1]).zip(crf.decode(&e, &lengths)) {
            row[..path.len()].copy_from_slice(&path);
        }
        tags
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        self.embedding.visit_parameters(&join(prefix, "embedding"), f);
        if let Some(cnn) = &self.chars {
            cnn.embedding.visit_parameters(&join(prefix, "char_embedding"), f);
            f(&join(prefix, "char_conv.weight"), &cnn.weight);
            f(&join(prefix, "char_conv.bias"), &cnn.bias);
        }
        self.rnn.visit_parameters(&join(prefix, "rnn"), f);
        self.fc.visit_parameters(&join(prefix, "fc"), f);
        if let Some(crf) = &self.crf {
            crf.visit_parameters(&join(prefix, "crf"), f);
        }
    }
    fn set_training(&mut self, training: bool) {
        self.rnn.set_training(training);
        self.dropout.set_training(training);
    }
    fn describe(&self) -> String {
        format!(
            "Tagger(\n  (embedding): {}{}\n  (rnn): {}\n  (fc): {}{}\n)",
            self.embedding.describe(),
            self.chars.as_ref().map_or(String::new(), |c| {
                let (f, dim) = (c.weight.shape()[0], c.weight.shape()[1]);
                format!(
                    "\n  (char_embedding): {}\n  (char_conv): Conv1d({dim}, {f}, kernel_size=(3,), padding=(1,))",
                    c.embedding.describe()
                )
            }),
            self.rnn.describe(),
            self.fc.describe(),
            self.crf.as_ref().map_or(String::new(), |c| format!("\n  (crf): {}", c.describe()))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small tagger's sizes: 10 words, 3 tags, vectors of 4, 5 GRU units, nothing optional.
    fn small() -> TaggerConfig {
        TaggerConfig::new(CellKind::Gru, 10, 3, 4, 5)
    }

    #[test]
    fn shapes_names_and_dropout_only_in_training() {
        let cfg = TaggerConfig { bidirectional: true, dropout: 0.5, context: 1, ..small() };
        let mut m = Tagger::new(cfg, &mut Rng::new(0));
        let names: Vec<String> = m.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names[0], "embedding.weight");
        assert!(names.contains(&"rnn.weight_hh_l0_reverse".to_string()) && names.contains(&"fc.bias".to_string()));
        let x = Tensor::from_vec(vec![3.0, 4.0, 5.0, 6.0, 7.0, 0.0], &[2, 3]);
        let train = m.forward(&x);
        assert_eq!(train.shape(), &[6, 3]);
        m.set_training(false);
        let (a, b) = (m.forward(&x).to_vec(), m.forward(&x).to_vec());
        assert_eq!(a, b, "no dropout in evaluation");
        assert_ne!(a, train.to_vec(), "dropout in training");
        // Word indices are whole numbers: 2.5 is a mistake, not word 2.
        let x = Tensor::from_vec(vec![3.0, 2.5, 5.0, 6.0, 7.0, 0.0], &[2, 3]);
        let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.forward(&x))).unwrap_err();
        let msg = e.downcast_ref::<String>().unwrap();
        assert!(msg.contains("element 1 of a [2, 3] tensor is 2.5, not an index"), "{msg}");
    }

    #[test]
    fn a_crf_tagger_trains_by_the_sequence_likelihood_and_tags_by_viterbi() {
        let cfg = TaggerConfig { cell: CellKind::Lstm, tags: 4, crf: true, ..small() };
        let m = Tagger::new(cfg, &mut Rng::new(0));
        let names: Vec<String> = m.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(&names[names.len() - 3..], ["crf.transitions", "crf.start_transitions", "crf.end_transitions"]);
        let x = Tensor::from_vec(vec![3.0, 4.0, 5.0, 6.0, 7.0, 0.0], &[2, 3]);
        let y = [0, 1, 2, 3, 0, crate::data::IGNORE];
        let out = m.forward(&x);
        let crf = m.crf.as_ref().unwrap();
        let want = crf.nll(&out.reshape(&[2, 3, 4]), &y, &[3, 2]).item();
        assert_eq!(m.loss(&x, &out, &y, CrossEntropyOptions::default()).item(), want);
        let paths = crf.decode(&out.reshape(&[2, 3, 4]), &[3, 2]);
        let mut want = paths[0].clone();
        want.extend(&paths[1]);
        want.push(0);
        assert_eq!(m.predict(&x, &out), want, "Viterbi paths, padding tagged 0");
    }

    #[test]
    fn character_features_match_pytorch() {
        let fx = crate::ops::testing::Fixtures::load("char_cnn");
        for case in fx.cases("char_cnn") {
            let mut cnn = CharCnn::new(7, 4, 6, &mut Rng::new(0));
            cnn.embedding.weight = fx.param(&case, "embedding");
            (cnn.weight, cnn.bias) = (fx.param(&case, "weight"), fx.param(&case, "bias"));
            let chars: Vec<usize> = fx.indices(&case, "chars").iter().map(|&c| c as usize).collect();
            let out = cnn.forward(&Indices::new(chars, &[3, 5]));
            let inputs = [("embedding", &cnn.embedding.weight), ("weight", &cnn.weight), ("bias", &cnn.bias)];
            fx.check_forward_backward(&case, &out, &inputs);
        }
    }

    #[test]
    fn character_features_see_case_and_unknown_words() {
        let cfg = TaggerConfig { bidirectional: true, char_vocab_size: 6, char_dim: 3, char_filters: 4, ..small() };
        let m = Tagger::new(cfg, &mut Rng::new(0));
        let names: Vec<String> = m.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names[1..4], ["char_embedding.weight", "char_conv.weight", "char_conv.bias"]);
        assert_eq!(m.rnn.config().input_size, 4 + 4);
        // Two unknown words (index 1) that differ in one character get different tag scores.
        let x = |c: f32| Tensor::from_vec(vec![1.0, 2.0, 3.0, 1.0, 2.0, c], &[1, 2, 3]);
        let (a, b) = (m.forward(&x(3.0)).to_vec(), m.forward(&x(4.0)).to_vec());
        assert_ne!(a[3..], b[3..]);
        let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.forward(&Tensor::zeros(&[1, 2]))));
        assert!(e.unwrap_err().downcast_ref::<String>().unwrap().contains("needs x: [B, T, 1 + L]"));
    }

    #[test]
    fn a_context_window_lets_a_forward_rnn_see_the_next_words_and_never_the_padding() {
        for context in [0, 2] {
            let cfg = TaggerConfig { cell: CellKind::RnnTanh, context, ..small() };
            let m = Tagger::new(cfg, &mut Rng::new(0));
            assert_eq!(m.rnn.config().input_size, (2 * context + 1) * 4);
            let out = |words: [f32; 4]| m.forward(&Tensor::from_vec(words.to_vec(), &[1, 4])).to_vec();
            let (a, b) = (out([3.0, 4.0, 5.0, 6.0]), out([3.0, 4.0, 9.0, 6.0]));
            // Word 2 changed: with k = 2 words 0 and 1 see it, without a window neither does.
            assert_eq!(a[..6] == b[..6], context == 0, "context {context}");
            // Padding after a sentence reads as nothing: the same outputs as the sentence alone.
            let short = m.forward(&Tensor::from_vec(vec![3.0, 4.0], &[1, 2])).to_vec();
            crate::ops::testing::assert_close("padding", &out([3.0, 4.0, 0.0, 0.0])[..6], &short, 1e-6);
        }
    }
}
