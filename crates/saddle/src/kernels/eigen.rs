//! The eigen-decomposition of a small symmetric matrix (Lanczos' tridiagonal
//! matrices, a patch covariance for whitening), in `f64`.
//!
//! Uses: nothing else in the crate.

/// Eigenvalues (ascending) and eigenvectors (column `i` of the row-major
/// `k×k` result belongs to eigenvalue `i`) of a small symmetric matrix, by
/// cyclic Jacobi rotations.
pub fn symmetric_eigen(a: &[f64], k: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0.0; k * k];
    (0..k).for_each(|i| v[i * k + i] = 1.0);
    for _sweep in 0..100 {
        let off: f64 = (0..k)
            .flat_map(|i| (0..k).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * k + j].powi(2))
            .sum();
        let total: f64 = a.iter().map(|x| x * x).sum();
        if off <= 1e-30 * total.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..k {
            for r in p + 1..k {
                let apr = a[p * k + r];
                if apr == 0.0 {
                    continue;
                }
                // The rotation that zeroes a[p][r]: tan 2φ = 2a_pr / (a_rr − a_pp).
                let theta = (a[r * k + r] - a[p * k + p]) / (2.0 * apr);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for i in 0..k {
                    let (aip, air) = (a[i * k + p], a[i * k + r]);
                    a[i * k + p] = c * aip - s * air;
                    a[i * k + r] = s * aip + c * air;
                }
                for i in 0..k {
                    let (api, ari) = (a[p * k + i], a[r * k + i]);
                    a[p * k + i] = c * api - s * ari;
                    a[r * k + i] = s * api + c * ari;
                }
                for i in 0..k {
                    let (vip, vir) = (v[i * k + p], v[i * k + r]);
                    v[i * k + p] = c * vip - s * vir;
                    v[i * k + r] = s * vip + c * vir;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&i, &j| a[i * k + i].total_cmp(&a[j * k + j]));
    let values = order.iter().map(|&i| a[i * k + i]).collect();
    let mut vectors = vec![0.0; k * k];
    for (col, &i) in order.iter().enumerate() {
        for row in 0..k {
            vectors[row * k + col] = v[row * k + i];
        }
    }
    (values, vectors)
}
