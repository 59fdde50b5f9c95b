//! Convolution layers: `Conv2D`, `DepthwiseConv2D`, `Conv2DTranspose`.

use super::{ActivationKind, Layer, LayerCtx, Padding, Size2, positive, positive2};
use crate::error::{GraphError, Result};
use crate::init::Initializer;
use crate::ir::{BinaryOp, ConvGeometry, NodeId, Op, Pad2d};

/// Arguments shared by the convolution layers, with Keras's defaults.
#[derive(Debug, Clone)]
pub(super) struct ConvArgs {
    pub(super) name: Option<String>,
    pub(super) kernel_size: Size2,
    pub(super) strides: Size2,
    pub(super) padding: String,
    pub(super) dilation_rate: Size2,
    pub(super) use_bias: bool,
    pub(super) activation: String,
}

impl ConvArgs {
    pub(super) fn new(kernel_size: Size2) -> Self {
        ConvArgs {
            name: None,
            kernel_size,
            strides: Size2(1, 1),
            padding: "valid".into(),
            dilation_rate: Size2(1, 1),
            use_bias: true,
            activation: "linear".into(),
        }
    }

    pub(super) fn check(&self, layer: &str) -> Result<(Padding, ActivationKind)> {
        positive2(self.kernel_size, layer, "kernel_size")?;
        positive2(self.strides, layer, "strides")?;
        positive2(self.dilation_rate, layer, "dilation_rate")?;
        if (self.strides.0 > 1 || self.strides.1 > 1) && (self.dilation_rate.0 > 1 || self.dilation_rate.1 > 1) {
            return Err(GraphError::arg(
                layer,
                "dilation_rate",
                "strides > 1 cannot be combined with dilation_rate > 1 (as in Keras)",
            ));
        }
        Ok((
            Padding::parse(&self.padding, layer)?,
            ActivationKind::parse(&self.activation, layer)?,
        ))
    }

    /// Adds the bias (if any) and the activation after the convolution output `y`.
    pub(super) fn finish(
        &self,
        ctx: &mut LayerCtx<'_>,
        y: NodeId,
        channels: usize,
        act: ActivationKind,
    ) -> Result<NodeId> {
        let y = if self.use_bias {
            let b = ctx.param("bias", &[channels], Initializer::Zeros, true)?;
            ctx.push(Op::Binary(BinaryOp::Add), &[y, b])?
        } else {
            y
        };
        act.apply(ctx, y)
    }
}

macro_rules! conv_builders {
    ($t:ty) => {
        impl $t {
            /// Sets the layer's name (default: automatic, e.g. `conv2d_1`).
            pub fn name(mut self, name: impl Into<String>) -> Self {
                self.args.name = Some(name.into());
                self
            }
            /// Sets `strides` (default 1).
            pub fn strides(mut self, s: impl Into<Size2>) -> Self {
                self.args.strides = s.into();
                self
            }
            /// Sets `padding`: `"valid"` (default) or `"same"`.
            pub fn padding(mut self, p: &str) -> Self {
                self.args.padding = p.to_string();
                self
            }
            /// Sets `dilation_rate` (default 1).
            pub fn dilation_rate(mut self, d: impl Into<Size2>) -> Self {
                self.args.dilation_rate = d.into();
                self
            }
            /// Sets `use_bias` (default true).
            pub fn use_bias(mut self, b: bool) -> Self {
                self.args.use_bias = b;
                self
            }
            /// Sets the activation by Keras name (default `"linear"`).
            pub fn activation(mut self, a: &str) -> Self {
                self.args.activation = a.to_string();
                self
            }
        }
    };
}
pub(super) use conv_builders;

/// Keras `Conv2D(filters, kernel_size, strides, padding, dilation_rate, groups, use_bias,
/// activation)`: kernel `(kh, kw, in/groups, filters)` (glorot_uniform), bias `(filters,)` (zeros).
#[derive(Debug, Clone)]
pub struct Conv2D {
    filters: usize,
    groups: usize,
    args: ConvArgs,
}

impl Conv2D {
    /// A convolution with `filters` output channels and a `kernel_size` window.
    pub fn new(filters: usize, kernel_size: impl Into<Size2>) -> Self {
        Conv2D {
            filters,
            groups: 1,
            args: ConvArgs::new(kernel_size.into()),
        }
    }

    /// Sets `groups` (default 1): input and output channels split into independent groups.
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
}
conv_builders!(Conv2D);

impl Layer for Conv2D {
    fn class_name(&self) -> &'static str {
        "Conv2D"
    }
    fn default_prefix(&self) -> &'static str {
        "conv2d"
    }
    fn name(&self) -> Option<&str> {
        self.args.name.as_deref()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        let layer = ctx.name;
        positive(self.filters, layer, "filters")?;
        positive(self.groups, layer, "groups")?;
        let (padding, act) = self.args.check(layer)?;
        ctx.expect_inputs(inputs, 1)?;
        let [_, h, w, c] = ctx.expect_image(inputs[0])?;
        if !c.is_multiple_of(self.groups) || !self.filters.is_multiple_of(self.groups) {
            return Err(GraphError::arg(
                layer,
                "groups",
                format!(
                    "groups={} must divide both the input channels ({c}) and filters ({})",
                    self.groups, self.filters
                ),
            ));
        }
        let a = &self.args;
        let pad = padding.pad2d(h, w, a.kernel_size, a.strides, a.dilation_rate);
        let geom = ConvGeometry {
            stride: (a.strides.0, a.strides.1),
            dilation: (a.dilation_rate.0, a.dilation_rate.1),
            pad,
            groups: self.groups,
        };
        let kshape = [a.kernel_size.0, a.kernel_size.1, c / self.groups, self.filters];
        let k = ctx.param("kernel", &kshape, Initializer::GlorotUniform, true)?;
        let y = ctx.push(Op::Conv2d(geom), &[inputs[0], k])?;
        a.finish(ctx, y, self.filters, act)
    }
}

/// Keras `DepthwiseConv2D(kernel_size, strides, padding, depth_multiplier, dilation_rate,
/// use_bias, activation)`: kernel `(kh, kw, in, depth_multiplier)`, bias `(in * depth_multiplier,)`.
#[derive(Debug, Clone)]
pub struct DepthwiseConv2D {
    depth_multiplier: usize,
    args: ConvArgs,
}

impl DepthwiseConv2D {
    /// A depthwise convolution with a `kernel_size` window.
    pub fn new(kernel_size: impl Into<Size2>) -> Self {
        DepthwiseConv2D {
            depth_multiplier: 1,
            args: ConvArgs::new(kernel_size.into()),
        }
    }

    /// Sets `depth_multiplier` (default 1): output channels per input channel.
    pub fn depth_multiplier(mut self, m: usize) -> Self {
        self.depth_multiplier = m;
        self
    }
}
conv_builders!(DepthwiseConv2D);

impl Layer for DepthwiseConv2D {
    fn class_name(&self) -> &'static str {
        "DepthwiseConv2D"
    }
    fn default_prefix(&self) -> &'static str {
        "depthwise_conv2d"
    }
    fn name(&self) -> Option<&str> {
        self.args.name.as_deref()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        let layer = ctx.name;
        positive(self.depth_multiplier, layer, "depth_multiplier")?;
        let (padding, act) = self.args.check(layer)?;
        ctx.expect_inputs(inputs, 1)?;
        let [_, h, w, c] = ctx.expect_image(inputs[0])?;
        let a = &self.args;
        let m = self.depth_multiplier;
        let pad = padding.pad2d(h, w, a.kernel_size, a.strides, a.dilation_rate);
        let geom = ConvGeometry {
            stride: (a.strides.0, a.strides.1),
            dilation: (a.dilation_rate.0, a.dilation_rate.1),
            pad,
            groups: c,
        };
        // Keras's (kh, kw, in, multiplier) kernel has the same memory order as the grouped HWIO
        // kernel (kh, kw, 1, in * multiplier): output channel `ci * m + j` reads input channel `ci`.
        let k = ctx.param(
            "kernel",
            &[a.kernel_size.0, a.kernel_size.1, c, m],
            Initializer::GlorotUniform,
            true,
        )?;
        let k = ctx
            .graph
            .reshape(k, &[a.kernel_size.0, a.kernel_size.1, 1, c * m], ctx.name)?;
        let y = ctx.push(Op::Conv2d(geom), &[inputs[0], k])?;
        a.finish(ctx, y, c * m, act)
    }
}

/// Keras `Conv2DTranspose(filters, kernel_size, strides, padding, dilation_rate, use_bias,
/// activation)`: kernel `(kh, kw, filters, in)`, bias `(filters,)`. Output size as Keras:
/// `"same"` gives `in * stride`, `"valid"` gives `in * stride + max(k_eff - stride, 0)`.
#[derive(Debug, Clone)]
pub struct Conv2DTranspose {
    filters: usize,
    args: ConvArgs,
}

impl Conv2DTranspose {
    /// A transposed convolution with `filters` output channels and a `kernel_size` window.
    pub fn new(filters: usize, kernel_size: impl Into<Size2>) -> Self {
        Conv2DTranspose {
            filters,
            args: ConvArgs::new(kernel_size.into()),
        }
    }
}
conv_builders!(Conv2DTranspose);

/// Cropping before/after and extra trailing rows of a transposed conv along one axis.
fn transpose_pads(padding: Padding, k: usize, stride: usize, dilation: usize) -> (usize, usize, usize) {
    let k_eff = dilation * (k - 1) + 1;
    let extra = stride.saturating_sub(k_eff);
    match padding {
        Padding::Valid => (0, 0, extra),
        Padding::Same => {
            let total = k_eff.saturating_sub(stride);
            (total / 2, total - total / 2, extra)
        }
    }
}

impl Layer for Conv2DTranspose {
    fn class_name(&self) -> &'static str {
        "Conv2DTranspose"
    }
    fn default_prefix(&self) -> &'static str {
        "conv2d_transpose"
    }
    fn name(&self) -> Option<&str> {
        self.args.name.as_deref()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        let layer = ctx.name;
        positive(self.filters, layer, "filters")?;
        let (padding, act) = self.args.check(layer)?;
        ctx.expect_inputs(inputs, 1)?;
        let [_, _, _, c] = ctx.expect_image(inputs[0])?;
        let a = &self.args;
        let (top, bottom, extra_h) = transpose_pads(padding, a.kernel_size.0, a.strides.0, a.dilation_rate.0);
        let (left, right, extra_w) = transpose_pads(padding, a.kernel_size.1, a.strides.1, a.dilation_rate.1);
        let geom = ConvGeometry {
            stride: (a.strides.0, a.strides.1),
            dilation: (a.dilation_rate.0, a.dilation_rate.1),
            pad: Pad2d {
                top,
                bottom,
                left,
                right,
            },
            groups: 1,
        };
        let kshape = [a.kernel_size.0, a.kernel_size.1, self.filters, c];
        let k = ctx.param("kernel", &kshape, Initializer::GlorotUniform, true)?;
        let y = ctx.push(
            Op::ConvTranspose2d {
                geom,
                out_pad: (extra_h, extra_w),
            },
            &[inputs[0], k],
        )?;
        a.finish(ctx, y, self.filters, act)
    }
}
