//! Memory planning: liveness of every intermediate tensor over the schedule (node order, the
//! order kernels are dispatched), and a packing of tensors with disjoint lifetimes into shared
//! slots. Inputs and parameters (weights, optimizer state) are kept apart; outputs and the
//! sources of state updates live to the end. A tensor never shares a slot with a tensor that
//! is still live when it is written, so no kernel reads and writes the same buffer.

use crate::ir::{Graph, NodeId, Op};

/// Slot sizes are rounded up to this many bytes (the largest storage-buffer offset alignment
/// of common adapters).
pub const SLOT_ALIGN: u64 = 256;

/// Where every intermediate tensor lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryPlan {
    /// Size in bytes of each slot (one device buffer each).
    pub slots: Vec<u64>,
    /// Per node: its slot, for planned tensors (storage roots that are neither inputs,
    /// parameters nor views).
    pub slot_of: Vec<Option<usize>>,
    /// Per node: the schedule index of its last reader (`usize::MAX`: lives to the end).
    pub last_use: Vec<usize>,
    /// Bytes if every planned tensor had its own buffer.
    pub baseline_bytes: u64,
    /// Bytes of all slots together.
    pub planned_bytes: u64,
    /// Bytes of inputs and parameters (not planned, the same in both figures).
    pub fixed_bytes: u64,
}

fn bytes(graph: &Graph, id: NodeId) -> u64 {
    (graph.ty(id).size_bytes() as u64).div_ceil(SLOT_ALIGN).max(1) * SLOT_ALIGN
}

/// Plans the memory of `graph` executed in node order.
pub fn plan_memory(graph: &Graph) -> MemoryPlan {
    let n = graph.nodes.len();
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
    let mut slots: Vec<u64> = Vec::new();
    let mut busy_until: Vec<usize> = Vec::new();
    let mut slot_of = vec![None; n];
    let (mut baseline, mut fixed) = (0u64, 0u64);
    for (i, node) in graph.nodes.iter().enumerate() {
        let id = NodeId(i as u32);
        if node.op.is_view() {
            continue;
        }
        let size = bytes(graph, id);
        if matches!(node.op, Op::Input { .. } | Op::Param { .. }) {
            fixed += size;
            continue;
        }
        baseline += size;
        // Best fit among slots whose tensor died before this node runs; else grow the largest
        // free slot; else a new slot.
        let free: Vec<usize> = (0..slots.len()).filter(|&s| busy_until[s] < i).collect();
        let pick = free
            .iter()
            .copied()
            .filter(|&s| slots[s] >= size)
            .min_by_key(|&s| slots[s])
            .or_else(|| free.iter().copied().max_by_key(|&s| slots[s]));
        let s = match pick {
            Some(s) => {
                slots[s] = slots[s].max(size);
                s
            }
            None => {
                slots.push(size);
                busy_until.push(0);
                slots.len() - 1
            }
        };
        busy_until[s] = last_use[i];
        slot_of[i] = Some(s);
    }
    let planned = slots.iter().sum();
    MemoryPlan {
        slots,
        slot_of,
        last_use,
        baseline_bytes: baseline,
        planned_bytes: planned,
        fixed_bytes: fixed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{TensorType, UnaryOp};

    #[test]
    fn chains_reuse_and_live_tensors_do_not_share() {
        let mut g = Graph::new();
        let x = g.input("x", TensorType::f32(vec![1024])).unwrap();
        let mut prev = x;
        let mut all = Vec::new();
        for _ in 0..6 {
            prev = g.push(Op::Unary(UnaryOp::Relu), &[prev], "r").unwrap();
            all.push(prev);
        }
        let keep = all[1];
        let sum = g
            .push(Op::Binary(crate::ir::BinaryOp::Add), &[prev, keep], "s")
            .unwrap();
        g.outputs.push(sum);
        let plan = plan_memory(&g);
        assert_eq!(plan.baseline_bytes, 7 * 4096);
        assert!(plan.planned_bytes <= 3 * 4096, "{plan:?}");
        // Whenever two tensors share a slot, their lifetimes are disjoint.
        for a in 0..g.nodes.len() {
            for b in a + 1..g.nodes.len() {
                if plan.slot_of[a].is_some() && plan.slot_of[a] == plan.slot_of[b] {
                    assert!(
                        plan.last_use[a] < b,
                        "%{a} (last use {}) and %{b} share a slot",
                        plan.last_use[a]
                    );
                }
            }
        }
        // The kept tensor is read by the last node, so nothing after it reuses its slot.
        let s = plan.slot_of[keep.index()].unwrap();
        assert!((keep.index() + 1..sum.index()).all(|i| plan.slot_of[i] != Some(s)));
        assert_eq!(plan.fixed_bytes, 4096);
    }
}
