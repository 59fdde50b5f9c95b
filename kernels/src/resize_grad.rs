//! The gradient of a spatial resize (`wgsl/resize_grad.wgsl`): one invocation per input
//! element, gathering from the outputs that read it with the forward's weights.

use crate::lower::NodeCx;
use crate::template::Template;
use crate::{BindingRef, KernelError, KernelInstance};
use fovea_graph::ir::ResizeMode;

const RESIZE_GRAD_WGSL: &str = include_str!("../wgsl/resize_grad.wgsl");

/// Nearest: output `o` reads `min(o * in / out, in - 1)`; the outputs reading `i` lie in
/// `[floor(i * out / in), floor((i + 1) * out / in) + 1)`.
const NEAREST: [&str; 3] = [
    "return select(0.0, 1.0, min(o * len_in / len_out, len_in - 1u) == i);",
    "return i * len_out / len_in;",
    "return min(len_out, (i + 1u) * len_out / len_in + 1u);",
];

/// Bilinear: the forward's `src`, `lo`, `hi`, `f` (as `resize.wgsl`); the outputs whose `lo` is
/// `i - 1` or `i` have `src` in `[i - 1, i + 1)`, i.e. `o` in
/// `[(i - 0.5) * out / in - 0.5, (i + 1.5) * out / in - 0.5)`, widened by one on each side.
const BILINEAR: [&str; 3] = [
    "let src = max((f32(o) + 0.5) * (f32(len_in) / f32(len_out)) - 0.5, 0.0);
    let lo = min(u32(floor(src)), len_in - 1u);
    let hi = min(lo + 1u, len_in - 1u);
    let f = src - f32(lo);
    return select(0.0, 1.0 - f, lo == i) + select(0.0, f, hi == i);",
    "return u32(max(floor((f32(i) - 0.5) * (f32(len_out) / f32(len_in)) - 0.5) - 1.0, 0.0));",
    "return min(len_out, u32(max(ceil((f32(i) + 1.5) * (f32(len_out) / f32(len_in)) - 0.5) + 2.0, 0.0)));",
];

/// Lowers `ResizeBackprop { mode, .. }` (input `dy`; output `dx` of the forward input's shape).
pub(crate) fn lower_resize_backprop(cx: &NodeCx, mode: ResizeMode) -> Result<KernelInstance, KernelError> {
    let dy = cx.in_shape(0);
    let dx = cx.out_shape();
    let (name, [weight, first, end]) = match mode {
        ResizeMode::Nearest => ("resize_grad_nearest", NEAREST),
        ResizeMode::Bilinear => ("resize_grad_bilinear", BILINEAR),
    };
    let total = cx.out_numel();
    let grid = cx.linear_grid(total)?;
    let source = Template::new(RESIZE_GRAD_WGSL)
        .set("TOTAL", total)
        .set("IH", dx[1])
        .set("IW", dx[2])
        .set("OH", dy[1])
        .set("OW", dy[2])
        .set("C", dx[3])
        .set("WEIGHT", weight)
        .set("FIRST", first)
        .set("END", end)
        .set("WG", grid.workgroup_size)
        .set("INDEX", grid.index_expr("gid"))
        .render(name)?;
    Ok(cx.linear_instance(
        name,
        "resize_grad",
        source,
        vec![BindingRef::read(cx.input(0)), BindingRef::write(cx.id)],
        &grid,
        4 * dy.iter().product::<usize>() as u64,
    ))
}
