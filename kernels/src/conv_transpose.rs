//! Transposed 2-D convolution on the GEMM core (`wgsl/conv_transpose.wgsl` loaders).

use crate::gemm::{GemmProblem, gemm_kernel};
use crate::lower::NodeCx;
use crate::template::Template;
use crate::{BindingRef, KernelError, KernelInstance};
use fovea_graph::ir::ConvGeometry;

const CONV_TRANSPOSE_WGSL: &str = include_str!("../wgsl/conv_transpose.wgsl");

/// Lowers `ConvTranspose2d` (groups = 1): one GEMM over output pixels x (taps, input channels).
pub(crate) fn lower_conv_transpose2d(cx: &NodeCx, g: &ConvGeometry) -> Result<KernelInstance, KernelError> {
    let x = cx.in_shape(0);
    let w = cx.in_shape(1);
    let y = cx.out_shape();
    if g.groups != 1 {
        return Err(cx.unsupported("transposed convolution supports groups=1 only"));
    }
    let what = "conv_transpose2d";
    let loaders = Template::new(CONV_TRANSPOSE_WGSL)
        .set("H", x[1])
        .set("W", x[2])
        .set("C", x[3])
        .set("OH", y[1])
        .set("OW", y[2])
        .set("CO", y[3])
        .set("KW", w[1])
        .set("SH", g.stride.0)
        .set("SW", g.stride.1)
        .set("DH", g.dilation.0)
        .set("DW", g.dilation.1)
        .set("PT", g.pad.top)
        .set("PL", g.pad.left)
        .render(what)?;
    let problem = GemmProblem {
        m: y[0] * y[1] * y[2],
        n: y[3],
        k: w[0] * w[1] * x[3],
        groups: 1,
        loaders,
        bindings: vec![
            BindingRef::read(cx.input(0)),
            BindingRef::read(cx.input(1)),
            BindingRef::write(cx.id),
        ],
        bytes: cx.io_bytes(),
    };
    gemm_kernel(what, cx.id, problem, cx.target)?.ok_or_else(|| cx.too_large("transposed convolution"))
}
