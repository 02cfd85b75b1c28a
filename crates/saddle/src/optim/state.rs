//! Optimizer state: per-parameter buffers under PyTorch's state names, and
//! their checkpoint file.
//!
//! The file is safetensors: buffer `b` of parameter `p` is the tensor `p.b`
//! (for example `0.weight.exp_avg`), and the step count of `p` is the metadata
//! entry `step.p`, kept as text so it is exact.
//!
//! Uses: `io`, `error`.

use super::Optimizer;
use crate::io::{read_safetensors, write_safetensors};
use crate::{Error, Result, Tensor};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// One parameter's optimizer state: its step count and named buffers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParamState {
    /// Updates applied so far (PyTorch's `state['step']`).
    pub step: u64,
    /// Buffers by PyTorch's names (`exp_avg`, `momentum_buffer`, …).
    pub buffers: BTreeMap<String, Vec<f32>>,
}

impl ParamState {
    /// Removes buffer `name` for updating, or makes it `n` copies of `init`;
    /// give it back with [`ParamState::put`].
    pub fn take(&mut self, name: &str, n: usize, init: f32) -> Vec<f32> {
        self.buffers.remove(name).unwrap_or_else(|| vec![init; n])
    }
    /// Stores buffer `name`.
    pub fn put(&mut self, name: &str, buffer: Vec<f32>) {
        self.buffers.insert(name.to_string(), buffer);
    }
}

/// Writes `opt`'s state to `path` (atomically).
pub fn save_optimizer_state(opt: &Optimizer, path: &Path) -> Result<()> {
    let mut tensors = Vec::new();
    let mut meta = HashMap::new();
    for (param, s) in opt.state() {
        meta.insert(format!("step.{param}"), s.step.to_string());
        for (buf, v) in &s.buffers {
            tensors.push((format!("{param}.{buf}"), Tensor::from_vec(v.clone(), &[v.len()])));
        }
    }
    write_safetensors(path, &tensors, Some(meta))
}

/// Reads state written by [`save_optimizer_state`] into `opt`, checking that
/// every parameter it names exists with buffers of the parameter's size.
pub fn load_optimizer_state(opt: &mut Optimizer, path: &Path) -> Result<()> {
    let (tensors, meta) = read_safetensors(path)?;
    let sizes: HashMap<String, usize> = opt.params().iter().map(|(n, p)| (n.clone(), p.numel())).collect();
    let mut state: BTreeMap<String, ParamState> = BTreeMap::new();
    for (key, value) in &meta {
        let Some(param) = key.strip_prefix("step.") else { continue };
        if !sizes.contains_key(param) {
            return Err(Error::checkpoint(path, format!("state for '{param}', which the model does not have")));
        }
        let step =
            value.parse().map_err(|_| Error::checkpoint(path, format!("{key} = '{value}' is not a step count")))?;
        state.entry(param.to_string()).or_default().step = step;
    }
    for (key, (_, data)) in tensors {
        // The parameter name may contain dots: the buffer is the part after the last one.
        let Some((param, buf)) = key.rsplit_once('.') else {
            return Err(Error::checkpoint(path, format!("tensor '{key}' is not named PARAMETER.BUFFER")));
        };
        let Some(&n) = sizes.get(param) else {
            return Err(Error::checkpoint(path, format!("state for '{param}', which the model does not have")));
        };
        if data.len() != n {
            return Err(Error::checkpoint(
                path,
                format!("'{key}' has {} values, parameter '{param}' has {n}", data.len()),
            ));
        }
        state.entry(param.to_string()).or_default().put(buf, data);
    }
    *opt.state_mut() = state;
    Ok(())
}
