//! Spatial layers: `UpSampling2D`, `ZeroPadding2D`, `ReflectionPadding2D` and `Cropping2D`.

use super::{Layer, LayerCtx, Size2, positive2};
use crate::error::{GraphError, Result};
use crate::ir::{NodeId, Op, ResizeMode};

/// Keras `UpSampling2D(size=2, interpolation="nearest")`; `"bilinear"` uses half-pixel centres
/// as Keras does.
#[derive(Debug, Clone)]
pub struct UpSampling2D {
    size: Size2,
    interpolation: String,
    name: Option<String>,
}

impl UpSampling2D {
    /// Upsampling by integer factors `size`.
    pub fn new(size: impl Into<Size2>) -> Self {
        UpSampling2D {
            size: size.into(),
            interpolation: "nearest".into(),
            name: None,
        }
    }
    /// Sets `interpolation`: `"nearest"` (default) or `"bilinear"`.
    pub fn interpolation(mut self, i: &str) -> Self {
        self.interpolation = i.to_string();
        self
    }
    /// Sets the layer's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Layer for UpSampling2D {
    fn class_name(&self) -> &'static str {
        "UpSampling2D"
    }
    fn default_prefix(&self) -> &'static str {
        "up_sampling2d"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        positive2(self.size, ctx.name, "size")?;
        let mode = match self.interpolation.as_str() {
            "nearest" => ResizeMode::Nearest,
            "bilinear" => ResizeMode::Bilinear,
            other => {
                return Err(GraphError::arg(
                    ctx.name,
                    "interpolation",
                    format!("expected \"nearest\" or \"bilinear\", got \"{other}\""),
                ));
            }
        };
        ctx.expect_inputs(inputs, 1)?;
        let [_, h, w, _] = ctx.expect_image(inputs[0])?;
        ctx.push(
            Op::Resize {
                mode,
                height: h * self.size.0,
                width: w * self.size.1,
            },
            &[inputs[0]],
        )
    }
}

/// Keras `ZeroPadding2D(padding=1)`: zeros around the image; `padding` is one number, a
/// `(rows, cols)` pair, or `((top, bottom), (left, right))`.
#[derive(Debug, Clone)]
pub struct ZeroPadding2D {
    pad: ((usize, usize), (usize, usize)),
    name: Option<String>,
}

impl ZeroPadding2D {
    /// The same padding on all four sides.
    pub fn new(padding: usize) -> Self {
        ZeroPadding2D {
            pad: ((padding, padding), (padding, padding)),
            name: None,
        }
    }
    /// `rows` above and below, `cols` left and right.
    pub fn symmetric(rows: usize, cols: usize) -> Self {
        ZeroPadding2D {
            pad: ((rows, rows), (cols, cols)),
            name: None,
        }
    }
    /// `((top, bottom), (left, right))`.
    pub fn explicit(pad: ((usize, usize), (usize, usize))) -> Self {
        ZeroPadding2D { pad, name: None }
    }
    /// Sets the layer's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Layer for ZeroPadding2D {
    fn class_name(&self) -> &'static str {
        "ZeroPadding2D"
    }
    fn default_prefix(&self) -> &'static str {
        "zero_padding2d"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        ctx.expect_inputs(inputs, 1)?;
        ctx.expect_image(inputs[0])?;
        let ((t, b), (l, r)) = self.pad;
        ctx.push(
            Op::Pad {
                pads: vec![(0, 0), (t, b), (l, r), (0, 0)],
                value: 0.0,
                mode: crate::ir::PadMode::Constant,
            },
            &[inputs[0]],
        )
    }
}

/// Mirror padding of the height and width axes (`tf.pad(mode="REFLECT")`, the padding of
/// feed-forward style-transfer networks): `padding` rows above and below and columns left and
/// right, the edge pixel not repeated, so each amount must be below the axis length.
#[derive(Debug, Clone)]
pub struct ReflectionPadding2D {
    padding: (usize, usize),
    name: Option<String>,
}

impl ReflectionPadding2D {
    /// `padding` on all four sides.
    pub fn new(padding: usize) -> Self {
        ReflectionPadding2D {
            padding: (padding, padding),
            name: None,
        }
    }
    /// `rows` above and below, `cols` left and right.
    pub fn symmetric(rows: usize, cols: usize) -> Self {
        ReflectionPadding2D {
            padding: (rows, cols),
            name: None,
        }
    }
    /// Sets the layer's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Layer for ReflectionPadding2D {
    fn class_name(&self) -> &'static str {
        "ReflectionPadding2D"
    }
    fn default_prefix(&self) -> &'static str {
        "reflection_padding2d"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        ctx.expect_inputs(inputs, 1)?;
        let [_, h, w, _] = ctx.expect_image(inputs[0])?;
        let (r, c) = self.padding;
        if r >= h || c >= w {
            return Err(GraphError::shape(
                ctx.name,
                format!("reflection padding of {r} rows and {c} columns needs an input larger than that, got {h}x{w}"),
            ));
        }
        ctx.push(
            Op::Pad {
                pads: vec![(0, 0), (r, r), (c, c), (0, 0)],
                value: 0.0,
                mode: crate::ir::PadMode::Reflect,
            },
            &[inputs[0]],
        )
    }
}

/// Keras `Cropping2D(cropping=((0, 0), (0, 0)))`: removes rows and columns at the image's
/// edges; `cropping` is one number, a `(rows, cols)` pair, or `((top, bottom), (left, right))`.
#[derive(Debug, Clone)]
pub struct Cropping2D {
    crop: ((usize, usize), (usize, usize)),
    name: Option<String>,
}

impl Cropping2D {
    /// The same cropping on all four sides.
    pub fn new(cropping: usize) -> Self {
        Cropping2D {
            crop: ((cropping, cropping), (cropping, cropping)),
            name: None,
        }
    }
    /// `rows` above and below, `cols` left and right.
    pub fn symmetric(rows: usize, cols: usize) -> Self {
        Cropping2D {
            crop: ((rows, rows), (cols, cols)),
            name: None,
        }
    }
    /// `((top, bottom), (left, right))`.
    pub fn explicit(crop: ((usize, usize), (usize, usize))) -> Self {
        Cropping2D { crop, name: None }
    }
    /// Sets the layer's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Layer for Cropping2D {
    fn class_name(&self) -> &'static str {
        "Cropping2D"
    }
    fn default_prefix(&self) -> &'static str {
        "cropping2d"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        ctx.expect_inputs(inputs, 1)?;
        let [n, h, w, c] = ctx.expect_image(inputs[0])?;
        let ((t, b), (l, r)) = self.crop;
        if t + b >= h || l + r >= w {
            return Err(GraphError::arg(
                ctx.name,
                "cropping",
                format!(
                    "(({t}, {b}), ({l}, {r})) leaves nothing of a {h}x{w} image; each axis must keep at least one pixel"
                ),
            ));
        }
        ctx.push(
            Op::Slice {
                starts: vec![0, t, l, 0],
                sizes: vec![n, h - t - b, w - l - r, c],
            },
            &[inputs[0]],
        )
    }
}
