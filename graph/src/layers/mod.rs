//! Keras-like layers. Each layer lowers itself to IR nodes through a [`LayerCtx`], creating its
//! parameters (named `<layer>/<variable>`, as Keras names them) on the way.
//!
//! Arguments carry Keras's names and defaults; a bad argument or a shape the layer cannot
//! apply to is an error naming the layer.

mod activation;
mod conv;
mod core;
mod dropout;
mod instance_norm;
mod merge;
mod norm;
mod pool;
mod separable;
mod spatial;
#[cfg(test)]
mod tests;

pub use activation::{ELU, LeakyReLU, PReLU, ReLU, Softmax};
pub use conv::{Conv2D, Conv2DTranspose, DepthwiseConv2D};
pub use core::{Activation, Dense, Flatten, Input, Reshape};
pub use dropout::{Dropout, SpatialDropout2D};
pub use instance_norm::InstanceNormalization;
pub use merge::{Add, Average, Concatenate, Maximum, Multiply, Subtract};
pub use norm::{BatchNormalization, LayerNormalization, UnitNormalization};
pub use pool::{AveragePooling2D, GlobalAveragePooling2D, MaxPooling2D};
pub use separable::SeparableConv2D;
pub use spatial::{Cropping2D, ReflectionPadding2D, UpSampling2D, ZeroPadding2D};

use crate::error::{GraphError, Result};
use crate::init::Initializer;
use crate::ir::{Graph, NodeId, Op, Pad2d, UnaryOp, fmt_shape};
use crate::model::ParamStore;

/// A layer of a model: Keras's class name, an optional user name, and how it lowers to IR.
pub trait Layer: std::fmt::Debug {
    /// Keras's class name (`Conv2D`, `MaxPooling2D`, ...), shown by `summary()`.
    fn class_name(&self) -> &'static str;
    /// The snake-case prefix of automatic names (`conv2d`, `max_pooling2d`, ...).
    fn default_prefix(&self) -> &'static str;
    /// The name the user gave, if any.
    fn name(&self) -> Option<&str>;
    /// For `Input` layers: the shape of one sample (without the batch axis).
    fn input_shape(&self) -> Option<&[usize]> {
        None
    }
    /// Adds the layer's nodes to `ctx.graph`, reading `inputs`, and returns its output node.
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId>;
}

/// What a layer sees while it lowers itself: the graph, its own name, and the parameter store.
pub struct LayerCtx<'a> {
    /// The graph under construction.
    pub graph: &'a mut Graph,
    /// The layer's resolved name (errors and parameter names use it).
    pub name: &'a str,
    /// Parameter values, created on first use from the initializer and the model seed.
    pub params: &'a mut ParamStore,
    /// Training mode (Dropout drops, BatchNormalization uses batch statistics).
    pub training: bool,
    /// Whether the layer is trainable. A frozen layer's parameters are not trainable, and a
    /// frozen BatchNormalization runs in inference mode even in training (Keras 3).
    pub trainable: bool,
}

impl LayerCtx<'_> {
    /// A parameter node named `<layer>/<variable>`: created with `init` the first time, checked
    /// against its stored shape afterwards. It is trainable when `trainable` says so and the
    /// layer is not frozen; the store records that.
    pub fn param(&mut self, variable: &str, shape: &[usize], init: Initializer, trainable: bool) -> Result<NodeId> {
        let full = format!("{}/{}", self.name, variable);
        let trainable = trainable && self.trainable;
        self.params.ensure(&full, shape, init, trainable, self.name)?;
        self.params.set_trainable(&full, trainable);
        self.graph.param(&full, shape, trainable, self.name)
    }

    /// Adds `op` of `inputs`, attributed to this layer.
    pub fn push(&mut self, op: Op, inputs: &[NodeId]) -> Result<NodeId> {
        self.graph.push(op, inputs, self.name)
    }

    /// The shape of a node.
    pub fn shape(&self, id: NodeId) -> Vec<usize> {
        self.graph.shape(id).to_vec()
    }

    /// Checks the layer got exactly `n` inputs.
    pub fn expect_inputs(&self, inputs: &[NodeId], n: usize) -> Result<()> {
        if inputs.len() != n {
            return Err(GraphError::shape(
                self.name,
                format!("expected {n} input(s), got {}", inputs.len()),
            ));
        }
        Ok(())
    }

    /// Checks the single input is 4-D (batch, height, width, channels).
    pub fn expect_image(&self, x: NodeId) -> Result<[usize; 4]> {
        let s = self.graph.shape(x);
        match s {
            [n, h, w, c] => Ok([*n, *h, *w, *c]),
            _ => Err(GraphError::shape(
                self.name,
                format!(
                    "expected a 4-D input (batch, height, width, channels), got shape {}",
                    fmt_shape(s)
                ),
            )),
        }
    }
}

/// A pair of sizes (height, width), built from one number or a pair, as Keras accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size2(pub usize, pub usize);

impl From<usize> for Size2 {
    fn from(v: usize) -> Self {
        Size2(v, v)
    }
}

impl From<(usize, usize)> for Size2 {
    fn from(v: (usize, usize)) -> Self {
        Size2(v.0, v.1)
    }
}

impl From<[usize; 2]> for Size2 {
    fn from(v: [usize; 2]) -> Self {
        Size2(v[0], v[1])
    }
}

/// Keras's `padding` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Padding {
    /// No padding: the window must fit inside the input.
    #[default]
    Valid,
    /// Pad so that the output has `ceil(input / stride)` positions, the extra row/column at the
    /// bottom/right.
    Same,
}

impl Padding {
    /// Parses Keras's strings `"valid"` and `"same"`.
    pub fn parse(s: &str, layer: &str) -> Result<Self> {
        match s {
            "valid" => Ok(Padding::Valid),
            "same" => Ok(Padding::Same),
            _ => Err(GraphError::arg(
                layer,
                "padding",
                format!("expected \"valid\" or \"same\", got \"{s}\""),
            )),
        }
    }

    /// The padding before and after along one axis, as TensorFlow computes it for "same".
    pub fn amounts(self, input: usize, k: usize, stride: usize, dilation: usize) -> (usize, usize) {
        match self {
            Padding::Valid => (0, 0),
            Padding::Same => {
                let out = input.div_ceil(stride);
                let span = dilation * (k - 1) + 1;
                let total = ((out - 1) * stride + span).saturating_sub(input);
                (total / 2, total - total / 2)
            }
        }
    }

    /// The 2-D padding for a window `k` with `stride` and `dilation` over an `h x w` input.
    pub fn pad2d(self, h: usize, w: usize, k: Size2, stride: Size2, dilation: Size2) -> Pad2d {
        let (top, bottom) = self.amounts(h, k.0, stride.0, dilation.0);
        let (left, right) = self.amounts(w, k.1, stride.1, dilation.1);
        Pad2d {
            top,
            bottom,
            left,
            right,
        }
    }
}

/// An activation function by Keras name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ActivationKind {
    /// `linear` (or none): the identity.
    Linear,
    /// `relu`.
    Relu,
    /// `relu6`.
    Relu6,
    /// `leaky_relu` with the given negative slope (Keras 3's default 0.2).
    LeakyRelu(f32),
    /// `sigmoid`.
    Sigmoid,
    /// `tanh`.
    Tanh,
    /// `softmax` over the last axis.
    Softmax,
    /// `log_softmax` over the last axis.
    LogSoftmax,
}

impl ActivationKind {
    /// Parses a Keras activation name; the error names the layer and lists the known names.
    pub fn parse(s: &str, layer: &str) -> Result<Self> {
        Ok(match s {
            "linear" | "" | "none" => ActivationKind::Linear,
            "relu" => ActivationKind::Relu,
            "relu6" => ActivationKind::Relu6,
            "leaky_relu" => ActivationKind::LeakyRelu(0.2),
            "sigmoid" => ActivationKind::Sigmoid,
            "tanh" => ActivationKind::Tanh,
            "softmax" => ActivationKind::Softmax,
            "log_softmax" => ActivationKind::LogSoftmax,
            _ => {
                return Err(GraphError::arg(
                    layer,
                    "activation",
                    format!(
                        "unknown activation \"{s}\"; expected one of linear, relu, relu6, leaky_relu, sigmoid, tanh, softmax, log_softmax"
                    ),
                ));
            }
        })
    }

    /// Applies the activation to `x` (no node for `linear`).
    pub fn apply(self, ctx: &mut LayerCtx<'_>, x: NodeId) -> Result<NodeId> {
        let op = match self {
            ActivationKind::Linear => return Ok(x),
            ActivationKind::Relu => Op::Unary(UnaryOp::Relu),
            ActivationKind::Relu6 => Op::Unary(UnaryOp::Relu6),
            ActivationKind::LeakyRelu(a) => Op::Unary(UnaryOp::LeakyRelu(a)),
            ActivationKind::Sigmoid => Op::Unary(UnaryOp::Sigmoid),
            ActivationKind::Tanh => Op::Unary(UnaryOp::Tanh),
            ActivationKind::Softmax => Op::Softmax,
            ActivationKind::LogSoftmax => Op::LogSoftmax,
        };
        ctx.push(op, &[x])
    }
}

/// Checks a positive count argument (`filters`, `units`, ...).
pub(crate) fn positive(value: usize, layer: &str, argument: &str) -> Result<()> {
    if value == 0 {
        return Err(GraphError::arg(layer, argument, "must be a positive integer, got 0"));
    }
    Ok(())
}

/// Checks a positive pair argument (`kernel_size`, `strides`, ...).
pub(crate) fn positive2(value: Size2, layer: &str, argument: &str) -> Result<()> {
    if value.0 == 0 || value.1 == 0 {
        return Err(GraphError::arg(
            layer,
            argument,
            format!("must be positive, got ({}, {})", value.0, value.1),
        ));
    }
    Ok(())
}
