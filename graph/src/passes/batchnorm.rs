//! Batch-norm folding: at inference, `BatchNormInference` is a per-channel affine map
//! `(x - mean) / sqrt(variance + epsilon) * gamma + beta`. Written as one `Op::Elementwise`
//! node over `x` and the four `(C,)` vectors, the elementwise fusion joins it with the
//! activation after it, and the epilogue fusion folds the whole map into the store of the
//! convolution or matmul before it: the normalisation costs no dispatch and no pass over
//! memory. (The statistics are parameters, loaded at run time, so the affine map is applied
//! in the epilogue rather than folded into the weights ahead of time.)

use super::PassReport;
use super::rebuild::Rebuild;
use crate::error::Result;
use crate::ir::{BinaryOp, ElemExpr, Graph, NodeId, Op, UnaryOp};

/// The elementwise expression of batch normalisation over inputs `x, gamma, beta, mean,
/// variance`.
fn affine(epsilon: f32) -> ElemExpr {
    let inp = |k| Box::new(ElemExpr::Input(k));
    let bin = |op, a, b| Box::new(ElemExpr::Binary(op, a, b));
    let std = Box::new(ElemExpr::Unary(
        UnaryOp::Sqrt,
        Box::new(ElemExpr::Unary(UnaryOp::AddScalar(epsilon), inp(4))),
    ));
    let centred = bin(BinaryOp::Sub, inp(0), inp(3));
    let scaled = bin(BinaryOp::Mul, bin(BinaryOp::Div, centred, std), inp(1));
    ElemExpr::Binary(BinaryOp::Add, scaled, inp(2))
}

/// Rewrites every `BatchNormInference` node as an `Elementwise` node.
pub fn fold_batchnorm(graph: Graph) -> Result<(Graph, PassReport)> {
    let mut rb = Rebuild::new(&graph);
    let mut changes = Vec::new();
    for (i, n) in graph.nodes.iter().enumerate() {
        let id = NodeId(i as u32);
        let Op::BatchNormInference { epsilon } = n.op else {
            rb.copy(id);
            continue;
        };
        changes.push(format!(
            "%{i} batch_norm ({}): per-channel affine elementwise node",
            n.layer
        ));
        let inputs: Vec<NodeId> = n.inputs.iter().map(|&x| rb.get(x)).collect();
        rb.replace(id, Op::Elementwise { expr: affine(epsilon) }, inputs);
    }
    Ok(rb.report("fold_batchnorm", changes))
}
