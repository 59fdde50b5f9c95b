//! Transposed 2-D convolution on the GEMM core (`wgsl/conv_transpose.wgsl` loaders): the
//! `ConvTranspose2d` op and `Conv2dBackpropInput`, the input gradient of `Conv2d`.

use crate::gemm::{GemmProblem, b_view, epilogue_of, gemm_kernel};
use crate::lower::NodeCx;
use crate::template::Template;
use crate::{BindingRef, KernelError, KernelInstance};
use fovea_graph::ir::ConvGeometry;

const CONV_TRANSPOSE_WGSL: &str = include_str!("../wgsl/conv_transpose.wgsl");

/// Where column `co` of B starts for tap `tap` (channels `ci` follow with stride 1):
/// `ConvTranspose2d`'s kernel `(KH, KW, COUT, CIN)`, one group.
const B_TRANSPOSE: &str = "(tap * CONVT_COUT + co) * CONVT_CIN";
/// A forward HWIO kernel `(KH, KW, COUTG, CIN)` read backwards, grouped.
const B_BACKPROP: &str = "(tap * CONVT_COUTG + co) * CONVT_CIN + g * CONVT_CING";

/// Lowers `ConvTranspose2d` (groups = 1): one GEMM over output pixels x (taps, input channels).
pub(crate) fn lower_conv_transpose2d(cx: &NodeCx, g: &ConvGeometry) -> Result<KernelInstance, KernelError> {
    if g.groups != 1 {
        return Err(cx.unsupported("transposed convolution supports groups=1 only"));
    }
    transposed_gemm(
        cx,
        "conv_transpose2d",
        g,
        cx.in_shape(1)[..2].try_into().unwrap(),
        B_TRANSPOSE,
    )
}

/// Lowers `Conv2dBackpropInput` (inputs `dy`, HWIO `w`): a transposed convolution of `dy`
/// with the forward kernel, one GEMM per group.
pub(crate) fn lower_conv2d_backprop_input(cx: &NodeCx, g: &ConvGeometry) -> Result<KernelInstance, KernelError> {
    transposed_gemm(
        cx,
        "conv2d_backprop_input",
        g,
        cx.in_shape(1)[..2].try_into().unwrap(),
        B_BACKPROP,
    )
}

/// The transposed-convolution GEMM of input 0 with the kernel input 1 into the node's output.
fn transposed_gemm(
    cx: &NodeCx,
    what: &str,
    g: &ConvGeometry,
    [kh, kw]: [usize; 2],
    b_col: &str,
) -> Result<KernelInstance, KernelError> {
    let x = cx.in_shape(0);
    let y = cx.out_shape();
    let (cin, cout) = (x[3], y[3]);
    let loaders = b_view(Template::new(CONV_TRANSPOSE_WGSL), "convt_w", false)
        .set("H", x[1])
        .set("W", x[2])
        .set("CIN", cin)
        .set("CING", cin / g.groups)
        .set("OH", y[1])
        .set("OW", y[2])
        .set("COUT", cout)
        .set("COUTG", cout / g.groups);
    let loaders = crate::conv::geometry_constants(loaders, g, kw)
        .set("B_COL", b_col)
        .render(what)?;
    let problem = GemmProblem {
        m: y[0] * y[1] * y[2],
        n: cout / g.groups,
        k: kh * kw * cin / g.groups,
        k_outer: kh * kw,
        groups: g.groups,
        b_vec4: false,
        loaders,
        bindings: vec![
            BindingRef::read(cx.input(0)),
            BindingRef::read(cx.input(1)),
            BindingRef::write(cx.id),
        ],
        bytes: cx.io_bytes(),
        epilogue: epilogue_of(cx),
    };
    gemm_kernel(what, cx.id, problem, cx.target)?.ok_or_else(|| cx.too_large(what))
}
