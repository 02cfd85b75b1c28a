//! The IDX file format of MNIST (LeCun et al.), raw or gzip-compressed.
//!
//! Layout: two zero bytes, a type byte (`0x08` = unsigned bytes, the only type
//! MNIST uses), a byte with the number of dimensions `d`, then `d` big-endian
//! `u32` sizes, then the data in row-major order. So the magic number of an
//! image file is `0x00000803` (2051) and of a label file `0x00000801` (2049).
//!
//! Uses: `error`.

use crate::{Error, Result};
use std::path::Path;

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idx {
    /// Sizes, outermost first.
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes with `ndims` dimensions (gzip is
/// detected by its magic bytes). Errors name the file and what was expected.
pub fn read_idx(path: &Path, ndims: usize) -> Result<Idx> {
    let mut bytes = super::read_maybe_gzip(path)?;
    let expected_magic = 0x0800 | ndims as u32;
    if bytes.len() < 4 {
        return Err(Error::format(path, format!("file is {} bytes long, too short for an IDX header", bytes.len())));
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if magic != expected_magic {
        return Err(Error::format(
            path,
            format!("magic number {magic:#010x} found, expected {expected_magic:#010x} (IDX of unsigned bytes with {ndims} dimensions)"),
        ));
    }
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(Error::format(path, format!("truncated header: {} bytes, expected {header}", bytes.len())));
    }
    let dims: Vec<usize> = (0..ndims)
        .map(|i| u32::from_be_bytes([bytes[4 + 4 * i], bytes[5 + 4 * i], bytes[6 + 4 * i], bytes[7 + 4 * i]]) as usize)
        .collect();
    let expected = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let found = bytes.len() - header;
    match expected {
        Some(n) if n == found => {
            bytes.drain(..header); // in place: no second copy of a large file
            Ok(Idx { dims, data: bytes })
        }
        Some(n) => Err(Error::format(
            path,
            format!("dimensions {dims:?} need {n} data bytes, found {found} (truncated or corrupt file)"),
        )),
        None => Err(Error::format(path, format!("dimensions {dims:?} are too large"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    pub(crate) fn idx_bytes(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = magic.to_be_bytes().to_vec();
        dims.iter().for_each(|d| b.extend(d.to_be_bytes()));
        b.extend(data);
        b
    }

    fn write(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        crate::data::scratch_file("idx", name, bytes)
    }

    #[test]
    fn reads_raw_and_gzip() {
        let bytes = idx_bytes(0x0803, &[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let raw = read_idx(&write("a.idx", &bytes), 3).unwrap();
        assert_eq!(raw.dims, vec![2, 2, 3]);
        assert_eq!(raw.data[11], 12);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&bytes).unwrap();
        assert_eq!(read_idx(&write("a.idx.gz", &gz.finish().unwrap()), 3).unwrap(), raw);
    }

    #[test]
    fn bad_files_name_the_problem() {
        let e = read_idx(&write("m.idx", &idx_bytes(0x0801, &[3], &[1, 2, 3])), 3).unwrap_err().to_string();
        assert!(e.contains("m.idx: magic number 0x00000801 found, expected 0x00000803"), "{e}");
        let e = read_idx(&write("t.idx", &idx_bytes(0x0801, &[5], &[1, 2, 3])), 1).unwrap_err().to_string();
        assert!(e.contains("need 5 data bytes, found 3"), "{e}");
        let e = read_idx(&write("s.idx", &[0, 0]), 1).unwrap_err().to_string();
        assert!(e.contains("too short"), "{e}");
        let e = read_idx(&write("c.gz", &[0x1f, 0x8b, 8, 0, 1, 2, 3]), 1).unwrap_err().to_string();
        assert!(e.contains("corrupt gzip"), "{e}");
        let e = read_idx(Path::new("/nonexistent/x.idx"), 1).unwrap_err().to_string();
        assert!(e.starts_with("/nonexistent/x.idx:"), "{e}");
    }
}
