//! Gather and scatter-add along an axis by i32 indices (`wgsl/gather.wgsl`): one invocation per
//! output element; the scatter scans its indices instead of using atomics (deterministic).

use crate::lower::NodeCx;
use crate::template::Template;
use crate::{BindingRef, KernelError, KernelInstance};
use fovea_graph::ir::GatherDims;

const GATHER_WGSL: &str = include_str!("../wgsl/gather.wgsl");

/// Lowers `Gather { axis, batch_dims }` (`scatter == false`, dims of its input) or
/// `ScatterAdd { axis, batch_dims, .. }` (dims of its output).
pub(crate) fn lower_gather(
    cx: &NodeCx,
    axis: usize,
    batch_dims: usize,
    scatter: bool,
) -> Result<KernelInstance, KernelError> {
    let full = if scatter { cx.out_shape() } else { cx.in_shape(0) };
    let d = GatherDims::new(full, cx.in_shape(1), axis, batch_dims);
    let total = cx.out_numel();
    let grid = cx.linear_grid(total)?;
    let name = if scatter { "scatter_add" } else { "gather" };
    let source = Template::new(GATHER_WGSL)
        .set("TOTAL", total)
        .set("OUTER", d.outer)
        .set("LEN", d.len)
        .set("COUNT", d.count)
        .set("INNER", d.inner)
        .set("WG", grid.workgroup_size)
        .set("INDEX", grid.index_expr("gid"))
        .render(name)?;
    let mut k = cx.linear_instance(
        name,
        "gather",
        source,
        vec![
            BindingRef::read(cx.input(0)),
            BindingRef::read(cx.input(1)),
            BindingRef::write(cx.id),
        ],
        &grid,
        if scatter { total * d.count as u64 } else { 0 },
    );
    k.entry_point = name;
    Ok(k)
}
