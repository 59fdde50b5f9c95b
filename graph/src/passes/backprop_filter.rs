//! Filter layout for convolution input gradients: `Conv2dBackpropInput(dy, w)` with the HWIO
//! kernel `w` becomes `Conv2dBackpropInput { filter: Hwoi }(dy, Transpose([0, 1, 3, 2])(w))`.
//!
//! Why: the op is one GEMM per group with K = (taps, output channels) and N = input channels
//! (see [`BackpropFilter`]). HWIO strides the N axis by `CO`, so the GEMM core reads B one scalar
//! per column; the transposed kernel `(KH, KW, CO, C / groups)` has N contiguous and the core
//! reads 4 columns per `vec4` load, as it does for the forward convolution. On lavapipe every
//! storage load is a loop over the SIMD lanes whatever its addresses, so loads per FMA set the
//! speed. Measured on lavapipe, interleaved in one process, the seed CIFAR-10 step's two input
//! gradients at batch 32 (transpose included): 13x13x64 -> 15x15x32 87.0 -> 34.9 ms, 4x4x64 ->
//! 6x6x64 29.0 -> 8.9 ms, now at or above the forward convolutions' GFLOP/s (with the GEMM
//! changes of the same work: the 8x64 tile and the skipped padding taps, `kernels/src/gemm.rs`).
//!
//! Why as a graph rewrite rather than a transposed read in the kernel: the kernel would still
//! load one scalar per column; the transpose is a separate, tiny dispatch over the kernel (a few
//! thousand to a few hundred thousand numbers, against a GEMM over every pixel of the batch), it
//! is an ordinary node that CSE, memory planning and dumps already understand, and one
//! transpose serves every input gradient reading the same kernel.
//!
//! When (each rule unit-tested in `tests.rs`):
//! - the GEMM's N, `C / groups`, is a multiple of 4: otherwise the core cannot read `vec4`
//!   (its columns would not start at multiples of 4) and the transpose would buy nothing;
//! - the GEMM does at least [`MIN_FLOPS`]: a dispatch costs ~130-210 us on lavapipe
//!   (PLATFORM.md), which the faster GEMM (5.7 -> 8.8 GFLOP/s, ~0.06 ns per FLOP saved) only
//!   repays above ~3 MFLOP.
//!
//! The rewrite also applies to a `GemmEpilogue` over such a node (if the pipeline runs twice).

use super::PassReport;
use super::rebuild::Rebuild;
use crate::error::Result;
use crate::ir::{BackpropFilter, Graph, Node, NodeId, Op, TensorType, numel};
use std::collections::HashMap;

/// The smallest input-gradient GEMM (2 x M x N x K per group, summed) worth a transpose dispatch.
pub const MIN_FLOPS: u64 = 4_000_000;

/// Input gradients with at most this many input channels (one group, output channels a
/// multiple of 4) are left reading the
/// HWIO kernel: the kernels crate runs them on a direct kernel, not the GEMM core
/// (`conv_narrow`), which reads HWIO with `vec4` loads along the output channels.
pub const NARROW_INPUT_GRAD_MAX_CHANNELS: usize = 4;

/// The permutation from HWIO `(KH, KW, I, O)` to `(KH, KW, O, I)`.
const HWIO_TO_HWOI: [usize; 4] = [0, 1, 3, 2];

/// Rewrites the input gradients of convolutions to read a transposed kernel where it pays.
pub fn transpose_backprop_filters(graph: Graph) -> Result<(Graph, PassReport)> {
    rewrite(graph, MIN_FLOPS)
}

/// The op with its layout switched to `Hwoi`, if `op` is (or is an epilogue over) an `Hwio`
/// input gradient of a GEMM of at least `min_flops` whose N (`C / groups`) is a multiple of 4.
fn transposed(g: &Graph, n: &Node, op: &Op, min_flops: u64) -> Option<Op> {
    match op {
        Op::Conv2dBackpropInput {
            geom,
            input_hw,
            filter: BackpropFilter::Hwio,
        } => {
            let w = g.shape(n.inputs[1]);
            let flops = 2 * numel(g.shape(n.inputs[0])) as u64 * (w[0] * w[1] * w[2]) as u64;
            let narrow = geom.groups == 1 && w[2] <= NARROW_INPUT_GRAD_MAX_CHANNELS && w[3].is_multiple_of(4);
            (w[2].is_multiple_of(4) && !narrow && flops >= min_flops).then_some(Op::Conv2dBackpropInput {
                geom: *geom,
                input_hw: *input_hw,
                filter: BackpropFilter::Hwoi,
            })
        }
        Op::GemmEpilogue { base, expr } => transposed(g, n, base, min_flops).map(|base| Op::GemmEpilogue {
            base: Box::new(base),
            expr: expr.clone(),
        }),
        _ => None,
    }
}

/// [`transpose_backprop_filters`] with the FLOP threshold as a parameter (tests use 0).
pub(super) fn rewrite(graph: Graph, min_flops: u64) -> Result<(Graph, PassReport)> {
    let mut rb = Rebuild::new(&graph);
    let mut changes = Vec::new();
    // One transpose per kernel (new id), shared by every input gradient reading it.
    let mut transposes: HashMap<NodeId, NodeId> = HashMap::new();
    for (i, n) in graph.nodes.iter().enumerate() {
        let id = NodeId(i as u32);
        let Some(op) = transposed(&graph, n, &n.op, min_flops) else {
            rb.copy(id);
            continue;
        };
        let w = rb.get(n.inputs[1]);
        let t = match transposes.get(&w) {
            Some(&t) => t,
            None => {
                let ty = rb.new.ty(w);
                let shape: Vec<usize> = HWIO_TO_HWOI.iter().map(|&a| ty.shape[a]).collect();
                let t = rb.add(Node {
                    op: Op::Transpose {
                        perm: HWIO_TO_HWOI.to_vec(),
                    },
                    inputs: [w].into_iter().collect(),
                    ty: TensorType { shape, dtype: ty.dtype },
                    layer: n.layer.clone(),
                });
                transposes.insert(w, t);
                t
            }
        };
        let mut inputs: smallvec::SmallVec<[NodeId; 4]> = n.inputs.iter().map(|&x| rb.get(x)).collect();
        inputs[1] = t;
        changes.push(format!(
            "%{i} {} ({}): reads kernel {} as (KH, KW, CO, C/groups) through {t} transpose",
            n.op.name(),
            n.layer,
            n.inputs[1]
        ));
        rb.replace(id, op, inputs);
    }
    Ok(rb.report("transpose_backprop_filters", changes))
}
