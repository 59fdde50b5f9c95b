//! Forward 2-D convolution: implicit GEMM on the GEMM core (`wgsl/conv.wgsl` loaders), or the
//! direct depthwise kernel when every group has one input channel.

use crate::gemm::{GemmProblem, b_vec4_allowed, b_view, gemm_kernel};
use crate::lower::NodeCx;
use crate::template::Template;
use crate::{KernelError, KernelInstance, depthwise};
use fovea_graph::ir::ConvGeometry;

const CONV_WGSL: &str = include_str!("../wgsl/conv.wgsl");

/// Lowers `Conv2d`: depthwise (`groups == C > 1`) runs the direct kernel, everything else the
/// implicit GEMM with one GEMM per group.
pub(crate) fn lower_conv2d(cx: &NodeCx, g: &ConvGeometry) -> Result<Vec<KernelInstance>, KernelError> {
    let x = cx.in_shape(0);
    let w = cx.in_shape(1);
    let y = cx.out_shape();
    let (c, co) = (x[3], w[3]);
    if g.groups > 1 && g.groups == c {
        return Ok(vec![depthwise::lower_depthwise(cx, g)?]);
    }
    if crate::conv_narrow::output_applies(g, c, co) {
        return Ok(vec![crate::conv_narrow::lower_forward(cx, g)?]);
    }
    let cg = c / g.groups;
    let cog = co / g.groups;
    let what = if g.groups == 1 {
        "conv2d".to_string()
    } else {
        "conv2d_grouped".to_string()
    };
    // Whole kernel rows as one contiguous run of x (see conv.wgsl) when taps of a row are
    // adjacent pixels and channels are not split into groups.
    let rows = g.groups == 1 && g.dilation.1 == 1;
    let b_vec4 = b_vec4_allowed(cx.target) && co.is_multiple_of(4) && cog.is_multiple_of(4);
    let loaders = conv_constants(b_view(Template::new(CONV_WGSL), "conv_w", b_vec4), g, x, y, w[1])
        .set("ROWS", rows)
        .render(&what)?;
    let problem = GemmProblem::of_node(
        cx,
        [y[0] * y[1] * y[2], cog, w[0] * w[1] * cg],
        if rows { w[0] } else { w[0] * w[1] },
        g.groups,
        b_vec4,
        loaders,
    );
    gemm_kernel(&what, cx.id, problem, cx.target, cx.tiles)?.ok_or_else(|| cx.too_large("convolution"))
}

/// Sets the constants the implicit-GEMM conv loaders share (`conv.wgsl`,
/// `conv_filter_grad.wgsl`): input `x` and output `y` shapes (NHWC), channels per group, the
/// kernel width `kw` and the geometry.
pub(crate) fn conv_constants(t: Template, g: &ConvGeometry, x: &[usize], y: &[usize], kw: usize) -> Template {
    let (c, co) = (x[3], y[3]);
    geometry_constants(
        t.set("H", x[1])
            .set("W", x[2])
            .set("C", c)
            .set("OH", y[1])
            .set("OW", y[2])
            .set("CO", co)
            .set("CG", c / g.groups)
            .set("COG", co / g.groups),
        g,
        kw,
    )
}

/// Sets the window constants of every convolution loader: kernel width, strides, dilations,
/// top and left padding.
pub(crate) fn geometry_constants(t: Template, g: &ConvGeometry, kw: usize) -> Template {
    t.set("KW", kw)
        .set("SH", g.stride.0)
        .set("SW", g.stride.1)
        .set("DH", g.dilation.0)
        .set("DW", g.dilation.1)
        .set("PT", g.pad.top)
        .set("PL", g.pad.left)
}
