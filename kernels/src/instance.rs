//! A kernel instance: complete WGSL plus everything needed to dispatch it.

use fovea_graph::NodeId;

/// A buffer a kernel binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BufferRef {
    /// The bytes holding a node's value (always a storage root, never a view): its range of
    /// the buffer it lives in.
    Node(NodeId),
    /// The whole buffer the node's value lives in (an arena or a chunk of parameter state),
    /// bound from its first byte: for multi-tensor kernels, which address several tensors of
    /// one buffer at element offsets baked into their source.
    Buffer(NodeId),
    /// The program's scratch buffer, from its first byte, [`KernelInstance::scratch_bytes`]
    /// long: temporaries of the node's kernels that live only between its consecutive
    /// dispatches (the partial sums of a split-K GEMM, see `gemm.rs`). The engine allocates one
    /// scratch buffer per program, sized for its largest kernel, and every kernel shares it
    /// (dispatches run in order with barriers between them).
    Scratch(NodeId),
}

impl BufferRef {
    /// The node whose storage this refers to (for [`BufferRef::Scratch`], the node whose
    /// kernels use the scratch buffer).
    pub fn node(self) -> NodeId {
        match self {
            BufferRef::Node(n) | BufferRef::Buffer(n) | BufferRef::Scratch(n) => n,
        }
    }
}

/// One binding of a kernel: `@group(0) @binding(i)` is the `i`-th entry of
/// [`KernelInstance::bindings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BindingRef {
    /// What is bound.
    pub buffer: BufferRef,
    /// `var<storage, read_write>` (the output) rather than `var<storage, read>`.
    pub writable: bool,
}

impl BindingRef {
    /// A read-only binding of `node`'s buffer.
    pub fn read(node: NodeId) -> Self {
        BindingRef {
            buffer: BufferRef::Node(node),
            writable: false,
        }
    }

    /// A writable binding of `node`'s buffer.
    pub fn write(node: NodeId) -> Self {
        BindingRef {
            buffer: BufferRef::Node(node),
            writable: true,
        }
    }
}

/// One compute dispatch: specialised WGSL, its bindings and its grid.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelInstance {
    /// The variant, e.g. `gemm_conv2d_cpu_64x64`; used in errors, dumps and pipeline caches.
    pub name: String,
    /// The WGSL file the kernel comes from (its stem, e.g. `gemm`).
    pub family: &'static str,
    /// The graph node this dispatch computes (or part of it, for concatenations).
    pub node: NodeId,
    /// The complete, specialised WGSL module.
    pub source: String,
    /// The compute entry point to run.
    pub entry_point: &'static str,
    /// Binding `i` of `@group(0)`, in order; all storage buffers of 32-bit elements. The output
    /// is the last one.
    pub bindings: Vec<BindingRef>,
    /// Workgroup counts (x, y, z), each at most the target's `max_workgroups_per_dim`.
    pub workgroups: [u32; 3],
    /// The entry point's `@workgroup_size`.
    pub workgroup_size: [u32; 3],
    /// Useful floating-point operations (`2*M*N*K` for a GEMM), for throughput reports.
    pub flops: u64,
    /// Bytes read and written at minimum (every input and the output once).
    pub bytes: u64,
    /// Bytes of the scratch buffer the kernel binds as [`BufferRef::Scratch`] (0 when it binds
    /// none).
    pub scratch_bytes: u64,
}

impl KernelInstance {
    /// The same kernel with every storage binding declared `read_write`, for buffers that hold
    /// several tensors (arenas): a dispatch may then read one tensor of a buffer and write
    /// another, which WebGPU forbids when a binding of that buffer is read-only. The
    /// kernel's accesses are unchanged.
    pub fn into_shared(mut self) -> Self {
        self.source = self.source.replace("var<storage, read>", "var<storage, read_write>");
        for b in &mut self.bindings {
            b.writable = true;
        }
        self
    }

    /// Total invocations the dispatch launches.
    pub fn invocations(&self) -> u64 {
        self.workgroups
            .iter()
            .chain(&self.workgroup_size)
            .map(|&d| d as u64)
            .product()
    }
}
