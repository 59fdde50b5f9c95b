//! Lowering of graph nodes to kernel instances: the dispatch over op kinds, and the per-node
//! context the op modules share.

use crate::dispatch::LinearGrid;
use crate::{BindingRef, KernelError, KernelInstance, Target, tiles::TileChoices};
use crate::{
    batchnorm, concat, conv, conv_filter_grad, conv_transpose, copy, dropout, elementwise, matmul, pad, pad_grad, pool,
    pool_grad, reduce, resize, resize_grad, softmax, softmax_ce,
};
use crate::{gather, instance_norm, nms, sort, sort::OrderOp};
use fovea_graph::plan::MemoryPlan;
use fovea_graph::{DType, Graph, Node, NodeId, Op};

/// The node whose buffer holds `id`'s data: follows view ops (Reshape, inference Dropout) back
/// to their source.
pub fn storage_root(graph: &Graph, id: NodeId) -> NodeId {
    graph.storage_root(id)
}

/// Lowers one node to its kernel instances: none for inputs, parameters and views, one per
/// input for a concatenation, two for a split-K GEMM (GPU class, see
/// [`crate::gemm::split_k_splits`]), one otherwise.
pub fn lower_node(graph: &Graph, id: NodeId, target: &Target) -> Result<Vec<KernelInstance>, KernelError> {
    lower_node_in_place(graph, id, target, None, None)
}

/// [`lower_node`] with GEMM tiles from `tiles` (which records the GEMMs it met).
pub fn lower_node_with(
    graph: &Graph,
    id: NodeId,
    target: &Target,
    tiles: &TileChoices,
) -> Result<Vec<KernelInstance>, KernelError> {
    lower_node_in_place(graph, id, target, None, Some(tiles))
}

/// [`lower_node`] for a node the memory plan computes in place over `in_place` (elementwise
/// kernels only).
fn lower_node_in_place(
    graph: &Graph,
    id: NodeId,
    target: &Target,
    in_place: Option<NodeId>,
    tiles: Option<&TileChoices>,
) -> Result<Vec<KernelInstance>, KernelError> {
    let cx = NodeCx {
        graph,
        id,
        node: graph.node(id),
        target,
        in_place,
        tiles,
    };
    if in_place.is_some() && !cx.node.op.is_elementwise() {
        return Err(cx.unsupported("only elementwise kernels run in place"));
    }
    let node = cx.node;
    if matches!(node.op, Op::Input { .. } | Op::Param { .. } | Op::Constant { .. }) || node.op.is_view() {
        return Ok(Vec::new());
    }
    for &i in node.inputs.iter().chain(std::iter::once(&id)) {
        if graph.ty(i).numel() > u32::MAX as usize {
            return Err(cx.unsupported(format!(
                "tensor {i} has {} elements; kernels index with 32 bits",
                graph.ty(i).numel()
            )));
        }
    }
    let layout_op = matches!(
        node.op,
        Op::Concat { .. } | Op::Transpose { .. } | Op::Slice { .. } | Op::Broadcast { .. }
    );
    // The order-based ops write i32 indices (their input is f32).
    let index_op = matches!(node.op, Op::TopK { .. } | Op::ArgSort { .. } | Op::ArgMax { .. });
    if !layout_op && !index_op && node.ty.dtype != DType::F32 {
        return Err(cx.unsupported(format!(
            "{} has no kernel for {} tensors",
            node.op.name(),
            node.ty.dtype.name()
        )));
    }
    let one = |k: KernelInstance| vec![k];
    Ok(match &node.op {
        Op::Input { .. } | Op::Param { .. } | Op::Constant { .. } | Op::Reshape => Vec::new(),
        Op::Dropout { rate, .. } => one(dropout::lower_dropout(&cx, *rate)?),
        Op::Conv2d(g) => conv::lower_conv2d(&cx, g)?,
        Op::ConvTranspose2d { geom, .. } => conv_transpose::lower_conv_transpose2d(&cx, geom)?,
        Op::MatMul { trans_a, trans_b } => matmul::lower_matmul(&cx, *trans_a, *trans_b)?,
        Op::PixelShuffleMatMul { block } => matmul::lower_pixel_shuffle_matmul(&cx, *block)?,
        Op::Pool2d(p) => one(pool::lower_pool2d(&cx, p)?),
        Op::Reduce { op, axes, .. } => reduce::lower_reduce(&cx, *op, axes, None)?,
        Op::ReducePrologue { op, axes, expr, .. } => reduce::lower_reduce(&cx, *op, axes, Some(expr))?,
        Op::Unary(_) | Op::Binary(_) | Op::UnaryGrad(_) | Op::Elementwise { .. } | Op::Select => {
            one(elementwise::lower_elementwise_node(&cx)?)
        }
        Op::Softmax => one(softmax::lower_softmax(&cx, false)?),
        Op::LogSoftmax => one(softmax::lower_softmax(&cx, true)?),
        Op::SoftmaxCrossEntropy => one(softmax_ce::lower_softmax_ce(&cx, false)?),
        Op::SoftmaxCrossEntropyGrad => one(softmax_ce::lower_softmax_ce(&cx, true)?),
        Op::BatchNormInference { epsilon } => one(batchnorm::lower_batchnorm(&cx, *epsilon)?),
        Op::Resize { mode, .. } => one(resize::lower_resize(&cx, *mode)?),
        Op::Concat { axis } => concat::lower_concat(&cx, *axis)?,
        Op::Pad { pads, value, mode } => one(pad::lower_pad(&cx, pads, *value, *mode)?),
        Op::PadBackprop { pads, mode } => one(pad_grad::lower_pad_backprop(&cx, pads, *mode)?),
        Op::Transpose { perm } => one(copy::lower_transpose(&cx, perm)?),
        Op::Slice { starts, sizes } => one(copy::lower_slice(&cx, starts, sizes)?),
        Op::Broadcast { .. } => one(copy::lower_broadcast(&cx)?),
        Op::Fill { value } => one(elementwise::lower_fill(&cx, *value)?),
        Op::GemmEpilogue { base, .. } => match &**base {
            Op::Conv2d(g) if g.groups > 1 && g.groups == cx.in_shape(0)[3] => {
                return Err(cx.unsupported("a depthwise convolution has no GEMM epilogue"));
            }
            Op::Conv2d(g) => conv::lower_conv2d(&cx, g)?,
            Op::ConvTranspose2d { geom, .. } => conv_transpose::lower_conv_transpose2d(&cx, geom)?,
            Op::MatMul { trans_a, trans_b } => matmul::lower_matmul(&cx, *trans_a, *trans_b)?,
            Op::PixelShuffleMatMul { block } => matmul::lower_pixel_shuffle_matmul(&cx, *block)?,
            Op::Conv2dBackpropInput { geom, filter, .. } => {
                conv_transpose::lower_conv2d_backprop_input(&cx, geom, *filter)?
            }
            Op::Conv2dBackpropFilter { geom, .. } => conv_filter_grad::lower_conv2d_backprop_filter(&cx, geom)?,
            // Not on the GEMM core: the pooling gradient's own kernel stores through the epilogue.
            Op::Pool2dBackprop(p) => one(pool_grad::lower_pool2d_backprop(&cx, p)?),
            other => return Err(cx.unsupported(format!("{} takes no epilogue", other.name()))),
        },
        Op::Conv2dBackpropInput { geom, filter, .. } => {
            conv_transpose::lower_conv2d_backprop_input(&cx, geom, *filter)?
        }
        Op::Conv2dBackpropFilter { geom, .. } => conv_filter_grad::lower_conv2d_backprop_filter(&cx, geom)?,
        Op::Pool2dBackprop(p) => one(pool_grad::lower_pool2d_backprop(&cx, p)?),
        Op::ResizeBackprop { mode, .. } => one(resize_grad::lower_resize_backprop(&cx, *mode)?),
        Op::Gather { axis, batch_dims } => one(gather::lower_gather(&cx, *axis, *batch_dims, false)?),
        Op::ScatterAdd { axis, batch_dims, .. } => one(gather::lower_gather(&cx, *axis, *batch_dims, true)?),
        Op::TopK { k } => one(sort::lower_order(&cx, OrderOp::TopK { k: *k })?),
        Op::ArgSort { axis, descending } => one(sort::lower_order(
            &cx,
            OrderOp::ArgSort {
                axis: *axis,
                descending: *descending,
            },
        )?),
        Op::ArgMax { axis } => one(sort::lower_order(&cx, OrderOp::ArgMax { axis: *axis })?),
        Op::InstanceNorm { epsilon } => one(instance_norm::lower_instance_norm(&cx, *epsilon)?),
        Op::Nms {
            iou_threshold,
            score_threshold,
            max_detections,
        } => one(nms::lower_nms(&cx, *iou_threshold, *score_threshold, *max_detections)?),
    })
}

/// Lowers every node in graph order, each tensor in a buffer of its own.
pub fn lower_graph(graph: &Graph, target: &Target) -> Result<Vec<KernelInstance>, KernelError> {
    let mut out = Vec::new();
    for i in 0..graph.nodes.len() {
        out.extend(lower_node(graph, NodeId(i as u32), target)?);
    }
    Ok(out)
}

/// Lowers every node in graph order for execution with `plan`: elementwise nodes the plan
/// computes in place get in-place kernels, and every binding is declared read-write
/// ([`KernelInstance::into_shared`]) because tensors share arena buffers, and WebGPU lets no
/// buffer be bound both read-only and writable in one dispatch.
pub fn lower_planned(graph: &Graph, target: &Target, plan: &MemoryPlan) -> Result<Vec<KernelInstance>, KernelError> {
    lower_planned_with(graph, target, plan, &TileChoices::none())
}

/// [`lower_planned`] with GEMM tiles from `tiles` (which records the GEMMs it met).
pub fn lower_planned_with(
    graph: &Graph,
    target: &Target,
    plan: &MemoryPlan,
    tiles: &TileChoices,
) -> Result<Vec<KernelInstance>, KernelError> {
    let mut out = Vec::new();
    for i in 0..graph.nodes.len() {
        let ks = lower_node_in_place(graph, NodeId(i as u32), target, plan.in_place[i], Some(tiles))?;
        out.extend(ks.into_iter().map(KernelInstance::into_shared));
    }
    Ok(out)
}

/// What an op's lowering sees: the graph, the node and the target.
pub(crate) struct NodeCx<'a> {
    pub graph: &'a Graph,
    pub id: NodeId,
    pub node: &'a Node,
    pub target: &'a Target,
    /// The input whose bytes the output overwrites, when the memory plan runs it in place.
    pub in_place: Option<NodeId>,
    /// Per-problem GEMM tiles (`None`: the static table).
    pub tiles: Option<&'a TileChoices>,
}

impl NodeCx<'_> {
    /// An `Unsupported` error about this node.
    pub fn unsupported(&self, message: impl Into<String>) -> KernelError {
        KernelError::Unsupported {
            node: format!("{} ({})", self.id, self.node.op.name()),
            layer: self.node.layer.clone(),
            message: message.into(),
        }
    }

    /// The buffer holding input `i`.
    pub fn input(&self, i: usize) -> NodeId {
        storage_root(self.graph, self.node.inputs[i])
    }

    /// The shape of input `i`.
    pub fn in_shape(&self, i: usize) -> &[usize] {
        self.graph.shape(self.node.inputs[i])
    }

    /// The output shape.
    pub fn out_shape(&self) -> &[usize] {
        &self.node.ty.shape
    }

    /// The output's element count.
    pub fn out_numel(&self) -> u64 {
        self.node.ty.numel() as u64
    }

    /// Bytes of every input plus the output.
    pub fn io_bytes(&self) -> u64 {
        let inputs: usize = self.node.inputs.iter().map(|&i| self.graph.ty(i).size_bytes()).sum();
        (inputs + self.node.ty.size_bytes()) as u64
    }

    /// The instance of a kernel running one invocation per element on `grid` (entry point
    /// `main`, the minimum bytes moved by this node's inputs and output).
    pub fn linear_instance(
        &self,
        name: impl Into<String>,
        family: &'static str,
        source: String,
        bindings: Vec<BindingRef>,
        grid: &LinearGrid,
        flops: u64,
    ) -> KernelInstance {
        KernelInstance {
            name: name.into(),
            family,
            node: self.id,
            source,
            entry_point: "main",
            bindings,
            workgroups: grid.workgroups,
            workgroup_size: [grid.workgroup_size, 1, 1],
            flops,
            bytes: self.io_bytes(),
            scratch_bytes: 0,
        }
    }

    /// The 2-D grid for `total` invocations, or an error if it exceeds the target's limits.
    pub fn linear_grid(&self, total: u64) -> Result<LinearGrid, KernelError> {
        LinearGrid::new(total, self.target.linear_workgroup_size(), self.target).ok_or_else(|| {
            self.unsupported(format!(
                "{total} invocations exceed the dispatch limits ({} workgroups per dimension)",
                self.target.max_workgroups_per_dim
            ))
        })
    }

    /// `Unsupported` for a grid too large for the target.
    pub fn too_large(&self, what: &str) -> KernelError {
        self.unsupported(format!(
            "the {what} grid exceeds the target's {} workgroups per dimension",
            self.target.max_workgroups_per_dim
        ))
    }
}
