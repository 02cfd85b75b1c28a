//! Gradient flow through time: how much of the loss reaches each step of a
//! recurrence.

use crate::data::TaggedSentence;
use crate::{Rng, Tensor};

/// `‖∂L/∂h_t‖` for t = 1…T (Frobenius norm over the batch).
///
/// `loss(probes)` must add `probes[t]` (zeros of `shape`, `[B, H]`) to the
/// recurrent state after step `t`, as
/// [`Recurrent::forward_probed`](crate::nn::Recurrent::forward_probed) does, and
/// return the scalar loss; the gradient reaching each probe is `∂L/∂h_t`
/// through every path.
pub fn time_flow(steps: usize, shape: &[usize], loss: impl FnOnce(&[Tensor]) -> Tensor) -> Vec<f64> {
    let probes: Vec<Tensor> = (0..steps).map(|_| Tensor::zeros(shape).requires_grad()).collect();
    loss(&probes).backward();
    probes
        .iter()
        .map(|p| p.with_grad_mut(|g| g.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt()).unwrap_or(0.0))
        .collect()
}

/// A batch of the cue task: `x: [B, T, 2]` with the class one-hot at the
/// first step and noise (σ = 0.1) after, and the classes. The class can only
/// be read from the last state if the first step's input survives `T − 1`
/// steps of recurrence.
pub fn cue_batch(batch: usize, steps: usize, rng: &mut Rng) -> (Tensor, Vec<i64>) {
    let y: Vec<i64> = (0..batch).map(|_| rng.below(2) as i64).collect();
    let mut x = vec![0.0f32; batch * steps * 2];
    for (b, &c) in y.iter().enumerate() {
        x[b * steps * 2 + c as usize] = 1.0;
        for v in &mut x[b * steps * 2 + 2..(b + 1) * steps * 2] {
            *v = rng.normal(0.0, 0.1);
        }
    }
    (Tensor::from_vec(x, &[batch, steps, 2]), y)
}

/// A batch of the adding problem (Hochreiter and Schmidhuber 1997): `x: [B, T, 2]`,
/// at each step a value drawn from `U(0, 1)` and a marker, 1 at two steps and 0
/// elsewhere; the target `y: [B, 1]` is the sum of the two marked values. The
/// first marker lies in the first tenth of the sequence, the second in its
/// second half, so the first value must be carried about `T` steps. Always
/// answering 1 scores a mean squared error of 1/6.
///
/// ```
/// let (x, y) = saddle::diagnose::adding_batch(4, 50, &mut saddle::Rng::new(0));
/// let (x, y) = (x.to_vec(), y.to_vec());
/// for b in 0..4 {
///     let row = &x[b * 100..(b + 1) * 100];
///     let marked: Vec<usize> = (0..50).filter(|&t| row[2 * t + 1] == 1.0).collect();
///     assert!(marked.len() == 2 && marked[0] < 5 && marked[1] >= 25);
///     assert_eq!(y[b], row[2 * marked[0]] + row[2 * marked[1]]);
/// }
/// ```
pub fn adding_batch(batch: usize, steps: usize, rng: &mut Rng) -> (Tensor, Tensor) {
    let (mut x, mut y) = (vec![0.0f32; batch * steps * 2], Vec::with_capacity(batch));
    for b in 0..batch {
        let row = &mut x[b * steps * 2..(b + 1) * steps * 2];
        for t in 0..steps {
            row[2 * t] = rng.uniform(0.0, 1.0);
        }
        let first = rng.below((steps / 10).max(1));
        let second = steps / 2 + rng.below(steps - steps / 2);
        row[2 * first + 1] = 1.0;
        row[2 * second + 1] = 1.0;
        y.push(row[2 * first] + row[2 * second]);
    }
    (Tensor::from_vec(x, &[batch, steps, 2]), Tensor::from_vec(y, &[batch, 1]))
}

/// The cue task as tagged text, for a tagger: each sentence opens with a
/// colour (`red`, `green`, `blue` or `amber`, tagged `O`), then `distance − 1`
/// filler words drawn at random (`O`), then `answer` question marks tagged
/// with the colour as one chunk (`B-red`, `I-red`, …). Every answer word is at
/// least `distance` steps from the only word that tells it, so a recurrence
/// must carry the colour that far; the filler tags teach nothing about it.
///
/// ```
/// let corpus = saddle::diagnose::cue_corpus(3, 100, 20, 0);
/// let s = &corpus[0];
/// assert_eq!((s.words.len(), s.tags[100].strip_prefix("B-")), (120, Some(s.words[0].as_str())));
/// ```
pub fn cue_corpus(n: usize, distance: usize, answer: usize, seed: u64) -> Vec<TaggedSentence> {
    const COLOURS: [&str; 4] = ["red", "green", "blue", "amber"];
    const FILLERS: [&str; 12] =
        ["the", "a", "then", "some", "more", "after", "this", "one", "and", "so", "later", "here"];
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let colour = COLOURS[rng.below(COLOURS.len())];
            let mut words = vec![colour.to_string()];
            words.extend((1..distance).map(|_| FILLERS[rng.below(FILLERS.len())].to_string()));
            words.extend((0..answer).map(|_| "?".to_string()));
            let mut tags = vec!["O".to_string(); distance];
            tags.extend((0..answer).map(|i| format!("{}-{colour}", if i == 0 { "B" } else { "I" })));
            TaggedSentence { words, tags, intent: None }
        })
        .collect()
}
