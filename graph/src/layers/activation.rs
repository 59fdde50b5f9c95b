//! Activation layers: `ReLU`, `LeakyReLU`, `PReLU`, `ELU` and `Softmax`, composed from the IR's
//! unary and broadcasting binary ops (masks from `Ge`, which carries no gradient).

use super::{Layer, LayerCtx};
use crate::error::{GraphError, Result};
use crate::init::Initializer;
use crate::ir::{BinaryOp, NodeId, Op, UnaryOp};

fn finite_non_negative(v: f32, layer: &str, argument: &str) -> Result<()> {
    if !v.is_finite() || v < 0.0 {
        return Err(GraphError::arg(
            layer,
            argument,
            format!("must be a finite number >= 0, got {v}"),
        ));
    }
    Ok(())
}

/// `a op b` for a scalar `b` broadcast from a `(1,)` fill.
fn with_scalar(ctx: &mut LayerCtx<'_>, op: BinaryOp, a: NodeId, b: f32) -> Result<NodeId> {
    let s = ctx.graph.fill(&[1], b, ctx.name)?;
    ctx.push(Op::Binary(op), &[a, s])
}

/// Keras `ReLU(max_value=None, negative_slope=0.0, threshold=0.0)`:
/// `max_value` for `x >= max_value`, `x` for `threshold < x < max_value`, and
/// `negative_slope * (x - threshold)` below the threshold, computed as Keras computes it.
#[derive(Debug, Clone, Default)]
pub struct ReLU {
    max_value: Option<f32>,
    negative_slope: f32,
    threshold: f32,
    name: Option<String>,
}

impl ReLU {
    /// A rectifier with Keras's defaults (the plain `max(x, 0)`).
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `max_value` (default none); `ReLU::new().max_value(6.0)` is ReLU6.
    pub fn max_value(mut self, m: f32) -> Self {
        self.max_value = Some(m);
        self
    }
    /// Sets `negative_slope` (default 0).
    pub fn negative_slope(mut self, s: f32) -> Self {
        self.negative_slope = s;
        self
    }
    /// Sets `threshold` (default 0).
    pub fn threshold(mut self, t: f32) -> Self {
        self.threshold = t;
        self
    }
    /// Sets the layer's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Layer for ReLU {
    fn class_name(&self) -> &'static str {
        "ReLU"
    }
    fn default_prefix(&self) -> &'static str {
        "re_lu"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        if let Some(m) = self.max_value {
            finite_non_negative(m, ctx.name, "max_value")?;
        }
        finite_non_negative(self.negative_slope, ctx.name, "negative_slope")?;
        finite_non_negative(self.threshold, ctx.name, "threshold")?;
        ctx.expect_inputs(inputs, 1)?;
        let x = inputs[0];
        let (ns, t) = (self.negative_slope, self.threshold);
        if t == 0.0 {
            let op = match self.max_value {
                None if ns == 0.0 => Some(UnaryOp::Relu),
                None => Some(UnaryOp::LeakyRelu(ns)),
                Some(m) if m == 6.0 && ns == 0.0 => Some(UnaryOp::Relu6),
                Some(_) => None,
            };
            if let Some(op) = op {
                return ctx.push(Op::Unary(op), &[x]);
            }
        }
        // The positive part: x where x > threshold, else 0 (Gt as 1 - Ge(threshold, x)).
        let mut y = if t != 0.0 {
            let tn = ctx.graph.fill(&[1], t, ctx.name)?;
            let ge = ctx.push(Op::Binary(BinaryOp::Ge), &[tn, x])?;
            let neg = ctx.push(Op::Unary(UnaryOp::Neg), &[ge])?;
            let gt = ctx.push(Op::Unary(UnaryOp::AddScalar(1.0)), &[neg])?;
            ctx.push(Op::Binary(BinaryOp::Mul), &[x, gt])?
        } else {
            ctx.push(Op::Unary(UnaryOp::Relu), &[x])?
        };
        if let Some(m) = self.max_value {
            // Keras clips to [0, max_value].
            y = ctx.push(Op::Unary(UnaryOp::Relu), &[y])?;
            y = with_scalar(ctx, BinaryOp::Min, y, m)?;
        }
        if ns != 0.0 {
            // minus negative_slope * relu(threshold - x).
            let nx = ctx.push(Op::Unary(UnaryOp::Neg), &[x])?;
            let shifted = ctx.push(Op::Unary(UnaryOp::AddScalar(t)), &[nx])?;
            let below = ctx.push(Op::Unary(UnaryOp::Relu), &[shifted])?;
            let scaled = ctx.push(Op::Unary(UnaryOp::Scale(ns)), &[below])?;
            y = ctx.push(Op::Binary(BinaryOp::Sub), &[y, scaled])?;
        }
        Ok(y)
    }
}

/// Keras `LeakyReLU(negative_slope=0.3)`: `x` for `x >= 0`, else `negative_slope * x`.
#[derive(Debug, Clone)]
pub struct LeakyReLU {
    negative_slope: f32,
    name: Option<String>,
}

impl Default for LeakyReLU {
    fn default() -> Self {
        LeakyReLU {
            negative_slope: 0.3,
            name: None,
        }
    }
}

impl LeakyReLU {
    /// A leaky rectifier with Keras's default slope 0.3.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `negative_slope` (default 0.3; tf.keras 2 calls it `alpha`).
    pub fn negative_slope(mut self, s: f32) -> Self {
        self.negative_slope = s;
        self
    }
    /// Sets the layer's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Layer for LeakyReLU {
    fn class_name(&self) -> &'static str {
        "LeakyReLU"
    }
    fn default_prefix(&self) -> &'static str {
        "leaky_re_lu"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        finite_non_negative(self.negative_slope, ctx.name, "negative_slope")?;
        ctx.expect_inputs(inputs, 1)?;
        ctx.push(Op::Unary(UnaryOp::LeakyRelu(self.negative_slope)), &[inputs[0]])
    }
}

/// Keras `PReLU(alpha_initializer="zeros", shared_axes=None)`: `relu(x) - alpha * relu(-x)`
/// with a learned `alpha` of the input's per-sample shape, length 1 along every axis in
/// `shared_axes` (1-based, the batch axis excluded: `[1, 2]` gives one alpha per channel of
/// an NHWC image).
#[derive(Debug, Clone, Default)]
pub struct PReLU {
    shared_axes: Vec<usize>,
    name: Option<String>,
}

impl PReLU {
    /// A parametric rectifier with one alpha per input element (Keras's default).
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `shared_axes`: axes (1-based) along which one alpha is shared.
    pub fn shared_axes(mut self, axes: &[usize]) -> Self {
        self.shared_axes = axes.to_vec();
        self
    }
    /// Sets the layer's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Layer for PReLU {
    fn class_name(&self) -> &'static str {
        "PReLU"
    }
    fn default_prefix(&self) -> &'static str {
        "p_re_lu"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        ctx.expect_inputs(inputs, 1)?;
        let x = inputs[0];
        let mut shape = ctx.shape(x)[1..].to_vec();
        for &a in &self.shared_axes {
            if a == 0 || a > shape.len() {
                return Err(GraphError::arg(
                    ctx.name,
                    "shared_axes",
                    format!(
                        "axis {a} is out of range: the input has axes 1..={} besides the batch",
                        shape.len()
                    ),
                ));
            }
            shape[a - 1] = 1;
        }
        let alpha = ctx.param("alpha", &shape, Initializer::Zeros, true)?;
        let pos = ctx.push(Op::Unary(UnaryOp::Relu), &[x])?;
        let nx = ctx.push(Op::Unary(UnaryOp::Neg), &[x])?;
        let neg = ctx.push(Op::Unary(UnaryOp::Relu), &[nx])?;
        let scaled = ctx.push(Op::Binary(BinaryOp::Mul), &[neg, alpha])?;
        ctx.push(Op::Binary(BinaryOp::Sub), &[pos, scaled])
    }
}

/// Keras `ELU(alpha=1.0)`: `x` for `x > 0`, else `alpha * (exp(x) - 1)`, as
/// `relu(x) + alpha * (exp(min(x, 0)) - 1)`.
#[derive(Debug, Clone)]
pub struct ELU {
    alpha: f32,
    name: Option<String>,
}

impl Default for ELU {
    fn default() -> Self {
        ELU { alpha: 1.0, name: None }
    }
}

impl ELU {
    /// An exponential linear unit with `alpha = 1`.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `alpha` (default 1).
    pub fn alpha(mut self, a: f32) -> Self {
        self.alpha = a;
        self
    }
    /// Sets the layer's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Layer for ELU {
    fn class_name(&self) -> &'static str {
        "ELU"
    }
    fn default_prefix(&self) -> &'static str {
        "elu"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        if !self.alpha.is_finite() {
            return Err(GraphError::arg(
                ctx.name,
                "alpha",
                format!("must be finite, got {}", self.alpha),
            ));
        }
        ctx.expect_inputs(inputs, 1)?;
        let x = inputs[0];
        let pos = ctx.push(Op::Unary(UnaryOp::Relu), &[x])?;
        let low = with_scalar(ctx, BinaryOp::Min, x, 0.0)?;
        let e = ctx.push(Op::Unary(UnaryOp::Exp), &[low])?;
        let em1 = ctx.push(Op::Unary(UnaryOp::AddScalar(-1.0)), &[e])?;
        let neg = ctx.push(Op::Unary(UnaryOp::Scale(self.alpha)), &[em1])?;
        ctx.push(Op::Binary(BinaryOp::Add), &[pos, neg])
    }
}

/// Keras `Softmax(axis=-1)`; only the last axis is supported.
#[derive(Debug, Clone)]
pub struct Softmax {
    axis: i64,
    name: Option<String>,
}

impl Default for Softmax {
    fn default() -> Self {
        Softmax { axis: -1, name: None }
    }
}

impl Softmax {
    /// A softmax over the last axis.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `axis` (default -1); it must name the last axis.
    pub fn axis(mut self, axis: i64) -> Self {
        self.axis = axis;
        self
    }
    /// Sets the layer's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Layer for Softmax {
    fn class_name(&self) -> &'static str {
        "Softmax"
    }
    fn default_prefix(&self) -> &'static str {
        "softmax"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        ctx.expect_inputs(inputs, 1)?;
        let rank = ctx.shape(inputs[0]).len() as i64;
        if self.axis != -1 && self.axis != rank - 1 {
            return Err(GraphError::arg(
                ctx.name,
                "axis",
                format!(
                    "axis {} is not supported for a rank-{rank} input; only the last axis (-1) is",
                    self.axis
                ),
            ));
        }
        ctx.push(Op::Softmax, &[inputs[0]])
    }
}
