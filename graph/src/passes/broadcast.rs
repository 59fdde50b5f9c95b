//! Broadcast bypassing: an elementwise node reads a `Broadcast` node's input directly when the
//! node's other inputs already give it the broadcast's shape. Elementwise kernels broadcast
//! their inputs by index arithmetic (numpy rules, as `Broadcast` itself), so the materialised
//! copy, one dispatch and a full-size tensor written and read again, is not needed. The
//! gradients of means and sums make such copies (the batch-norm statistics' gradients: two
//! per layer, at the layer's full activation size); once no reader is left, dead-code
//! elimination drops them.

use super::PassReport;
use super::rebuild::Rebuild;
use crate::error::Result;
use crate::ir::{DType, Graph, NodeId, Op, TensorType, infer};

/// Rewires every elementwise reader of an f32 `Broadcast` to the broadcast's input where the
/// reader's output shape stays the broadcast of its inputs' shapes.
pub fn bypass_broadcasts(graph: Graph) -> Result<(Graph, PassReport)> {
    let mut rb = Rebuild::new(&graph);
    let mut changes = Vec::new();
    for (i, n) in graph.nodes.iter().enumerate() {
        let id = NodeId(i as u32);
        if !n.op.is_elementwise() {
            rb.copy(id);
            continue;
        }
        // Each input, or the source of a broadcast input.
        let source = |x: NodeId| match &graph.node(x).op {
            Op::Broadcast { .. } if graph.ty(x).dtype == DType::F32 => graph.node(x).inputs[0],
            _ => x,
        };
        let bypassed: Vec<NodeId> = n.inputs.iter().map(|&x| source(x)).collect();
        // Binary ops and fused expressions broadcast their inputs; the other elementwise ops
        // (a unary gradient wants equal shapes) become the one-op expression, which does.
        let op = match &n.op {
            Op::Binary(_) | Op::Elementwise { .. } => n.op.clone(),
            other => Op::Elementwise {
                expr: other.elementwise_expr().expect("an elementwise op"),
            },
        };
        // Only where the node keeps its type: shape inference decides.
        let types: Vec<&TensorType> = bypassed.iter().map(|&x| graph.ty(x)).collect();
        let same_type = infer(&op, &types, &n.layer).is_ok_and(|t| t == n.ty);
        if bypassed.as_slice() == n.inputs.as_slice() || !same_type {
            rb.copy(id);
            continue;
        }
        changes.push(format!(
            "%{i} {} ({}): reads {} broadcast input(s) unbroadcast",
            n.op.name(),
            n.layer,
            n.inputs.iter().zip(&bypassed).filter(|(a, b)| a != b).count()
        ));
        let inputs: Vec<NodeId> = bypassed.iter().map(|&x| rb.get(x)).collect();
        rb.replace(id, op, inputs);
    }
    Ok(rb.report("bypass_broadcasts", changes))
}
