//! Per-node cost estimates for dumps: useful floating-point operations and bytes moved.

use crate::ir::{Graph, NodeId, Op, numel};

/// Floating-point operations of a node (a multiply-add counts 2).
pub fn flops(g: &Graph, id: NodeId) -> u64 {
    op_flops(g, id, &g.node(id).op)
}

/// Floating-point operations of `op` computed at node `id` (for an epilogue's base op: its
/// inputs come first).
fn op_flops(g: &Graph, id: NodeId, op: &Op) -> u64 {
    let n = g.node(id);
    let out = n.ty.numel() as u64;
    let shape = |k: usize| g.shape(n.inputs[k]);
    match op {
        Op::Conv2d(_) => {
            let w = shape(1);
            2 * out * (w[0] * w[1] * w[2]) as u64
        }
        Op::ConvTranspose2d { .. } => 2 * numel(shape(0)) as u64 * (shape(1)[0] * shape(1)[1] * shape(1)[2]) as u64,
        Op::Conv2dBackpropInput { filter, .. } => {
            let w = filter.hwio_shape(shape(1));
            2 * numel(shape(0)) as u64 * (w[0] * w[1] * w[2]) as u64
        }
        Op::Conv2dBackpropFilter { .. } => {
            let dy = shape(1);
            2 * out / dy[3] as u64 * numel(dy) as u64
        }
        Op::MatMul { trans_a, .. } => {
            // The reduced axis is one of A's last two (a batched matmul has a batch axis first).
            let a = shape(0);
            let r = a.len();
            2 * out * if *trans_a { a[r - 2] } else { a[r - 1] } as u64
        }
        // Every output element is one dot product over x's channels.
        Op::PixelShuffleMatMul { .. } => 2 * out * shape(0)[3] as u64,
        Op::Pool2d(p) | Op::Pool2dBackprop(p) => out.max(numel(shape(0)) as u64) * (p.size.0 * p.size.1) as u64,
        Op::Reduce { .. } | Op::Softmax | Op::LogSoftmax => 4 * numel(shape(0)) as u64,
        // Max, exp and sum, the label sum and the label-weighted sum (as the kernel counts them);
        // the gradient then recomputes each probability and scales it.
        Op::SoftmaxCrossEntropy => 8 * numel(shape(0)) as u64,
        Op::SoftmaxCrossEntropyGrad => 15 * numel(shape(0)) as u64,
        Op::Elementwise { expr } => out * expr.op_count() as u64,
        // The reduction's 4 per element (as a plain reduce) and the expression's ops, over the
        // largest input (the reduced tensor, unless every input is broadcast).
        Op::ReducePrologue { expr, .. } => {
            let x = (0..n.inputs.len()).map(|k| numel(shape(k))).max().unwrap_or(0) as u64;
            x * (4 + expr.op_count() as u64)
        }
        Op::GemmEpilogue { base, expr } => op_flops(g, id, base) + out * expr.op_count() as u64,
        Op::Unary(_) | Op::Binary(_) | Op::UnaryGrad(_) | Op::Dropout { training: true, .. } => out,
        Op::BatchNormInference { .. } => 4 * out,
        Op::Resize { .. } | Op::ResizeBackprop { .. } => 8 * out,
        // Gathers and scatters move data; a scatter-add adds each update once.
        Op::ScatterAdd { .. } => numel(shape(0)) as u64,
        // Sorting ops compare; count one operation per comparison of the kernels' rank counts.
        Op::TopK { .. } | Op::ArgSort { .. } => {
            let x = shape(0);
            numel(x) as u64
                * match op {
                    Op::ArgSort { axis, .. } => x[*axis],
                    _ => *x.last().unwrap_or(&1),
                } as u64
        }
        Op::ArgMax { .. } => numel(shape(0)) as u64,
        // Mean, variance, then normalise, scale and shift.
        Op::InstanceNorm { .. } => 7 * out,
        // At most `max_detections` kept boxes per class, each tested against its class's rest.
        Op::Nms { max_detections, .. } => {
            let s = shape(0);
            20 * (numel(s) * (*max_detections).min(*s.last().unwrap_or(&1))) as u64
        }
        _ => 0,
    }
}

/// Bytes a node's kernels read and write at least (inputs once, output once); 0 for views.
pub fn bytes_moved(g: &Graph, id: NodeId) -> u64 {
    let n = g.node(id);
    if n.op.is_view() || matches!(n.op, Op::Input { .. } | Op::Param { .. } | Op::Constant { .. }) {
        return 0;
    }
    let ins: usize = n.inputs.iter().map(|&i| g.ty(i).size_bytes()).sum();
    (ins + n.ty.size_bytes()) as u64
}
