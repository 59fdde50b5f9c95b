//! Losses with Keras's names and semantics, built as IR: each returns the batch mean of the
//! per-sample loss as a `(1,)` node ("sum over batch size", Keras's default reduction).

use super::objective::LossCtx;
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
    /// Huber (smooth-L1 at `delta = 1`) with a per-element weight: `sum(w * huber) / n` over
    /// the last axis, where the weights are a second target `<output>/weight` shaped like the
    /// predictions (a positives mask for box regression).
    WeightedHuber {
        /// Where the loss turns from quadratic to linear.
        delta: f32,
    },
    /// `BinaryFocalCrossentropy(alpha, gamma, from_logits)` (Lin et al. 2017), averaged over
    /// the last axis: `a_t * (1 - p_t)^gamma * CE` with `p_t = z p + (1 - z)(1 - p)` and
    /// `a_t = z alpha + (1 - z)(1 - alpha)` (with `alpha = None`: no class balancing, as Keras's
    /// `apply_class_balancing=False`).
    BinaryFocal {
        /// Weight of the positive class, or no balancing.
        alpha: Option<f32>,
        /// The focusing exponent (Keras: 2.0).
        gamma: f32,
        /// Whether predictions are logits.
        from_logits: bool,
    },
    /// Soft Dice loss per sample, `1 - (2 sum(p t) + smooth) / (sum(p) + sum(t) + smooth)` over
    /// every axis but the batch. With `from_logits` the predictions go through a sigmoid (one
    /// channel) or a softmax over the last axis (several). With `sparse` the targets are class
    /// indices, fed one-hot (per-pixel labels `(B, H, W)` for `(B, H, W, C)` predictions).
    Dice {
        /// Added to numerator and denominator (1.0 is usual).
        smooth: f32,
        /// Apply a sigmoid / softmax first.
        from_logits: bool,
        /// Targets are class indices.
        sparse: bool,
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
            Loss::WeightedHuber { .. } => "weighted_huber",
            Loss::BinaryFocal { .. } => "binary_focal_crossentropy",
            Loss::Dice { .. } => "dice",
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
            "smooth_l1" | "weighted_huber" => Loss::WeightedHuber { delta: 1.0 },
            "binary_focal_crossentropy" | "focal" => Loss::BinaryFocal {
                alpha: Some(0.25),
                gamma: 2.0,
                from_logits,
            },
            "dice" => Loss::Dice {
                smooth: 1.0,
                from_logits,
                sparse: false,
            },
            "sparse_dice" => Loss::Dice {
                smooth: 1.0,
                from_logits,
                sparse: true,
            },
            _ => {
                return Err(GraphError::arg(
                    "compile",
                    "loss",
                    format!(
                        "unknown loss \"{name}\"; expected sparse_categorical_crossentropy, categorical_crossentropy, \
                         binary_crossentropy, mean_squared_error, mean_absolute_error, huber, smooth_l1, \
                         binary_focal_crossentropy, dice or sparse_dice"
                    ),
                ));
            }
        })
    }

    /// Whether labels are class indices (fed one-hot).
    pub fn sparse_labels(&self) -> bool {
        matches!(
            self,
            Loss::SparseCategoricalCrossentropy { .. } | Loss::Dice { sparse: true, .. }
        )
    }

    /// Adds this loss on `output` against the target of the same name (declared through `ctx`:
    /// class indices for sparse losses, else shaped like the output) and returns its per-sample
    /// values, shaped `(batch, ...)`.
    pub fn build_term(&self, ctx: &mut LossCtx<'_>, output: &str) -> Result<NodeId> {
        let y = ctx.output(output)?;
        let shape = ctx.graph.shape(y)[1..].to_vec();
        let truth = if self.sparse_labels() {
            let (last, rest) = shape.split_last().ok_or_else(|| {
                GraphError::shape(
                    ctx.term(),
                    format!("{}: output '{output}' has no class axis", self.name()),
                )
            })?;
            ctx.class_target(output, rest, *last)?
        } else {
            ctx.target(output, &shape)?
        };
        let weight = match self {
            Loss::WeightedHuber { .. } => Some(ctx.target(&format!("{output}/weight"), &shape)?),
            _ => None,
        };
        self.elements(ctx.graph, y, truth, weight)
    }

    /// Adds the loss of predictions `y_pred` against `y_true` (same shape; one-hot for sparse
    /// labels) and returns the `(1,)` batch mean. [`Loss::WeightedHuber`] weighs every element
    /// by one here.
    pub fn build(&self, g: &mut Graph, y_pred: NodeId, y_true: NodeId) -> Result<NodeId> {
        let e = self.elements(g, y_pred, y_true, None)?;
        mean_all(g, e, "loss")
    }

    /// The per-sample losses of `y_pred` against `y_true` (same shape), shaped like `y_pred`
    /// without its last axis (Dice: `(batch,)`). `weight` is [`Loss::WeightedHuber`]'s
    /// per-element weight (ones if `None`).
    pub fn elements(&self, g: &mut Graph, y_pred: NodeId, y_true: NodeId, weight: Option<NodeId>) -> Result<NodeId> {
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
            Loss::WeightedHuber { delta } => {
                let h = Loss::Huber { delta }.huber_elems(g, y_pred, y_true)?;
                let e = match weight {
                    Some(w) => bin(g, BinaryOp::Mul, h, w)?,
                    None => h,
                };
                mean_last(g, e, last, l)?
            }
            Loss::BinaryFocal {
                alpha,
                gamma,
                from_logits,
            } => {
                let e = focal_elems(g, y_pred, y_true, alpha, gamma, from_logits)?;
                mean_last(g, e, last, l)?
            }
            Loss::Dice {
                smooth, from_logits, ..
            } => dice_per_sample(g, y_pred, y_true, smooth, from_logits)?,
        };
        Ok(per_sample)
    }

    /// Huber's per-element values `0.5 q^2 + delta (|d| - q)` with `q = min(|d|, delta)`.
    fn huber_elems(&self, g: &mut Graph, y_pred: NodeId, y_true: NodeId) -> Result<NodeId> {
        let l = "loss";
        let delta = match *self {
            Loss::Huber { delta } | Loss::WeightedHuber { delta } => delta,
            _ => 1.0,
        };
        if delta.is_nan() || delta <= 0.0 {
            return Err(GraphError::arg(l, "delta", format!("must be positive, got {delta}")));
        }
        let d = g.push(Op::Binary(BinaryOp::Sub), &[y_pred, y_true], l)?;
        let a = g.push(Op::Unary(UnaryOp::Abs), &[d], l)?;
        let dl = g.fill(&[1], delta, l)?;
        let q = g.push(Op::Binary(BinaryOp::Min), &[a, dl], l)?;
        let q2 = g.push(Op::Unary(UnaryOp::Square), &[q], l)?;
        let half = g.push(Op::Unary(UnaryOp::Scale(0.5)), &[q2], l)?;
        let lin = g.push(Op::Binary(BinaryOp::Sub), &[a, q], l)?;
        let lin = g.push(Op::Unary(UnaryOp::Scale(delta)), &[lin], l)?;
        g.push(Op::Binary(BinaryOp::Add), &[half, lin], l)
    }
}

/// Binary cross-entropy per element from logits, `max(x, 0) - x z + log(1 + exp(-|x|))`.
pub fn bce_logits_elems(g: &mut Graph, x: NodeId, z: NodeId) -> Result<NodeId> {
    let l = "loss";
    let relu = g.push(Op::Unary(UnaryOp::Relu), &[x], l)?;
    let xz = g.push(Op::Binary(BinaryOp::Mul), &[x, z], l)?;
    let a = g.push(Op::Unary(UnaryOp::Abs), &[x], l)?;
    let na = g.push(Op::Unary(UnaryOp::Neg), &[a], l)?;
    let ex = g.push(Op::Unary(UnaryOp::Exp), &[na], l)?;
    let one_plus = g.push(Op::Unary(UnaryOp::AddScalar(1.0)), &[ex], l)?;
    let lg = g.push(Op::Unary(UnaryOp::Log), &[one_plus], l)?;
    let d = g.push(Op::Binary(BinaryOp::Sub), &[relu, xz], l)?;
    g.push(Op::Binary(BinaryOp::Add), &[d, lg], l)
}

/// Binary focal cross-entropy per element (see [`Loss::BinaryFocal`]).
pub fn focal_elems(
    g: &mut Graph,
    y_pred: NodeId,
    z: NodeId,
    alpha: Option<f32>,
    gamma: f32,
    from_logits: bool,
) -> Result<NodeId> {
    let l = "loss";
    if !gamma.is_finite() || gamma < 0.0 {
        return Err(GraphError::arg(
            l,
            "gamma",
            format!("must be finite and >= 0, got {gamma}"),
        ));
    }
    if let Some(a) = alpha {
        if !(0.0..=1.0).contains(&a) {
            return Err(GraphError::arg(l, "alpha", format!("must be in [0, 1], got {a}")));
        }
    }
    let un = |g: &mut Graph, u, x| g.push(Op::Unary(u), &[x], l);
    let bin = |g: &mut Graph, b, x, y| g.push(Op::Binary(b), &[x, y], l);
    let (p, ce) = if from_logits {
        (un(g, UnaryOp::Sigmoid, y_pred)?, bce_logits_elems(g, y_pred, z)?)
    } else {
        let p = clip(g, y_pred, l)?;
        let lp = un(g, UnaryOp::Log, p)?;
        let np = un(g, UnaryOp::Neg, p)?;
        let q = un(g, UnaryOp::AddScalar(1.0), np)?;
        let lq = un(g, UnaryOp::Log, q)?;
        let nz = un(g, UnaryOp::Neg, z)?;
        let one_minus_z = un(g, UnaryOp::AddScalar(1.0), nz)?;
        let a = bin(g, BinaryOp::Mul, z, lp)?;
        let b = bin(g, BinaryOp::Mul, one_minus_z, lq)?;
        let s = bin(g, BinaryOp::Add, a, b)?;
        (p, un(g, UnaryOp::Neg, s)?)
    };
    // 1 - p_t = p + z - 2 p z.
    let pz = bin(g, BinaryOp::Mul, p, z)?;
    let pz2 = un(g, UnaryOp::Scale(-2.0), pz)?;
    let s = bin(g, BinaryOp::Add, p, z)?;
    let one_minus_pt = bin(g, BinaryOp::Add, s, pz2)?;
    let modulating = if gamma == 0.0 {
        None
    } else if gamma == 1.0 {
        Some(one_minus_pt)
    } else if gamma == 2.0 {
        Some(un(g, UnaryOp::Square, one_minus_pt)?)
    } else {
        // exp(gamma log(u)) with u kept off zero so that the gradient stays finite.
        let lo = g.fill(&[1], EPSILON, l)?;
        let u = bin(g, BinaryOp::Max, one_minus_pt, lo)?;
        let lu = un(g, UnaryOp::Log, u)?;
        let gl = un(g, UnaryOp::Scale(gamma), lu)?;
        Some(un(g, UnaryOp::Exp, gl)?)
    };
    let mut e = match modulating {
        Some(m) => bin(g, BinaryOp::Mul, m, ce)?,
        None => ce,
    };
    if let Some(a) = alpha {
        // a_t = (1 - alpha) + z (2 alpha - 1).
        let zs = un(g, UnaryOp::Scale(2.0 * a - 1.0), z)?;
        let at = un(g, UnaryOp::AddScalar(1.0 - a), zs)?;
        e = bin(g, BinaryOp::Mul, at, e)?;
    }
    Ok(e)
}

/// Soft Dice loss per sample (see [`Loss::Dice`]), `(batch,)`.
pub fn dice_per_sample(
    g: &mut Graph,
    y_pred: NodeId,
    y_true: NodeId,
    smooth: f32,
    from_logits: bool,
) -> Result<NodeId> {
    let l = "loss";
    if !smooth.is_finite() || smooth < 0.0 {
        return Err(GraphError::arg(
            l,
            "smooth",
            format!("must be finite and >= 0, got {smooth}"),
        ));
    }
    let shape = g.shape(y_pred).to_vec();
    let p = if from_logits {
        if shape.last() == Some(&1) {
            g.push(Op::Unary(UnaryOp::Sigmoid), &[y_pred], l)?
        } else {
            g.push(Op::Softmax, &[y_pred], l)?
        }
    } else {
        y_pred
    };
    let axes: Vec<usize> = (1..shape.len()).collect();
    let sum = |g: &mut Graph, x| {
        if axes.is_empty() {
            return Ok(x);
        }
        g.push(
            Op::Reduce {
                op: ReduceOp::Sum,
                axes: axes.clone(),
                keep_dims: false,
            },
            &[x],
            l,
        )
    };
    let pt = g.push(Op::Binary(BinaryOp::Mul), &[p, y_true], l)?;
    let inter = sum(g, pt)?;
    let sp = sum(g, p)?;
    let st = sum(g, y_true)?;
    let num = g.push(Op::Unary(UnaryOp::Scale(2.0)), &[inter], l)?;
    let num = g.push(Op::Unary(UnaryOp::AddScalar(smooth)), &[num], l)?;
    let den = g.push(Op::Binary(BinaryOp::Add), &[sp, st], l)?;
    let den = g.push(Op::Unary(UnaryOp::AddScalar(smooth.max(1e-12))), &[den], l)?;
    let ratio = g.push(Op::Binary(BinaryOp::Div), &[num, den], l)?;
    let neg = g.push(Op::Unary(UnaryOp::Neg), &[ratio], l)?;
    g.push(Op::Unary(UnaryOp::AddScalar(1.0)), &[neg], l)
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
