//! The CPU reference interpreter: evaluates a graph in `f64`, one plainly written loop nest per
//! op. It is the oracle every GPU kernel, pass and gradient is checked against, so it favours
//! obvious correctness over speed.
//!
//! Values are row-major `Vec<f64>` (NHWC for images), one per node. Before computing a node the
//! interpreter re-runs shape inference on the shapes it is given, so a malformed graph or a wrong
//! call to [`eval_op`] is an error, never a panic or a silent out-of-bounds read.

mod conv;
mod conv_grad;
mod layout;
pub mod nms;
mod norm;
mod pointwise;
mod pool;
mod reduce;
mod resize;
mod structural;
#[cfg(test)]
mod testing;

use crate::error::{GraphError, Result};
use crate::ir::{Graph, Op, TensorType, fmt_shape, numel};
use std::collections::HashMap;

/// Values fed to the interpreter, by name: an `Op::Input`'s `name` or an `Op::Param`'s `name`.
pub type Feeds = HashMap<String, Vec<f64>>;

/// One input of an op: its shape and its row-major values.
type Arg<'a> = (&'a [usize], &'a [f64]);

/// Evaluates every node; returns one row-major `Vec<f64>` per node (index = `NodeId::index()`).
///
/// `Input` and `Param` nodes take their values from `feeds` by name; a missing feed or one of
/// the wrong length is a [`GraphError::Value`] naming the input or parameter.
pub fn evaluate_all(graph: &Graph, feeds: &Feeds) -> Result<Vec<Vec<f64>>> {
    let mut values: Vec<Vec<f64>> = Vec::with_capacity(graph.nodes.len());
    for (index, node) in graph.nodes.iter().enumerate() {
        let value = match &node.op {
            Op::Input { name } | Op::Param { name, .. } => fed_value(feeds, name, &node.ty.shape)?,
            op => {
                let mut inputs: Vec<Arg> = Vec::with_capacity(node.inputs.len());
                for &id in &node.inputs {
                    if id.index() >= index {
                        return Err(value_error(
                            &node.layer,
                            format!("node %{index} reads {id}, which does not come before it in the graph"),
                        ));
                    }
                    inputs.push((&graph.nodes[id.index()].ty.shape, &values[id.index()]));
                }
                eval_op(op, &inputs, &node.ty.shape, &node.layer)?
            }
        };
        values.push(value);
    }
    Ok(values)
}

/// Evaluates the graph and returns the values of `graph.outputs`, in order.
pub fn evaluate(graph: &Graph, feeds: &Feeds) -> Result<Vec<Vec<f64>>> {
    if let Some(bad) = graph.outputs.iter().find(|id| id.index() >= graph.nodes.len()) {
        return Err(value_error(
            "outputs",
            format!("output {bad} is not a node of this graph"),
        ));
    }
    let values = evaluate_all(graph, feeds)?;
    Ok(graph.outputs.iter().map(|id| values[id.index()].clone()).collect())
}

/// Evaluates a single op on explicit input values (shapes from the node types). Used by tests
/// and finite differences.
///
/// `inputs` are `(shape, values)` pairs in the order the op documents; `out_shape` is the
/// node's output shape and must equal what shape inference gives for the input shapes. Errors
/// name `layer`. `Input` and `Param` are not computed (they are fed); both are errors here.
pub fn eval_op(op: &Op, inputs: &[(&[usize], &[f64])], out_shape: &[usize], layer: &str) -> Result<Vec<f64>> {
    match op {
        Op::Input { name } | Op::Param { name, .. } => Err(value_error(
            layer,
            format!("`{name}` is fed, not computed: give its value in the feeds"),
        )),
        _ => {
            check_shapes(op, inputs, out_shape, layer)?;
            Ok(compute(op, inputs, out_shape))
        }
    }
}

/// Computes a checked op (every shape agrees with shape inference).
fn compute(op: &Op, inputs: &[Arg], out_shape: &[usize]) -> Vec<f64> {
    match op {
        Op::Conv2d(geom) => conv::conv2d(geom, inputs[0], inputs[1], out_shape),
        Op::ConvTranspose2d { geom, out_pad } => {
            conv::conv_transpose2d(geom, *out_pad, inputs[0], inputs[1], out_shape)
        }
        Op::MatMul { trans_a, trans_b } => conv::matmul(*trans_a, *trans_b, inputs[0], inputs[1], out_shape),
        Op::PixelShuffleMatMul { block } => conv::pixel_shuffle_matmul(*block, inputs[0], inputs[1], out_shape),
        Op::Pool2d(geom) => pool::pool2d(geom, inputs[0], out_shape),
        Op::Reduce { op, axes, .. } => reduce::reduce(*op, axes, inputs[0]),
        Op::Unary(u) => pointwise::unary(*u, inputs[0].1),
        Op::Binary(b) => pointwise::binary(*b, inputs[0], inputs[1], out_shape),
        Op::Softmax => norm::softmax(inputs[0]),
        Op::LogSoftmax => norm::log_softmax(inputs[0]),
        Op::SoftmaxCrossEntropy => norm::softmax_cross_entropy(inputs[0], inputs[1]),
        Op::SoftmaxCrossEntropyGrad => norm::softmax_cross_entropy_grad(inputs[0], inputs[1], inputs[2]),
        Op::BatchNormInference { epsilon } => norm::batch_norm(*epsilon, inputs),
        Op::Resize { mode, .. } => resize::resize(*mode, inputs[0], out_shape),
        Op::Concat { axis } => layout::concat(*axis, inputs, out_shape),
        Op::Pad { pads, value, mode } => layout::pad(pads, *value, *mode, inputs[0], out_shape),
        Op::PadBackprop { pads, mode } => layout::pad_backprop(pads, *mode, inputs[0], out_shape),
        Op::Transpose { perm } => layout::transpose(perm, inputs[0], out_shape),
        Op::Dropout { rate, training: true } => pointwise::dropout(*rate, inputs[0].1, inputs[1].1[0]),
        Op::UnaryGrad(u) => pointwise::unary_grad(*u, inputs[0].1, inputs[1].1),
        Op::Conv2dBackpropInput { geom, filter, .. } => {
            conv_grad::backprop_input(geom, *filter, inputs[0], inputs[1], out_shape)
        }
        Op::Conv2dBackpropFilter { geom, .. } => conv_grad::backprop_filter(geom, inputs[0], inputs[1], out_shape),
        Op::Pool2dBackprop(geom) => pool::pool2d_backprop(geom, inputs[0], inputs[1]),
        Op::ResizeBackprop { mode, .. } => resize::resize_backprop(*mode, inputs[0], out_shape),
        Op::Broadcast { .. } => layout::broadcast(inputs[0], out_shape),
        Op::Slice { starts, .. } => layout::slice(starts, inputs[0], out_shape),
        Op::Fill { value } => vec![f64::from(*value); numel(out_shape)],
        Op::Constant { value } => value.tensor().to_f64(),
        Op::Elementwise { expr } => pointwise::elementwise(expr, inputs, out_shape),
        Op::Select => {
            let expr = crate::ir::ElemExpr::select(
                crate::ir::ElemExpr::Input(0),
                crate::ir::ElemExpr::Input(1),
                crate::ir::ElemExpr::Input(2),
            );
            pointwise::elementwise(&expr, inputs, out_shape)
        }
        Op::ReducePrologue { op, axes, expr, .. } => {
            let x_shape = inputs
                .iter()
                .try_fold(Vec::new(), |acc: Vec<usize>, a| crate::ir::broadcast_shapes(&acc, a.0))
                .expect("inputs checked by shape inference");
            let x = pointwise::elementwise(expr, inputs, &x_shape);
            reduce::reduce(*op, axes, (&x_shape, &x))
        }
        Op::GemmEpilogue { base, expr } => {
            let y = compute(base, &inputs[..2], out_shape);
            let mut args: Vec<Arg> = vec![(out_shape, &y)];
            args.extend_from_slice(&inputs[2..]);
            pointwise::elementwise(expr, &args, out_shape)
        }
        Op::Gather { axis, batch_dims } => structural::gather(*axis, *batch_dims, inputs[0], inputs[1]),
        Op::ScatterAdd { axis, batch_dims, .. } => {
            structural::scatter_add(*axis, *batch_dims, inputs[0], inputs[1], out_shape)
        }
        Op::TopK { k } => structural::top_k(*k, inputs[0]),
        Op::ArgSort { axis, descending } => structural::argsort(*axis, *descending, inputs[0]),
        Op::ArgMax { axis } => structural::argmax(*axis, inputs[0]),
        Op::InstanceNorm { epsilon } => structural::instance_norm(*epsilon, inputs),
        Op::Nms {
            iou_threshold,
            score_threshold,
            max_detections,
        } => nms::nms(*iou_threshold, *score_threshold, *max_detections, inputs[0], inputs[1]),
        // Reshape is a copy; inference-mode dropout is the identity. `Input` and `Param` never
        // get here (`eval_op` rejects them) and have no inputs, so they copy nothing.
        Op::Reshape | Op::Dropout { training: false, .. } | Op::Input { .. } | Op::Param { .. } => {
            inputs.first().map(|x| x.1.to_vec()).unwrap_or_default()
        }
    }
}

/// Checks that every input has as many values as its shape says, and that `out_shape` is what
/// shape inference gives for the input shapes (by building a one-node graph).
fn check_shapes(op: &Op, inputs: &[Arg], out_shape: &[usize], layer: &str) -> Result<()> {
    for (i, (shape, data)) in inputs.iter().enumerate() {
        if data.len() != numel(shape) {
            return Err(value_error(
                layer,
                format!(
                    "input {i} of {}: expected {} values for shape {}, got {}",
                    op.name(),
                    numel(shape),
                    fmt_shape(shape),
                    data.len()
                ),
            ));
        }
    }
    let inferred = if let Op::Fill { value } = op {
        // A fill has no inputs and no shape rule: its type is whatever it is made with.
        if !inputs.is_empty() {
            return Err(GraphError::shape(
                layer,
                format!("fill takes no inputs, got {}", inputs.len()),
            ));
        }
        let mut g = Graph::new();
        let id = g.fill(out_shape, *value, layer)?;
        g.shape(id).to_vec()
    } else if let Op::Constant { value } = op {
        if !inputs.is_empty() {
            return Err(GraphError::shape(
                layer,
                format!("constant takes no inputs, got {}", inputs.len()),
            ));
        }
        let mut g = Graph::new();
        let id = g.constant(value.0.clone(), layer)?;
        g.shape(id).to_vec()
    } else if let Op::Reshape = op {
        if inputs.len() != 1 {
            return Err(GraphError::shape(
                layer,
                format!("reshape takes 1 input, got {}", inputs.len()),
            ));
        }
        if numel(inputs[0].0) != numel(out_shape) {
            return Err(GraphError::shape(
                layer,
                format!("cannot reshape {} to {}", fmt_shape(inputs[0].0), fmt_shape(out_shape)),
            ));
        }
        out_shape.to_vec()
    } else {
        let mut g = Graph::new();
        let ids = inputs
            .iter()
            .enumerate()
            .map(|(k, (shape, _))| {
                let ty = TensorType {
                    shape: shape.to_vec(),
                    dtype: crate::ir::input_dtype(op, k),
                };
                g.input(layer, ty)
            })
            .collect::<Result<Vec<_>>>()?;
        let id = g.push(op.clone(), &ids, layer)?;
        g.shape(id).to_vec()
    };
    if inferred != out_shape {
        return Err(value_error(
            layer,
            format!(
                "{} gives shape {}, but the output shape given is {}",
                op.name(),
                fmt_shape(&inferred),
                fmt_shape(out_shape)
            ),
        ));
    }
    Ok(())
}

/// The fed value of an input or parameter, checked against its shape.
fn fed_value(feeds: &Feeds, name: &str, shape: &[usize]) -> Result<Vec<f64>> {
    let want = numel(shape);
    match feeds.get(name) {
        Some(v) if v.len() == want => Ok(v.clone()),
        Some(v) => Err(value_error(
            name,
            format!("expected {want} values for shape {}, got {}", fmt_shape(shape), v.len()),
        )),
        None => Err(value_error(
            name,
            format!(
                "expected {want} values for shape {}, got none (no feed)",
                fmt_shape(shape)
            ),
        )),
    }
}

fn value_error(what: &str, message: impl Into<String>) -> GraphError {
    GraphError::Value {
        what: what.to_string(),
        message: message.into(),
    }
}

/// Row-major strides of `shape` (the last axis has stride 1).
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Writes the multi-index of the row-major linear index `i` of `shape` into `index`.
fn unravel(mut i: usize, shape: &[usize], index: &mut [usize]) {
    for (axis, &d) in shape.iter().enumerate().rev() {
        index[axis] = i % d;
        i /= d;
    }
}

/// The input position `o * stride + k * dilation - pad` of output position `o` and kernel tap
/// `k`, or `None` if it falls outside `0..len` (padding).
fn tap(o: usize, stride: usize, k: usize, dilation: usize, pad: usize, len: usize) -> Option<usize> {
    (o * stride + k * dilation).checked_sub(pad).filter(|&i| i < len)
}

#[cfg(test)]
mod tests {
    use super::testing::run_op;
    use super::*;
    use crate::ir::{NodeId, UnaryOp};

    /// `x (2, 2)` input, `op/scale (2,)` param, `y = relu(x) * scale`.
    fn small_graph() -> (Graph, NodeId, NodeId) {
        let mut g = Graph::new();
        let x = g.input("x", TensorType::f32(vec![2, 2])).unwrap();
        let s = g.param("op/scale", &[2], true, "op").unwrap();
        let r = g.push(Op::Unary(UnaryOp::Relu), &[x], "op").unwrap();
        let y = g.push(Op::Binary(crate::ir::BinaryOp::Mul), &[r, s], "op").unwrap();
        g.outputs = vec![y, r];
        (g, r, y)
    }

    fn feeds(pairs: &[(&str, Vec<f64>)]) -> Feeds {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn evaluates_every_node_and_returns_the_outputs_in_order() {
        let (g, r, y) = small_graph();
        let f = feeds(&[("x", vec![-1.0, 2.0, 3.0, -4.0]), ("op/scale", vec![10.0, 100.0])]);
        let all = evaluate_all(&g, &f).unwrap();
        assert_eq!(all.len(), g.nodes.len());
        assert_eq!(all[r.index()], vec![0.0, 2.0, 3.0, 0.0]);
        // Row [0, 2] times [10, 100], row [3, 0] times [10, 100].
        assert_eq!(all[y.index()], vec![0.0, 200.0, 30.0, 0.0]);
        let outs = evaluate(&g, &f).unwrap();
        assert_eq!(outs, vec![vec![0.0, 200.0, 30.0, 0.0], vec![0.0, 2.0, 3.0, 0.0]]);
    }

    #[test]
    fn a_missing_feed_is_a_value_error_naming_it() {
        let (g, _, _) = small_graph();
        let err = evaluate(&g, &feeds(&[("x", vec![0.0; 4])])).unwrap_err();
        match err {
            GraphError::Value { what, message } => {
                assert_eq!(what, "op/scale");
                assert!(message.contains("expected 2 values for shape (2,)"), "{message}");
            }
            other => panic!("expected a value error, got {other:?}"),
        }
        let err = evaluate(&g, &feeds(&[("op/scale", vec![0.0; 2])])).unwrap_err();
        assert!(matches!(&err, GraphError::Value { what, .. } if what == "x"), "{err:?}");
    }

    #[test]
    fn a_feed_of_the_wrong_length_is_a_value_error() {
        let (g, _, _) = small_graph();
        let err = evaluate(&g, &feeds(&[("x", vec![0.0; 3]), ("op/scale", vec![0.0; 2])])).unwrap_err();
        assert_eq!(
            err,
            GraphError::Value {
                what: "x".into(),
                message: "expected 4 values for shape (2, 2), got 3".into()
            }
        );
        let err = evaluate(&g, &feeds(&[("x", vec![0.0; 4]), ("op/scale", vec![0.0; 5])])).unwrap_err();
        assert_eq!(
            err,
            GraphError::Value {
                what: "op/scale".into(),
                message: "expected 2 values for shape (2,), got 5".into()
            }
        );
    }

    #[test]
    fn inference_dropout_is_the_identity() {
        let x = [1.0, -2.0, 3.0];
        let (_, y) = run_op(
            Op::Dropout {
                rate: 0.5,
                training: false,
            },
            &[(&[3], &x)],
        );
        assert_eq!(y, x);
    }

    #[test]
    fn training_dropout_keeps_the_elements_the_hash_keeps_and_scales_them() {
        let rate = 0.25f32;
        let x: Vec<f64> = (1..=64).map(f64::from).collect();
        let op = Op::Dropout { rate, training: true };
        for seed in [0u32, 7, 12345] {
            let (shape, y) = run_op(op.clone(), &[(&[8, 8], &x), (&[1], &[f64::from(seed)])]);
            assert_eq!(shape, [8, 8]);
            let mut kept = 0;
            for (i, (&v, &out)) in x.iter().zip(&y).enumerate() {
                if crate::ir::dropout_uniform(seed, i as u32) >= rate {
                    assert_eq!(out, v * (1.0 / 0.75), "seed {seed} element {i}");
                    kept += 1;
                } else {
                    assert_eq!(out, 0.0, "seed {seed} element {i}");
                }
            }
            // About three quarters survive; and some are dropped.
            assert!((36..=60).contains(&kept), "seed {seed}: kept {kept} of 64");
        }
        // Another seed drops other elements.
        let (_, a) = run_op(op.clone(), &[(&[8, 8], &x), (&[1], &[1.0])]);
        let (_, b) = run_op(op, &[(&[8, 8], &x), (&[1], &[2.0])]);
        assert_ne!(a, b);
    }

    #[test]
    fn fill_gives_its_value_everywhere_and_checks_its_shape() {
        let op = Op::Fill { value: 2.5 };
        assert_eq!(eval_op(&op, &[], &[2, 3], "f").unwrap(), vec![2.5; 6]);
        // Fills take no inputs and no zero-length axes.
        assert!(eval_op(&op, &[(&[1], &[0.0])], &[1], "f").is_err());
        assert!(eval_op(&op, &[], &[2, 0], "f").is_err());
        let mut g = Graph::new();
        let f = g.fill(&[2, 2], -1.0, "ones").unwrap();
        g.outputs.push(f);
        assert_eq!(evaluate(&g, &Feeds::new()).unwrap()[0], vec![-1.0; 4]);
    }

    #[test]
    fn reshape_copies_the_values_in_order() {
        let mut g = Graph::new();
        let x = g.input("x", TensorType::f32(vec![2, 3])).unwrap();
        let y = g.reshape(x, &[3, 2], "flat").unwrap();
        g.outputs.push(y);
        let data: Vec<f64> = (1..=6).map(f64::from).collect();
        let out = evaluate(&g, &feeds(&[("x", data.clone())])).unwrap();
        assert_eq!(out[0], data);
        assert!(eval_op(&Op::Reshape, &[(&[2, 3], &data)], &[4, 2], "flat").is_err());
    }

    #[test]
    fn eval_op_rejects_inconsistent_shapes_instead_of_panicking() {
        let relu = Op::Unary(UnaryOp::Relu);
        // Too few values for the shape.
        assert!(eval_op(&relu, &[(&[2, 2], &[1.0, 2.0])], &[2, 2], "l").is_err());
        // An output shape that shape inference does not give.
        assert!(eval_op(&relu, &[(&[2, 2], &[0.0; 4])], &[4], "l").is_err());
        // Wrong arity.
        assert!(eval_op(&relu, &[], &[1], "l").is_err());
        // Inputs and params are fed, not computed.
        assert!(eval_op(&Op::Input { name: "x".into() }, &[], &[1], "l").is_err());
        // And a correct call works.
        assert_eq!(
            eval_op(&relu, &[(&[2], &[-1.0, 1.0])], &[2], "l").unwrap(),
            vec![0.0, 1.0]
        );
    }

    #[test]
    fn a_malformed_graph_is_an_error() {
        let (mut g, _, y) = small_graph();
        // Make the relu read the node after it.
        g.nodes[2].inputs[0] = y;
        let f = feeds(&[("x", vec![0.0; 4]), ("op/scale", vec![0.0; 2])]);
        assert!(matches!(evaluate_all(&g, &f), Err(GraphError::Value { .. })));
        let (mut g, _, _) = small_graph();
        g.outputs.push(NodeId(99));
        assert!(evaluate(&g, &f).is_err());
        // A node whose recorded type disagrees with shape inference.
        let (mut g, r, _) = small_graph();
        g.nodes[r.index()].ty = TensorType::f32(vec![4]);
        assert!(evaluate_all(&g, &f).is_err());
    }
}
