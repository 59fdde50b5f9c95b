//! The faces losses, built from graph ops so that mining happens inside the training step:
//! the batch's pairwise squared distances (one matrix product), label masks, and masked
//! max/min reductions (Hermans et al., "In Defense of the Triplet Loss", 2017).
//!
//! - batch-hard: for each anchor, its farthest positive and its nearest negative in the batch,
//!   `max(0, d(a, p*) - d(a, n*) + margin)`, averaged over anchors;
//! - batch-all: every valid triplet `(a, p, n)` of the batch, `max(0, d(a, p) - d(a, n) + margin)`,
//!   summed and divided by the number of triplets with a positive loss;
//! - softmax: cross-entropy of a classification head over the training subjects (the
//!   comparison baseline).
//!
//! Distances are squared Euclidean distances between embeddings (FaceNet's choice: for unit
//! vectors they lie in `[0, 4]` and have no square root whose gradient blows up at 0).

use fovea_graph::ir::{BinaryOp, Graph, NodeId, Op, ReduceOp, UnaryOp};
use fovea_graph::train::{GraphFn, LossCtx, LossTerm, MetricTerm};
use fovea_graph::{GraphError, Result, Tensor};

use crate::zoo::faces::{EMBEDDING_OUTPUT, LOGITS_OUTPUT};

/// The target every faces loss reads: the subject of each sample, a class index `(batch,)`.
pub const LABEL_TARGET: &str = "label";
/// Added to the distance of non-negatives before taking the nearest negative (larger than any
/// squared distance of unit vectors).
const NOT_A_NEGATIVE: f32 = 1e4;

/// How triplets are chosen from a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mining {
    /// The hardest positive and hardest negative of each anchor.
    BatchHard,
    /// Every valid triplet, averaged over those with a positive loss.
    BatchAll,
}

impl Mining {
    /// The name `--loss` takes ([`FaceLoss::parse`]).
    pub fn name(self) -> &'static str {
        match self {
            Mining::BatchHard => "batch-hard",
            Mining::BatchAll => "batch-all",
        }
    }
}

/// The loss a faces model trains with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FaceLoss {
    /// Triplet loss with in-batch mining and `margin` (on squared distances).
    Triplet {
        /// Batch-hard or batch-all.
        mining: Mining,
        /// The margin between positive and negative squared distances.
        margin: f32,
    },
    /// Softmax cross-entropy over the training subjects (needs the `logits` output).
    Softmax {
        /// Number of training subjects.
        classes: usize,
    },
}

impl FaceLoss {
    /// Parses `batch-hard`, `batch-all` or `softmax` (`classes` and `margin` fill in the rest).
    pub fn parse(name: &str, margin: f32, classes: usize) -> std::result::Result<FaceLoss, String> {
        if !(margin.is_finite() && margin > 0.0) {
            return Err(format!("the margin must be a positive number, got {margin}"));
        }
        match name {
            "batch-hard" => Ok(FaceLoss::Triplet {
                mining: Mining::BatchHard,
                margin,
            }),
            "batch-all" => Ok(FaceLoss::Triplet {
                mining: Mining::BatchAll,
                margin,
            }),
            "softmax" => Ok(FaceLoss::Softmax { classes }),
            other => Err(format!(
                "unknown loss '{other}'; expected batch-hard, batch-all or softmax"
            )),
        }
    }

    /// The loss term of the training step.
    pub fn term(self) -> LossTerm {
        match self {
            FaceLoss::Triplet { mining, margin } => LossTerm::custom(
                "triplet_loss",
                1.0,
                GraphFn::new(move |ctx| {
                    let e = ctx.output(EMBEDDING_OUTPUT)?;
                    let labels = ctx.target(LABEL_TARGET, &[])?;
                    triplet_loss(ctx.graph, e, labels, mining, margin, "triplet_loss")
                }),
            ),
            FaceLoss::Softmax { classes } => LossTerm::custom(
                "softmax_loss",
                1.0,
                GraphFn::new(move |ctx: &mut LossCtx<'_>| {
                    let logits = ctx.output(LOGITS_OUTPUT)?;
                    let onehot = ctx.class_target(LABEL_TARGET, &[], classes)?;
                    ctx.graph
                        .push(Op::SoftmaxCrossEntropy, &[logits, onehot], "softmax_loss")
                }),
            ),
        }
    }
}

/// The collapse monitor: the mean squared distance between the batch's embeddings (distinct
/// pairs). Near 0 means every face maps to the same point.
pub fn mean_distance_metric() -> MetricTerm {
    MetricTerm::custom(
        "mean_distance",
        GraphFn::new(|ctx| {
            let e = ctx.output(EMBEDDING_OUTPUT)?;
            let n = ctx.graph.shape(e)[0];
            let d = pairwise_sq_distances(ctx.graph, e, "mean_distance")?;
            let sum = reduce(ctx.graph, ReduceOp::Sum, d, &[0, 1], "mean_distance")?;
            let pairs = (n * n.saturating_sub(1)).max(1) as f32;
            let mean = ctx
                .graph
                .push(Op::Unary(UnaryOp::Scale(1.0 / pairs)), &[sum], "mean_distance")?;
            ctx.graph.reshape(mean, &[1], "mean_distance")
        }),
    )
}

fn reduce(g: &mut Graph, op: ReduceOp, x: NodeId, axes: &[usize], layer: &str) -> Result<NodeId> {
    g.push(
        Op::Reduce {
            op,
            axes: axes.to_vec(),
            keep_dims: false,
        },
        &[x],
        layer,
    )
}

fn binary(g: &mut Graph, op: BinaryOp, a: NodeId, b: NodeId, layer: &str) -> Result<NodeId> {
    g.push(Op::Binary(op), &[a, b], layer)
}

/// `d[i, j] = |e_i|^2 + |e_j|^2 - 2 e_i . e_j`, clamped at 0, for embeddings `e` `(N, D)`:
/// the `(N, N)` matrix of squared distances, from one `e e^T` product.
pub fn pairwise_sq_distances(g: &mut Graph, e: NodeId, layer: &str) -> Result<NodeId> {
    let shape = g.shape(e).to_vec();
    let [n, _] = shape[..] else {
        return Err(GraphError::shape(
            layer,
            format!("expected embeddings (N, D), got {shape:?}"),
        ));
    };
    let gram = g.push(
        Op::MatMul {
            trans_a: false,
            trans_b: true,
        },
        &[e, e],
        layer,
    )?;
    let sq = g.push(Op::Unary(UnaryOp::Square), &[e], layer)?;
    let norms = g.push(
        Op::Reduce {
            op: ReduceOp::Sum,
            axes: vec![1],
            keep_dims: true,
        },
        &[sq],
        layer,
    )?;
    let norms_t = g.reshape(norms, &[1, n], layer)?;
    let both = binary(g, BinaryOp::Add, norms, norms_t, layer)?;
    let twice = g.push(Op::Unary(UnaryOp::Scale(-2.0)), &[gram], layer)?;
    let d = binary(g, BinaryOp::Add, both, twice, layer)?;
    let zero = g.fill(&[1], 0.0, layer)?;
    binary(g, BinaryOp::Max, d, zero, layer)
}

/// The `(N, N)` masks of positives (same label, not the anchor itself) and negatives
/// (different label), 0/1, from labels `(N,)`.
pub fn label_masks(g: &mut Graph, labels: NodeId, layer: &str) -> Result<(NodeId, NodeId)> {
    let n = g.shape(labels).iter().product::<usize>();
    let col = g.reshape(labels, &[n, 1], layer)?;
    let row = g.reshape(labels, &[1, n], layer)?;
    let same = binary(g, BinaryOp::Eq, col, row, layer)?;
    let eye: Vec<f32> = (0..n * n).map(|i| if i / n == i % n { 1.0 } else { 0.0 }).collect();
    let eye = g.constant(Tensor::new(vec![n, n], eye, layer)?, layer)?;
    let positive = binary(g, BinaryOp::Sub, same, eye, layer)?;
    let minus_same = g.push(Op::Unary(UnaryOp::Scale(-1.0)), &[same], layer)?;
    let negative = g.push(Op::Unary(UnaryOp::AddScalar(1.0)), &[minus_same], layer)?;
    Ok((positive, negative))
}

/// The triplet loss of embeddings `e` `(N, D)` with labels `(N,)` (see the module docs):
/// `(N,)` per-anchor values for batch-hard, one `(1,)` value for batch-all.
pub fn triplet_loss(
    g: &mut Graph,
    e: NodeId,
    labels: NodeId,
    mining: Mining,
    margin: f32,
    layer: &str,
) -> Result<NodeId> {
    if !(margin.is_finite() && margin > 0.0) {
        return Err(GraphError::arg(
            layer,
            "margin",
            format!("must be a positive number, got {margin}"),
        ));
    }
    let n = g.shape(e)[0];
    let d = pairwise_sq_distances(g, e, layer)?;
    let (positive, negative) = label_masks(g, labels, layer)?;
    match mining {
        Mining::BatchHard => {
            let pos_d = binary(g, BinaryOp::Mul, d, positive, layer)?;
            let hardest_pos = reduce(g, ReduceOp::Max, pos_d, &[1], layer)?;
            let big = g.fill(&[1], NOT_A_NEGATIVE, layer)?;
            let neg_d = g.push(Op::Select, &[negative, d, big], layer)?;
            let hardest_neg = reduce(g, ReduceOp::Min, neg_d, &[1], layer)?;
            let gap = binary(g, BinaryOp::Sub, hardest_pos, hardest_neg, layer)?;
            let shifted = g.push(Op::Unary(UnaryOp::AddScalar(margin)), &[gap], layer)?;
            g.push(Op::Unary(UnaryOp::Relu), &[shifted], layer)
        }
        Mining::BatchAll => {
            let d_ap = g.reshape(d, &[n, n, 1], layer)?;
            let d_an = g.reshape(d, &[n, 1, n], layer)?;
            let gap = binary(g, BinaryOp::Sub, d_ap, d_an, layer)?;
            let shifted = g.push(Op::Unary(UnaryOp::AddScalar(margin)), &[gap], layer)?;
            let hinge = g.push(Op::Unary(UnaryOp::Relu), &[shifted], layer)?;
            let pos = g.reshape(positive, &[n, n, 1], layer)?;
            let neg = g.reshape(negative, &[n, 1, n], layer)?;
            let valid = binary(g, BinaryOp::Mul, pos, neg, layer)?;
            let losses = binary(g, BinaryOp::Mul, hinge, valid, layer)?;
            let total = reduce(g, ReduceOp::Sum, losses, &[0, 1, 2], layer)?;
            let tiny = g.fill(&[1], 1e-12, layer)?;
            let active = binary(g, BinaryOp::Ge, losses, tiny, layer)?;
            let active = binary(g, BinaryOp::Mul, active, valid, layer)?;
            let count = reduce(g, ReduceOp::Sum, active, &[0, 1, 2], layer)?;
            let one = g.fill(&[1], 1.0, layer)?;
            let count = binary(g, BinaryOp::Max, count, one, layer)?;
            let mean = binary(g, BinaryOp::Div, total, count, layer)?;
            g.reshape(mean, &[1], layer)
        }
    }
}

#[cfg(test)]
#[path = "loss_tests.rs"]
mod tests;
