//! Merge layers: `Add` and `Concatenate`.

use super::{Layer, LayerCtx};
use crate::error::{GraphError, Result};
use crate::ir::{BinaryOp, NodeId, Op, fmt_shape};

/// Keras `Add()`: the elementwise sum of two or more inputs of the same shape.
#[derive(Debug, Clone, Default)]
pub struct Add {
    name: Option<String>,
}

impl Add {
    /// An add layer.
    pub fn new() -> Self {
        Add::default()
    }
    /// Sets the layer's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Layer for Add {
    fn class_name(&self) -> &'static str {
        "Add"
    }
    fn default_prefix(&self) -> &'static str {
        "add"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        if inputs.len() < 2 {
            return Err(GraphError::shape(
                ctx.name,
                format!("Add needs at least 2 inputs, got {}", inputs.len()),
            ));
        }
        let first = ctx.shape(inputs[0]);
        for &i in &inputs[1..] {
            let s = ctx.shape(i);
            if s != first {
                return Err(GraphError::shape(
                    ctx.name,
                    format!(
                        "Add needs inputs of one shape, got {} and {}",
                        fmt_shape(&first),
                        fmt_shape(&s)
                    ),
                ));
            }
        }
        let mut acc = inputs[0];
        for &i in &inputs[1..] {
            acc = ctx.push(Op::Binary(BinaryOp::Add), &[acc, i])?;
        }
        Ok(acc)
    }
}

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
