//! # fovea-models
//!
//! Data loaders ([`data`]) and the model zoo ([`zoo`]) for Fovea's vision tasks.

pub mod data;
pub mod error;
pub mod plot;
pub mod zoo;

pub use error::{DataError, Result};
