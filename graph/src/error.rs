//! The graph crate's error type: every error names the layer (or argument) it is about.

use thiserror::Error;

/// An error while defining, building or interpreting a graph.
///
/// Every variant carries the name of the layer it came from, so a user can find the line of
/// their model definition that caused it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GraphError {
    /// A layer argument is out of range (zero filters, a negative rate, an unknown activation...).
    #[error("layer '{layer}': bad argument `{argument}`: {message}")]
    BadArgument {
        /// The layer the argument belongs to.
        layer: String,
        /// The argument's Keras name (`filters`, `kernel_size`, ...).
        argument: String,
        /// What was wrong and what was expected.
        message: String,
    },
    /// A layer cannot apply to the shapes it was given.
    #[error("layer '{layer}': {message}")]
    Shape {
        /// The layer whose input shapes do not fit.
        layer: String,
        /// What the layer got and what it expected.
        message: String,
    },
    /// The model is put together wrongly (no input, an unknown tensor, duplicate names...).
    #[error("model '{model}': {message}")]
    Model {
        /// The model's name.
        model: String,
        /// What is wrong.
        message: String,
    },
    /// A value given to the interpreter does not match the graph (input count or shape).
    #[error("{what}: {message}")]
    Value {
        /// The input, parameter or node the value is for.
        what: String,
        /// What was expected.
        message: String,
    },
}

impl GraphError {
    /// A shape error for `layer`.
    pub fn shape(layer: &str, message: impl Into<String>) -> Self {
        GraphError::Shape {
            layer: layer.to_string(),
            message: message.into(),
        }
    }

    /// A bad-argument error for `argument` of `layer`.
    pub fn arg(layer: &str, argument: &str, message: impl Into<String>) -> Self {
        GraphError::BadArgument {
            layer: layer.to_string(),
            argument: argument.to_string(),
            message: message.into(),
        }
    }
}

/// The graph crate's result type.
pub type Result<T, E = GraphError> = std::result::Result<T, E>;
