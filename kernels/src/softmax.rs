//! Softmax and log-softmax over the last axis (`wgsl/softmax.wgsl`): a workgroup per row, or an
//! invocation per row for short rows.

use crate::dispatch::LinearGrid;
use crate::lower::NodeCx;
use crate::template::{Template, f32_lit};
use crate::{AdapterClass, BindingRef, KernelError, KernelInstance, Target};

const SOFTMAX_WGSL: &str = include_str!("../wgsl/softmax.wgsl");

/// Invocations of the workgroup-per-row variant (fixed in the WGSL).
pub const SOFTMAX_WORKGROUP_SIZE: u32 = 64;

/// The longest row the one-invocation-per-row variant takes, per adapter class.
pub fn softmax_thread_max_len(class: AdapterClass) -> usize {
    match class {
        // lavapipe runs a workgroup's invocations as SIMD lanes of one thread and pays dearly for
        // each of the workgroup variant's 14 barriers; a thread per row wins for all but long rows.
        AdapterClass::Cpu => 256,
        // On a GPU a row shorter than half the 64-wide workgroup leaves most of it idle.
        AdapterClass::Gpu => 32,
    }
}

/// Whether rows of length `len` use the workgroup-per-row variant on `target`.
pub fn softmax_uses_workgroup(len: usize, target: &Target) -> bool {
    len > softmax_thread_max_len(target.class)
}

/// Lowers `Softmax` (`log == false`) or `LogSoftmax`.
pub(crate) fn lower_softmax(cx: &NodeCx, log: bool) -> Result<KernelInstance, KernelError> {
    let shape = cx.out_shape();
    let len = *shape.last().unwrap_or(&1);
    let rows = cx.out_numel() / len as u64;
    softmax_kernel(cx, rows, len, log, softmax_uses_workgroup(len, cx.target))
}

/// The kernel for `rows` rows of `len`, with the variant forced (tests exercise both).
pub(crate) fn softmax_kernel(
    cx: &NodeCx,
    rows: u64,
    len: usize,
    log: bool,
    workgroup: bool,
) -> Result<KernelInstance, KernelError> {
    let thread_grid = cx.linear_grid(rows)?;
    let row_grid = LinearGrid::new(rows, 1, cx.target).ok_or_else(|| cx.too_large("softmax"))?;
    let out = if log {
        "v - row_max - log(row_sum)"
    } else {
        "exp(v - row_max) / row_sum"
    };
    let op = if log { "log_softmax" } else { "softmax" };
    let name = format!("{op}_{}", if workgroup { "workgroup" } else { "thread" });
    let source = Template::new(SOFTMAX_WGSL)
        .set("ROWS", rows)
        .set("L", len)
        .set("GRID_X", row_grid.row)
        .set("NEG_INF", f32_lit(f32::NEG_INFINITY))
        .set("OUT", out)
        .set("WG", thread_grid.workgroup_size)
        .set("INDEX", thread_grid.index_expr("gid"))
        .render(&name)?;
    let (entry_point, workgroups, workgroup_size) = if workgroup {
        ("softmax_workgroup", row_grid.workgroups, [SOFTMAX_WORKGROUP_SIZE, 1, 1])
    } else {
        (
            "softmax_thread",
            thread_grid.workgroups,
            [thread_grid.workgroup_size, 1, 1],
        )
    };
    Ok(KernelInstance {
        name,
        family: "softmax",
        node: cx.id,
        source,
        entry_point,
        bindings: vec![BindingRef::read(cx.input(0)), BindingRef::write(cx.id)],
        workgroups,
        workgroup_size,
        flops: 5 * rows * len as u64,
        bytes: cx.io_bytes(),
        scratch_bytes: 0,
    })
}
