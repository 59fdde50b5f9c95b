//! The order-based ops (`wgsl/sort.wgsl`): `ArgSort` and `TopK` by a bitonic sort in
//! workgroup memory, one workgroup per line, keeping the best `P` of the line chunk by chunk
//! (top-k of any length with k up to [`bitonic_capacity`], argsort of lines up to it), else by
//! rank counting (a workgroup streams each line's keys through workgroup memory; any size, one
//! dispatch, no atomics); `ArgMax` by one scan per output element.

use crate::dispatch::LinearGrid;
use crate::lower::NodeCx;
use crate::template::Template;
use crate::{AdapterClass, BindingRef, KernelError, KernelInstance};

const SORT_WGSL: &str = include_str!("../wgsl/sort.wgsl");

/// Invocations per rank-counting workgroup: 256 (each key loaded into workgroup memory feeds
/// 256 comparisons; on lavapipe fewer, wider workgroups also mean fewer barriers per line),
/// or the largest power of two the target allows.
fn rank_workgroup_size(max_invocations: u32) -> u32 {
    let m = max_invocations.clamp(1, 256);
    1 << (31 - m.leading_zeros())
}

/// Bytes of workgroup memory per (key, index) pair of the bitonic variant, which holds `2 * P`.
const PAIR_BYTES: u32 = 8;

/// The largest `P` (a power of two, at most 1024) whose `2 * P` pairs fit the target's
/// workgroup memory beside the rank variant's `wg` keys (both live in one module).
pub(crate) fn bitonic_capacity(max_workgroup_bytes: u32, wg: u32) -> usize {
    let room = max_workgroup_bytes.saturating_sub(4 * wg) / (2 * PAIR_BYTES);
    if room == 0 {
        return 0;
    }
    (1usize << (31 - room.leading_zeros())).min(1024)
}

/// The bitonic variant's preferred chunk length and workgroup size on an adapter class.
///
/// GPUs: chunks of 256 and 256 invocations (every stage's 256 compare-exchanges in parallel).
/// CPU adapters (lavapipe): a barrier costs a pass over every SIMD group of the workgroup
/// (PLATFORM.md), and the sort is barrier-bound, so 32 invocations (4 groups of 8 lanes) each
/// doing P / 32 exchanges per stage, and chunks of 1024: fewer chunks, fewer barriers per
/// element (SSD's top-200 of 8732: 9 chunks of 66 stages instead of 35 of 45).
fn bitonic_shape(class: AdapterClass) -> (usize, u32) {
    match class {
        AdapterClass::Gpu => (256, 256),
        AdapterClass::Cpu => (1024, 32),
    }
}

/// The chunk length `P` of the bitonic variant for `kout` results of lines of `len`, or `None`
/// when it does not fit (`capacity`): at least `kout` (the kept best), at least
/// `min(len, preferred)` rounded up to a power of two (longer chunks, fewer of them: each costs
/// a full sort of `2 * P`), else just `kout` rounded up.
pub(crate) fn bitonic_chunk(kout: usize, len: usize, capacity: usize, preferred: usize) -> Option<usize> {
    let p = kout.next_power_of_two().max(len.min(preferred).next_power_of_two());
    let p = if p > capacity { kout.next_power_of_two() } else { p };
    (p <= capacity).then_some(p)
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
    let (preferred, bitonic_wg) = bitonic_shape(cx.target.class);
    let bitonic = match op {
        OrderOp::ArgMax { .. } => None,
        _ => bitonic_chunk(
            kout,
            len,
            bitonic_capacity(cx.target.max_workgroup_storage_bytes, wg),
            preferred,
        ),
    };
    let p = bitonic.unwrap_or(1);
    let wgb = rank_workgroup_size(cx.target.max_invocations_per_workgroup)
        .min(bitonic_wg)
        .min(p as u32);
    let line_grid = LinearGrid::new(lines, 1, cx.target).ok_or_else(|| cx.too_large("sort"))?;
    let variant = if bitonic.is_some() { "bitonic" } else { "rank" };
    let name = match op {
        OrderOp::ArgSort { descending: false, .. } => format!("argsort_{variant}"),
        OrderOp::ArgSort { descending: true, .. } => format!("argsort_descending_{variant}"),
        OrderOp::TopK { .. } => format!("top_k_{variant}"),
        OrderOp::ArgMax { .. } => "argmax".to_string(),
    };
    let name = name.as_str();
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
        .set("P", p)
        .set("WGB", wgb)
        .set("GRID_B", line_grid.row)
        .render(name)?;
    let bindings = vec![BindingRef::read(cx.input(0)), BindingRef::write(cx.id)];
    if let OrderOp::ArgMax { .. } = op {
        let mut k = cx.linear_instance(name, "sort", source, bindings, &thread_grid, lines * len as u64);
        k.entry_point = "argmax";
        return Ok(k);
    }
    let (entry_point, workgroups, workgroup_size, flops) = match bitonic {
        Some(p) => {
            // Compare-exchanges: P per stage, log2(2P) (log2(2P) + 1) / 2 stages per chunk.
            let l = (2 * p).trailing_zeros() as u64;
            let per_chunk = p as u64 * l * (l + 1) / 2;
            (
                "bitonic_top",
                line_grid.workgroups,
                [wgb, 1, 1],
                lines * len.div_ceil(p) as u64 * per_chunk,
            )
        }
        None => (
            "rank_sort",
            rank_grid.workgroups,
            [wg, 1, 1],
            lines * (len * len) as u64,
        ),
    };
    Ok(KernelInstance {
        name: name.into(),
        family: "sort",
        node: cx.id,
        source,
        entry_point,
        bindings,
        workgroups,
        workgroup_size,
        flops,
        bytes: cx.io_bytes(),
        scratch_bytes: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::{bitonic_capacity, bitonic_chunk, rank_workgroup_size};

    #[test]
    fn the_bitonic_variant_takes_what_fits_workgroup_memory() {
        // 16 KiB beside 256 rank keys: 15 KiB / 16 bytes per P -> 512 (a power of two).
        assert_eq!(bitonic_capacity(16384, 256), 512);
        assert_eq!(bitonic_capacity(32768, 256), 1024);
        assert_eq!(bitonic_capacity(1024, 64), 32);
        assert_eq!(bitonic_capacity(100, 64), 0);
        // SSD's mining: chunks of 256 keep the best 256 >= 200 (GPU); 1024 where they fit (CPU).
        assert_eq!(bitonic_chunk(200, 8732, 512, 256), Some(256));
        assert_eq!(bitonic_chunk(200, 8732, 1024, 1024), Some(1024));
        assert_eq!(bitonic_chunk(200, 8732, 512, 1024), Some(256));
        // Short lines: one chunk of the line's length; top-1 still reads 256 at a time.
        assert_eq!(bitonic_chunk(7, 7, 512, 256), Some(8));
        assert_eq!(bitonic_chunk(1, 8732, 512, 256), Some(256));
        // Small workgroup memory: chunks only as long as k needs, or the rank variant.
        assert_eq!(bitonic_chunk(3, 8732, 32, 256), Some(4));
        assert_eq!(bitonic_chunk(200, 8732, 32, 256), None);
        assert_eq!(bitonic_chunk(600, 600, 512, 256), None);
    }

    #[test]
    fn rank_workgroups_are_powers_of_two_within_the_limit() {
        assert_eq!(rank_workgroup_size(1024), 256);
        assert_eq!(rank_workgroup_size(256), 256);
        assert_eq!(rank_workgroup_size(192), 128);
        assert_eq!(rank_workgroup_size(64), 64);
        assert_eq!(rank_workgroup_size(0), 1);
    }
}
