//! Softmax cross-entropy and its logits gradient over the last axis (`wgsl/softmax_ce.wgsl`):
//! a workgroup per row, or an invocation per row for short rows, as for softmax.

use crate::dispatch::LinearGrid;
use crate::lower::NodeCx;
use crate::softmax::{SOFTMAX_WORKGROUP_SIZE, softmax_uses_workgroup};
use crate::template::{Template, f32_lit};
use crate::{BindingRef, KernelError, KernelInstance};

const SOFTMAX_CE_WGSL: &str = include_str!("../wgsl/softmax_ce.wgsl");

/// The loss's output declaration and store hook: one value per row, `tmx + t_sum * log1p(r)`,
/// written by the row's first invocation.
const LOSS_DECLS: &str = "@group(0) @binding(2) var<storage, read_write> ce_y: array<f32>;";
const LOSS_STORE: &str = "\
fn ce_store(row: u32, base: u32, first: u32, stride: u32, row_max: f32, r: f32, sums: vec4<f32>) {
    if (first == 0u) {
        ce_y[row] = sums.w + sums.z * ce_log1p(r);
    }
}";

/// The gradient's declarations and store hook: the row's `L` gradients
/// `((e * t_sum - t) - t * r) / (1 + r) * dloss`, strided over the row's invocations (`e` is
/// exactly 1 at the maximum, so a confident correct class keeps its small gradient `-r / (1 + r)`).
const GRAD_DECLS: &str = "\
@group(0) @binding(2) var<storage, read> ce_dloss: array<f32>;
@group(0) @binding(3) var<storage, read_write> ce_dx: array<f32>;";
const GRAD_STORE: &str = "\
fn ce_store(row: u32, base: u32, first: u32, stride: u32, row_max: f32, r: f32, sums: vec4<f32>) {
    let scale = ce_dloss[row] / (1.0 + r);
    for (var j = first; j < L; j += stride) {
        let v = ce_x[base + j];
        let l = ce_t[base + j];
        let e = select(exp(v - row_max), 1.0, v == row_max);
        ce_dx[base + j] = ((e * sums.z - l) - l * r) * scale;
    }
}";

/// Lowers `SoftmaxCrossEntropy` (`grad == false`; inputs logits, labels; output one loss per
/// row) or `SoftmaxCrossEntropyGrad` (inputs logits, labels, dloss; output the logits'
/// gradient).
pub(crate) fn lower_softmax_ce(cx: &NodeCx, grad: bool) -> Result<KernelInstance, KernelError> {
    let logits = cx.in_shape(0);
    let len = *logits.last().unwrap_or(&1);
    let rows = (logits.iter().product::<usize>() / len.max(1)) as u64;
    softmax_ce_kernel(cx, rows, len, grad, softmax_uses_workgroup(len, cx.target))
}

/// The kernel for `rows` rows of `len` classes, with the variant forced (tests exercise both).
pub(crate) fn softmax_ce_kernel(
    cx: &NodeCx,
    rows: u64,
    len: usize,
    grad: bool,
    workgroup: bool,
) -> Result<KernelInstance, KernelError> {
    if len == 0 || rows == 0 {
        return Err(cx.unsupported("a softmax cross-entropy needs at least one row of one class"));
    }
    let thread_grid = cx.linear_grid(rows)?;
    let row_grid = LinearGrid::new(rows, 1, cx.target).ok_or_else(|| cx.too_large("softmax cross-entropy"))?;
    let op = if grad { "softmax_ce_grad" } else { "softmax_ce" };
    let name = format!("{op}_{}", if workgroup { "workgroup" } else { "thread" });
    let (decls, store) = if grad {
        (GRAD_DECLS, GRAD_STORE)
    } else {
        (LOSS_DECLS, LOSS_STORE)
    };
    let source = Template::new(SOFTMAX_CE_WGSL)
        .set("ROWS", rows)
        .set("L", len)
        .set("OUT_DECLS", decls)
        .set("STORE", store)
        .set("GRID_X", row_grid.row)
        .set("NEG_INF", f32_lit(f32::NEG_INFINITY))
        .set("WG", thread_grid.workgroup_size)
        .set("INDEX", thread_grid.index_expr("gid"))
        .render(&name)?;
    let (entry_point, workgroups, workgroup_size) = if workgroup {
        (
            "softmax_ce_workgroup",
            row_grid.workgroups,
            [SOFTMAX_WORKGROUP_SIZE, 1, 1],
        )
    } else {
        (
            "softmax_ce_thread",
            thread_grid.workgroups,
            [thread_grid.workgroup_size, 1, 1],
        )
    };
    let mut bindings = vec![BindingRef::read(cx.input(0)), BindingRef::read(cx.input(1))];
    if grad {
        bindings.push(BindingRef::read(cx.input(2)));
    }
    bindings.push(BindingRef::write(cx.id));
    let elements = rows * len as u64;
    Ok(KernelInstance {
        name,
        family: "softmax_ce",
        node: cx.id,
        source,
        entry_point,
        bindings,
        workgroups,
        workgroup_size,
        // Max; exp, compare, sums; label sum; label * (max - x) and its sum; then per gradient
        // element exp, compare, two products, two subtractions, the scale.
        flops: if grad { 15 } else { 8 } * elements,
        bytes: cx.io_bytes(),
        scratch_bytes: 0,
    })
}
