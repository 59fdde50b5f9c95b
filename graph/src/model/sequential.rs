//! `Sequential`: a stack of layers, each reading the one before.

use super::{LayerNode, Model, unique_name};
use crate::error::{GraphError, Result};
use crate::layers::Layer;
use std::collections::HashSet;

/// Keras `Sequential`: an `Input` followed by layers applied in order.
///
/// ```
/// use fovea_graph::layers::{Conv2D, Dense, Flatten, Input, MaxPooling2D};
/// use fovea_graph::model::Sequential;
/// let model = Sequential::new()
///     .add(Input::new(&[28, 28, 1]))
///     .add(Conv2D::new(8, 3).activation("relu"))
///     .add(MaxPooling2D::new(2))
///     .add(Flatten::new())
///     .add(Dense::new(10))
///     .build(42)
///     .unwrap();
/// assert_eq!(model.params.count(None), 8 * 9 + 8 + 13 * 13 * 8 * 10 + 10);
/// ```
#[derive(Debug)]
pub struct Sequential {
    name: String,
    layers: Vec<Box<dyn Layer>>,
}

impl Default for Sequential {
    fn default() -> Self {
        Sequential {
            name: "sequential".into(),
            layers: Vec::new(),
        }
    }
}

impl Sequential {
    /// An empty model named `sequential`.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty model with a name.
    pub fn named(name: &str) -> Self {
        Sequential {
            name: name.to_string(),
            layers: Vec::new(),
        }
    }

    /// Appends a layer (builder style).
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, layer: impl Layer + 'static) -> Self {
        self.layers.push(Box::new(layer));
        self
    }

    /// Appends a layer in place.
    pub fn push(&mut self, layer: impl Layer + 'static) {
        self.layers.push(Box::new(layer));
    }

    /// Checks every layer and draws the initial parameters from `seed`.
    pub fn build(self, seed: u64) -> Result<Model> {
        let err = |m: String| GraphError::Model {
            model: self.name.clone(),
            message: m,
        };
        match self.layers.first() {
            Some(l) if l.input_shape().is_some() => {}
            _ => return Err(err("the first layer of a Sequential model must be Input(shape)".into())),
        }
        let mut taken: HashSet<String> = self
            .layers
            .iter()
            .filter_map(|l| l.name().map(str::to_string))
            .collect();
        let mut nodes = Vec::with_capacity(self.layers.len());
        for (i, layer) in self.layers.into_iter().enumerate() {
            if i > 0 && layer.input_shape().is_some() {
                return Err(err(format!(
                    "layer {i} is an Input; only the first layer of a Sequential model may be"
                )));
            }
            let name = match layer.name() {
                Some(n) => n.to_string(),
                None => unique_name(layer.default_prefix(), &mut taken),
            };
            let inputs = if i == 0 { vec![] } else { vec![i - 1] };
            nodes.push(LayerNode {
                name,
                layer,
                inputs,
                trainable: true,
            });
        }
        let last = nodes.len() - 1;
        Model::build(&self.name, nodes, vec![0], vec![last], seed, true)
    }
}
