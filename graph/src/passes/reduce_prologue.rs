//! Reduce-prologue fusion: a reduction whose input is an elementwise node read by nothing
//! else becomes one `Op::ReducePrologue` node that evaluates the expression as it loads each
//! element, so the elementwise result (a tensor of the reduced size) is never written or read
//! back, and one dispatch goes. The statistics of batch normalisation (the mean of squared
//! deviations, and in its gradient the sum of `dy * xhat`) and global-norm gradient clipping
//! (the sum of every gradient's squares) are such pairs.

use super::PassReport;
use super::rebuild::Rebuild;
use crate::error::Result;
use crate::ir::{DType, Graph, NodeId, Op, TensorType, infer};

/// Most inputs of a fused reduction (one storage binding each, plus the output, within
/// WebGPU's default of 8 storage buffers per stage).
pub const MAX_PROLOGUE_INPUTS: usize = 7;

/// Fuses every `Reduce` over a single-reader f32 elementwise node into a `ReducePrologue`.
pub fn fuse_reduce_prologues(graph: Graph) -> Result<(Graph, PassReport)> {
    let readers = graph.use_counts();
    let mut rb = Rebuild::new(&graph);
    let mut changes = Vec::new();
    for (i, n) in graph.nodes.iter().enumerate() {
        let id = NodeId(i as u32);
        let p = n.inputs.first().copied();
        let (Op::Reduce { op, axes, keep_dims }, Some(p)) = (&n.op, p) else {
            rb.copy(id);
            continue;
        };
        let producer = graph.node(p);
        let Some(expr) = producer.op.elementwise_expr() else {
            rb.copy(id);
            continue;
        };
        let fused = Op::ReducePrologue {
            op: *op,
            axes: axes.clone(),
            keep_dims: *keep_dims,
            expr,
        };
        let f32_only = std::iter::once(p)
            .chain(producer.inputs.iter().copied())
            .all(|x| graph.ty(x).dtype == DType::F32);
        let types: Vec<&TensorType> = producer.inputs.iter().map(|&x| graph.ty(x)).collect();
        let fits = readers[p.index()] == 1
            && f32_only
            && (1..=MAX_PROLOGUE_INPUTS).contains(&producer.inputs.len())
            && infer(&fused, &types, &n.layer).is_ok_and(|t| t == n.ty);
        if !fits {
            rb.copy(id);
            continue;
        }
        changes.push(format!(
            "%{i} {} ({}): reads %{} {} as its prologue",
            n.op.name(),
            n.layer,
            p.index(),
            producer.op.name()
        ));
        let inputs: Vec<NodeId> = producer.inputs.iter().map(|&x| rb.get(x)).collect();
        rb.replace(id, fused, inputs);
    }
    Ok(rb.report("fuse_reduce_prologues", changes))
}
