//! Direct depthwise convolution (`wgsl/depthwise.wgsl`): one invocation per output element.

use crate::lower::NodeCx;
use crate::template::Template;
use crate::{BindingRef, KernelError, KernelInstance};
use fovea_graph::ir::ConvGeometry;

const DEPTHWISE_WGSL: &str = include_str!("../wgsl/depthwise.wgsl");

/// Lowers a `Conv2d` with `groups == C` (one input channel per group, `CO = C * multiplier`).
pub(crate) fn lower_depthwise(cx: &NodeCx, g: &ConvGeometry) -> Result<KernelInstance, KernelError> {
    let x = cx.in_shape(0);
    let w = cx.in_shape(1);
    let y = cx.out_shape();
    let (c, co) = (x[3], w[3]);
    if g.groups != c || w[2] != 1 || co % c != 0 {
        return Err(cx.unsupported("the depthwise kernel needs groups == input channels"));
    }
    let name = "depthwise_conv2d".to_string();
    let total = cx.out_numel();
    let grid = cx.linear_grid(total)?;
    let source = Template::new(DEPTHWISE_WGSL)
        .set("TOTAL", total)
        .set("H", x[1])
        .set("W", x[2])
        .set("C", c)
        .set("OH", y[1])
        .set("OW", y[2])
        .set("CO", co)
        .set("MULT", co / c)
        .set("KH", w[0])
        .set("KW", w[1])
        .set("SH", g.stride.0)
        .set("SW", g.stride.1)
        .set("DH", g.dilation.0)
        .set("DW", g.dilation.1)
        .set("PT", g.pad.top)
        .set("PL", g.pad.left)
        .set("WG", grid.workgroup_size)
        .set("INDEX", grid.index_expr("gid"))
        .render(&name)?;
    Ok(cx.linear_instance(
        name,
        "depthwise",
        source,
        vec![
            BindingRef::read(cx.input(0)),
            BindingRef::read(cx.input(1)),
            BindingRef::write(cx.id),
        ],
        &grid,
        2 * total * (w[0] * w[1]) as u64,
    ))
}
