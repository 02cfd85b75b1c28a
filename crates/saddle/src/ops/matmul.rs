//! Matrix products: `matmul` (2-D and batched) and `linear`.
//!
//! Letters: B batch, M rows, K shared, N columns; I in_features, O out_features.
//!
//! `C = A·B`: `dA = dC·Bᵀ`, `dB = Aᵀ·dC`, each one GEMM with a transposed
//! operand (no copies). `linear(x, W, b) = x·Wᵀ + b` with `W: [O, I]` as in
//! `torch.nn.functional.linear`: `dx = dy·W`, `dW = dyᵀ·x`, `db = Σ_rows dy`.
//!
//! Uses: `tensor`, `kernels::gemm`, `kernels` (`filled`, `in_parts`).

use crate::kernels::elementwise::column_sums;
use crate::kernels::gemm::{sgemm, Accumulate, Dims, Operand};
use crate::kernels::{filled, in_parts};
use crate::tensor::{Backward, Tensor};

/// Values a part of [`zeros`] and of the bias pass: the worker threads' share.
const PART: usize = 1 << 14;

/// `len` zeros, written by the worker threads (`kernels::Fresh`): a GEMM's
/// output, which the calling thread alone would otherwise clear first.
fn zeros(len: usize) -> Vec<f32> {
    filled(len, PART, |_, _| {})
}

/// How `matmul` sees its operands: `a: [batch, m, k]`, `b: [k, n]` shared by
/// every batch (`b_batched == false`) or `[batch, k, n]`.
#[derive(Clone, Copy)]
struct MatmulDims {
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    b_batched: bool,
}

fn matmul_dims(a: &[usize], b: &[usize]) -> MatmulDims {
    let bad = || -> ! { panic!("matmul: shapes {a:?} and {b:?} cannot be multiplied") };
    match (a.len(), b.len()) {
        (2, 2) if a[1] == b[0] => MatmulDims { batch: 1, m: a[0], k: a[1], n: b[1], b_batched: false },
        // [B, M, K]·[K, N]: the batch folds into the rows.
        (3, 2) if a[2] == b[0] => MatmulDims { batch: 1, m: a[0] * a[1], k: a[2], n: b[1], b_batched: false },
        (3, 3) if a[0] == b[0] && a[2] == b[1] => {
            MatmulDims { batch: a[0], m: a[1], k: a[2], n: b[2], b_batched: true }
        }
        _ => bad(),
    }
}

impl Tensor {
    /// Matrix product (`torch.matmul`) for `[M, K]·[K, N]`, `[B, M, K]·[K, N]` and
    /// `[B, M, K]·[B, K, N]`: `C = A·B`, backward `dA = dC·Bᵀ`, `dB = Aᵀ·dC`, each
    /// one GEMM with a transposed operand (no copies).
    ///
    /// ```
    /// use saddle::Tensor;
    /// let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
    /// let b = Tensor::from_vec(vec![0.0, 1.0, 1.0, 0.0], &[2, 2]);
    /// assert_eq!(a.matmul(&b).to_vec(), vec![2.0, 1.0, 4.0, 3.0]);
    /// ```
    pub fn matmul(&self, other: &Tensor) -> Tensor {
        let d = matmul_dims(self.shape(), other.shape());
        let (a, b) = (self.data(), other.data());
        let mut out = zeros(d.batch * d.m * d.n);
        for i in 0..d.batch {
            let bi = if d.b_batched { &b[i * d.k * d.n..][..d.k * d.n] } else { &b[..] };
            // out_i = a_i · b_i: [M, N]
            sgemm(
                Dims { m: d.m, n: d.n, k: d.k },
                Operand::Stored(&a[i * d.m * d.k..][..d.m * d.k]),
                Operand::Stored(bi),
                &mut out[i * d.m * d.n..][..d.m * d.n],
                Accumulate::Overwrite,
            );
        }
        let mut shape = self.shape().to_vec();
        *shape.last_mut().expect("matmul: rank ≥ 2") = d.n;
        drop((a, b));
        Tensor::from_op(out, &shape, &[self, other], MatmulBackward(d))
    }
}

struct MatmulBackward(MatmulDims);

impl Backward for MatmulBackward {
    fn name(&self) -> &'static str {
        "matmul"
    }
    fn backward(&self, inputs: &[Tensor], _out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        let d = self.0;
        let (a, b) = (inputs[0].data(), inputs[1].data());
        let ga = inputs[0].is_requires_grad().then(|| {
            let mut ga = zeros(a.len());
            for i in 0..d.batch {
                let bi = if d.b_batched { &b[i * d.k * d.n..][..d.k * d.n] } else { &b[..] };
                // dA_i = dC_i · B_iᵀ: [M, K]
                sgemm(
                    Dims { m: d.m, n: d.k, k: d.n },
                    Operand::Stored(&g[i * d.m * d.n..][..d.m * d.n]),
                    Operand::Transposed(bi),
                    &mut ga[i * d.m * d.k..][..d.m * d.k],
                    Accumulate::Overwrite,
                );
            }
            ga
        });
        let gb = inputs[1].is_requires_grad().then(|| {
            let mut gb = zeros(b.len());
            for i in 0..d.batch {
                let gbi = if d.b_batched { &mut gb[i * d.k * d.n..][..d.k * d.n] } else { &mut gb[..] };
                // dB_i (+)= A_iᵀ · dC_i: [K, N]
                sgemm(
                    Dims { m: d.k, n: d.n, k: d.m },
                    Operand::Transposed(&a[i * d.m * d.k..][..d.m * d.k]),
                    Operand::Stored(&g[i * d.m * d.n..][..d.m * d.n]),
                    gbi,
                    if !d.b_batched && i > 0 { Accumulate::Add } else { Accumulate::Overwrite },
                );
            }
            gb
        });
        vec![ga, gb]
    }
}

impl Tensor {
    /// `y = x·Wᵀ + b` (`torch.nn.functional.linear`) with `x: [*, I]`,
    /// `weight: [O, I]`, `bias: [O]`; `y: [*, O]`. Backward: `dx = dy·W`,
    /// `dW = dyᵀ·x`, `db = Σ_rows dy`.
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
        let (xs, ws) = (self.shape(), weight.shape());
        if ws.len() != 2 || xs.is_empty() || xs[xs.len() - 1] != ws[1] {
            panic!(
                "linear: input {xs:?} has {} features but weight {ws:?} expects {}",
                xs.last().copied().unwrap_or(0),
                ws.get(1).copied().unwrap_or(0)
            );
        }
        let (o, i) = (ws[0], ws[1]);
        if let Some(b) = bias {
            if b.shape() != [o] {
                panic!("linear: bias {:?} does not match weight {ws:?} (expected [{o}])", b.shape());
            }
        }
        let rows = self.numel() / i.max(1);
        let mut out = zeros(rows * o);
        // y = x · Wᵀ: [rows, O]
        sgemm(
            Dims { m: rows, n: o, k: i },
            Operand::Stored(&self.data()),
            Operand::Transposed(&weight.data()),
            &mut out,
            Accumulate::Overwrite,
        );
        if let Some(b) = bias {
            let b: &[f32] = &b.data();
            // Whole rows a part, on the worker threads.
            let add = |_: usize, part: &mut [f32]| {
                part.chunks_exact_mut(o).for_each(|row| row.iter_mut().zip(b).for_each(|(y, b)| *y += b))
            };
            in_parts(&mut out, o * PART.div_ceil(o.max(1)), &add);
        }
        let mut shape = xs.to_vec();
        *shape.last_mut().expect("non-empty") = o;
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        Tensor::from_op(out, &shape, &inputs, LinearBackward { rows, i, o })
    }
}

struct LinearBackward {
    rows: usize,
    i: usize,
    o: usize,
}

impl Backward for LinearBackward {
    fn name(&self) -> &'static str {
        "linear"
    }
    fn backward(&self, inputs: &[Tensor], _out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        let (rows, i, o) = (self.rows, self.i, self.o);
        let gx = inputs[0].is_requires_grad().then(|| {
            let mut gx = zeros(rows * i);
            // dx = dy · W: [rows, I]
            sgemm(
                Dims { m: rows, n: i, k: o },
                Operand::Stored(g),
                Operand::Stored(&inputs[1].data()),
                &mut gx,
                Accumulate::Overwrite,
            );
            gx
        });
        let gw = inputs[1].is_requires_grad().then(|| {
            let mut gw = zeros(o * i);
            // dW = dyᵀ · x: [O, I]
            sgemm(
                Dims { m: o, n: i, k: rows },
                Operand::Transposed(g),
                Operand::Stored(&inputs[0].data()),
                &mut gw,
                Accumulate::Overwrite,
            );
            gw
        });
        let mut grads = vec![gx, gw];
        if let Some(b) = inputs.get(2) {
            grads.push(b.is_requires_grad().then(|| column_sums(g, o)));
        }
        grads
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{gradcheck, Fixtures};
    use crate::{Rng, Tensor};

    #[test]
    fn matmul_and_linear_match_pytorch() {
        let fx = Fixtures::load("matmul");
        for case in fx.cases("matmul") {
            let (a, b) = (fx.param(&case, "a"), fx.param(&case, "b"));
            fx.check_forward_backward(&case, &a.matmul(&b), &[("a", &a), ("b", &b)]);
        }
        for case in fx.cases("linear") {
            let (x, w) = (fx.param(&case, "x"), fx.param(&case, "weight"));
            if fx.has(&case, "bias") {
                let b = fx.param(&case, "bias");
                fx.check_forward_backward(&case, &x.linear(&w, Some(&b)), &[("x", &x), ("weight", &w), ("bias", &b)]);
            } else {
                fx.check_forward_backward(&case, &x.linear(&w, None), &[("x", &x), ("weight", &w)]);
            }
        }
    }

    #[test]
    fn matmul_gradcheck() {
        let mut rng = Rng::new(40);
        let a = Tensor::uniform(&[3, 4], -1.0, 1.0, &mut rng);
        let b = Tensor::uniform(&[4, 5], -1.0, 1.0, &mut rng);
        gradcheck("matmul 2-D", &[a, b.clone()], |t| t[0].matmul(&t[1]), &mut rng);
        let a3 = Tensor::uniform(&[2, 3, 4], -1.0, 1.0, &mut rng);
        let b3 = Tensor::uniform(&[2, 4, 5], -1.0, 1.0, &mut rng);
        gradcheck("matmul batched", &[a3.clone(), b3], |t| t[0].matmul(&t[1]), &mut rng);
        gradcheck("matmul shared rhs", &[a3, b], |t| t[0].matmul(&t[1]), &mut rng);
        let x = Tensor::uniform(&[2, 3, 4], -1.0, 1.0, &mut rng);
        let w = Tensor::uniform(&[6, 4], -1.0, 1.0, &mut rng);
        let bias = Tensor::uniform(&[6], -1.0, 1.0, &mut rng);
        gradcheck("linear", &[x, w, bias], |t| t[0].linear(&t[1], Some(&t[2])), &mut rng);
    }

    /// The bias is added in parts of whole rows on the worker threads: over
    /// outputs large enough for several parts (whose size, 164 rows of 100,
    /// is not a power of two), every row gets each bias value once, bit for bit.
    #[test]
    fn linear_adds_the_bias_to_every_row_once() {
        let mut rng = Rng::new(41);
        let x = Tensor::uniform(&[3, 250, 30], -1.0, 1.0, &mut rng);
        let w = Tensor::uniform(&[100, 30], -1.0, 1.0, &mut rng);
        let b = Tensor::uniform(&[100], -1.0, 1.0, &mut rng);
        let (with, without) = (x.linear(&w, Some(&b)).to_vec(), x.linear(&w, None).to_vec());
        let b = b.to_vec();
        for (r, (y, y0)) in with.chunks(100).zip(without.chunks(100)).enumerate() {
            let expected: Vec<f32> = y0.iter().zip(&b).map(|(v, b)| v + b).collect();
            assert_eq!(y, &expected[..], "row {r}");
        }
    }

    #[test]
    #[should_panic(expected = "linear: input [2, 3] has 3 features but weight [4, 5] expects 5")]
    fn linear_names_both_shapes() {
        Tensor::zeros(&[2, 3]).linear(&Tensor::zeros(&[4, 5]), None);
    }
}
