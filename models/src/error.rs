//! The models crate's error type: every data error names the file.

use std::path::PathBuf;
use thiserror::Error;

/// An error loading data or building a zoo model.
#[derive(Debug, Error)]
pub enum DataError {
    /// A file could not be read.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error (in the message, not chained as a source, so that a report of the
        /// chain does not print it twice).
        error: std::io::Error,
    },
    /// A file's content is not what its format requires.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What was wrong and what was expected.
        message: String,
    },
    /// No file of an expected name was found in a directory.
    #[error("{dir}: none of {names} found{hint}")]
    Missing {
        /// The directory searched.
        dir: PathBuf,
        /// The names tried.
        names: String,
        /// Where such data can be had.
        hint: String,
    },
    /// A value handed to a function is not what it accepts (an image size, a crop, a tensor).
    #[error("{what}: {message}")]
    Value {
        /// The argument or value.
        what: String,
        /// What was wrong and what was expected.
        message: String,
    },
    /// Building a model failed.
    #[error(transparent)]
    Graph(#[from] fovea_graph::GraphError),
    /// A model file (TFLite, tfjs manifest) could not be imported; the error names the file and tensor.
    #[error(transparent)]
    Import(#[from] fovea_formats::FormatError),
    /// Compiling or running a model on the device failed.
    #[error(transparent)]
    Engine(#[from] fovea_engine::EngineError),
}

/// The models crate's result type.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

impl DataError {
    /// A [`DataError::Format`] for `path`.
    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        DataError::Format {
            path: path.into(),
            message: message.into(),
        }
    }

    /// A [`DataError::Value`] for `what`.
    pub fn value(what: impl Into<String>, message: impl Into<String>) -> Self {
        DataError::Value {
            what: what.into(),
            message: message.into(),
        }
    }

    /// A [`DataError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            error: source,
        }
    }
}
