//! Classification metrics: accuracy and the confusion matrix.
//!
//! Uses: `data`.

use crate::data::IGNORE;

/// How many `predictions` equal their label (an ignored row's label, −100, never matches).
pub(crate) fn count_correct(predictions: &[usize], labels: &[i64]) -> usize {
    predictions.iter().zip(labels).filter(|(p, y)| **p as i64 == **y).count()
}

/// How many labels count: all but [`IGNORE`].
pub(crate) fn counted(labels: &[i64]) -> usize {
    labels.iter().filter(|&&y| y != IGNORE).count()
}

/// The result of [`evaluate`](super::evaluate).
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy.
    pub loss: f32,
    /// Fraction classified correctly, ignored rows left out.
    pub accuracy: f32,
    /// Predicted class of each example.
    pub predictions: Vec<usize>,
    /// True class of each example.
    pub labels: Vec<i64>,
}

impl Evaluation {
    pub(crate) fn new(loss: f64, predictions: Vec<usize>, labels: Vec<i64>) -> Self {
        let correct = predictions.iter().zip(&labels).filter(|(p, y)| **p as i64 == **y).count();
        let accuracy = correct as f32 / counted(&labels).max(1) as f32;
        Evaluation { loss: loss as f32, accuracy, predictions, labels }
    }
}

/// `m[true][predicted]` counts over `classes` classes.
///
/// ```
/// let m = saddle::train::confusion_matrix(&[0, 1, 1], &[0, 0, 1], 2);
/// assert_eq!(m, vec![vec![1, 1], vec![0, 1]]);
/// ```
pub fn confusion_matrix(predictions: &[usize], labels: &[i64], classes: usize) -> Vec<Vec<usize>> {
    let mut m = vec![vec![0; classes]; classes];
    for (&p, &y) in predictions.iter().zip(labels) {
        if (y as usize) < classes && p < classes {
            m[y as usize][p] += 1;
        }
    }
    m
}

/// Slot-filling metrics of `tagger` on `sentences`, as `conlleval` computes
/// them: the gold tags are the sentences' own strings, so a tag the tag set
/// never saw counts as a miss.
pub fn slot_metrics(
    tagger: &mut crate::nn::Tagger,
    sentences: &[crate::data::TaggedSentence],
    v: &super::Vocabularies,
) -> crate::data::ChunkMetrics {
    use crate::nn::Module;
    tagger.set_training(false);
    let tagset = v.tagset();
    let mut m = crate::data::ChunkMetrics::default();
    for (s, predicted) in sentences.iter().zip(tagger.tag(&v.dataset(sentences), 64)) {
        let predicted: Vec<String> = predicted.iter().map(|&i| tagset.token(i).to_string()).collect();
        m.add(&s.tags, &predicted);
    }
    m
}
