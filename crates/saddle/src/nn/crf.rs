//! A linear-chain CRF output layer: learned tag-to-tag transition scores over
//! a network's per-word tag scores.
//!
//! Letters: B sentences, T positions, C tags.
//!
//! Parameters (the names of the `pytorch-crf` package): `transitions: [C, C]`
//! (`A[i, j]`: tag `i` followed by tag `j`), `start_transitions`,
//! `end_transitions: [C]`, each drawn from `U(−0.1, 0.1)`. A sentence's tags
//! score `start[y₀] + Σ_t e[t, y_t] + Σ_t A[y_{t−1}, y_t] + end[y_{L−1}]`;
//! training minimizes [`Tensor::crf_nll`], tagging takes
//! [`Tensor::crf_decode`]'s best sequence.
//!
//! Uses: `ops` (crf), `tensor`, `rng`.

use super::{join, Module};
use crate::{Rng, Tensor};

/// Transition scores between `C` tags, and of the first and the last tag.
pub struct Crf {
    /// `[C, C]`: row tag followed by column tag.
    pub transitions: Tensor,
    /// `[C]`: a sentence starting with each tag.
    pub start_transitions: Tensor,
    /// `[C]`: a sentence ending with each tag.
    pub end_transitions: Tensor,
}

impl Crf {
    /// A CRF over `tags` tags, every score from `U(−0.1, 0.1)`.
    pub fn new(tags: usize, rng: &mut Rng) -> Self {
        let u = |shape: &[usize], rng: &mut Rng| Tensor::uniform(shape, -0.1, 0.1, rng).requires_grad();
        Crf { transitions: u(&[tags, tags], rng), start_transitions: u(&[tags], rng), end_transitions: u(&[tags], rng) }
    }

    /// The negative log-likelihood per word of `tags` (`[B·T]`, negative
    /// where unknown) given `emissions: [B, T, C]` and each sentence's length.
    pub fn nll(&self, emissions: &Tensor, tags: &[i64], lengths: &[usize]) -> Tensor {
        emissions.crf_nll(&self.transitions, &self.start_transitions, &self.end_transitions, tags, lengths)
    }

    /// The best tag sequence of each sentence, `lengths[b]` tags for sentence `b`.
    pub fn decode(&self, emissions: &Tensor, lengths: &[usize]) -> Vec<Vec<usize>> {
        emissions.crf_decode(&self.transitions, &self.start_transitions, &self.end_transitions, lengths)
    }
}

impl Module for Crf {
    /// The emissions unchanged: the CRF acts in [`Crf::nll`] and [`Crf::decode`].
    fn forward(&self, x: &Tensor) -> Tensor {
        x.clone()
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        f(&join(prefix, "transitions"), &self.transitions);
        f(&join(prefix, "start_transitions"), &self.start_transitions);
        f(&join(prefix, "end_transitions"), &self.end_transitions);
    }
    fn describe(&self) -> String {
        format!("CRF(num_tags={})", self.start_transitions.numel())
    }
}
