//! The formats crate's error type: every error names the file and, where it applies, the tensor
//! or operator it is about.

use thiserror::Error;

/// An error while reading a model file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FormatError {
    /// The file could not be read.
    #[error("{file}: cannot read the file: {message}")]
    Io {
        /// The file's path.
        file: String,
        /// The operating system's message.
        message: String,
    },
    /// The file is not a well-formed model (truncated, garbage, offsets outside the file).
    #[error("{file}: {message}")]
    Invalid {
        /// The file's path.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A tensor of the file is unusable (shape, type, buffer size).
    #[error("{file}: tensor {index} '{tensor}': {message}")]
    Tensor {
        /// The file's path.
        file: String,
        /// The tensor's index in the subgraph.
        index: usize,
        /// The tensor's name.
        tensor: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// An operator cannot be imported (unknown, quantised, unsupported options).
    #[error("{file}: operator {index} ({operator}), tensor '{tensor}': {message}")]
    Operator {
        /// The file's path.
        file: String,
        /// The operator's index in execution order.
        index: usize,
        /// The operator's name (`CONV_2D`, `CUSTOM:Foo`, builtin code 123).
        operator: String,
        /// The tensor the error is about (the operator's first output unless an input is at fault).
        tensor: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The graph built from the file was rejected (shapes that do not fit).
    #[error("{file}: {source}")]
    Graph {
        /// The file's path.
        file: String,
        /// The graph crate's error, naming the layer (= the operator's output tensor).
        source: fovea_graph::GraphError,
    },
}

impl FormatError {
    /// An `Invalid` error for `file`.
    pub fn invalid(file: &str, message: impl Into<String>) -> Self {
        FormatError::Invalid {
            file: file.to_string(),
            message: message.into(),
        }
    }

    /// A `Tensor` error for tensor `index` named `tensor` of `file`.
    pub fn tensor(file: &str, index: usize, tensor: &str, message: impl Into<String>) -> Self {
        FormatError::Tensor {
            file: file.to_string(),
            index,
            tensor: tensor.to_string(),
            message: message.into(),
        }
    }
}

/// The formats crate's result type.
pub type Result<T, E = FormatError> = std::result::Result<T, E>;
