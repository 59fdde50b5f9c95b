//! The IDX format of MNIST (big-endian header, then raw bytes), raw or gzipped.

use crate::error::{DataError, Result};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;

/// An IDX array of unsigned bytes: its dimensions and data.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// The elements.
    pub data: Vec<u8>,
}

/// Decompresses `bytes` if they start with the gzip magic number.
pub fn maybe_gunzip(bytes: Vec<u8>, path: &Path) -> Result<Vec<u8>> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .map_err(|e| DataError::Format {
                path: path.to_path_buf(),
                message: format!("bad gzip data: {e}"),
            })?;
        Ok(out)
    } else {
        Ok(bytes)
    }
}

/// Parses an IDX file of unsigned bytes (type code 0x08) from `bytes` (raw or gzipped).
pub fn parse_idx(bytes: Vec<u8>, path: &Path) -> Result<IdxArray> {
    let bytes = maybe_gunzip(bytes, path)?;
    let bad = |m: String| DataError::Format {
        path: path.to_path_buf(),
        message: m,
    };
    if bytes.len() < 4 {
        return Err(bad(format!("{} bytes is too short for an IDX header", bytes.len())));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad(format!(
            "not an IDX file: magic {:02x?}, expected 00 00 08 0N",
            &bytes[..4]
        )));
    }
    if bytes[2] != 0x08 {
        return Err(bad(format!(
            "IDX element type 0x{:02x} is not supported; expected 0x08 (unsigned byte)",
            bytes[2]
        )));
    }
    let ndim = bytes[3] as usize;
    let header = 4 + 4 * ndim;
    if ndim == 0 || bytes.len() < header {
        return Err(bad(format!(
            "truncated IDX header ({ndim} dimensions, {} bytes)",
            bytes.len()
        )));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| u32::from_be_bytes([bytes[4 + 4 * i], bytes[5 + 4 * i], bytes[6 + 4 * i], bytes[7 + 4 * i]]) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad("dimensions overflow".into()))?;
    let body = bytes.len() - header;
    if body != count {
        return Err(bad(format!(
            "header {dims:?} promises {count} bytes of data, the file has {body}"
        )));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn parses_raw_and_gzipped() {
        let raw = idx(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        let a = parse_idx(raw.clone(), Path::new("x")).unwrap();
        assert_eq!(a.dims, vec![2, 3]);
        assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        let b = parse_idx(gz.finish().unwrap(), Path::new("x.gz")).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn truncated_and_foreign_files_name_the_file() {
        let mut raw = idx(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        raw.pop();
        let e = parse_idx(raw, Path::new("short.idx")).unwrap_err().to_string();
        assert!(e.contains("short.idx") && e.contains("promises 6"), "{e}");
        let e = parse_idx(b"PNG\x0d....".to_vec(), Path::new("a.png"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("a.png") && e.contains("not an IDX"), "{e}");
        let e = parse_idx(vec![0x1f, 0x8b, 1, 2], Path::new("b.gz"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("b.gz") && e.contains("gzip"), "{e}");
    }
}
