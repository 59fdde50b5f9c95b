//! `InstanceNormalization`: per-sample, per-channel normalisation over the spatial axes (the
//! normalisation of feed-forward style-transfer networks).

use super::{Layer, LayerCtx};
use crate::error::{GraphError, Result};
use crate::init::Initializer;
use crate::ir::{NodeId, Op};

/// Instance normalisation of an NHWC tensor, as Keras's `GroupNormalization(groups=-1)`: each
/// sample's channel is normalised by its own mean and (biased) variance over height and width,
/// then scaled by `gamma` and shifted by `beta`, both `(C,)`, initialised to ones and zeros.
/// The same in training and inference. One `InstanceNorm` node (its own kernel).
#[derive(Debug, Clone)]
pub struct InstanceNormalization {
    epsilon: f32,
    name: Option<String>,
}

impl Default for InstanceNormalization {
    fn default() -> Self {
        InstanceNormalization {
            epsilon: 1e-3,
            name: None,
        }
    }
}

impl InstanceNormalization {
    /// Instance normalisation with `epsilon` 0.001 (Keras's `GroupNormalization` default).
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `epsilon`, added to the variance.
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

impl Layer for InstanceNormalization {
    fn class_name(&self) -> &'static str {
        "InstanceNormalization"
    }
    fn default_prefix(&self) -> &'static str {
        "instance_normalization"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(GraphError::arg(
                ctx.name,
                "epsilon",
                format!("must be positive, got {}", self.epsilon),
            ));
        }
        ctx.expect_inputs(inputs, 1)?;
        let [_, _, _, c] = ctx.expect_image(inputs[0])?;
        let gamma = ctx.param("gamma", &[c], Initializer::Ones, true)?;
        let beta = ctx.param("beta", &[c], Initializer::Zeros, true)?;
        ctx.push(Op::InstanceNorm { epsilon: self.epsilon }, &[inputs[0], gamma, beta])
    }
}
