//! Tests of the driver: composition, accumulation, the path, errors and naming.

use super::grad;
use super::testing::{Check, fed};
use crate::error::GraphError;
use crate::init::Rng;
use crate::interp::evaluate_all;
use crate::ir::{
    BinaryOp, ConvGeometry, Graph, NodeId, Op, Pad2d, PoolGeometry, PoolKind, ReduceOp, TensorType, UnaryOp,
};

/// A small CNN: conv -> relu -> max pool -> flatten -> dense -> log-softmax, with its loss the
/// negative log-likelihood `sum(log_softmax * one_hot)` (times `R`, by the harness).
#[test]
fn a_small_cnn_matches_finite_differences_for_every_parameter_and_the_input() {
    let mut c = Check::new(Rng::new(42));
    let (n, h, w, ch, filters, classes) = (2, 6, 6, 2, 3, 4);
    let x = c.input("image", &[n, h, w, ch], -1.0, 1.0);
    let kernel = c.param("conv/kernel", &[3, 3, ch, filters], -0.5, 0.5);
    let bias = c.param("conv/bias", &[filters], -0.1, 0.1);
    let conv = c.push(
        Op::Conv2d(ConvGeometry {
            stride: (1, 1),
            dilation: (1, 1),
            pad: Pad2d {
                top: 1,
                bottom: 1,
                left: 1,
                right: 1,
            },
            groups: 1,
        }),
        &[x, kernel],
    );
    let biased = c.push(Op::Binary(BinaryOp::Add), &[conv, bias]);
    let act = c.push(Op::Unary(UnaryOp::Relu), &[biased]);
    let pooled = c.push(
        Op::Pool2d(PoolGeometry {
            kind: PoolKind::Max,
            size: (2, 2),
            stride: (2, 2),
            pad: Pad2d::default(),
        }),
        &[act],
    );
    let flat = c.graph.reshape(pooled, &[n, 3 * 3 * filters], "flatten").unwrap();
    let dense = c.param("dense/kernel", &[3 * 3 * filters, classes], -0.5, 0.5);
    let logits = c.push(
        Op::MatMul {
            trans_a: false,
            trans_b: false,
        },
        &[flat, dense],
    );
    let log_p = c.push(Op::LogSoftmax, &[logits]);
    let one_hot = c.input_values("labels", &[n, classes], vec![0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
    let picked = c.push(Op::Binary(BinaryOp::Mul), &[log_p, one_hot]);
    let nll = c.push(
        Op::Reduce {
            op: ReduceOp::Sum,
            axes: vec![0, 1],
            keep_dims: false,
        },
        &[picked],
    );
    let grads = c.check(nll, &[kernel, bias, dense, x]).unwrap();
    // Not vacuous: every parameter gets some gradient.
    for g in &grads {
        assert!(g.iter().any(|v| v.abs() > 1e-6), "{g:?}");
    }
}

/// `y = x * x + relu(x)`: `x` feeds three consumers (two of them the same node).
#[test]
fn gradients_of_a_node_with_several_consumers_accumulate() {
    let mut c = Check::new(Rng::new(1));
    let x = c.input("x", &[5], 0.1, 1.0);
    let sq = c.push(Op::Binary(BinaryOp::Mul), &[x, x]);
    let r = c.push(Op::Unary(UnaryOp::Relu), &[x]);
    let y = c.push(Op::Binary(BinaryOp::Add), &[sq, r]);
    c.check(y, &[x]).unwrap();

    // By hand: d/dx sum(x*x + relu(x)) = 2x + 1 for positive x.
    let mut g = Graph::new();
    let x = g.input("x", TensorType::f32(vec![3])).unwrap();
    let sq = g.push(Op::Binary(BinaryOp::Mul), &[x, x], "sq").unwrap();
    let r = g.push(Op::Unary(UnaryOp::Relu), &[x], "r").unwrap();
    let y = g.push(Op::Binary(BinaryOp::Add), &[sq, r], "y").unwrap();
    let dx = grad(&mut g, y, &[x]).unwrap()[0];
    let values = evaluate_all(&g, &fed(&[("x", vec![1.0, 2.0, 3.0])])).unwrap();
    assert_eq!(values[dx.index()], [3.0, 5.0, 7.0]);
}

#[test]
fn a_wrt_node_the_loss_does_not_depend_on_gets_zeros() {
    let mut g = Graph::new();
    let x = g.input("x", TensorType::f32(vec![2])).unwrap();
    let unused = g.param("other/kernel", &[3, 2], true, "other").unwrap();
    let after = g.input("late", TensorType::f32(vec![4])).unwrap();
    let y = g.push(Op::Unary(UnaryOp::Square), &[x], "sq").unwrap();
    let late = g.push(Op::Unary(UnaryOp::Exp), &[after], "late").unwrap();
    let d = grad(&mut g, y, &[unused, x, late]).unwrap();
    assert!(matches!(g.node(d[0]).op, Op::Fill { value } if value == 0.0));
    assert_eq!(g.shape(d[0]), [3, 2]);
    assert_eq!(g.node(d[0]).layer, "other");
    assert!(matches!(g.node(d[2]).op, Op::Fill { value } if value == 0.0));
    let f = fed(&[
        ("x", vec![1.5, -2.0]),
        ("other/kernel", vec![0.0; 6]),
        ("late", vec![0.0; 4]),
    ]);
    let values = evaluate_all(&g, &f).unwrap();
    assert_eq!(values[d[0].index()], [0.0; 6]);
    assert_eq!(values[d[1].index()], [3.0, -4.0]);
    assert_eq!(values[d[2].index()], [0.0; 4]);
}

#[test]
fn the_gradient_of_the_loss_itself_is_ones_and_a_vector_loss_means_its_sum() {
    let mut g = Graph::new();
    let x = g.input("x", TensorType::f32(vec![2, 2])).unwrap();
    let y = g.push(Op::Unary(UnaryOp::Scale(3.0)), &[x], "s").unwrap();
    let d = grad(&mut g, y, &[y, x]).unwrap();
    let values = evaluate_all(&g, &fed(&[("x", vec![1.0, 2.0, 3.0, 4.0])])).unwrap();
    assert_eq!(values[d[0].index()], [1.0; 4]);
    assert_eq!(values[d[1].index()], [3.0; 4]);
}

#[test]
fn the_gradient_with_respect_to_an_intermediate_node_stops_there() {
    // loss = sum(exp(h)), h = 2x: d/dh = exp(h), whatever is upstream of h.
    let mut g = Graph::new();
    let x = g.input("x", TensorType::f32(vec![2])).unwrap();
    let h = g.push(Op::Unary(UnaryOp::Scale(2.0)), &[x], "h").unwrap();
    let e = g.push(Op::Unary(UnaryOp::Exp), &[h], "e").unwrap();
    let d = grad(&mut g, e, &[h, x]).unwrap();
    let values = evaluate_all(&g, &fed(&[("x", vec![0.0, 0.5])])).unwrap();
    let e1 = 1f64.exp();
    assert_eq!(values[d[0].index()], [1.0, e1]);
    assert_eq!(values[d[1].index()], [2.0, 2.0 * e1]);
}

#[test]
fn an_op_without_a_vjp_on_the_path_is_an_error_naming_it_and_its_layer() {
    let mut g = Graph::new();
    let x = g.input("x", TensorType::f32(vec![3])).unwrap();
    let dy = g.input("dy", TensorType::f32(vec![3])).unwrap();
    let gr = g.push(Op::UnaryGrad(UnaryOp::Tanh), &[x, dy], "tanh_backward").unwrap();
    let loss = g.push(Op::Unary(UnaryOp::Square), &[gr], "loss").unwrap();
    let before = g.nodes.len();
    let err = grad(&mut g, loss, &[x]).unwrap_err();
    match &err {
        GraphError::Shape { layer, message } => {
            assert_eq!(layer, "tanh_backward");
            assert!(message.contains("tanh_grad"), "{message}");
        }
        other => panic!("expected a shape error, got {other:?}"),
    }
    assert!(g.nodes.len() >= before);
    // Off the path, the same op is no problem: the gradient with respect to a node after it.
    let mut g2 = Graph::new();
    let x = g2.input("x", TensorType::f32(vec![3])).unwrap();
    let dy = g2.input("dy", TensorType::f32(vec![3])).unwrap();
    let gr = g2
        .push(Op::UnaryGrad(UnaryOp::Tanh), &[x, dy], "tanh_backward")
        .unwrap();
    let z = g2.input("z", TensorType::f32(vec![3])).unwrap();
    let loss = g2.push(Op::Binary(BinaryOp::Mul), &[gr, z], "loss").unwrap();
    assert!(grad(&mut g2, loss, &[z]).is_ok());
}

#[test]
fn comparisons_on_the_path_carry_no_gradient() {
    // loss = sum(Ge(x, 0) * x): the mask is constant, so the gradient is the mask.
    let mut g = Graph::new();
    let x = g.input("x", TensorType::f32(vec![3])).unwrap();
    let zero = g.fill(&[1], 0.0, "zero").unwrap();
    let m = g.push(Op::Binary(BinaryOp::Ge), &[x, zero], "mask").unwrap();
    let y = g.push(Op::Binary(BinaryOp::Mul), &[m, x], "masked").unwrap();
    let d = grad(&mut g, y, &[x]).unwrap()[0];
    let values = evaluate_all(&g, &fed(&[("x", vec![-1.0, 2.0, 0.5])])).unwrap();
    assert_eq!(values[d.index()], [0.0, 1.0, 1.0]);
}

#[test]
fn bad_node_ids_are_errors_not_panics() {
    let mut g = Graph::new();
    let x = g.input("x", TensorType::f32(vec![3])).unwrap();
    assert!(matches!(grad(&mut g, NodeId(9), &[x]), Err(GraphError::Value { .. })));
    assert!(matches!(grad(&mut g, x, &[NodeId(9)]), Err(GraphError::Value { .. })));
    // A malformed graph (a node reading a later one) is an error too.
    let y = g.push(Op::Unary(UnaryOp::Exp), &[x], "e").unwrap();
    let z = g.push(Op::Unary(UnaryOp::Exp), &[y], "e2").unwrap();
    g.nodes[y.index()].inputs[0] = z;
    assert!(matches!(grad(&mut g, z, &[x]), Err(GraphError::Value { .. })));
}

#[test]
fn gradient_nodes_are_named_after_the_forward_layers() {
    let mut g = Graph::new();
    let x = g.input("x", TensorType::f32(vec![2, 3])).unwrap();
    let k = g.param("dense/kernel", &[3, 4], true, "dense").unwrap();
    let y = g
        .push(
            Op::MatMul {
                trans_a: false,
                trans_b: false,
            },
            &[x, k],
            "dense",
        )
        .unwrap();
    let a = g.push(Op::Unary(UnaryOp::Tanh), &[y], "activation").unwrap();
    let before = g.nodes.len();
    let d = grad(&mut g, a, &[k]).unwrap();
    let mm = g.node(d[0]);
    assert!(matches!(mm.op, Op::MatMul { trans_a: true, .. }), "{:?}", mm.op);
    assert_eq!(mm.layer, "dense");
    let layers: Vec<&str> = g.nodes[before..].iter().map(|n| n.layer.as_str()).collect();
    // The seed (named after the loss), the tanh gradient, the matmul gradient.
    assert_eq!(layers, ["activation", "activation", "dense"]);
    // Only the kernel's gradient was built: no gradient for x.
    assert_eq!(
        g.nodes[before..]
            .iter()
            .filter(|n| matches!(n.op, Op::MatMul { .. }))
            .count(),
        1
    );
}

/// The composite L2 normalisation (graph/src/ops.rs) differentiates through its nodes.
#[test]
fn l2_normalize_matches_finite_differences() {
    for (shape, axes) in [(vec![3, 4], vec![1]), (vec![2, 3, 5], vec![1, 2]), (vec![5], vec![0])] {
        let mut c = Check::new(Rng::new(7 + shape.len() as u64));
        let x = c.input("x", &shape, -1.0, 1.0);
        let y = crate::ops::l2_normalize(&mut c.graph, x, &axes, 1e-12, "embed").unwrap();
        c.check(y, &[x]).unwrap_or_else(|e| panic!("{shape:?} {axes:?}: {e}"));
    }
    // A row below epsilon: the gradient is that of x / sqrt(eps).
    let mut c = Check::new(Rng::new(3));
    let x = c.input("x", &[2, 3], -0.01, 0.01);
    let y = crate::ops::l2_normalize(&mut c.graph, x, &[1], 0.5, "embed").unwrap();
    let g = c.check(y, &[x]).unwrap();
    assert!(g[0].iter().any(|v| v.abs() > 0.0));
}
