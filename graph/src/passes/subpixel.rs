//! Transposed convolutions whose kernel equals their stride (a U-Net's 2x2 stride-2 up-convs)
//! as one matrix product and a pixel shuffle.
//!
//! With `kh == sh`, `kw == sw`, no dilation, cropping or output padding, the kernel windows of
//! neighbouring input pixels do not overlap: output pixel `(i*kh + a, j*kw + b)` is
//! `sum_c x[i, j, c] * w[a, b, o, c]` of input pixel `(i, j)` alone. So
//!
//! ```text
//! y = Reshape(N, H*kh, W*kw, O)(Transpose[0,1,3,2,4,5](Reshape(N, H, W, kh, kw, O)(
//!         MatMul(Reshape(N*H*W, C)(x), Reshape(C, kh*kw*O)(Transpose[3,0,1,2](w))))))
//! ```
//!
//! Why: the GEMM core runs `ConvTranspose2d` as the input gradient of a strided convolution,
//! whose implicit GEMM walks every tap of every output pixel and multiplies the zeros between
//! the strided input pixels: at stride 2 that is 4x the useful FLOPs. Measured on lavapipe,
//! b4 32x32x64 -> 64x64x32: 57.9 ms, 34% of the forward convolution's GFLOP/s at equal
//! useful FLOPs (BENCHMARKS.md). The matrix product does only the useful FLOPs, with
//! contiguous `vec4` loads, and the shuffle is one copy of the output. The kernel's transpose is
//! a dispatch over `kh*kw*O*C` numbers. Gradients are unaffected: the pass runs on graphs after
//! differentiation, and the rewritten ops' own gradients are matrix products too when a graph
//! is differentiated after it.

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
        let x2 = push(&mut rb, Op::Reshape, vec![x], vec![b * h * w, c]);
        let kt = push(
            &mut rb,
            Op::Transpose { perm: vec![3, 0, 1, 2] },
            vec![k],
            vec![c, kh, kw, o],
        );
        let k2 = push(&mut rb, Op::Reshape, vec![kt], vec![c, kh * kw * o]);
        let mm = push(
            &mut rb,
            Op::MatMul {
                trans_a: false,
                trans_b: false,
            },
            vec![x2, k2],
            vec![b * h * w, kh * kw * o],
        );
        let y6 = push(&mut rb, Op::Reshape, vec![mm], vec![b, h, w, kh, kw, o]);
        let shuffled = push(
            &mut rb,
            Op::Transpose {
                perm: vec![0, 1, 3, 2, 4, 5],
            },
            vec![y6],
            vec![b, h, kh, w, kw, o],
        );
        let y = push(&mut rb, Op::Reshape, vec![shuffled], n.ty.shape.clone());
        changes.push(format!(
            "%{i} conv_transpose2d ({}): {kh}x{kw} stride {kh}x{kw} as a {}x{c}x{} matmul and a pixel shuffle",
            n.layer,
            b * h * w,
            kh * kw * o
        ));
        rb.alias(id, y);
    }
    Ok(rb.report("subpixel_transposed_convs", changes))
}
