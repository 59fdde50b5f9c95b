//! Elementwise fusion: chains of unary, binary and unary-gradient nodes (forward and backward)
//! become one `Op::Elementwise` node evaluating the whole chain per element, so one kernel
//! replaces several and the intermediates never reach memory.
//!
//! A node is absorbed into its consumer when it is elementwise, the consumer is its only
//! reader (not a graph output or update), the consumer is elementwise too, and both have the
//! same shape (an intermediate is never broadcast). Fill leaves become constants. A group
//! needs at least two ops and at most [`MAX_FUSED_INPUTS`] distinct inputs.

use super::PassReport;
use super::rebuild::Rebuild;
use crate::error::Result;
use crate::ir::{ElemExpr, Graph, NodeId, Op, broadcast_shapes};

/// Most distinct inputs of a fused node (one storage binding each, plus the output, within
/// WebGPU's default of 8 storage buffers per stage).
pub const MAX_FUSED_INPUTS: usize = 7;

/// The group rooted at `root`: its expression over `leaves` (old node ids).
struct Group {
    expr: ElemExpr,
    leaves: Vec<NodeId>,
    members: Vec<NodeId>,
}

fn build(g: &Graph, id: NodeId, absorbed: &[bool], group: &mut Group, consts: bool) -> ElemExpr {
    let node = g.node(id);
    let is_member = id == *group.members.first().unwrap_or(&id) || absorbed[id.index()];
    if !is_member || !node.op.is_elementwise() {
        if consts {
            if let Op::Fill { value } = node.op {
                return ElemExpr::Const(value);
            }
        }
        let k = group.leaves.iter().position(|&l| l == id).unwrap_or_else(|| {
            group.leaves.push(id);
            group.leaves.len() - 1
        });
        return ElemExpr::Input(k);
    }
    if id != group.members[0] && !group.members.contains(&id) {
        group.members.push(id);
    }
    let arg = |k: usize, group: &mut Group| build(g, node.inputs[k], absorbed, group, consts);
    match &node.op {
        Op::Unary(u) => ElemExpr::Unary(*u, Box::new(arg(0, group))),
        Op::Binary(b) => {
            let x = arg(0, group);
            ElemExpr::Binary(*b, Box::new(x), Box::new(arg(1, group)))
        }
        Op::UnaryGrad(u) => {
            let x = arg(0, group);
            ElemExpr::UnaryGrad(*u, Box::new(x), Box::new(arg(1, group)))
        }
        Op::Elementwise { expr } => {
            let args: Vec<ElemExpr> = (0..node.inputs.len()).map(|k| arg(k, group)).collect();
            substitute(expr, &args)
        }
        Op::Select => {
            let (c, a) = (arg(0, group), arg(1, group));
            ElemExpr::select(c, a, arg(2, group))
        }
        _ => unreachable!("checked by is_elementwise"),
    }
}

fn substitute(e: &ElemExpr, args: &[ElemExpr]) -> ElemExpr {
    match e {
        ElemExpr::Input(i) => args[*i].clone(),
        ElemExpr::Const(c) => ElemExpr::Const(*c),
        ElemExpr::Unary(u, a) => ElemExpr::Unary(*u, Box::new(substitute(a, args))),
        ElemExpr::Binary(b, x, y) => ElemExpr::Binary(*b, Box::new(substitute(x, args)), Box::new(substitute(y, args))),
        ElemExpr::UnaryGrad(u, x, y) => {
            ElemExpr::UnaryGrad(*u, Box::new(substitute(x, args)), Box::new(substitute(y, args)))
        }
        ElemExpr::Select(c, a, b) => ElemExpr::select(substitute(c, args), substitute(a, args), substitute(b, args)),
    }
}

fn group_at(g: &Graph, root: NodeId, absorbed: &[bool]) -> Option<Group> {
    let shape = &g.node(root).ty.shape;
    // Constants for fills, unless the remaining inputs would no longer give the output shape.
    for consts in [true, false] {
        let mut group = Group {
            expr: ElemExpr::Const(0.0),
            leaves: Vec::new(),
            members: vec![root],
        };
        group.expr = build(g, root, absorbed, &mut group, consts);
        let covered = group
            .leaves
            .iter()
            .try_fold(Vec::new(), |acc: Vec<usize>, &l| broadcast_shapes(&acc, g.shape(l)))
            .is_some_and(|s| &s == shape);
        if !group.leaves.is_empty() && covered {
            return Some(group);
        }
    }
    None
}

/// Decides the groups: which nodes are absorbed into a consumer, and the group at each root.
fn plan_groups(graph: &Graph) -> (Vec<bool>, Vec<Option<Group>>) {
    // Readers per node: distinct consuming nodes, plus one per output or update use. A node
    // read twice by the same consumer is inlined twice (recomputed, never stored).
    let mut readers = vec![0usize; graph.nodes.len()];
    let mut consumer: Vec<Option<NodeId>> = vec![None; graph.nodes.len()];
    for (i, n) in graph.nodes.iter().enumerate() {
        let mut seen: Vec<NodeId> = Vec::new();
        for &inp in &n.inputs {
            if !seen.contains(&inp) {
                seen.push(inp);
                readers[inp.index()] += 1;
                consumer[inp.index()] = Some(NodeId(i as u32));
            }
        }
    }
    for &o in &graph.outputs {
        readers[o.index()] += 1;
    }
    for &(p, v) in &graph.updates {
        readers[p.index()] += 1;
        readers[v.index()] += 1;
    }
    let mut absorbed = vec![false; graph.nodes.len()];
    for (i, n) in graph.nodes.iter().enumerate() {
        if let (true, 1, Some(c)) = (n.op.is_elementwise(), readers[i], consumer[i]) {
            let cn = graph.node(c);
            absorbed[i] = cn.op.is_elementwise() && cn.ty.shape == n.ty.shape && n.inputs.iter().all(|&x| x != c);
        }
    }
    // Groups over the input limit are broken up: their members stay separate nodes.
    let mut groups: Vec<Option<Group>> = (0..graph.nodes.len()).map(|_| None).collect();
    for i in (0..graph.nodes.len()).rev() {
        let id = NodeId(i as u32);
        if absorbed[i] || !graph.nodes[i].op.is_elementwise() {
            continue;
        }
        match group_at(graph, id, &absorbed) {
            Some(gr) if gr.leaves.len() <= MAX_FUSED_INPUTS => groups[i] = Some(gr),
            Some(gr) => {
                for m in &gr.members[1..] {
                    absorbed[m.index()] = false;
                }
            }
            None => {}
        }
    }
    (absorbed, groups)
}

/// For every node, the fusion group it would join (`None` if it stays on its own): members of
/// one group share a number. Used by dumps to draw fused groups as clusters.
pub fn fusion_groups(graph: &Graph) -> Vec<Option<usize>> {
    let (_, groups) = plan_groups(graph);
    let mut out = vec![None; graph.nodes.len()];
    let mut k = 0;
    for g in groups.iter().flatten() {
        if g.members.len() >= 2 {
            for m in &g.members {
                out[m.index()] = Some(k);
            }
            k += 1;
        }
    }
    out
}

/// Fuses elementwise chains into single nodes.
pub fn fuse_elementwise(graph: Graph) -> Result<(Graph, PassReport)> {
    let (absorbed, mut groups) = plan_groups(&graph);
    // Members freed above become roots of their own (single-op) groups.
    let mut rb = Rebuild::new(&graph);
    let mut changes = Vec::new();
    for i in 0..graph.nodes.len() {
        let id = NodeId(i as u32);
        if absorbed[i] {
            continue;
        }
        match groups[i].take() {
            Some(gr) if gr.members.len() >= 2 => {
                let inputs: Vec<NodeId> = gr.leaves.iter().map(|&l| rb.get(l)).collect();
                let names: Vec<String> = gr
                    .members
                    .iter()
                    .rev()
                    .map(|m| format!("{m} {}", graph.node(*m).op.name()))
                    .collect();
                changes.push(format!("fused {} into {}", names.join(", "), gr.expr.describe()));
                rb.replace(id, Op::Elementwise { expr: gr.expr }, inputs);
            }
            _ => {
                rb.copy(id);
            }
        }
    }
    Ok(rb.report("fuse_elementwise", changes))
}
