//! Optimizers with Keras's update rules and defaults, built as IR. The step's learning rate and
//! Adam's bias-corrected step size are `(1,)` inputs computed on the host each step.

use super::schedule::Schedule;
use crate::error::{GraphError, Result};
use crate::ir::{BinaryOp, Graph, NodeId, Op, UnaryOp};

/// The update rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptimizerKind {
    /// `SGD(momentum=0.0, nesterov=False)`.
    Sgd {
        /// Velocity decay (0 = plain SGD).
        momentum: f32,
        /// Nesterov momentum.
        nesterov: bool,
    },
    /// `Adam(beta_1=0.9, beta_2=0.999, epsilon=1e-7)`.
    Adam {
        /// First-moment decay.
        beta_1: f32,
        /// Second-moment decay.
        beta_2: f32,
        /// Added to the root of the second moment.
        epsilon: f32,
    },
    /// `RMSprop(rho=0.9, epsilon=1e-7)`.
    RmsProp {
        /// Decay of the mean square.
        rho: f32,
        /// Added under the root.
        epsilon: f32,
    },
}

/// An optimizer: update rule, learning rate (schedule), decoupled weight decay and global-norm
/// gradient clipping.
#[derive(Debug, Clone, PartialEq)]
pub struct Optimizer {
    /// The update rule.
    pub kind: OptimizerKind,
    /// The learning rate per step.
    pub learning_rate: Schedule,
    /// Decoupled weight decay: `p -= p * weight_decay * lr` before the update (AdamW's 0.004).
    pub weight_decay: Option<f32>,
    /// Keras's `global_clipnorm`: scale all gradients so their joint L2 norm is at most this.
    pub global_clipnorm: Option<f32>,
}

impl Optimizer {
    /// Keras `SGD(learning_rate=0.01)`.
    pub fn sgd(learning_rate: f32) -> Self {
        Self::with(
            OptimizerKind::Sgd {
                momentum: 0.0,
                nesterov: false,
            },
            learning_rate,
        )
    }
    /// `SGD` with momentum (and optionally Nesterov).
    pub fn sgd_momentum(learning_rate: f32, momentum: f32, nesterov: bool) -> Self {
        Self::with(OptimizerKind::Sgd { momentum, nesterov }, learning_rate)
    }
    /// Keras `Adam(learning_rate=0.001)` with its defaults.
    pub fn adam(learning_rate: f32) -> Self {
        Self::with(
            OptimizerKind::Adam {
                beta_1: 0.9,
                beta_2: 0.999,
                epsilon: 1e-7,
            },
            learning_rate,
        )
    }
    /// Keras `AdamW(learning_rate=0.001, weight_decay=0.004)`.
    pub fn adamw(learning_rate: f32, weight_decay: f32) -> Self {
        Optimizer {
            weight_decay: Some(weight_decay),
            ..Self::adam(learning_rate)
        }
    }
    /// Keras `RMSprop(learning_rate=0.001, rho=0.9, epsilon=1e-7)`.
    pub fn rmsprop(learning_rate: f32) -> Self {
        Self::with(
            OptimizerKind::RmsProp {
                rho: 0.9,
                epsilon: 1e-7,
            },
            learning_rate,
        )
    }
    fn with(kind: OptimizerKind, lr: f32) -> Self {
        Optimizer {
            kind,
            learning_rate: Schedule::Constant(lr),
            weight_decay: None,
            global_clipnorm: None,
        }
    }

    /// Parses Keras's names (`sgd`, `adam`, `adamw`, `rmsprop`) with Keras's default rates,
    /// or `learning_rate` when given.
    pub fn parse(name: &str, learning_rate: Option<f32>) -> Result<Optimizer> {
        let lr = |d: f32| learning_rate.unwrap_or(d);
        let o = match name {
            "sgd" => Self::sgd(lr(0.01)),
            "adam" => Self::adam(lr(0.001)),
            "adamw" => Self::adamw(lr(0.001), 0.004),
            "rmsprop" => Self::rmsprop(lr(0.001)),
            _ => {
                return Err(GraphError::arg(
                    "compile",
                    "optimizer",
                    format!("unknown optimizer \"{name}\"; expected sgd, adam, adamw or rmsprop"),
                ));
            }
        };
        o.validate()?;
        Ok(o)
    }

    /// Checks the hyperparameters.
    pub fn validate(&self) -> Result<()> {
        let bad = |arg: &str, m: String| Err(GraphError::arg("optimizer", arg, m));
        let lr0 = self.learning_rate.at(0);
        if !(lr0.is_finite() && lr0 >= 0.0) {
            return bad("learning_rate", format!("must be a non-negative number, got {lr0}"));
        }
        match self.kind {
            OptimizerKind::Sgd { momentum, .. } if !(0.0..1.0).contains(&momentum) => {
                bad("momentum", format!("must be in [0, 1), got {momentum}"))
            }
            OptimizerKind::Adam { beta_1, beta_2, .. }
                if !(0.0..1.0).contains(&beta_1) || !(0.0..1.0).contains(&beta_2) =>
            {
                bad(
                    "beta_1",
                    format!("beta_1 and beta_2 must be in [0, 1), got {beta_1} and {beta_2}"),
                )
            }
            OptimizerKind::RmsProp { rho, .. } if !(0.0..1.0).contains(&rho) => {
                bad("rho", format!("must be in [0, 1), got {rho}"))
            }
            _ => match self.global_clipnorm {
                Some(c) if c.is_nan() || c <= 0.0 => bad("global_clipnorm", format!("must be positive, got {c}")),
                _ => Ok(()),
            },
        }
    }

    /// Short name (`sgd`, `adam`, `adamw`, `rmsprop`).
    pub fn name(&self) -> &'static str {
        match (self.kind, self.weight_decay) {
            (OptimizerKind::Sgd { .. }, _) => "sgd",
            (OptimizerKind::Adam { .. }, None) => "adam",
            (OptimizerKind::Adam { .. }, Some(_)) => "adamw",
            (OptimizerKind::RmsProp { .. }, _) => "rmsprop",
        }
    }

    /// The state slots kept per parameter (`momentum`, `m`, `v`, `velocity`).
    pub fn slots(&self) -> &'static [&'static str] {
        match self.kind {
            OptimizerKind::Sgd { momentum, .. } if momentum > 0.0 => &["momentum"],
            OptimizerKind::Sgd { .. } => &[],
            OptimizerKind::Adam { .. } => &["m", "v"],
            OptimizerKind::RmsProp { .. } => &["velocity"],
        }
    }

    /// The host inputs of update `step` (0-based): the learning rate, and the step size
    /// (Adam's bias-corrected `lr * sqrt(1 - b2^t) / (1 - b1^t)` with `t = step + 1`; else `lr`).
    pub fn hyper(&self, step: u64) -> (f32, f32) {
        let lr = self.learning_rate.at(step);
        let alpha = match self.kind {
            OptimizerKind::Adam { beta_1, beta_2, .. } => {
                let t = (step + 1) as f64;
                (lr as f64 * (1.0 - (beta_2 as f64).powf(t)).sqrt() / (1.0 - (beta_1 as f64).powf(t))) as f32
            }
            _ => lr,
        };
        (lr, alpha)
    }

    /// Adds the update of parameter `p` with gradient `g` and state `slots` (in [`Self::slots`]
    /// order); returns the new parameter and the new slot values.
    pub fn update(
        &self,
        gr: &mut Graph,
        p: NodeId,
        g: NodeId,
        slots: &[NodeId],
        lr: NodeId,
        alpha: NodeId,
    ) -> Result<(NodeId, Vec<NodeId>)> {
        let l = "optimizer";
        let un = |gr: &mut Graph, u, x| gr.push(Op::Unary(u), &[x], l);
        let bin = |gr: &mut Graph, b, x, y| gr.push(Op::Binary(b), &[x, y], l);
        let mut p = p;
        if let Some(wd) = self.weight_decay {
            let decay = un(gr, UnaryOp::Scale(wd), p)?;
            let decay = bin(gr, BinaryOp::Mul, decay, lr)?;
            p = bin(gr, BinaryOp::Sub, p, decay)?;
        }
        match self.kind {
            OptimizerKind::Sgd { momentum, nesterov } => {
                let step = bin(gr, BinaryOp::Mul, g, lr)?;
                if momentum == 0.0 {
                    return Ok((bin(gr, BinaryOp::Sub, p, step)?, vec![]));
                }
                // m = momentum * m - lr * g; p += m (Nesterov: p += momentum * m - lr * g).
                let keep = un(gr, UnaryOp::Scale(momentum), slots[0])?;
                let m = bin(gr, BinaryOp::Sub, keep, step)?;
                let delta = if nesterov {
                    let mm = un(gr, UnaryOp::Scale(momentum), m)?;
                    bin(gr, BinaryOp::Sub, mm, step)?
                } else {
                    m
                };
                Ok((bin(gr, BinaryOp::Add, p, delta)?, vec![m]))
            }
            OptimizerKind::Adam {
                beta_1,
                beta_2,
                epsilon,
            } => {
                // m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); p -= alpha m / (sqrt(v) + eps).
                let dm = bin(gr, BinaryOp::Sub, g, slots[0])?;
                let dm = un(gr, UnaryOp::Scale(1.0 - beta_1), dm)?;
                let m = bin(gr, BinaryOp::Add, slots[0], dm)?;
                let g2 = un(gr, UnaryOp::Square, g)?;
                let dv = bin(gr, BinaryOp::Sub, g2, slots[1])?;
                let dv = un(gr, UnaryOp::Scale(1.0 - beta_2), dv)?;
                let v = bin(gr, BinaryOp::Add, slots[1], dv)?;
                let root = un(gr, UnaryOp::Sqrt, v)?;
                let denom = un(gr, UnaryOp::AddScalar(epsilon), root)?;
                let ratio = bin(gr, BinaryOp::Div, m, denom)?;
                let step = bin(gr, BinaryOp::Mul, ratio, alpha)?;
                Ok((bin(gr, BinaryOp::Sub, p, step)?, vec![m, v]))
            }
            OptimizerKind::RmsProp { rho, epsilon } => {
                // v = rho v + (1 - rho) g^2; p -= lr g / sqrt(v + eps).
                let keep = un(gr, UnaryOp::Scale(rho), slots[0])?;
                let g2 = un(gr, UnaryOp::Square, g)?;
                let add = un(gr, UnaryOp::Scale(1.0 - rho), g2)?;
                let v = bin(gr, BinaryOp::Add, keep, add)?;
                let ve = un(gr, UnaryOp::AddScalar(epsilon), v)?;
                let root = un(gr, UnaryOp::Sqrt, ve)?;
                let ratio = bin(gr, BinaryOp::Div, g, root)?;
                let step = bin(gr, BinaryOp::Mul, ratio, lr)?;
                Ok((bin(gr, BinaryOp::Sub, p, step)?, vec![v]))
            }
        }
    }
}
