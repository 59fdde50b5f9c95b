//! Dropout layers: `Dropout` (independent units) and `SpatialDropout2D` (whole channels).
//! Both are the identity at inference; in training they read a per-step seed input named
//! `<layer>/seed` that the trainer feeds.

use super::{Layer, LayerCtx};
use crate::error::{GraphError, Result};
use crate::ir::{BinaryOp, NodeId, Op, TensorType};

fn check_rate(rate: f32, layer: &str) -> Result<()> {
    if !(0.0..1.0).contains(&rate) {
        return Err(GraphError::arg(layer, "rate", format!("must be in [0, 1), got {rate}")));
    }
    Ok(())
}

/// The training-mode seed input of a dropout layer.
fn seed(ctx: &mut LayerCtx<'_>) -> Result<NodeId> {
    ctx.graph.input(&format!("{}/seed", ctx.name), TensorType::f32(vec![1]))
}

/// Keras `Dropout(rate)`: the identity at inference; in training, drops `rate` of the units
/// and scales the rest by `1 / (1 - rate)`.
#[derive(Debug, Clone)]
pub struct Dropout {
    rate: f32,
    name: Option<String>,
}

impl Dropout {
    /// A dropout layer with drop probability `rate` in `[0, 1)`.
    pub fn new(rate: f32) -> Self {
        Dropout { rate, name: None }
    }
    /// Sets the layer's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Layer for Dropout {
    fn class_name(&self) -> &'static str {
        "Dropout"
    }
    fn default_prefix(&self) -> &'static str {
        "dropout"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        check_rate(self.rate, ctx.name)?;
        ctx.expect_inputs(inputs, 1)?;
        if !ctx.training || self.rate == 0.0 {
            return ctx.push(
                Op::Dropout {
                    rate: self.rate,
                    training: false,
                },
                &[inputs[0]],
            );
        }
        let seed = seed(ctx)?;
        ctx.push(
            Op::Dropout {
                rate: self.rate,
                training: true,
            },
            &[inputs[0], seed],
        )
    }
}

/// Keras `SpatialDropout2D(rate)`: the identity at inference; in training it drops whole
/// channels of an NHWC image, each (sample, channel) with probability `rate`, scaling the rest
/// by `1 / (1 - rate)`: a dropout mask of shape `(N, 1, 1, C)` broadcast over the image.
#[derive(Debug, Clone)]
pub struct SpatialDropout2D {
    rate: f32,
    name: Option<String>,
}

impl SpatialDropout2D {
    /// A spatial dropout layer with drop probability `rate` in `[0, 1)`.
    pub fn new(rate: f32) -> Self {
        SpatialDropout2D { rate, name: None }
    }
    /// Sets the layer's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Layer for SpatialDropout2D {
    fn class_name(&self) -> &'static str {
        "SpatialDropout2D"
    }
    fn default_prefix(&self) -> &'static str {
        "spatial_dropout2d"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        check_rate(self.rate, ctx.name)?;
        ctx.expect_inputs(inputs, 1)?;
        let [n, _, _, c] = ctx.expect_image(inputs[0])?;
        if !ctx.training || self.rate == 0.0 {
            return ctx.push(
                Op::Dropout {
                    rate: self.rate,
                    training: false,
                },
                &[inputs[0]],
            );
        }
        // The mask is training-mode dropout of ones: 0 or 1 / (1 - rate) per (sample, channel).
        let seed = seed(ctx)?;
        let ones = ctx.graph.fill(&[n, 1, 1, c], 1.0, ctx.name)?;
        let mask = ctx.push(
            Op::Dropout {
                rate: self.rate,
                training: true,
            },
            &[ones, seed],
        )?;
        ctx.push(Op::Binary(BinaryOp::Mul), &[inputs[0], mask])
    }
}
