//! Constant folding: a node whose inputs are all fills or constants is computed at compile
//! time by the reference interpreter; if the result is uniform it becomes a fill, else, when
//! some input was a constant (host data), a constant of the result.

use super::PassReport;
use super::rebuild::Rebuild;
use crate::error::Result;
use crate::interp::eval_op;
use crate::ir::{ConstantData, DType, Graph, Node, NodeId, Op, numel};
use crate::tensor::Tensor;
use std::sync::Arc;

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
            && ins
                .iter()
                .all(|&x| matches!(rb.new.node(x).op, Op::Fill { .. } | Op::Constant { .. }));
        if foldable {
            let values: Vec<(Vec<usize>, Vec<f64>)> = ins
                .iter()
                .map(|&x| {
                    let node = rb.new.node(x);
                    let values = match &node.op {
                        Op::Constant { value } => value.tensor().to_f64(),
                        Op::Fill { value } => vec![f64::from(*value); node.ty.numel()],
                        _ => unreachable!("checked above"),
                    };
                    (node.ty.shape.clone(), values)
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
            let from_data = ins.iter().any(|&x| matches!(rb.new.node(x).op, Op::Constant { .. }));
            if from_data && n.ty.dtype == DType::F32 {
                let data: Vec<f32> = result.iter().map(|&v| v as f32).collect();
                let tensor = Tensor::new(n.ty.shape.clone(), data, &n.layer)?;
                changes.push(format!("%{i} {} ({}): folded to a constant", n.op.name(), n.layer));
                let new = rb.add(Node {
                    op: Op::Constant {
                        value: ConstantData(Arc::new(tensor)),
                    },
                    inputs: Default::default(),
                    ..n.clone()
                });
                rb.alias(id, new);
                continue;
            }
        }
        rb.copy(id);
    }
    Ok(rb.report("fold_constants", changes))
}
