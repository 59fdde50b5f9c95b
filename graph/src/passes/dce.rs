//! Dead-code elimination: drops nodes that no output, update or later live node reads.
//! Inputs are kept (they are fed whether used or not).

use super::PassReport;
use super::rebuild::Rebuild;
use crate::error::Result;
use crate::ir::{Graph, NodeId};

/// Removes nodes that do not contribute to an output or an update.
pub fn dce(graph: Graph) -> Result<(Graph, PassReport)> {
    let mut live = vec![false; graph.nodes.len()];
    for &i in graph.inputs.iter().chain(&graph.outputs) {
        live[i.index()] = true;
    }
    for &(p, v) in &graph.updates {
        live[p.index()] = true;
        live[v.index()] = true;
    }
    for i in (0..graph.nodes.len()).rev() {
        if live[i] {
            for inp in &graph.nodes[i].inputs {
                live[inp.index()] = true;
            }
        }
    }
    let mut rb = Rebuild::new(&graph);
    let mut changes = Vec::new();
    for (i, n) in graph.nodes.iter().enumerate() {
        if live[i] {
            rb.copy(NodeId(i as u32));
        } else {
            changes.push(format!("%{i} {} ({}): removed, nothing reads it", n.op.name(), n.layer));
        }
    }
    Ok(rb.report("dce", changes))
}
