//! VJPs of reductions, and [`sum_to_shape`], the reduction that undoes a broadcast.
//!
//! | op | input gradient |
//! | --- | --- |
//! | `Reduce Sum` | `Broadcast(reshape(dy, kept))` |
//! | `Reduce Mean` | `Broadcast(Scale(1 / count)(reshape(dy, kept)))` |
//! | `Reduce Max`, `Reduce Min` | `m * reshape(dy, kept) / Reduce Sum(m)` with `m = Eq(x, reshape(y, kept))` |
//!
//! `kept` is the input's shape with the reduced axes set to 1. Reduce-max and reduce-min split
//! the gradient evenly among tied extrema (as TensorFlow does), so the gradients of a window
//! still sum to `dy`.

use super::{Grads, Vjp};
use crate::error::{GraphError, Result};
use crate::ir::{BinaryOp, Graph, NodeId, Op, ReduceOp, UnaryOp, fmt_shape};

/// Sums `g` over the axes along which a tensor of `shape` was broadcast to `g`'s shape (numpy
/// rules: leading axes `shape` lacks, and axes where `shape` has length 1), giving a node of
/// exactly `shape`; `g` itself if the shapes are equal. The nodes are named after `layer`.
/// Errors if `shape` does not broadcast to `g`'s shape.
pub fn sum_to_shape(graph: &mut Graph, g: NodeId, shape: &[usize], layer: &str) -> Result<NodeId> {
    let from = graph.shape(g).to_vec();
    if from == shape {
        return Ok(g);
    }
    let fits = shape.len() <= from.len()
        && shape
            .iter()
            .zip(&from[from.len() - shape.len()..])
            .all(|(&s, &f)| s == f || s == 1);
    if !fits {
        return Err(GraphError::shape(
            layer,
            format!(
                "cannot sum {} down to {}: it is not a broadcast of it",
                fmt_shape(&from),
                fmt_shape(shape)
            ),
        ));
    }
    let lead = from.len() - shape.len();
    let axes: Vec<usize> = (0..from.len())
        .filter(|&a| a < lead || (shape[a - lead] == 1 && from[a] != 1))
        .collect();
    let summed = if axes.is_empty() {
        g
    } else {
        let op = Op::Reduce {
            op: ReduceOp::Sum,
            axes,
            keep_dims: true,
        };
        graph.push(op, &[g], layer)?
    };
    if graph.shape(summed) == shape {
        Ok(summed)
    } else {
        graph.reshape(summed, shape, layer)
    }
}

/// `Reduce { op, axes }` of `x`.
pub(super) fn reduce(v: &mut Vjp, op: ReduceOp, axes: &[usize]) -> Result<Grads> {
    let x = v.x(0);
    let x_shape = v.shape(x);
    let kept: Vec<usize> = x_shape
        .iter()
        .enumerate()
        .map(|(a, &d)| if axes.contains(&a) { 1 } else { d })
        .collect();
    let dy = v.dy;
    let dx = v.when(0, |v| {
        let dy = v.reshape(dy, &kept)?;
        match op {
            ReduceOp::Sum => broadcast(v, dy, &x_shape),
            ReduceOp::Mean => {
                let count: usize = axes.iter().map(|&a| x_shape[a]).product();
                let share = v.unary(UnaryOp::Scale((1.0 / count as f64) as f32), dy)?;
                broadcast(v, share, &x_shape)
            }
            ReduceOp::Max | ReduceOp::Min => {
                let y = v.reshape(v.id, &kept)?;
                let mask = v.binary(BinaryOp::Eq, x, y)?;
                let ties = v.push(
                    Op::Reduce {
                        op: ReduceOp::Sum,
                        axes: axes.to_vec(),
                        keep_dims: true,
                    },
                    &[mask],
                )?;
                let share = v.binary(BinaryOp::Div, dy, ties)?;
                v.binary(BinaryOp::Mul, mask, share)
            }
        }
    })?;
    Ok(vec![dx])
}

/// `x` broadcast to `shape` (no node if it already has that shape).
fn broadcast(v: &mut Vjp, x: NodeId, shape: &[usize]) -> Result<NodeId> {
    if v.graph.shape(x) == shape {
        Ok(x)
    } else {
        v.push(Op::Broadcast { shape: shape.to_vec() }, &[x])
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Check, fed};
    use crate::error::GraphError;
    use crate::init::Rng;
    use crate::ir::{Graph, Op, ReduceOp, TensorType};
    use proptest::prelude::*;

    #[test]
    fn sum_to_shape_reduces_broadcast_axes_and_keeps_the_shape() {
        let mut g = Graph::new();
        let x = g.input("x", TensorType::f32(vec![2, 3, 4])).unwrap();
        for (target, axes) in [
            (vec![4], Some(vec![0, 1])),
            (vec![3, 1], Some(vec![0, 2])),
            (vec![2, 1, 4], Some(vec![1])),
            (vec![1, 1, 1], Some(vec![0, 1, 2])),
            (vec![2, 3, 4], None),
        ] {
            let s = super::sum_to_shape(&mut g, x, &target, "l").unwrap();
            assert_eq!(g.shape(s), target.as_slice());
            match axes {
                None => assert_eq!(s, x),
                Some(axes) => {
                    let reduce = g
                        .nodes
                        .iter()
                        .rev()
                        .find(|n| matches!(n.op, Op::Reduce { .. }))
                        .unwrap();
                    assert!(
                        matches!(&reduce.op, Op::Reduce { axes: a, .. } if *a == axes),
                        "{:?}",
                        reduce.op
                    );
                }
            }
        }
        assert!(matches!(
            super::sum_to_shape(&mut g, x, &[5], "l"),
            Err(GraphError::Shape { .. })
        ));
        assert!(super::sum_to_shape(&mut g, x, &[1, 2, 3, 4], "l").is_err());
    }

    #[test]
    fn reduce_max_and_min_split_the_gradient_among_ties() {
        // max([1, 3, 3, 2]) = 3 twice: each gets half; the other elements nothing. min of
        // [2, 1, 3, 1, 1] = 1 three times: a third each.
        for (op, x_values, want) in [
            (ReduceOp::Max, vec![1.0, 3.0, 3.0, 2.0], vec![0.0, 0.5, 0.5, 0.0]),
            (
                ReduceOp::Min,
                vec![2.0, 1.0, 3.0, 1.0, 1.0],
                vec![0.0, 1.0 / 3.0, 0.0, 1.0 / 3.0, 1.0 / 3.0],
            ),
        ] {
            let mut g = Graph::new();
            let x = g.input("x", TensorType::f32(vec![x_values.len()])).unwrap();
            let y = g
                .push(
                    Op::Reduce {
                        op,
                        axes: vec![0],
                        keep_dims: false,
                    },
                    &[x],
                    "extremum",
                )
                .unwrap();
            let dx = super::super::grad(&mut g, y, &[x]).unwrap()[0];
            let values = crate::interp::evaluate_all(&g, &fed(&[("x", x_values)])).unwrap();
            assert_eq!(values[dx.index()], want, "{op:?}");
        }
    }

    /// Random sorted, non-empty axes of a rank-`rank` tensor from `bits`.
    fn axes_from(bits: u32, rank: usize) -> Vec<usize> {
        let axes: Vec<usize> = (0..rank).filter(|a| bits & (1 << a) != 0).collect();
        if axes.is_empty() { vec![rank - 1] } else { axes }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn reductions_match_finite_differences(
            shape in prop::collection::vec(1usize..4, 1..4),
            bits in 0u32..16,
            keep_dims in any::<bool>(),
            seed in any::<u64>(),
        ) {
            let axes = axes_from(bits, shape.len());
            for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min] {
                let mut c = Check::new(Rng::new(seed));
                // Distinct values: no ties for reduce-max within the finite-difference step.
                let x = c.input_distinct("x", &shape);
                let y = c.push(Op::Reduce { op, axes: axes.clone(), keep_dims }, &[x]);
                c.check(y, &[x])?;
            }
        }
    }
}
