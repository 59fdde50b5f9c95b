//! Host tensors: a shape and its elements in row-major order.

use crate::error::{GraphError, Result};
use crate::ir::{fmt_shape, numel};

/// A dense host tensor of `f32`, row-major (NHWC for images).
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// The dimensions.
    pub shape: Vec<usize>,
    /// `numel(shape)` elements.
    pub data: Vec<f32>,
}

impl Tensor {
    /// A tensor from a shape and its data; errors if the counts differ (`what` names it).
    pub fn new(shape: impl Into<Vec<usize>>, data: Vec<f32>, what: &str) -> Result<Self> {
        let shape = shape.into();
        if numel(&shape) != data.len() {
            return Err(GraphError::Value {
                what: what.to_string(),
                message: format!(
                    "shape {} needs {} elements, got {}",
                    fmt_shape(&shape),
                    numel(&shape),
                    data.len()
                ),
            });
        }
        Ok(Tensor { shape, data })
    }

    /// A tensor of zeros.
    pub fn zeros(shape: impl Into<Vec<usize>>) -> Self {
        let shape = shape.into();
        let n = numel(&shape);
        Tensor {
            shape,
            data: vec![0.0; n],
        }
    }

    /// A tensor filled with `value`.
    pub fn full(shape: impl Into<Vec<usize>>, value: f32) -> Self {
        let shape = shape.into();
        let n = numel(&shape);
        Tensor {
            shape,
            data: vec![value; n],
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The elements widened to `f64` (the reference interpreter's precision).
    pub fn to_f64(&self) -> Vec<f64> {
        self.data.iter().map(|&v| v as f64).collect()
    }
}
