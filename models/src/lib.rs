//! # fovea-models
//!
//! Data loaders ([`data`]), images, augmentation and pictures ([`vision`]) and the model zoo
//! ([`zoo`]) for Fovea's vision tasks.

pub mod data;
pub mod error;
pub mod plot;
pub mod vision;
pub mod zoo;

pub use error::{DataError, Result};
