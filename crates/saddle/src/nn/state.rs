//! State dicts as safetensors files, in PyTorch's names.
//!
//! [`save_state_dict`] writes every parameter and buffer of a module (`F32`,
//! row-major; [`Module::state_dict`]);
//! [`load_state_dict`] reads one back strictly, as `load_state_dict(strict=True)`:
//! a missing tensor (parameter or buffer), an unexpected one, or one of the wrong shape or type is an
//! [`Error::Checkpoint`] that names it. Files are written to a temporary name
//! and renamed ([`crate::io::write_atomically`]), so a crash never leaves a
//! half-written file.
//!
//! Uses: `nn::Module`, `io`, `error`.

use super::Module;
use crate::io::{read_safetensors, write_safetensors};
use crate::{Error, Result};
use std::path::Path;

/// Saves `module`'s parameters and buffers to `path` under PyTorch's state-dict names.
pub fn save_state_dict(module: &dyn Module, path: &Path) -> Result<()> {
    write_safetensors(path, &module.state_dict(), None)
}

/// Loads parameters and buffers saved by [`save_state_dict`] or by PyTorch
/// (`safetensors.torch.save_file(model.state_dict(), path)`) into `module`.
pub fn load_state_dict(module: &dyn Module, path: &Path) -> Result<()> {
    let (mut stored, _) = read_safetensors(path)?;
    let params = module.state_dict();
    // Check everything before changing anything.
    for (name, t) in &params {
        match stored.get(name) {
            None => return Err(Error::checkpoint(path, format!("missing tensor '{name}' (shape {:?})", t.shape()))),
            Some((shape, _)) if shape != t.shape() => {
                return Err(Error::checkpoint(
                    path,
                    format!("tensor '{name}' has shape {shape:?}, the model expects {:?}", t.shape()),
                ))
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = stored.keys().find(|k| !params.iter().any(|(n, _)| n == *k)) {
        return Err(Error::checkpoint(
            path,
            format!("unexpected tensor '{extra}': the model has no such parameter or buffer"),
        ));
    }
    for (name, t) in &params {
        let (_, data) = stored.remove(name).expect("checked above");
        *t.data_mut() = data;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Linear, Sequential};
    use crate::Rng;

    fn tmp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("saddle-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn round_trip_and_strict_errors() {
        let a = Linear::new(3, 2, true, &mut Rng::new(1));
        let b = Linear::new(3, 2, true, &mut Rng::new(2));
        let path = tmp("linear.safetensors");
        save_state_dict(&a, &path).unwrap();
        load_state_dict(&b, &path).unwrap();
        assert_eq!(a.weight.to_vec(), b.weight.to_vec());

        let wrong = Linear::new(4, 2, true, &mut Rng::new(3));
        let e = load_state_dict(&wrong, &path).unwrap_err().to_string();
        assert!(e.contains("tensor 'weight' has shape [2, 3], the model expects [2, 4]"), "{e}");
        let nested = Sequential::new(vec![Box::new(Linear::new(3, 2, true, &mut Rng::new(4)))]);
        let e = load_state_dict(&nested, &path).unwrap_err().to_string();
        assert!(e.contains("missing tensor '0.weight'"), "{e}");
        let no_bias = Linear::new(3, 2, false, &mut Rng::new(5));
        let e = load_state_dict(&no_bias, &path).unwrap_err().to_string();
        assert!(e.contains("unexpected tensor 'bias'"), "{e}");

        std::fs::write(&path, b"garbage").unwrap();
        let e = load_state_dict(&b, &path).unwrap_err().to_string();
        assert!(e.contains("not a safetensors file"), "{e}");
        let e = load_state_dict(&b, &tmp("absent.safetensors")).unwrap_err().to_string();
        assert!(e.contains("absent.safetensors"), "{e}");
    }
}
