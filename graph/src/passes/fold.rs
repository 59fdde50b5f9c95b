//! Constant folding: a node whose inputs are all fills is computed at compile time by the
//! reference interpreter; if the result is uniform it becomes a fill.

use super::PassReport;
use super::rebuild::Rebuild;
use crate::error::Result;
use crate::interp::eval_op;
use crate::ir::{DType, Graph, Node, NodeId, Op, numel};

/// Largest result folded (elements).
const MAX_FOLD: usize = 1 << 16;

/// Folds computations on constants into constants.
pub fn fold_constants(graph: Graph) -> Result<(Graph, PassReport)> {
    let mut rb = Rebuild::new(&graph);
    let mut changes = Vec::new();
    for (i, n) in graph.nodes.iter().enumerate() {
        let id = NodeId(i as u32);
        let ins: Vec<NodeId> = n.inputs.iter().map(|&x| rb.get(x)).collect();
        let foldable = !ins.is_empty()
            && !matches!(n.op, Op::Dropout { training: true, .. })
            && numel(&n.ty.shape) <= MAX_FOLD
            // A fill is f32: integer results (argmax of a constant) stay computed.
            && n.ty.dtype == DType::F32
            && ins.iter().all(|&x| matches!(rb.new.node(x).op, Op::Fill { .. }));
        if foldable {
            let values: Vec<(Vec<usize>, Vec<f64>)> = ins
                .iter()
                .map(|&x| {
                    let node = rb.new.node(x);
                    let Op::Fill { value } = node.op else {
                        unreachable!("checked above")
                    };
                    (node.ty.shape.clone(), vec![f64::from(value); node.ty.numel()])
                })
                .collect();
            let args: Vec<(&[usize], &[f64])> = values.iter().map(|(s, v)| (s.as_slice(), v.as_slice())).collect();
            let result = eval_op(&n.op, &args, &n.ty.shape, &n.layer)?;
            let first = result.first().copied().unwrap_or(0.0);
            if result.iter().all(|&v| v.to_bits() == first.to_bits()) {
                let value = first as f32;
                if f64::from(value) == first {
                    changes.push(format!("%{i} {} ({}): folded to {value}", n.op.name(), n.layer));
                    let new = rb.add(Node {
                        op: Op::Fill { value },
                        inputs: Default::default(),
                        ..n.clone()
                    });
                    rb.alias(id, new);
                    continue;
                }
            }
        }
        rb.copy(id);
    }
    Ok(rb.report("fold_constants", changes))
}
