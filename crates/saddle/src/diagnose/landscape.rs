//! Slices of the loss landscape: along the line between two points
//! (Goodfellow et al. 2015) and on a plane of filter-normalized random
//! directions (Li et al. 2018).

use super::Objective;
use crate::Rng;

/// `L((1 − α)·from + α·to)` for each `α` (0 at `from`, 1 at `to`); the
/// parameters are left at their current point.
pub fn interpolate(f: &Objective, from: &[f32], to: &[f32], alphas: &[f64]) -> Vec<f64> {
    let here = f.point();
    let out = alphas
        .iter()
        .map(|&a| {
            let theta: Vec<f32> =
                from.iter().zip(to).map(|(&x, &y)| ((1.0 - a) * x as f64 + a * y as f64) as f32).collect();
            f.set_point(&theta);
            f.loss()
        })
        .collect();
    f.set_point(&here);
    out
}

/// A random direction with the scale of the weights, filter by filter (Li et
/// al. 2018): Gaussian entries, then each filter (each row of the first axis
/// of a weight of 2 or more dimensions: an output channel of a convolution, a
/// row of a linear layer) rescaled to the norm of the same filter of `θ`.
/// One-dimensional parameters (biases) get no component, so that the slice
/// shows the weights' landscape.
pub fn filter_normalized_direction(f: &Objective, rng: &mut Rng) -> Vec<f64> {
    let mut d = Vec::with_capacity(f.dim());
    for p in f.params() {
        let theta = p.to_vec();
        let shape = p.shape();
        if shape.len() < 2 {
            d.extend(std::iter::repeat_n(0.0, theta.len()));
            continue;
        }
        let per = theta.len() / shape[0].max(1);
        for filter in theta.chunks(per.max(1)) {
            let r: Vec<f64> = (0..filter.len()).map(|_| rng.normal(0.0, 1.0) as f64).collect();
            let rn = r.iter().map(|x| x * x).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
            let tn = filter.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
            d.extend(r.iter().map(|x| x / rn * tn));
        }
    }
    d
}

/// `L(θ + a·d1 + b·d2)` on the grid `coords × coords`: row `i` holds
/// `a = coords[i]`, column `j` holds `b = coords[j]`.
pub fn slice_2d(f: &Objective, d1: &[f64], d2: &[f64], coords: &[f64]) -> Vec<Vec<f64>> {
    coords
        .iter()
        .map(|&a| {
            coords
                .iter()
                .map(|&b| {
                    let d: Vec<f64> = d1.iter().zip(d2).map(|(x, y)| a * x + b * y).collect();
                    f.loss_at(&d)
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tensor;

    #[test]
    fn slices_of_a_bowl() {
        // L = ‖W‖² with W of 2 filters of 3 weights; b is a bias.
        let w = Tensor::from_vec(vec![1.0, 2.0, 2.0, 0.0, 3.0, 4.0], &[2, 3]).requires_grad();
        let b = Tensor::from_vec(vec![5.0], &[1]).requires_grad();
        let loss = || w.mul(&w).sum_all();
        let f = Objective::new(vec![w.clone(), b.clone()], &loss);
        let d = filter_normalized_direction(&f, &mut Rng::new(0));
        let norm = |s: &[f64]| s.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm(&d[0..3]) - 3.0).abs() < 1e-9 && (norm(&d[3..6]) - 5.0).abs() < 1e-9);
        assert_eq!(d[6], 0.0);
        let line = interpolate(&f, &f.point(), &[0.0; 7], &[0.0, 0.5, 1.0]);
        assert!((line[0] - 34.0).abs() < 1e-4 && (line[1] - 8.5).abs() < 1e-4 && line[2] == 0.0, "{line:?}");
        let grid = slice_2d(&f, &d, &d, &[-1.0, 0.0]);
        assert!((grid[1][1] - 34.0).abs() < 1e-4);
        // θ − 2d: each filter's norm becomes |1 − 2|·‖θ_filter‖ … at most 9·34.
        assert!(grid[0][0] > 0.0 && grid[0][0] < 9.0 * 34.0 + 1e-3);
        assert_eq!(f.point(), vec![1.0, 2.0, 2.0, 0.0, 3.0, 4.0, 5.0]);
    }
}
