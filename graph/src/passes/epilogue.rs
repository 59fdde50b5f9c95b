//! Epilogue fusion: an elementwise node reading the result of a GEMM-based op (convolution,
//! matmul, transposed convolution, the convolution gradients) or of a pooling gradient
//! (`Pool2dBackprop`, max or average) becomes one `Op::GemmEpilogue` node, so the base op's
//! kernel applies bias, activation, residual add or activation gradient as it stores, and the
//! base result never reaches memory.
//!
//! An `Elementwise`, `Unary`, `Binary` or `UnaryGrad` node `E` absorbs its input `G` when `G` is
//! a GEMM-based op (not a depthwise convolution, which has its own kernel) or a
//! `Pool2dBackprop`, `E` is `G`'s only reader (not a graph output or update), both have the same
//! shape, and every other input of `E` is a `Fill` (it becomes a constant), a tensor of `E`'s
//! shape or a `(C,)` vector with `C` the last axis. The fused node binds `G`'s two inputs, at
//! most [`MAX_EPILOGUE_INPUTS`] distinct extra inputs and its output: within WebGPU's 8 storage
//! buffers per stage (the average-pooling gradient does not even bind its first input).
//!
//! Where it pays: every fusion removes one kernel launch and one full write and read of `G`'s
//! result. For a pooling gradient that is the training step's `conv -> relu -> pool` pattern:
//! backward computes the pooling gradient, of the *input*'s size (the pre-pooling activation,
//! 4x the pooled one for 2x2 pooling), and then the relu gradient over it; fused, the pooling
//! gradient kernel applies the relu gradient as it stores, saving one full read and write of
//! that input-sized gradient (and a dispatch) per pooling layer. The extra inputs (the relu's
//! input or output) are read either way.

use super::PassReport;
use super::rebuild::Rebuild;
use crate::error::Result;
use crate::ir::{ElemExpr, Graph, Node, NodeId, Op};

/// Most distinct extra inputs of an epilogue: the base op's two inputs, these and the output
/// make 8 storage bindings.
pub const MAX_EPILOGUE_INPUTS: usize = 5;

/// Whether node `id`'s kernel stores through an epilogue: the ops on the GEMM core
/// (depthwise convolutions and their gradients are not) and the pooling gradient.
fn takes_epilogue(g: &Graph, id: NodeId) -> bool {
    let n = g.node(id);
    match &n.op {
        Op::Conv2d(geom) => !(geom.groups > 1 && geom.groups == g.shape(n.inputs[0])[3]),
        Op::ConvTranspose2d { geom, .. } => geom.groups == 1,
        // The depthwise gradients run direct kernels too: dx has C channels, x has C channels.
        Op::Conv2dBackpropInput { geom, .. } => !(geom.groups > 1 && geom.groups == n.ty.shape[3]),
        Op::Conv2dBackpropFilter { geom, .. } => !(geom.groups > 1 && geom.groups == g.shape(n.inputs[0])[3]),
        Op::MatMul { .. } | Op::PixelShuffleMatMul { .. } => true,
        Op::Pool2dBackprop(_) => true,
        _ => false,
    }
}

fn map_inputs(e: &ElemExpr, args: &[ElemExpr]) -> ElemExpr {
    match e {
        ElemExpr::Input(i) => args[*i].clone(),
        ElemExpr::Const(c) => ElemExpr::Const(*c),
        ElemExpr::Unary(u, a) => ElemExpr::Unary(*u, Box::new(map_inputs(a, args))),
        ElemExpr::Binary(b, x, y) => ElemExpr::Binary(*b, Box::new(map_inputs(x, args)), Box::new(map_inputs(y, args))),
        ElemExpr::UnaryGrad(u, x, y) => {
            ElemExpr::UnaryGrad(*u, Box::new(map_inputs(x, args)), Box::new(map_inputs(y, args)))
        }
        ElemExpr::Select(c, a, b) => ElemExpr::select(map_inputs(c, args), map_inputs(a, args), map_inputs(b, args)),
    }
}

/// The fusion at elementwise node `id`, if any: the base node (GEMM-based or pooling gradient),
/// the epilogue expression and the extra inputs (old ids).
fn plan(g: &Graph, id: NodeId, readers: &[usize]) -> Option<(NodeId, ElemExpr, Vec<NodeId>)> {
    let n = g.node(id);
    let expr = n.op.elementwise_expr()?;
    let shape = &n.ty.shape;
    let c = *shape.last()?;
    let gemm = n.inputs.iter().copied().find(|&i| {
        takes_epilogue(g, i) && readers[i.index()] == 1 && g.shape(i) == shape.as_slice() && g.ty(i).dtype == n.ty.dtype
    })?;
    let mut extras: Vec<NodeId> = Vec::new();
    let mut args = Vec::with_capacity(n.inputs.len());
    for &i in &n.inputs {
        let arg = if i == gemm {
            ElemExpr::Input(0)
        } else if let Op::Fill { value } = g.node(i).op {
            ElemExpr::Const(value)
        } else if g.ty(i).dtype != crate::ir::DType::F32 {
            // The GEMM core reads its extra inputs as f32 (an i32 select condition is not).
            return None;
        } else if g.shape(i) == shape.as_slice() || g.shape(i) == [c] {
            let k = extras.iter().position(|&e| e == i).unwrap_or_else(|| {
                extras.push(i);
                extras.len() - 1
            });
            ElemExpr::Input(k + 1)
        } else {
            return None;
        };
        args.push(arg);
    }
    (extras.len() <= MAX_EPILOGUE_INPUTS).then(|| (gemm, map_inputs(&expr, &args), extras))
}

/// Fuses elementwise epilogues into the GEMM-based ops and pooling gradients producing their
/// input.
pub fn fuse_epilogues(graph: Graph) -> Result<(Graph, PassReport)> {
    // Readers per node: distinct consuming nodes, plus one per output or update use.
    let mut readers = vec![0usize; graph.nodes.len()];
    for n in &graph.nodes {
        let mut seen: Vec<NodeId> = Vec::new();
        for &inp in &n.inputs {
            if !seen.contains(&inp) {
                seen.push(inp);
                readers[inp.index()] += 1;
            }
        }
    }
    for &o in &graph.outputs {
        readers[o.index()] += 1;
    }
    for &(p, v) in &graph.updates {
        readers[p.index()] += 1;
        readers[v.index()] += 1;
    }
    // The base node absorbed by each elementwise node.
    let mut fused: Vec<Option<(NodeId, ElemExpr, Vec<NodeId>)>> = vec![None; graph.nodes.len()];
    let mut absorbed = vec![false; graph.nodes.len()];
    for (i, slot) in fused.iter_mut().enumerate() {
        if let Some(p) = plan(&graph, NodeId(i as u32), &readers) {
            absorbed[p.0.index()] = true;
            *slot = Some(p);
        }
    }
    let mut rb = Rebuild::new(&graph);
    let mut changes = Vec::new();
    for (i, n) in graph.nodes.iter().enumerate() {
        let id = NodeId(i as u32);
        if absorbed[i] {
            // Computed by its reader (which comes later, so nothing in between reads it).
            continue;
        }
        match fused[i].take() {
            Some((gemm, expr, extras)) => {
                let gn = graph.node(gemm);
                let inputs = gn.inputs.iter().chain(&extras).map(|&x| rb.get(x)).collect();
                changes.push(format!(
                    "fused {id} {} into {gemm} {}: {}",
                    n.op.name(),
                    gn.op.name(),
                    expr.describe()
                ));
                let new = rb.add(Node {
                    op: Op::GemmEpilogue {
                        base: Box::new(gn.op.clone()),
                        expr,
                    },
                    inputs,
                    ty: n.ty.clone(),
                    layer: n.layer.clone(),
                });
                rb.alias(id, new);
            }
            None => {
                rb.copy(id);
            }
        }
    }
    Ok(rb.report("fuse_epilogues", changes))
}
