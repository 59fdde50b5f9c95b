//! Metrics as IR: each returns the batch mean as a `(1,)` node.

use super::loss::mean_all;
use crate::error::{GraphError, Result};
use crate::ir::{BinaryOp, Graph, NodeId, Op, ReduceOp};

/// A metric computed alongside the loss.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    /// `accuracy` / `sparse_categorical_accuracy` / `categorical_accuracy`: the label's class
    /// has the highest score (labels one-hot).
    Accuracy,
    /// `top_k_categorical_accuracy`: the label's class is among the `k` highest scores.
    TopK(usize),
    /// `binary_accuracy`: predictions thresholded at `threshold` match 0/1 labels.
    BinaryAccuracy {
        /// The decision threshold (0.5 for probabilities; 0.0 for logits).
        threshold: f32,
    },
}

impl Metric {
    /// The name used in histories and progress output (`accuracy`, `top_5_accuracy`, ...).
    pub fn name(&self) -> String {
        match self {
            Metric::Accuracy => "accuracy".into(),
            Metric::TopK(k) => format!("top_{k}_accuracy"),
            Metric::BinaryAccuracy { .. } => "binary_accuracy".into(),
        }
    }

    /// Parses Keras's metric names (`accuracy`, `sparse_categorical_accuracy`,
    /// `categorical_accuracy`, `top_k` / `top_5_accuracy`, `binary_accuracy`).
    pub fn parse(name: &str) -> Result<Metric> {
        match name {
            "accuracy" | "acc" | "sparse_categorical_accuracy" | "categorical_accuracy" => Ok(Metric::Accuracy),
            "binary_accuracy" => Ok(Metric::BinaryAccuracy { threshold: 0.5 }),
            "top_k" | "top_k_categorical_accuracy" | "sparse_top_k_categorical_accuracy" => Ok(Metric::TopK(5)),
            _ => {
                if let Some(k) = name.strip_prefix("top_").and_then(|r| r.strip_suffix("_accuracy")) {
                    if let Ok(k) = k.parse::<usize>() {
                        if k > 0 {
                            return Ok(Metric::TopK(k));
                        }
                    }
                }
                Err(GraphError::arg(
                    "compile",
                    "metrics",
                    format!(
                        "unknown metric \"{name}\"; expected accuracy, top_k_accuracy (e.g. top_5_accuracy) or binary_accuracy"
                    ),
                ))
            }
        }
    }

    /// Adds the metric of `y_pred` against `y_true` (same shape) as a `(1,)` batch mean.
    pub fn build(&self, g: &mut Graph, y_pred: NodeId, y_true: NodeId) -> Result<NodeId> {
        let l = "metrics";
        let last = g.shape(y_pred).len() - 1;
        let per_sample = match self {
            Metric::Accuracy | Metric::TopK(_) => {
                let k = if let Metric::TopK(k) = self { *k } else { 1 };
                // Count the classes scoring at least the label's score; correct if at most k.
                let t = g.push(Op::Binary(BinaryOp::Mul), &[y_pred, y_true], l)?;
                let label_score = g.push(
                    Op::Reduce {
                        op: ReduceOp::Sum,
                        axes: vec![last],
                        keep_dims: true,
                    },
                    &[t],
                    l,
                )?;
                let ge = g.push(Op::Binary(BinaryOp::Ge), &[y_pred, label_score], l)?;
                let count = g.push(
                    Op::Reduce {
                        op: ReduceOp::Sum,
                        axes: vec![last],
                        keep_dims: false,
                    },
                    &[ge],
                    l,
                )?;
                let kk = g.fill(&[1], k as f32 + 0.5, l)?;
                g.push(Op::Binary(BinaryOp::Ge), &[kk, count], l)?
            }
            Metric::BinaryAccuracy { threshold } => {
                let th = g.fill(&[1], *threshold, l)?;
                let p = g.push(Op::Binary(BinaryOp::Ge), &[y_pred, th], l)?;
                let half = g.fill(&[1], 0.5, l)?;
                let z = g.push(Op::Binary(BinaryOp::Ge), &[y_true, half], l)?;
                g.push(Op::Binary(BinaryOp::Eq), &[p, z], l)?
            }
        };
        mean_all(g, per_sample, l)
    }
}
