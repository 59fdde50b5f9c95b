//! The three small layers face-api's graphs need beyond Keras's: a per-channel affine map (its
//! "scale layer", also the descriptor's input normalisation) and a zero pad of the channel axis
//! (the shortcut of its down-sampling residual blocks).

use fovea_graph::Result;
use fovea_graph::init::Initializer;
use fovea_graph::ir::{BinaryOp, NodeId, Op, PadMode};
use fovea_graph::layers::{Layer, LayerCtx};
use fovea_graph::{GraphError, Tensor};

/// `x * weights + biases` with one learned weight and bias per channel (last axis): face-api's
/// `scale` layer (`<prefix>/scale/weights`, `/biases`). Parameters `weights` (ones) and
/// `biases` (zeros) of shape `(channels,)`.
#[derive(Debug, Clone)]
pub struct ChannelScale {
    name: String,
}

impl ChannelScale {
    /// A scale layer called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        ChannelScale { name: name.into() }
    }
}

impl Layer for ChannelScale {
    fn class_name(&self) -> &'static str {
        "ChannelScale"
    }
    fn default_prefix(&self) -> &'static str {
        "channel_scale"
    }
    fn name(&self) -> Option<&str> {
        Some(&self.name)
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        ctx.expect_inputs(inputs, 1)?;
        let c = *ctx.shape(inputs[0]).last().unwrap_or(&0);
        let w = ctx.param("weights", &[c], Initializer::Ones, true)?;
        let b = ctx.param("biases", &[c], Initializer::Zeros, true)?;
        let scaled = ctx.push(Op::Binary(BinaryOp::Mul), &[inputs[0], w])?;
        ctx.push(Op::Binary(BinaryOp::Add), &[scaled, b])
    }
}

/// `(x - offset) * scale` with a fixed (not learned) offset per channel: input normalisation
/// written into the graph (face-api subtracts its mean RGB from 0-255 pixels, then divides).
#[derive(Debug, Clone)]
pub struct Normalize {
    name: String,
    offset: Vec<f32>,
    scale: f32,
}

impl Normalize {
    /// `(x - offset[c]) * scale` for channel `c`.
    pub fn new(name: impl Into<String>, offset: &[f32], scale: f32) -> Self {
        Normalize {
            name: name.into(),
            offset: offset.to_vec(),
            scale,
        }
    }
}

impl Layer for Normalize {
    fn class_name(&self) -> &'static str {
        "Normalize"
    }
    fn default_prefix(&self) -> &'static str {
        "normalize"
    }
    fn name(&self) -> Option<&str> {
        Some(&self.name)
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        ctx.expect_inputs(inputs, 1)?;
        let c = *ctx.shape(inputs[0]).last().unwrap_or(&0);
        if c != self.offset.len() {
            return Err(GraphError::shape(
                ctx.name,
                format!("expected {} channels, got {c}", self.offset.len()),
            ));
        }
        let offset = Tensor::new(vec![c], self.offset.clone(), ctx.name)?;
        let offset = ctx.graph.constant(offset, ctx.name)?;
        let centred = ctx.push(Op::Binary(BinaryOp::Sub), &[inputs[0], offset])?;
        ctx.push(Op::Unary(fovea_graph::ir::UnaryOp::Scale(self.scale)), &[centred])
    }
}

/// Appends `extra` zero channels to an NHWC tensor (face-api concatenates zeros to the pooled
/// shortcut when a block widens the channels).
#[derive(Debug, Clone)]
pub struct PadChannels {
    name: String,
    extra: usize,
}

impl PadChannels {
    /// A layer adding `extra` zero channels after the existing ones.
    pub fn new(name: impl Into<String>, extra: usize) -> Self {
        PadChannels {
            name: name.into(),
            extra,
        }
    }
}

impl Layer for PadChannels {
    fn class_name(&self) -> &'static str {
        "PadChannels"
    }
    fn default_prefix(&self) -> &'static str {
        "pad_channels"
    }
    fn name(&self) -> Option<&str> {
        Some(&self.name)
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        ctx.expect_inputs(inputs, 1)?;
        ctx.expect_image(inputs[0])?;
        let pads = vec![(0, 0), (0, 0), (0, 0), (0, self.extra)];
        ctx.push(
            Op::Pad {
                pads,
                value: 0.0,
                mode: PadMode::Constant,
            },
            &[inputs[0]],
        )
    }
}
