//! Losses with Keras's names and semantics, built as IR: each returns the batch mean of the
//! per-sample loss as a `(1,)` node ("sum over batch size", Keras's default reduction).

use crate::error::{GraphError, Result};
use crate::ir::{BinaryOp, Graph, NodeId, Op, ReduceOp, UnaryOp, fmt_shape};

/// Keras's probability clipping for cross-entropies on probabilities.
pub const EPSILON: f32 = 1e-7;

/// A loss function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loss {
    /// `SparseCategoricalCrossentropy(from_logits)`: integer labels (the trainer feeds them
    /// one-hot) against class scores on the last axis.
    SparseCategoricalCrossentropy {
        /// Whether predictions are logits (else probabilities).
        from_logits: bool,
    },
    /// `CategoricalCrossentropy(from_logits)`: label distributions against class scores.
    CategoricalCrossentropy {
        /// Whether predictions are logits.
        from_logits: bool,
    },
    /// `BinaryCrossentropy(from_logits)`, averaged over the last axis.
    BinaryCrossentropy {
        /// Whether predictions are logits.
        from_logits: bool,
    },
    /// `MeanSquaredError`, averaged over the last axis.
    MeanSquaredError,
    /// `MeanAbsoluteError`, averaged over the last axis.
    MeanAbsoluteError,
    /// `Huber(delta)`, averaged over the last axis.
    Huber {
        /// Where the loss turns from quadratic to linear (Keras: 1.0).
        delta: f32,
    },
}

impl Loss {
    /// Keras's snake-case name (`sparse_categorical_crossentropy`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Loss::SparseCategoricalCrossentropy { .. } => "sparse_categorical_crossentropy",
            Loss::CategoricalCrossentropy { .. } => "categorical_crossentropy",
            Loss::BinaryCrossentropy { .. } => "binary_crossentropy",
            Loss::MeanSquaredError => "mean_squared_error",
            Loss::MeanAbsoluteError => "mean_absolute_error",
            Loss::Huber { .. } => "huber",
        }
    }

    /// Parses a Keras loss name (`from_logits` applies to the cross-entropies).
    pub fn parse(name: &str, from_logits: bool) -> Result<Loss> {
        Ok(match name {
            "sparse_categorical_crossentropy" => Loss::SparseCategoricalCrossentropy { from_logits },
            "categorical_crossentropy" => Loss::CategoricalCrossentropy { from_logits },
            "binary_crossentropy" => Loss::BinaryCrossentropy { from_logits },
            "mean_squared_error" | "mse" => Loss::MeanSquaredError,
            "mean_absolute_error" | "mae" => Loss::MeanAbsoluteError,
            "huber" => Loss::Huber { delta: 1.0 },
            _ => {
                return Err(GraphError::arg(
                    "compile",
                    "loss",
                    format!(
                        "unknown loss \"{name}\"; expected sparse_categorical_crossentropy, categorical_crossentropy, \
                         binary_crossentropy, mean_squared_error, mean_absolute_error or huber"
                    ),
                ));
            }
        })
    }

    /// Whether labels are class indices (fed one-hot).
    pub fn sparse_labels(&self) -> bool {
        matches!(self, Loss::SparseCategoricalCrossentropy { .. })
    }

    /// Adds the loss of predictions `y_pred` against `y_true` (same shape; one-hot for sparse
    /// labels) and returns the `(1,)` batch mean.
    pub fn build(&self, g: &mut Graph, y_pred: NodeId, y_true: NodeId) -> Result<NodeId> {
        let l = "loss";
        if g.shape(y_pred) != g.shape(y_true) {
            return Err(GraphError::shape(
                l,
                format!(
                    "{}: labels {} do not match predictions {}",
                    self.name(),
                    fmt_shape(g.shape(y_true)),
                    fmt_shape(g.shape(y_pred))
                ),
            ));
        }
        let last = g.shape(y_pred).len() - 1;
        let un = |g: &mut Graph, u, x| g.push(Op::Unary(u), &[x], l);
        let bin = |g: &mut Graph, b, x, y| g.push(Op::Binary(b), &[x, y], l);
        let per_sample = match *self {
            Loss::SparseCategoricalCrossentropy { from_logits: true }
            | Loss::CategoricalCrossentropy { from_logits: true } => {
                // One fused, stable op (and one kernel) forward; its gradient is one more.
                g.push(Op::SoftmaxCrossEntropy, &[y_pred, y_true], l)?
            }
            Loss::SparseCategoricalCrossentropy { from_logits: false }
            | Loss::CategoricalCrossentropy { from_logits: false } => {
                // Keras normalises the probabilities, clips them and takes the log.
                let sum = g.push(
                    Op::Reduce {
                        op: ReduceOp::Sum,
                        axes: vec![last],
                        keep_dims: true,
                    },
                    &[y_pred],
                    l,
                )?;
                let p = bin(g, BinaryOp::Div, y_pred, sum)?;
                let p = clip(g, p, l)?;
                let logp = un(g, UnaryOp::Log, p)?;
                let t = bin(g, BinaryOp::Mul, y_true, logp)?;
                let s = g.push(
                    Op::Reduce {
                        op: ReduceOp::Sum,
                        axes: vec![last],
                        keep_dims: false,
                    },
                    &[t],
                    l,
                )?;
                un(g, UnaryOp::Neg, s)?
            }
            Loss::BinaryCrossentropy { from_logits } => {
                let e = if from_logits {
                    // max(x, 0) - x z + log(1 + exp(-|x|)), stable for large |x|.
                    let relu = un(g, UnaryOp::Relu, y_pred)?;
                    let xz = bin(g, BinaryOp::Mul, y_pred, y_true)?;
                    let a = un(g, UnaryOp::Abs, y_pred)?;
                    let na = un(g, UnaryOp::Neg, a)?;
                    let ex = un(g, UnaryOp::Exp, na)?;
                    let one_plus = un(g, UnaryOp::AddScalar(1.0), ex)?;
                    let lg = un(g, UnaryOp::Log, one_plus)?;
                    let d = bin(g, BinaryOp::Sub, relu, xz)?;
                    bin(g, BinaryOp::Add, d, lg)?
                } else {
                    // -(z log p + (1 - z) log(1 - p)), p clipped.
                    let p = clip(g, y_pred, l)?;
                    let lp = un(g, UnaryOp::Log, p)?;
                    let np = un(g, UnaryOp::Neg, p)?;
                    let one_minus_p = un(g, UnaryOp::AddScalar(1.0), np)?;
                    let lq = un(g, UnaryOp::Log, one_minus_p)?;
                    let nz = un(g, UnaryOp::Neg, y_true)?;
                    let one_minus_z = un(g, UnaryOp::AddScalar(1.0), nz)?;
                    let a = bin(g, BinaryOp::Mul, y_true, lp)?;
                    let b = bin(g, BinaryOp::Mul, one_minus_z, lq)?;
                    let s = bin(g, BinaryOp::Add, a, b)?;
                    un(g, UnaryOp::Neg, s)?
                };
                mean_last(g, e, last, l)?
            }
            Loss::MeanSquaredError => {
                let d = bin(g, BinaryOp::Sub, y_pred, y_true)?;
                let e = un(g, UnaryOp::Square, d)?;
                mean_last(g, e, last, l)?
            }
            Loss::MeanAbsoluteError => {
                let d = bin(g, BinaryOp::Sub, y_pred, y_true)?;
                let e = un(g, UnaryOp::Abs, d)?;
                mean_last(g, e, last, l)?
            }
            Loss::Huber { delta } => {
                if delta.is_nan() || delta <= 0.0 {
                    return Err(GraphError::arg(l, "delta", format!("must be positive, got {delta}")));
                }
                // With a = |x| and q = min(a, delta): 0.5 q^2 + delta (a - q).
                let d = bin(g, BinaryOp::Sub, y_pred, y_true)?;
                let a = un(g, UnaryOp::Abs, d)?;
                let dl = g.fill(&[1], delta, l)?;
                let q = bin(g, BinaryOp::Min, a, dl)?;
                let q2 = un(g, UnaryOp::Square, q)?;
                let half = un(g, UnaryOp::Scale(0.5), q2)?;
                let lin = bin(g, BinaryOp::Sub, a, q)?;
                let lin = un(g, UnaryOp::Scale(delta), lin)?;
                let e = bin(g, BinaryOp::Add, half, lin)?;
                mean_last(g, e, last, l)?
            }
        };
        mean_all(g, per_sample, l)
    }
}

fn clip(g: &mut Graph, p: NodeId, l: &str) -> Result<NodeId> {
    let lo = g.fill(&[1], EPSILON, l)?;
    let hi = g.fill(&[1], 1.0 - EPSILON, l)?;
    let p = g.push(Op::Binary(BinaryOp::Max), &[p, lo], l)?;
    g.push(Op::Binary(BinaryOp::Min), &[p, hi], l)
}

fn mean_last(g: &mut Graph, e: NodeId, last: usize, l: &str) -> Result<NodeId> {
    g.push(
        Op::Reduce {
            op: ReduceOp::Mean,
            axes: vec![last],
            keep_dims: false,
        },
        &[e],
        l,
    )
}

/// The mean over every element, as a `(1,)` node.
pub(crate) fn mean_all(g: &mut Graph, x: NodeId, l: &str) -> Result<NodeId> {
    let axes: Vec<usize> = (0..g.shape(x).len()).collect();
    g.push(
        Op::Reduce {
            op: ReduceOp::Mean,
            axes,
            keep_dims: false,
        },
        &[x],
        l,
    )
}
