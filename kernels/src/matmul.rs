//! Matmul on the GEMM core: loaders for plain and transposed matrices, single or batched
//! (`wgsl/matmul.wgsl`).

use crate::gemm::{GemmProblem, b_vec4_allowed, b_view, epilogue_of, gemm_kernel};
use crate::lower::NodeCx;
use crate::template::Template;
use crate::{BindingRef, KernelError, KernelInstance};

const MATMUL_WGSL: &str = include_str!("../wgsl/matmul.wgsl");

/// Lowers `MatMul { trans_a, trans_b }` of two 2-D tensors, or of two batches of matrices
/// (3-D, the flags applying to the last two axes): the batch is the GEMM core's group axis
/// (workgroup_id.z), each group reading its own `M x K` and `K x N` matrices.
pub(crate) fn lower_matmul(cx: &NodeCx, trans_a: bool, trans_b: bool) -> Result<Vec<KernelInstance>, KernelError> {
    let a = cx.in_shape(0);
    let r = a.len();
    let (m, k) = if trans_a {
        (a[r - 1], a[r - 2])
    } else {
        (a[r - 2], a[r - 1])
    };
    let out = cx.out_shape();
    let n = out[out.len() - 1];
    let batch: usize = out[..out.len() - 2].iter().product();
    let what = format!(
        "{}matmul_{}{}",
        if r == 3 { "batched_" } else { "" },
        if trans_a { 't' } else { 'n' },
        if trans_b { 't' } else { 'n' }
    );
    // Matrix g of A starts at g * M * K, of B at g * K * N (a multiple of 4 when N is, so vec4
    // loads of B stay aligned), of C at g * M * N (matmul.wgsl's store_c).
    let (a_base, b_base) = if batch > 1 {
        (format!("g * {}u + ", m * k), format!("g * {}u + ", k * n))
    } else {
        (String::new(), String::new())
    };
    let b_vec4 = b_vec4_allowed(cx.target) && !trans_b && n.is_multiple_of(4);
    let loaders = b_view(Template::new(MATMUL_WGSL), "mat_b", b_vec4)
        .set("A_ROW", format!("{a_base}{}", if trans_a { "m" } else { "m * K" }))
        .set("A_KSTRIDE", if trans_a { "M" } else { "1u" })
        .set("B_COL", format!("{b_base}{}", if trans_b { "n * K" } else { "n" }))
        .set("B_KSTRIDE", if trans_b { "1u" } else { "N" })
        .render(&what)?;
    let problem = GemmProblem {
        m,
        n,
        k,
        k_outer: 1,
        groups: batch,
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
    gemm_kernel(&what, cx.id, problem, cx.target, cx.tiles)?.ok_or_else(|| cx.too_large("matmul"))
}
