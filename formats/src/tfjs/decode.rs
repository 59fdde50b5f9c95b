//! Stored tfjs elements to f32: raw float32/int32, float16, and uint8/uint16 affine codes.

use super::manifest::{Storage, WeightEntry};
use half::f16;

/// Decodes weight `e` from its group's concatenated shard bytes (already checked to hold it).
pub fn decode(bytes: &[u8], e: &WeightEntry) -> Vec<f32> {
    let start = e.offset as usize;
    let raw = &bytes[start..start + e.bytes as usize];
    match e.storage {
        Storage::F32 => raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Storage::I32 => raw
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
            .collect(),
        Storage::F16 => raw
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Storage::U8 { scale, min } => raw.iter().map(|&q| affine(q as f64, scale, min, e.integer)).collect(),
        Storage::U16 { scale, min } => raw
            .chunks_exact(2)
            .map(|c| affine(u16::from_le_bytes([c[0], c[1]]) as f64, scale, min, e.integer))
            .collect(),
    }
}

/// One affine code: tfjs writes `code * scale + min` (double arithmetic) into a Float32Array,
/// or for int32 tensors `Math.round` of it (halves round up) into an Int32Array.
fn affine(code: f64, scale: f64, min: f64, integer: bool) -> f32 {
    let v = code * scale + min;
    if integer { (v + 0.5).floor() as f32 } else { v as f32 }
}
