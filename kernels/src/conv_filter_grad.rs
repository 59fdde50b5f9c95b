//! The kernel gradient of a 2-D convolution on the GEMM core (`wgsl/conv_filter_grad.wgsl`
//! loaders): per group, `dw = im2col(x)^T @ dy`.

use crate::gemm::{GemmProblem, b_vec4_allowed, b_view, gemm_kernel};
use crate::lower::NodeCx;
use crate::template::Template;
use crate::{KernelError, KernelInstance};
use fovea_graph::ir::ConvGeometry;

const CONV_FILTER_GRAD_WGSL: &str = include_str!("../wgsl/conv_filter_grad.wgsl");

/// Lowers `Conv2dBackpropFilter` (inputs `x`, `dy`; output the HWIO kernel's gradient).
pub(crate) fn lower_conv2d_backprop_filter(cx: &NodeCx, g: &ConvGeometry) -> Result<Vec<KernelInstance>, KernelError> {
    let x = cx.in_shape(0);
    let dy = cx.in_shape(1);
    let dw = cx.out_shape();
    let (c, co) = (x[3], dy[3]);
    if crate::depthwise::is_depthwise(g, c, dw) {
        return crate::depthwise::lower_depthwise_filter_grad(cx, g);
    }
    if crate::conv_narrow::output_applies(g, c, co) {
        return crate::conv_narrow::lower_filter_grad(cx, g);
    }
    let (cg, cog) = (c / g.groups, co / g.groups);
    let what = "conv2d_backprop_filter";
    let b_vec4 = b_vec4_allowed(cx.target) && co.is_multiple_of(4) && cog.is_multiple_of(4);
    let loaders = crate::conv::conv_constants(
        b_view(Template::new(CONV_FILTER_GRAD_WGSL), "cfg_dy", b_vec4),
        g,
        x,
        dy,
        dw[1],
    )
    .render(what)?;
    let problem = GemmProblem::of_node(
        cx,
        [dw[0] * dw[1] * cg, cog, dy[0] * dy[1] * dy[2]],
        dy[0] * dy[1],
        g.groups,
        b_vec4,
        loaders,
    );
    gemm_kernel(what, cx.id, problem, cx.target, cx.tiles)?.ok_or_else(|| cx.too_large(what))
}
