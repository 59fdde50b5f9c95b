//! Memory planning: liveness of every intermediate tensor over the schedule (node order, the
//! order kernels are dispatched), in-place reuse where an elementwise node's input dies at that
//! node, and a packing of the resulting allocations at aligned offsets into a few arena
//! buffers. Inputs, parameters (weights, optimizer state) and constants (uploaded once) are
//! kept apart in buffers of their own; outputs and the sources of state updates live to the end.
//!
//! Two tensors share bytes only if their lifetimes are disjoint, or if one is computed in place
//! over the other by an elementwise kernel that reads each element before writing it at the
//! same index (the kernel then binds the shared bytes once, read-write; see
//! `fovea_kernels::lower_planned`).

use crate::ir::{Graph, Node, NodeId, Op};

/// Offsets and sizes are rounded up to this many bytes unless [`PlanOptions`] say otherwise
/// (the largest storage-buffer offset alignment WebGPU allows an adapter to require).
pub const DEFAULT_ALIGN: u64 = 256;

/// What the planner may assume about the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanOptions {
    /// Offset alignment of storage-buffer bindings (the adapter's
    /// `min_storage_buffer_offset_alignment`), a power of two.
    pub align: u64,
    /// Largest arena; a tensor that does not fit in a started arena opens a new one.
    pub max_arena_bytes: u64,
    /// Whether elementwise nodes may write over an input that dies there.
    pub in_place: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            align: DEFAULT_ALIGN,
            max_arena_bytes: 1 << 30,
            in_place: true,
        }
    }
}

/// Where one planned tensor lives: `size` bytes at `offset` in arena `arena`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// Index into [`MemoryPlan::arenas`].
    pub arena: usize,
    /// Byte offset, a multiple of the plan's alignment.
    pub offset: u64,
    /// Bytes reserved (the tensor's size rounded up to the alignment).
    pub size: u64,
}

/// Where every intermediate tensor lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryPlan {
    /// Size in bytes of each arena (one device buffer each).
    pub arenas: Vec<u64>,
    /// Per node: its placement, for planned tensors (storage roots that are neither inputs,
    /// parameters nor views).
    pub place: Vec<Option<Placement>>,
    /// Per node: the input whose bytes it overwrites, when computed in place. An intermediate
    /// (then both share one placement) or a parameter the node is the state update of (then
    /// the node has no placement: it lives in the parameter's storage).
    pub in_place: Vec<Option<NodeId>>,
    /// Parameter updates (computed in place over their parameter) that may run together, as
    /// one multi-tensor dispatch at the place of the last of them: nothing else reads their
    /// results or their parameters in between, and what they read lives until then. Empty
    /// when fewer than two qualify.
    pub deferred_updates: Vec<NodeId>,
    /// Per node: the schedule index of its last reader (`usize::MAX`: lives to the end).
    pub last_use: Vec<usize>,
    /// Bytes if every planned tensor had its own buffer.
    pub baseline_bytes: u64,
    /// Bytes of all arenas together: the planned peak.
    pub planned_bytes: u64,
    /// Bytes of inputs and parameters (not planned, the same in both figures).
    pub fixed_bytes: u64,
}

impl MemoryPlan {
    /// The placement of the bytes holding `id` (following views).
    pub fn placement(&self, graph: &Graph, id: NodeId) -> Option<Placement> {
        self.place[graph.storage_root(id).index()]
    }
}

fn aligned(graph: &Graph, id: NodeId, align: u64) -> u64 {
    (graph.ty(id).size_bytes() as u64).div_ceil(align).max(1) * align
}

/// Whether elementwise node `node` reads the bytes of `r` only at its own output index (every
/// input stored in `r` has the output's shape), so it may store over them.
fn reads_only_at_own_index(graph: &Graph, node: &Node, r: NodeId) -> bool {
    node.inputs
        .iter()
        .filter(|&&x| graph.storage_root(x) == r)
        .all(|&x| graph.shape(x) == node.ty.shape.as_slice())
}

/// The parameter updates that can be deferred to the place of the last of them (see
/// [`MemoryPlan::deferred_updates`]): starting from every update in place over its parameter,
/// drops those whose result or parameter another node reads after them and before the last,
/// until none does.
fn defer_updates(graph: &Graph, param_update: &[Option<NodeId>]) -> Vec<NodeId> {
    let mut members: Vec<NodeId> = (0..graph.nodes.len())
        .filter(|&i| param_update[i].is_some())
        .map(|i| NodeId(i as u32))
        .collect();
    loop {
        if members.len() < 2 {
            return Vec::new();
        }
        let last = members[members.len() - 1];
        let mut drop: Vec<NodeId> = Vec::new();
        for (k, &m) in members.iter().enumerate() {
            let p = param_update[m.index()];
            let read_early = (m.index() + 1..last.index()).any(|j| {
                let id = NodeId(j as u32);
                !members.contains(&id)
                    && graph.node(id).inputs.iter().any(|&x| {
                        let r = graph.storage_root(x);
                        r == m || Some(r) == p
                    })
            });
            // A later member reading this one's old parameter would see the new value.
            let read_by_member = members[k + 1..]
                .iter()
                .any(|&o| graph.node(o).inputs.iter().any(|&x| Some(graph.storage_root(x)) == p));
            // Nor may anything overwrite in between a parameter this member reads.
            let overwritten = graph.node(m).inputs.iter().any(|&x| {
                let r = graph.storage_root(x);
                (m.index() + 1..=last.index()).any(|j| param_update[j] == Some(r))
            });
            if read_early || read_by_member || overwritten {
                drop.push(m);
            }
        }
        if drop.is_empty() {
            return members;
        }
        members.retain(|m| !drop.contains(m));
    }
}

/// Plans the memory of `graph` executed in node order, with [`PlanOptions::default`].
pub fn plan_memory(graph: &Graph) -> MemoryPlan {
    plan_memory_with(graph, &PlanOptions::default())
}

/// Plans the memory of `graph` executed in node order.
pub fn plan_memory_with(graph: &Graph, opts: &PlanOptions) -> MemoryPlan {
    let n = graph.nodes.len();
    let align = opts.align.max(4).next_power_of_two();
    let mut last_use = vec![0usize; n];
    for (i, node) in graph.nodes.iter().enumerate() {
        last_use[i] = last_use[i].max(i);
        for &inp in &node.inputs {
            let r = graph.storage_root(inp).index();
            last_use[r] = last_use[r].max(i);
        }
    }
    for &o in &graph.outputs {
        last_use[graph.storage_root(o).index()] = usize::MAX;
    }
    for &(_, v) in &graph.updates {
        last_use[graph.storage_root(v).index()] = usize::MAX;
    }
    let planned = |id: NodeId| {
        let op = &graph.node(id).op;
        !op.is_view() && !matches!(op, Op::Input { .. } | Op::Param { .. } | Op::Constant { .. })
    };

    // State updates computed in place over their parameter: the new value is written straight
    // into the parameter's storage (no copy at the end of the run), when the update's node is
    // elementwise, the parameter's last reader and reads it at its own index.
    let param_update: Vec<Option<NodeId>> = (0..n)
        .map(|i| {
            let node = &graph.nodes[i];
            let id = NodeId(i as u32);
            if !opts.in_place || !node.op.is_elementwise() {
                return None;
            }
            let mut targets = graph.updates.iter().filter(|&&(_, v)| v == id).map(|&(p, _)| p);
            let p = targets.next()?;
            let single = targets.next().is_none() && graph.updates.iter().filter(|&&(q, _)| q == p).count() == 1;
            (single
                && matches!(graph.node(p).op, Op::Param { .. })
                && last_use[p.index()] == i
                && graph.ty(p).dtype == node.ty.dtype
                && graph.shape(p) == node.ty.shape.as_slice()
                && node.inputs.contains(&p)
                && reads_only_at_own_index(graph, node, p))
            .then_some(p)
        })
        .collect();
    let deferred = defer_updates(graph, &param_update);
    // A deferred update runs at the place of the last one: what it reads lives until then.
    if let Some(&last) = deferred.last() {
        for &m in &deferred {
            for &x in &graph.node(m).inputs {
                let r = graph.storage_root(x).index();
                if last_use[r] != usize::MAX {
                    last_use[r] = last_use[r].max(last.index());
                }
            }
        }
    }

    // Allocations: a tensor, or a chain of tensors each computed in place over the previous.
    // `alloc_of[i]` is the allocation of planned node i; an allocation lives from the
    // definition of its first tensor to the last use of its last.
    let mut alloc_of: Vec<Option<usize>> = vec![None; n];
    let mut allocs: Vec<(u64, usize, usize)> = Vec::new(); // (bytes, first def, last use)
    let mut in_place = vec![None; n];
    let (mut baseline, mut fixed) = (0u64, 0u64);
    for (i, node) in graph.nodes.iter().enumerate() {
        let id = NodeId(i as u32);
        if node.op.is_view() {
            continue;
        }
        let size = aligned(graph, id, align);
        if !planned(id) {
            fixed += size;
            continue;
        }
        baseline += size;
        let over = (opts.in_place && node.op.is_elementwise())
            .then(|| {
                node.inputs.iter().copied().find(|&inp| {
                    let r = graph.storage_root(inp);
                    planned(r)
                        && last_use[r.index()] == i
                        && aligned(graph, r, align) == size
                        && graph.ty(r).dtype == node.ty.dtype
                        && reads_only_at_own_index(graph, node, r)
                })
            })
            .flatten();
        let over_param = param_update[i];
        if let Some(p) = over_param {
            in_place[i] = Some(p);
            continue;
        }
        match over {
            Some(inp) => {
                let r = graph.storage_root(inp);
                let a = alloc_of[r.index()].expect("planned inputs come first");
                allocs[a].2 = last_use[i];
                alloc_of[i] = Some(a);
                in_place[i] = Some(r);
            }
            None => {
                alloc_of[i] = Some(allocs.len());
                allocs.push((size, i, last_use[i]));
            }
        }
    }

    // Greedy by size: largest first, each at the lowest offset of the first arena where it
    // overlaps no placed allocation whose lifetime overlaps its own.
    let mut order: Vec<usize> = (0..allocs.len()).collect();
    order.sort_by_key(|&a| (std::cmp::Reverse(allocs[a].0), allocs[a].1));
    let mut arenas: Vec<u64> = Vec::new();
    let mut placed: Vec<Vec<(u64, u64, usize, usize)>> = Vec::new(); // per arena: (offset, size, def, last)
    let mut where_: Vec<Placement> = vec![
        Placement {
            arena: 0,
            offset: 0,
            size: 0
        };
        allocs.len()
    ];
    for a in order {
        let (size, def, last) = allocs[a];
        let mut chosen = None;
        for (k, list) in placed.iter().enumerate() {
            let mut busy: Vec<(u64, u64)> = list
                .iter()
                .filter(|&&(_, _, d, l)| d <= last && def <= l)
                .map(|&(o, s, _, _)| (o, o + s))
                .collect();
            busy.sort_unstable();
            let mut off = 0u64;
            for (lo, hi) in busy {
                if lo >= off + size {
                    break;
                }
                off = off.max(hi);
            }
            if off + size <= opts.max_arena_bytes || off == 0 {
                chosen = Some((k, off));
                break;
            }
        }
        let (k, off) = chosen.unwrap_or_else(|| {
            arenas.push(0);
            placed.push(Vec::new());
            (arenas.len() - 1, 0)
        });
        placed[k].push((off, size, def, last));
        arenas[k] = arenas[k].max(off + size);
        where_[a] = Placement {
            arena: k,
            offset: off,
            size,
        };
    }
    let place = (0..n)
        .map(|i| {
            alloc_of[i].map(|a| Placement {
                size: aligned(graph, NodeId(i as u32), align),
                ..where_[a]
            })
        })
        .collect();
    MemoryPlan {
        planned_bytes: arenas.iter().sum(),
        arenas,
        place,
        in_place,
        deferred_updates: deferred,
        last_use,
        baseline_bytes: baseline,
        fixed_bytes: fixed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{BinaryOp, TensorType, UnaryOp};
    use proptest::prelude::*;

    /// Checks that no two planned tensors whose bytes overlap are live at once, unless the
    /// later one is computed in place over the earlier, which dies there.
    fn check_disjoint(g: &Graph, plan: &MemoryPlan) {
        let def_last = |i: usize| (i, plan.last_use[i]);
        for a in 0..g.nodes.len() {
            let Some(pa) = plan.place[a] else { continue };
            assert_eq!(pa.offset % 4, 0);
            assert!(pa.offset + pa.size <= plan.arenas[pa.arena]);
            for b in a + 1..g.nodes.len() {
                let Some(pb) = plan.place[b] else { continue };
                let overlap =
                    pa.arena == pb.arena && pa.offset < pb.offset + pb.size && pb.offset < pa.offset + pa.size;
                if !overlap {
                    continue;
                }
                let ((_, la), (db, _)) = (def_last(a), def_last(b));
                // Sharing is fine when a is dead before b is written, or when b overwrites a
                // in place (possibly through a chain of in-place nodes) as a's last reader.
                let mut chain = b;
                let mut in_chain = false;
                while let Some(prev) = plan.in_place[chain] {
                    if prev.index() == a {
                        in_chain = true;
                        break;
                    }
                    chain = prev.index();
                }
                assert!(
                    la < db || (in_chain && la <= db),
                    "%{a} (live to {la}) and %{b} overlap: {pa:?} {pb:?}"
                );
            }
        }
    }

    #[test]
    fn chains_run_in_place_and_live_tensors_do_not_share() {
        let mut g = Graph::new();
        let x = g.input("x", TensorType::f32(vec![1024])).unwrap();
        let first = g.push(Op::Unary(UnaryOp::Exp), &[x], "e").unwrap();
        let mut prev = first;
        let mut all = vec![first];
        for _ in 0..5 {
            prev = g.push(Op::Unary(UnaryOp::Relu), &[prev], "r").unwrap();
            all.push(prev);
        }
        let keep = all[1];
        let sum = g.push(Op::Binary(BinaryOp::Add), &[prev, keep], "s").unwrap();
        g.outputs.push(sum);
        let plan = plan_memory(&g);
        assert_eq!(plan.baseline_bytes, 7 * 4096);
        assert!(plan.planned_bytes <= 2 * 4096, "{plan:?}");
        assert_eq!(plan.arenas.len(), 1);
        // all[0] dies at all[1], which overwrites it; all[1] is kept, so all[2] may not.
        assert_eq!(plan.in_place[all[1].index()], Some(all[0]));
        assert_eq!(plan.in_place[all[2].index()], None);
        assert_eq!(plan.in_place[all[3].index()], Some(all[2]));
        check_disjoint(&g, &plan);
        // Without in-place reuse the same graph needs more, and still no overlap.
        let no = plan_memory_with(
            &g,
            &PlanOptions {
                in_place: false,
                ..PlanOptions::default()
            },
        );
        assert!(no.in_place.iter().all(Option::is_none));
        assert!(no.planned_bytes >= plan.planned_bytes);
        check_disjoint(&g, &no);
        assert_eq!(plan.fixed_bytes, 4096);
    }

    #[test]
    fn broadcast_reads_block_in_place_and_small_arenas_split() {
        let mut g = Graph::new();
        let x = g.input("x", TensorType::f32(vec![4, 64])).unwrap();
        let a = g.push(Op::Unary(UnaryOp::Exp), &[x], "a").unwrap();
        let row = g
            .push(
                Op::Reduce {
                    op: crate::ir::ReduceOp::Sum,
                    axes: vec![0],
                    keep_dims: true,
                },
                &[a],
                "row",
            )
            .unwrap();
        // `row` (1, 64) is read broadcast over (4, 64): the output may not overwrite it.
        let b = g.push(Op::Binary(BinaryOp::Mul), &[a, row], "b").unwrap();
        g.outputs.push(b);
        let plan = plan_memory_with(
            &g,
            &PlanOptions {
                align: 32,
                max_arena_bytes: 1024,
                in_place: true,
            },
        );
        assert_eq!(plan.in_place[b.index()], Some(a));
        assert!(plan.arenas.iter().all(|&s| s <= 1024));
        check_disjoint(&g, &plan);
    }

    #[test]
    fn updates_run_in_place_over_their_parameter_when_it_is_last_read() {
        for read_after in [false, true] {
            let mut g = Graph::new();
            let x = g.input("x", TensorType::f32(vec![16])).unwrap();
            let p = g.param("w", &[16], true, "dense").unwrap();
            let y = g.push(Op::Binary(BinaryOp::Mul), &[x, p], "dense").unwrap();
            let step = g.push(Op::Unary(UnaryOp::Scale(0.1)), &[y], "opt").unwrap();
            let v = g.push(Op::Binary(BinaryOp::Sub), &[p, step], "opt").unwrap();
            g.updates.push((p, v));
            if read_after {
                // The old value is still needed after the update: no in place.
                let z = g.push(Op::Binary(BinaryOp::Add), &[p, v], "late").unwrap();
                g.outputs.push(z);
            } else {
                g.outputs.push(y);
            }
            let plan = plan_memory(&g);
            if read_after {
                // (It may still overwrite the dying intermediate `step`.)
                assert_ne!(plan.in_place[v.index()], Some(p));
                assert!(plan.place[v.index()].is_some());
            } else {
                assert_eq!(plan.in_place[v.index()], Some(p));
                assert_eq!(plan.place[v.index()], None, "lives in the parameter's storage");
            }
            check_disjoint(&g, &plan);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Random chains and diamonds of elementwise ops and reductions: placements never
        /// overlap while both tensors live, and offsets respect the alignment.
        #[test]
        fn random_graphs_never_overlap_live_tensors(
            ops in prop::collection::vec((0usize..4, 0usize..8, 0usize..8), 1..24),
            align in prop::sample::select(vec![4u64, 32, 256]),
            max_arena in prop::sample::select(vec![512u64, 4096, 1 << 20]),
        ) {
            let mut g = Graph::new();
            let x = g.input("x", TensorType::f32(vec![8, 16])).unwrap();
            let mut nodes = vec![x];
            for (kind, a, b) in ops {
                let a = nodes[a % nodes.len()];
                let b = nodes[b % nodes.len()];
                let id = match kind {
                    0 => g.push(Op::Unary(UnaryOp::Relu), &[a], "u").unwrap(),
                    1 => g.push(Op::Binary(BinaryOp::Add), &[a, b], "b").unwrap(),
                    2 => {
                        let r = g
                            .push(Op::Reduce { op: crate::ir::ReduceOp::Max, axes: vec![1], keep_dims: true }, &[a], "r")
                            .unwrap();
                        g.push(Op::Binary(BinaryOp::Sub), &[a, r], "s").unwrap()
                    }
                    _ => g.reshape(a, &[8, 16], "v").unwrap(),
                };
                nodes.push(id);
            }
            g.outputs.push(*nodes.last().unwrap());
            let plan = plan_memory_with(&g, &PlanOptions { align, max_arena_bytes: max_arena, in_place: true });
            for p in plan.place.iter().flatten() {
                prop_assert_eq!(p.offset % align, 0);
            }
            check_disjoint(&g, &plan);
        }
    }
}
