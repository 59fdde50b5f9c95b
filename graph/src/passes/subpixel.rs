//! Transposed convolutions whose kernel equals their stride (a U-Net's 2x2 stride-2 up-convs)
//! as one matrix product stored pixel-shuffled.
//!
//! With `kh == sh`, `kw == sw`, no dilation, cropping or output padding, the kernel windows of
//! neighbouring input pixels do not overlap: output pixel `(i*kh + a, j*kw + b)` is
//! `sum_c x[i, j, c] * w[a, b, o, c]` of input pixel `(i, j)` alone. So
//!
//! ```text
//! y = PixelShuffleMatMul { block: (kh, kw) }(x, Reshape(C, kh*kw*O)(Transpose[3,0,1,2](w)))
//! ```
//!
//! that is, the matrix product of the pixels `(N*H*W, C)` with the kernel as a `(C, kh*kw*O)`
//! matrix, whose row for input pixel `(i, j)` is stored to output pixels `(i*kh.., j*kw..)`.
//!
//! Why: the GEMM core runs `ConvTranspose2d` as the input gradient of a strided convolution,
//! whose implicit GEMM walks every tap of every output pixel and multiplies the zeros between
//! the strided input pixels: at stride 2 that is 4x the useful FLOPs (b4 32x32x64 -> 64x64x32
//! on lavapipe: 57.9 ms, 34% of the forward convolution's GFLOP/s at equal useful FLOPs,
//! BENCHMARKS.md). The matrix product does only the useful FLOPs, with contiguous `vec4` loads;
//! storing it shuffled (instead of a separate transpose of the product, 0.9 of 5.1 ms there)
//! lets the layer's bias and activation fuse into the store as an epilogue. The kernel's
//! transpose is a dispatch over `kh*kw*O*C` numbers. The pass runs on graphs after
//! differentiation: `PixelShuffleMatMul` has no gradient rule.

use super::PassReport;
use super::rebuild::Rebuild;
use crate::error::Result;
use crate::ir::{ConvGeometry, Graph, Node, NodeId, Op, Pad2d, TensorType};

/// Whether a `ConvTranspose2d` with `geom`, `out_pad` and kernel shape `w` `(kh, kw, O, C)` is
/// a pixel shuffle of one matrix product.
pub(crate) fn applies(geom: &ConvGeometry, out_pad: (usize, usize), w: &[usize]) -> bool {
    w.len() == 4
        && geom.stride == (w[0], w[1])
        && geom.dilation == (1, 1)
        && geom.pad == Pad2d::default()
        && geom.groups == 1
        && out_pad == (0, 0)
}

/// Rewrites every transposed convolution whose kernel equals its stride (see the module docs).
pub fn subpixel_transposed_convs(graph: Graph) -> Result<(Graph, PassReport)> {
    let mut rb = Rebuild::new(&graph);
    let mut changes = Vec::new();
    for (i, n) in graph.nodes.iter().enumerate() {
        let id = NodeId(i as u32);
        let Op::ConvTranspose2d { geom, out_pad } = &n.op else {
            rb.copy(id);
            continue;
        };
        let (xs, ws) = (graph.shape(n.inputs[0]).to_vec(), graph.shape(n.inputs[1]).to_vec());
        if !applies(geom, *out_pad, &ws) || xs.len() != 4 {
            rb.copy(id);
            continue;
        }
        let ([b, h, w, c], [kh, kw, o]) = ([xs[0], xs[1], xs[2], xs[3]], [ws[0], ws[1], ws[2]]);
        let dtype = n.ty.dtype;
        let layer = n.layer.clone();
        let push = |rb: &mut Rebuild, op: Op, input: Vec<NodeId>, shape: Vec<usize>| {
            rb.add(Node {
                op,
                inputs: input.into_iter().collect(),
                ty: TensorType { shape, dtype },
                layer: layer.clone(),
            })
        };
        let (x, k) = (rb.get(n.inputs[0]), rb.get(n.inputs[1]));
        let kt = push(
            &mut rb,
            Op::Transpose { perm: vec![3, 0, 1, 2] },
            vec![k],
            vec![c, kh, kw, o],
        );
        let k2 = push(&mut rb, Op::Reshape, vec![kt], vec![c, kh * kw * o]);
        let y = push(
            &mut rb,
            Op::PixelShuffleMatMul { block: (kh, kw) },
            vec![x, k2],
            n.ty.shape.clone(),
        );
        changes.push(format!(
            "%{i} conv_transpose2d ({}): {kh}x{kw} stride {kh}x{kw} as a {}x{c}x{} matmul stored pixel-shuffled",
            n.layer,
            b * h * w,
            kh * kw * o
        ));
        rb.alias(id, y);
    }
    Ok(rb.report("subpixel_transposed_convs", changes))
}
