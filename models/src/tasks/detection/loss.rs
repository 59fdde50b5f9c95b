//! The detector's loss in the training graph, built from core pieces: sigmoid focal loss over
//! every anchor and class (RetinaNet, Lin et al. 2017) and smooth-L1 on the positive anchors'
//! encoded boxes, each summed over the batch and divided by the batch's number of positive
//! anchors (at least 1). Both terms are part of the one step program.
//!
//! Targets (fed per image by [`super::data::TargetStream`]): `cls_target` and `cls_weight`
//! `(anchors, classes)`, `box_target` and `box_weight` `(anchors, 4)` (see
//! [`super::targets::DetectionTargets`]).

use fovea_graph::Result;
use fovea_graph::ir::{BinaryOp, Graph, NodeId, Op, ReduceOp, UnaryOp};
use fovea_graph::train::{GraphFn, LossCtx, LossTerm, focal_elems};

use crate::zoo::detection::{BOXES_OUTPUT, CLASSES_OUTPUT};

/// Target name: one-hot classes of the positives.
pub const CLS_TARGET: &str = "cls_target";
/// Target name: where the class loss counts.
pub const CLS_WEIGHT: &str = "cls_weight";
/// Target name: encoded boxes.
pub const BOX_TARGET: &str = "box_target";
/// Target name: 1 at positives.
pub const BOX_WEIGHT: &str = "box_weight";

/// The loss's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectionLoss {
    /// Focal loss alpha (weight of the positive class).
    pub alpha: f32,
    /// Focal loss gamma.
    pub gamma: f32,
    /// Smooth-L1 transition point.
    pub delta: f32,
    /// Factor of the box term.
    pub box_weight: f32,
}

impl Default for DetectionLoss {
    /// RetinaNet's alpha 0.25, gamma 2; smooth-L1 at 1 (SSD); box term weight 1.
    fn default() -> Self {
        DetectionLoss {
            alpha: 0.25,
            gamma: 2.0,
            delta: 1.0,
            box_weight: 1.0,
        }
    }
}

fn sum_all(g: &mut Graph, x: NodeId, l: &str) -> Result<NodeId> {
    let axes: Vec<usize> = (0..g.shape(x).len()).collect();
    g.push(
        Op::Reduce {
            op: ReduceOp::Sum,
            axes,
            keep_dims: false,
        },
        &[x],
        l,
    )
}

/// `sum(x) / max(1, positives)` where positives is `sum(box_weight) / 4`.
fn per_positive(g: &mut Graph, x: NodeId, box_weight: NodeId, l: &str) -> Result<NodeId> {
    let total = sum_all(g, x, l)?;
    let w = sum_all(g, box_weight, l)?;
    let npos = g.push(Op::Unary(UnaryOp::Scale(0.25)), &[w], l)?;
    let one = g.fill(&[1], 1.0, l)?;
    let npos = g.push(Op::Binary(BinaryOp::Max), &[npos, one], l)?;
    g.push(Op::Binary(BinaryOp::Div), &[total, npos], l)
}

/// The class term: focal loss over every (anchor, class) with weight, per positive.
fn class_term(ctx: &mut LossCtx<'_>, loss: DetectionLoss) -> Result<NodeId> {
    let logits = ctx.output(CLASSES_OUTPUT)?;
    let shape = ctx.graph.shape(logits).to_vec();
    let (anchors, classes) = (shape[1], shape[2]);
    let z = ctx.target(CLS_TARGET, &[anchors, classes])?;
    let w = ctx.target(CLS_WEIGHT, &[anchors, classes])?;
    let bw = ctx.target(BOX_WEIGHT, &[anchors, 4])?;
    let l = "cls_loss";
    let e = focal_elems(ctx.graph, logits, z, Some(loss.alpha), loss.gamma, true)?;
    let e = ctx.graph.push(Op::Binary(BinaryOp::Mul), &[e, w], l)?;
    per_positive(ctx.graph, e, bw, l)
}

/// The box term: smooth-L1 on the positives' offsets, per positive.
fn box_term(ctx: &mut LossCtx<'_>, loss: DetectionLoss) -> Result<NodeId> {
    let pred = ctx.output(BOXES_OUTPUT)?;
    let anchors = ctx.graph.shape(pred)[1];
    let t = ctx.target(BOX_TARGET, &[anchors, 4])?;
    let bw = ctx.target(BOX_WEIGHT, &[anchors, 4])?;
    let l = "box_loss";
    let g = &mut *ctx.graph;
    // With a = |d| and q = min(a, delta): 0.5 q^2 + delta (a - q).
    let d = g.push(Op::Binary(BinaryOp::Sub), &[pred, t], l)?;
    let a = g.push(Op::Unary(UnaryOp::Abs), &[d], l)?;
    let dl = g.fill(&[1], loss.delta, l)?;
    let q = g.push(Op::Binary(BinaryOp::Min), &[a, dl], l)?;
    let q2 = g.push(Op::Unary(UnaryOp::Square), &[q], l)?;
    let half = g.push(Op::Unary(UnaryOp::Scale(0.5)), &[q2], l)?;
    let lin = g.push(Op::Binary(BinaryOp::Sub), &[a, q], l)?;
    let lin = g.push(Op::Unary(UnaryOp::Scale(loss.delta)), &[lin], l)?;
    let e = g.push(Op::Binary(BinaryOp::Add), &[half, lin], l)?;
    let e = g.push(Op::Binary(BinaryOp::Mul), &[e, bw], l)?;
    per_positive(g, e, bw, l)
}

impl DetectionLoss {
    /// The two loss terms, `cls_loss` and `box_loss` (named so in histories and progress).
    pub fn terms(self) -> Vec<LossTerm> {
        vec![
            LossTerm::custom("cls_loss", 1.0, GraphFn::new(move |ctx| class_term(ctx, self))),
            LossTerm::custom(
                "box_loss",
                self.box_weight,
                GraphFn::new(move |ctx| box_term(ctx, self)),
            ),
        ]
    }
}

/// The host-side value of the same loss for one batch (flat arrays as fed), for tests.
pub fn reference_loss(
    loss: &DetectionLoss,
    logits: &[f32],
    boxes: &[f32],
    targets: &[&super::targets::DetectionTargets],
) -> (f64, f64) {
    let (mut cls, mut reg, mut npos) = (0.0f64, 0.0f64, 0usize);
    let per = logits.len() / targets.len().max(1);
    let per_box = boxes.len() / targets.len().max(1);
    for (i, t) in targets.iter().enumerate() {
        npos += t.positives;
        for k in 0..per {
            let x = logits[i * per + k] as f64;
            let z = t.classes[k] as f64;
            let p = 1.0 / (1.0 + (-x).exp());
            let ce = x.max(0.0) - x * z + (1.0 + (-x.abs()).exp()).ln();
            let pt = if z > 0.5 { p } else { 1.0 - p };
            let at = if z > 0.5 {
                loss.alpha as f64
            } else {
                1.0 - loss.alpha as f64
            };
            cls += t.class_weight[k] as f64 * at * (1.0 - pt).powf(loss.gamma as f64) * ce;
        }
        for k in 0..per_box {
            let a = (boxes[i * per_box + k] - t.boxes[k]).abs() as f64;
            let d = loss.delta as f64;
            let h = if a < d { 0.5 * a * a } else { d * (a - 0.5 * d) };
            reg += t.box_weight[k] as f64 * h;
        }
    }
    let n = npos.max(1) as f64;
    (cls / n, reg / n)
}
