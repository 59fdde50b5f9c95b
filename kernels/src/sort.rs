//! The order-based ops (`wgsl/sort.wgsl`): `ArgSort` and `TopK` by rank counting (a workgroup
//! streams each line's keys through workgroup memory; any length, one dispatch, no atomics),
//! `ArgMax` by one scan per output element.

use crate::dispatch::LinearGrid;
use crate::lower::NodeCx;
use crate::template::Template;
use crate::{BindingRef, KernelError, KernelInstance};

const SORT_WGSL: &str = include_str!("../wgsl/sort.wgsl");

/// Invocations per rank-counting workgroup: 256 (each key loaded into workgroup memory feeds
/// 256 comparisons; on lavapipe fewer, wider workgroups also mean fewer barriers per line),
/// or the largest power of two the target allows.
fn rank_workgroup_size(max_invocations: u32) -> u32 {
    let m = max_invocations.clamp(1, 256);
    1 << (31 - m.leading_zeros())
}

/// Which order-based op a node is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum OrderOp {
    /// `ArgSort { axis, descending }`.
    ArgSort { axis: usize, descending: bool },
    /// `TopK { k }` (the last axis, descending).
    TopK { k: usize },
    /// `ArgMax { axis }`.
    ArgMax { axis: usize },
}

/// Lowers `ArgSort`, `TopK` or `ArgMax`.
pub(crate) fn lower_order(cx: &NodeCx, op: OrderOp) -> Result<KernelInstance, KernelError> {
    let x = cx.in_shape(0);
    let (axis, kout, descending) = match op {
        OrderOp::ArgSort { axis, descending } => (axis, x[axis], descending),
        OrderOp::TopK { k } => (x.len() - 1, k, true),
        OrderOp::ArgMax { axis } => (axis, 1, false),
    };
    let len = x[axis];
    let inner: usize = x[axis + 1..].iter().product();
    let lines = (x.iter().product::<usize>() / len) as u64;
    let wg = rank_workgroup_size(cx.target.max_invocations_per_workgroup);
    let chunks = len.div_ceil(wg as usize) as u64;
    let rank_grid = LinearGrid::new(lines * chunks, 1, cx.target).ok_or_else(|| cx.too_large("sort"))?;
    let thread_grid = cx.linear_grid(lines)?;
    let name = match op {
        OrderOp::ArgSort { descending: false, .. } => "argsort_rank",
        OrderOp::ArgSort { descending: true, .. } => "argsort_descending_rank",
        OrderOp::TopK { .. } => "top_k_rank",
        OrderOp::ArgMax { .. } => "argmax",
    };
    let source = Template::new(SORT_WGSL)
        .set("LINES", lines)
        .set("LEN", len)
        .set("INNER", inner)
        .set("KOUT", kout)
        .set("CHUNKS", chunks)
        .set("WG", wg)
        .set("DESCENDING", descending)
        .set("GRID_X", rank_grid.row)
        .set("WG_LINEAR", thread_grid.workgroup_size)
        .set("INDEX", thread_grid.index_expr("gid"))
        .render(name)?;
    let bindings = vec![BindingRef::read(cx.input(0)), BindingRef::write(cx.id)];
    if let OrderOp::ArgMax { .. } = op {
        let mut k = cx.linear_instance(name, "sort", source, bindings, &thread_grid, lines * len as u64);
        k.entry_point = "argmax";
        return Ok(k);
    }
    Ok(KernelInstance {
        name: name.into(),
        family: "sort",
        node: cx.id,
        source,
        entry_point: "rank_sort",
        bindings,
        workgroups: rank_grid.workgroups,
        workgroup_size: [wg, 1, 1],
        flops: lines * (len * len) as u64,
        bytes: cx.io_bytes(),
        scratch_bytes: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::rank_workgroup_size;

    #[test]
    fn rank_workgroups_are_powers_of_two_within_the_limit() {
        assert_eq!(rank_workgroup_size(1024), 256);
        assert_eq!(rank_workgroup_size(256), 256);
        assert_eq!(rank_workgroup_size(192), 128);
        assert_eq!(rank_workgroup_size(64), 64);
        assert_eq!(rank_workgroup_size(0), 1);
    }
}
