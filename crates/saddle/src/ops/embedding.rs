//! Embedding lookup: `y[..., :] = W[index, :]`.
//!
//! Letters: V vocabulary size (`num_embeddings`), D `embedding_dim`.
//!
//! `weight: [V, D]`, `indices` of any shape `S` → `[S, D]`. Backward
//! scatter-adds each row of `dy` into the row of `dW` it was read from (a word
//! seen twice gets both gradients); the row `padding_idx`, if any, gets none,
//! as in `torch.nn.functional.embedding`.
//!
//! Uses: `tensor`.

use crate::tensor::{Backward, Tensor};

impl Tensor {
    /// Looks up rows of this `[V, D]` table: `indices` (shape `shape`) → `[shape…, D]`.
    /// Panics if an index is `≥ V` (data loaders check indices from files first).
    ///
    /// ```
    /// use saddle::Tensor;
    /// let table = Tensor::arange(0.0, 6.0, 1.0).reshape(&[3, 2]);
    /// let y = table.embedding(&[2, 0], &[2], None);
    /// assert_eq!(y.to_vec(), vec![4.0, 5.0, 0.0, 1.0]);
    /// ```
    pub fn embedding(&self, indices: &[usize], shape: &[usize], padding_idx: Option<usize>) -> Tensor {
        let ws = self.shape();
        if ws.len() != 2 {
            panic!("embedding: weight {ws:?} must be [num_embeddings, embedding_dim]");
        }
        if indices.len() != shape.iter().product::<usize>() {
            panic!("embedding: {} indices cannot have shape {shape:?}", indices.len());
        }
        let (v, d) = (ws[0], ws[1]);
        if let Some(&bad) = indices.iter().find(|&&i| i >= v) {
            panic!("embedding: index {bad} is out of range for weight {ws:?}");
        }
        let w = self.data();
        let mut out = Vec::with_capacity(indices.len() * d);
        for &i in indices {
            out.extend_from_slice(&w[i * d..][..d]);
        }
        drop(w);
        let mut out_shape = shape.to_vec();
        out_shape.push(d);
        Tensor::from_op(out, &out_shape, &[self], EmbeddingBackward { indices: indices.to_vec(), padding_idx })
    }
}

struct EmbeddingBackward {
    indices: Vec<usize>,
    padding_idx: Option<usize>,
}

impl Backward for EmbeddingBackward {
    fn name(&self) -> &'static str {
        "embedding"
    }
    fn backward(&self, inputs: &[Tensor], _out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        let d = inputs[0].shape()[1];
        let mut dw = vec![0.0f32; inputs[0].numel()];
        for (k, &i) in self.indices.iter().enumerate() {
            if Some(i) != self.padding_idx {
                dw[i * d..][..d].iter_mut().zip(&g[k * d..][..d]).for_each(|(a, b)| *a += b);
            }
        }
        vec![Some(dw)]
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{gradcheck, Fixtures};
    use crate::{Rng, Tensor};

    #[test]
    fn embedding_matches_pytorch() {
        let fx = Fixtures::load("embedding");
        for case in fx.cases("embedding") {
            let w = fx.param(&case, "weight");
            let idx: Vec<usize> = fx.indices(&case, "indices").iter().map(|&i| i as usize).collect();
            let shape = fx.tensor(&case, "indices").shape().to_vec();
            let padding_idx = case.get("padding_idx").map(|p| p.parse().unwrap());
            fx.check_forward_backward(&case, &w.embedding(&idx, &shape, padding_idx), &[("weight", &w)]);
        }
    }

    #[test]
    fn embedding_gradcheck() {
        let mut rng = Rng::new(80);
        let w = Tensor::uniform(&[5, 3], -1.0, 1.0, &mut rng);
        // No padding_idx here: its row is read but, by definition, gets no gradient.
        gradcheck("embedding", &[w], |t| t[0].embedding(&[1, 4, 1, 0, 2, 1], &[2, 3], None), &mut rng);
    }
}
