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
    /// Candidates per class taken (by `TopK`) before suppression; at least 1 (more than the
    /// boxes takes them all).
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
    if p.candidates == 0 {
        return Err(GraphError::arg(layer, "candidates", "must be at least 1"));
    }
    let (b, n, c) = (ss[0], ss[1], ss[2]);
    let k = p.candidates.min(n);
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

    /// The textbook batched NMS, written apart from the interpreter's rule: per image and class,
    /// the `candidates` best boxes (stable: the lower index first on ties); repeatedly pick the
    /// best remaining one above the score threshold and drop every remaining box overlapping it
    /// by more than the IoU threshold; then all classes' picks by score (the lower class, then
    /// the earlier pick, on ties), the first `max_detections`, padded with -1 rows.
    fn textbook_nms(boxes: &[f64], scores: &[f64], (b, n, c): (usize, usize, usize), p: &NmsParams) -> Vec<f64> {
        let iou = |a: &[f64], q: &[f64]| {
            let w = (a[2].min(q[2]) - a[0].max(q[0])).max(0.0);
            let h = (a[3].min(q[3]) - a[1].max(q[1])).max(0.0);
            let area = |r: &[f64]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
            let u = area(a) + area(q) - w * h;
            if u > 0.0 { w * h / u } else { 0.0 }
        };
        let mut out = Vec::new();
        for img in 0..b {
            let bx = |i: usize| &boxes[(img * n + i) * 4..(img * n + i) * 4 + 4];
            let mut picks: Vec<(f64, usize, usize, usize)> = Vec::new(); // score, class, rank, box
            for class in 0..c {
                let score = |i: usize| scores[(img * n + i) * c + class];
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by(|&i, &j| score(j).total_cmp(&score(i)));
                order.truncate(p.candidates);
                let mut rest: Vec<usize> = order
                    .into_iter()
                    .take_while(|&i| score(i) > f64::from(p.score_threshold))
                    .collect();
                let mut rank = 0;
                while !rest.is_empty() && rank < p.max_detections {
                    let best = rest.remove(0);
                    picks.push((score(best), class, rank, best));
                    rank += 1;
                    rest.retain(|&i| iou(bx(i), bx(best)) <= f64::from(p.iou_threshold));
                }
            }
            picks.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
            for slot in 0..p.max_detections {
                match picks.get(slot) {
                    Some(&(s, class, _, i)) => {
                        out.extend_from_slice(bx(i));
                        out.extend([s, class as f64]);
                    }
                    None => out.extend([-1.0; 6]),
                }
            }
        }
        out
    }

    /// Random boxes `(b, n, 4)` and scores `(b, n, c)` of one of the hard cases.
    fn nms_case(kind: usize, (b, n, c): (usize, usize, usize), rng: &mut crate::init::Rng) -> (Vec<f64>, Vec<f64>) {
        let mut boxes = Vec::new();
        for i in 0..b * n {
            let (x, y) = (rng.uniform_in(0.0, 90.0), rng.uniform_in(0.0, 90.0));
            let (w, h) = (rng.uniform_in(2.0, 40.0), rng.uniform_in(2.0, 40.0));
            boxes.extend(match kind {
                // All overlapping: jitters of one box (IoU well above 0.5).
                0 => [10.0 + x * 0.01, 10.0 + y * 0.01, 50.0 + w * 0.01, 50.0 + h * 0.01],
                // None overlapping: a grid of disjoint unit cells.
                1 => {
                    let k = (i % n) as f64;
                    [k * 3.0, 0.0, k * 3.0 + 2.0, 2.0]
                }
                // Mixed: exact copies of the previous box, zero width, inverted corners.
                _ => match rng.below(8) {
                    0 if i % n > 0 => {
                        let prev = &boxes[boxes.len() - 4..];
                        [prev[0], prev[1], prev[2], prev[3]]
                    }
                    1 => [x, y, x, y + h],
                    2 => [x + w, y, x, y + h],
                    _ => [x, y, x + w, y + h],
                },
            });
        }
        // Scores on a coarse grid, so ties happen; kind 3 has none above the threshold.
        let top = if kind == 3 { 0.1 } else { 1.0 };
        let scores = (0..b * n * c).map(|_| rng.below(20) as f64 * 0.05 * top).collect();
        (boxes, scores)
    }

    #[test]
    fn batched_nms_in_the_interpreter_is_the_textbook_nms() {
        let mut rng = crate::init::Rng::new(7);
        let mut spread = 0;
        for case in 0..48 {
            let kind = case % 4;
            let (b, n, c) = (1 + rng.below(3), 1 + rng.below(60), 1 + rng.below(3));
            let p = NmsParams {
                iou_threshold: [0.3, 0.5, 0.7][rng.below(3)],
                score_threshold: 0.12,
                max_detections: 1 + rng.below(12),
                candidates: 1 + rng.below(n + 5),
            };
            let (boxes, scores) = nms_case(kind, (b, n, c), &mut rng);
            let mut g = Graph::new();
            let bi = g.input("boxes", TensorType::f32(vec![b, n, 4])).unwrap();
            let si = g.input("scores", TensorType::f32(vec![b, n, c])).unwrap();
            let y = batched_nms(&mut g, bi, si, p, "nms").unwrap();
            assert_eq!(g.shape(y), [b, p.max_detections, 6]);
            g.outputs.push(y);
            // The graph takes f32: round the feeds first so both sides see the same numbers.
            let r = |v: &[f64]| v.iter().map(|&x| f64::from(x as f32)).collect::<Vec<_>>();
            let (boxes, scores) = (r(&boxes), r(&scores));
            let f: Feeds = [
                ("boxes".to_string(), boxes.clone()),
                ("scores".to_string(), scores.clone()),
            ]
            .into_iter()
            .collect();
            let got = evaluate(&g, &f).unwrap().remove(0);
            let want = textbook_nms(&boxes, &scores, (b, n, c), &p);
            assert_eq!(got, want, "case {case} (kind {kind}, b {b} n {n} c {c}, {p:?})");
            // The cases are what they say: at most one box per class where all overlap, more
            // where none do, nothing where nothing scores above the threshold.
            for img in got.chunks(p.max_detections * 6) {
                let n_kept = img.chunks(6).filter(|r| r[5] >= 0.0).count();
                match kind {
                    0 => assert!(n_kept <= c, "case {case}: {n_kept} kept of overlapping boxes"),
                    1 => spread = spread.max(n_kept.saturating_sub(c)),
                    3 => assert_eq!(n_kept, 0, "case {case}"),
                    _ => {}
                }
            }
        }
        assert!(spread > 0, "disjoint boxes: more than one kept per class somewhere");
    }

    #[test]
    fn batched_nms_checks_its_shapes_and_settings() {
        let mut g = Graph::new();
        let bx = g.input("boxes", TensorType::f32(vec![2, 10, 4])).unwrap();
        let sc = g.input("scores", TensorType::f32(vec![2, 10, 3])).unwrap();
        let bad = g.input("bad", TensorType::f32(vec![2, 9, 3])).unwrap();
        let p = NmsParams {
            iou_threshold: 0.5,
            score_threshold: 0.1,
            max_detections: 5,
            candidates: 4,
        };
        let e = batched_nms(&mut g, bx, bad, p, "det").unwrap_err().to_string();
        assert!(e.contains("det") && e.contains("(B, N, C)"), "{e}");
        let e = batched_nms(&mut g, bx, sc, NmsParams { candidates: 0, ..p }, "det")
            .unwrap_err()
            .to_string();
        assert!(e.contains("candidates"), "{e}");
        for (q, what) in [
            (
                NmsParams {
                    iou_threshold: 1.5,
                    ..p
                },
                "iou_threshold",
            ),
            (
                NmsParams {
                    score_threshold: f32::NAN,
                    ..p
                },
                "score_threshold",
            ),
            (NmsParams { max_detections: 0, ..p }, "max_detections"),
        ] {
            let e = batched_nms(&mut g, bx, sc, q, "det").unwrap_err().to_string();
            assert!(e.contains("det") && e.contains(what), "{e}");
        }
    }
}
