//! Reduce-prologue fusion: a reduction whose input is an elementwise node read by nothing
//! else becomes one `Op::ReducePrologue` node that evaluates the expression as it loads each
//! element, so the elementwise result (a tensor of the reduced size) is never written or read
//! back, and one dispatch goes. The statistics of batch normalisation (the mean of squared
//! deviations, and in its gradient the sum of `dy * xhat`) and global-norm gradient clipping
//! (the sum of every gradient's squares) are such pairs.

use super::PassReport;
use super::rebuild::Rebuild;
use crate::error::Result;
use crate::ir::{DType, Graph, Node, NodeId, Op, TensorType, infer};

/// Most inputs of a fused reduction (one storage binding each, plus the output, within
/// WebGPU's default of 8 storage buffers per stage).
pub const MAX_PROLOGUE_INPUTS: usize = 7;

/// Fuses every `Reduce` over a single-reader f32 elementwise node into a `ReducePrologue`.
pub fn fuse_reduce_prologues(graph: Graph) -> Result<(Graph, PassReport)> {
    let mut readers = vec![0usize; graph.nodes.len()];
    for n in &graph.nodes {
        for &x in &n.inputs {
            readers[x.index()] += 1;
        }
    }
    for &x in graph.outputs.iter().chain(graph.updates.iter().map(|(_, v)| v)) {
        readers[x.index()] += 2;
    }
    let mut rb = Rebuild::new(&graph);
    let mut changes = Vec::new();
    for (i, n) in graph.nodes.iter().enumerate() {
        let id = NodeId(i as u32);
        let Op::Reduce { op, axes, keep_dims } = &n.op else {
            rb.copy(id);
            continue;
        };
        let p = n.inputs[0];
        let producer = graph.node(p);
        let expr = producer.op.elementwise_expr();
        let f32_only = std::iter::once(p)
            .chain(producer.inputs.iter().copied())
            .all(|x| graph.ty(x).dtype == DType::F32);
        let fused = Op::ReducePrologue {
            op: *op,
            axes: axes.clone(),
            keep_dims: *keep_dims,
            expr: expr.clone().unwrap_or(crate::ir::ElemExpr::Input(0)),
        };
        let types: Vec<&TensorType> = producer.inputs.iter().map(|&x| graph.ty(x)).collect();
        let fits = expr.is_some()
            && readers[p.index()] == 1
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
        let new = rb.add(Node {
            op: fused,
            inputs: producer.inputs.iter().map(|&x| rb.get(x)).collect(),
            ty: n.ty.clone(),
            layer: n.layer.clone(),
        });
        rb.alias(id, new);
    }
    Ok(rb.report("fuse_reduce_prologues", changes))
}
