//! `SeparableConv2D`: a depthwise convolution followed by a pointwise (1x1) one.

use super::conv::{ConvArgs, conv_builders};
use super::{Layer, LayerCtx, Size2, positive};
use crate::error::Result;
use crate::init::Initializer;
use crate::ir::{ConvGeometry, NodeId, Op, Pad2d};

/// Keras `SeparableConv2D(filters, kernel_size, strides, padding, depth_multiplier,
/// dilation_rate, use_bias, activation)`: `depthwise_kernel` `(kh, kw, in, depth_multiplier)`
/// applied with the strides, padding and dilation, then `pointwise_kernel`
/// `(1, 1, in * depth_multiplier, filters)`, then `bias` `(filters,)` and the activation.
#[derive(Debug, Clone)]
pub struct SeparableConv2D {
    filters: usize,
    depth_multiplier: usize,
    args: ConvArgs,
}

impl SeparableConv2D {
    /// A separable convolution with `filters` output channels and a `kernel_size` window.
    pub fn new(filters: usize, kernel_size: impl Into<Size2>) -> Self {
        SeparableConv2D {
            filters,
            depth_multiplier: 1,
            args: ConvArgs::new(kernel_size.into()),
        }
    }

    /// Sets `depth_multiplier` (default 1): depthwise output channels per input channel.
    pub fn depth_multiplier(mut self, m: usize) -> Self {
        self.depth_multiplier = m;
        self
    }
}
conv_builders!(SeparableConv2D);

impl Layer for SeparableConv2D {
    fn class_name(&self) -> &'static str {
        "SeparableConv2D"
    }
    fn default_prefix(&self) -> &'static str {
        "separable_conv2d"
    }
    fn name(&self) -> Option<&str> {
        self.args.name.as_deref()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        let layer = ctx.name;
        positive(self.filters, layer, "filters")?;
        positive(self.depth_multiplier, layer, "depth_multiplier")?;
        let (padding, act) = self.args.check(layer)?;
        ctx.expect_inputs(inputs, 1)?;
        let [_, h, w, c] = ctx.expect_image(inputs[0])?;
        let a = &self.args;
        let m = self.depth_multiplier;
        let (kh, kw) = (a.kernel_size.0, a.kernel_size.1);
        let depthwise = ConvGeometry {
            stride: (a.strides.0, a.strides.1),
            dilation: (a.dilation_rate.0, a.dilation_rate.1),
            pad: padding.pad2d(h, w, a.kernel_size, a.strides, a.dilation_rate),
            groups: c,
        };
        // As DepthwiseConv2D: (kh, kw, in, m) is the grouped HWIO kernel (kh, kw, 1, in * m).
        let dk = ctx.param("depthwise_kernel", &[kh, kw, c, m], Initializer::GlorotUniform, true)?;
        let dk = ctx.graph.reshape(dk, &[kh, kw, 1, c * m], ctx.name)?;
        let y = ctx.push(Op::Conv2d(depthwise), &[inputs[0], dk])?;
        let pk = ctx.param(
            "pointwise_kernel",
            &[1, 1, c * m, self.filters],
            Initializer::GlorotUniform,
            true,
        )?;
        let pointwise = ConvGeometry {
            stride: (1, 1),
            dilation: (1, 1),
            pad: Pad2d::default(),
            groups: 1,
        };
        let y = ctx.push(Op::Conv2d(pointwise), &[y, pk])?;
        a.finish(ctx, y, self.filters, act)
    }
}
