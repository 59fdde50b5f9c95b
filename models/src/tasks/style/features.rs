//! The loss network: the random normalised filters of the zoo (the default), the same four
//! layers trained as a classifier ([`super::feature_training`], `--feature-weights W` alone),
//! or any Keras feature network a user hands over (`--features M.json` with weights and named
//! layers), rebuilt for each image size with the named layers as its outputs.

use crate::error::{DataError, Result};
use crate::zoo::style::{self as zoo, FeatureLayers};
use fovea_graph::Model;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A Keras feature network: its config, weights and the layers the losses read.
#[derive(Debug, Clone)]
pub struct KerasFeatures {
    /// The model config file (`model.to_json()`), for errors.
    pub path: PathBuf,
    /// The parsed config.
    config: Value,
    /// The weights (safetensors, Keras names).
    pub weights: PathBuf,
    /// The layers for content and style.
    pub layers: FeatureLayers,
}

/// What measures content and style.
#[derive(Debug, Clone)]
pub enum LossNetwork {
    /// The zoo's random normalised filters (no download), from a seed.
    Random {
        /// The filters' seed.
        seed: u64,
        /// The layers used.
        layers: FeatureLayers,
    },
    /// The random network's layers with trained weights (`fovea style features`).
    Trained {
        /// The weights (safetensors: `conv1..4/kernel` and `/bias`).
        weights: PathBuf,
        /// The layers used.
        layers: FeatureLayers,
    },
    /// A Keras feature network.
    Keras(Box<KerasFeatures>),
}

impl Default for LossNetwork {
    fn default() -> Self {
        LossNetwork::Random {
            seed: 1,
            layers: zoo::random_feature_layers(),
        }
    }
}

impl LossNetwork {
    /// The zoo's loss network with the trained weights in `weights` (as
    /// [`super::feature_training::save`] writes them), checked now so a wrong file fails before
    /// any work.
    pub fn trained(weights: &Path) -> Result<Self> {
        let net = LossNetwork::Trained {
            weights: weights.to_path_buf(),
            layers: zoo::random_feature_layers(),
        };
        net.build(zoo::MIN_FEATURE_SIDE, zoo::MIN_FEATURE_SIDE)?;
        Ok(net)
    }

    /// Reads a Keras feature network (`model.to_json()` of a Functional model, weights in
    /// safetensors) and checks now that it has the named layers, so a bad file or name fails
    /// before any work.
    pub fn keras(path: &Path, weights: &Path, layers: FeatureLayers) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        let config: Value = serde_json::from_str(&text)
            .map_err(|e| DataError::format(path, format!("not a Keras model config: {e}")))?;
        if !weights.is_file() {
            return Err(DataError::format(weights, "the weights file does not exist"));
        }
        let k = KerasFeatures {
            path: path.to_path_buf(),
            config,
            weights: weights.to_path_buf(),
            layers,
        };
        let names = k.layer_names()?;
        for l in k.layers.all() {
            if !names.contains(&l) {
                return Err(DataError::format(
                    path,
                    format!(
                        "the feature network has no layer '{l}'; its layers are {}",
                        names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        Ok(LossNetwork::Keras(Box::new(k)))
    }

    /// The layers the losses read.
    pub fn layers(&self) -> &FeatureLayers {
        match self {
            LossNetwork::Random { layers, .. } | LossNetwork::Trained { layers, .. } => layers,
            LossNetwork::Keras(k) => &k.layers,
        }
    }

    /// The network for `height x width` RGB images in `[0, 1]` with the layers of
    /// [`LossNetwork::layers`] as outputs (content first), every weight frozen.
    pub fn build(&self, height: usize, width: usize) -> Result<Model> {
        match self {
            LossNetwork::Random { seed, layers } => zoo::random_loss_network(height, width, layers, *seed),
            LossNetwork::Trained { weights, layers } => {
                let mut m = zoo::random_loss_network(height, width, layers, 1)?;
                fovea_engine::checkpoint::load_params(weights, &mut m.params)?;
                m.set_all_trainable(false)?;
                Ok(m)
            }
            LossNetwork::Keras(k) => k.build(height, width),
        }
    }

    /// The name of the network's input.
    pub fn input_name(&self) -> Result<String> {
        match self {
            LossNetwork::Random { .. } | LossNetwork::Trained { .. } => Ok(zoo::IMAGE.to_string()),
            LossNetwork::Keras(k) => {
                let m = k.build(zoo::MIN_FEATURE_SIDE * 2, zoo::MIN_FEATURE_SIDE * 2)?;
                Ok(m.input_names().remove(0))
            }
        }
    }
}

impl KerasFeatures {
    fn inner(&self) -> Result<&serde_json::Map<String, Value>> {
        let top = self
            .config
            .as_object()
            .ok_or_else(|| DataError::format(&self.path, "not a Keras model config: expected a JSON object"))?;
        match top.get("config").and_then(Value::as_object) {
            Some(c) => Ok(c),
            None => Ok(top),
        }
    }

    fn layer_names(&self) -> Result<Vec<String>> {
        let layers = self
            .inner()?
            .get("layers")
            .and_then(Value::as_array)
            .ok_or_else(|| DataError::format(&self.path, "not a Keras model config: no `layers` list"))?;
        Ok(layers
            .iter()
            .filter_map(|l| {
                l.get("config")
                    .and_then(|c| c.get("name"))
                    .or_else(|| l.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect())
    }

    /// The config with the input resized and the named layers as outputs.
    fn build(&self, height: usize, width: usize) -> Result<Model> {
        let mut cfg = self.config.clone();
        let class = cfg.get("class_name").and_then(Value::as_str).unwrap_or("Functional");
        if class == "Sequential" {
            return Err(DataError::format(
                &self.path,
                "--features needs a Functional model (layers read by name); this is a Sequential one: \
                 export it with keras.Model(inputs, outputs) as tools/keras/export.py does for VGG",
            ));
        }
        let inner = match cfg.get_mut("config") {
            Some(c) => c,
            None => &mut cfg,
        };
        let obj = inner
            .as_object_mut()
            .ok_or_else(|| DataError::format(&self.path, "not a Keras model config"))?;
        if let Some(layers) = obj.get_mut("layers").and_then(Value::as_array_mut) {
            for l in layers.iter_mut() {
                if l.get("class_name").and_then(Value::as_str) == Some("InputLayer")
                    && let Some(c) = l.get_mut("config").and_then(Value::as_object_mut)
                {
                    let shape = Value::from(vec![Value::Null, height.into(), width.into(), 3.into()]);
                    c.remove("batch_input_shape");
                    c.insert("batch_shape".into(), shape);
                }
            }
        }
        let outputs: Vec<Value> = self
            .layers
            .all()
            .into_iter()
            .map(|n| Value::from(vec![Value::from(n), 0.into(), 0.into()]))
            .collect();
        obj.insert("output_layers".into(), Value::from(outputs));
        let text = serde_json::to_string(&cfg).map_err(|e| DataError::format(&self.path, e.to_string()))?;
        let mut model = fovea_graph::keras::load_config(&text, &self.path.display().to_string())?;
        fovea_engine::checkpoint::load_params(&self.weights, &mut model.params)?;
        model.set_all_trainable(false)?;
        Ok(model)
    }
}
