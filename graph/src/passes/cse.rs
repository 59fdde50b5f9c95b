//! Common-subexpression elimination: nodes computing the same op of the same inputs (with the
//! same output type) are merged into the first.

use super::PassReport;
use super::rebuild::Rebuild;
use crate::error::Result;
use crate::ir::{Graph, NodeId, Op};
use std::collections::HashMap;

/// Merges duplicate computations.
pub fn cse(graph: Graph) -> Result<(Graph, PassReport)> {
    let mut rb = Rebuild::new(&graph);
    let mut seen: HashMap<String, NodeId> = HashMap::new();
    let mut changes = Vec::new();
    for (i, n) in graph.nodes.iter().enumerate() {
        let id = NodeId(i as u32);
        // Constants are keyed by a fingerprint in their debug form: never merged on it.
        if matches!(n.op, Op::Input { .. } | Op::Param { .. } | Op::Constant { .. }) {
            rb.copy(id);
            continue;
        }
        let inputs: Vec<NodeId> = n.inputs.iter().map(|&x| rb.get(x)).collect();
        // Ops hold floats, so the key is their exact debug form (f32 prints round-trip).
        let key = format!("{:?}|{:?}|{}", n.op, inputs, n.ty);
        match seen.get(&key) {
            Some(&first) => {
                changes.push(format!("%{i} {} ({}): same as {first}", n.op.name(), n.layer));
                rb.alias(id, first);
            }
            None => {
                let new = rb.copy(id);
                seen.insert(key, new);
            }
        }
    }
    Ok(rb.report("cse", changes))
}
