//! Core layers: `Input`, `Dense`, `Activation`, `Flatten`, `Reshape`.

use super::{ActivationKind, Layer, LayerCtx, positive};
use crate::error::{GraphError, Result};
use crate::init::Initializer;
use crate::ir::{BinaryOp, NodeId, Op, fmt_shape};

/// Keras `Input(shape)`: a model input; `shape` excludes the batch axis.
#[derive(Debug, Clone)]
pub struct Input {
    shape: Vec<usize>,
    name: Option<String>,
}

impl Input {
    /// An input of samples shaped `shape` (e.g. `[28, 28, 1]`).
    pub fn new(shape: &[usize]) -> Self {
        Input {
            shape: shape.to_vec(),
            name: None,
        }
    }

    /// Sets the input's name (default `input_layer`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Layer for Input {
    fn class_name(&self) -> &'static str {
        "InputLayer"
    }
    fn default_prefix(&self) -> &'static str {
        "input_layer"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn input_shape(&self) -> Option<&[usize]> {
        Some(&self.shape)
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, _inputs: &[NodeId]) -> Result<NodeId> {
        Err(GraphError::shape(ctx.name, "Input layers are fed, not applied"))
    }
}

/// Keras `Dense(units, activation, use_bias)`: kernel `(in, units)` (glorot_uniform), bias
/// `(units,)` (zeros). The input must be 2-D `(batch, features)`.
#[derive(Debug, Clone)]
pub struct Dense {
    units: usize,
    activation: String,
    use_bias: bool,
    name: Option<String>,
}

impl Dense {
    /// A fully connected layer with `units` outputs.
    pub fn new(units: usize) -> Self {
        Dense {
            units,
            activation: "linear".into(),
            use_bias: true,
            name: None,
        }
    }
    /// Sets the activation by Keras name (default `"linear"`).
    pub fn activation(mut self, a: &str) -> Self {
        self.activation = a.to_string();
        self
    }
    /// Sets `use_bias` (default true).
    pub fn use_bias(mut self, b: bool) -> Self {
        self.use_bias = b;
        self
    }
    /// Sets the layer's name (default: automatic, `dense`, `dense_1`, ...).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Layer for Dense {
    fn class_name(&self) -> &'static str {
        "Dense"
    }
    fn default_prefix(&self) -> &'static str {
        "dense"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        positive(self.units, ctx.name, "units")?;
        let act = ActivationKind::parse(&self.activation, ctx.name)?;
        ctx.expect_inputs(inputs, 1)?;
        let shape = ctx.shape(inputs[0]);
        if shape.len() != 2 {
            return Err(GraphError::shape(
                ctx.name,
                format!(
                    "Dense expects a 2-D input (batch, features), got shape {}; add a Flatten (or GlobalAveragePooling2D) layer before it",
                    fmt_shape(&shape)
                ),
            ));
        }
        let k = ctx.param("kernel", &[shape[1], self.units], Initializer::GlorotUniform, true)?;
        let mut y = ctx.push(
            Op::MatMul {
                trans_a: false,
                trans_b: false,
            },
            &[inputs[0], k],
        )?;
        if self.use_bias {
            let b = ctx.param("bias", &[self.units], Initializer::Zeros, true)?;
            y = ctx.push(Op::Binary(BinaryOp::Add), &[y, b])?;
        }
        act.apply(ctx, y)
    }
}

/// Keras `Activation(name)`: relu, relu6, leaky_relu, sigmoid, tanh, softmax, log_softmax, linear.
#[derive(Debug, Clone)]
pub struct Activation {
    activation: String,
    name: Option<String>,
}

impl Activation {
    /// An activation layer applying the named function.
    pub fn new(activation: &str) -> Self {
        Activation {
            activation: activation.to_string(),
            name: None,
        }
    }
    /// Sets the layer's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Layer for Activation {
    fn class_name(&self) -> &'static str {
        "Activation"
    }
    fn default_prefix(&self) -> &'static str {
        "activation"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        let act = ActivationKind::parse(&self.activation, ctx.name)?;
        ctx.expect_inputs(inputs, 1)?;
        match act {
            // An explicit identity node keeps the layer visible in dumps and summaries.
            ActivationKind::Linear => {
                let s = ctx.shape(inputs[0]);
                ctx.graph.reshape(inputs[0], &s, ctx.name)
            }
            _ => act.apply(ctx, inputs[0]),
        }
    }
}

/// Keras `Flatten()`: `(batch, d1, d2, ...)` to `(batch, d1 * d2 * ...)`.
#[derive(Debug, Clone, Default)]
pub struct Flatten {
    name: Option<String>,
}

impl Flatten {
    /// A flatten layer.
    pub fn new() -> Self {
        Flatten::default()
    }
    /// Sets the layer's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Layer for Flatten {
    fn class_name(&self) -> &'static str {
        "Flatten"
    }
    fn default_prefix(&self) -> &'static str {
        "flatten"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        ctx.expect_inputs(inputs, 1)?;
        let s = ctx.shape(inputs[0]);
        let rest: usize = s[1..].iter().product();
        ctx.graph.reshape(inputs[0], &[s[0], rest], ctx.name)
    }
}

/// Keras `Reshape(target_shape)`: `target_shape` excludes the batch axis; one entry may be -1.
#[derive(Debug, Clone)]
pub struct Reshape {
    target: Vec<i64>,
    name: Option<String>,
}

impl Reshape {
    /// A reshape to `target_shape` (without the batch axis; one `-1` is inferred).
    pub fn new(target_shape: &[i64]) -> Self {
        Reshape {
            target: target_shape.to_vec(),
            name: None,
        }
    }
    /// Sets the layer's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Layer for Reshape {
    fn class_name(&self) -> &'static str {
        "Reshape"
    }
    fn default_prefix(&self) -> &'static str {
        "reshape"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        ctx.expect_inputs(inputs, 1)?;
        let s = ctx.shape(inputs[0]);
        let per_sample: usize = s[1..].iter().product();
        let bad = |m: String| GraphError::arg(ctx.name, "target_shape", m);
        if self.target.iter().any(|&d| d == 0 || d < -1) || self.target.iter().filter(|&&d| d == -1).count() > 1 {
            return Err(bad(format!(
                "{:?}: entries must be positive, with at most one -1",
                self.target
            )));
        }
        let known: usize = self.target.iter().filter(|&&d| d > 0).map(|&d| d as usize).product();
        let mut shape = vec![s[0]];
        for &d in &self.target {
            if d == -1 {
                if !per_sample.is_multiple_of(known) {
                    return Err(bad(format!(
                        "cannot infer -1 in {:?} for {} elements per sample",
                        self.target, per_sample
                    )));
                }
                shape.push(per_sample / known);
            } else {
                shape.push(d as usize);
            }
        }
        ctx.graph.reshape(inputs[0], &shape, ctx.name)
    }
}
