//! TensorFlow.js weights manifests (`*-weights_manifest.json` + `.bin` shards) as named float32
//! arrays, for models whose architecture Fovea writes itself (face-api's zoo entries).
//!
//! ```no_run
//! let w = fovea_formats::tfjs::load("face_recognition_model-weights_manifest.json").unwrap();
//! let fc = w.get("fc").unwrap();
//! assert_eq!(fc.shape, vec![256, 128]);
//! ```
//!
//! float32 and int32 tensors, stored raw, as float16, or uint8/uint16 affine-quantised
//! (`value = code * scale + min`; int32 values rounded, as tfjs rounds them) all become f32.
//! Each group's shards are concatenated in the manifest's order. Every size is checked against
//! the shard files' lengths before anything is allocated; errors name the file and the tensor.

mod decode;
pub mod manifest;
#[cfg(test)]
mod tests;

use crate::error::{FormatError, Result};
use std::io::Read;
use std::path::Path;

/// Manifests longer than this are refused before they are read.
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;
/// A group's shards together may hold at most this many bytes.
pub const MAX_GROUP_BYTES: u64 = 1 << 31;

/// One decoded weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Weight {
    /// Its name in the manifest.
    pub name: String,
    /// Its shape (`[]` for a scalar).
    pub shape: Vec<usize>,
    /// Its values, row-major, as f32 (int32 tensors too).
    pub data: Vec<f32>,
}

/// The weights of a manifest, in manifest order.
#[derive(Debug, Clone, Default)]
pub struct Weights {
    /// The manifest's path (errors name it).
    pub source: String,
    /// Every weight, in manifest order.
    pub weights: Vec<Weight>,
}

impl Weights {
    /// The weight called `name`, if the manifest has it.
    pub fn get(&self, name: &str) -> Option<&Weight> {
        self.weights.iter().find(|w| w.name == name)
    }

    /// The weight called `name` with shape `shape`, or an error naming the manifest and the
    /// tensor and saying what was expected.
    pub fn expect(&self, name: &str, shape: &[usize]) -> Result<&Weight> {
        let (index, w) = self
            .weights
            .iter()
            .enumerate()
            .find(|(_, w)| w.name == name)
            .ok_or_else(|| {
                FormatError::invalid(
                    &self.source,
                    format!("no tensor '{name}' (shape {shape:?}) in the manifest"),
                )
            })?;
        if w.shape != shape {
            return Err(FormatError::tensor(
                &self.source,
                index,
                name,
                format!("shape {:?}, expected {shape:?}", w.shape),
            ));
        }
        Ok(w)
    }
}

/// Reads a manifest and its shards (paths relative to the manifest's folder).
pub fn load(manifest: impl AsRef<Path>) -> Result<Weights> {
    let path = manifest.as_ref();
    let file = path.display().to_string();
    let text = read_limited(path, MAX_MANIFEST_BYTES, &file)?;
    let text = String::from_utf8(text).map_err(|_| FormatError::invalid(&file, "the manifest is not UTF-8 text"))?;
    let groups = manifest::parse(&text, &file)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut weights = Vec::new();
    for g in &groups {
        let bytes = read_group(dir, g, &file)?;
        for e in &g.weights {
            weights.push(Weight {
                name: e.name.clone(),
                shape: e.shape.clone(),
                data: decode::decode(&bytes, e),
            });
        }
    }
    Ok(Weights { source: file, weights })
}

/// Reads a file of at most `limit` bytes (checked on its metadata first).
fn read_limited(path: &Path, limit: u64, file: &str) -> Result<Vec<u8>> {
    let io = |e: std::io::Error| FormatError::Io {
        file: file.to_string(),
        message: e.to_string(),
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > limit {
        return Err(FormatError::invalid(
            file,
            format!("{len} bytes is more than the {limit}-byte limit"),
        ));
    }
    let mut out = Vec::with_capacity(len as usize);
    std::fs::File::open(path)
        .map_err(io)?
        .take(limit)
        .read_to_end(&mut out)
        .map_err(io)?;
    Ok(out)
}

/// Checks a group's shard lengths against its weights, then reads and concatenates them.
fn read_group(dir: &Path, g: &manifest::Group, file: &str) -> Result<Vec<u8>> {
    let mut lens = Vec::with_capacity(g.paths.len());
    let mut total = 0u64;
    for p in &g.paths {
        let shard = dir.join(p);
        let len = std::fs::metadata(&shard)
            .map_err(|e| FormatError::Io {
                file: shard.display().to_string(),
                message: format!("shard of {file}: {e}"),
            })?
            .len();
        total = total.saturating_add(len);
        lens.push((shard, len));
    }
    if total > MAX_GROUP_BYTES {
        return Err(FormatError::invalid(
            file,
            format!(
                "the shards {:?} hold {total} bytes, more than the {MAX_GROUP_BYTES}-byte limit",
                g.paths
            ),
        ));
    }
    if let Some(e) = g.weights.iter().find(|e| e.offset + e.bytes > total) {
        return Err(FormatError::tensor(
            file,
            e.index,
            &e.name,
            format!(
                "needs bytes {}..{} of the shards {:?}, which hold {total} bytes (missing or short shard)",
                e.offset,
                e.offset + e.bytes,
                g.paths
            ),
        ));
    }
    if total != g.bytes {
        return Err(FormatError::invalid(
            file,
            format!(
                "the shards {:?} hold {total} bytes but the manifest's weights take {}",
                g.paths, g.bytes
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(total as usize);
    for (shard, len) in lens {
        let name = shard.display().to_string();
        let before = bytes.len();
        std::fs::File::open(&shard)
            .and_then(|f| f.take(len).read_to_end(&mut bytes))
            .map_err(|e| FormatError::Io {
                file: name.clone(),
                message: e.to_string(),
            })?;
        if (bytes.len() - before) as u64 != len {
            return Err(FormatError::invalid(&name, "the shard changed size while it was read"));
        }
    }
    Ok(bytes)
}
