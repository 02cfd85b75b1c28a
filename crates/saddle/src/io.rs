//! Files: safetensors tensors, JSON documents, and atomic writes. Every module
//! that writes or reads a run's files goes through here.
//!
//! An atomic write goes to `PATH.tmp` in the same folder, is flushed to disk
//! (`fsync`), renamed over `PATH`, and the folder is flushed too: a reader, or
//! a machine that lost power, sees the old file or the whole new one, never
//! half of it.
//!
//! Uses: `tensor`, `error` (a leaf otherwise).

use crate::{Error, Result, Tensor};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Tensors by name: `(shape, values)`.
pub type StateDict = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// Writes `bytes` to `path` atomically (see the module docs).
///
/// ```
/// let path = std::env::temp_dir().join(format!("saddle-doc-atomic-{}", std::process::id()));
/// saddle::io::write_atomically(&path, b"whole").unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"whole");
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(&tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })?;
    // The rename itself reaches the disk when the folder is flushed.
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::File::open(folder).and_then(|d| d.sync_all()).map_err(|e| Error::io(folder, e))
}

/// Writes `value` as pretty-printed JSON to `path`, atomically.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::format(path, e.to_string()))?;
    write_atomically(path, format!("{text}\n").as_bytes())
}

/// Reads a JSON document of type `T` from `path`; `what` says what the file
/// should be, for the error message (`a saddle run file of format 2`).
pub fn read_json<T: DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::format(path, format!("not {what} ({e})")))
}

/// Writes `tensors` (and string `metadata`) to `path` as safetensors (`F32`,
/// row-major), atomically.
pub fn write_safetensors(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let datas: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, t)| (name.clone(), t.shape().to_vec(), t.data().iter().flat_map(|v| v.to_le_bytes()).collect()))
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = datas
        .iter()
        .map(|(name, shape, bytes)| {
            let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                .expect("a tensor's byte length matches its shape");
            (name.clone(), view)
        })
        .collect();
    let bytes = safetensors::serialize(views, metadata).map_err(|e| Error::checkpoint(path, e.to_string()))?;
    write_atomically(path, &bytes)
}

/// Reads every tensor of a safetensors file as `f32` (shape, values), with its metadata.
pub fn read_safetensors(path: &Path) -> Result<(StateDict, HashMap<String, String>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::checkpoint(path, format!("not a safetensors file ({e})")))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| Error::checkpoint(path, format!("not a safetensors file ({e})")))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(Error::checkpoint(path, format!("tensor '{name}' is {:?}, expected F32", view.dtype())));
        }
        let data = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        out.insert(name, (view.shape().to_vec(), data));
    }
    Ok((out, meta.metadata().clone().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = std::env::temp_dir().join(format!("saddle-io-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.json");
        write_json(&path, &vec![1, 2]).unwrap();
        assert_eq!(read_json::<Vec<i32>>(&path, "a list").unwrap(), [1, 2]);
        // A folder where the temporary file should go makes the write fail.
        std::fs::create_dir_all(dir.join("a.json.tmp")).unwrap();
        assert!(write_json(&path, &vec![3]).is_err());
        assert_eq!(read_json::<Vec<i32>>(&path, "a list").unwrap(), [1, 2]);
        let e = read_json::<Vec<String>>(&path, "a list of words").unwrap_err().to_string();
        assert!(e.contains("a.json: not a list of words"), "{e}");
    }
}
