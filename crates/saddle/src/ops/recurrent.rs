//! The fused LSTM cell: gate arithmetic forward and backward in one op.
//!
//! Letters: B batch, H hidden size.
//!
//! From the pre-activations `a = W_ih x_t + b_ih + W_hh h_{t−1} + b_hh: [B, 4H]`
//! (gates in PyTorch's order i, f, g, o) and `C_{t−1}: [B, H]`:
//!
//! ```text
//! i, f, o = σ(a_i), σ(a_f), σ(a_o),   g = tanh(a_g)
//! C_t = f ⊙ C_{t−1} + i ⊙ g,          h_t = o ⊙ tanh(C_t)
//! ```
//!
//! returned side by side as `[h_t | C_t]: [B, 2H]` (the engine's ops have one
//! output). Backward, with `δC = ∂L/∂C_t + ∂L/∂h_t ⊙ o ⊙ (1 − tanh²C_t)`:
//! `∂a_i = δC ⊙ g ⊙ i(1 − i)`, `∂a_f = δC ⊙ C_{t−1} ⊙ f(1 − f)`,
//! `∂a_g = δC ⊙ i ⊙ (1 − g²)`, `∂a_o = ∂L/∂h_t ⊙ tanh C_t ⊙ o(1 − o)`,
//! `∂C_{t−1} = δC ⊙ f`. One op instead of eleven per step, and no
//! intermediate tensors in the graph.
//!
//! Uses: `tensor`.

use crate::tensor::{Backward, Tensor};

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl Tensor {
    /// One LSTM step from gate pre-activations `self: [B, 4H]` and `c_prev: [B, H]`;
    /// returns `[h | C]: [B, 2H]` (see the module docs).
    pub fn lstm_cell(&self, c_prev: &Tensor) -> Tensor {
        let (a, c) = (self.shape(), c_prev.shape());
        if a.len() != 2 || c.len() != 2 || a[0] != c[0] || a[1] != 4 * c[1] {
            panic!("lstm_cell: gates {a:?} must be [B, 4H] for a cell state {c:?} of [B, H]");
        }
        let (b, h) = (c[0], c[1]);
        let (gates, cp) = (self.data(), c_prev.data());
        // Per row: i, f, g, o, tanh C, then the output [h | C].
        let mut acts = vec![0.0f32; b * 5 * h];
        let mut out = vec![0.0f32; b * 2 * h];
        for r in 0..b {
            let a = &gates[r * 4 * h..][..4 * h];
            let act = &mut acts[r * 5 * h..][..5 * h];
            let o_row = &mut out[r * 2 * h..][..2 * h];
            for j in 0..h {
                let (i, f, g, o) = (sigmoid(a[j]), sigmoid(a[h + j]), a[2 * h + j].tanh(), sigmoid(a[3 * h + j]));
                let c_new = f * cp[r * h + j] + i * g;
                let tc = c_new.tanh();
                act[j] = i;
                act[h + j] = f;
                act[2 * h + j] = g;
                act[3 * h + j] = o;
                act[4 * h + j] = tc;
                o_row[j] = o * tc;
                o_row[h + j] = c_new;
            }
        }
        drop((gates, cp));
        Tensor::from_op(out, &[b, 2 * h], &[self, c_prev], LstmCellBackward { acts, h })
    }
}

struct LstmCellBackward {
    /// `[B, 5H]`: i, f, g, o, tanh C_t of each row.
    acts: Vec<f32>,
    h: usize,
}

impl Backward for LstmCellBackward {
    fn name(&self) -> &'static str {
        "lstm_cell"
    }
    fn backward(&self, inputs: &[Tensor], _out: &[f32], grad: &[f32]) -> Vec<Option<Vec<f32>>> {
        let h = self.h;
        let b = grad.len() / (2 * h);
        let cp = inputs[1].data();
        let mut da = vec![0.0f32; b * 4 * h];
        let mut dcp = vec![0.0f32; b * h];
        for r in 0..b {
            let act = &self.acts[r * 5 * h..][..5 * h];
            let g_row = &grad[r * 2 * h..][..2 * h];
            let da_row = &mut da[r * 4 * h..][..4 * h];
            for j in 0..h {
                let (i, f, g, o, tc) = (act[j], act[h + j], act[2 * h + j], act[3 * h + j], act[4 * h + j]);
                let (dh, dc_in) = (g_row[j], g_row[h + j]);
                let dc = dc_in + dh * o * (1.0 - tc * tc);
                da_row[j] = dc * g * i * (1.0 - i);
                da_row[h + j] = dc * cp[r * h + j] * f * (1.0 - f);
                da_row[2 * h + j] = dc * i * (1.0 - g * g);
                da_row[3 * h + j] = dh * tc * o * (1.0 - o);
                dcp[r * h + j] = dc * f;
            }
        }
        vec![Some(da), inputs[1].is_requires_grad().then_some(dcp)]
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_close, gradcheck};
    use crate::{Rng, Tensor};

    #[test]
    fn lstm_cell_gradcheck_and_composed_twin() {
        let mut rng = Rng::new(100);
        let a = Tensor::uniform(&[3, 8], -2.0, 2.0, &mut rng);
        let c = Tensor::uniform(&[3, 2], -1.0, 1.0, &mut rng);
        gradcheck("lstm_cell", &[a.clone(), c.clone()], |t| t[0].lstm_cell(&t[1]), &mut rng);
        // The same step written with separate ops.
        let chunk = |k: usize| a.narrow(1, 2 * k, 2);
        let (i, f, g, o) = (chunk(0).sigmoid(), chunk(1).sigmoid(), chunk(2).tanh(), chunk(3).sigmoid());
        let c_new = f.mul(&c).add(&i.mul(&g));
        let h = o.mul(&c_new.tanh());
        let fused = a.lstm_cell(&c);
        assert_close("h", &fused.narrow(1, 0, 2).to_vec(), &h.to_vec(), 1e-6);
        assert_close("c", &fused.narrow(1, 2, 2).to_vec(), &c_new.to_vec(), 1e-6);
    }
}
