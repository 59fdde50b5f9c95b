//! `Functional`: layers wired as a DAG (residual connections, U-Net skips, several inputs).

use super::{LayerNode, Model, unique_name};
use crate::error::{GraphError, Result};
use crate::layers::{Input, Layer};
use std::collections::HashSet;

/// The output of a layer while a functional model is being wired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymbolicTensor(usize);

/// Keras's functional API.
///
/// ```
/// use fovea_graph::layers::{Add, Conv2D, GlobalAveragePooling2D, Input};
/// use fovea_graph::model::Functional;
/// let mut f = Functional::new("resnet_block");
/// let x = f.input(Input::new(&[8, 8, 4]));
/// let y = f.call(Conv2D::new(4, 3).padding("same").activation("relu"), &[x]);
/// let z = f.call(Add::new(), &[x, y]);
/// let out = f.call(GlobalAveragePooling2D::new(), &[z]);
/// let model = f.build(&[out], 0).unwrap();
/// assert_eq!(model.output_shapes(), vec![vec![4]]);
/// ```
#[derive(Debug)]
pub struct Functional {
    name: String,
    layers: Vec<LayerNode>,
    inputs: Vec<usize>,
    taken: HashSet<String>,
    bad_reference: Option<String>,
}

impl Functional {
    /// An empty functional model.
    pub fn new(name: &str) -> Self {
        Functional {
            name: name.to_string(),
            layers: Vec::new(),
            inputs: Vec::new(),
            taken: HashSet::new(),
            bad_reference: None,
        }
    }

    fn push(&mut self, layer: Box<dyn Layer>, inputs: Vec<usize>) -> SymbolicTensor {
        let name = match layer.name() {
            Some(n) => n.to_string(),
            None => unique_name(layer.default_prefix(), &mut self.taken),
        };
        self.taken.insert(name.clone());
        self.layers.push(LayerNode {
            name,
            layer,
            inputs,
            trainable: true,
        });
        SymbolicTensor(self.layers.len() - 1)
    }

    /// Adds a model input.
    pub fn input(&mut self, input: Input) -> SymbolicTensor {
        let t = self.push(Box::new(input), vec![]);
        self.inputs.push(t.0);
        t
    }

    /// Applies `layer` to `inputs`. Errors (shapes, arguments) are reported by [`Functional::build`].
    pub fn call(&mut self, layer: impl Layer + 'static, inputs: &[SymbolicTensor]) -> SymbolicTensor {
        if layer.input_shape().is_some() && self.bad_reference.is_none() {
            self.bad_reference = Some("Input layers are added with Functional::input, not call".into());
        }
        if inputs.iter().any(|t| t.0 >= self.layers.len()) && self.bad_reference.is_none() {
            self.bad_reference = Some("a tensor from another model was used".into());
        }
        self.push(Box::new(layer), inputs.iter().map(|t| t.0).collect())
    }

    /// Checks every layer and draws the initial parameters from `seed`; `outputs` are returned
    /// by the model in order.
    pub fn build(self, outputs: &[SymbolicTensor], seed: u64) -> Result<Model> {
        if let Some(m) = self.bad_reference {
            return Err(GraphError::Model {
                model: self.name,
                message: m,
            });
        }
        if outputs.iter().any(|t| t.0 >= self.layers.len()) {
            return Err(GraphError::Model {
                model: self.name,
                message: "an output is not a tensor of this model".into(),
            });
        }
        let outs = outputs.iter().map(|t| t.0).collect();
        Model::build(&self.name, self.layers, self.inputs, outs, seed, false)
    }
}
