//! Recurrent layers: Elman RNN, LSTM and GRU (`torch.nn.RNN`, `LSTM`, `GRU`),
//! with `num_layers`, `bidirectional`, `batch_first`, dropout between layers
//! and sequences of unequal length.
//!
//! Letters: B batch, T time, I input size, H hidden size, D directions (1 or
//! 2), L layers, G gates·H (H for the RNN, 4H for the LSTM, 3H for the GRU).
//!
//! ```text
//! RNN   h_t = tanh(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh)        (or relu)
//! LSTM  i, f, g, o = σ, σ, tanh, σ of (W_ih x_t + b_ih + W_hh h_{t−1} + b_hh), split in 4
//!       C_t = f ⊙ C_{t−1} + i ⊙ g,   h_t = o ⊙ tanh(C_t)
//! GRU   r, z = σ(W_i{r,z} x_t + b_i{r,z} + W_h{r,z} h_{t−1} + b_h{r,z})
//!       n = tanh(W_in x_t + b_in + r ⊙ (W_hn h_{t−1} + b_hn)),   h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}
//! ```
//!
//! Parameters carry PyTorch's names and shapes: `weight_ih_l{k}` `[G, I]`
//! (`[G, D·H]` above the first layer), `weight_hh_l{k}` `[G, H]`, `bias_ih_l{k}`,
//! `bias_hh_l{k}` `[G]`, with `_reverse` for the backward direction; gates in
//! PyTorch's order (i, f, g, o for the LSTM; r, z, n for the GRU); all drawn
//! from `U(−1/√H, 1/√H)`.
//!
//! Each layer and direction is two nodes of the graph: the input projection of
//! all time steps as one GEMM, and [`Tensor::recurrence`], which runs the
//! steps (one recurrent GEMM and the fused gate arithmetic each) and their
//! backpropagation through time.
//!
//! **Unequal lengths.** With `lengths`, step `t` of sequence `b` counts only if
//! `t < lengths[b]`: past its end the state is carried unchanged and the output
//! is zero, so the reverse direction starts at each sequence's true end, and
//! padded positions add nothing to any gradient (as `pack_padded_sequence`).
//!
//! Uses: `ops`, `tensor`, `rng`.

use super::{join, Module};
pub use crate::ops::CellKind;
use crate::ops::Recurrence;
use crate::{Rng, Tensor};
use std::sync::Mutex;

/// Sizes and options of a recurrent layer; `new` gives PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecurrentConfig {
    /// I.
    pub input_size: usize,
    /// H.
    pub hidden_size: usize,
    /// L (default 1).
    pub num_layers: usize,
    /// Biases `b_ih`, `b_hh` (default true).
    pub bias: bool,
    /// Inputs and outputs are `[B, T, …]` rather than `[T, B, …]` (default false).
    pub batch_first: bool,
    /// Dropout on the outputs of every layer but the last, in training (default 0).
    pub dropout: f32,
    /// A second direction running from the end (default false).
    pub bidirectional: bool,
}

impl RecurrentConfig {
    /// One unidirectional layer from `input_size` to `hidden_size`.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        RecurrentConfig {
            input_size,
            hidden_size,
            num_layers: 1,
            bias: true,
            batch_first: false,
            dropout: 0.0,
            bidirectional: false,
        }
    }
}

/// The recurrent state: `h: [L·D, B, H]`, and for the LSTM `c` of the same shape.
#[derive(Clone, Debug)]
pub struct RecurrentState {
    /// Hidden state of every layer and direction.
    pub h: Tensor,
    /// Cell state (LSTM only).
    pub c: Option<Tensor>,
}

/// One layer and direction's weights.
struct Weights {
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Option<Tensor>,
    b_hh: Option<Tensor>,
    suffix: String,
}

/// An RNN, LSTM or GRU (`torch.nn.RNN`, `LSTM`, `GRU`), with `num_layers`,
/// `bidirectional`, `batch_first`, dropout between layers and sequences of
/// unequal length. Letters: B batch, T time, I input size, H hidden size.
///
/// ```text
/// RNN   h_t = tanh(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh)        (or relu)
/// LSTM  i, f, g, o = σ, σ, tanh, σ of (W_ih x_t + b_ih + W_hh h_{t−1} + b_hh), split in 4
///       C_t = f ⊙ C_{t−1} + i ⊙ g,   h_t = o ⊙ tanh(C_t)
/// GRU   r, z = σ(W_i{r,z} x_t + b_i{r,z} + W_h{r,z} h_{t−1} + b_h{r,z})
///       n = tanh(W_in x_t + b_in + r ⊙ (W_hn h_{t−1} + b_hn)),   h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}
/// ```
///
/// Parameters carry PyTorch's names and shapes: `weight_ih_l{k}` `[G, I]`
/// (`[G, D·H]` above the first layer), `weight_hh_l{k}` `[G, H]`, `bias_ih_l{k}`,
/// `bias_hh_l{k}` `[G]` with G = H, 4H or 3H, `_reverse` for the backward
/// direction; gates in PyTorch's order (i, f, g, o; r, z, n); all drawn from
/// `U(−1/√H, 1/√H)`. With `lengths`, a sequence's state is carried unchanged
/// past its end and its outputs there are zero, as `pack_padded_sequence`.
pub struct Recurrent {
    kind: CellKind,
    cfg: RecurrentConfig,
    weights: Vec<Weights>, // layer-major, then direction
    training: bool,
    rng: Mutex<Rng>,
}

impl Recurrent {
    /// A recurrent layer of `kind` with PyTorch's initialization.
    pub fn new(kind: CellKind, cfg: RecurrentConfig, rng: &mut Rng) -> Self {
        assert!(
            cfg.num_layers >= 1 && cfg.hidden_size >= 1,
            "{}: num_layers and hidden_size must be ≥ 1",
            kind.torch_name()
        );
        assert!(
            (0.0..1.0).contains(&cfg.dropout),
            "{}: dropout must be in [0, 1), got {}",
            kind.torch_name(),
            cfg.dropout
        );
        let (h, g) = (cfg.hidden_size, kind.gates() * cfg.hidden_size);
        let dirs = if cfg.bidirectional { 2 } else { 1 };
        let bound = 1.0 / (h as f32).sqrt();
        let mut weights = Vec::new();
        for layer in 0..cfg.num_layers {
            let input = if layer == 0 { cfg.input_size } else { dirs * h };
            for dir in 0..dirs {
                let mut u = |shape: &[usize]| Tensor::uniform(shape, -bound, bound, rng).requires_grad();
                let (w_ih, w_hh) = (u(&[g, input]), u(&[g, h]));
                let (b_ih, b_hh) = if cfg.bias { (Some(u(&[g])), Some(u(&[g]))) } else { (None, None) };
                let suffix = format!("l{layer}{}", if dir == 1 { "_reverse" } else { "" });
                weights.push(Weights { w_ih, w_hh, b_ih, b_hh, suffix });
            }
        }
        Recurrent { kind, cfg, weights, training: true, rng: Mutex::new(Rng::new(rng.next_u64())) }
    }

    /// `torch.nn.RNN` with `tanh`.
    pub fn rnn(cfg: RecurrentConfig, rng: &mut Rng) -> Self {
        Recurrent::new(CellKind::RnnTanh, cfg, rng)
    }
    /// `torch.nn.LSTM`.
    pub fn lstm(cfg: RecurrentConfig, rng: &mut Rng) -> Self {
        Recurrent::new(CellKind::Lstm, cfg, rng)
    }
    /// `torch.nn.GRU`.
    pub fn gru(cfg: RecurrentConfig, rng: &mut Rng) -> Self {
        Recurrent::new(CellKind::Gru, cfg, rng)
    }

    /// The configuration.
    pub fn config(&self) -> &RecurrentConfig {
        &self.cfg
    }
    /// The recurrence.
    pub fn kind(&self) -> CellKind {
        self.kind
    }

    /// Runs the layers over `x` (`[T, B, I]`, or `[B, T, I]` if `batch_first`)
    /// from `state` (zeros if `None`). Returns the last layer's outputs
    /// (`[T, B, D·H]` or `[B, T, D·H]`) and the final state. `lengths[b]` is
    /// the true length of sequence `b` (all `T` if `None`).
    pub fn forward_with(
        &self,
        x: &Tensor,
        lengths: Option<&[usize]>,
        state: Option<&RecurrentState>,
    ) -> (Tensor, RecurrentState) {
        self.forward_probed(x, lengths, state, None)
    }

    /// Truncated backpropagation through time: runs the sequence in windows of
    /// `k` steps, carrying the state from one window to the next but detached,
    /// so that gradients flow back at most `k` steps. Memory then grows with
    /// `k`, not with the sequence. Outputs and final state equal
    /// [`Recurrent::forward_with`]'s; only the gradients differ.
    pub fn forward_truncated(
        &self,
        x: &Tensor,
        lengths: Option<&[usize]>,
        state: Option<&RecurrentState>,
        k: usize,
    ) -> (Tensor, RecurrentState) {
        assert!(k >= 1, "{}: truncation window must be at least 1 step", self.kind.torch_name());
        assert!(!self.cfg.bidirectional, "{}: truncated BPTT runs forward in time only", self.kind.torch_name());
        let time_dim = if self.cfg.batch_first { 1 } else { 0 };
        let t = x.shape()[time_dim];
        let mut state = state.cloned();
        let mut outs = Vec::new();
        for start in (0..t).step_by(k) {
            let len = k.min(t - start);
            let window = x.narrow(time_dim, start, len);
            // Each sequence's length inside this window.
            let lens: Option<Vec<usize>> =
                lengths.map(|l| l.iter().map(|&n| n.saturating_sub(start).min(len)).collect());
            let (out, st) = self.forward_with(&window, lens.as_deref(), state.as_ref());
            outs.push(out);
            state = Some(RecurrentState { h: st.h.detach(), c: st.c.map(|c| c.detach()) });
        }
        let out = Tensor::cat(&outs.iter().collect::<Vec<_>>(), time_dim);
        (out, state.expect("at least one window"))
    }

    /// [`Recurrent::forward_with`], adding `probes[t]` (`[B, H]`, usually zeros
    /// that require a gradient) to the first layer's forward state after step
    /// `t`. After `backward`, `probes[t].grad()` is `∂L/∂h_t` through every path,
    /// recurrent ones included: how the gradient flows back in time.
    pub fn forward_probed(
        &self,
        x: &Tensor,
        lengths: Option<&[usize]>,
        state: Option<&RecurrentState>,
        probes: Option<&[Tensor]>,
    ) -> (Tensor, RecurrentState) {
        let name = self.kind.torch_name();
        if x.ndim() != 3 || x.shape()[2] != self.cfg.input_size {
            panic!(
                "{name}: input {:?} must be [T, B, {}] (or [B, T, {}] with batch_first)",
                x.shape(),
                self.cfg.input_size,
                self.cfg.input_size
            );
        }
        // Work batch-first: [B, T, I].
        let x = if self.cfg.batch_first { x.clone() } else { x.transpose(0, 1) };
        let (b, t, h) = (x.shape()[0], x.shape()[1], self.cfg.hidden_size);
        assert!(t > 0, "{name}: the input has no time steps");
        let dirs = if self.cfg.bidirectional { 2 } else { 1 };
        if let Some(l) = lengths {
            if l.len() != b || l.iter().any(|&n| n > t) {
                panic!("{name}: lengths {l:?} must give one length ≤ {t} for each of the {b} sequences");
            }
        }
        // [B, T, 1]: 1 where step t is inside sequence b; none needed when every sequence is full.
        let mask = lengths.filter(|l| l.iter().any(|&n| n < t)).map(|l| {
            let m = (0..b).flat_map(|r| (0..t).map(move |s| if s < l[r] { 1.0 } else { 0.0 }));
            Tensor::from_vec(m.collect(), &[b, t, 1])
        });
        // Probes, as one [B, T, H] input.
        let probes = probes.map(|p| Tensor::stack(&p.iter().collect::<Vec<_>>(), 1));
        let lstm = self.kind == CellKind::Lstm;
        let initial = |k: usize, c: bool| -> Tensor {
            let s = match (state, c) {
                (Some(s), false) => Some(&s.h),
                (Some(s), true) => s.c.as_ref(),
                _ => None,
            };
            match s {
                Some(s) => {
                    if s.shape() != [self.cfg.num_layers * dirs, b, h] {
                        panic!("{name}: state {:?} must be [{}, {b}, {h}]", s.shape(), self.cfg.num_layers * dirs);
                    }
                    s.narrow(0, k, 1).squeeze(0)
                }
                None => Tensor::zeros(&[b, h]),
            }
        };
        let mut input = x;
        let (mut h_n, mut c_n) = (Vec::new(), Vec::new());
        for layer in 0..self.cfg.num_layers {
            let mut outs = Vec::new();
            for dir in 0..dirs {
                let k = layer * dirs + dir;
                let w = &self.weights[k];
                // The input projection of every step at once: [B, T, G].
                let xw = input.linear(&w.w_ih, w.b_ih.as_ref());
                let run = Recurrence { kind: self.kind, lengths, reverse: dir == 1 };
                let (h0, c0) = (initial(k, false), lstm.then(|| initial(k, true)));
                let probe = probes.as_ref().filter(|_| k == 0);
                // The state after every step: [B, T, H], or [B, T, 2H] = [h | C] for the LSTM.
                let states = xw.recurrence(&w.w_hh, w.b_hh.as_ref(), &h0, c0.as_ref(), probe, run);
                // The final state: after the last step run (the first step in reverse).
                let last = states.narrow(1, if dir == 0 { t - 1 } else { 0 }, 1).squeeze(1);
                h_n.push(last.narrow(1, 0, h));
                if lstm {
                    c_n.push(last.narrow(1, h, h));
                }
                let hs = if lstm { states.narrow(2, 0, h) } else { states };
                // Zero past each sequence's end.
                outs.push(match &mask {
                    Some(m) => hs.mul(m),
                    None => hs,
                });
            }
            input = if dirs == 1 { outs.pop().expect("one direction") } else { Tensor::cat(&[&outs[0], &outs[1]], 2) };
            if layer + 1 < self.cfg.num_layers && self.cfg.dropout > 0.0 && self.training {
                let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
                input = input.dropout(self.cfg.dropout, true, &mut rng);
            }
        }
        let output = if self.cfg.batch_first { input } else { input.transpose(0, 1) };
        let stack = |v: &[Tensor]| Tensor::stack(&v.iter().collect::<Vec<_>>(), 0);
        let state = RecurrentState { h: stack(&h_n), c: lstm.then(|| stack(&c_n)) };
        (output, state)
    }
}

impl Module for Recurrent {
    /// The outputs of the last layer, from a zero state, all sequences full length.
    fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_with(x, None, None).0
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        for w in &self.weights {
            f(&join(prefix, &format!("weight_ih_{}", w.suffix)), &w.w_ih);
            f(&join(prefix, &format!("weight_hh_{}", w.suffix)), &w.w_hh);
            if let (Some(bi), Some(bh)) = (&w.b_ih, &w.b_hh) {
                f(&join(prefix, &format!("bias_ih_{}", w.suffix)), bi);
                f(&join(prefix, &format!("bias_hh_{}", w.suffix)), bh);
            }
        }
    }
    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
    fn describe(&self) -> String {
        let c = &self.cfg;
        let nl = if self.kind == CellKind::RnnRelu { ", nonlinearity='relu'" } else { "" };
        format!(
            "{}({}, {}, num_layers={}, batch_first={}, dropout={}, bidirectional={}{nl})",
            self.kind.torch_name(),
            c.input_size,
            c.hidden_size,
            c.num_layers,
            c.batch_first,
            c.dropout,
            c.bidirectional
        )
    }
}

/// Whole-number indices with a shape `S` (PyTorch's `LongTensor`), the input of
/// [`Embedding::forward`]: a float tensor cannot be passed by mistake.
///
/// ```
/// use saddle::nn::Indices;
/// let words = Indices::new(vec![4, 1, 0, 2, 2, 3], &[2, 3]); // 2 sentences of 3 words
/// assert_eq!((words.values(), words.shape()), (&[4, 1, 0, 2, 2, 3][..], &[2, 3][..]));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Indices {
    values: Vec<usize>,
    shape: Vec<usize>,
}

impl Indices {
    /// `values` in row-major order, with shape `shape`. Panics if their counts differ.
    pub fn new(values: Vec<usize>, shape: &[usize]) -> Self {
        let n: usize = shape.iter().product();
        assert!(values.len() == n, "Indices: {} values cannot have shape {shape:?}", values.len());
        Indices { values, shape: shape.to_vec() }
    }

    /// The values of a float tensor that holds indices (as a [`crate::data::Dataset`]'s
    /// batches of words do). Panics, naming the value and its position, if one
    /// is not a whole number ≥ 0.
    pub fn from_tensor(x: &Tensor) -> Self {
        let values = x
            .data()
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                assert!(
                    v >= 0.0 && v.fract() == 0.0 && v < 16_777_216.0,
                    "Indices: element {i} of a {:?} tensor is {v}, not an index (a whole number ≥ 0)",
                    x.shape()
                );
                v as usize
            })
            .collect();
        Indices { values, shape: x.shape().to_vec() }
    }

    /// The indices, row-major.
    pub fn values(&self) -> &[usize] {
        &self.values
    }

    /// Their shape `S`.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
}

/// A lookup table of `num_embeddings` vectors of `embedding_dim` (`torch.nn.Embedding`),
/// initialized from `N(0, 1)` as PyTorch does; row `padding_idx` starts at zero
/// and gets no gradient.
///
/// It takes [`Indices`], not a float tensor, so it is not a [`Module`]; a model
/// that holds one lists its weight through [`Embedding::visit_parameters`].
///
/// ```
/// use saddle::nn::{Embedding, Indices};
/// let table = Embedding::new(10, 4, Some(0), &mut saddle::Rng::new(0));
/// let e = table.forward(&Indices::new(vec![3, 0, 7], &[1, 3]));
/// assert_eq!(e.shape(), &[1, 3, 4]);
/// assert_eq!(e.to_vec()[4..8], [0.0; 4]); // the padding row
/// ```
pub struct Embedding {
    /// `[num_embeddings, embedding_dim]`.
    pub weight: Tensor,
    /// A row that stays zero (padding).
    pub padding_idx: Option<usize>,
}

impl Embedding {
    /// `nn.Embedding(num_embeddings, embedding_dim, padding_idx)`.
    pub fn new(num_embeddings: usize, embedding_dim: usize, padding_idx: Option<usize>, rng: &mut Rng) -> Self {
        let weight = Tensor::normal(&[num_embeddings, embedding_dim], 0.0, 1.0, rng);
        if let Some(p) = padding_idx {
            assert!(p < num_embeddings, "Embedding: padding_idx {p} is out of range for {num_embeddings} embeddings");
            weight.data_mut()[p * embedding_dim..][..embedding_dim].fill(0.0);
        }
        Embedding { weight: weight.requires_grad(), padding_idx }
    }

    /// `y[s, :] = weight[indices[s], :]`: indices of shape `S` → `[S…, embedding_dim]`.
    /// Panics if an index is `≥ num_embeddings`.
    pub fn forward(&self, indices: &Indices) -> Tensor {
        self.weight.embedding(&indices.values, &indices.shape, self.padding_idx)
    }

    /// Calls `f` with the weight's name under `prefix` (`PREFIX.weight`), as [`Module::visit_parameters`] does.
    pub fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        f(&join(prefix, "weight"), &self.weight);
    }

    /// PyTorch's text for the layer: `Embedding(V, D, padding_idx=…)`.
    pub fn describe(&self) -> String {
        let s = self.weight.shape();
        format!("Embedding({}, {}, padding_idx={:?})", s[0], s[1], self.padding_idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{assert_close, gradcheck, Fixtures};

    #[test]
    fn rnn_lstm_gru_match_pytorch_with_layers_directions_and_unequal_lengths() {
        let fx = Fixtures::load("recurrent");
        for case in fx.cases("rnn") {
            let kind = match case.attr("kind") {
                "rnn_tanh" => CellKind::RnnTanh,
                "rnn_relu" => CellKind::RnnRelu,
                "lstm" => CellKind::Lstm,
                _ => CellKind::Gru,
            };
            let cfg = RecurrentConfig {
                num_layers: case.attr_usize("layers"),
                bidirectional: case.attr_bool("bidirectional"),
                batch_first: case.attr_bool("batch_first"),
                ..RecurrentConfig::new(case.attr_usize("input"), case.attr_usize("hidden"))
            };
            let m = Recurrent::new(kind, cfg, &mut Rng::new(0));
            for (name, p) in m.named_parameters() {
                *p.data_mut() = fx.tensor(&case, &format!("param/{name}")).to_vec();
            }
            let lengths: Vec<usize> = case.attr("lengths").split(',').map(|v| v.parse().unwrap()).collect();
            let x = fx.param(&case, "x");
            let h0 = fx.param(&case, "h0");
            let c0 = (kind == CellKind::Lstm).then(|| fx.param(&case, "c0"));
            let state = RecurrentState { h: h0.clone(), c: c0.clone() };
            let (out, st) = m.forward_with(&x, Some(&lengths), Some(&state));
            let what = |s: &str| format!("{} {s}", case.name);
            assert_close(&what("out"), &out.to_vec(), &fx.tensor(&case, "out").to_vec(), 1e-5);
            assert_close(&what("h_n"), &st.h.to_vec(), &fx.tensor(&case, "h_n").to_vec(), 1e-5);
            let mut loss =
                out.mul(&fx.tensor(&case, "gout")).sum_all().add(&st.h.mul(&fx.tensor(&case, "gh")).sum_all());
            if let Some(c) = &st.c {
                assert_close(&what("c_n"), &c.to_vec(), &fx.tensor(&case, "c_n").to_vec(), 1e-5);
                loss = loss.add(&c.mul(&fx.tensor(&case, "gc")).sum_all());
            }
            loss.backward();
            assert_close(&what("grad_x"), &x.grad().unwrap().to_vec(), &fx.tensor(&case, "grad_x").to_vec(), 1e-5);
            assert_close(&what("grad_h0"), &h0.grad().unwrap().to_vec(), &fx.tensor(&case, "grad_h0").to_vec(), 1e-5);
            if let Some(c0) = c0 {
                assert_close(
                    &what("grad_c0"),
                    &c0.grad().unwrap().to_vec(),
                    &fx.tensor(&case, "grad_c0").to_vec(),
                    1e-5,
                );
            }
            for (name, p) in m.named_parameters() {
                let want = fx.tensor(&case, &format!("grad_param/{name}")).to_vec();
                assert_close(&what(&format!("grad {name}")), &p.grad().unwrap().to_vec(), &want, 1e-5);
            }
        }
    }

    #[test]
    fn recurrent_gradcheck_through_time() {
        let mut rng = Rng::new(7);
        for kind in [CellKind::RnnTanh, CellKind::RnnRelu, CellKind::Lstm, CellKind::Gru] {
            let cfg = RecurrentConfig { bidirectional: true, ..RecurrentConfig::new(3, 2) };
            let m = Recurrent::new(kind, cfg, &mut rng);
            // The input, through every step and both directions.
            let x = Tensor::uniform(&[4, 2, 3], -1.0, 1.0, &mut rng);
            gradcheck(
                "recurrent input",
                std::slice::from_ref(&x),
                |t| m.forward_with(&t[0], Some(&[4, 3]), None).0,
                &mut rng,
            );
            // The recurrent weight, shared by all steps: central differences by hand.
            let g = Tensor::normal(&[4, 2, 4], 0.0, 1.0, &mut rng);
            let loss = || -> f64 {
                let out = crate::no_grad(|| m.forward_with(&x, Some(&[4, 3]), None).0);
                out.to_vec().iter().zip(g.to_vec()).map(|(a, b)| *a as f64 * b as f64).sum()
            };
            let w = m.named_parameters()[1].1.clone(); // weight_hh_l0
            w.zero_grad();
            m.forward_with(&x, Some(&[4, 3]), None).0.backward_with(&g);
            let analytic = w.grad().unwrap().to_vec();
            for (i, &a) in analytic.iter().enumerate() {
                let w0 = w.data()[i];
                w.data_mut()[i] = w0 + 1e-3;
                let plus = loss();
                w.data_mut()[i] = w0 - 1e-3;
                let minus = loss();
                w.data_mut()[i] = w0;
                let numeric = ((plus - minus) / 2e-3) as f32;
                assert!((numeric - a).abs() <= 1e-2 * (1.0 + a.abs()), "{kind:?} weight_hh {i}: {a} vs {numeric}");
            }
        }
    }

    #[test]
    fn truncated_bptt_keeps_values_and_cuts_gradients_at_the_window() {
        let m = Recurrent::lstm(RecurrentConfig::new(3, 4), &mut Rng::new(2));
        let x = Tensor::uniform(&[6, 2, 3], -1.0, 1.0, &mut Rng::new(3)).requires_grad();
        let (full, _) = m.forward_with(&x, Some(&[6, 4]), None);
        let (cut, st) = m.forward_truncated(&x, Some(&[6, 4]), None, 2);
        assert_close("truncated outputs", &cut.to_vec(), &full.to_vec(), 1e-6);
        assert_eq!(st.h.shape(), &[1, 2, 4]);
        // The last step's output depends on x_0 through the state, but the
        // gradient stops at the window boundary (steps 4 and 5).
        cut.narrow(0, 5, 1).sum_all().backward();
        let g = x.grad().unwrap().to_vec();
        assert!(g[..4 * 6].iter().all(|&v| v == 0.0), "no gradient before the last window");
        assert!(g[4 * 6..].iter().any(|&v| v != 0.0));
    }

    #[test]
    fn a_torch_lstm_state_dict_loads_and_round_trips() {
        // Written by tools/make_fixtures.py: lstm_state_dict().
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let cfg = RecurrentConfig { num_layers: 2, bidirectional: true, ..RecurrentConfig::new(4, 3) };
        let m = Recurrent::lstm(cfg, &mut Rng::new(9));
        crate::nn::load_state_dict(&m, &dir.join("lstm_state_dict.safetensors")).unwrap();
        let (io, _) = crate::io::read_safetensors(&dir.join("lstm_io.safetensors")).unwrap();
        let t = |k: &str| Tensor::from_vec(io[k].1.clone(), &io[k].0);
        let (out, st) = crate::no_grad(|| m.forward_with(&t("x"), None, None));
        assert_close("torch LSTM output", &out.to_vec(), &t("out").to_vec(), 1e-5);
        assert_close("torch LSTM h_n", &st.h.to_vec(), &t("h_n").to_vec(), 1e-5);
        assert_close("torch LSTM c_n", &st.c.unwrap().to_vec(), &t("c_n").to_vec(), 1e-5);
        // And back: saddle writes the same names and shapes PyTorch wrote.
        let path = std::env::temp_dir().join(format!("saddle-lstm-{}.safetensors", std::process::id()));
        crate::nn::save_state_dict(&m, &path).unwrap();
        let (ours, _) = crate::io::read_safetensors(&path).unwrap();
        let (theirs, _) = crate::io::read_safetensors(&dir.join("lstm_state_dict.safetensors")).unwrap();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn names_shapes_and_padded_steps() {
        let cfg = RecurrentConfig { num_layers: 2, bidirectional: true, ..RecurrentConfig::new(5, 4) };
        let m = Recurrent::lstm(cfg, &mut Rng::new(0));
        let names: Vec<(String, Vec<usize>)> =
            m.named_parameters().into_iter().map(|(n, p)| (n, p.shape().to_vec())).collect();
        assert_eq!(names[0], ("weight_ih_l0".into(), vec![16, 5]));
        assert_eq!(names[4], ("weight_ih_l0_reverse".into(), vec![16, 5]));
        assert_eq!(names[8], ("weight_ih_l1".into(), vec![16, 8]));
        assert_eq!(names.len(), 16);
        let x = Tensor::uniform(&[6, 2, 5], -1.0, 1.0, &mut Rng::new(1));
        let (out, st) = m.forward_with(&x, Some(&[6, 3]), None);
        assert_eq!(out.shape(), &[6, 2, 8]);
        assert_eq!(st.h.shape(), &[4, 2, 4]);
        // Steps past the end of sequence 1 output zeros.
        let o = out.to_vec();
        assert!((3..6).all(|t| o[(t * 2 + 1) * 8..][..8].iter().all(|&v| v == 0.0)));
    }
}
