//! Spatial resize in every [`ResizeMode`] (`wgsl/resize.wgsl`): one invocation per output
//! element.

use crate::lower::NodeCx;
use crate::template::Template;
use crate::{BindingRef, KernelError, KernelInstance};
use fovea_graph::ir::ResizeMode;

const RESIZE_WGSL: &str = include_str!("../wgsl/resize.wgsl");

/// Nearest neighbour: integer `floor(dst * in / out)`.
const NEAREST: &str = "v = pixel(n, min(oy * IH / OH, IH - 1u), min(ox * IW / OW, IW - 1u), c);";

/// The other nearest modes: the f32 source position, floored.
const NEAREST_F32: &str = "v = pixel(n, min(u32(floor(src_y(oy))), IH - 1u), min(u32(floor(src_x(ox))), IW - 1u), c);";

/// Bilinear at the f32 source position.
const BILINEAR: &str = "let sy = src_y(oy);
    let sx = src_x(ox);
    let y0 = min(u32(floor(sy)), IH - 1u);
    let x0 = min(u32(floor(sx)), IW - 1u);
    let y1 = min(y0 + 1u, IH - 1u);
    let x1 = min(x0 + 1u, IW - 1u);
    let fy = sy - f32(y0);
    let fx = sx - f32(x0);
    let top = pixel(n, y0, x0, c) * (1.0 - fx) + pixel(n, y0, x1, c) * fx;
    let bottom = pixel(n, y1, x0, c) * (1.0 - fx) + pixel(n, y1, x1, c) * fx;
    v = top * (1.0 - fy) + bottom * fy;";

/// An f32 as a WGSL expression with exactly its bits (a decimal literal could round).
pub(crate) fn f32_bits(v: f32) -> String {
    format!("bitcast<f32>({:#010x}u)", v.to_bits())
}

/// The body of a WGSL function `(dst: u32) -> f32` returning [`ResizeMode::source`] along an
/// axis of `len_in` resized to `len_out`, with the same f32 operations in the same order.
pub(crate) fn source_body(mode: ResizeMode, len_in: usize, len_out: usize) -> String {
    let (a, b) = mode.offsets();
    format!(
        "return max((f32(dst) + {}) * {} - {}, 0.0);",
        f32_bits(a),
        f32_bits(mode.scale(len_in, len_out)),
        f32_bits(b)
    )
}

/// Lowers `Resize { mode, height, width }`.
pub(crate) fn lower_resize(cx: &NodeCx, mode: ResizeMode) -> Result<KernelInstance, KernelError> {
    let x = cx.in_shape(0);
    let y = cx.out_shape();
    let (sample, flops) = match mode {
        ResizeMode::Nearest => (NEAREST, 0),
        m if m.is_bilinear() => (BILINEAR, 9),
        _ => (NEAREST_F32, 0),
    };
    let name = &format!("resize_{}", mode.name());
    let total = cx.out_numel();
    let grid = cx.linear_grid(total)?;
    let source = Template::new(RESIZE_WGSL)
        .set("TOTAL", total)
        .set("IH", x[1])
        .set("IW", x[2])
        .set("OH", y[1])
        .set("OW", y[2])
        .set("C", x[3])
        .set("SAMPLE", sample)
        .set("SRC_Y", source_body(mode, x[1], y[1]))
        .set("SRC_X", source_body(mode, x[2], y[2]))
        .set("WG", grid.workgroup_size)
        .set("INDEX", grid.index_expr("gid"))
        .render(name)?;
    Ok(cx.linear_instance(
        name,
        "resize",
        source,
        vec![BindingRef::read(cx.input(0)), BindingRef::write(cx.id)],
        &grid,
        flops * total,
    ))
}
