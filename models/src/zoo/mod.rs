//! The model zoo: the seed's Keras models, exactly as Keras defines them.

mod classification;
pub mod detection;
pub mod face_api;
pub mod faces;
pub mod segmentation;
pub mod style;

pub use classification::{cifar10_cnn, mnist_cnn, seed_cnn};

use crate::error::{DataError, Result};
use fovea_graph::Model;

/// The names `by_name` knows.
pub const NAMES: &[&str] = &["mnist", "cifar10"];

/// A zoo model by name (`mnist`, `cifar10`), with parameters drawn from `seed`.
pub fn by_name(name: &str, seed: u64) -> Result<Model> {
    match name {
        "mnist" => mnist_cnn(seed),
        "cifar10" => cifar10_cnn(seed),
        _ => Err(DataError::Graph(fovea_graph::GraphError::Model {
            model: name.to_string(),
            message: format!("unknown zoo model; expected one of {}", NAMES.join(", ")),
        })),
    }
}
