//! Algebraic simplification: identities that remove work without changing any value
//! (scaling by one, adding zero, double negation, reshape chains, identity transposes and pads,
//! inference-mode dropout) and merging of consecutive scalings.

use super::PassReport;
use super::rebuild::Rebuild;
use crate::error::Result;
use crate::ir::{BinaryOp, Graph, Node, NodeId, Op, UnaryOp};

fn fill_value(g: &Graph, id: NodeId) -> Option<f32> {
    match g.node(id).op {
        Op::Fill { value } => Some(value),
        _ => None,
    }
}

/// Applies the identities; removed nodes are left to dead-code elimination.
pub fn simplify(graph: Graph) -> Result<(Graph, PassReport)> {
    let mut rb = Rebuild::new(&graph);
    let mut changes = Vec::new();
    for (i, n) in graph.nodes.iter().enumerate() {
        let id = NodeId(i as u32);
        let ins: Vec<NodeId> = n.inputs.iter().map(|&x| rb.get(x)).collect();
        let same_shape = |rb: &Rebuild, x: NodeId| rb.new.shape(x) == n.ty.shape.as_slice();
        // A replacement by an existing node of the new graph.
        let alias: Option<(NodeId, &str)> = match &n.op {
            Op::Unary(UnaryOp::Scale(c)) if *c == 1.0 => Some((ins[0], "scale by 1")),
            Op::Unary(UnaryOp::AddScalar(c)) if *c == 0.0 => Some((ins[0], "add 0")),
            Op::Unary(UnaryOp::Neg) => match &rb.new.node(ins[0]).op {
                Op::Unary(UnaryOp::Neg) => Some((rb.new.node(ins[0]).inputs[0], "double negation")),
                _ => None,
            },
            Op::Reshape if same_shape(&rb, ins[0]) => Some((ins[0], "reshape to the same shape")),
            Op::Transpose { perm } if perm.iter().enumerate().all(|(a, &b)| a == b) => {
                Some((ins[0], "identity transpose"))
            }
            Op::Pad { pads, .. } if pads.iter().all(|&(a, b)| a == 0 && b == 0) => Some((ins[0], "zero padding")),
            Op::Dropout { training: false, .. } => Some((ins[0], "inference dropout")),
            Op::Dropout { rate, training: true } if *rate == 0.0 => Some((ins[0], "dropout of rate 0")),
            Op::Binary(BinaryOp::Mul) if fill_value(&rb.new, ins[1]) == Some(1.0) && same_shape(&rb, ins[0]) => {
                Some((ins[0], "multiply by 1"))
            }
            Op::Binary(BinaryOp::Mul) if fill_value(&rb.new, ins[0]) == Some(1.0) && same_shape(&rb, ins[1]) => {
                Some((ins[1], "multiply by 1"))
            }
            Op::Binary(BinaryOp::Add | BinaryOp::Sub)
                if fill_value(&rb.new, ins[1]) == Some(0.0) && same_shape(&rb, ins[0]) =>
            {
                Some((ins[0], "add 0"))
            }
            Op::Binary(BinaryOp::Add) if fill_value(&rb.new, ins[0]) == Some(0.0) && same_shape(&rb, ins[1]) => {
                Some((ins[1], "add 0"))
            }
            _ => None,
        };
        if let Some((to, why)) = alias {
            changes.push(format!("%{i} {} ({}): removed ({why})", n.op.name(), n.layer));
            rb.alias(id, to);
            continue;
        }
        // A rewrite into a new node.
        let inner = ins.first().map(|&x| rb.new.node(x).clone());
        let rewrite: Option<(Op, NodeId, &str)> = match (&n.op, &inner) {
            (
                Op::Unary(UnaryOp::Scale(a)),
                Some(Node {
                    op: Op::Unary(UnaryOp::Scale(b)),
                    inputs,
                    ..
                }),
            ) => Some((Op::Unary(UnaryOp::Scale(a * b)), inputs[0], "merged scalings")),
            (
                Op::Reshape,
                Some(Node {
                    op: Op::Reshape,
                    inputs,
                    ..
                }),
            ) => Some((Op::Reshape, inputs[0], "merged reshapes")),
            _ => None,
        };
        if let Some((op, src, why)) = rewrite {
            changes.push(format!("%{i} {} ({}): {why}", n.op.name(), n.layer));
            let new = rb.add(Node {
                op,
                inputs: [src].into_iter().collect(),
                ty: n.ty.clone(),
                layer: n.layer.clone(),
            });
            rb.alias(id, new);
            continue;
        }
        rb.copy(id);
    }
    Ok(rb.report("simplify", changes))
}
