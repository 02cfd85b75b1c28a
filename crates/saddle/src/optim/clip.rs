//! Gradient norm and clipping by global norm (`torch.nn.utils.clip_grad_norm_`).
//!
//! `‖g‖ = √(Σ_params Σ_i g_i²)`; if `‖g‖ > c`, every gradient is scaled by
//! `c / (‖g‖ + 1e-6)`. Clipping by value clamps each element to `[−c, c]`.
//! The sum runs in one thread in parameter order (`f64`), so it is the same
//! for any thread count.
//!
//! Uses: `tensor`, `kernels::elementwise` (the sum).

use crate::{Error, Result, Tensor};

/// The global L2 norm of the gradients of `params` (those without one count
/// as 0), summed in `f64`: each tensor's squares into eight interleaved
/// partial sums, which vectorize (one running sum waited on each addition),
/// then the tensors in order.
pub fn global_grad_norm(params: &[(String, Tensor)]) -> f32 {
    let sq: f64 = params
        .iter()
        .filter_map(|(_, p)| p.with_grad_mut(|g| crate::kernels::elementwise::sum(g, |v| (v as f64) * (v as f64))))
        .sum();
    sq.sqrt() as f32
}

/// Scales all gradients so that their global norm is at most `max_norm`;
/// returns the norm before clipping. With `error_if_nonfinite`, a NaN or
/// infinite norm is an error and no gradient is changed
/// (`torch.nn.utils.clip_grad_norm_(…, error_if_nonfinite=True)`).
pub fn clip_grad_norm(params: &[(String, Tensor)], max_norm: f32, error_if_nonfinite: bool) -> Result<f32> {
    let norm = global_grad_norm(params);
    if error_if_nonfinite && !norm.is_finite() {
        return Err(Error::config("clip-norm", format!("the global gradient norm is {norm}: training diverged")));
    }
    let scale = max_norm / (norm + 1e-6);
    if scale < 1.0 {
        for (_, p) in params {
            p.with_grad_mut(|g| g.iter_mut().for_each(|v| *v *= scale));
        }
    }
    Ok(norm)
}

/// Clamps every gradient element to `[−clip, clip]` (`torch.nn.utils.clip_grad_value_`).
pub fn clip_grad_value(params: &[(String, Tensor)], clip: f32) {
    for (_, p) in params {
        p.with_grad_mut(|g| g.iter_mut().for_each(|v| *v = v.clamp(-clip, clip)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_to_the_max_norm_and_returns_the_old_one() {
        let a = Tensor::from_vec(vec![3.0], &[1]).requires_grad();
        let b = Tensor::from_vec(vec![4.0], &[1]).requires_grad();
        a.mul_scalar(3.0).add(&b.mul_scalar(4.0)).sum_all().backward(); // grads 3, 4: norm 5
        let params = vec![("a".to_string(), a.clone()), ("b".to_string(), b.clone())];
        assert_eq!(clip_grad_norm(&params, 1.0, true).unwrap(), 5.0);
        assert!((global_grad_norm(&params) - 1.0).abs() < 1e-5);
        assert!((a.grad().unwrap().item() - 0.6).abs() < 1e-5);
        clip_grad_value(&params, 0.5);
        assert_eq!(b.grad().unwrap().item(), 0.5);
        b.with_grad_mut(|g| g[0] = f32::NAN);
        assert!(clip_grad_norm(&params, 1.0, true).is_err());
        assert!(clip_grad_norm(&params, 1.0, false).unwrap().is_nan());
    }
}
