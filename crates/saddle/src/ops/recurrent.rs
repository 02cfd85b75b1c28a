//! A whole recurrence as one op: every step of one layer and direction of an
//! Elman RNN, LSTM or GRU, forward and backward through time.
//!
//! Letters: B batch, T time, H hidden size, G = gates·H, S the state size
//! (2H for the LSTM, `[h | C]`; H otherwise).
//!
//! `xw: [B, T, G]` holds the input projections `W_ih x_t + b_ih` of every step
//! (one GEMM, done by the caller). Each step `t`, in time order or reversed,
//! computes `u = h_{t−1} W_hhᵀ + b_hh` and `(h_t, C_t) = cell(xw_t, u, h_{t−1},
//! C_{t−1})`; the output is the state after every step. Past the end of a
//! sequence (`t ≥ lengths[b]`) its state is carried unchanged, so the reverse
//! direction starts at each sequence's true end. The cells' equations, their
//! backward and the loop over steps are in `kernels::recurrent`; this is the
//! graph node: one per layer and direction, instead of several per step.
//!
//! Uses: `tensor`, `kernels::recurrent`.

use crate::kernels::recurrent::{backward, forward, CellKind, Kept, Steps};
use crate::tensor::{Backward, Tensor};

/// What [`Tensor::recurrence`] runs.
#[derive(Clone, Copy, Debug)]
pub struct Recurrence<'a> {
    /// The cell.
    pub kind: CellKind,
    /// The true length of each sequence (all `T` if `None`).
    pub lengths: Option<&'a [usize]>,
    /// Run from the last step to the first.
    pub reverse: bool,
}

impl Tensor {
    /// Runs a recurrence over `self = xw: [B, T, G]` from `h0: [B, H]` (and
    /// `c0: [B, H]` for the LSTM) with `w_hh: [G, H]` and `b_hh: [G]`, and
    /// returns the state after every step, `[B, T, S]` (S = 2H for the LSTM,
    /// `[h | C]`; H otherwise). Each step `t`, in time order or reversed,
    /// computes `u = h_{t−1} W_hhᵀ + b_hh` and `(h_t, C_t) = cell(xw_t, u, h_{t−1},
    /// C_{t−1})`, the cells of [`CellKind`] (their
    /// equations are on [`Recurrent`](crate::nn::Recurrent)); past the end of a
    /// sequence (`t ≥ lengths[b]`) its state is carried unchanged.
    /// `probe: [B, T, H]`, if given, is added to `h_t` right after each step
    /// (before it feeds the next), so that its gradient is `∂L/∂h_t`.
    ///
    /// ```
    /// use saddle::ops::{CellKind, Recurrence};
    /// use saddle::Tensor;
    /// // One unit, w_hh = 1: h_t = tanh(x_t + h_{t−1}).
    /// let xw = Tensor::from_vec(vec![0.5, 0.5], &[1, 2, 1]);
    /// let (w, h0) = (Tensor::ones(&[1, 1]), Tensor::zeros(&[1, 1]));
    /// let run = Recurrence { kind: CellKind::RnnTanh, lengths: None, reverse: false };
    /// let h = xw.recurrence(&w, None, &h0, None, None, run).to_vec();
    /// assert!((h[0] - 0.5f32.tanh()).abs() < 1e-7 && (h[1] - (0.5 + h[0]).tanh()).abs() < 1e-7);
    /// ```
    pub fn recurrence(
        &self,
        w_hh: &Tensor,
        b_hh: Option<&Tensor>,
        h0: &Tensor,
        c0: Option<&Tensor>,
        probe: Option<&Tensor>,
        run: Recurrence,
    ) -> Tensor {
        let name = run.kind.torch_name();
        let (b, t, g) = match *self.shape() {
            [b, t, g] => (b, t, g),
            _ => panic!("{name}: input projections {:?} must be [B, T, G]", self.shape()),
        };
        let h = g / run.kind.gates();
        let lstm = run.kind == CellKind::Lstm;
        let expect = |what: &str, x: &Tensor, shape: &[usize]| {
            if x.shape() != shape {
                panic!("{name}: {what} {:?} must be {shape:?} for input projections {:?}", x.shape(), self.shape());
            }
        };
        expect("w_hh", w_hh, &[g, h]);
        expect("h0", h0, &[b, h]);
        b_hh.inspect(|x| expect("b_hh", x, &[g]));
        probe.inspect(|x| expect("probe", x, &[b, t, h]));
        match (lstm, c0) {
            (true, Some(c)) => expect("c0", c, &[b, h]),
            (false, None) => {}
            _ => panic!("{name}: a cell state c0 is needed by the LSTM and by no other cell"),
        }
        if let Some(l) = run.lengths {
            if l.len() != b || l.iter().any(|&n| n > t) {
                panic!("{name}: lengths {l:?} must give one length ≤ {t} for each of the {b} sequences");
            }
        }

        let mut inputs = vec![self, w_hh, h0];
        inputs.extend(c0);
        inputs.extend(b_hh);
        inputs.extend(probe);
        let steps = Steps { kind: run.kind, batch: b, time: t, hidden: h, lengths: run.lengths, reverse: run.reverse };
        let (out, kept) = {
            let (xw, w, bias, probe) = (self.data(), w_hh.data(), b_hh.map(|x| x.data()), probe.map(|x| x.data()));
            let c0 = c0.map_or_else(Vec::new, |c| c.to_vec());
            let (bias, probe) = (bias.as_deref().map(|v| &v[..]), probe.as_deref().map(|v| &v[..]));
            forward(&steps, &xw, &w, bias, &h0.data(), &c0, probe, Tensor::records(&inputs))
        };
        let backward = RecurrenceBackward {
            kind: run.kind,
            lengths: run.lengths.map(|l| l.to_vec()),
            reverse: run.reverse,
            dims: (b, t, h),
            inputs: (b_hh.is_some(), c0.is_some(), probe.is_some()),
            kept,
        };
        let s = if lstm { 2 * h } else { h };
        Tensor::from_op(out, &[b, t, s], &inputs, backward)
    }
}

struct RecurrenceBackward {
    kind: CellKind,
    lengths: Option<Vec<usize>>,
    reverse: bool,
    /// B, T, H.
    dims: (usize, usize, usize),
    /// Whether `b_hh`, `c0` and `probe` are inputs.
    inputs: (bool, bool, bool),
    kept: Kept,
}

impl Backward for RecurrenceBackward {
    fn name(&self) -> &'static str {
        "recurrence"
    }
    fn backward(&self, inputs: &[Tensor], _out: &[f32], gout: &[f32]) -> Vec<Option<Vec<f32>>> {
        let (batch, time, hidden) = self.dims;
        let steps =
            Steps { kind: self.kind, batch, time, hidden, lengths: self.lengths.as_deref(), reverse: self.reverse };
        let (bias, c0, probe) = self.inputs;
        let d = backward(&steps, &self.kept, &inputs[1].data(), gout, probe);
        // In the order of the inputs: xw, w_hh, h0, then c0, b_hh, probe where given.
        let mut grads = vec![Some(d.xw), Some(d.w_hh), Some(d.h0)];
        for (present, g) in [(c0, d.c0), (bias, d.b_hh), (probe, d.probe)] {
            if present {
                grads.push(Some(g));
            }
        }
        grads
    }
}

#[cfg(test)]
mod tests {
    use super::Recurrence;
    use crate::kernels::recurrent::CellKind;
    use crate::ops::testing::{assert_close, gradcheck};
    use crate::{Rng, Tensor};

    /// The same recurrence written step by step with separate ops: the oracle.
    fn composed(inputs: &[Tensor], run: Recurrence) -> Tensor {
        let (xw, w, h0) = (&inputs[0], &inputs[1], &inputs[2]);
        let (b, t, g) = (xw.shape()[0], xw.shape()[1], xw.shape()[2]);
        let h = g / run.kind.gates();
        let lstm = run.kind == CellKind::Lstm;
        let (c0, b_hh, probe) =
            (lstm.then(|| &inputs[3]), inputs.get(3 + lstm as usize), inputs.get(4 + lstm as usize));
        let chunk = |x: &Tensor, i: usize| x.narrow(1, i * h, h);
        let (mut hs, mut cs) = (h0.clone(), c0.cloned());
        let mut out: Vec<Tensor> = vec![Tensor::zeros(&[b, 1]); t];
        let order: Vec<usize> = if run.reverse { (0..t).rev().collect() } else { (0..t).collect() };
        for s in order {
            let a = xw.narrow(1, s, 1).squeeze(1);
            let u = hs.linear(w, b_hh);
            let (mut h_new, c_new) = match run.kind {
                CellKind::RnnTanh => (a.add(&u).tanh(), None),
                CellKind::RnnRelu => (a.add(&u).relu(), None),
                CellKind::Lstm => {
                    let z = a.add(&u);
                    let (i, f, g, o) =
                        (chunk(&z, 0).sigmoid(), chunk(&z, 1).sigmoid(), chunk(&z, 2).tanh(), chunk(&z, 3).sigmoid());
                    let c = f.mul(cs.as_ref().unwrap()).add(&i.mul(&g));
                    (o.mul(&c.tanh()), Some(c))
                }
                CellKind::Gru => {
                    let r = chunk(&a, 0).add(&chunk(&u, 0)).sigmoid();
                    let z = chunk(&a, 1).add(&chunk(&u, 1)).sigmoid();
                    let n = chunk(&a, 2).add(&r.mul(&chunk(&u, 2))).tanh();
                    (z.neg().add_scalar(1.0).mul(&n).add(&z.mul(&hs)), None)
                }
            };
            if let Some(p) = probe {
                h_new = h_new.add(&p.narrow(1, s, 1).squeeze(1));
            }
            let keep: Vec<f32> = (0..b).map(|r| if run.lengths.is_none_or(|l| s < l[r]) { 1.0 } else { 0.0 }).collect();
            let keep = Tensor::from_vec(keep, &[b, 1]);
            let skip = keep.neg().add_scalar(1.0);
            hs = h_new.mul(&keep).add(&hs.mul(&skip));
            cs = c_new.map(|c| c.mul(&keep).add(&cs.as_ref().unwrap().mul(&skip)));
            out[s] = match &cs {
                Some(c) => Tensor::cat(&[&hs, c], 1),
                None => hs.clone(),
            };
        }
        Tensor::stack(&out.iter().collect::<Vec<_>>(), 1)
    }

    #[test]
    fn every_cell_matches_its_composed_twin_and_gradchecks() {
        let mut rng = Rng::new(7);
        let (b, t, h) = (3, 4, 2);
        let lengths = [4, 1, 3];
        for kind in [CellKind::RnnTanh, CellKind::RnnRelu, CellKind::Lstm, CellKind::Gru] {
            for (reverse, lengths, probe) in
                [(false, None, false), (true, Some(&lengths[..]), false), (false, Some(&lengths[..]), true)]
            {
                let g = kind.gates() * h;
                let mut u = |shape: &[usize]| Tensor::uniform(shape, -1.0, 1.0, &mut rng);
                let mut inputs = vec![u(&[b, t, g]), u(&[g, h]), u(&[b, h])];
                let lstm = kind == CellKind::Lstm;
                if lstm {
                    inputs.push(u(&[b, h]));
                }
                inputs.push(u(&[g]));
                if probe {
                    inputs.push(u(&[b, t, h]));
                }
                let run = Recurrence { kind, lengths, reverse };
                let fused = |x: &[Tensor]| {
                    let c0 = lstm.then(|| &x[3]);
                    x[0].recurrence(&x[1], x.get(3 + lstm as usize), &x[2], c0, x.get(4 + lstm as usize), run)
                };
                let case = format!("{kind:?} reverse={reverse} lengths={lengths:?} probe={probe}");
                assert_close(&case, &fused(&inputs).to_vec(), &composed(&inputs, run).to_vec(), 1e-6);
                // Gradients: against the twin's, and by finite differences.
                let w = Tensor::uniform(&[b, t, if lstm { 2 * h } else { h }], -1.0, 1.0, &mut rng);
                let grads = |f: &dyn Fn(&[Tensor]) -> Tensor| -> Vec<Vec<f32>> {
                    let x: Vec<Tensor> = inputs.iter().map(|x| x.detach().requires_grad()).collect();
                    f(&x).mul(&w).sum_all().backward();
                    x.iter().map(|x| x.grad().unwrap().to_vec()).collect()
                };
                let twin = grads(&|x| composed(x, run));
                for (i, (got, want)) in grads(&fused).iter().zip(&twin).enumerate() {
                    assert_close(&format!("{case}: gradient of input {i}"), got, want, 1e-6);
                }
                gradcheck(&case, &inputs, fused, &mut rng);
            }
        }
    }

    #[test]
    fn blocks_of_rows_agree_with_the_twin_and_whatever_the_thread_count() {
        use crate::kernels::recurrent::ROWS;
        // Three blocks and five: on one thread two blocks share each
        // product, on three each has its own.
        for b in [2 * ROWS + 3, 4 * ROWS + 3] {
            blocks_agree(b, 3, 1e-6);
        }
        // H = 200: a product of two blocks' rows, [16, 800]·[800, 200] in the
        // backward, is large enough that the parallel GEMM would split its
        // columns and sum otherwise than a product of one block's rows. (The
        // twin sums its 800-term products in another order, through five
        // steps of weights drawn from ±1: about 5e-5 apart.)
        blocks_agree(2 * ROWS + 3, 200, 2e-4);
    }

    fn blocks_agree(b: usize, h: usize, tol: f32) {
        let mut rng = Rng::new(11);
        let t = 5;
        let lengths: Vec<usize> = (0..b).map(|r| 1 + r % t).collect();
        let run = Recurrence { kind: CellKind::Lstm, lengths: Some(&lengths), reverse: true };
        let mut u = |shape: &[usize]| Tensor::uniform(shape, -1.0, 1.0, &mut rng);
        let inputs = [u(&[b, t, 4 * h]), u(&[4 * h, h]), u(&[b, h]), u(&[b, h]), u(&[4 * h])];
        let w = u(&[b, t, 2 * h]);
        let grads = |f: &dyn Fn(&[Tensor]) -> Tensor| -> Vec<Vec<f32>> {
            let x: Vec<Tensor> = inputs.iter().map(|x| x.detach().requires_grad()).collect();
            let y = f(&x);
            y.mul(&w).sum_all().backward();
            std::iter::once(y.to_vec()).chain(x.iter().map(|x| x.grad().unwrap().to_vec())).collect()
        };
        let fused = |x: &[Tensor]| x[0].recurrence(&x[1], Some(&x[4]), &x[2], Some(&x[3]), None, run);
        let in_pool = |threads: usize| {
            rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| grads(&fused))
        };
        let one = in_pool(1);
        for threads in [2, 3] {
            assert_eq!(one, in_pool(threads), "batch {b}, H {h}: the same bits with 1 and {threads} threads");
        }
        for (i, (got, want)) in one.iter().zip(grads(&|x| composed(x, run))).enumerate() {
            assert_close(&format!("batch {b}, H {h}: output and gradients, {i}"), got, &want, tol);
        }
    }
}
