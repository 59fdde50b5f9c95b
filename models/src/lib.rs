//! # fovea-models
//!
//! Data loaders ([`data`]), images, augmentation and pictures ([`vision`]) and the model zoo
//! ([`zoo`]) and the task pipelines ([`tasks`]: data, model, loss, fit, evaluation and pictures
//! for detection, segmentation, faces and style transfer) for Fovea's vision tasks.

pub mod data;
pub mod error;
pub mod plot;
pub mod tasks;
pub mod vision;
pub mod zoo;

pub use error::{DataError, Result};
