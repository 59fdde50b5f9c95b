//! The parameter store: every parameter's value, in creation order, by Keras name.

use crate::error::{GraphError, Result};
use crate::init::{Initializer, Rng};
use crate::ir::fmt_shape;
use crate::tensor::Tensor;

/// One named parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// `<layer>/<variable>`, e.g. `conv2d/kernel`.
    pub name: String,
    /// Its current value.
    pub value: Tensor,
    /// Whether an optimizer updates it.
    pub trainable: bool,
}

/// Parameters of a model, in creation order. Values are drawn on first use from the model seed
/// and the parameter's name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParamStore {
    seed: u64,
    params: Vec<Param>,
}

impl ParamStore {
    /// An empty store whose initializers draw from `seed`.
    pub fn new(seed: u64) -> Self {
        ParamStore {
            seed,
            params: Vec::new(),
        }
    }

    /// Creates `name` with `init` unless it exists; if it exists, checks its shape.
    pub fn ensure(
        &mut self,
        name: &str,
        shape: &[usize],
        init: Initializer,
        trainable: bool,
        layer: &str,
    ) -> Result<()> {
        if let Some(p) = self.get(name) {
            if p.value.shape != shape {
                return Err(GraphError::shape(
                    layer,
                    format!(
                        "parameter {name} has shape {}, the layer needs {}",
                        fmt_shape(&p.value.shape),
                        fmt_shape(shape)
                    ),
                ));
            }
            return Ok(());
        }
        crate::ir::check_dims(layer, shape)?;
        let mut rng = Rng::for_name(self.seed, name);
        let value = init.sample(shape, &mut rng);
        self.params.push(Param {
            name: name.to_string(),
            value,
            trainable,
        });
        Ok(())
    }

    /// The parameter named `name`.
    pub fn get(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Replaces the value of `name`; the shape must match.
    pub fn set(&mut self, name: &str, value: Tensor) -> Result<()> {
        let p = self
            .params
            .iter_mut()
            .find(|p| p.name == name)
            .ok_or_else(|| GraphError::Value {
                what: name.to_string(),
                message: "no parameter of this name".into(),
            })?;
        if p.value.shape != value.shape {
            return Err(GraphError::Value {
                what: name.to_string(),
                message: format!(
                    "expected shape {}, got {}",
                    fmt_shape(&p.value.shape),
                    fmt_shape(&value.shape)
                ),
            });
        }
        p.value = value;
        Ok(())
    }

    /// Marks `name` trainable or not (nothing happens if there is no such parameter).
    pub(crate) fn set_trainable(&mut self, name: &str, trainable: bool) {
        if let Some(p) = self.params.iter_mut().find(|p| p.name == name) {
            p.trainable = trainable;
        }
    }

    /// All parameters in creation order.
    pub fn iter(&self) -> impl Iterator<Item = &Param> {
        self.params.iter()
    }

    /// Number of parameters (tensors).
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// Total scalar count, optionally only trainable or only non-trainable ones.
    pub fn count(&self, trainable: Option<bool>) -> usize {
        self.params
            .iter()
            .filter(|p| trainable.is_none_or(|t| p.trainable == t))
            .map(|p| p.value.numel())
            .sum()
    }
}
