//! # fovea-kernels
//!
//! Fovea's hand-written WGSL kernels (`kernels/wgsl/*.wgsl`, one family per file), their
//! specialisation by text substitution, and the lowering of graph nodes to [`KernelInstance`]s:
//! complete WGSL plus bindings and dispatch geometry, ready for the engine to run. No GPU is
//! needed to build or test this crate: every instance the lowering can produce is validated
//! with naga ([`validate_wgsl`]) in unit tests.
//!
//! One GEMM core ([`gemm`]) serves matmul, implicit-GEMM convolution, transposed convolution
//! and both convolution gradients through substituted loader functions; tile shapes come from
//! a small table per [`AdapterClass`] ([`gemm::GEMM_TILES`]). Elementwise kernels (unary,
//! binary, unary gradients, fills) are generated from an expression tree
//! ([`elementwise::ElemExpr`]), ready for fused chains. Everything else has a direct kernel:
//! depthwise convolution, pooling and its gradient, reductions, softmax, softmax cross-entropy and
//! its gradient, batch norm, resize and its gradient, training dropout, concatenation, padding and
//! strided copies (transpose, slice, broadcast), and the structural ops: gather and scatter-add,
//! top-k, argsort and argmax, instance norm (batched matmul runs on the GEMM core).

#![warn(missing_docs)]

mod batchnorm;
mod concat;
mod conv;
mod conv_filter_grad;
mod conv_narrow;
mod conv_transpose;
mod copy;
mod depthwise;
pub mod dispatch;
mod dropout;
pub mod elementwise;
mod error;
mod fused;
mod gather;
pub mod gemm;
pub mod index;
mod instance;
mod instance_norm;
mod lower;
mod matmul;
pub mod multi_tensor;
pub mod multi_update;
pub mod nms;
mod pad;
mod pad_grad;
pub mod peak;
mod pool;
mod pool_grad;
mod reduce;
mod resize;
mod resize_grad;
mod row_taps;
pub mod softmax;
mod softmax_ce;
mod sort;
mod target;
pub mod template;
pub mod tiles;
mod validate;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_structural;

pub use conv_narrow::NARROW_OUTPUT_MAX_CHANNELS;
pub use error::KernelError;
pub use instance::{BindingRef, BufferRef, KernelInstance};
pub use lower::{lower_graph, lower_node, lower_node_with, lower_planned, lower_planned_with, storage_root};
pub use multi_tensor::{MultiTensorSpec, multi_tensor_kernel};
pub use multi_update::{Location, fuse_updates};
pub use reduce::{REDUCE_SPLIT_INVOCATIONS, REDUCE_SPLIT_MIN_COUNT, reduce_splits};
pub use target::{AdapterClass, Target};
pub use validate::{validate_wgsl, validate_with_info};
