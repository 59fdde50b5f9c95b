//! Spatial resize, nearest or bilinear (`wgsl/resize.wgsl`): one invocation per output element.

use crate::lower::NodeCx;
use crate::template::Template;
use crate::{BindingRef, KernelError, KernelInstance};
use fovea_graph::ir::ResizeMode;

const RESIZE_WGSL: &str = include_str!("../wgsl/resize.wgsl");

/// Nearest neighbour: integer `floor(dst * in / out)`.
const NEAREST: &str = "v = pixel(n, min(oy * IH / OH, IH - 1u), min(ox * IW / OW, IW - 1u), c);";

/// Bilinear with half-pixel centres.
const BILINEAR: &str = "let sy = max((f32(oy) + 0.5) * (f32(IH) / f32(OH)) - 0.5, 0.0);
    let sx = max((f32(ox) + 0.5) * (f32(IW) / f32(OW)) - 0.5, 0.0);
    let y0 = min(u32(floor(sy)), IH - 1u);
    let x0 = min(u32(floor(sx)), IW - 1u);
    let y1 = min(y0 + 1u, IH - 1u);
    let x1 = min(x0 + 1u, IW - 1u);
    let fy = sy - f32(y0);
    let fx = sx - f32(x0);
    let top = pixel(n, y0, x0, c) * (1.0 - fx) + pixel(n, y0, x1, c) * fx;
    let bottom = pixel(n, y1, x0, c) * (1.0 - fx) + pixel(n, y1, x1, c) * fx;
    v = top * (1.0 - fy) + bottom * fy;";

/// Lowers `Resize { mode, height, width }`.
pub(crate) fn lower_resize(cx: &NodeCx, mode: ResizeMode) -> Result<KernelInstance, KernelError> {
    let x = cx.in_shape(0);
    let y = cx.out_shape();
    let (name, sample, flops) = match mode {
        ResizeMode::Nearest => ("resize_nearest", NEAREST, 0),
        ResizeMode::Bilinear => ("resize_bilinear", BILINEAR, 9),
    };
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
