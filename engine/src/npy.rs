//! NumPy `.npy` files: float32 arrays in and out, integer class labels in.
//!
//! Reads format versions 1, 2 and 3 (the header's length field is 2 bytes in v1, 4 in v2/v3),
//! C order only, little-endian or byte-order-free dtypes: `<f4` as float32, and for labels the
//! integers `|u1`, `|i1`, `<u2`, `<i2`, `<u4`, `<i4`, `<u8`, `<i8` (and `<f4` holding whole
//! numbers). Writes version 1 `<f4` files atomically (a temporary file renamed into place).
//! Every error names the file and says what was wrong (truncated data, a bad header, an
//! unsupported dtype or `fortran_order`).

use crate::error::{EngineError, Result};
use fovea_graph::Tensor;
use fovea_graph::ir::fmt_shape;
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";

/// An array's element values, by the kind of its dtype.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    /// `<f4`.
    F32(Vec<f32>),
    /// Any supported integer dtype, widened.
    Int(Vec<i64>),
}

/// An array read from a `.npy` file.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// The dimensions (empty for a scalar).
    pub shape: Vec<usize>,
    /// The dtype as the file spells it (`<f4`, `<i8`, ...).
    pub descr: String,
    /// The elements in C order.
    pub data: NpyData,
}

fn bad(path: &Path, message: impl Into<String>) -> EngineError {
    EngineError::Input {
        what: path.display().to_string(),
        message: message.into(),
    }
}

/// Reads a `.npy` file.
pub fn read(path: &Path) -> Result<NpyArray> {
    let bytes = std::fs::read(path).map_err(|e| bad(path, format!("cannot read: {e}")))?;
    parse(&bytes, path)
}

/// Reads a float32 array (`<f4`) as a tensor; other dtypes are an error that says how to convert.
pub fn read_f32(path: &Path) -> Result<Tensor> {
    let a = read(path)?;
    match a.data {
        NpyData::F32(data) => Ok(Tensor { shape: a.shape, data }),
        NpyData::Int(_) => Err(bad(
            path,
            format!(
                "dtype {} is not supported here; expected float32 ('<f4'): save x.astype(numpy.float32)",
                a.descr
            ),
        )),
    }
}

/// Reads class labels: integers (or float32 whole numbers) that are non-negative, as `u32`.
/// Returns the array's shape and the labels in C order.
pub fn read_labels(path: &Path) -> Result<(Vec<usize>, Vec<u32>)> {
    let a = read(path)?;
    let values: Vec<i64> = match &a.data {
        NpyData::Int(v) => v.clone(),
        NpyData::F32(v) => {
            if let Some((i, x)) = v.iter().enumerate().find(|(_, x)| x.fract() != 0.0 || !x.is_finite()) {
                return Err(bad(
                    path,
                    format!("labels must be whole numbers; element {i} is {x} (dtype {})", a.descr),
                ));
            }
            v.iter().map(|&x| x as i64).collect()
        }
    };
    let labels = values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            u32::try_from(v).map_err(|_| {
                bad(
                    path,
                    format!("labels must be non-negative class indices; element {i} is {v}"),
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((a.shape, labels))
}

/// The header's value of `key` in numpy's Python-literal dict: the text up to the next
/// top-level comma or closing brace.
fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let start = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[start..].trim_start().strip_prefix(':')?.trim_start();
    let mut depth = 0i32;
    for (i, c) in rest.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' | '}' if depth == 0 => return Some(rest[..i].trim()),
            _ => {}
        }
    }
    None
}

/// Parses `.npy` bytes; `path` names the source in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<NpyArray> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad(path, "not a .npy file (no \\x93NUMPY magic at the start)"));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (hlen, hstart) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        _ => {
            return Err(bad(
                path,
                format!("unsupported .npy format version {major}.{minor} (or truncated header)"),
            ));
        }
    };
    if hstart + hlen > bytes.len() {
        return Err(bad(
            path,
            format!(
                "truncated .npy file: the header needs {} bytes, the file has {}",
                hstart + hlen,
                bytes.len()
            ),
        ));
    }
    let header =
        std::str::from_utf8(&bytes[hstart..hstart + hlen]).map_err(|_| bad(path, "corrupt .npy header (not text)"))?;
    let field = |k: &str| {
        header_value(header, k).ok_or_else(|| bad(path, format!("corrupt .npy header: no '{k}' in {header:?}")))
    };
    let descr = field("descr")?.trim_matches(|c| c == '\'' || c == '"').to_string();
    match field("fortran_order")? {
        "False" => {}
        "True" => {
            return Err(bad(
                path,
                "Fortran-order arrays are not supported; save numpy.ascontiguousarray(a) (C order)",
            ));
        }
        v => return Err(bad(path, format!("corrupt .npy header: fortran_order is {v}"))),
    }
    let shape_text = field("shape")?;
    let inner = shape_text
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| bad(path, format!("corrupt .npy header: shape {shape_text}")))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| bad(path, format!("corrupt .npy header: shape {shape_text}")))?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad(path, format!("corrupt .npy header: shape {shape_text} is too large")))?;
    let size = match descr.as_str() {
        "<f4" | "<i4" | "<u4" => 4,
        "<i8" | "<u8" => 8,
        "<i2" | "<u2" => 2,
        "|u1" | "|i1" | "|b1" => 1,
        _ => {
            let hint = if descr.starts_with('>') {
                " (big-endian; save a.astype(a.dtype.newbyteorder('<')))"
            } else if descr == "<f8" {
                " (float64; save a.astype(numpy.float32))"
            } else {
                ""
            };
            return Err(bad(
                path,
                format!("dtype {descr} is not supported{hint}; expected float32 '<f4' or integer labels"),
            ));
        }
    };
    let body = &bytes[hstart + hlen..];
    let need = count
        .checked_mul(size)
        .ok_or_else(|| bad(path, format!("corrupt .npy header: shape {shape_text} is too large")))?;
    if body.len() != need {
        return Err(bad(
            path,
            format!(
                "{} .npy file: shape {} of {descr} needs {need} data bytes, the file has {}",
                if body.len() < need { "truncated" } else { "corrupt" },
                fmt_shape(&shape),
                body.len()
            ),
        ));
    }
    let data = match descr.as_str() {
        "<f4" => NpyData::F32(
            body.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        _ => NpyData::Int(
            body.chunks_exact(size)
                .map(|c| match descr.as_str() {
                    "|u1" | "|b1" => c[0] as i64,
                    "|i1" => c[0] as i8 as i64,
                    "<i2" => i16::from_le_bytes([c[0], c[1]]) as i64,
                    "<u2" => u16::from_le_bytes([c[0], c[1]]) as i64,
                    "<i4" => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64,
                    "<u4" => u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64,
                    "<u8" => u64::from_le_bytes(c.try_into().unwrap_or([0; 8])).min(i64::MAX as u64) as i64,
                    _ => i64::from_le_bytes(c.try_into().unwrap_or([0; 8])),
                })
                .collect(),
        ),
    };
    Ok(NpyArray { shape, descr, data })
}

/// The bytes of a version-1 `<f4` `.npy` file holding `t`.
pub fn to_bytes(t: &Tensor) -> Vec<u8> {
    let dims: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Pad with spaces so that the data starts at a multiple of 64 bytes; end with a newline.
    while !(MAGIC.len() + 4 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + header.len() + t.data.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(bytemuck::cast_slice(&t.data));
    out
}

/// Writes `t` as a float32 `.npy` file atomically (temporary file, then rename).
pub fn write_f32(path: &Path, t: &Tensor) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, to_bytes(t)).map_err(|e| bad(&tmp, format!("cannot write: {e}")))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        bad(path, format!("cannot rename {} into place: {e}", tmp.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, major: u8, body: &[u8]) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&[major, 0]);
        if major == 1 {
            b.extend_from_slice(&(header.len() as u16).to_le_bytes());
        } else {
            b.extend_from_slice(&(header.len() as u32).to_le_bytes());
        }
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn round_trip_and_versions() {
        let p = Path::new("a.npy");
        for shape in [vec![2, 3], vec![4], vec![], vec![0, 2]] {
            let n = shape.iter().product();
            let t = Tensor {
                shape: shape.clone(),
                data: (0..n).map(|i| i as f32 * 0.5 - 1.0).collect(),
            };
            let bytes = to_bytes(&t);
            assert_eq!(bytes.len() % 64, (n * 4) % 64, "data aligned to 64 bytes");
            let a = parse(&bytes, p).unwrap();
            assert_eq!((a.shape, a.data), (shape, NpyData::F32(t.data)));
        }
        let body: Vec<u8> = [3i64, 0, 7].iter().flat_map(|v| v.to_le_bytes()).collect();
        let h = "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }\n";
        for major in [1, 2, 3] {
            let a = parse(&file(h, major, &body), p).unwrap();
            assert_eq!(a.data, NpyData::Int(vec![3, 0, 7]));
        }
        let a = parse(
            &file("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 1)}", 1, &[5, 9]),
            p,
        )
        .unwrap();
        assert_eq!((a.shape, a.data), (vec![2, 1], NpyData::Int(vec![5, 9])));
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let p = Path::new("x.npy");
        let err = |b: &[u8]| parse(b, p).unwrap_err().to_string();
        let t = Tensor {
            shape: vec![2, 2],
            data: vec![1.0; 4],
        };
        let good = to_bytes(&t);
        let e = err(&good[..good.len() - 3]);
        assert!(e.contains("x.npy") && e.contains("truncated"), "{e}");
        assert!(err(&good[..20]).contains("truncated"), "{}", err(&good[..20]));
        assert!(err(b"PK\x03\x04garbage....").contains("not a .npy file"));
        let f = file(
            "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
            1,
            &[0; 16],
        );
        assert!(err(&f).contains("Fortran-order"), "{}", err(&f));
        let f = file("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 1, &[0; 16]);
        assert!(err(&f).contains("<f8") && err(&f).contains("float32"), "{}", err(&f));
        let f = file("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 1, &[0; 8]);
        assert!(err(&f).contains("big-endian"), "{}", err(&f));
        let f = file("{'descr': '<f4', 'shape': (2,), }", 1, &[0; 8]);
        assert!(err(&f).contains("fortran_order"), "{}", err(&f));
    }

    #[test]
    fn labels_and_atomic_write() {
        let dir = std::env::temp_dir().join(format!("fovea-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("y.npy");
        let t = Tensor {
            shape: vec![3],
            data: vec![2.0, 0.0, 1.0],
        };
        write_f32(&path, &t).unwrap();
        assert!(!dir.join("y.npy.tmp").exists());
        assert_eq!(read_labels(&path).unwrap(), (vec![3], vec![2, 0, 1]));
        assert_eq!(read_f32(&path).unwrap(), t);
        write_f32(
            &path,
            &Tensor {
                shape: vec![1],
                data: vec![0.5],
            },
        )
        .unwrap();
        assert!(read_labels(&path).unwrap_err().to_string().contains("whole numbers"));
        let neg = file(
            "{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }",
            1,
            &(-1i32).to_le_bytes(),
        );
        std::fs::write(&path, neg).unwrap();
        let e = read_labels(&path).unwrap_err().to_string();
        assert!(e.contains("non-negative"), "{e}");
        assert!(read_f32(&path).unwrap_err().to_string().contains("<i4"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
