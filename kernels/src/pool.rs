//! 2-D max and average pooling (`wgsl/pool.wgsl`): one invocation per output pixel and
//! channel group, 4 channels (vec4) when `C % 4 == 0`.

use crate::lower::NodeCx;
use crate::template::{Template, f32_lit};
use crate::{BindingRef, KernelError, KernelInstance};
use fovea_graph::ir::{PoolGeometry, PoolKind};

const POOL_WGSL: &str = include_str!("../wgsl/pool.wgsl");

/// Lowers `Pool2d` (max or average, padding never counted).
pub(crate) fn lower_pool2d(cx: &NodeCx, p: &PoolGeometry) -> Result<KernelInstance, KernelError> {
    let x = cx.in_shape(0);
    let y = cx.out_shape();
    let (name, init, combine, finish) = match p.kind {
        PoolKind::Max => ("pool_max", f32_lit(f32::NEG_INFINITY), "max(acc, v)", "acc"),
        PoolKind::Avg => ("pool_avg", f32_lit(0.0), "acc + v", "acc / f32(count)"),
    };
    let lanes = if x[3].is_multiple_of(4) { 4 } else { 1 };
    let total = cx.out_numel() / lanes as u64;
    let grid = cx.linear_grid(total)?;
    let source = pool_constants(Template::new(POOL_WGSL), p, x, y)
        .set("CL", x[3] / lanes)
        .set("T", if lanes == 4 { "vec4<f32>" } else { "f32" })
        .set("TOTAL", total)
        .set("INIT", init)
        .set("COMBINE", combine)
        .set("FINISH", finish)
        .set("WG", grid.workgroup_size)
        .set("INDEX", grid.index_expr("gid"))
        .render(name)?;
    Ok(cx.linear_instance(
        name,
        "pool",
        source,
        vec![BindingRef::read(cx.input(0)), BindingRef::write(cx.id)],
        &grid,
        cx.out_numel() * (p.size.0 * p.size.1) as u64,
    ))
}

/// Sets the constants pooling and its gradient share: input `x` and output `y` shapes (NHWC)
/// and the window (size, strides, top and left padding).
pub(crate) fn pool_constants(t: Template, p: &PoolGeometry, x: &[usize], y: &[usize]) -> Template {
    t.set("H", x[1])
        .set("W", x[2])
        .set("C", x[3])
        .set("OH", y[1])
        .set("OW", y[2])
        .set("KH", p.size.0)
        .set("KW", p.size.1)
        .set("SH", p.stride.0)
        .set("SW", p.stride.1)
        .set("PT", p.pad.top)
        .set("PL", p.pad.left)
}
