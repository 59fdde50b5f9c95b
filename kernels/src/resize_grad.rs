//! The gradient of a spatial resize (`wgsl/resize_grad.wgsl`): one invocation per input
//! element, gathering from the outputs that read it with the forward's weights.

use crate::lower::NodeCx;
use crate::resize::source_body;
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

/// The other modes, from the forward's f32 source position `src(o)` (`src` is the substituted
/// [`ResizeMode::source`] of the axis): nearest floors it; bilinear reads `lo` and `hi` as
/// `resize.wgsl` does. The weight functions take the axis as 0 (rows) or 1 (columns).
const NEAREST_F32_WEIGHT: &str = "return select(0.0, 1.0, min(u32(floor(src(axis, o))), len_in - 1u) == i);";
const BILINEAR_WEIGHT: &str = "let s = src(axis, o);
    let lo = min(u32(floor(s)), len_in - 1u);
    let hi = min(lo + 1u, len_in - 1u);
    let f = s - f32(lo);
    return select(0.0, 1.0 - f, lo == i) + select(0.0, f, hi == i);";

/// The window of outputs that can read input position `i` in the f32 modes: those with
/// `src(o)` in `[i - 1, i + 1]` (every mode reads within one pixel of `src`), i.e. `o` within
/// `(i -+ 1 + b) / scale - a` for `src = (o + a) * scale - b`, widened by two on each side.
/// A zero scale (aligned corners from a single pixel) reads pixel 0 from every output.
fn window(mode: ResizeMode, len_in: usize, len_out: usize) -> [String; 2] {
    let scale = mode.scale(len_in, len_out);
    if scale == 0.0 {
        return ["return 0u;".into(), "return len_out;".into()];
    }
    let (a, b) = mode.offsets();
    let at = |delta: f32| format!("(f32(i) + {delta:.1} + {b:.1}) / {scale:e} - {a:.1}");
    [
        format!("return u32(max(floor({}) - 2.0, 0.0));", at(-1.0)),
        format!("return min(len_out, u32(max(ceil({}) + 3.0, 0.0)));", at(1.0)),
    ]
}

/// Lowers `ResizeBackprop { mode, .. }` (input `dy`; output `dx` of the forward input's shape).
pub(crate) fn lower_resize_backprop(cx: &NodeCx, mode: ResizeMode) -> Result<KernelInstance, KernelError> {
    let dy = cx.in_shape(0);
    let dx = cx.out_shape();
    let name = &format!("resize_grad_{}", mode.name());
    let weight = match mode {
        ResizeMode::Nearest => NEAREST[0],
        m if m.is_bilinear() => BILINEAR_WEIGHT,
        _ => NEAREST_F32_WEIGHT,
    };
    let windows = |len_in: usize, len_out: usize| match mode {
        ResizeMode::Nearest => [NEAREST[1].to_string(), NEAREST[2].to_string()],
        m => window(m, len_in, len_out),
    };
    let ([first_y, end_y], [first_x, end_x]) = (windows(dx[1], dy[1]), windows(dx[2], dy[2]));
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
        .set("SRC_Y", source_body(mode, dx[1], dy[1]))
        .set("SRC_X", source_body(mode, dx[2], dy[2]))
        .set("FIRST_Y", first_y)
        .set("END_Y", end_y)
        .set("FIRST_X", first_x)
        .set("END_X", end_x)
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
