//! Matmul on the GEMM core: loaders for plain and transposed matrices, single or batched, and
//! the pixel-shuffled product of `passes::subpixel` (`wgsl/matmul.wgsl`).

use crate::gemm::{GemmProblem, b_vec4_allowed, b_view, gemm_kernel};
use crate::lower::NodeCx;
use crate::template::Template;
use crate::{KernelError, KernelInstance};

const MATMUL_WGSL: &str = include_str!("../wgsl/matmul.wgsl");

/// Lowers `MatMul { trans_a, trans_b }` of two 2-D tensors, or of two batches of matrices
/// (3-D, the flags applying to the last two axes): the batch is the GEMM core's group axis
/// (workgroup_id.z), each group reading its own `M x K` and `K x N` matrices.
/// The rendered `matmul.wgsl` loaders: A and B read plain or transposed (`trans`), matrix `g`
/// of each starting at `bases` (empty for one matrix), B as `vec4` when `b_vec4`, element
/// `(m, n)` of group `g` stored at flat index `c_index`.
fn matmul_loaders(
    what: &str,
    [trans_a, trans_b]: [bool; 2],
    [a_base, b_base]: [&str; 2],
    b_vec4: bool,
    c_index: &str,
) -> Result<String, KernelError> {
    b_view(Template::new(MATMUL_WGSL), "mat_b", b_vec4)
        .set("A_ROW", format!("{a_base}{}", if trans_a { "m" } else { "m * K" }))
        .set("A_KSTRIDE", if trans_a { "M" } else { "1u" })
        .set("B_COL", format!("{b_base}{}", if trans_b { "n * K" } else { "n" }))
        .set("B_KSTRIDE", if trans_b { "1u" } else { "N" })
        .set("C_INDEX", c_index)
        .render(what)
}

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
    let loaders = matmul_loaders(
        &what,
        [trans_a, trans_b],
        [&a_base, &b_base],
        b_vec4,
        "(g * M + m) * N + n",
    )?;
    let problem = GemmProblem::of_node(cx, [m, n, k], 1, batch, b_vec4, loaders);
    gemm_kernel(&what, cx.id, problem, cx.target, cx.tiles)?.ok_or_else(|| cx.too_large("matmul"))
}

/// Lowers `PixelShuffleMatMul { block: (bh, bw) }` of `x` `(N, H, W, C)` and `k`
/// `(C, bh*bw*O)`: the plain product of the pixels `(N*H*W, C)` with `k` (`vec4` loads of `k`
/// when `bh*bw*O % 4 == 0`), whose element `(m, n)`, for input pixel `m = (b*H + i)*W + j` and
/// column `n = (a*bw + c)*O + o`, is stored at output pixel `((b*H + i)*bh + a, j*bw + c)`,
/// channel `o`. Row and column each give one part of that flat index: with `q = bw*O` (one
/// output row of a block), it is `(m / W)*bh*W*q + (m % W)*q` plus `(n / q)*W*q + n % q`. The
/// epilogue reads the output's flat index, so a bias per output channel fuses as for any GEMM.
pub(crate) fn lower_pixel_shuffle_matmul(
    cx: &NodeCx,
    (bh, bw): (usize, usize),
) -> Result<Vec<KernelInstance>, KernelError> {
    let x = cx.in_shape(0);
    let (rows, w, k) = (x[0] * x[1] * x[2], x[2], x[3]);
    let n = cx.in_shape(1)[1];
    let q = bw * cx.out_shape()[3];
    let what = "pixel_shuffle_matmul";
    let b_vec4 = b_vec4_allowed(cx.target) && n.is_multiple_of(4);
    let c_index = format!(
        "(m / {w}u) * {}u + (m % {w}u) * {q}u + (n / {q}u) * {}u + n % {q}u",
        bh * w * q,
        w * q
    );
    let loaders = matmul_loaders(what, [false, false], ["", ""], b_vec4, &c_index)?;
    let problem = GemmProblem::of_node(cx, [rows, n, k], 1, 1, b_vec4, loaders);
    gemm_kernel(what, cx.id, problem, cx.target, cx.tiles)?.ok_or_else(|| cx.too_large("pixel-shuffled matmul"))
}
