//! Keras model configs: the JSON of `model.to_json()` (Keras 3, and tf.keras 2.x where it
//! differs) becomes a Fovea [`Model`] with the same layer names, so a weights file whose
//! tensors are named `<layer>/<variable>` (see `tools/keras/export.py`) loads into it with
//! `fovea_engine::checkpoint::load_params`.
//!
//! Read: `Sequential` and `Functional` (tf.keras 2: `Model`) models built from `InputLayer`
//! and the classes in [`SUPPORTED`], with their arguments. Initializers are ignored (the
//! weights come from the weights file); `trainable: false` freezes a layer (and on the model,
//! every layer), as [`Model::set_trainable`] does. Any other argument Fovea does not
//! implement — `data_format="channels_first"`, a regularizer or constraint, a
//! BatchNormalization axis other than the last, `output_padding`,
//! a non-float32 dtype, an activation Fovea lacks, an unknown argument with a non-null value —
//! is an error naming the layer, its class and the argument. So are shared layers (a layer
//! called twice), nested models and call keyword arguments such as `training=...`.
//!
//! ```
//! let json = r#"{"class_name": "Sequential", "config": {"name": "tiny", "layers": [
//!   {"class_name": "InputLayer", "config": {"batch_shape": [null, 4], "name": "x"}},
//!   {"class_name": "Dense", "config": {"name": "dense", "units": 2, "activation": "relu"}}]}}"#;
//! let model = fovea_graph::keras::load_config(json, "tiny.json").unwrap();
//! assert_eq!(model.output_shapes(), vec![vec![2]]);
//! assert!(model.params.get("dense/kernel").is_some());
//! ```

mod activation_layers;
mod args;
mod layers;
mod merge_layers;
#[cfg(test)]
mod tests;

pub use layers::SUPPORTED;

use crate::error::{GraphError, Result};
use crate::layers::Input;
use crate::model::{Functional, Model, Sequential, SymbolicTensor};
use args::{Args, as_usize};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Reads a Keras model config (`model.to_json()`, or the `config.json` of a `.keras` file);
/// `source` names it in errors (usually the file's path). The model's weights are Fovea's
/// seeded initial values until a weights file is loaded into `model.params`.
pub fn load_config(json: &str, source: &str) -> Result<Model> {
    let bad = |m: String| GraphError::Value {
        what: source.to_string(),
        message: m,
    };
    let top: Value =
        serde_json::from_str(json).map_err(|e| bad(format!("not a Keras model config: not valid JSON ({e})")))?;
    let obj = top
        .as_object()
        .ok_or_else(|| bad("not a Keras model config: expected a JSON object".into()))?;
    // `model.to_json()` wraps the config as {"class_name", "config"}; `model.get_config()` is
    // the bare config.
    let (class, cfg) = match (obj.get("class_name"), obj.get("config")) {
        (Some(Value::String(c)), Some(Value::Object(cfg))) => (c.as_str(), cfg),
        (None, _) if obj.get("layers").is_some_and(Value::is_array) => {
            let c = if obj.contains_key("input_layers") {
                "Functional"
            } else {
                "Sequential"
            };
            (c, obj)
        }
        _ => {
            return Err(bad(
                "not a Keras model config: expected {\"class_name\": \"Sequential\" | \"Functional\", \"config\": {...}} \
                 as written by model.to_json()"
                    .into(),
            ));
        }
    };
    let layers = cfg.get("layers").and_then(Value::as_array).ok_or_else(|| {
        bad(format!(
            "not a Keras model config: the {class} config has no `layers` list"
        ))
    })?;
    let name = cfg.get("name").and_then(Value::as_str).unwrap_or("model");
    match class {
        "Sequential" => sequential(name, layers, cfg, obj, source),
        "Functional" | "Model" => functional(name, layers, cfg, source),
        _ => Err(bad(format!(
            "not a Keras model config: class_name \"{class}\"; expected Sequential, Functional or Model"
        ))),
    }
}

/// One entry of `layers`: class, name and config object.
fn entry<'a>(v: &'a Value, i: usize, source: &str) -> Result<(&'a str, &'a str, &'a Map<String, Value>)> {
    let bad = |m: &str| GraphError::Value {
        what: source.to_string(),
        message: format!("not a Keras model config: layer {i}: {m}"),
    };
    let class = v
        .get("class_name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no `class_name`"))?;
    let cfg = v
        .get("config")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("no `config` object"))?;
    let name = cfg
        .get("name")
        .or_else(|| v.get("name"))
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no `name`"))?;
    Ok((class, name, cfg))
}

/// The per-sample shape of a `[null, d1, d2, ...]` batch shape.
fn sample_shape(v: &Value, layer: &str, argument: &str) -> Result<Vec<usize>> {
    let dims = v
        .as_array()
        .filter(|d| d.len() >= 2)
        .ok_or_else(|| GraphError::arg(layer, argument, format!("expected [batch, d1, ...], got {v}")))?;
    dims[1..]
        .iter()
        .map(|d| {
            as_usize(d).filter(|&n| n > 0).ok_or_else(|| {
                GraphError::arg(
                    layer,
                    argument,
                    format!(
                        "{v}: every dimension but the batch must be a positive integer (Fovea's shapes are static)"
                    ),
                )
            })
        })
        .collect()
}

/// An `InputLayer` config to an [`Input`].
fn input_layer(name: &str, cfg: &Map<String, Value>) -> Result<Input> {
    let mut a = Args::new("InputLayer", name, cfg);
    a.ignore(&["name"]);
    let shape = if let Some(v) = a.get("batch_shape") {
        sample_shape(v, name, "batch_shape")?
    } else if let Some(v) = a.get("batch_input_shape") {
        sample_shape(v, name, "batch_input_shape")?
    } else if let Some(v) = a.get("shape") {
        let mut full = vec![Value::Null];
        full.extend(v.as_array().cloned().unwrap_or_default());
        sample_shape(&Value::Array(full), name, "shape")?
    } else {
        return Err(a.err("batch_shape", "missing: the input's shape is needed"));
    };
    if let Some(d) = a.get("dtype") {
        if d.as_str() != Some("float32") {
            return Err(a.err("dtype", format!("{d} is not supported; Fovea's inputs are float32")));
        }
    }
    for k in ["sparse", "ragged", "optional"] {
        a.must_equal(k, json!(false), "Fovea's inputs are dense tensors")?;
    }
    a.must_be_null("input_tensor", "Fovea's inputs are fed")?;
    a.finish()?;
    Ok(Input::new(&shape).name(name))
}

fn sequential(
    name: &str,
    layers: &[Value],
    cfg: &Map<String, Value>,
    top: &Map<String, Value>,
    source: &str,
) -> Result<Model> {
    let mut model = Sequential::named(name);
    let mut frozen = Vec::new();
    let mut rest = layers.iter().enumerate();
    match layers.first().map(|l| entry(l, 0, source)).transpose()? {
        Some(("InputLayer", lname, lcfg)) => {
            model.push(input_layer(lname, lcfg)?);
            rest.next();
        }
        first => {
            // tf.keras 2: `batch_input_shape` on the first layer; Keras 3: the model's
            // `build_input_shape`.
            let from_first = first.and_then(|(_, n, c)| {
                ["batch_input_shape", "batch_shape"]
                    .iter()
                    .find_map(|k| c.get(*k).filter(|v| !v.is_null()).map(|v| (n, *k, v)))
            });
            let build = cfg
                .get("build_input_shape")
                .or_else(|| top.get("build_config").and_then(|b| b.get("input_shape")))
                .filter(|v| !v.is_null());
            let (input_name, shape) = match (from_first, build) {
                (Some((n, k, v)), _) => (format!("{n}_input"), sample_shape(v, n, k)?),
                (None, Some(v)) => ("input_layer".to_string(), sample_shape(v, name, "build_input_shape")?),
                (None, None) => {
                    return Err(GraphError::Model {
                        model: name.to_string(),
                        message: format!(
                            "{source}: the Sequential model has no InputLayer and no input shape (build it, or start it with keras.Input)"
                        ),
                    });
                }
            };
            model.push(Input::new(&shape).name(input_name));
        }
    }
    for (i, l) in rest {
        let (class, lname, lcfg) = entry(l, i, source)?;
        if class == "InputLayer" {
            return Err(GraphError::Model {
                model: name.to_string(),
                message: format!("layer {i} ('{lname}') is an InputLayer; only the first layer may be"),
            });
        }
        let layer = layers::layer_from_config(class, lname, lcfg)?;
        if !layer.trainable {
            frozen.push(lname.to_string());
        }
        model.push(layer);
    }
    freeze(model.build(0)?, &frozen, cfg)
}

/// Freezes the layers named in `frozen`, and every layer if the model's config says
/// `trainable: false`.
fn freeze(mut model: Model, frozen: &[String], cfg: &Map<String, Value>) -> Result<Model> {
    match cfg.get("trainable") {
        None | Some(Value::Null) | Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => model.set_all_trainable(false)?,
        Some(v) => {
            return Err(GraphError::Model {
                model: model.name().to_string(),
                message: format!("`trainable` must be true or false, got {v}"),
            });
        }
    }
    for name in frozen {
        model.set_trainable(name, false)?;
    }
    Ok(model)
}

/// A reference to a layer's output: `(layer, node_index, tensor_index)`.
fn history(v: &Value, layer: &str, what: &str) -> Result<String> {
    let h = v.as_array().filter(|h| h.len() >= 3).ok_or_else(|| {
        GraphError::arg(
            layer,
            what,
            format!("expected [layer, node_index, tensor_index], got {v}"),
        )
    })?;
    let src = h[0]
        .as_str()
        .ok_or_else(|| GraphError::arg(layer, what, format!("expected a layer name, got {}", h[0])))?;
    if as_usize(&h[1]) != Some(0) || as_usize(&h[2]) != Some(0) {
        return Err(GraphError::arg(
            layer,
            what,
            format!(
                "{v}: reads call {} / output {} of '{src}'; Fovea supports layers called once with one output",
                h[1], h[2]
            ),
        ));
    }
    Ok(src.to_string())
}

/// The layers a Functional layer reads, from its `inbound_nodes` (Keras 3 `{"args", "kwargs"}`
/// or tf.keras 2 `[[name, node, tensor, kwargs], ...]`).
fn inbound(class: &str, name: &str, v: Option<&Value>) -> Result<Vec<String>> {
    let err = |m: String| GraphError::arg(name, "inbound_nodes", format!("{class}: {m}"));
    let nodes = match v {
        None | Some(Value::Null) => return Ok(vec![]),
        Some(Value::Array(n)) => n,
        Some(v) => return Err(err(format!("expected a list, got {v}"))),
    };
    match nodes.len() {
        0 => return Ok(vec![]),
        1 => {}
        n => {
            return Err(err(format!(
                "the layer is called {n} times; shared layers are not supported"
            )));
        }
    }
    let mut out = Vec::new();
    match &nodes[0] {
        Value::Object(node) => {
            fn walk(v: &Value, out: &mut Vec<Value>) -> bool {
                match v {
                    Value::Array(a) => a.iter().all(|x| walk(x, out)),
                    Value::Object(o) if o.get("class_name").and_then(Value::as_str) == Some("__keras_tensor__") => {
                        out.push(
                            o.get("config")
                                .and_then(|c| c.get("keras_history"))
                                .cloned()
                                .unwrap_or_default(),
                        );
                        true
                    }
                    _ => false,
                }
            }
            let mut hist = Vec::new();
            let args = node.get("args").cloned().unwrap_or(json!([]));
            if !walk(&args, &mut hist) {
                return Err(err(format!(
                    "call arguments other than tensors are not supported: {args}"
                )));
            }
            // Keras 3 records `training` (often `false`) but overrides it with the model's own
            // mode when the model runs (training in fit, inference in predict), as Fovea does.
            if let Some(Value::Object(kw)) = node.get("kwargs") {
                if let Some((k, v)) = kw.iter().find(|(k, v)| !v.is_null() && *k != "training") {
                    return Err(err(format!("call argument {k}={v} is not supported")));
                }
            }
            for h in &hist {
                out.push(history(h, name, "inbound_nodes")?);
            }
        }
        Value::Array(refs) => {
            for r in refs {
                if let Some(kw) = r.as_array().and_then(|r| r.get(3)).and_then(Value::as_object) {
                    if let Some((k, v)) = kw.iter().find(|(_, v)| !v.is_null()) {
                        return Err(err(format!("call argument {k}={v} is not supported")));
                    }
                }
                out.push(history(r, name, "inbound_nodes")?);
            }
        }
        v => return Err(err(format!("unexpected node {v}"))),
    }
    Ok(out)
}

/// `input_layers` / `output_layers`: one reference or a list of them.
fn endpoints(cfg: &Map<String, Value>, key: &str, model: &str) -> Result<Vec<String>> {
    let v = cfg.get(key).cloned().unwrap_or(json!([]));
    let list = match v.as_array() {
        Some(a) if a.first().is_some_and(Value::is_string) => vec![v.clone()],
        Some(a) => a.clone(),
        None => vec![],
    };
    if list.is_empty() {
        return Err(GraphError::Model {
            model: model.to_string(),
            message: format!("the Functional config has no `{key}`"),
        });
    }
    list.iter().map(|r| history(r, model, key)).collect()
}

fn functional(name: &str, layers: &[Value], cfg: &Map<String, Value>, source: &str) -> Result<Model> {
    let model_err = |m: String| GraphError::Model {
        model: name.to_string(),
        message: m,
    };
    let inputs = endpoints(cfg, "input_layers", name)?;
    let outputs = endpoints(cfg, "output_layers", name)?;
    let mut f = Functional::new(name);
    let mut frozen = Vec::new();
    let mut done: HashMap<String, SymbolicTensor> = HashMap::new();
    // Inputs first, in the model's input order.
    let mut pending = Vec::new();
    let mut input_cfgs = HashMap::new();
    for (i, l) in layers.iter().enumerate() {
        let (class, lname, lcfg) = entry(l, i, source)?;
        if class == "InputLayer" {
            input_cfgs.insert(lname.to_string(), lcfg);
        } else {
            pending.push((class, lname, lcfg, inbound(class, lname, l.get("inbound_nodes"))?));
        }
    }
    for n in &inputs {
        let lcfg = input_cfgs
            .remove(n.as_str())
            .ok_or_else(|| model_err(format!("input '{n}' is not an InputLayer of the model")))?;
        done.insert(n.clone(), f.input(input_layer(n, lcfg)?));
    }
    if let Some(n) = input_cfgs.keys().next() {
        return Err(model_err(format!("InputLayer '{n}' is not one of the model's inputs")));
    }
    // Then the layers in an order where every layer's inputs come before it.
    while !pending.is_empty() {
        let before = pending.len();
        let mut i = 0;
        while i < pending.len() {
            let (class, lname, lcfg, srcs) = &pending[i];
            if srcs.iter().all(|s| done.contains_key(s)) {
                let ins: Vec<SymbolicTensor> = srcs.iter().map(|s| done[s]).collect();
                if ins.is_empty() {
                    return Err(model_err(format!("layer '{lname}' ({class}) has no inputs")));
                }
                let layer = layers::layer_from_config(class, lname, lcfg)?;
                if !layer.trainable {
                    frozen.push(lname.to_string());
                }
                done.insert(lname.to_string(), f.call(layer, &ins));
                pending.remove(i);
            } else {
                i += 1;
            }
        }
        if pending.len() == before {
            let (_, lname, _, srcs) = &pending[0];
            let missing = srcs
                .iter()
                .find(|s| !done.contains_key(*s))
                .cloned()
                .unwrap_or_default();
            return Err(model_err(format!(
                "layer '{lname}' reads '{missing}', which is not a layer of the model (or a cycle)"
            )));
        }
    }
    let outs = outputs
        .iter()
        .map(|o| {
            done.get(o)
                .copied()
                .ok_or_else(|| model_err(format!("output '{o}' is not a layer of the model")))
        })
        .collect::<Result<Vec<_>>>()?;
    freeze(f.build(&outs, 0)?, &frozen, cfg)
}
