//! `BatchNormalization`.

use super::{Layer, LayerCtx};
use crate::error::{GraphError, Result};
use crate::init::Initializer;
use crate::ir::{NodeId, Op};

/// Keras `BatchNormalization(axis=-1, momentum=0.99, epsilon=0.001, center=True, scale=True)`
/// over the last (channel) axis: `gamma` and `beta` trainable, `moving_mean` and
/// `moving_variance` not.
#[derive(Debug, Clone)]
pub struct BatchNormalization {
    momentum: f32,
    epsilon: f32,
    name: Option<String>,
}

impl Default for BatchNormalization {
    fn default() -> Self {
        BatchNormalization {
            momentum: 0.99,
            epsilon: 1e-3,
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
        let gamma = ctx.param("gamma", &[c], Initializer::Ones, true)?;
        let beta = ctx.param("beta", &[c], Initializer::Zeros, true)?;
        let mean = ctx.param("moving_mean", &[c], Initializer::Zeros, false)?;
        let var = ctx.param("moving_variance", &[c], Initializer::Ones, false)?;
        if ctx.training {
            return Err(GraphError::shape(
                ctx.name,
                "training-mode batch normalisation is not supported yet",
            ));
        }
        ctx.push(
            Op::BatchNormInference { epsilon: self.epsilon },
            &[inputs[0], gamma, beta, mean, var],
        )
    }
}
