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

/// The settings of [`batched_nms`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NmsParams {
    /// Suppress a box overlapping a kept box of its class by more than this IoU.
    pub iou_threshold: f32,
    /// Drop scores at or below this.
    pub score_threshold: f32,
    /// Rows per image.
    pub max_detections: usize,
    /// Candidates per class taken (by `TopK`) before suppression.
    pub candidates: usize,
}

/// The final detections of `boxes` `(B, N, 4)` (corners) scored by `scores` `(B, N, C)`:
/// scores transposed to `(B, C, N)`, each class's best `candidates` picked by `TopK`, their
/// scores and boxes gathered, then [`Op::Nms`]. Output `(B, max_detections, 6)` rows
/// `(xmin, ymin, xmax, ymax, score, class)`, unused rows -1: only these rows need to leave
/// the device.
pub fn batched_nms(graph: &mut Graph, boxes: NodeId, scores: NodeId, p: NmsParams, layer: &str) -> Result<NodeId> {
    let (bs, ss) = (graph.shape(boxes).to_vec(), graph.shape(scores).to_vec());
    if bs.len() != 3 || bs[2] != 4 || ss.len() != 3 || ss[..2] != bs[..2] {
        return Err(GraphError::shape(
            layer,
            format!("batched_nms: expected boxes (B, N, 4) and scores (B, N, C), got {bs:?} and {ss:?}"),
        ));
    }
    let (b, n, c) = (ss[0], ss[1], ss[2]);
    let k = p.candidates.clamp(1, n);
    let t = graph.push(Op::Transpose { perm: vec![0, 2, 1] }, &[scores], layer)?;
    let idx = graph.push(Op::TopK { k }, &[t], layer)?;
    let top = graph.push(Op::Gather { axis: 2, batch_dims: 2 }, &[t, idx], layer)?;
    let flat = graph.reshape(idx, &[b, c * k], layer)?;
    let picked = graph.push(Op::Gather { axis: 1, batch_dims: 1 }, &[boxes, flat], layer)?;
    let picked = graph.reshape(picked, &[b, c, k, 4], layer)?;
    graph.push(
        Op::Nms {
            iou_threshold: p.iou_threshold,
            score_threshold: p.score_threshold,
            max_detections: p.max_detections,
        },
        &[top, picked],
        layer,
    )
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
