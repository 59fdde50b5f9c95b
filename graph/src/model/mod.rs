//! Models: a graph of layers (built with [`Sequential`] or [`Functional`]) and its parameters.
//! A model lowers to an IR [`Graph`] for any batch size.

mod functional;
mod params;
mod sequential;
mod summary;
#[cfg(test)]
mod tests;

pub use functional::{Functional, SymbolicTensor};
pub use params::{Param, ParamStore};
pub use sequential::Sequential;

use crate::error::{GraphError, Result};
use crate::ir::{Graph, NodeId, TensorType};
use crate::layers::{Layer, LayerCtx};
use crate::tensor::Tensor;
use std::collections::HashMap;

/// One layer of a model with its resolved name and the layers it reads.
#[derive(Debug)]
pub struct LayerNode {
    /// The unique name (`conv2d`, `conv2d_1`, or the user's).
    pub name: String,
    /// The layer.
    pub layer: Box<dyn Layer>,
    /// Indices (into [`Model::layers`]) of the layers whose outputs it reads.
    pub inputs: Vec<usize>,
    /// Whether the layer trains (Keras's `layer.trainable`); set with [`Model::set_trainable`].
    pub trainable: bool,
}

/// Per-layer facts found when the model was built (shown by `summary()`).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerInfo {
    /// Output shape without the batch axis.
    pub output_shape: Vec<usize>,
    /// Number of scalar parameters the layer owns.
    pub params: usize,
}

/// A built model: its layers in topological order, its inputs and outputs, and its parameters.
#[derive(Debug)]
pub struct Model {
    name: String,
    layers: Vec<LayerNode>,
    inputs: Vec<usize>,
    outputs: Vec<usize>,
    info: Vec<LayerInfo>,
    sequential: bool,
    /// Parameter values by Keras name.
    pub params: ParamStore,
}

impl Model {
    /// Builds a model, checking every layer (shapes and arguments) and drawing initial parameter
    /// values from `seed`.
    pub(crate) fn build(
        name: &str,
        layers: Vec<LayerNode>,
        inputs: Vec<usize>,
        outputs: Vec<usize>,
        seed: u64,
        sequential: bool,
    ) -> Result<Model> {
        let err = |m: &str| GraphError::Model {
            model: name.to_string(),
            message: m.to_string(),
        };
        if inputs.is_empty() {
            return Err(err("the model has no Input layer"));
        }
        if outputs.is_empty() {
            return Err(err("the model has no outputs"));
        }
        let mut seen = HashMap::new();
        for (i, l) in layers.iter().enumerate() {
            if seen.insert(l.name.clone(), i).is_some() {
                return Err(err(&format!(
                    "two layers are named '{}'; layer names must be unique",
                    l.name
                )));
            }
            if l.inputs.iter().any(|&k| k >= i) {
                return Err(err(&format!("layer '{}' reads a layer defined after it", l.name)));
            }
        }
        let mut model = Model {
            name: name.to_string(),
            layers,
            inputs,
            outputs,
            info: Vec::new(),
            sequential,
            params: ParamStore::new(seed),
        };
        let mut params = ParamStore::new(seed);
        let (graph, layer_out) = model.lower(&mut params, 1, false)?;
        model.params = params;
        let mut info = Vec::new();
        for (i, l) in model.layers.iter().enumerate() {
            let shape = graph.shape(layer_out[i])[1..].to_vec();
            let prefix = format!("{}/", l.name);
            let params = model
                .params
                .iter()
                .filter(|p| p.name.starts_with(&prefix))
                .map(|p| p.value.numel())
                .sum();
            info.push(LayerInfo {
                output_shape: shape,
                params,
            });
        }
        model.info = info;
        Ok(model)
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The layers in topological order.
    pub fn layers(&self) -> &[LayerNode] {
        &self.layers
    }

    /// What the build found about each layer (same order as [`Model::layers`]).
    pub fn layer_info(&self) -> &[LayerInfo] {
        &self.info
    }

    /// Shapes of one sample of each input (without the batch axis).
    pub fn input_shapes(&self) -> Vec<Vec<usize>> {
        self.inputs.iter().map(|&i| self.info[i].output_shape.clone()).collect()
    }

    /// Shapes of one sample of each output (without the batch axis).
    pub fn output_shapes(&self) -> Vec<Vec<usize>> {
        self.outputs
            .iter()
            .map(|&i| self.info[i].output_shape.clone())
            .collect()
    }

    /// The input layers' names, in feeding order.
    pub fn input_names(&self) -> Vec<String> {
        self.inputs.iter().map(|&i| self.layers[i].name.clone()).collect()
    }

    /// The output layers' names, in output order (Keras keys multi-output data by them).
    pub fn output_names(&self) -> Vec<String> {
        self.outputs.iter().map(|&i| self.layers[i].name.clone()).collect()
    }

    /// The index of the layer named `name`, or an error listing the model's layers.
    fn layer_index(&self, name: &str) -> Result<usize> {
        self.layers
            .iter()
            .position(|l| l.name == name)
            .ok_or_else(|| GraphError::Model {
                model: self.name.clone(),
                message: format!(
                    "no layer named '{name}'; the layers are {}",
                    self.layers
                        .iter()
                        .map(|l| l.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }

    /// Freezes (`false`) or unfreezes (`true`) the layer named `name`, as Keras's
    /// `layer.trainable = ...`: a frozen layer's weights are not trained (they get no gradient
    /// and no optimizer state) and a frozen BatchNormalization runs in inference mode, also in
    /// training, without updating its moving statistics. Dropout still drops. Takes effect in
    /// the graphs and summaries made afterwards (compile again to train with it).
    pub fn set_trainable(&mut self, name: &str, trainable: bool) -> Result<()> {
        let i = self.layer_index(name)?;
        self.layers[i].trainable = trainable;
        self.refresh_trainable()
    }

    /// Freezes or unfreezes every layer, as Keras's `model.trainable = ...`.
    pub fn set_all_trainable(&mut self, trainable: bool) -> Result<()> {
        self.layers.iter_mut().for_each(|l| l.trainable = trainable);
        self.refresh_trainable()
    }

    /// Whether the layer named `name` is trainable (not frozen).
    pub fn is_trainable(&self, name: &str) -> Result<bool> {
        Ok(self.layers[self.layer_index(name)?].trainable)
    }

    /// Re-derives every parameter's trainable flag from the layers' (lowering records it).
    fn refresh_trainable(&mut self) -> Result<()> {
        let mut params = std::mem::take(&mut self.params);
        let lowered = self.lower(&mut params, 1, false);
        self.params = params;
        lowered.map(|_| ())
    }

    /// Whether the model was built as `Sequential` (its summary hides the input layer).
    pub fn is_sequential(&self) -> bool {
        self.sequential
    }

    /// The inference graph of the model for batch size `batch`.
    pub fn graph(&self, batch: usize) -> Result<Graph> {
        Ok(self.lower(&mut self.params.clone(), batch, false)?.0)
    }

    /// The graph in training mode (Dropout drops, BatchNormalization uses batch statistics).
    pub fn training_graph(&self, batch: usize) -> Result<Graph> {
        Ok(self.lower(&mut self.params.clone(), batch, true)?.0)
    }

    /// Lowers the layers at `batch`; also returns each layer's output node.
    /// Parameters are created in `params` on first use (at build) and shape-checked afterwards.
    fn lower(&self, params: &mut ParamStore, batch: usize, training: bool) -> Result<(Graph, Vec<NodeId>)> {
        if batch == 0 {
            return Err(GraphError::Model {
                model: self.name.clone(),
                message: "batch size must be positive".into(),
            });
        }
        let mut graph = Graph::new();
        let mut out: Vec<NodeId> = Vec::with_capacity(self.layers.len());
        for l in &self.layers {
            let id = if let Some(shape) = l.layer.input_shape() {
                let mut full = vec![batch];
                full.extend_from_slice(shape);
                graph.input(&l.name, TensorType::f32(full))?
            } else {
                let ins: Vec<NodeId> = l.inputs.iter().map(|&i| out[i]).collect();
                let mut ctx = LayerCtx {
                    graph: &mut graph,
                    name: &l.name,
                    params,
                    training,
                    trainable: l.trainable,
                };
                l.layer.lower(&mut ctx, &ins)?
            };
            out.push(id);
        }
        graph.outputs = self.outputs.iter().map(|&i| out[i]).collect();
        Ok((graph, out))
    }

    /// Sets a parameter's value by Keras name (`dense/kernel`); the shape must match.
    pub fn set_weight(&mut self, name: &str, value: Tensor) -> Result<()> {
        self.params.set(name, value)
    }
}

/// `prefix` if free, else `prefix_1`, `prefix_2`, ... (Keras's automatic names); marks it taken.
fn unique_name(prefix: &str, taken: &mut std::collections::HashSet<String>) -> String {
    let mut name = prefix.to_string();
    let mut i = 0;
    while taken.contains(&name) {
        i += 1;
        name = format!("{prefix}_{i}");
    }
    taken.insert(name.clone());
    name
}
