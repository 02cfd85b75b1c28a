//! The gate arithmetic of one recurrent step, on one row of the batch:
//! forward and backward of the Elman, LSTM and GRU cells.
//!
//! Letters: H hidden size, G = gates·H. Each step gets the projected input
//! `a = W_ih x_t + b_ih` and the projected state `u = W_hh h_{t−1} + b_hh`
//! (both `[G]`, gates in PyTorch's order):
//!
//! ```text
//! RNN   h = tanh(a + u)  (or relu)
//! LSTM  i, f, g, o = σ, σ, tanh, σ of (a + u), split in 4
//!       C = f ⊙ C_{t−1} + i ⊙ g,   h = o ⊙ tanh C
//! GRU   r = σ(a_r + u_r),  z = σ(a_z + u_z),  n = tanh(a_n + r ⊙ u_n)
//!       h = (1 − z) ⊙ n + z ⊙ h_{t−1}
//! ```
//!
//! Backward takes `δh = ∂L/∂h_t` (and `δC = ∂L/∂C_t`) and returns `∂L/∂a`,
//! `∂L/∂u`, and the part of `∂L/∂h_{t−1}` (and `∂L/∂C_{t−1}`) that does not
//! pass through `u` (the caller adds `∂L/∂u · W_hh`):
//!
//! ```text
//! RNN   ∂a = ∂u = δh ⊙ tanh'(·) = δh ⊙ (1 − h²)   (relu: δh ⊙ 1[h > 0])
//! LSTM  δC' = δC + δh ⊙ o ⊙ (1 − tanh² C)
//!       ∂a_i = δC' ⊙ g ⊙ i(1 − i),   ∂a_f = δC' ⊙ C_{t−1} ⊙ f(1 − f)
//!       ∂a_g = δC' ⊙ i ⊙ (1 − g²),   ∂a_o = δh ⊙ tanh C ⊙ o(1 − o)
//!       ∂u = ∂a,   ∂C_{t−1} = δC' ⊙ f
//! GRU   δn = δh ⊙ (1 − z) ⊙ (1 − n²),   ∂a_n = δn,   ∂u_n = δn ⊙ r
//!       ∂a_r = ∂u_r = δn ⊙ u_n ⊙ r(1 − r),   ∂a_z = ∂u_z = δh ⊙ (h_{t−1} − n) ⊙ z(1 − z)
//!       direct ∂h_{t−1} = δh ⊙ z
//! ```
//!
//! [`forward`] and [`backward`] run these over all the steps of a batch, with
//! one `[rows, H]·[H, G]` GEMM per step for `u` forward and one for
//! `δh_{t−1} += ∂L/∂u_t · W_hh` backward, over the rows whose sequences run
//! at that step. Rows of the batch never meet in a
//! recurrence, so blocks of [`ROWS`] rows run on separate threads from the
//! first step to the last, two at a time where there are blocks enough for
//! every thread. The blocks depend only on the batch size, and a row's values
//! not on which rows share its products (each product runs in its thread,
//! `sgemm_sequential`), so the result does not depend on
//! the number of threads. The weight gradients are
//! one GEMM over all steps and rows at the end:
//! `∂L/∂W_hh = Σ_t ∂L/∂u_tᵀ h_{t−1}`, `∂L/∂b_hh = Σ_t Σ_b ∂L/∂u_t`.
//!
//! Uses: `kernels::elementwise` (σ, tanh), `kernels::gemm`.

use super::elementwise::{column_sums, sigmoid_in_place, tanh_in_place};
use super::gemm::{sgemm, sgemm_sequential, Accumulate, Dims, Operand};
use super::{copied, transposed, zeroed, Fresh};
use rayon::prelude::*;
use std::mem::MaybeUninit;
use std::ops::Range;

/// Which recurrence: the one cell-kind type of the crate, used by the
/// kernels, the layers, the tagger and the run specification. Its names are
/// those of the command line and `config.json`: `rnn` (tanh), `rnn_relu`,
/// `lstm`, `gru`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CellKind {
    /// Elman RNN with `tanh`.
    #[serde(rename = "rnn")]
    RnnTanh,
    /// Elman RNN with `relu`.
    RnnRelu,
    /// Long short-term memory.
    Lstm,
    /// Gated recurrent unit.
    Gru,
}

impl CellKind {
    /// Every kind, in the order of their names.
    pub const ALL: [CellKind; 4] = [CellKind::RnnTanh, CellKind::RnnRelu, CellKind::Lstm, CellKind::Gru];

    /// The name: `rnn`, `rnn_relu`, `lstm`, `gru`.
    pub fn name(self) -> &'static str {
        match self {
            CellKind::RnnTanh => "rnn",
            CellKind::RnnRelu => "rnn_relu",
            CellKind::Lstm => "lstm",
            CellKind::Gru => "gru",
        }
    }

    /// The kind called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<CellKind> {
        CellKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Gates per hidden unit: G / H.
    pub fn gates(self) -> usize {
        match self {
            CellKind::RnnTanh | CellKind::RnnRelu => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }

    /// Values per hidden unit a step keeps for its backward: `h` (RNN);
    /// `i, f, g, o, tanh C` (LSTM); `r, z, n, u_n` (GRU).
    pub fn saved(self) -> usize {
        match self {
            CellKind::RnnTanh | CellKind::RnnRelu => 1,
            CellKind::Lstm => 5,
            CellKind::Gru => 4,
        }
    }

    /// PyTorch's module name: `RNN`, `LSTM` or `GRU`.
    pub fn torch_name(self) -> &'static str {
        match self {
            CellKind::RnnTanh | CellKind::RnnRelu => "RNN",
            CellKind::Lstm => "LSTM",
            CellKind::Gru => "GRU",
        }
    }
}

/// One step of one row. `a`, `u`: `[G]`; `h`: `h_{t−1}` in, `h_t` out; `c`:
/// `C_{t−1}` in, `C_t` out (LSTM; empty otherwise); `saved`: `[saved·H]`.
/// The activations run over whole gates at once, so that they vectorize.
pub fn cell_forward(kind: CellKind, a: &[f32], u: &[f32], h: &mut [f32], c: &mut [f32], saved: &mut [f32]) {
    let n = h.len();
    let add = |out: &mut [f32], a: &[f32], u: &[f32]| out.iter_mut().zip(a).zip(u).for_each(|((o, a), u)| *o = a + u);
    match kind {
        CellKind::RnnTanh | CellKind::RnnRelu => {
            add(h, &a[..n], &u[..n]);
            if kind == CellKind::RnnTanh {
                tanh_in_place(h);
            } else {
                h.iter_mut().for_each(|x| *x = x.max(0.0));
            }
            saved[..n].copy_from_slice(h);
        }
        CellKind::Lstm => {
            // saved: [i | f | g | o | tanh C], each [H].
            let (gates, tc) = saved.split_at_mut(4 * n);
            add(gates, &a[..4 * n], &u[..4 * n]);
            sigmoid_in_place(&mut gates[..2 * n]);
            tanh_in_place(&mut gates[2 * n..3 * n]);
            sigmoid_in_place(&mut gates[3 * n..]);
            let (i, f, g, o) = (&gates[..n], &gates[n..2 * n], &gates[2 * n..3 * n], &gates[3 * n..]);
            for j in 0..n {
                c[j] = f[j] * c[j] + i[j] * g[j];
            }
            tc[..n].copy_from_slice(c);
            tanh_in_place(&mut tc[..n]);
            for j in 0..n {
                h[j] = o[j] * tc[j];
            }
        }
        CellKind::Gru => {
            // saved: [r | z | n | u_n], each [H].
            let (rz, rest) = saved.split_at_mut(2 * n);
            let (g, un) = rest.split_at_mut(n);
            add(rz, &a[..2 * n], &u[..2 * n]);
            sigmoid_in_place(rz);
            un[..n].copy_from_slice(&u[2 * n..3 * n]);
            for j in 0..n {
                g[j] = a[2 * n + j] + rz[j] * un[j];
            }
            tanh_in_place(g);
            for j in 0..n {
                let z = rz[n + j];
                h[j] = (1.0 - z) * g[j] + z * h[j];
            }
        }
    }
}

/// Backward of one step of one row. `saved`, `h_prev` (`h_{t−1}`) and
/// `c_prev` (`C_{t−1}`, LSTM) are what the forward kept and read; `dh`:
/// `∂L/∂h_t` in, the direct part of `∂L/∂h_{t−1}` out; `dc`: `∂L/∂C_t` in,
/// `∂L/∂C_{t−1}` out (LSTM); writes `da = ∂L/∂a` and `du = ∂L/∂u` (`[G]`).
#[allow(clippy::too_many_arguments)]
pub fn cell_backward(
    kind: CellKind,
    saved: &[f32],
    h_prev: &[f32],
    c_prev: &[f32],
    dh: &mut [f32],
    dc: &mut [f32],
    da: &mut [f32],
    du: &mut [f32],
) {
    let n = dh.len();
    match kind {
        CellKind::RnnTanh | CellKind::RnnRelu => {
            for j in 0..n {
                let y = saved[j];
                let d = if kind == CellKind::RnnTanh {
                    dh[j] * (1.0 - y * y)
                } else if y > 0.0 {
                    dh[j]
                } else {
                    0.0
                };
                (da[j], du[j], dh[j]) = (d, d, 0.0);
            }
        }
        CellKind::Lstm => {
            for j in 0..n {
                let [i, f, g, o, tc] = [0, 1, 2, 3, 4].map(|k| saved[k * n + j]);
                let dcj = dc[j] + dh[j] * o * (1.0 - tc * tc);
                let d = [
                    dcj * g * i * (1.0 - i),
                    dcj * c_prev[j] * f * (1.0 - f),
                    dcj * i * (1.0 - g * g),
                    dh[j] * tc * o * (1.0 - o),
                ];
                for (k, v) in d.into_iter().enumerate() {
                    (da[k * n + j], du[k * n + j]) = (v, v);
                }
                (dc[j], dh[j]) = (dcj * f, 0.0);
            }
        }
        CellKind::Gru => {
            for j in 0..n {
                let [r, z, g, un] = [0, 1, 2, 3].map(|k| saved[k * n + j]);
                let dn = dh[j] * (1.0 - z) * (1.0 - g * g);
                let dr = dn * un * r * (1.0 - r);
                let dz = dh[j] * (h_prev[j] - g) * z * (1.0 - z);
                (da[j], du[j]) = (dr, dr);
                (da[n + j], du[n + j]) = (dz, dz);
                (da[2 * n + j], du[2 * n + j]) = (dn, dn * r);
                dh[j] *= z;
            }
        }
    }
}

/// Rows of the batch that one thread runs through all the steps.
pub const ROWS: usize = 8;

/// The shape of a recurrence: B, T, H, and which steps count.
#[derive(Clone, Copy, Debug)]
pub struct Steps<'a> {
    /// The cell.
    pub kind: CellKind,
    /// Batch size B.
    pub batch: usize,
    /// Time steps T.
    pub time: usize,
    /// Hidden size H.
    pub hidden: usize,
    /// The true length of each sequence: step `t` of row `b` runs only if
    /// `t < lengths[b]`; past it the state is carried unchanged.
    pub lengths: Option<&'a [usize]>,
    /// Run from the last step to the first.
    pub reverse: bool,
}

impl Steps<'_> {
    fn active(&self, row: usize, step: usize) -> bool {
        self.lengths.is_none_or(|l| step < l[row])
    }
    /// The steps in the order they run.
    fn order(&self) -> Vec<usize> {
        if self.reverse {
            (0..self.time).rev().collect()
        } else {
            (0..self.time).collect()
        }
    }
    /// State size S: `[h | C]` for the LSTM, `h` otherwise.
    fn state(&self) -> usize {
        if self.kind == CellKind::Lstm {
            2 * self.hidden
        } else {
            self.hidden
        }
    }
    fn blocks(&self) -> Vec<Range<usize>> {
        (0..self.batch).step_by(ROWS).map(|r| r..self.batch.min(r + ROWS)).collect()
    }
}

/// A block of rows with its shares of `N` buffers, not yet written: the
/// kernels write them in place, a step and a row at a time, with no zeroing
/// of whole shares first.
type Unwritten<'a, const N: usize> = (Range<usize>, [&'a mut [MaybeUninit<f32>]; N]);

/// Each block of rows with its share of each buffer `(v, per_row)`: the
/// block's rows of a `[B, …]` buffer with `per_row` values a row (an empty
/// slice where `v` is empty), not yet written. Consecutive blocks take
/// consecutive shares, `ROWS · per_row` values each, and so cover `v`.
fn shares<const N: usize>(blocks: Vec<Range<usize>>, bufs: [(&mut Fresh<f32>, usize); N]) -> Vec<Unwritten<'_, N>> {
    let mut cuts = bufs.map(|(v, per_row)| v.parts(ROWS * per_row));
    blocks.into_iter().map(|rows| (rows, std::array::from_fn(|i| cuts[i].next().unwrap_or(&mut [])))).collect()
}

/// Consecutive blocks that one thread runs together, as one block of their
/// rows: two where there are at least twice as many blocks as threads, else
/// one. A step's product is computed transposed, `[G, H]·[H, rows]`, by a
/// kernel that takes 6 columns of rows at a time: 16 rows leave it a
/// remainder of 4 where 8 left 2 (at batch 32 on 2 threads, 16 interleaved
/// rounds on a 2-core Xeon: LSTM +4%, BiLSTM +2%, Elman RNN +2%). The
/// blocks keep their layout, so that the weight gradient sums in the same
/// order (one product over every block, step and row), and a row's values
/// do not depend on the rows beside it in a product (tested in
/// `kernels::gemm`), so the bits do not depend on the thread count either
/// way. A short last block always runs alone: a product of one row takes
/// another kernel in the GEMM crate, which rounds otherwise.
fn groups<T>(blocks: Vec<(Range<usize>, T)>) -> Vec<Vec<(Range<usize>, T)>> {
    let size = if blocks.len() >= 2 * rayon::current_num_threads() { 2 } else { 1 };
    let mut groups: Vec<Vec<(Range<usize>, T)>> = Vec::with_capacity(blocks.len());
    for block in blocks {
        match groups.last_mut() {
            Some(group) if group.len() < size && block.0.len() == ROWS => group.push(block),
            _ => groups.push(vec![block]),
        }
    }
    groups
}

/// The rows of a group (numbered from 0 within it) that a step's product
/// takes: those whose sequence runs at `step`, the others being carried
/// unchanged. In a batch of sentences of many lengths that skips about half
/// of the products (ATIS in random batches of 16: 54% of the padded steps
/// are words). A row's values do not depend on the rows beside it in a
/// product of two rows or more (`kernels::gemm` tests this), but a product
/// of one row runs another kernel, which rounds otherwise: a lone running
/// row of a larger group is joined by a row that does not run, whose result
/// goes unused, so that the bits are those of the whole group's product.
fn running(s: &Steps, first: usize, m: usize, step: usize, rows: &mut Vec<usize>) {
    rows.clear();
    rows.extend((0..m).filter(|&j| s.active(first + j, step)));
    if rows.len() == 1 && m > 1 {
        let idle = usize::from(rows[0] == 0);
        rows.push(idle);
        rows.sort_unstable();
    }
}

/// Copies rows `rows` of `from` (`width` values a row) into the first rows of `to`.
fn gather(from: &[f32], rows: &[usize], width: usize, to: &mut [f32]) {
    for (to, &j) in to.chunks_exact_mut(width).zip(rows) {
        to.copy_from_slice(&from[j * width..][..width]);
    }
}

/// `c[j] (+)= a[j] · b` for the rows `j` in `taken` (of the `dims.m` rows of
/// `a: [m, K]` and `c: [m, N]`; `b: [K, N]`), in the calling thread: one
/// product of every row where all are taken, else of the taken rows gathered
/// into `room` (`[m, K]` and `[m, N]`) and put back in place.
fn product_of_rows(
    taken: &[usize],
    dims: Dims,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    mode: Accumulate,
    room: (&mut [f32], &mut [f32]),
) {
    let (Dims { m, n, k }, mt) = (dims, taken.len());
    if mt == m {
        sgemm_sequential(dims, Operand::Stored(a), Operand::Stored(b), c, mode);
    } else if mt > 0 {
        let (a_taken, c_taken) = (&mut room.0[..mt * k], &mut room.1[..mt * n]);
        gather(a, taken, k, a_taken);
        if mode == Accumulate::Add {
            gather(c, taken, n, c_taken);
        }
        sgemm_sequential(Dims { m: mt, n, k }, Operand::Stored(a_taken), Operand::Stored(b), c_taken, mode);
        for (from, &j) in c_taken.chunks_exact(n).zip(taken) {
            c[j * n..][..n].copy_from_slice(from);
        }
    }
}

/// What the forward keeps for the backward: `h_{t−1}` and `C_{t−1}` (LSTM)
/// of every row and step, `[B, T, H]` as the input projections are laid
/// out, and the cell's saved values of every step, block after block of
/// rows, each block `[T, rows, …]` in run order.
#[derive(Debug)]
pub struct Kept {
    hp: Vec<f32>,
    cp: Vec<f32>,
    saved: Vec<f32>,
}

/// The states after every step, `[B, T, S]`, from the input projections
/// `xw: [B, T, G]`, `w_hh: [G, H]`, `b_hh: [G]`, `h0: [B, H]`, `c0: [B, H]`
/// (LSTM; empty otherwise), and `probe: [B, T, H]` added to `h_t` after each
/// step; with what the backward needs, if `keep` (nothing otherwise:
/// evaluation needs none of it). Each block of rows writes its share of the
/// results in place.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    s: &Steps,
    xw: &[f32],
    w_hh: &[f32],
    b_hh: Option<&[f32]>,
    h0: &[f32],
    c0: &[f32],
    probe: Option<&[f32]>,
    keep: bool,
) -> (Vec<f32>, Kept) {
    let (b, t, h, st) = (s.batch, s.time, s.hidden, s.state());
    let (g, k, lstm) = (s.kind.gates() * h, s.kind.saved() * h, s.kind == CellKind::Lstm);
    let order = s.order();
    // W_hhᵀ: [H, G], once, so that each step's product reads B as stored.
    let w_t = transposed(w_hh, g, h);
    let kept = |per_row: usize| Fresh::new(if keep { b * t * per_row } else { 0 });
    let (mut hp, mut cp, mut saved) = (kept(h), kept(if lstm { h } else { 0 }), kept(k));
    let mut out = Fresh::new(b * t * st);
    let blocks = shares(s.blocks(), [(&mut out, t * st), (&mut hp, t * h), (&mut cp, t * h), (&mut saved, t * k)]);
    let run = |mut group: Vec<Unwritten<4>>| {
        let rows = group[0].0.start..group[group.len() - 1].0.end;
        let m = rows.len();
        let mut hs = h0[rows.start * h..rows.end * h].to_vec();
        let mut cs = if lstm { c0[rows.start * h..rows.end * h].to_vec() } else { Vec::new() };
        let mut scratch = vec![0.0f32; if keep { 0 } else { k }];
        let mut u = vec![0.0f32; m * g];
        // The rows the step's product takes, and room to gather them.
        let (mut taken, mut h_taken, mut u_taken) = (Vec::with_capacity(m), vec![0.0f32; m * h], vec![0.0f32; m * g]);
        for (n, &step) in order.iter().enumerate() {
            running(s, rows.start, m, step, &mut taken);
            let room = (&mut h_taken[..], &mut u_taken[..]);
            product_of_rows(&taken, Dims { m, n: g, k: h }, &hs, &w_t, &mut u, Accumulate::Overwrite, room);
            if let Some(bias) = b_hh {
                for &j in &taken {
                    u[j * g..][..g].iter_mut().zip(bias).for_each(|(x, b)| *x += b);
                }
            }
            // Each block's rows, into the block's share of the buffers.
            for (block, [out, hp, cp, saved]) in group.iter_mut() {
                let (first, mb) = (block.start - rows.start, block.len());
                if keep {
                    for i in 0..mb {
                        copied(&mut hp[(i * t + step) * h..][..h], &hs[(first + i) * h..][..h]);
                        if lstm {
                            copied(&mut cp[(i * t + step) * h..][..h], &cs[(first + i) * h..][..h]);
                        }
                    }
                }
                for (i, r) in block.clone().enumerate() {
                    let j = first + i; // the row within the group
                    let h_row = &mut hs[j * h..][..h];
                    // The step's saved values: zeros, overwritten where the step runs.
                    let kept = if keep { zeroed(&mut saved[(n * mb + i) * k..][..k]) } else { &mut scratch[..] };
                    if s.active(r, step) {
                        let c_row = if lstm { &mut cs[j * h..][..h] } else { &mut [][..] };
                        let a = &xw[(r * t + step) * g..][..g];
                        cell_forward(s.kind, a, &u[j * g..][..g], h_row, c_row, kept);
                        if let Some(p) = probe {
                            h_row.iter_mut().zip(&p[(r * t + step) * h..][..h]).for_each(|(x, p)| *x += p);
                        }
                    }
                    let o = &mut out[(i * t + step) * st..][..st];
                    copied(&mut o[..h], h_row);
                    if lstm {
                        copied(&mut o[h..], &cs[j * h..][..h]);
                    }
                }
            }
        }
    };
    groups(blocks).into_par_iter().for_each(run);
    // SAFETY: every row's every step wrote its `out`, and, if `keep`, its
    // `hp`, `cp` (LSTM) and `saved` (zeros where the step did not run).
    unsafe { (out.written(), Kept { hp: hp.written(), cp: cp.written(), saved: saved.written() }) }
}

/// Gradients of a recurrence's inputs, in the layouts of [`forward`]'s.
#[derive(Debug)]
pub struct Grads {
    /// `∂L/∂xw: [B, T, G]`.
    pub xw: Vec<f32>,
    /// `∂L/∂W_hh: [G, H]`.
    pub w_hh: Vec<f32>,
    /// `∂L/∂b_hh: [G]`.
    pub b_hh: Vec<f32>,
    /// `∂L/∂h0: [B, H]`.
    pub h0: Vec<f32>,
    /// `∂L/∂c0: [B, H]` (LSTM; empty otherwise).
    pub c0: Vec<f32>,
    /// `∂L/∂probe: [B, T, H]` = `∂L/∂h_t` (zero past each sequence's end).
    pub probe: Vec<f32>,
}

/// Backpropagation through time from `gout = ∂L/∂out: [B, T, S]`, with what
/// [`forward`] kept; `∂L/∂probe` only if `probe` (empty otherwise). Each
/// block of rows writes its share of the gradients in place; `∂L/∂h0` and
/// `∂L/∂c0` are its running `δh`, `δC`, which reach step 0 last.
pub fn backward(s: &Steps, kept: &Kept, w_hh: &[f32], gout: &[f32], probe: bool) -> Grads {
    let (b, t, h, st) = (s.batch, s.time, s.hidden, s.state());
    let (g, k, lstm) = (s.kind.gates() * h, s.kind.saved() * h, s.kind == CellKind::Lstm);
    let order = s.order();
    let (mut xw, mut h0, mut c0) = (Fresh::new(b * t * g), Fresh::new(b * h), Fresh::new(if lstm { b * h } else { 0 }));
    let mut dprobe = Fresh::new(if probe { b * t * h } else { 0 });
    // ∂L/∂u of every step, `[B, T, G]` as `kept.hp` is: the GRU's own; the
    // Elman RNN's and the LSTM's are their ∂L/∂a, in `xw` already.
    let gru = s.kind == CellKind::Gru;
    let mut du = Fresh::new(if gru { b * t * g } else { 0 });
    let blocks =
        shares(s.blocks(), [(&mut xw, t * g), (&mut du, t * g), (&mut h0, h), (&mut c0, h), (&mut dprobe, t * h)]);
    // A block's share of what the forward kept (`per` values a row of the block).
    fn share<'a>(v: &'a [f32], rows: &Range<usize>, per: usize) -> &'a [f32] {
        if v.is_empty() {
            v
        } else {
            &v[rows.start * per..rows.end * per]
        }
    }
    let run = |mut group: Vec<Unwritten<5>>| {
        let rows = group[0].0.start..group[group.len() - 1].0.end;
        let m = rows.len();
        // The running δh and δC of the group's rows, and ∂L/∂u of the step.
        let (mut dh, mut dc) = (vec![0.0f32; m * h], vec![0.0f32; if lstm { m * h } else { 0 }]);
        let mut du_step = vec![0.0f32; m * g];
        // The rows the step's product takes, and room to gather their ∂L/∂u and δh.
        let (mut taken, mut du_taken, mut dh_taken) = (Vec::with_capacity(m), vec![0.0f32; m * g], vec![0.0f32; m * h]);
        for (n, &step) in order.iter().enumerate().rev() {
            for (block, [dxw, du, _, _, dprobe]) in group.iter_mut() {
                let (first, mb) = (block.start - rows.start, block.len());
                let (hp, cp, saved) =
                    (share(&kept.hp, block, t * h), share(&kept.cp, block, t * h), share(&kept.saved, block, t * k));
                for (i, r) in block.clone().enumerate() {
                    let j = first + i; // the row within the group
                    let go = &gout[(r * t + step) * st..][..st];
                    dh[j * h..][..h].iter_mut().zip(&go[..h]).for_each(|(d, g)| *d += g);
                    if lstm {
                        dc[j * h..][..h].iter_mut().zip(&go[h..]).for_each(|(d, g)| *d += g);
                    }
                    let du_row = &mut du_step[j * g..][..g];
                    let (row, cell) = ((i * t + step) * h, (n * mb + i) * k);
                    let da = zeroed(&mut dxw[(i * t + step) * g..][..g]);
                    // Past the end the state passed through unchanged, and so does its gradient.
                    if !s.active(r, step) {
                        du_row.fill(0.0);
                        if probe {
                            zeroed(&mut dprobe[row..][..h]);
                        }
                        continue;
                    }
                    if probe {
                        copied(&mut dprobe[row..][..h], &dh[j * h..][..h]);
                    }
                    cell_backward(
                        s.kind,
                        &saved[cell..][..k],
                        &hp[row..][..h],
                        if lstm { &cp[row..][..h] } else { &[] },
                        &mut dh[j * h..][..h],
                        if lstm { &mut dc[j * h..][..h] } else { &mut [][..] },
                        da,
                        du_row,
                    );
                }
                if gru {
                    for i in 0..mb {
                        copied(&mut du[(i * t + step) * g..][..g], &du_step[(first + i) * g..][..g]);
                    }
                }
            }
            // δh_{t−1} += ∂L/∂u_t · W_hh, for the rows that ran (the others have ∂L/∂u_t = 0).
            running(s, rows.start, m, step, &mut taken);
            let room = (&mut du_taken[..], &mut dh_taken[..]);
            product_of_rows(&taken, Dims { m, n: h, k: g }, &du_step, w_hh, &mut dh, Accumulate::Add, room);
        }
        // ∂L/∂h0 and ∂L/∂c0: the running δh and δC after step 0.
        for (block, [_, _, h0, c0, _]) in group.iter_mut() {
            let first = block.start - rows.start;
            copied(h0, &dh[first * h..][..block.len() * h]);
            if lstm {
                copied(c0, &dc[first * h..][..block.len() * h]);
            }
        }
    };
    groups(blocks).into_par_iter().for_each(run);
    // SAFETY: every row's every step wrote its `xw`, and its `du` (GRU) and
    // `probe` where asked; the end of `run` wrote `h0` and `c0` (LSTM).
    let (du, xw, h0, c0, probe) = unsafe { (du.written(), xw.written(), h0.written(), c0.written(), dprobe.written()) };
    // ∂L/∂u and h_{t−1} of every row and step, in the same order: one GEMM for ∂L/∂W_hh.
    let du = if gru { &du } else { &xw };
    let mut w_hh = vec![0.0; g * h];
    sgemm(
        Dims { m: g, n: h, k: t * b },
        Operand::Transposed(du),
        Operand::Stored(&kept.hp),
        &mut w_hh,
        Accumulate::Overwrite,
    );
    let b_hh = column_sums(du, g);
    Grads { xw, w_hh, b_hh, h0, c0, probe }
}
