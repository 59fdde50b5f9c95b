//! TensorFlow Lite models (`.tflite` flatbuffers) as Fovea models.
//!
//! ```no_run
//! let model = fovea_formats::tflite::load("data/pretrained/face_detection_short_range.tflite").unwrap();
//! assert_eq!(model.input_shapes(), vec![vec![128, 128, 3]]);
//! ```
//!
//! One module per concern: [`schema`](self) (verified flatbuffer accessors), [`reader`] (the
//! file as plain values, every index checked), [`ops`] (the mapping table: builtin code ->
//! function building the layer), [`layout`] (TFLite weight layouts to Fovea's), [`layer`] (the
//! imported operator as a model layer and its IR) and [`build`] (the model). Float32 models with
//! float16 weights behind DEQUANTIZE import; integer-quantised tensors, unknown operators and
//! custom operators other than MediaPipe's `Convolution2DTransposeBias` are errors naming the
//! operator, its index and the tensor. Weights become trainable parameters named
//! `<output tensor>/kernel`, `/bias`, `/alpha` or `/in<k>` (other constant operands).

pub mod build;
pub mod layer;
pub mod layout;
pub mod ops;
pub mod reader;
mod schema;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod writer;

pub use build::Imported;

use crate::error::{FormatError, Result};
use fovea_graph::Model;
use std::path::Path;

/// Files larger than this are refused before they are read (TFLite's flatbuffers are limited
/// to 2 GB; larger models keep their weights outside, which Fovea does not read).
pub const MAX_FILE_BYTES: u64 = 1 << 31;

/// Reads and imports a `.tflite` file.
pub fn import(path: impl AsRef<Path>) -> Result<Imported> {
    let path = path.as_ref();
    let file = path.display().to_string();
    let io = |e: std::io::Error| FormatError::Io {
        file: file.clone(),
        message: e.to_string(),
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_FILE_BYTES {
        return Err(FormatError::invalid(
            &file,
            format!("{len} bytes is larger than the {MAX_FILE_BYTES}-byte limit of a TFLite flatbuffer"),
        ));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("tflite");
    import_bytes(&bytes, &file, name)
}

/// Imports a model from the bytes of a `.tflite` file; `source` names it in errors and `name`
/// becomes the model's name.
pub fn import_bytes(bytes: &[u8], source: &str, name: &str) -> Result<Imported> {
    let file = reader::read(bytes, source)?;
    build::build(&file, source, name)
}

/// Reads a `.tflite` file as a [`Model`]: inputs and outputs in the file's order (see
/// [`import`] for their tensor names), weights as parameters.
pub fn load(path: impl AsRef<Path>) -> Result<Model> {
    Ok(import(path)?.model)
}

/// Whether `path` looks like a TFLite file (extension `.tflite`).
pub fn is_tflite_path(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("tflite"))
}
