//! Reverse-mode automatic differentiation as a graph transform.
//!
//! [`grad`] extends a graph with the nodes that compute the gradient of a loss with respect to
//! some of its nodes. It walks the nodes between the `wrt` nodes and the loss in reverse
//! topological order, applies one vector-Jacobian product (VJP) rule per op — each an ordinary
//! graph builder emitting ordinary IR ops — and sums the contributions of a node with several
//! consumers with `Binary(Add)`. Because the backward pass is plain IR, it is optimised,
//! memory-planned and interpreted like the forward pass.
//!
//! The rules are grouped by the ops they differentiate: `conv` (convolution and its
//! transpose), `matmul`, `pointwise` (unary and broadcasting binary), `reduce`, `norm`
//! (softmax, log-softmax, softmax cross-entropy, batch norm), `layout` (reshape, transpose, concat, pad, slice,
//! broadcast, resize, dropout), `pool` and `structural` (gather, scatter-add, instance norm). Every gradient node is named after the `layer` of
//! the forward node it comes from.

mod conv;
mod layout;
mod matmul;
mod norm;
mod pointwise;
mod pool;
mod reduce;
mod structural;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

use crate::error::{GraphError, Result};
use crate::ir::{BinaryOp, DType, Graph, Node, NodeId, Op, UnaryOp, fmt_shape};

pub use reduce::sum_to_shape;

/// Extends `graph` with nodes computing `d(loss)/d(wrt[i])` for each i (in order) and returns those nodes.
/// `loss` is any node; its gradient seed is a Fill of ones of its shape (so a non-scalar loss means the sum).
/// A wrt node the loss does not depend on gets a Fill of zeros. Errors (never panics) if an op on the path has no VJP (name the op and layer).
///
/// Only nodes on a path from some `wrt` node to `loss` are differentiated, and only along
/// their inputs on such a path; non-`f32` tensors (labels, indices) and the seed of a dropout
/// carry no gradient. `Ge` and `Eq` are piecewise constant: their gradient is zero. The
/// backward ops (`UnaryGrad`, the conv, pool and resize backprops, the softmax cross-entropy's
/// gradient) have no VJP (no second derivatives): a path through one is an error naming it.
pub fn grad(graph: &mut Graph, loss: NodeId, wrt: &[NodeId]) -> Result<Vec<NodeId>> {
    check_ids(graph, loss, wrt)?;
    let on_path = on_path(graph, loss, wrt);
    let mut grads: Vec<Option<NodeId>> = vec![None; loss.index() + 1];
    let loss_node = graph.node(loss);
    let (loss_shape, loss_layer) = (loss_node.ty.shape.clone(), loss_node.layer.clone());
    grads[loss.index()] = Some(graph.fill(&loss_shape, 1.0, &loss_layer)?);
    for i in (0..=loss.index()).rev() {
        let Some(dy) = grads[i].filter(|_| on_path[i]) else {
            continue;
        };
        let node = graph.nodes[i].clone();
        let needs: Vec<bool> = node.inputs.iter().map(|j| on_path[j.index()]).collect();
        if !needs.contains(&true) {
            continue;
        }
        let inputs = node.inputs.clone();
        let mut v = Vjp {
            graph: &mut *graph,
            id: NodeId(i as u32),
            node,
            dy,
            needs,
        };
        let contributions = vjp(&mut v)?;
        for (k, contribution) in contributions.into_iter().enumerate() {
            if let Some(c) = contribution {
                accumulate(graph, &mut grads, inputs[k], c)?;
            }
        }
    }
    wrt.iter()
        .map(|&w| match grads.get(w.index()).copied().flatten() {
            Some(g) => Ok(g),
            None => {
                let node = graph.node(w);
                let (shape, layer) = (node.ty.shape.clone(), node.layer.clone());
                graph.fill(&shape, 0.0, &layer)
            }
        })
        .collect()
}

/// The gradient contributions of one node, one per input (`None`: no gradient flows there).
type Grads = Vec<Option<NodeId>>;

/// What a VJP rule sees: the graph it extends, the forward node, its output gradient `dy`, and
/// which inputs need a gradient. Nodes it adds are named after the forward node's layer.
struct Vjp<'a> {
    graph: &'a mut Graph,
    /// The forward node (its value is the forward output `y`).
    id: NodeId,
    node: Node,
    dy: NodeId,
    needs: Vec<bool>,
}

impl Vjp<'_> {
    /// Input `k` of the forward node.
    fn x(&self, k: usize) -> NodeId {
        self.node.inputs[k]
    }

    /// The shape of `id`.
    fn shape(&self, id: NodeId) -> Vec<usize> {
        self.graph.shape(id).to_vec()
    }

    /// Adds `op` of `inputs`.
    fn push(&mut self, op: Op, inputs: &[NodeId]) -> Result<NodeId> {
        self.graph.push(op, inputs, &self.node.layer)
    }

    fn unary(&mut self, u: UnaryOp, x: NodeId) -> Result<NodeId> {
        self.push(Op::Unary(u), &[x])
    }

    fn binary(&mut self, b: BinaryOp, x: NodeId, y: NodeId) -> Result<NodeId> {
        self.push(Op::Binary(b), &[x, y])
    }

    /// `x` reshaped to `shape` (no node if it already has that shape).
    fn reshape(&mut self, x: NodeId, shape: &[usize]) -> Result<NodeId> {
        if self.graph.shape(x) == shape {
            Ok(x)
        } else {
            self.graph.reshape(x, shape, &self.node.layer)
        }
    }

    /// `g` summed over the axes it was broadcast along to come from `shape`.
    fn sum_to(&mut self, g: NodeId, shape: &[usize]) -> Result<NodeId> {
        sum_to_shape(self.graph, g, shape, &self.node.layer)
    }

    /// A tensor of `shape` filled with `value`.
    fn fill(&mut self, shape: &[usize], value: f32) -> Result<NodeId> {
        self.graph.fill(shape, value, &self.node.layer)
    }

    /// `Some(make(self))` if input `k` needs a gradient, else `None` (nothing is built).
    fn when(&mut self, k: usize, make: impl FnOnce(&mut Self) -> Result<NodeId>) -> Result<Option<NodeId>> {
        if self.needs[k] { make(self).map(Some) } else { Ok(None) }
    }
}

/// Dispatches to the op's VJP rule.
fn vjp(v: &mut Vjp) -> Result<Grads> {
    match v.node.op.clone() {
        Op::Conv2d(geom) => conv::conv2d(v, geom),
        Op::ConvTranspose2d { geom, out_pad } => conv::conv_transpose2d(v, geom, out_pad),
        Op::MatMul { trans_a, trans_b } => matmul::matmul(v, trans_a, trans_b),
        Op::Pool2d(geom) => pool::pool2d(v, geom),
        Op::Reduce { op, axes, .. } => reduce::reduce(v, op, &axes),
        Op::Unary(u) => pointwise::unary(v, u),
        Op::Binary(b) => pointwise::binary(v, b),
        Op::Softmax => norm::softmax(v),
        Op::LogSoftmax => norm::log_softmax(v),
        Op::SoftmaxCrossEntropy => norm::softmax_cross_entropy(v),
        Op::BatchNormInference { epsilon } => norm::batch_norm(v, epsilon),
        Op::Resize { mode, .. } => layout::resize(v, mode),
        Op::Concat { axis } => layout::concat(v, axis),
        Op::Pad { pads, mode, .. } => layout::pad(v, &pads, mode),
        Op::Reshape => layout::reshape(v),
        Op::Transpose { perm } => layout::transpose(v, &perm),
        Op::Dropout { rate, training } => layout::dropout(v, rate, training),
        Op::Broadcast { .. } => layout::broadcast(v),
        Op::Slice { starts, .. } => layout::slice(v, &starts),
        Op::Select => pointwise::select(v),
        Op::Gather { axis, batch_dims } => structural::gather(v, axis, batch_dims),
        Op::ScatterAdd { axis, batch_dims, .. } => structural::scatter_add(v, axis, batch_dims),
        Op::InstanceNorm { epsilon } => structural::instance_norm(v, epsilon),
        // Integer outputs carry no gradient (the driver never differentiates them).
        Op::TopK { .. } | Op::ArgSort { .. } | Op::ArgMax { .. } => Ok(vec![None]),
        // The final detections: a selection, not differentiated.
        Op::Nms { .. } => Ok(vec![None, None]),
        // No inputs: nothing to propagate to (the driver never gets here).
        Op::Input { .. } | Op::Param { .. } | Op::Fill { .. } | Op::Constant { .. } => Ok(Vec::new()),
        op @ (Op::UnaryGrad(_)
        | Op::Conv2dBackpropInput { .. }
        | Op::Conv2dBackpropFilter { .. }
        | Op::Pool2dBackprop(_)
        | Op::SoftmaxCrossEntropyGrad
        | Op::ResizeBackprop { .. }
        | Op::PadBackprop { .. }
        // Fusion runs after autodiff: fused nodes never need a gradient.
        | Op::Elementwise { .. }
        | Op::GemmEpilogue { .. }
        | Op::ReducePrologue { .. }
        | Op::PixelShuffleMatMul { .. }) => Err(no_vjp(&op, &v.node.layer)),
    }
}

/// The error for a path through an op without a VJP rule.
fn no_vjp(op: &Op, layer: &str) -> GraphError {
    GraphError::shape(
        layer,
        format!(
            "cannot differentiate through `{}`: it has no gradient rule (VJP); gradients of gradients \
             are not supported",
            op.name()
        ),
    )
}

/// Adds the contribution `c` to the gradient of `input` (a `Binary(Add)` after the first).
fn accumulate(graph: &mut Graph, grads: &mut [Option<NodeId>], input: NodeId, c: NodeId) -> Result<()> {
    let node = graph.node(input);
    if graph.shape(c) != node.ty.shape.as_slice() {
        return Err(GraphError::shape(
            &node.layer,
            format!(
                "internal error: a gradient of shape {} for the node {input} of shape {}",
                fmt_shape(graph.shape(c)),
                fmt_shape(&node.ty.shape)
            ),
        ));
    }
    let layer = node.layer.clone();
    let slot = &mut grads[input.index()];
    *slot = Some(match *slot {
        None => c,
        Some(prev) => graph.push(Op::Binary(BinaryOp::Add), &[prev, c], &layer)?,
    });
    Ok(())
}

/// Checks that `loss` and every `wrt` are nodes of `graph` and that the nodes up to `loss`
/// only read earlier nodes.
fn check_ids(graph: &Graph, loss: NodeId, wrt: &[NodeId]) -> Result<()> {
    let value_error = |message: String| GraphError::Value {
        what: "grad".to_string(),
        message,
    };
    let len = graph.nodes.len();
    if loss.index() >= len {
        return Err(value_error(format!("the loss {loss} is not a node of this graph")));
    }
    if let Some(w) = wrt.iter().find(|w| w.index() >= len) {
        return Err(value_error(format!("the wrt node {w} is not a node of this graph")));
    }
    for (i, node) in graph.nodes[..=loss.index()].iter().enumerate() {
        if let Some(bad) = node.inputs.iter().find(|j| j.index() >= i) {
            return Err(value_error(format!(
                "node %{i} (layer '{}') reads {bad}, which does not come before it",
                node.layer
            )));
        }
    }
    Ok(())
}

/// Marks the nodes (up to `loss`) that depend on some `wrt` node through `f32` tensors and that
/// `loss` depends on: the nodes whose gradient is needed.
fn on_path(graph: &Graph, loss: NodeId, wrt: &[NodeId]) -> Vec<bool> {
    let end = loss.index() + 1;
    let float = |i: usize| graph.nodes[i].ty.dtype == DType::F32;
    let mut from_wrt = vec![false; end];
    for w in wrt.iter().filter(|w| w.index() < end) {
        from_wrt[w.index()] = float(w.index());
    }
    for i in 0..end {
        if !from_wrt[i] && float(i) {
            from_wrt[i] = graph.nodes[i].inputs.iter().any(|j| from_wrt[j.index()]);
        }
    }
    let mut to_loss = vec![false; end];
    to_loss[loss.index()] = true;
    for i in (0..end).rev() {
        if to_loss[i] {
            for j in &graph.nodes[i].inputs {
                to_loss[j.index()] = true;
            }
        }
    }
    from_wrt.iter().zip(&to_loss).map(|(a, b)| *a && *b).collect()
}
