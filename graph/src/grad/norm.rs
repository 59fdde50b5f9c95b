//! VJPs of the normalisations. With `S(t) = Reduce Sum(t)` over the last axis (kept), and for
//! batch norm `sd = Sqrt(AddScalar(eps)(var))`, `xhat = (x - mean) / sd` and sums `Σ` over
//! every axis but the last:
//!
//! | op | input gradients |
//! | --- | --- |
//! | `Softmax` | `y * (dy - S(dy * y))` |
//! | `LogSoftmax` | `dy - Exp(y) * S(dy)` |
//! | `SoftmaxCrossEntropy` | `logits`: `SoftmaxCrossEntropyGrad(logits, labels, dy)`; `labels`: `-LogSoftmax(logits) * dy` (`dy` with a unit class axis) |
//! | `BatchNormInference` | `x`: `dy * gamma / sd`; `gamma`: `Σ dy * xhat`; `beta`: `Σ dy`; `mean`: `-Σ dy * gamma / sd`; `variance`: `-0.5 * (Σ dy * xhat) * gamma / (var + eps)` |

use super::{Grads, Vjp};
use crate::error::{GraphError, Result};
use crate::ir::{BinaryOp, NodeId, Op, ReduceOp, UnaryOp};

/// `Reduce Sum` of `t` over its last axis, keeping it.
fn sum_last(v: &mut Vjp, t: NodeId) -> Result<NodeId> {
    let rank = v.graph.shape(t).len();
    if rank == 0 {
        return Err(GraphError::shape(
            &v.node.layer,
            "softmax of a rank-0 tensor has no gradient rule",
        ));
    }
    v.push(
        Op::Reduce {
            op: ReduceOp::Sum,
            axes: vec![rank - 1],
            keep_dims: true,
        },
        &[t],
    )
}

/// `Softmax` of `x`: `dx = y * (dy - sum(dy * y))`.
pub(super) fn softmax(v: &mut Vjp) -> Result<Grads> {
    let (y, dy) = (v.id, v.dy);
    let dx = v.when(0, |v| {
        let p = v.binary(BinaryOp::Mul, dy, y)?;
        let s = sum_last(v, p)?;
        let d = v.binary(BinaryOp::Sub, dy, s)?;
        v.binary(BinaryOp::Mul, y, d)
    })?;
    Ok(vec![dx])
}

/// `LogSoftmax` of `x`: `dx = dy - exp(y) * sum(dy)`.
pub(super) fn log_softmax(v: &mut Vjp) -> Result<Grads> {
    let (y, dy) = (v.id, v.dy);
    let dx = v.when(0, |v| {
        let s = sum_last(v, dy)?;
        let p = v.unary(UnaryOp::Exp, y)?;
        let t = v.binary(BinaryOp::Mul, p, s)?;
        v.binary(BinaryOp::Sub, dy, t)
    })?;
    Ok(vec![dx])
}

/// `SoftmaxCrossEntropy` of `logits, labels`: `dlogits = SoftmaxCrossEntropyGrad(logits, labels,
/// dy)`, `dlabels = -log_softmax(logits) * dy` with `dy` reshaped to the logits' shape with a
/// class axis of 1 (so it broadcasts along the row).
pub(super) fn softmax_cross_entropy(v: &mut Vjp) -> Result<Grads> {
    let (logits, labels, dy) = (v.x(0), v.x(1), v.dy);
    let dlogits = v.when(0, |v| v.push(Op::SoftmaxCrossEntropyGrad, &[logits, labels, dy]))?;
    let dlabels = v.when(1, |v| {
        let mut per_row = v.shape(logits);
        if let Some(last) = per_row.last_mut() {
            *last = 1;
        }
        let log_p = v.push(Op::LogSoftmax, &[logits])?;
        let d = v.reshape(dy, &per_row)?;
        let p = v.binary(BinaryOp::Mul, log_p, d)?;
        v.unary(UnaryOp::Neg, p)
    })?;
    Ok(vec![dlogits, dlabels])
}

/// `BatchNormInference { epsilon }` of `x, gamma, beta, mean, variance`: all five gradients.
pub(super) fn batch_norm(v: &mut Vjp, epsilon: f32) -> Result<Grads> {
    let [x, gamma, _, mean, var] = [0, 1, 2, 3, 4].map(|k| v.x(k));
    let dy = v.dy;
    let c = v.shape(gamma);
    // var + eps and its square root: needed by every gradient but beta's.
    let (var_eps, sd) = if v.needs[0] || v.needs[1] || v.needs[3] || v.needs[4] {
        let var_eps = v.unary(UnaryOp::AddScalar(epsilon), var)?;
        (var_eps, v.unary(UnaryOp::Sqrt, var_eps)?)
    } else {
        (var, var) // unused
    };
    // gamma / sd, shared by the gradients of x and the mean.
    let scale = if v.needs[0] || v.needs[3] {
        Some(v.binary(BinaryOp::Div, gamma, sd)?)
    } else {
        None
    };
    let dx = v.when(0, |v| v.binary(BinaryOp::Mul, dy, scale.expect("built above")))?;
    // Σ dy * xhat, shared by gamma and the variance.
    let dgamma = if v.needs[1] || v.needs[4] {
        let centred = v.binary(BinaryOp::Sub, x, mean)?;
        let xhat = v.binary(BinaryOp::Div, centred, sd)?;
        let p = v.binary(BinaryOp::Mul, dy, xhat)?;
        Some(v.sum_to(p, &c)?)
    } else {
        None
    };
    // Σ dy, shared by beta and the mean.
    let dbeta = if v.needs[2] || v.needs[3] {
        Some(v.sum_to(dy, &c)?)
    } else {
        None
    };
    let dmean = v.when(3, |v| {
        let p = v.binary(BinaryOp::Mul, dbeta.expect("built above"), scale.expect("built above"))?;
        v.unary(UnaryOp::Neg, p)
    })?;
    let dvar = v.when(4, |v| {
        let p = v.binary(BinaryOp::Mul, dgamma.expect("built above"), gamma)?;
        let q = v.binary(BinaryOp::Div, p, var_eps)?;
        v.unary(UnaryOp::Scale(-0.5), q)
    })?;
    let keep = |needed: bool, g: Option<NodeId>| g.filter(|_| needed);
    Ok(vec![dx, keep(v.needs[1], dgamma), keep(v.needs[2], dbeta), dmean, dvar])
}

#[cfg(test)]
mod tests {
    use super::super::grad;
    use super::super::testing::{Check, fed};
    use crate::error::GraphError;
    use crate::init::Rng;
    use crate::interp::evaluate_all;
    use crate::ir::{BinaryOp, Graph, Op, ReduceOp, TensorType, UnaryOp};
    use proptest::prelude::*;

    /// The logits' gradient is one `SoftmaxCrossEntropyGrad` node (no log-softmax chain), equal
    /// to the gradient autodiff gives the composed `-sum(labels * log_softmax)` graph.
    #[test]
    fn the_logits_gradient_is_one_fused_node_equal_to_the_composed_chains() {
        let shape = [3, 5];
        let mut rng = Rng::new(7);
        let logits: Vec<f64> = (0..15).map(|_| rng.uniform_in(-80.0, 80.0)).collect();
        let labels: Vec<f64> = (0..15).map(|i| if i % 5 == i / 5 { 1.0 } else { 0.0 }).collect();
        let feeds = fed(&[("x", logits), ("t", labels)]);
        let mut dx = Vec::new();
        for fused in [true, false] {
            let mut g = Graph::new();
            let x = g.input("x", TensorType::f32(shape.to_vec())).unwrap();
            let t = g.input("t", TensorType::f32(shape.to_vec())).unwrap();
            let per_row = if fused {
                g.push(Op::SoftmaxCrossEntropy, &[x, t], "loss").unwrap()
            } else {
                let lp = g.push(Op::LogSoftmax, &[x], "loss").unwrap();
                let m = g.push(Op::Binary(BinaryOp::Mul), &[t, lp], "loss").unwrap();
                let reduce = Op::Reduce {
                    op: ReduceOp::Sum,
                    axes: vec![1],
                    keep_dims: false,
                };
                let s = g.push(reduce, &[m], "loss").unwrap();
                g.push(Op::Unary(UnaryOp::Neg), &[s], "loss").unwrap()
            };
            let mean = Op::Reduce {
                op: ReduceOp::Mean,
                axes: vec![0],
                keep_dims: false,
            };
            let loss = g.push(mean, &[per_row], "loss").unwrap();
            let before = g.nodes.len();
            let d = grad(&mut g, loss, &[x]).unwrap()[0];
            if fused {
                assert!(
                    matches!(g.node(d).op, Op::SoftmaxCrossEntropyGrad),
                    "{:?}",
                    g.node(d).op
                );
                assert!(!g.nodes[before..].iter().any(|n| matches!(n.op, Op::LogSoftmax)));
            }
            dx.push(evaluate_all(&g, &feeds).unwrap()[d.index()].clone());
        }
        for (a, b) in dx[0].iter().zip(&dx[1]) {
            assert!((a - b).abs() <= 1e-12, "{:?} vs {:?}", dx[0], dx[1]);
        }
    }

    #[test]
    fn the_gradient_op_itself_has_no_vjp_and_the_error_names_it() {
        let mut g = Graph::new();
        let x = g.input("x", TensorType::f32(vec![2, 3])).unwrap();
        let t = g.input("t", TensorType::f32(vec![2, 3])).unwrap();
        let d = g.input("d", TensorType::f32(vec![2])).unwrap();
        let gr = g
            .push(Op::SoftmaxCrossEntropyGrad, &[x, t, d], "xent_backward")
            .unwrap();
        let err = grad(&mut g, gr, &[x]).unwrap_err();
        match &err {
            GraphError::Shape { layer, message } => {
                assert_eq!(layer, "xent_backward");
                assert!(message.contains("softmax_cross_entropy_grad"), "{message}");
            }
            other => panic!("expected a shape error, got {other:?}"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn softmax_and_log_softmax_match_finite_differences(
            shape in prop::collection::vec(1usize..5, 1..4),
            seed in any::<u64>(),
        ) {
            for op in [Op::Softmax, Op::LogSoftmax] {
                let mut c = Check::new(Rng::new(seed));
                let x = c.input("x", &shape, -3.0, 3.0);
                let y = c.push(op, &[x]);
                c.check(y, &[x])?;
            }
        }

        #[test]
        fn softmax_cross_entropy_matches_finite_differences_for_logits_and_labels(
            lead in prop::collection::vec(1usize..4, 0..3),
            classes in prop_oneof![Just(1usize), 2usize..6, Just(7usize)],
            seed in any::<u64>(),
        ) {
            let mut shape = lead;
            shape.push(classes);
            let mut c = Check::new(Rng::new(seed));
            let logits = c.input("logits", &shape, -3.0, 3.0);
            // Labels need not be a distribution: the rule holds for any weights (and the
            // gradient's `sum_k labels[k]` factor is exercised).
            let labels = c.param("loss/labels", &shape, 0.0, 1.0);
            let y = c.push(Op::SoftmaxCrossEntropy, &[logits, labels]);
            c.check(y, &[logits, labels])?;
        }

        #[test]
        fn batch_norm_matches_finite_differences_for_all_five_inputs(
            lead in prop::collection::vec(1usize..4, 0..3),
            channels in 1usize..5,
            seed in any::<u64>(),
        ) {
            let mut shape = lead;
            shape.push(channels);
            let mut c = Check::new(Rng::new(seed));
            let x = c.input("x", &shape, -2.0, 2.0);
            let gamma = c.param("bn/gamma", &[channels], -2.0, 2.0);
            let beta = c.param("bn/beta", &[channels], -1.0, 1.0);
            let mean = c.param("bn/moving_mean", &[channels], -1.0, 1.0);
            let var = c.param("bn/moving_variance", &[channels], 0.3, 2.0);
            let y = c.push(Op::BatchNormInference { epsilon: 0.01 }, &[x, gamma, beta, mean, var]);
            c.check(y, &[x, gamma, beta, mean, var])?;
        }
    }
}
