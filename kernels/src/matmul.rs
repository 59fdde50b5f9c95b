//! Matmul on the GEMM core: loaders for plain and transposed matrices (`wgsl/matmul.wgsl`).

use crate::gemm::{GemmProblem, b_vec4_allowed, b_view, epilogue_of, gemm_kernel};
use crate::lower::NodeCx;
use crate::template::Template;
use crate::{BindingRef, KernelError, KernelInstance};

const MATMUL_WGSL: &str = include_str!("../wgsl/matmul.wgsl");

/// Lowers `MatMul { trans_a, trans_b }` of two 2-D tensors.
pub(crate) fn lower_matmul(cx: &NodeCx, trans_a: bool, trans_b: bool) -> Result<Vec<KernelInstance>, KernelError> {
    let a = cx.in_shape(0);
    let (m, k) = if trans_a { (a[1], a[0]) } else { (a[0], a[1]) };
    let n = cx.out_shape()[1];
    let what = format!(
        "matmul_{}{}",
        if trans_a { 't' } else { 'n' },
        if trans_b { 't' } else { 'n' }
    );
    let b_vec4 = b_vec4_allowed(cx.target) && !trans_b && n.is_multiple_of(4);
    let loaders = b_view(Template::new(MATMUL_WGSL), "mat_b", b_vec4)
        .set("A_ROW", if trans_a { "m" } else { "m * K" })
        .set("A_KSTRIDE", if trans_a { "M" } else { "1u" })
        .set("B_COL", if trans_b { "n * K" } else { "n" })
        .set("B_KSTRIDE", if trans_b { "1u" } else { "N" })
        .render(&what)?;
    let problem = GemmProblem {
        m,
        n,
        k,
        k_outer: 1,
        groups: 1,
        b_vec4,
        loaders,
        bindings: vec![
            BindingRef::read(cx.input(0)),
            BindingRef::read(cx.input(1)),
            BindingRef::write(cx.id),
        ],
        bytes: cx.io_bytes(),
        epilogue: epilogue_of(cx),
    };
    gemm_kernel(&what, cx.id, problem, cx.target)?.ok_or_else(|| cx.too_large("matmul"))
}
