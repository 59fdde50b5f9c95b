//! # fovea-formats
//!
//! Model files a user hands Fovea, read into [`fovea_graph`] models without any GPU:
//! [`tflite`] (TensorFlow Lite flatbuffers, e.g. MediaPipe's BlazeFace and Selfie Segmentation)
//! and [`tfjs`] (TensorFlow.js weights manifests with their `.bin` shards, e.g. face-api's models).
//! Every reader checks each offset and size against the file before using it, and reports bad
//! input as a [`FormatError`] naming the file and the tensor or operator.

pub mod error;
pub mod tfjs;
pub mod tflite;

pub use error::{FormatError, Result};
