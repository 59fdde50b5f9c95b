//! The multi-tensor optimizer update: the elementwise nodes that the memory plan computes in
//! place over their parameters (the new value of a weight, of a momentum or of a second
//! moment, see [`fovea_graph::plan`]) are evaluated by one dispatch instead of one each. The
//! executor says where every tensor lives ([`Location`]); the graph tool uses a layout of its
//! own to show the same kernel.
//!
//! Members that read one another (Adam's new weight reads the new moments at the same element)
//! form a segment: one invocation per element evaluates a segment's members in order, keeping
//! intermediate results in registers. Every other operand is a tensor read at the same element
//! or a one-element scalar (learning rate, step size). The fused dispatch takes the place of
//! the last member's. The memory plan picks the members (`MemoryPlan::deferred_updates`:
//! nothing else reads their results or parameters in between, and what they read lives until
//! the last); fusion is skipped (the per-node kernels stay, which is still correct) when an
//! operand is broadcast, segments would read what another writes, or the buffers exceed the
//! binding limits.

use crate::multi_tensor::{Member, MultiTensorSpec, Operand, Segment, Slot, multi_tensor_kernel};
use crate::{BufferRef, KernelInstance, Target};
use fovea_graph::ir::{Graph, NodeId, Op};
use fovea_graph::plan::MemoryPlan;

/// Where a tensor's bytes are, as the executor allocated them: a buffer (any key that is
/// equal for equal buffers), the byte offset in it and the buffer's size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Identifies the buffer.
    pub buffer: usize,
    /// Byte offset of the tensor in the buffer.
    pub offset: u64,
    /// Size of the whole buffer in bytes.
    pub buffer_size: u64,
}

/// Whether `id` is computed in place over a parameter (a state update).
fn updates_param(graph: &Graph, plan: &MemoryPlan, id: NodeId) -> bool {
    plan.place[id.index()].is_none()
        && plan.in_place[id.index()].is_some_and(|p| matches!(graph.node(p).op, Op::Param { .. }))
}

/// The buffers bound so far and the node standing for each.
struct Bindings {
    buffers: Vec<(Location, NodeId)>,
}

impl Bindings {
    fn slot(&mut self, loc: Location, node: NodeId) -> Slot {
        let binding = match self.buffers.iter().position(|(b, _)| b.buffer == loc.buffer) {
            Some(k) => k,
            None => {
                self.buffers.push((loc, node));
                self.buffers.len() - 1
            }
        };
        Slot {
            binding,
            offset: loc.offset / 4,
        }
    }
}

/// Replaces the kernels of the deferred parameter updates of `plan` by one multi-tensor
/// kernel, when the conditions of the module documentation hold; else returns `kernels`
/// unchanged, with the reason. `locate(root)` is where a storage root lives.
pub fn fuse_updates(
    graph: &Graph,
    plan: &MemoryPlan,
    kernels: Vec<KernelInstance>,
    locate: &dyn Fn(NodeId) -> Option<Location>,
    target: &Target,
    max_binding_bytes: u64,
) -> (Vec<KernelInstance>, Option<String>) {
    let members = &plan.deferred_updates;
    if members.len() < 2 || !members.iter().all(|&m| updates_param(graph, plan, m)) {
        return (kernels, None);
    }
    match build(graph, plan, members, locate, target, max_binding_bytes) {
        Ok(fused) => {
            let last = *members.last().expect("two or more members");
            let mut out = Vec::with_capacity(kernels.len());
            for k in kernels {
                if k.node == last {
                    out.push(fused.clone());
                } else if !members.contains(&k.node) {
                    out.push(k);
                }
            }
            (out, None)
        }
        Err(why) => (kernels, Some(why)),
    }
}

fn build(
    graph: &Graph,
    plan: &MemoryPlan,
    members: &[NodeId],
    locate: &dyn Fn(NodeId) -> Option<Location>,
    target: &Target,
    max_binding_bytes: u64,
) -> Result<KernelInstance, String> {
    let last = members[members.len() - 1];
    let param_of = |id: NodeId| plan.in_place[id.index()];
    // The plan chose the members so that nothing else reads their results or parameters
    // between the first and the last, and kept what they read alive until then.
    // Segments: members joined by reading one another, in node order.
    let mut segment_of: Vec<usize> = (0..members.len()).collect();
    fn find(s: &mut [usize], i: usize) -> usize {
        let mut i = i;
        while s[i] != i {
            s[i] = s[s[i]];
            i = s[i];
        }
        i
    }
    for (k, &m) in members.iter().enumerate() {
        for &x in &graph.node(m).inputs {
            if let Some(j) = members.iter().position(|&o| o == graph.storage_root(x)) {
                let (a, b) = (find(&mut segment_of, k), find(&mut segment_of, j));
                segment_of[a] = b;
            }
        }
    }
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    for k in 0..members.len() {
        let root = find(&mut segment_of, k);
        match groups.iter_mut().find(|(r, _)| *r == root) {
            Some((_, list)) => list.push(k),
            None => groups.push((root, vec![k])),
        }
    }
    let mut bindings = Bindings { buffers: Vec::new() };
    let mut segments = Vec::with_capacity(groups.len());
    for (_, list) in &groups {
        let shape = &graph.node(members[list[0]]).ty.shape;
        let len = graph.node(members[list[0]]).ty.numel() as u64;
        let mut seg_members = Vec::with_capacity(list.len());
        for &k in list {
            let m = members[k];
            let node = graph.node(m);
            if &node.ty.shape != shape {
                return Err(format!("{m} and {} differ in shape", members[list[0]]));
            }
            let expr = node
                .op
                .elementwise_expr()
                .ok_or_else(|| format!("{m} is not elementwise"))?;
            let mut operands = Vec::with_capacity(node.inputs.len());
            for &x in &node.inputs {
                let r = graph.storage_root(x);
                if let Some(pos) = list.iter().position(|&o| members[o] == r) {
                    if members[list[pos]].index() >= m.index() || graph.shape(x) != shape.as_slice() {
                        return Err(format!("{m} reads {r} out of order or broadcast"));
                    }
                    operands.push(Operand::Member(pos));
                    continue;
                }
                // A parameter another segment updates would be read while it is written.
                if members
                    .iter()
                    .any(|&o| param_of(o) == Some(r) && !list.iter().any(|&l| members[l] == o))
                {
                    return Err(format!("{m} reads {r}, which another segment updates"));
                }
                let loc = locate(r).ok_or_else(|| format!("{r} has no location"))?;
                let slot = bindings.slot(loc, r);
                if graph.shape(x) == shape.as_slice() {
                    operands.push(Operand::Tensor(slot));
                } else if graph.ty(x).numel() == 1 {
                    operands.push(Operand::Scalar(slot));
                } else {
                    return Err(format!("{m} reads {r} broadcast"));
                }
            }
            let out_loc = locate(m).ok_or_else(|| format!("{m} has no location"))?;
            let out = Some(bindings.slot(out_loc, m));
            seg_members.push(Member { expr, operands, out });
        }
        segments.push(Segment {
            len,
            members: seg_members,
        });
    }
    if bindings.buffers.iter().any(|(b, _)| b.buffer_size > max_binding_bytes) {
        return Err("a buffer exceeds the largest storage binding".into());
    }
    let spec = MultiTensorSpec {
        node: last,
        bindings: bindings.buffers.iter().map(|&(_, n)| BufferRef::Buffer(n)).collect(),
        segments,
    };
    multi_tensor_kernel(&spec, target).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lower_planned;
    use fovea_graph::ir::{BinaryOp, TensorType, UnaryOp};
    use fovea_graph::plan::plan_memory;

    /// Two parameters updated by SGD with momentum (`m' = 0.9 m - lr g`, `p' = p + s m'`), the
    /// gradients computed from an input; with `broadcast` the factor `s` of the parameter
    /// update is a `(3,)` vector read broadcast over the `(2, 3)` parameter, which the
    /// multi-tensor kernel cannot take, else a one-element scalar.
    fn sgd_graph(broadcast: bool) -> Graph {
        use fovea_graph::ir::ElemExpr as E;
        let mut g = Graph::new();
        let x = g.input("x", TensorType::f32(vec![2, 3])).unwrap();
        let lr = g.input("lr", TensorType::f32(vec![1])).unwrap();
        let s = g
            .input("s", TensorType::f32(vec![if broadcast { 3 } else { 1 }]))
            .unwrap();
        let inp = |k| Box::new(E::Input(k));
        for name in ["a", "b"] {
            let p = g.param(name, &[2, 3], true, name).unwrap();
            let m = g.param(&format!("m/{name}"), &[2, 3], false, "optimizer").unwrap();
            let grad = g.push(Op::Binary(BinaryOp::Mul), &[x, p], name).unwrap();
            let step = g.push(Op::Binary(BinaryOp::Mul), &[grad, lr], "optimizer").unwrap();
            let m_expr = E::Binary(BinaryOp::Sub, Box::new(E::Unary(UnaryOp::Scale(0.9), inp(0))), inp(1));
            let m2 = g
                .push(Op::Elementwise { expr: m_expr }, &[m, step], "optimizer")
                .unwrap();
            let p_expr = E::Binary(
                BinaryOp::Add,
                inp(0),
                Box::new(E::Binary(BinaryOp::Mul, inp(1), inp(2))),
            );
            let p2 = g
                .push(Op::Elementwise { expr: p_expr }, &[p, m2, s], "optimizer")
                .unwrap();
            g.updates.push((m, m2));
            g.updates.push((p, p2));
        }
        g
    }

    fn layout(g: &Graph, plan: &MemoryPlan) -> Vec<Option<Location>> {
        let mut locs = vec![None; g.nodes.len()];
        let mut state_end = 0;
        for (i, n) in g.nodes.iter().enumerate() {
            locs[i] = match (&n.op, plan.place[i], plan.in_place[i]) {
                (Op::Param { .. }, ..) => {
                    state_end += 256;
                    Some(Location {
                        buffer: 100,
                        offset: state_end - 256,
                        buffer_size: 4096,
                    })
                }
                (_, Some(p), _) => Some(Location {
                    buffer: p.arena,
                    offset: p.offset,
                    buffer_size: plan.arenas[p.arena],
                }),
                (_, None, Some(r)) => locs[r.index()],
                (Op::Input { .. }, ..) => Some(Location {
                    buffer: 200 + i,
                    offset: 0,
                    buffer_size: 256,
                }),
                _ => None,
            };
        }
        locs
    }

    #[test]
    fn sgd_updates_become_one_dispatch_unless_an_operand_is_broadcast() {
        let t = Target::cpu();
        for broadcast in [false, true] {
            let g = sgd_graph(broadcast);
            let plan = plan_memory(&g);
            assert_eq!(plan.deferred_updates.len(), 4, "{plan:?}");
            let kernels = lower_planned(&g, &t, &plan).unwrap();
            let before = kernels.len();
            let locs = layout(&g, &plan);
            let (fused, why) = fuse_updates(&g, &plan, kernels, &|id| locs[g.storage_root(id).index()], &t, 1 << 27);
            let multi: Vec<&KernelInstance> = fused.iter().filter(|k| k.family == "multi_tensor").collect();
            if broadcast {
                assert!(multi.is_empty());
                assert_eq!(fused.len(), before);
                assert!(why.unwrap().contains("broadcast"));
            } else {
                assert_eq!(why, None);
                assert_eq!(multi.len(), 1);
                assert_eq!(fused.len(), before - 3, "four update kernels became one");
                crate::validate_wgsl(&multi[0].name, &multi[0].source).unwrap();
                // The fused dispatch sits where the last update was.
                assert_eq!(fused.last().unwrap().family, "multi_tensor");
            }
        }
    }
}
