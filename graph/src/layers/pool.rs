//! Pooling layers: `MaxPooling2D`, `AveragePooling2D`, `GlobalAveragePooling2D`.

use super::{Layer, LayerCtx, Padding, Size2, positive2};
use crate::error::Result;
use crate::ir::{NodeId, Op, PoolGeometry, PoolKind, ReduceOp};

/// Keras `MaxPooling2D` / `AveragePooling2D(pool_size=2, strides=None, padding="valid")`;
/// `strides` defaults to `pool_size`.
#[derive(Debug, Clone)]
struct PoolArgs {
    pool_size: Size2,
    strides: Option<Size2>,
    padding: String,
    name: Option<String>,
}

impl PoolArgs {
    fn lower(&self, kind: PoolKind, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        positive2(self.pool_size, ctx.name, "pool_size")?;
        let strides = self.strides.unwrap_or(self.pool_size);
        positive2(strides, ctx.name, "strides")?;
        let padding = Padding::parse(&self.padding, ctx.name)?;
        ctx.expect_inputs(inputs, 1)?;
        let [_, h, w, _] = ctx.expect_image(inputs[0])?;
        let pad = padding.pad2d(h, w, self.pool_size, strides, Size2(1, 1));
        let geom = PoolGeometry {
            kind,
            size: (self.pool_size.0, self.pool_size.1),
            stride: (strides.0, strides.1),
            pad,
        };
        ctx.push(Op::Pool2d(geom), &[inputs[0]])
    }
}

macro_rules! pool_layer {
    ($t:ident, $class:literal, $prefix:literal, $kind:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone)]
        pub struct $t {
            args: PoolArgs,
        }

        impl $t {
            /// A pooling layer with window `pool_size` (strides default to the window).
            pub fn new(pool_size: impl Into<Size2>) -> Self {
                $t {
                    args: PoolArgs {
                        pool_size: pool_size.into(),
                        strides: None,
                        padding: "valid".into(),
                        name: None,
                    },
                }
            }
            /// Sets `strides` (default: `pool_size`).
            pub fn strides(mut self, s: impl Into<Size2>) -> Self {
                self.args.strides = Some(s.into());
                self
            }
            /// Sets `padding`: `"valid"` (default) or `"same"`.
            pub fn padding(mut self, p: &str) -> Self {
                self.args.padding = p.to_string();
                self
            }
            /// Sets the layer's name.
            pub fn name(mut self, name: impl Into<String>) -> Self {
                self.args.name = Some(name.into());
                self
            }
        }

        impl Layer for $t {
            fn class_name(&self) -> &'static str {
                $class
            }
            fn default_prefix(&self) -> &'static str {
                $prefix
            }
            fn name(&self) -> Option<&str> {
                self.args.name.as_deref()
            }
            fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
                self.args.lower($kind, ctx, inputs)
            }
        }
    };
}

pool_layer!(
    MaxPooling2D,
    "MaxPooling2D",
    "max_pooling2d",
    PoolKind::Max,
    "Keras `MaxPooling2D(pool_size, strides, padding)`."
);
pool_layer!(
    AveragePooling2D,
    "AveragePooling2D",
    "average_pooling2d",
    PoolKind::Avg,
    "Keras `AveragePooling2D(pool_size, strides, padding)`; padded positions are not counted."
);

/// Keras `GlobalAveragePooling2D()`: `(batch, h, w, c)` to `(batch, c)`.
#[derive(Debug, Clone, Default)]
pub struct GlobalAveragePooling2D {
    name: Option<String>,
}

impl GlobalAveragePooling2D {
    /// A global average pooling layer.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the layer's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Layer for GlobalAveragePooling2D {
    fn class_name(&self) -> &'static str {
        "GlobalAveragePooling2D"
    }
    fn default_prefix(&self) -> &'static str {
        "global_average_pooling2d"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        ctx.expect_inputs(inputs, 1)?;
        ctx.expect_image(inputs[0])?;
        ctx.push(
            Op::Reduce {
                op: ReduceOp::Mean,
                axes: vec![1, 2],
                keep_dims: false,
            },
            &[inputs[0]],
        )
    }
}
