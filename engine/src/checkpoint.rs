//! Checkpoints in safetensors with Keras weight names (`conv2d/kernel`, `dense_1/bias`, ...).
//! Writes go to a temporary file that is renamed into place, so a crash never leaves a
//! half-written checkpoint; loads check every name and shape and list all mismatches.

use crate::error::{EngineError, Result};
use fovea_graph::Tensor;
use fovea_graph::ir::fmt_shape;
use fovea_graph::model::ParamStore;
use std::collections::BTreeMap;
use std::path::Path;

fn bad(path: &Path, message: impl Into<String>) -> EngineError {
    EngineError::Input {
        what: path.display().to_string(),
        message: message.into(),
    }
}

/// Reads every tensor of a safetensors file (F32 only), in file order of their offsets.
pub fn read_safetensors(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let bytes = std::fs::read(path).map_err(|e| bad(path, format!("cannot read: {e}")))?;
    parse_safetensors(&bytes, path)
}

/// Parses safetensors bytes; `path` names the source in errors.
pub fn parse_safetensors(bytes: &[u8], path: &Path) -> Result<Vec<(String, Tensor)>> {
    if bytes.len() < 8 {
        return Err(bad(
            path,
            "not a safetensors file: shorter than its 8-byte header length",
        ));
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().map_err(|_| bad(path, "bad header"))?) as usize;
    if n > bytes.len() - 8 || n > 100 << 20 {
        return Err(bad(
            path,
            format!(
                "not a safetensors file (or truncated): header length {n}, file {} bytes",
                bytes.len()
            ),
        ));
    }
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n])
        .map_err(|e| bad(path, format!("not a safetensors file: header is not JSON ({e})")))?;
    let obj = header
        .as_object()
        .ok_or_else(|| bad(path, "safetensors header is not a JSON object"))?;
    let data = &bytes[8 + n..];
    let mut out = Vec::new();
    for (name, v) in obj {
        if name == "__metadata__" {
            continue;
        }
        let field = |k: &str| {
            v.get(k)
                .ok_or_else(|| bad(path, format!("tensor {name}: no `{k}` in the header")))
        };
        let dtype = field("dtype")?.as_str().unwrap_or("");
        if dtype != "F32" {
            return Err(bad(
                path,
                format!("tensor {name}: dtype {dtype} is not supported; expected F32"),
            ));
        }
        let shape: Vec<usize> = field("shape")?
            .as_array()
            .ok_or_else(|| bad(path, format!("tensor {name}: shape is not a list")))?
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize))
            .collect::<Option<_>>()
            .ok_or_else(|| bad(path, format!("tensor {name}: shape holds a non-integer")))?;
        let offs: Vec<usize> = field("data_offsets")?
            .as_array()
            .and_then(|a| {
                a.iter()
                    .map(|d| d.as_u64().map(|d| d as usize))
                    .collect::<Option<Vec<_>>>()
            })
            .filter(|a| a.len() == 2)
            .ok_or_else(|| bad(path, format!("tensor {name}: data_offsets must be two integers")))?;
        let count: usize = shape.iter().product();
        if offs[0] > offs[1] || offs[1] > data.len() || offs[1] - offs[0] != count * 4 {
            return Err(bad(
                path,
                format!(
                    "tensor {name}: data_offsets {:?} do not hold {} f32 values in {} data bytes (truncated or corrupt file)",
                    offs,
                    count,
                    data.len()
                ),
            ));
        }
        let values = data[offs[0]..offs[1]]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.push((offs[0], name.clone(), Tensor { shape, data: values }));
    }
    out.sort_by_key(|(o, _, _)| *o);
    Ok(out.into_iter().map(|(_, n, t)| (n, t)).collect())
}

/// Writes tensors to a safetensors file atomically (temporary file, then rename).
pub fn write_safetensors(path: &Path, tensors: &[(String, &Tensor)]) -> Result<()> {
    write_safetensors_with(path, tensors, &BTreeMap::new())
}

/// The `__metadata__` string map of a safetensors file (empty when it has none).
pub fn read_safetensors_metadata(path: &Path) -> Result<BTreeMap<String, String>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| bad(path, format!("cannot read: {e}")))?;
    let size = f.metadata().map_err(|e| bad(path, format!("cannot read: {e}")))?.len();
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|_| bad(path, "not a safetensors file: shorter than its 8-byte header length"))?;
    let n = u64::from_le_bytes(len);
    if n > size.saturating_sub(8) || n > 100 << 20 {
        return Err(bad(
            path,
            format!("not a safetensors file (or truncated): header length {n}, file {size} bytes"),
        ));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header)
        .map_err(|e| bad(path, format!("cannot read: {e}")))?;
    let header: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|e| bad(path, format!("not a safetensors file: header is not JSON ({e})")))?;
    let mut out = BTreeMap::new();
    if let Some(meta) = header.get("__metadata__").and_then(|m| m.as_object()) {
        for (k, v) in meta {
            if let Some(v) = v.as_str() {
                out.insert(k.clone(), v.to_string());
            }
        }
    }
    Ok(out)
}

/// Writes tensors to a safetensors file atomically, with extra `__metadata__` entries
/// (strings, as the format requires); the data reach the disk (fsync) before the rename.
pub fn write_safetensors_with(
    path: &Path,
    tensors: &[(String, &Tensor)],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let mut header = BTreeMap::new();
    let mut offset = 0usize;
    for (name, t) in tensors {
        let len = t.numel() * 4;
        header.insert(
            name.clone(),
            serde_json::json!({ "dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + len] }),
        );
        offset += len;
    }
    let mut meta = serde_json::json!({ "format": "fovea", "layout": "keras" });
    for (k, v) in metadata {
        meta[k.as_str()] = serde_json::Value::String(v.clone());
    }
    header.insert("__metadata__".into(), meta);
    let mut json = serde_json::to_vec(&header).map_err(|e| bad(path, e.to_string()))?;
    while (json.len() + 8) % 8 != 0 {
        json.push(b' ');
    }
    let mut bytes = Vec::with_capacity(8 + json.len() + offset);
    bytes.extend_from_slice(&(json.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&json);
    for (_, t) in tensors {
        bytes.extend_from_slice(bytemuck::cast_slice(&t.data));
    }
    let tmp = path.with_extension("safetensors.tmp");
    let written = (|| {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(bad(&tmp, format!("cannot write: {e}")));
    }
    std::fs::rename(&tmp, path).map_err(|e| bad(path, format!("cannot rename {} into place: {e}", tmp.display())))
}

/// Saves every parameter of `params` under its Keras name.
pub fn save_params(path: &Path, params: &ParamStore) -> Result<()> {
    let list: Vec<(String, &Tensor)> = params.iter().map(|p| (p.name.clone(), &p.value)).collect();
    write_safetensors(path, &list)
}

/// Loads `path` into `params`. Every parameter must be present with its shape, and the file
/// must hold nothing else; otherwise nothing is changed and the error lists every mismatch.
pub fn load_params(path: &Path, params: &mut ParamStore) -> Result<()> {
    let tensors = read_safetensors(path)?;
    let mut problems = Vec::new();
    for p in params.iter() {
        match tensors.iter().find(|(n, _)| *n == p.name) {
            None => problems.push(format!("missing {} {}", p.name, fmt_shape(&p.value.shape))),
            Some((_, t)) if t.shape != p.value.shape => problems.push(format!(
                "{}: file has shape {}, the model needs {}",
                p.name,
                fmt_shape(&t.shape),
                fmt_shape(&p.value.shape)
            )),
            _ => {}
        }
    }
    for (n, t) in &tensors {
        if params.get(n).is_none() {
            problems.push(format!(
                "unexpected {} {} (the model has no such weight)",
                n,
                fmt_shape(&t.shape)
            ));
        }
    }
    if !problems.is_empty() {
        return Err(bad(
            path,
            format!("weights do not match the model:\n  {}", problems.join("\n  ")),
        ));
    }
    for (n, t) in tensors {
        params.set(&n, t)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fovea_graph::init::Initializer;

    fn store() -> ParamStore {
        let mut s = ParamStore::new(1);
        s.ensure(
            "conv2d/kernel",
            &[3, 3, 1, 2],
            Initializer::GlorotUniform,
            true,
            "conv2d",
        )
        .unwrap();
        s.ensure("conv2d/bias", &[2], Initializer::Uniform(-1.0, 1.0), true, "conv2d")
            .unwrap();
        s
    }

    #[test]
    fn round_trip_and_mismatch_listing() {
        let dir = std::env::temp_dir().join(format!("fovea-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.safetensors");
        let a = store();
        save_params(&path, &a).unwrap();
        assert!(!path.with_extension("safetensors.tmp").exists());
        let mut b = ParamStore::new(2);
        b.ensure("conv2d/kernel", &[3, 3, 1, 2], Initializer::Zeros, true, "conv2d")
            .unwrap();
        b.ensure("conv2d/bias", &[2], Initializer::Zeros, true, "conv2d")
            .unwrap();
        load_params(&path, &mut b).unwrap();
        assert!(
            a.iter()
                .zip(b.iter())
                .all(|(x, y)| x.name == y.name && x.value == y.value)
        );
        let mut c = ParamStore::new(3);
        c.ensure("conv2d/kernel", &[3, 3, 1, 4], Initializer::Zeros, true, "conv2d")
            .unwrap();
        c.ensure("dense/bias", &[2], Initializer::Zeros, true, "dense").unwrap();
        let before = c.clone();
        let e = load_params(&path, &mut c).unwrap_err().to_string();
        assert!(
            e.contains("conv2d/kernel: file has shape (3, 3, 1, 2), the model needs (3, 3, 1, 4)"),
            "{e}"
        );
        assert!(
            e.contains("missing dense/bias") && e.contains("unexpected conv2d/bias"),
            "{e}"
        );
        assert_eq!(c, before, "a failed load changes nothing");
        let bytes = std::fs::read(&path).unwrap();
        let e = parse_safetensors(&bytes[..bytes.len() - 3], &path)
            .unwrap_err()
            .to_string();
        assert!(e.contains("truncated"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
