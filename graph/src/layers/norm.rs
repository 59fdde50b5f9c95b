//! Normalisation layers: `BatchNormalization` and `LayerNormalization`.

use super::{Layer, LayerCtx};
use crate::error::{GraphError, Result};
use crate::init::Initializer;
use crate::ir::{BinaryOp, NodeId, Op, ReduceOp, UnaryOp};

/// Keras `BatchNormalization(axis=-1, momentum=0.99, epsilon=0.001, center=True, scale=True)`
/// over the last (channel) axis: `gamma` and `beta` trainable, `moving_mean` and
/// `moving_variance` not.
#[derive(Debug, Clone)]
pub struct BatchNormalization {
    momentum: f32,
    epsilon: f32,
    center: bool,
    scale: bool,
    name: Option<String>,
}

impl Default for BatchNormalization {
    fn default() -> Self {
        BatchNormalization {
            momentum: 0.99,
            epsilon: 1e-3,
            center: true,
            scale: true,
            name: None,
        }
    }
}

impl BatchNormalization {
    /// Batch normalisation with Keras's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `momentum` of the moving statistics (default 0.99).
    pub fn momentum(mut self, m: f32) -> Self {
        self.momentum = m;
        self
    }
    /// Sets `epsilon` (default 0.001).
    pub fn epsilon(mut self, e: f32) -> Self {
        self.epsilon = e;
        self
    }
    /// Sets `center` (default true): learn a shift `beta`; without it there is no `beta` weight.
    pub fn center(mut self, c: bool) -> Self {
        self.center = c;
        self
    }
    /// Sets `scale` (default true): learn a scale `gamma`; without it there is no `gamma` weight.
    pub fn scale(mut self, s: bool) -> Self {
        self.scale = s;
        self
    }
    /// Sets the layer's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// The momentum of the moving statistics (used by training).
    pub fn momentum_value(&self) -> f32 {
        self.momentum
    }
}

impl Layer for BatchNormalization {
    fn class_name(&self) -> &'static str {
        "BatchNormalization"
    }
    fn default_prefix(&self) -> &'static str {
        "batch_normalization"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(GraphError::arg(
                ctx.name,
                "momentum",
                format!("must be in [0, 1], got {}", self.momentum),
            ));
        }
        if self.epsilon.is_nan() || self.epsilon <= 0.0 {
            return Err(GraphError::arg(
                ctx.name,
                "epsilon",
                format!("must be positive, got {}", self.epsilon),
            ));
        }
        ctx.expect_inputs(inputs, 1)?;
        let c = *ctx.shape(inputs[0]).last().unwrap_or(&0);
        // Without `scale` (`center`) Keras has no gamma (beta) variable: a constant 1 (0).
        let gamma = if self.scale {
            ctx.param("gamma", &[c], Initializer::Ones, true)?
        } else {
            ctx.graph.fill(&[c], 1.0, ctx.name)?
        };
        let beta = if self.center {
            ctx.param("beta", &[c], Initializer::Zeros, true)?
        } else {
            ctx.graph.fill(&[c], 0.0, ctx.name)?
        };
        let mean = ctx.param("moving_mean", &[c], Initializer::Zeros, false)?;
        let var = ctx.param("moving_variance", &[c], Initializer::Ones, false)?;
        // A frozen BatchNormalization runs in inference mode, also in training (Keras 3).
        if !ctx.training || !ctx.trainable {
            return ctx.push(
                Op::BatchNormInference { epsilon: self.epsilon },
                &[inputs[0], gamma, beta, mean, var],
            );
        }
        // Training: normalise with the batch's statistics (biased variance, as Keras) and move the
        // moving statistics towards them: moving = moving * momentum + batch * (1 - momentum).
        let x = inputs[0];
        let rank = ctx.shape(x).len();
        let axes: Vec<usize> = (0..rank - 1).collect();
        let reduce = |op| Op::Reduce {
            op,
            axes: axes.clone(),
            keep_dims: false,
        };
        let batch_mean = ctx.push(reduce(ReduceOp::Mean), &[x])?;
        let centered = ctx.push(Op::Binary(BinaryOp::Sub), &[x, batch_mean])?;
        let sq = ctx.push(Op::Unary(UnaryOp::Square), &[centered])?;
        let batch_var = ctx.push(reduce(ReduceOp::Mean), &[sq])?;
        let var_eps = ctx.push(Op::Unary(UnaryOp::AddScalar(self.epsilon)), &[batch_var])?;
        let std = ctx.push(Op::Unary(UnaryOp::Sqrt), &[var_eps])?;
        let scale = ctx.push(Op::Binary(BinaryOp::Div), &[gamma, std])?;
        let scaled = ctx.push(Op::Binary(BinaryOp::Mul), &[centered, scale])?;
        let y = ctx.push(Op::Binary(BinaryOp::Add), &[scaled, beta])?;
        let m = self.momentum;
        for (moving, batch) in [(mean, batch_mean), (var, batch_var)] {
            let keep = ctx.push(Op::Unary(UnaryOp::Scale(m)), &[moving])?;
            let add = ctx.push(Op::Unary(UnaryOp::Scale(1.0 - m)), &[batch])?;
            let new = ctx.push(Op::Binary(BinaryOp::Add), &[keep, add])?;
            ctx.graph.updates.push((moving, new));
        }
        Ok(y)
    }
}

/// Keras `LayerNormalization(axis=-1, epsilon=0.001, center=True, scale=True)` over the last
/// axis: each sample's features are normalised by their own mean and (biased) variance, then
/// scaled by `gamma` and shifted by `beta`, both `(C,)`. The same in training and inference.
#[derive(Debug, Clone)]
pub struct LayerNormalization {
    epsilon: f32,
    center: bool,
    scale: bool,
    name: Option<String>,
}

impl Default for LayerNormalization {
    fn default() -> Self {
        LayerNormalization {
            epsilon: 1e-3,
            center: true,
            scale: true,
            name: None,
        }
    }
}

impl LayerNormalization {
    /// Layer normalisation over the last axis with Keras's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `epsilon` (default 0.001).
    pub fn epsilon(mut self, e: f32) -> Self {
        self.epsilon = e;
        self
    }
    /// Sets `center` (default true): learn `beta`.
    pub fn center(mut self, c: bool) -> Self {
        self.center = c;
        self
    }
    /// Sets `scale` (default true): learn `gamma`.
    pub fn scale(mut self, s: bool) -> Self {
        self.scale = s;
        self
    }
    /// Sets the layer's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Layer for LayerNormalization {
    fn class_name(&self) -> &'static str {
        "LayerNormalization"
    }
    fn default_prefix(&self) -> &'static str {
        "layer_normalization"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        if self.epsilon.is_nan() || self.epsilon <= 0.0 {
            return Err(GraphError::arg(
                ctx.name,
                "epsilon",
                format!("must be positive, got {}", self.epsilon),
            ));
        }
        ctx.expect_inputs(inputs, 1)?;
        let x = inputs[0];
        let shape = ctx.shape(x);
        if shape.len() < 2 {
            return Err(GraphError::shape(
                ctx.name,
                "expected an input with a feature axis besides the batch",
            ));
        }
        let last = shape.len() - 1;
        let c = shape[last];
        let reduce = |op| Op::Reduce {
            op,
            axes: vec![last],
            keep_dims: true,
        };
        let mean = ctx.push(reduce(ReduceOp::Mean), &[x])?;
        let centered = ctx.push(Op::Binary(BinaryOp::Sub), &[x, mean])?;
        let sq = ctx.push(Op::Unary(UnaryOp::Square), &[centered])?;
        let var = ctx.push(reduce(ReduceOp::Mean), &[sq])?;
        let var_eps = ctx.push(Op::Unary(UnaryOp::AddScalar(self.epsilon)), &[var])?;
        let std = ctx.push(Op::Unary(UnaryOp::Sqrt), &[var_eps])?;
        let mut y = ctx.push(Op::Binary(BinaryOp::Div), &[centered, std])?;
        if self.scale {
            let gamma = ctx.param("gamma", &[c], Initializer::Ones, true)?;
            y = ctx.push(Op::Binary(BinaryOp::Mul), &[y, gamma])?;
        }
        if self.center {
            let beta = ctx.param("beta", &[c], Initializer::Zeros, true)?;
            y = ctx.push(Op::Binary(BinaryOp::Add), &[y, beta])?;
        }
        Ok(y)
    }
}

/// Keras `UnitNormalization(axis=-1)`: each sample scaled to unit L2 norm over the last axis
/// (`x / sqrt(max(sum(x^2), epsilon))`, [`crate::ops::l2_normalize`]); no parameters. The
/// embedding head of FaceNet-style models.
#[derive(Debug, Clone)]
pub struct UnitNormalization {
    epsilon: f32,
    name: Option<String>,
}

impl Default for UnitNormalization {
    fn default() -> Self {
        UnitNormalization {
            epsilon: 1e-12,
            name: None,
        }
    }
}

impl UnitNormalization {
    /// Unit normalisation over the last axis (epsilon 1e-12 on the squared norm, as Keras).
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the floor of the squared norm (default 1e-12).
    pub fn epsilon(mut self, e: f32) -> Self {
        self.epsilon = e;
        self
    }
    /// Sets the layer's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Layer for UnitNormalization {
    fn class_name(&self) -> &'static str {
        "UnitNormalization"
    }
    fn default_prefix(&self) -> &'static str {
        "unit_normalization"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        ctx.expect_inputs(inputs, 1)?;
        let x = inputs[0];
        let rank = ctx.shape(x).len();
        if rank < 2 {
            return Err(GraphError::shape(
                ctx.name,
                "expected an input with a feature axis besides the batch",
            ));
        }
        crate::ops::l2_normalize(ctx.graph, x, &[rank - 1], self.epsilon, ctx.name)
    }
}
