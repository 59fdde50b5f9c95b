//! Transposed 2-D convolution on the GEMM core (`wgsl/conv_transpose.wgsl` loaders): the
//! `ConvTranspose2d` op and `Conv2dBackpropInput`, the input gradient of `Conv2d`.

use crate::gemm::{GemmProblem, b_vec4_allowed, b_view, gemm_kernel};
use crate::lower::NodeCx;
use crate::template::Template;
use crate::{KernelError, KernelInstance};
use fovea_graph::ir::{BackpropFilter, ConvGeometry};

const CONV_TRANSPOSE_WGSL: &str = include_str!("../wgsl/conv_transpose.wgsl");

/// How the loaders read B: where column `co` starts for tap `tap` and group `g`
/// (`B_COL`), and the distance between consecutive channels `ci` of K (`B_KSTRIDE`).
struct BLayout {
    col: &'static str,
    kstride: &'static str,
}

/// `ConvTranspose2d`'s kernel `(KH, KW, COUT, CIN)`, one group: K contiguous, columns strided.
const B_TRANSPOSE: BLayout = BLayout {
    col: "(tap * CONVT_COUT + co) * CONVT_CIN",
    kstride: "1u",
};
/// A forward HWIO kernel `(KH, KW, COUTG, CIN)` read backwards, grouped: K contiguous, columns
/// strided by `CIN`, so B is read one scalar per column.
const B_BACKPROP_HWIO: BLayout = BLayout {
    col: "(tap * CONVT_COUTG + co) * CONVT_CIN + g * CONVT_CING",
    kstride: "1u",
};
/// The same kernel transposed per tap, `(KH, KW, CIN, COUTG)` (`BackpropFilter::Hwoi`): columns
/// contiguous, K strided by `COUTG`, so B is read as `vec4` when `COUTG % 4 == 0`.
const B_BACKPROP_HWOI: BLayout = BLayout {
    col: "(tap * CONVT_CIN + g * CONVT_CING) * CONVT_COUTG + co",
    kstride: "CONVT_COUTG",
};

/// Lowers `ConvTranspose2d` (groups = 1): one GEMM over output pixels x (taps, input channels).
pub(crate) fn lower_conv_transpose2d(cx: &NodeCx, g: &ConvGeometry) -> Result<Vec<KernelInstance>, KernelError> {
    if g.groups != 1 {
        return Err(cx.unsupported("transposed convolution supports groups=1 only"));
    }
    transposed_gemm(
        cx,
        "conv_transpose2d",
        g,
        cx.in_shape(1)[..2].try_into().unwrap(),
        B_TRANSPOSE,
        false,
    )
}

/// Lowers `Conv2dBackpropInput` (inputs `dy` and the forward kernel `w` in layout `filter`): a
/// transposed convolution of `dy` with the forward kernel, one GEMM per group with
/// M = pixels of dx, K = (taps, dy channels of the group), N = dx channels of the group.
///
/// With an HWIO kernel the N axis is strided (scalar B loads); with the `Hwoi` kernel
/// (`passes::transpose_backprop_filters`) it is contiguous and, for `N % 4 == 0`, B is read as
/// `vec4` like the forward convolution's (`gemm_cpu.wgsl`: one load feeds 32 FMAs per lane
/// instead of 8), which brings the kernel to forward-convolution speed: on lavapipe, the seed
/// CIFAR-10 step's 13x13x64 -> 15x15x32 gradient at batch 32 went from 0.63x to 1.0x the
/// forward convolutions' GFLOP/s measured alongside it.
pub(crate) fn lower_conv2d_backprop_input(
    cx: &NodeCx,
    g: &ConvGeometry,
    filter: BackpropFilter,
) -> Result<Vec<KernelInstance>, KernelError> {
    if crate::depthwise::is_depthwise(g, cx.out_shape()[3], cx.in_shape(1)) {
        return Ok(vec![crate::depthwise::lower_depthwise_input_grad(cx, g)?]);
    }
    if crate::conv_narrow::input_grad_applies(cx, g, filter) {
        return Ok(vec![crate::conv_narrow::lower_input_grad(cx, g)?]);
    }
    let (what, layout, vec4) = match filter {
        BackpropFilter::Hwio => ("conv2d_backprop_input", B_BACKPROP_HWIO, false),
        BackpropFilter::Hwoi => {
            let cing = cx.out_shape()[3] / g.groups;
            (
                "conv2d_backprop_input_hwoi",
                B_BACKPROP_HWOI,
                b_vec4_allowed(cx.target) && cing.is_multiple_of(4),
            )
        }
    };
    transposed_gemm(cx, what, g, cx.in_shape(1)[..2].try_into().unwrap(), layout, vec4)
}

/// The transposed-convolution GEMM of input 0 with the kernel input 1 into the node's output,
/// reading B through `b` (as `vec4` when `b_vec4`: B's columns contiguous and N, the column
/// starts and `B_KSTRIDE` multiples of 4).
fn transposed_gemm(
    cx: &NodeCx,
    what: &str,
    g: &ConvGeometry,
    [kh, kw]: [usize; 2],
    b: BLayout,
    b_vec4: bool,
) -> Result<Vec<KernelInstance>, KernelError> {
    let x = cx.in_shape(0);
    let y = cx.out_shape();
    let (cin, cout) = (x[3], y[3]);
    let loaders = b_view(Template::new(CONV_TRANSPOSE_WGSL), "convt_w", b_vec4)
        .set("H", x[1])
        .set("W", x[2])
        .set("CIN", cin)
        .set("CING", cin / g.groups)
        .set("OH", y[1])
        .set("OW", y[2])
        .set("COUT", cout)
        .set("COUTG", cout / g.groups);
    let loaders = crate::conv::geometry_constants(loaders, g, kw)
        .set("B_COL", b.col)
        .set("B_KSTRIDE", b.kstride)
        .render(what)?;
    let problem = GemmProblem::of_node(
        cx,
        [y[0] * y[1] * y[2], cout / g.groups, kh * kw * cin / g.groups],
        kh * kw,
        g.groups,
        b_vec4,
        loaders,
    );
    gemm_kernel(what, cx.id, problem, cx.target, cx.tiles)?.ok_or_else(|| cx.too_large(what))
}
