//! NumPy `.npz` archives: a zip of `.npy` members, one array per key (`numpy.savez`).
//!
//! Reads stored and deflated members (`savez` and `savez_compressed`); writes stored members
//! atomically (a temporary file renamed into place). Keys are the member names without `.npy`.
//! Sizes are checked before anything is allocated: a member's declared uncompressed size must
//! not exceed [`MAX_MEMBER_BYTES`], and at most [`MAX_MEMBERS`] members are read.

use crate::error::{EngineError, Result};
use crate::npy::{self, NpyArray, NpyData};
use fovea_graph::Tensor;
use std::io::{Read, Write};
use std::path::Path;

/// The largest member read, uncompressed (4 GiB: larger arrays do not fit one GPU binding).
pub const MAX_MEMBER_BYTES: u64 = 4 << 30;
/// The most members an archive may have.
pub const MAX_MEMBERS: usize = 4096;

fn bad(path: &Path, message: impl Into<String>) -> EngineError {
    EngineError::Input {
        what: path.display().to_string(),
        message: message.into(),
    }
}

/// Reads every array of an `.npz` file, in archive order, keyed by member name without `.npy`.
pub fn read(path: &Path) -> Result<Vec<(String, NpyArray)>> {
    let file = std::fs::File::open(path).map_err(|e| bad(path, format!("cannot read: {e}")))?;
    let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| bad(path, format!("not a valid .npz (zip) archive: {e}")))?;
    if zip.len() > MAX_MEMBERS {
        return Err(bad(
            path,
            format!("{} members; at most {MAX_MEMBERS} are read", zip.len()),
        ));
    }
    let mut out: Vec<(String, NpyArray)> = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let mut member = zip
            .by_index(i)
            .map_err(|e| bad(path, format!("member {i}: cannot open: {e}")))?;
        let name = member
            .name()
            .map_err(|e| bad(path, format!("member {i}: bad name: {e}")))?
            .to_string();
        let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        let declared = member.size();
        if declared > MAX_MEMBER_BYTES {
            return Err(bad(
                path,
                format!("member '{name}' claims {declared} bytes; the limit is {MAX_MEMBER_BYTES}"),
            ));
        }
        // A stored member cannot be larger than the file holding it.
        if member.compression() == zip::CompressionMethod::Stored && declared > file_len {
            return Err(bad(
                path,
                format!("member '{name}' claims {declared} bytes but the file has {file_len}"),
            ));
        }
        let mut bytes = Vec::new();
        (&mut member)
            .take(declared + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| bad(path, format!("member '{name}': cannot read: {e}")))?;
        if bytes.len() as u64 != declared {
            return Err(bad(
                path,
                format!(
                    "member '{name}' holds {} bytes, its header says {declared}",
                    bytes.len()
                ),
            ));
        }
        let member_path = path.join(&name);
        let array = npy::parse(&bytes, &member_path)?;
        if out.iter().any(|(k, _)| *k == key) {
            return Err(bad(path, format!("key '{key}' appears twice")));
        }
        out.push((key, array));
    }
    Ok(out)
}

/// Reads every array of an `.npz` file as float32 tensors (integer arrays are converted).
pub fn read_f32(path: &Path) -> Result<Vec<(String, Tensor)>> {
    read(path)?
        .into_iter()
        .map(|(k, a)| {
            let data = match a.data {
                NpyData::F32(d) => d,
                NpyData::Int(v) => v.iter().map(|&x| x as f32).collect(),
            };
            Ok((k, Tensor { shape: a.shape, data }))
        })
        .collect()
}

/// Writes `arrays` as an `.npz` archive of float32 `.npy` members (stored, as `numpy.savez`),
/// atomically. Keys must be unique and non-empty.
pub fn write_f32(path: &Path, arrays: &[(String, &Tensor)]) -> Result<()> {
    for (i, (k, _)) in arrays.iter().enumerate() {
        if k.is_empty() || arrays[..i].iter().any(|(o, _)| o == k) {
            return Err(bad(path, format!("key '{k}' is empty or appears twice")));
        }
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let result = (|| -> std::result::Result<(), String> {
        let file = std::fs::File::create(&tmp).map_err(|e| format!("cannot write: {e}"))?;
        let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(
                arrays
                    .iter()
                    .any(|(_, t)| t.data.len() as u64 * 4 > u32::MAX as u64 / 2),
            );
        for (k, t) in arrays {
            zip.start_file(format!("{k}.npy"), opts).map_err(|e| e.to_string())?;
            zip.write_all(&npy::to_bytes(t)).map_err(|e| e.to_string())?;
        }
        let mut w = zip.finish().map_err(|e| e.to_string())?;
        w.flush().map_err(|e| e.to_string())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(bad(&tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        bad(path, format!("cannot rename {} into place: {e}", tmp.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("fovea-npz-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("a.npz")
    }

    #[test]
    fn round_trip_keeps_keys_order_and_values() {
        let p = tmp("rt");
        let a = Tensor::new(vec![2, 3], vec![1.0, -2.0, 3.5, 0.0, 5.0, 6.25], "a").unwrap();
        let b = Tensor::new(vec![1], vec![7.0], "b").unwrap();
        write_f32(&p, &[("boxes".into(), &a), ("scores".into(), &b)]).unwrap();
        let back = read_f32(&p).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].0, "boxes");
        assert_eq!(back[0].1, a);
        assert_eq!(back[1].0, "scores");
        assert_eq!(back[1].1, b);
        assert!(!p.with_extension("npz.tmp").exists());
    }

    #[test]
    fn garbage_and_truncated_archives_are_errors_naming_the_file() {
        let p = tmp("bad");
        std::fs::write(&p, b"not a zip at all").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("a.npz") && e.contains("zip"), "{e}");
        let a = Tensor::zeros(vec![64]);
        write_f32(&p, &[("x".into(), &a)]).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        assert!(read(&p).is_err());
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let p = tmp("dup");
        let a = Tensor::zeros(vec![1]);
        let e = write_f32(&p, &[("x".into(), &a), ("x".into(), &a)]).unwrap_err();
        assert!(e.to_string().contains("'x'"), "{e}");
        assert!(!p.exists());
    }
}
