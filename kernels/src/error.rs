//! The kernels crate's error type: every error names the node and layer, or the kernel, it is about.

use thiserror::Error;

/// An error while lowering a node to kernels or while checking a kernel's WGSL.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KernelError {
    /// The node cannot be lowered (an attribute combination no kernel implements, a shape beyond
    /// the dispatch limits, a dtype the kernel does not handle).
    #[error("layer '{layer}': node {node}: no kernel for it: {message}")]
    Unsupported {
        /// The node, as `%12 (conv2d)`.
        node: String,
        /// The layer the node came from.
        layer: String,
        /// What is not supported, and what would be.
        message: String,
    },
    /// A kernel's specialised WGSL is wrong: a placeholder left unfilled, or naga rejected it.
    #[error("kernel '{kernel}': invalid WGSL:\n{message}")]
    Invalid {
        /// The kernel's name (`gemm_conv2d_cpu_64x64`, ...).
        kernel: String,
        /// What is wrong; for naga errors, naga's rendered message with the offending source line.
        message: String,
    },
}

impl KernelError {
    /// An `Invalid` error for `kernel`.
    pub fn invalid(kernel: &str, message: impl Into<String>) -> Self {
        KernelError::Invalid {
            kernel: kernel.to_string(),
            message: message.into(),
        }
    }
}
