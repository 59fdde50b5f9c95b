//! 2-D max and average pooling (`wgsl/pool.wgsl`): one invocation per output element.

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
    let total = cx.out_numel();
    let grid = cx.linear_grid(total)?;
    let source = Template::new(POOL_WGSL)
        .set("TOTAL", total)
        .set("H", x[1])
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
        .set("INIT", init)
        .set("COMBINE", combine)
        .set("FINISH", finish)
        .set("WG", grid.workgroup_size)
        .set("INDEX", grid.index_expr("gid"))
        .render(name)?;
    Ok(KernelInstance {
        name: name.to_string(),
        family: "pool",
        node: cx.id,
        source,
        entry_point: "main",
        bindings: vec![BindingRef::read(cx.input(0)), BindingRef::write(cx.id)],
        workgroups: grid.workgroups,
        workgroup_size: [grid.workgroup_size, 1, 1],
        flops: total * (p.size.0 * p.size.1) as u64,
        bytes: cx.io_bytes(),
    })
}
