//! Dumps of a graph for people and tools: stable, diffable text; Graphviz DOT with fused
//! groups as clusters; and JSON (layout documented in `docs/graph-json.md`).
//!
//! What the graph alone cannot know (the kernel instances of each node, their workgroup
//! geometry, the memory slot of each tensor) comes in as [`NodeAnnotation`]s from the engine.

mod cost;
mod dot;
mod json;
mod text;

pub use cost::{bytes_moved, flops};
pub use dot::to_dot;
pub use json::to_json;
pub use text::to_text;

/// A kernel instance as dumps show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelNote {
    /// The instance's name (`gemm_conv2d_cpu_64x64`).
    pub name: String,
    /// Workgroups dispatched.
    pub workgroups: [u32; 3],
    /// Invocations per workgroup.
    pub workgroup_size: [u32; 3],
}

/// What lowering and memory planning decided for one node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeAnnotation {
    /// The kernels dispatched for the node, in order.
    pub kernels: Vec<KernelNote>,
    /// The buffer holding the node's value: `arena N`, `param`, `input`, `view of %N`, ...
    pub buffer: Option<String>,
    /// Byte offset inside that buffer.
    pub offset: u64,
    /// The fusion group (nodes sharing a number will run as one kernel).
    pub group: Option<usize>,
}
