//! The multi-tensor optimizer update: the elementwise nodes that the memory plan computes in
//! place over their parameters (the new value of a weight, of a momentum or of a second
//! moment, see [`fovea_graph::plan`]) are evaluated by one dispatch instead of one each.
//!
//! Members that read one another (Adam's new weight reads the new moments at the same element)
//! form a segment: one invocation per element evaluates a segment's members in order, keeping
//! intermediate results in registers. Every other operand is a tensor read at the same element
//! or a one-element scalar (learning rate, step size). The fused dispatch takes the place of
//! the last member's. The memory plan picks the members (`MemoryPlan::deferred_updates`:
//! nothing else reads their results or parameters in between, and what they read lives until
//! the last); fusion is skipped (the per-node kernels stay, which is still correct) when an
//! operand is broadcast, segments would read what another writes, or the buffers exceed the
//! binding limits. `FOVEA_DEBUG_UPDATES=1` prints why.

use crate::program::Loc;
use fovea_graph::ir::{Graph, NodeId, Op};
use fovea_graph::plan::MemoryPlan;
use fovea_kernels::multi_tensor::{Member, MultiTensorSpec, Operand, Segment, Slot, multi_tensor_kernel};
use fovea_kernels::{BufferRef, KernelInstance, Target, node_expr};

/// Whether `id` is computed in place over a parameter (a state update).
fn updates_param(graph: &Graph, plan: &MemoryPlan, id: NodeId) -> bool {
    plan.place[id.index()].is_none()
        && plan.in_place[id.index()].is_some_and(|p| matches!(graph.node(p).op, Op::Param { .. }))
}

/// The buffers bound so far and the node standing for each.
struct Bindings<'a> {
    buffers: Vec<(&'a wgpu::Buffer, NodeId)>,
}

impl<'a> Bindings<'a> {
    fn slot(&mut self, loc: &'a Loc, node: NodeId) -> Slot {
        let binding = match self.buffers.iter().position(|(b, _)| *b == &loc.buffer) {
            Some(k) => k,
            None => {
                self.buffers.push((&loc.buffer, node));
                self.buffers.len() - 1
            }
        };
        Slot {
            binding,
            offset: loc.offset / 4,
        }
    }
}

/// Replaces the kernels of the in-place parameter updates of `graph` by one multi-tensor
/// kernel, when the conditions of the module documentation hold; else returns `kernels`
/// unchanged. `locs[i]` is where storage root `i` lives.
pub(crate) fn fuse_updates(
    graph: &Graph,
    plan: &MemoryPlan,
    kernels: Vec<KernelInstance>,
    locs: &[Option<Loc>],
    target: &Target,
    max_binding_bytes: u64,
) -> Vec<KernelInstance> {
    let members = &plan.deferred_updates;
    if members.len() < 2 || !members.iter().all(|&m| updates_param(graph, plan, m)) {
        return kernels;
    }
    match build(graph, plan, members, locs, target, max_binding_bytes) {
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
            out
        }
        Err(why) => {
            if std::env::var_os("FOVEA_DEBUG_UPDATES").is_some() {
                eprintln!("fovea: parameter updates not fused: {why}");
            }
            kernels
        }
    }
}

fn build(
    graph: &Graph,
    plan: &MemoryPlan,
    members: &[NodeId],
    locs: &[Option<Loc>],
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
            let expr = node_expr(&node.op).ok_or_else(|| format!("{m} is not elementwise"))?;
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
                let loc = locs[r.index()].as_ref().ok_or_else(|| format!("{r} has no location"))?;
                let slot = bindings.slot(loc, r);
                if graph.shape(x) == shape.as_slice() {
                    operands.push(Operand::Tensor(slot));
                } else if graph.ty(x).numel() == 1 {
                    operands.push(Operand::Scalar(slot));
                } else {
                    return Err(format!("{m} reads {r} broadcast"));
                }
            }
            let out_loc = locs[m.index()].as_ref().ok_or_else(|| format!("{m} has no location"))?;
            let out = Some(bindings.slot(out_loc, m));
            seg_members.push(Member { expr, operands, out });
        }
        segments.push(Segment {
            len,
            members: seg_members,
        });
    }
    if bindings.buffers.iter().any(|(b, _)| b.size() > max_binding_bytes) {
        return Err("a buffer exceeds the largest storage binding".into());
    }
    let spec = MultiTensorSpec {
        node: last,
        bindings: bindings.buffers.iter().map(|&(_, n)| BufferRef::Buffer(n)).collect(),
        segments,
    };
    multi_tensor_kernel(&spec, target).map_err(|e| e.to_string())
}
