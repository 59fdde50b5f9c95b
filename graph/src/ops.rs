//! Composite ops built from IR nodes: functions that add a small subgraph of existing ops, so
//! they need no interpreter rule, gradient or kernel of their own (autodiff, fusion and the
//! memory plan see the ordinary nodes).

use crate::error::{GraphError, Result};
use crate::ir::{BinaryOp, Graph, NodeId, Op, ReduceOp, UnaryOp};

/// L2 normalisation along `axes` (TensorFlow's `l2_normalize`):
/// `x / sqrt(max(sum(x^2, axes, keep_dims), epsilon))`. A slice whose squared norm is below
/// `epsilon` is divided by `sqrt(epsilon)` instead (all zeros stay zeros). The nodes are
/// named after `layer`. Errors if `epsilon` is not a positive finite number or the axes do
/// not fit `x` (sorted, unique, below its rank).
pub fn l2_normalize(graph: &mut Graph, x: NodeId, axes: &[usize], epsilon: f32, layer: &str) -> Result<NodeId> {
    if !(epsilon.is_finite() && epsilon > 0.0) {
        return Err(GraphError::arg(
            layer,
            "epsilon",
            format!("must be a positive number, got {epsilon}"),
        ));
    }
    let squares = graph.push(Op::Unary(UnaryOp::Square), &[x], layer)?;
    let sum = graph.push(
        Op::Reduce {
            op: ReduceOp::Sum,
            axes: axes.to_vec(),
            keep_dims: true,
        },
        &[squares],
        layer,
    )?;
    let floor = graph.fill(&[1], epsilon, layer)?;
    let clamped = graph.push(Op::Binary(BinaryOp::Max), &[sum, floor], layer)?;
    let norm = graph.push(Op::Unary(UnaryOp::Sqrt), &[clamped], layer)?;
    graph.push(Op::Binary(BinaryOp::Div), &[x, norm], layer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::{Feeds, evaluate};
    use crate::ir::TensorType;

    fn run(shape: &[usize], axes: &[usize], x: Vec<f64>) -> Vec<f64> {
        let mut g = Graph::new();
        let xi = g.input("x", TensorType::f32(shape.to_vec())).unwrap();
        let y = l2_normalize(&mut g, xi, axes, 1e-12, "embed").unwrap();
        g.outputs.push(y);
        let f: Feeds = [("x".to_string(), x)].into_iter().collect();
        evaluate(&g, &f).unwrap().remove(0)
    }

    #[test]
    fn rows_have_unit_norm_by_hand() {
        // Rows [3, 4] and [0, 0] (the zero row stays zero), and [1, 1] -> 1/sqrt 2 each.
        let y = run(&[3, 2], &[1], vec![3.0, 4.0, 0.0, 0.0, 1.0, 1.0]);
        let h = 0.5f64.sqrt();
        let want = [0.6, 0.8, 0.0, 0.0, h, h];
        assert!(y.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-12), "{y:?}");
        // Over both axes of a (2, 2): the whole tensor has norm 1.
        let y = run(&[2, 2], &[0, 1], vec![1.0, -1.0, 1.0, -1.0]);
        assert_eq!(y, [0.5, -0.5, 0.5, -0.5]);
    }

    #[test]
    fn a_norm_below_epsilon_divides_by_its_root() {
        let mut g = Graph::new();
        let xi = g.input("x", TensorType::f32(vec![2])).unwrap();
        let y = l2_normalize(&mut g, xi, &[0], 0.25, "embed").unwrap();
        g.outputs.push(y);
        let f: Feeds = [("x".to_string(), vec![0.1, 0.2])].into_iter().collect();
        // 0.01 + 0.04 < 0.25: divided by sqrt(0.25) = 0.5.
        let out = evaluate(&g, &f).unwrap().remove(0);
        assert!((out[0] - 0.2).abs() < 1e-12 && (out[1] - 0.4).abs() < 1e-12, "{out:?}");
    }

    #[test]
    fn bad_epsilon_and_axes_are_errors_naming_the_layer() {
        let mut g = Graph::new();
        let x = g.input("x", TensorType::f32(vec![2, 3])).unwrap();
        for eps in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            let e = l2_normalize(&mut g, x, &[1], eps, "embed").unwrap_err().to_string();
            assert!(e.contains("embed") && e.contains("epsilon"), "{e}");
        }
        let e = l2_normalize(&mut g, x, &[2], 1e-12, "embed").unwrap_err().to_string();
        assert!(e.contains("embed") && e.contains("axes"), "{e}");
    }
}
