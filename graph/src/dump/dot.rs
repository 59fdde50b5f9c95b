//! Graphviz DOT: one box per node (op, shape, layer, kernel), edges for data flow, fused
//! groups as clusters.

use super::NodeAnnotation;
use crate::ir::{Graph, Op};
use std::fmt::Write;

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The graph in DOT (`dot -Tsvg` renders it).
pub fn to_dot(g: &Graph, notes: Option<&[NodeAnnotation]>) -> String {
    let mut out =
        String::from("digraph fovea {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n");
    let node_line = |i: usize| {
        let n = &g.nodes[i];
        let mut label = format!(
            "%{i} {}\\n{}\\n{}",
            esc(&n.op.name()),
            esc(&n.ty.to_string()),
            esc(&n.layer)
        );
        if let Op::Elementwise { expr } | Op::GemmEpilogue { expr, .. } | Op::ReducePrologue { expr, .. } = &n.op {
            label.push_str(&format!("\\n{}", esc(&expr.describe())));
        }
        if let Some(note) = notes.and_then(|a| a.get(i)) {
            for k in &note.kernels {
                label.push_str(&format!("\\n{}", esc(&k.name)));
            }
        }
        let style = match n.op {
            Op::Input { .. } => ", style=filled, fillcolor=\"#d9ead3\"",
            Op::Param { .. } => ", style=filled, fillcolor=\"#fff2cc\"",
            Op::Elementwise { .. } | Op::GemmEpilogue { .. } | Op::ReducePrologue { .. } => {
                ", style=filled, fillcolor=\"#cfe2f3\""
            }
            _ => "",
        };
        format!("  n{i} [label=\"{label}\"{style}];\n")
    };
    let groups: Vec<Option<usize>> = match notes {
        Some(a) => (0..g.nodes.len()).map(|i| a.get(i).and_then(|n| n.group)).collect(),
        None => vec![None; g.nodes.len()],
    };
    let max_group = groups.iter().flatten().max().copied();
    if let Some(m) = max_group {
        for k in 0..=m {
            let _ = writeln!(
                out,
                "  subgraph cluster_{k} {{\n    label=\"fused group {k}\";\n    style=dashed;"
            );
            for (i, grp) in groups.iter().enumerate() {
                if *grp == Some(k) {
                    out.push_str("  ");
                    out.push_str(&node_line(i));
                }
            }
            out.push_str("  }\n");
        }
    }
    for (i, grp) in groups.iter().enumerate() {
        if grp.is_none() {
            out.push_str(&node_line(i));
        }
    }
    for (i, n) in g.nodes.iter().enumerate() {
        for inp in &n.inputs {
            let _ = writeln!(out, "  n{} -> n{i};", inp.index());
        }
    }
    for (k, o) in g.outputs.iter().enumerate() {
        let _ = writeln!(
            out,
            "  out{k} [label=\"output {k}\", shape=ellipse];\n  n{} -> out{k};",
            o.index()
        );
    }
    for (p, v) in &g.updates {
        let _ = writeln!(
            out,
            "  n{} -> n{} [style=dashed, label=\"update\"];",
            v.index(),
            p.index()
        );
    }
    out.push_str("}\n");
    out
}
