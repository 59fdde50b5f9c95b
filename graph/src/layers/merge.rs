//! Merge layers: `Add`, `Multiply`, `Subtract`, `Maximum`, `Average` and `Concatenate`.

use super::{Layer, LayerCtx};
use crate::error::{GraphError, Result};
use crate::ir::{BinaryOp, NodeId, Op, UnaryOp, fmt_shape};

/// Checks that a merge layer got at least `min` inputs of one shape.
fn same_shapes(ctx: &LayerCtx<'_>, inputs: &[NodeId], class: &str, min: usize, max: usize) -> Result<()> {
    if inputs.len() < min || inputs.len() > max {
        let want = if min == max {
            format!("exactly {min}")
        } else {
            format!("at least {min}")
        };
        return Err(GraphError::shape(
            ctx.name,
            format!("{class} needs {want} inputs, got {}", inputs.len()),
        ));
    }
    let first = ctx.shape(inputs[0]);
    for &i in &inputs[1..] {
        let s = ctx.shape(i);
        if s != first {
            return Err(GraphError::shape(
                ctx.name,
                format!(
                    "{class} needs inputs of one shape, got {} and {}",
                    fmt_shape(&first),
                    fmt_shape(&s)
                ),
            ));
        }
    }
    Ok(())
}

/// Folds the inputs with `op`, left to right.
fn fold(ctx: &mut LayerCtx<'_>, inputs: &[NodeId], op: BinaryOp) -> Result<NodeId> {
    let mut acc = inputs[0];
    for &i in &inputs[1..] {
        acc = ctx.push(Op::Binary(op), &[acc, i])?;
    }
    Ok(acc)
}

/// Defines an elementwise merge layer: the struct, `new`, `name` and the `Layer` impl around
/// `$lower(ctx, inputs)` (called after the shape check).
macro_rules! merge_layer {
    ($(#[$doc:meta])* $t:ident, $class:literal, $prefix:literal, $min:expr, $max:expr, $lower:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default)]
        pub struct $t {
            name: Option<String>,
        }

        impl $t {
            #[doc = concat!("A `", $class, "` layer.")]
            pub fn new() -> Self {
                Self::default()
            }
            /// Sets the layer's name.
            pub fn name(mut self, name: impl Into<String>) -> Self {
                self.name = Some(name.into());
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
                self.name.as_deref()
            }
            fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
                same_shapes(ctx, inputs, $class, $min, $max)?;
                let f: fn(&mut LayerCtx<'_>, &[NodeId]) -> Result<NodeId> = $lower;
                f(ctx, inputs)
            }
        }
    };
}

merge_layer!(
    /// Keras `Add()`: the elementwise sum of two or more inputs of the same shape.
    Add, "Add", "add", 2, usize::MAX, |ctx, ins| fold(ctx, ins, BinaryOp::Add)
);
merge_layer!(
    /// Keras `Multiply()`: the elementwise product of two or more inputs of the same shape.
    Multiply, "Multiply", "multiply", 2, usize::MAX, |ctx, ins| fold(ctx, ins, BinaryOp::Mul)
);
merge_layer!(
    /// Keras `Subtract()`: the first of exactly two inputs minus the second.
    Subtract, "Subtract", "subtract", 2, 2, |ctx, ins| fold(ctx, ins, BinaryOp::Sub)
);
merge_layer!(
    /// Keras `Maximum()`: the elementwise maximum of two or more inputs of the same shape.
    Maximum, "Maximum", "maximum", 2, usize::MAX, |ctx, ins| fold(ctx, ins, BinaryOp::Max)
);
merge_layer!(
    /// Keras `Average()`: the elementwise mean of two or more inputs of the same shape.
    Average, "Average", "average", 2, usize::MAX, |ctx, ins| {
        let sum = fold(ctx, ins, BinaryOp::Add)?;
        ctx.push(Op::Unary(UnaryOp::Scale(1.0 / ins.len() as f32)), &[sum])
    }
);

/// Keras `Concatenate(axis=-1)`: joins inputs along an axis (negative counts from the end).
#[derive(Debug, Clone)]
pub struct Concatenate {
    axis: i64,
    name: Option<String>,
}

impl Default for Concatenate {
    fn default() -> Self {
        Concatenate { axis: -1, name: None }
    }
}

impl Concatenate {
    /// A concatenation along the last axis.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `axis` (default -1). Axis 0 (the batch) is not allowed.
    pub fn axis(mut self, axis: i64) -> Self {
        self.axis = axis;
        self
    }
    /// Sets the layer's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Layer for Concatenate {
    fn class_name(&self) -> &'static str {
        "Concatenate"
    }
    fn default_prefix(&self) -> &'static str {
        "concatenate"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        if inputs.len() < 2 {
            return Err(GraphError::shape(
                ctx.name,
                format!("Concatenate needs at least 2 inputs, got {}", inputs.len()),
            ));
        }
        let rank = ctx.shape(inputs[0]).len() as i64;
        let axis = if self.axis < 0 { self.axis + rank } else { self.axis };
        if axis <= 0 || axis >= rank {
            return Err(GraphError::arg(
                ctx.name,
                "axis",
                format!(
                    "axis {} is out of range for rank-{rank} inputs (the batch axis 0 cannot be joined)",
                    self.axis
                ),
            ));
        }
        ctx.push(Op::Concat { axis: axis as usize }, inputs)
    }
}
