//! The JSON of a tfjs weights manifest (`*-weights_manifest.json`) as checked values: for every
//! weight its name, shape, stored element type and byte range inside its group's shards.
//!
//! A manifest is a list of groups; each group names its shard files (`paths`, concatenated in
//! that order) and its weights, stored one after another in manifest order. Shapes, types and
//! quantisation are checked here, before any shard is opened.

use crate::error::{FormatError, Result};
use serde::Deserialize;

/// The most elements one weight may have (2^31: a 8 GiB float32 tensor is not a tfjs shard).
pub const MAX_ELEMENTS: u64 = 1 << 31;

/// One group of the manifest, as JSON.
#[derive(Debug, Deserialize)]
struct GroupJson {
    paths: Vec<String>,
    weights: Vec<WeightJson>,
}

/// One weight entry, as JSON.
#[derive(Debug, Deserialize)]
struct WeightJson {
    name: String,
    shape: Vec<i64>,
    dtype: String,
    #[serde(default)]
    quantization: Option<QuantJson>,
}

/// A weight's `quantization` object, as JSON.
#[derive(Debug, Deserialize)]
struct QuantJson {
    dtype: String,
    #[serde(default)]
    scale: Option<f64>,
    #[serde(default)]
    min: Option<f64>,
}

/// How a weight's elements are stored in the shard bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Storage {
    /// Little-endian float32.
    F32,
    /// Little-endian int32.
    I32,
    /// Little-endian IEEE float16 (tfjs `quantization: {dtype: "float16"}`).
    F16,
    /// uint8 codes, value = code * scale + min.
    U8 {
        /// The step between codes.
        scale: f64,
        /// The value of code 0.
        min: f64,
    },
    /// Little-endian uint16 codes, value = code * scale + min.
    U16 {
        /// The step between codes.
        scale: f64,
        /// The value of code 0.
        min: f64,
    },
}

impl Storage {
    /// Bytes per stored element.
    pub fn element_bytes(self) -> u64 {
        match self {
            Storage::F32 | Storage::I32 => 4,
            Storage::F16 | Storage::U16 { .. } => 2,
            Storage::U8 { .. } => 1,
        }
    }
}

/// One weight of the manifest, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightEntry {
    /// The weight's name (`conv32_down/conv/filters`).
    pub name: String,
    /// Its shape (`[]` for a scalar).
    pub shape: Vec<usize>,
    /// Whether the tensor is `int32` (dequantised values are rounded, as tfjs does).
    pub integer: bool,
    /// How its elements are stored.
    pub storage: Storage,
    /// Its index among all the manifest's weights (errors name it).
    pub index: usize,
    /// Byte offset of its first element inside its group's concatenated shards.
    pub offset: u64,
    /// Its stored size in bytes.
    pub bytes: u64,
}

impl WeightEntry {
    /// The number of elements.
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }
}

/// One group, checked: its shard paths (relative to the manifest) and its weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Shard file names as the manifest gives them, in concatenation order.
    pub paths: Vec<String>,
    /// The group's weights, in storage order.
    pub weights: Vec<WeightEntry>,
    /// Bytes the weights need (the shards together must be exactly this long).
    pub bytes: u64,
}

/// Parses and checks the manifest text of `file`.
pub fn parse(text: &str, file: &str) -> Result<Vec<Group>> {
    let groups: Vec<GroupJson> = serde_json::from_str(text).map_err(|e| {
        FormatError::invalid(
            file,
            format!("not a tfjs weights manifest (a JSON list of {{paths, weights}} groups): {e}"),
        )
    })?;
    let mut index = 0;
    let mut out = Vec::with_capacity(groups.len());
    for (g, group) in groups.into_iter().enumerate() {
        if group.paths.is_empty() && !group.weights.is_empty() {
            return Err(FormatError::invalid(
                file,
                format!("group {g} has weights but no shard paths"),
            ));
        }
        for p in &group.paths {
            check_path(p, file, g)?;
        }
        let mut offset = 0u64;
        let mut weights = Vec::with_capacity(group.weights.len());
        for w in group.weights {
            let e = entry(w, index, offset, file)?;
            offset = offset
                .checked_add(e.bytes)
                .ok_or_else(|| FormatError::tensor(file, index, &e.name, "the group's size overflows"))?;
            weights.push(e);
            index += 1;
        }
        out.push(Group {
            paths: group.paths,
            weights,
            bytes: offset,
        });
    }
    Ok(out)
}

/// A shard path must stay beside the manifest: relative, no `..`, not empty.
fn check_path(p: &str, file: &str, group: usize) -> Result<()> {
    let path = std::path::Path::new(p);
    let ok = !p.is_empty()
        && path.is_relative()
        && path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir));
    if ok {
        Ok(())
    } else {
        Err(FormatError::invalid(
            file,
            format!("group {group}: shard path '{p}' must be a relative path inside the manifest's folder"),
        ))
    }
}

/// Checks one weight entry and sizes it.
fn entry(w: WeightJson, index: usize, offset: u64, file: &str) -> Result<WeightEntry> {
    let err = |m: String| FormatError::tensor(file, index, &w.name, m);
    let mut elements = 1u64;
    let mut shape = Vec::with_capacity(w.shape.len());
    for &d in &w.shape {
        let d = u64::try_from(d).map_err(|_| err(format!("shape {:?} has a negative dimension", w.shape)))?;
        elements = elements
            .checked_mul(d)
            .filter(|&n| n <= MAX_ELEMENTS)
            .ok_or_else(|| err(format!("shape {:?} has more than {MAX_ELEMENTS} elements", w.shape)))?;
        shape.push(d as usize);
    }
    let integer = match w.dtype.as_str() {
        "float32" => false,
        "int32" => true,
        other => {
            return Err(err(format!(
                "dtype '{other}' is not supported; expected float32 or int32"
            )));
        }
    };
    let storage = match &w.quantization {
        None if integer => Storage::I32,
        None => Storage::F32,
        Some(q) => {
            let affine = |make: fn(f64, f64) -> Storage| match (q.scale, q.min) {
                (Some(s), Some(m)) if s.is_finite() && m.is_finite() => Ok(make(s, m)),
                _ => Err(err(format!("{} quantisation needs finite 'scale' and 'min'", q.dtype))),
            };
            match q.dtype.as_str() {
                "uint8" => affine(|scale, min| Storage::U8 { scale, min })?,
                "uint16" => affine(|scale, min| Storage::U16 { scale, min })?,
                "float16" if !integer => Storage::F16,
                other => {
                    return Err(err(format!(
                        "quantisation dtype '{other}' is not supported for a {} tensor; expected uint8, uint16{}",
                        w.dtype,
                        if integer { "" } else { " or float16" }
                    )));
                }
            }
        }
    };
    let bytes = elements * storage.element_bytes();
    Ok(WeightEntry {
        name: w.name.clone(),
        shape,
        integer,
        storage,
        index,
        offset,
        bytes,
    })
}
