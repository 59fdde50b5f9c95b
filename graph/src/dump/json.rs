//! The JSON dump (layout in `docs/graph-json.md`).

use super::{NodeAnnotation, bytes_moved, flops};
use crate::ir::{Graph, NodeId, Op};
use serde_json::{Value, json};

/// The graph as JSON: `{"nodes": [...], "inputs", "outputs", "updates"}`.
pub fn to_json(g: &Graph, notes: Option<&[NodeAnnotation]>) -> Value {
    let nodes: Vec<Value> =
        g.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let id = NodeId(i as u32);
                let mut v = json!({
                    "id": i,
                    "op": n.op.name(),
                    "inputs": n.inputs.iter().map(|x| x.index()).collect::<Vec<_>>(),
                    "shape": n.ty.shape,
                    "dtype": n.ty.dtype.name(),
                    "layer": n.layer,
                    "flops": flops(g, id),
                    "bytes": bytes_moved(g, id),
                });
                match &n.op {
                    Op::Input { name } | Op::Param { name, .. } => v["name"] = json!(name),
                    Op::Constant { value } => v["constant"] = json!(value.describe()),
                    Op::Elementwise { expr } | Op::GemmEpilogue { expr, .. } | Op::ReducePrologue { expr, .. } => {
                        v["expr"] = json!(expr.describe())
                    }
                    _ => {}
                }
                if let Some(note) = notes.and_then(|a| a.get(i)) {
                    v["group"] = json!(note.group);
                    v["kernels"] = json!(note
                    .kernels
                    .iter()
                    .map(|k| json!({"name": k.name, "workgroups": k.workgroups, "workgroup_size": k.workgroup_size}))
                    .collect::<Vec<_>>());
                    v["buffer"] = json!(note.buffer);
                    v["offset"] = json!(note.offset);
                }
                v
            })
            .collect();
    json!({
        "nodes": nodes,
        "inputs": g.inputs.iter().map(|x| x.index()).collect::<Vec<_>>(),
        "outputs": g.outputs.iter().map(|x| x.index()).collect::<Vec<_>>(),
        "updates": g.updates.iter().map(|(p, v)| json!({"param": p.index(), "value": v.index()})).collect::<Vec<_>>(),
    })
}
