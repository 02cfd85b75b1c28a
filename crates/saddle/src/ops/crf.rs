//! Linear-chain conditional random field: the negative log-likelihood of tag
//! sequences by the forward algorithm, and Viterbi decoding.
//!
//! Letters: B sentences, T positions (the longest sentence), C tags, L one
//! sentence's length.
//!
//! Tags `y₀ … y_{L−1}` of a sentence score
//! `s(y) = start[y₀] + Σ_t e[t, y_t] + Σ_{t≥1} A[y_{t−1}, y_t] + end[y_{L−1}]`
//! for emissions `e: [B, T, C]` (a row per position, from the network),
//! transitions `A: [C, C]` (from the row's tag to the column's) and the
//! scores `start`, `end: [C]` of the first and last tag: the parameters and
//! names of the `pytorch-crf` package. The sentence's likelihood is
//! `p(y) = exp s(y) / Z` with `Z = Σ_y exp s(y)` over all `Cᴸ` sequences, and
//! `crf_nll` returns `Σ_b (log Z_b − log Z_b^gold) / Σ_b L_b`: the negative
//! log-likelihood per word (`pytorch-crf`'s `reduction="token_mean"`), so
//! that a learning rate tuned for per-word cross-entropy suits it. `Z^gold`
//! sums over the sequences that agree with the gold tags where they are
//! known, which is `exp s(gold)` when all are: a position tagged
//! [`IGNORE`](crate::data::IGNORE) (a tag the tag set does not know) is
//! marginalized rather than guessed.
//!
//! Backward: `∂ log Z/∂e[t, j] = P(y_t = j)`, `∂ log Z/∂A[i, j] =
//! Σ_t P(y_{t−1} = i, y_t = j)`, `∂ log Z/∂start[j] = P(y₀ = j)`,
//! `∂ log Z/∂end[j] = P(y_{L−1} = j)`: the marginals of the forward–backward
//! algorithm; the gold term subtracts the same marginals under its
//! constraint (indicators of the gold path when every tag is known).
//!
//! The forward and backward recursions run on probabilities rescaled at
//! every position (`α'_t = α_t / max_j α_t[j]`, the logs of the scales
//! summed), so a step is a `[C] · [C, C]` product with `exp(A)` computed once
//! and `C` exponentials, not `C²` of them as in log space. A sentence whose
//! rescaled values underflow (scores that differ by more than ~80) is redone
//! in log space, which is also how a partly known gold sequence is summed.
//!
//! `crf_decode`: the Viterbi algorithm, the highest-scoring sequence of each
//! sentence (the first maximum where scores tie).
//!
//! Uses: `tensor`.

use crate::tensor::{Backward, Tensor};
use rayon::prelude::*;

/// Next tags that a Viterbi step takes at a time: one AVX2 vector of `f32`.
const NEXT: usize = 8;

/// The chain's parameters as slices, and `exp(A)` rescaled by columns.
struct Chain<'a> {
    c: usize,
    trans: &'a [f32],
    start: &'a [f32],
    end: &'a [f32],
    /// `exp(A[i, j] − shift[j])`: each column's largest entry is 1.
    exp_trans: Vec<f32>,
    /// The same, transposed: `[j, i]`.
    exp_trans_t: Vec<f32>,
    /// `shift[j] = max_i A[i, j]`.
    shift: Vec<f32>,
}

impl<'a> Chain<'a> {
    fn new(c: usize, trans: &'a [f32], start: &'a [f32], end: &'a [f32]) -> Self {
        let shift: Vec<f32> =
            (0..c).map(|j| (0..c).map(|i| trans[i * c + j]).fold(f32::NEG_INFINITY, f32::max)).collect();
        let exp_trans: Vec<f32> = (0..c * c).map(|k| (trans[k] - shift[k % c]).exp()).collect();
        let exp_trans_t = (0..c * c).map(|k| exp_trans[(k % c) * c + k / c]).collect();
        Chain { c, trans, start, end, exp_trans, exp_trans_t, shift }
    }
}

/// One sentence's share of the gradient of the shared parameters.
struct SharedGrad {
    trans: Vec<f32>,
    start: Vec<f32>,
    end: Vec<f32>,
}

impl SharedGrad {
    fn zeros(c: usize) -> Self {
        SharedGrad { trans: vec![0.0; c * c], start: vec![0.0; c], end: vec![0.0; c] }
    }
}

/// Where a sentence's gradient goes: its emissions' rows, the shared part, and the sign.
struct GradSink<'s> {
    e: &'s mut [f32],
    shared: &'s mut SharedGrad,
    sign: f32,
}

/// `log Σ exp(xs)`, `−∞` for an empty or all-`−∞` input.
fn log_sum_exp(xs: impl Iterator<Item = f32> + Clone) -> f32 {
    let m = xs.clone().fold(f32::NEG_INFINITY, f32::max);
    if m == f32::NEG_INFINITY {
        return m;
    }
    m + xs.map(|x| (x - m).exp()).sum::<f32>().ln()
}

/// `log Z` of one sentence (`e: [L, C]`) by rescaled probabilities, adding
/// `sign ·` its marginals to `grad`; `None` when the rescaled values
/// underflow (nothing is added then).
fn log_partition_scaled(ch: &Chain, e: &[f32], grad: Option<&mut GradSink>) -> Option<f32> {
    let (c, l) = (ch.c, e.len() / ch.c);
    let usable = |s: f32| s >= f32::MIN_POSITIVE && s.is_finite();
    // alpha[t]: α'_t; w[t][j] = exp(e[t, j] + shift[j] − m_t), the emission factor of step t ≥ 1.
    let mut alpha = vec![0.0f32; l * c];
    let mut w = vec![0.0f32; l * c];
    let first: Vec<f32> = (0..c).map(|j| ch.start[j] + e[j]).collect();
    let m0 = first.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    alpha[..c].iter_mut().zip(&first).for_each(|(a, v)| *a = (v - m0).exp());
    let mut log_scale = m0 as f64;
    for t in 1..l {
        let row = &e[t * c..][..c];
        let m = (0..c).map(|j| row[j] + ch.shift[j]).fold(f32::NEG_INFINITY, f32::max);
        let wt = &mut w[t * c..][..c];
        wt.iter_mut().enumerate().for_each(|(j, x)| *x = (row[j] + ch.shift[j] - m).exp());
        let (prev, next) = alpha.split_at_mut(t * c);
        let (prev, v) = (&prev[(t - 1) * c..], &mut next[..c]);
        for (i, &a) in prev.iter().enumerate() {
            v.iter_mut().zip(&ch.exp_trans[i * c..][..c]).for_each(|(v, x)| *v += a * x);
        }
        v.iter_mut().zip(wt.iter()).for_each(|(v, w)| *v *= w);
        let s = v.iter().copied().fold(0.0f32, f32::max);
        if !usable(s) {
            return None;
        }
        v.iter_mut().for_each(|v| *v /= s);
        log_scale += m as f64 + (s as f64).ln();
    }
    let me = ch.end.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut beta: Vec<f32> = ch.end.iter().map(|x| (x - me).exp()).collect();
    let last = &alpha[(l - 1) * c..];
    let tail: f32 = last.iter().zip(&beta).map(|(a, b)| a * b).sum();
    if !usable(tail) {
        return None;
    }
    let log_z = (log_scale + me as f64 + (tail as f64).ln()) as f32;
    let Some(g) = grad else { return Some(log_z) };

    // Backward: β'_{t−1} = exp(A') · (w_t ∘ β'_t), rescaled; marginals normalized at each position.
    let mut eu = vec![0.0f32; c];
    let mut u = vec![0.0f32; c];
    let (mut de, mut dt, mut ds) = (vec![0.0f32; l * c], vec![0.0f32; c * c], vec![0.0f32; c]);
    let (mut d_end, mut node) = (vec![0.0f32; c], vec![0.0f32; c]);
    let marginal = |a: &[f32], b: &[f32], out: &mut [f32]| {
        let z: f32 = a.iter().zip(b).map(|(a, b)| a * b).sum();
        out.iter_mut().zip(a.iter().zip(b)).for_each(|(o, (a, b))| *o = a * b / z);
    };
    marginal(last, &beta, &mut d_end);
    de[(l - 1) * c..].copy_from_slice(&d_end);
    for t in (1..l).rev() {
        u.iter_mut().zip(w[t * c..][..c].iter().zip(&beta)).for_each(|(u, (w, b))| *u = w * b);
        // eu[i] = Σ_j exp(A')[i, j]·u[j], each sum in the order of j, for every i at
        // once (a row of exp(A')ᵀ a term), so that it vectorizes across i: one
        // sum at a time waited on each addition in turn.
        eu.fill(0.0);
        for (col, &u) in ch.exp_trans_t.chunks_exact(c).zip(&u) {
            eu.iter_mut().zip(col).for_each(|(x, a)| *x += a * u);
        }
        let prev = &alpha[(t - 1) * c..][..c];
        let norm: f32 = prev.iter().zip(&eu).map(|(a, x)| a * x).sum();
        if !usable(norm) {
            return None;
        }
        for i in 0..c {
            let a = prev[i] / norm;
            dt[i * c..][..c].iter_mut().zip(ch.exp_trans[i * c..][..c].iter().zip(&u)).for_each(|(d, (x, u))| {
                *d += a * x * u;
            });
        }
        marginal(prev, &eu, &mut node);
        de[(t - 1) * c..][..c].copy_from_slice(&node);
        let s = eu.iter().copied().fold(0.0f32, f32::max);
        if !usable(s) {
            return None;
        }
        beta.iter_mut().zip(&eu).for_each(|(b, x)| *b = x / s);
    }
    ds.copy_from_slice(&de[..c]);
    add_scaled(g, &de, &dt, &ds, &d_end);
    Some(log_z)
}

/// `sink += sign · (de, dt, ds, d_end)`.
fn add_scaled(g: &mut GradSink, de: &[f32], dt: &[f32], ds: &[f32], d_end: &[f32]) {
    let sign = g.sign;
    let add = |to: &mut [f32], from: &[f32]| to.iter_mut().zip(from).for_each(|(t, f)| *t += sign * f);
    add(g.e, de);
    add(&mut g.shared.trans, dt);
    add(&mut g.shared.start, ds);
    add(&mut g.shared.end, d_end);
}

/// `log Z` of one sentence (`e: [L, C]`) in log space, over the sequences
/// whose tag at `t` is `known[t]` wherever that is not negative, adding
/// `sign ·` the marginals to `grad`.
fn log_partition_log_space(ch: &Chain, e: &[f32], known: Option<&[i64]>, grad: Option<&mut GradSink>) -> f32 {
    let (c, l) = (ch.c, e.len() / ch.c);
    let em = |t: usize, j: usize| match known.map_or(-1, |k| k[t]) {
        k if k >= 0 && k as usize != j => f32::NEG_INFINITY,
        _ => e[t * c + j],
    };
    let mut alpha = vec![0.0f32; l * c];
    (0..c).for_each(|j| alpha[j] = ch.start[j] + em(0, j));
    for t in 1..l {
        for j in 0..c {
            let prev = &alpha[(t - 1) * c..][..c];
            alpha[t * c + j] = em(t, j) + log_sum_exp((0..c).map(|i| prev[i] + ch.trans[i * c + j]));
        }
    }
    let last = &alpha[(l - 1) * c..];
    let log_z = log_sum_exp((0..c).map(|j| last[j] + ch.end[j]));
    let Some(g) = grad else { return log_z };
    let mut beta = vec![0.0f32; l * c];
    beta[(l - 1) * c..].copy_from_slice(ch.end);
    for t in (1..l).rev() {
        for i in 0..c {
            let next = &beta[t * c..][..c];
            beta[(t - 1) * c + i] = log_sum_exp((0..c).map(|j| ch.trans[i * c + j] + em(t, j) + next[j]));
        }
    }
    let p = |x: f32| if x == f32::NEG_INFINITY { 0.0 } else { (x - log_z).exp() };
    let de: Vec<f32> = (0..l * c).map(|k| p(alpha[k] + beta[k])).collect();
    let mut dt = vec![0.0f32; c * c];
    for t in 1..l {
        for (k, d) in dt.iter_mut().enumerate() {
            let (i, j) = (k / c, k % c);
            *d += p(alpha[(t - 1) * c + i] + ch.trans[k] + em(t, j) + beta[t * c + j]);
        }
    }
    add_scaled(g, &de, &dt, &de[..c], &de[(l - 1) * c..]);
    log_z
}

/// `log Z` of one sentence: rescaled, or in log space where that underflows.
fn log_partition(ch: &Chain, e: &[f32], grad: Option<&mut GradSink>) -> f32 {
    match grad {
        None => log_partition_scaled(ch, e, None).unwrap_or_else(|| log_partition_log_space(ch, e, None, None)),
        // A failed rescaled pass adds nothing, so the log-space pass can add its own.
        Some(g) => match log_partition_scaled(ch, e, Some(&mut *g)) {
            Some(z) => z,
            None => log_partition_log_space(ch, e, None, Some(g)),
        },
    }
}

/// `log Z^gold`: the score of the gold path when every tag is known (adding
/// `sign ·` its indicators to `grad`), else the log-space sum over the
/// sequences that agree with it.
fn log_gold(ch: &Chain, e: &[f32], tags: &[i64], grad: Option<&mut GradSink>) -> f32 {
    if tags.iter().any(|&t| t < 0) {
        return log_partition_log_space(ch, e, Some(tags), grad);
    }
    let c = ch.c;
    let y: Vec<usize> = tags.iter().map(|&t| t as usize).collect();
    let l = y.len();
    let mut s = ch.start[y[0]] + ch.end[y[l - 1]];
    s += (0..l).map(|t| e[t * c + y[t]]).sum::<f32>();
    s += (1..l).map(|t| ch.trans[y[t - 1] * c + y[t]]).sum::<f32>();
    if let Some(g) = grad {
        (0..l).for_each(|t| g.e[t * c + y[t]] += g.sign);
        (1..l).for_each(|t| g.shared.trans[y[t - 1] * c + y[t]] += g.sign);
        g.shared.start[y[0]] += g.sign;
        g.shared.end[y[l - 1]] += g.sign;
    }
    s
}

/// Checks the shapes of a CRF op's arguments; returns `(B, T, C)`.
fn check(
    op: &str,
    e: &Tensor,
    trans: &Tensor,
    start: &Tensor,
    end: &Tensor,
    lengths: &[usize],
) -> (usize, usize, usize) {
    let s = e.shape();
    if s.len() != 3 {
        panic!("{op}: emissions {s:?} must be [B, T, C]");
    }
    let (b, t, c) = (s[0], s[1], s[2]);
    if trans.shape() != [c, c] || start.shape() != [c] || end.shape() != [c] {
        panic!(
            "{op}: for {c} tags the transitions must be [{c}, {c}] and start and end [{c}], got {:?}, {:?}, {:?}",
            trans.shape(),
            start.shape(),
            end.shape()
        );
    }
    if c == 0 {
        panic!("{op}: emissions {s:?} have no tags");
    }
    if lengths.len() != b || lengths.iter().any(|&l| l > t) {
        panic!("{op}: {} lengths {lengths:?} for {b} sentences of at most {t} positions", lengths.len());
    }
    (b, t, c)
}

impl Tensor {
    /// The CRF's negative log-likelihood per word, `Σ_b (log Z_b − log Z_b^gold) / Σ_b L_b`,
    /// for emissions `self: [B, T, C]`, `transitions: [C, C]` (row tag to
    /// column tag), `start`, `end: [C]`, `tags: [B·T]` (row-major; negative,
    /// such as [`IGNORE`](crate::data::IGNORE), where unknown) and each
    /// sentence's length (positions past it are padding). See the module
    /// documentation for the score and the gradients. NaN when every length is 0.
    ///
    /// ```
    /// use saddle::Tensor;
    /// // One word, two tags, no transition used: the loss is softmax cross-entropy.
    /// let e = Tensor::from_vec(vec![1.0, 3.0], &[1, 1, 2]);
    /// let (a, s) = (Tensor::zeros(&[2, 2]), Tensor::zeros(&[2]));
    /// let nll = e.crf_nll(&a, &s, &s, &[0], &[1]);
    /// assert!((nll.item() - (1.0f32.exp() + 3.0f32.exp()).ln() + 1.0).abs() < 1e-6);
    /// ```
    pub fn crf_nll(
        &self,
        transitions: &Tensor,
        start: &Tensor,
        end: &Tensor,
        tags: &[i64],
        lengths: &[usize],
    ) -> Tensor {
        let (b, t, c) = check("crf_nll", self, transitions, start, end, lengths);
        if tags.len() != b * t {
            panic!("crf_nll: {} tags for emissions [{b}, {t}, {c}]", tags.len());
        }
        for (k, &y) in tags.iter().enumerate() {
            if y >= c as i64 && k % t < lengths[k / t] {
                panic!("crf_nll: tag {y} at position {k} is out of range for {c} tags");
            }
        }
        let (e, a, s, en) = (self.data(), transitions.data(), start.data(), end.data());
        let ch = Chain::new(c, &a, &s, &en);
        let words: usize = lengths.iter().sum();
        let record = Tensor::records(&[self, transitions, start, end]);
        let mut de = vec![0.0f32; if record { b * t * c } else { 0 }];
        let sentence = |k: usize, de: Option<&mut [f32]>| -> (f64, Option<SharedGrad>) {
            let l = lengths[k];
            if l == 0 {
                return (0.0, None);
            }
            let (rows, y) = (&e[k * t * c..][..l * c], &tags[k * t..][..l]);
            let Some(de) = de else {
                return ((log_partition(&ch, rows, None) - log_gold(&ch, rows, y, None)) as f64, None);
            };
            let mut shared = SharedGrad::zeros(c);
            let mut sink = GradSink { e: &mut de[..l * c], shared: &mut shared, sign: 1.0 };
            let z = log_partition(&ch, rows, Some(&mut sink));
            sink.sign = -1.0;
            let gold = log_gold(&ch, rows, y, Some(&mut sink));
            ((z - gold) as f64, Some(shared))
        };
        let per_sentence: Vec<(f64, Option<SharedGrad>)> = if record {
            de.par_chunks_mut(t * c).enumerate().map(|(k, de)| sentence(k, Some(de))).collect()
        } else {
            (0..b).into_par_iter().map(|k| sentence(k, None)).collect()
        };
        drop((e, a, s, en));
        // Summed in sentence order, so the result does not depend on the thread count.
        let nll = per_sentence.iter().map(|(v, _)| v).sum::<f64>() / words as f64;
        let mut shared = SharedGrad::zeros(c);
        for g in per_sentence.iter().filter_map(|(_, g)| g.as_ref()) {
            let add = |to: &mut [f32], from: &[f32]| to.iter_mut().zip(from).for_each(|(t, f)| *t += f);
            add(&mut shared.trans, &g.trans);
            add(&mut shared.start, &g.start);
            add(&mut shared.end, &g.end);
        }
        let back = CrfBackward { de, shared, words };
        Tensor::from_op(vec![nll as f32], &[], &[self, transitions, start, end], back)
    }

    /// The highest-scoring tag sequence of each sentence (Viterbi), for
    /// emissions `self: [B, T, C]`, `transitions: [C, C]`, `start`, `end: [C]`
    /// and each sentence's length: `lengths[b]` tags for sentence `b`. Where
    /// scores tie, the lower previous tag wins at each step, and the lower last tag.
    ///
    /// ```
    /// use saddle::Tensor;
    /// // Tag 1 scores higher at both words, but the 1 → 1 transition costs 10.
    /// let e = Tensor::from_vec(vec![0.0, 1.0, 0.0, 2.0], &[1, 2, 2]);
    /// let a = Tensor::from_vec(vec![0.0, 0.0, 0.0, -10.0], &[2, 2]);
    /// let s = Tensor::zeros(&[2]);
    /// assert_eq!(e.crf_decode(&a, &s, &s, &[2]), vec![vec![0, 1]]);
    /// ```
    pub fn crf_decode(&self, transitions: &Tensor, start: &Tensor, end: &Tensor, lengths: &[usize]) -> Vec<Vec<usize>> {
        let (_, t, c) = check("crf_decode", self, transitions, start, end, lengths);
        let (e, a, s, en) = (self.data(), transitions.data(), start.data(), end.data());
        // A with each row padded by −∞ (never a best) to whole blocks of next tags.
        let cp = c.next_multiple_of(NEXT);
        let mut padded = vec![f32::NEG_INFINITY; c * cp];
        padded.chunks_exact_mut(cp).zip(a.chunks_exact(c)).for_each(|(p, a)| p[..c].copy_from_slice(a));
        lengths
            .par_iter()
            .enumerate()
            .map(|(k, &l)| {
                if l == 0 {
                    return Vec::new();
                }
                let rows = &e[k * t * c..][..l * c];
                let mut delta: Vec<f32> = (0..c).map(|j| s[j] + rows[j]).collect();
                let mut back = vec![0u32; l * cp];
                let mut best = vec![0.0f32; cp];
                for step in 1..l {
                    // A block of next tags at a time, its running maxima and their
                    // previous tags kept in registers over every previous tag;
                    // selects rather than a branch, so that it vectorizes (the
                    // first previous tag wins a tie, as a branch on `v > b` would).
                    let arg = &mut back[step * cp..][..cp];
                    for (n, (bs, gs)) in best.chunks_exact_mut(NEXT).zip(arg.chunks_exact_mut(NEXT)).enumerate() {
                        let (mut b, mut g) = ([f32::NEG_INFINITY; NEXT], [0u32; NEXT]);
                        for (i, (&prev, row)) in delta.iter().zip(padded.chunks_exact(cp)).enumerate() {
                            let row = &row[n * NEXT..][..NEXT];
                            for x in 0..NEXT {
                                let (v, better) = (prev + row[x], prev + row[x] > b[x]);
                                b[x] = if better { v } else { b[x] };
                                g[x] = if better { i as u32 } else { g[x] };
                            }
                        }
                        bs.copy_from_slice(&b);
                        gs.copy_from_slice(&g);
                    }
                    delta.iter_mut().zip(best.iter().zip(&rows[step * c..][..c])).for_each(|(d, (b, e))| *d = b + e);
                }
                let finals = delta.iter().zip(en.iter()).map(|(d, x)| d + x);
                let mut tag =
                    finals.enumerate().fold((0, f32::NEG_INFINITY), |m, (j, v)| if v > m.1 { (j, v) } else { m }).0;
                let mut path = vec![0; l];
                for step in (0..l).rev() {
                    path[step] = tag;
                    tag = back[step * cp + tag] as usize;
                }
                path
            })
            .collect()
    }
}

struct CrfBackward {
    /// `∂(Σ_b NLL_b)/∂e`, `[B·T·C]`.
    de: Vec<f32>,
    shared: SharedGrad,
    words: usize,
}

impl Backward for CrfBackward {
    fn name(&self) -> &'static str {
        "crf_nll"
    }
    fn backward(&self, _inputs: &[Tensor], _out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        let scale = g[0] / self.words as f32;
        let scaled = |v: &[f32]| Some(v.iter().map(|x| x * scale).collect());
        vec![scaled(&self.de), scaled(&self.shared.trans), scaled(&self.shared.start), scaled(&self.shared.end)]
    }
    fn reads_input(&self, _i: usize) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_close, gradcheck, Fixtures};
    use crate::{Rng, Tensor};

    /// Every tag sequence of length `l` over `c` tags.
    fn all_sequences(l: usize, c: usize) -> Vec<Vec<usize>> {
        (0..c.pow(l as u32)).map(|mut k| (0..l).map(|_| (k % c, k /= c).0).collect()).collect()
    }

    /// `s(y)` by the definition.
    fn score(e: &[f32], a: &[f32], s: &[f32], en: &[f32], c: usize, y: &[usize]) -> f64 {
        let l = y.len();
        let mut v = (s[y[0]] + en[y[l - 1]]) as f64;
        v += (0..l).map(|t| e[t * c + y[t]] as f64).sum::<f64>();
        v + (1..l).map(|t| a[y[t - 1] * c + y[t]] as f64).sum::<f64>()
    }

    struct Case {
        e: Tensor,
        a: Tensor,
        s: Tensor,
        en: Tensor,
        tags: Vec<i64>,
        lengths: Vec<usize>,
    }

    fn case(b: usize, t: usize, c: usize, spread: f32, rng: &mut Rng) -> Case {
        let lengths: Vec<usize> = (0..b).map(|k| t - k % t.min(3)).collect();
        let tags = (0..b * t).map(|k| if k % t < lengths[k / t] { rng.below(c) as i64 } else { -100 }).collect();
        Case {
            e: Tensor::uniform(&[b, t, c], -spread, spread, rng),
            a: Tensor::uniform(&[c, c], -spread, spread, rng),
            s: Tensor::uniform(&[c], -spread, spread, rng),
            en: Tensor::uniform(&[c], -spread, spread, rng),
            tags,
            lengths,
        }
    }

    /// The NLL, `log Z` and the Viterbi path of each sentence by enumerating every sequence.
    fn brute_force(k: &Case) -> (f64, Vec<f64>, Vec<Vec<usize>>) {
        let (b, t, c) = (k.e.shape()[0], k.e.shape()[1], k.e.shape()[2]);
        let (e, a, s, en) = (k.e.to_vec(), k.a.to_vec(), k.s.to_vec(), k.en.to_vec());
        let (mut nll, mut log_z, mut best) = (0.0, Vec::new(), Vec::new());
        for n in 0..b {
            let (l, rows) = (k.lengths[n], &e[n * t * c..]);
            let seqs = all_sequences(l, c);
            let scores: Vec<f64> = seqs.iter().map(|y| score(rows, &a, &s, &en, c, y)).collect();
            let lse = |it: &mut dyn Iterator<Item = f64>| {
                let v: Vec<f64> = it.collect();
                let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
            };
            let z = lse(&mut scores.iter().copied());
            let gold = &k.tags[n * t..][..l];
            let agrees = |y: &[usize]| y.iter().zip(gold).all(|(&y, &g)| g < 0 || y as i64 == g);
            let z_gold = lse(&mut seqs.iter().zip(&scores).filter(|(y, _)| agrees(y)).map(|(_, &v)| v));
            nll += z - z_gold;
            log_z.push(z);
            let arg = (0..scores.len()).fold(0, |m, i| if scores[i] > scores[m] { i } else { m });
            best.push(seqs[arg].clone());
        }
        (nll / k.lengths.iter().sum::<usize>() as f64, log_z, best)
    }

    #[test]
    fn likelihood_and_viterbi_equal_enumerating_every_sequence() {
        let mut rng = Rng::new(7);
        // Spread 150: scores that differ by more than the rescaled recursion can hold, so some sentences use log space.
        for spread in [1.0, 4.0, 150.0] {
            let mut k = case(4, 5, 3, spread, &mut rng);
            let (nll, _, best) = brute_force(&k);
            let got = k.e.crf_nll(&k.a, &k.s, &k.en, &k.tags, &k.lengths).item() as f64;
            assert!((got - nll).abs() <= 1e-5 * (1.0 + nll.abs()), "spread {spread}: {got} against {nll}");
            assert_eq!(k.e.crf_decode(&k.a, &k.s, &k.en, &k.lengths), best, "spread {spread}");
            let (e, a, s, en) = (k.e.to_vec(), k.a.to_vec(), k.s.to_vec(), k.en.to_vec());
            let ch = super::Chain::new(3, &a, &s, &en);
            let underflows =
                (0..4).filter(|&n| super::log_partition_scaled(&ch, &e[n * 15..][..k.lengths[n] * 3], None).is_none());
            assert_eq!(
                underflows.count() > 0,
                spread > 100.0,
                "spread {spread}: log space used where the rescaled values underflow"
            );
            // Unknown tags inside a sentence are summed over.
            k.tags[1] = -100;
            k.tags[7] = -100;
            let (nll, _, _) = brute_force(&k);
            let got = k.e.crf_nll(&k.a, &k.s, &k.en, &k.tags, &k.lengths).item() as f64;
            assert!((got - nll).abs() <= 1e-5 * (1.0 + nll.abs()), "spread {spread}, partial: {got} against {nll}");
        }
    }

    /// Viterbi one tag at a time, as the algorithm is written: the first
    /// maximum over previous tags at each step, then over last tags.
    fn viterbi_by_definition(e: &[f32], a: &[f32], s: &[f32], en: &[f32], c: usize) -> Vec<usize> {
        let first_max = |v: &mut dyn Iterator<Item = f32>| {
            v.enumerate().fold((0, f32::NEG_INFINITY), |m, (i, x)| if x > m.1 { (i, x) } else { m })
        };
        let mut delta: Vec<f32> = (0..c).map(|j| s[j] + e[j]).collect();
        let mut back = Vec::new();
        for row in e.chunks_exact(c).skip(1) {
            let step: Vec<(usize, f32)> =
                (0..c).map(|j| first_max(&mut (0..c).map(|i| delta[i] + a[i * c + j]))).collect();
            delta = step.iter().zip(row).map(|(&(_, b), e)| b + e).collect();
            back.push(step.into_iter().map(|(i, _)| i).collect::<Vec<_>>());
        }
        let mut path = vec![first_max(&mut delta.iter().zip(en).map(|(d, x)| d + x)).0];
        for arg in back.iter().rev() {
            path.push(arg[path[path.len() - 1]]);
        }
        path.reverse();
        path
    }

    #[test]
    fn viterbi_over_blocks_of_tags_keeps_the_first_maximum() {
        // Tag counts below, at and across the blocks of next tags the step takes at a
        // time; scores of a few integer values, so that many tie.
        let mut rng = Rng::new(11);
        for c in [5, 8, 9, 19] {
            let (b, t) = (6, 7);
            let mut ints = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.below(3) as f32).collect() };
            let (e, a, s, en) = (ints(b * t * c), ints(c * c), ints(c), ints(c));
            let lengths: Vec<usize> = (0..b).map(|k| t - k).collect();
            let paths = Tensor::from_vec(e.clone(), &[b, t, c]).crf_decode(
                &Tensor::from_vec(a.clone(), &[c, c]),
                &Tensor::from_vec(s.clone(), &[c]),
                &Tensor::from_vec(en.clone(), &[c]),
                &lengths,
            );
            for (k, path) in paths.iter().enumerate() {
                let want = viterbi_by_definition(&e[k * t * c..][..lengths[k] * c], &a, &s, &en, c);
                assert_eq!(path, &want, "{c} tags, sentence {k}");
            }
        }
    }

    #[test]
    fn the_rescaled_and_log_space_recursions_agree_with_their_gradients() {
        let mut rng = Rng::new(8);
        let k = case(1, 9, 6, 3.0, &mut rng);
        let (e, a, s, en) = (k.e.to_vec(), k.a.to_vec(), k.s.to_vec(), k.en.to_vec());
        let ch = super::Chain::new(6, &a, &s, &en);
        let run = |scaled: bool| {
            let (mut de, mut shared) = (vec![0.0f32; e.len()], super::SharedGrad::zeros(6));
            let mut sink = super::GradSink { e: &mut de, shared: &mut shared, sign: 1.0 };
            let z = if scaled {
                super::log_partition_scaled(&ch, &e, Some(&mut sink)).expect("no underflow at spread 3")
            } else {
                super::log_partition_log_space(&ch, &e, None, Some(&mut sink))
            };
            (z, de, shared.trans, shared.start, shared.end)
        };
        let (x, y) = (run(true), run(false));
        assert!((x.0 - y.0).abs() < 1e-5, "log Z {} against {}", x.0, y.0);
        assert_close("∂/∂e", &x.1, &y.1, 1e-5);
        assert_close("∂/∂A", &x.2, &y.2, 1e-5);
        assert_close("∂/∂start", &x.3, &y.3, 1e-5);
        assert_close("∂/∂end", &x.4, &y.4, 1e-5);
        // The marginals of each position sum to 1.
        for t in 0..9 {
            let p: f32 = x.1[t * 6..][..6].iter().sum();
            assert!((p - 1.0).abs() < 1e-5, "position {t}: {p}");
        }
    }

    #[test]
    fn crf_gradcheck() {
        let mut rng = Rng::new(9);
        for tags_known in [true, false] {
            let mut k = case(3, 4, 4, 1.0, &mut rng);
            if !tags_known {
                k.tags[2] = -100;
            }
            let (tags, lengths) = (k.tags.clone(), k.lengths.clone());
            gradcheck(
                "crf_nll",
                &[k.e, k.a, k.s, k.en],
                |x| x[0].crf_nll(&x[1], &x[2], &x[3], &tags, &lengths),
                &mut rng,
            );
        }
    }

    #[test]
    fn crf_matches_pytorch() {
        let fx = Fixtures::load("crf");
        for case in fx.cases("crf") {
            let (e, a) = (fx.param(&case, "emissions"), fx.param(&case, "transitions"));
            let (s, en) = (fx.param(&case, "start"), fx.param(&case, "end"));
            let tags = fx.indices(&case, "tags");
            let lengths: Vec<usize> = fx.indices(&case, "lengths").iter().map(|&l| l as usize).collect();
            let nll = e.crf_nll(&a, &s, &en, &tags, &lengths);
            let inputs = [("emissions", &e), ("transitions", &a), ("start", &s), ("end", &en)];
            fx.check_forward_backward(&case, &nll, &inputs);
            let best: Vec<i64> = fx.indices(&case, "viterbi");
            let t = e.shape()[1];
            for (n, path) in e.crf_decode(&a, &s, &en, &lengths).iter().enumerate() {
                let want: Vec<usize> = best[n * t..][..lengths[n]].iter().map(|&y| y as usize).collect();
                assert_eq!(path, &want, "{}: sentence {n}", case.name);
            }
        }
    }
}
