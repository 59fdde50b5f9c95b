//! Lowering of fused elementwise nodes (`Op::Elementwise`, made by the fusion pass) to the
//! generated elementwise kernel.

use crate::elementwise::{ElemExpr, elementwise_kernel};
use crate::lower::NodeCx;
use crate::{KernelError, KernelInstance};
use fovea_graph::ir::ElemExpr as IrExpr;

/// The kernel expression of an IR expression (the same tree).
pub(crate) fn convert(e: &IrExpr) -> ElemExpr {
    match e {
        IrExpr::Input(i) => ElemExpr::Input(*i),
        IrExpr::Const(c) => ElemExpr::Const(*c),
        IrExpr::Unary(u, a) => ElemExpr::unary(*u, convert(a)),
        IrExpr::Binary(b, x, y) => ElemExpr::binary(*b, convert(x), convert(y)),
        IrExpr::UnaryGrad(u, x, dy) => ElemExpr::unary_grad(*u, convert(x), convert(dy)),
    }
}

/// One generated kernel evaluating `expr` over the node's inputs.
pub(crate) fn lower_fused(cx: &NodeCx, expr: &IrExpr) -> Result<KernelInstance, KernelError> {
    elementwise_kernel(cx.graph, cx.id, &cx.node.inputs, &convert(expr), cx.target)
}
