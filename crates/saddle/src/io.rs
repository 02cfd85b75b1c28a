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
    // safetensors without its `std` feature (which would bring in tempfile)
    // keeps metadata in a hashbrown map.
    let metadata = metadata.map(|m| m.into_iter().collect());
    let bytes = safetensors::serialize(views, metadata).map_err(|e| Error::checkpoint(path, e.to_string()))?;
    write_atomically(path, &bytes)
}

/// Reads every tensor of a safetensors file as `f32` (shape, values), with its
/// metadata. `F32` tensors are read as they are; `I64` ones (PyTorch's counts)
/// are converted when every value is at most 2²⁴ in size, so exact.
pub fn read_safetensors(path: &Path) -> Result<(StateDict, HashMap<String, String>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::checkpoint(path, format!("not a safetensors file ({e})")))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| Error::checkpoint(path, format!("not a safetensors file ({e})")))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let data = match view.dtype() {
            safetensors::Dtype::F32 => {
                view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
            }
            // PyTorch keeps counts such as batch norm's `num_batches_tracked` as int64.
            safetensors::Dtype::I64 => {
                let ints: Vec<i64> =
                    view.data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes"))).collect();
                if let Some(v) = ints.iter().find(|v| v.unsigned_abs() > 1 << 24) {
                    return Err(Error::checkpoint(
                        path,
                        format!("tensor '{name}' holds the integer {v}, beyond what f32 holds exactly (2^24)"),
                    ));
                }
                ints.iter().map(|&v| v as f32).collect()
            }
            other => {
                return Err(Error::checkpoint(
                    path,
                    format!("tensor '{name}' is {other:?}, expected F32 (or I64 for a count)"),
                ))
            }
        };
        out.insert(name, (view.shape().to_vec(), data));
    }
    Ok((out, meta.metadata().clone().unwrap_or_default().into_iter().collect()))
}

/// Non-finite numbers in JSON, which has none: NaN and ±∞ are written as the
/// strings `"NaN"`, `"inf"` and `"-inf"`, and read back from them (or from a
/// number); finite numbers are plain JSON numbers in their shortest exact
/// form. For `#[serde(with = "saddle::io::float")]` on `f32` and `f64` fields.
pub mod float {
    use serde::{Deserialize, Deserializer, Serializer};

    /// `f32` or `f64`.
    pub trait Float: Copy {
        /// Writes a finite value as a JSON number.
        fn write<S: Serializer>(self, s: S) -> Result<S::Ok, S::Error>;
        /// The value as `f64`.
        fn wide(self) -> f64;
        /// The value from an `f64` (exact for a value written by `write`).
        fn narrow(v: f64) -> Self;
    }
    impl Float for f32 {
        fn write<S: Serializer>(self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_f32(self)
        }
        fn wide(self) -> f64 {
            self as f64
        }
        fn narrow(v: f64) -> Self {
            v as f32
        }
    }
    impl Float for f64 {
        fn write<S: Serializer>(self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_f64(self)
        }
        fn wide(self) -> f64 {
            self
        }
        fn narrow(v: f64) -> Self {
            v
        }
    }

    /// Writes `v`, as a string when it is not finite.
    pub fn serialize<T: Float, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        let x = v.wide();
        match x {
            x if x.is_finite() => v.write(s),
            x if x.is_nan() => s.serialize_str("NaN"),
            x if x > 0.0 => s.serialize_str("inf"),
            _ => s.serialize_str("-inf"),
        }
    }

    /// The value of a JSON number or of `"NaN"`, `"inf"`, `"-inf"`.
    pub(crate) fn from_json<E: serde::de::Error>(v: &serde_json::Value) -> Result<f64, E> {
        match v {
            serde_json::Value::Number(n) => n.as_f64().ok_or_else(|| E::custom("a number out of range")),
            serde_json::Value::String(s) if s == "NaN" => Ok(f64::NAN),
            serde_json::Value::String(s) if s == "inf" => Ok(f64::INFINITY),
            serde_json::Value::String(s) if s == "-inf" => Ok(f64::NEG_INFINITY),
            other => Err(E::custom(format!("expected a number, \"NaN\", \"inf\" or \"-inf\", found {other}"))),
        }
    }

    /// Reads a value written by [`serialize`].
    pub fn deserialize<'de, T: Float, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        from_json(&serde_json::Value::deserialize(d)?).map(T::narrow)
    }
}

/// [`float`] for an optional pair of `f32` (a loss and an accuracy).
pub mod float_pair {
    use super::float::{self, from_json};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize)]
    struct Pair(#[serde(with = "float")] f32, #[serde(with = "float")] f32);

    /// Writes `None` as `null` and a pair as a two-element list.
    pub fn serialize<S: Serializer>(v: &Option<(f32, f32)>, s: S) -> Result<S::Ok, S::Error> {
        v.map(|(a, b)| Pair(a, b)).serialize(s)
    }

    /// Reads what [`serialize`] wrote.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<(f32, f32)>, D::Error> {
        match Option::<[serde_json::Value; 2]>::deserialize(d)? {
            None => Ok(None),
            Some([a, b]) => Ok(Some((from_json::<D::Error>(&a)? as f32, from_json::<D::Error>(&b)? as f32))),
        }
    }
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

    #[test]
    fn non_finite_numbers_survive_json() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct S {
            #[serde(with = "float")]
            a: f32,
            #[serde(with = "float")]
            b: f64,
            #[serde(with = "float_pair")]
            c: Option<(f32, f32)>,
        }
        for (a, b) in [(f32::NAN, f64::INFINITY), (0.1, f64::NEG_INFINITY), (-2.5e-7, 1.0 / 3.0)] {
            let v = S { a, b, c: Some((a, 0.25)) };
            let text = serde_json::to_string(&v).unwrap();
            let back: S = serde_json::from_str(&text).unwrap();
            assert_eq!(back.a.to_bits(), a.to_bits(), "{text}");
            assert_eq!(back.b.to_bits(), b.to_bits(), "{text}");
            assert_eq!(back.c.map(|(x, y)| (x.to_bits(), y)), Some((a.to_bits(), 0.25)), "{text}");
        }
        assert_eq!(serde_json::to_string(&S { a: 0.1, b: 2.0, c: None }).unwrap(), r#"{"a":0.1,"b":2.0,"c":null}"#);
        assert!(serde_json::from_str::<S>(r#"{"a":"nan","b":1,"c":null}"#).is_err());
    }
}
