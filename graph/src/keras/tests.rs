//! Keras config reading: the committed fixtures (Keras 3 and tf.keras 2), the format variants,
//! and an error naming layer, class and argument for everything Fovea does not support.

use super::load_config;
use serde_json::{Value, json};
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/keras")
}

/// Tensor names and shapes in a safetensors file's header.
fn safetensors_header(path: &std::path::Path) -> Vec<(String, Vec<usize>)> {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let h: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let mut out: Vec<(String, Vec<usize>)> = h
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .map(|(k, v)| {
            let shape = v["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            (k.clone(), shape)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_fixture_loads_with_the_weight_names_of_its_file() {
    for name in [
        "seq_cnn",
        "func_unet",
        "func_misc",
        "train_seq",
        "train_func",
        "tf2_seq",
        "tf2_func",
        "train_frozen",
        "mobilenet_blocks",
        "new_layers",
        "unet_pixels",
        "two_io",
    ] {
        let dir = fixtures();
        let json = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
        let model = load_config(&json, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(model.name(), name);
        let mut params: Vec<(String, Vec<usize>)> = model
            .params
            .iter()
            .map(|p| (p.name.clone(), p.value.shape.clone()))
            .collect();
        params.sort();
        assert_eq!(
            params,
            safetensors_header(&dir.join(format!("{name}.safetensors"))),
            "{name}"
        );
        let class = serde_json::from_str::<Value>(&json).unwrap()["class_name"].clone();
        assert_eq!(model.is_sequential(), class == "Sequential", "{name}");
    }
}

fn seq(layers: Value) -> String {
    json!({"class_name": "Sequential", "config": {"name": "s", "layers": layers}}).to_string()
}

fn input(shape: Value) -> Value {
    json!({"class_name": "InputLayer", "config": {"batch_shape": shape, "name": "x", "dtype": "float32"}})
}

fn layer(class: &str, cfg: Value) -> Value {
    json!({"class_name": class, "config": cfg})
}

fn err(json: &str) -> String {
    load_config(json, "m.json").unwrap_err().to_string()
}

#[test]
fn sequential_variants_find_their_input() {
    // tf.keras 2: no InputLayer, `batch_input_shape` on the first layer.
    let m = load_config(
        &seq(json!([layer(
            "Dense",
            json!({"name": "d", "units": 3, "batch_input_shape": [null, 5]})
        )])),
        "m",
    )
    .unwrap();
    assert_eq!(
        (m.input_shapes(), m.layers()[0].name.as_str()),
        (vec![vec![5]], "d_input")
    );
    // Keras 3 built without keras.Input: the model's `build_input_shape`.
    let j = json!({"class_name": "Sequential", "config": {"name": "s", "build_input_shape": [null, 4, 4, 1],
        "layers": [layer("Flatten", json!({"name": "f"}))]}});
    let m = load_config(&j.to_string(), "m").unwrap();
    assert_eq!(m.output_shapes(), vec![vec![16]]);
    // The bare `get_config()` object.
    let j = json!({"name": "s", "layers": [input(json!([null, 2])), layer("Dense", json!({"name": "d", "units": 1}))]});
    assert_eq!(load_config(&j.to_string(), "m").unwrap().output_shapes(), vec![vec![1]]);
    let e = err(&seq(json!([layer("Dense", json!({"name": "d", "units": 3}))])));
    assert!(e.contains("no InputLayer and no input shape"), "{e}");
}

#[test]
fn functional_inbound_node_formats() {
    let t =
        |n: &str| json!({"class_name": "__keras_tensor__", "config": {"shape": [null, 3], "keras_history": [n, 0, 0]}});
    let keras3 = json!({"class_name": "Functional", "config": {"name": "f",
        "layers": [
            {"class_name": "InputLayer", "name": "a", "config": {"batch_shape": [null, 3], "name": "a"}, "inbound_nodes": []},
            {"class_name": "Dense", "name": "d", "config": {"name": "d", "units": 3},
             "inbound_nodes": [{"args": [t("a")], "kwargs": {}}]},
            {"class_name": "Add", "name": "s", "config": {"name": "s"},
             "inbound_nodes": [{"args": [[t("d"), t("a")]], "kwargs": {"mask": null}}]}],
        "input_layers": ["a", 0, 0], "output_layers": ["s", 0, 0]}});
    let m = load_config(&keras3.to_string(), "m").unwrap();
    assert_eq!((m.output_shapes(), m.layers().len()), (vec![vec![3]], 3));
    // tf.keras 2: nested lists, layers listed out of order still resolve.
    let tf2 = json!({"class_name": "Model", "config": {"name": "f",
        "layers": [
            {"class_name": "Concatenate", "name": "c", "config": {"name": "c", "axis": -1},
             "inbound_nodes": [[["d", 0, 0, {}], ["a", 0, 0, {}]]]},
            {"class_name": "InputLayer", "name": "a", "config": {"batch_input_shape": [null, 3], "name": "a"}, "inbound_nodes": []},
            {"class_name": "Dense", "name": "d", "config": {"name": "d", "units": 2}, "inbound_nodes": [[["a", 0, 0, {}]]]}],
        "input_layers": [["a", 0, 0]], "output_layers": [["c", 0, 0]]}});
    let m = load_config(&tf2.to_string(), "m").unwrap();
    assert_eq!(m.output_shapes(), vec![vec![5]]);
    // A shared layer, a call keyword, a second output.
    let mut shared = keras3.clone();
    shared["config"]["layers"][1]["inbound_nodes"] = json!([{"args": [t("a")]}, {"args": [t("a")]}]);
    assert!(
        err(&shared.to_string()).contains("shared layers"),
        "{}",
        err(&shared.to_string())
    );
    let mut kw = keras3.clone();
    kw["config"]["layers"][1]["inbound_nodes"][0]["kwargs"] = json!({"training": false});
    load_config(&kw.to_string(), "m").unwrap();
    kw["config"]["layers"][1]["inbound_nodes"][0]["kwargs"] = json!({"scale": 2.0});
    assert!(err(&kw.to_string()).contains("scale=2.0"), "{}", err(&kw.to_string()));
    let mut tf2_kw = tf2.clone();
    tf2_kw["config"]["layers"][2]["inbound_nodes"] = json!([[["a", 0, 0, {"training": false}]]]);
    assert!(
        err(&tf2_kw.to_string()).contains("training=false"),
        "{}",
        err(&tf2_kw.to_string())
    );
    let mut second = keras3.clone();
    second["config"]["output_layers"] = json!(["s", 0, 1]);
    assert!(
        err(&second.to_string()).contains("one output"),
        "{}",
        err(&second.to_string())
    );
    let mut missing = keras3;
    missing["config"]["layers"][2]["inbound_nodes"][0]["args"][0][1] = t("nope");
    assert!(
        err(&missing.to_string()).contains("'nope'"),
        "{}",
        err(&missing.to_string())
    );
}

#[test]
fn not_a_keras_config() {
    for (json, want) in [
        ("{\"class_name\": \"Seq", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ("{\"weights\": {}}", "model.to_json()"),
        (
            r#"{"class_name": "Conv2D", "config": {"layers": []}}"#,
            "class_name \"Conv2D\"",
        ),
        (
            r#"{"class_name": "Sequential", "config": {"name": "s"}}"#,
            "no `layers` list",
        ),
    ] {
        let e = err(json);
        assert!(
            e.starts_with("m.json: not a Keras model config") && e.contains(want),
            "{e}"
        );
    }
}

/// The error for a Sequential model `x -> layer(cfg)` on an input of `shape`.
fn layer_err(shape: Value, class: &str, cfg: Value) -> String {
    err(&seq(json!([input(shape), layer(class, cfg)])))
}

#[test]
fn unsupported_layers_and_arguments_name_layer_class_and_argument() {
    let img = || json!([null, 6, 6, 2]);
    let cases = [
        (
            img(),
            "Conv2D",
            json!({"name": "c", "filters": 2, "kernel_size": 3, "data_format": "channels_first"}),
            "data_format",
        ),
        (
            img(),
            "Conv2D",
            json!({"name": "c", "filters": 2, "kernel_size": 3, "kernel_regularizer": {"class_name": "L2"}}),
            "kernel_regularizer",
        ),
        (
            img(),
            "Conv2D",
            json!({"name": "c", "filters": 2, "kernel_size": 3, "bias_constraint": {"class_name": "NonNeg"}}),
            "bias_constraint",
        ),
        (
            img(),
            "Conv2D",
            json!({"name": "c", "filters": 2, "kernel_size": 3, "padding": "causal"}),
            "padding",
        ),
        (
            img(),
            "Conv2D",
            json!({"name": "c", "filters": 2, "kernel_size": 3, "activation": "gelu"}),
            "activation",
        ),
        (
            img(),
            "Conv2D",
            json!({"name": "c", "filters": 2, "kernel_size": 3, "trainable": "no"}),
            "trainable",
        ),
        (img(), "Softmax", json!({"name": "c", "axis": 1}), "axis"),
        (img(), "ReLU", json!({"name": "c", "threshold": -1.0}), "threshold"),
        (img(), "ReLU", json!({"name": "c", "max_value": "six"}), "max_value"),
        (
            img(),
            "PReLU",
            json!({"name": "c", "alpha_regularizer": {"class_name": "L2"}}),
            "alpha_regularizer",
        ),
        (
            img(),
            "PReLU",
            json!({"name": "c", "shared_axes": [1, 4]}),
            "shared_axes",
        ),
        (img(), "ELU", json!({"name": "c", "alpha": 1.0, "beta": 2}), "beta"),
        (
            img(),
            "LayerNormalization",
            json!({"name": "c", "rms_scaling": true}),
            "rms_scaling",
        ),
        (
            img(),
            "LayerNormalization",
            json!({"name": "c", "axis": [1, 2]}),
            "axis",
        ),
        (
            img(),
            "Cropping2D",
            json!({"name": "c", "cropping": [[3, 3], [0, 0]]}),
            "cropping",
        ),
        (
            img(),
            "SeparableConv2D",
            json!({"name": "c", "filters": 2, "kernel_size": 3, "pointwise_constraint": {"class_name": "NonNeg"}}),
            "pointwise_constraint",
        ),
        (img(), "SpatialDropout2D", json!({"name": "c", "rate": 1.5}), "rate"),
        (
            img(),
            "Conv2D",
            json!({"name": "c", "filters": 2, "kernel_size": 3, "dtype": "mixed_float16"}),
            "dtype",
        ),
        (
            img(),
            "Conv2D",
            json!({"name": "c", "filters": 2, "kernel_size": 3, "future_arg": 7}),
            "future_arg",
        ),
        (
            img(),
            "DepthwiseConv2D",
            json!({"name": "c", "kernel_size": 3, "depthwise_regularizer": {"class_name": "L2"}}),
            "depthwise_regularizer",
        ),
        (
            img(),
            "Conv2DTranspose",
            json!({"name": "c", "filters": 2, "kernel_size": 3, "output_padding": [1, 1]}),
            "output_padding",
        ),
        (img(), "BatchNormalization", json!({"name": "c", "axis": 1}), "axis"),
        (
            img(),
            "BatchNormalization",
            json!({"name": "c", "center": "no"}),
            "center",
        ),
        (
            img(),
            "BatchNormalization",
            json!({"name": "c", "renorm": true}),
            "renorm",
        ),
        (
            img(),
            "Dropout",
            json!({"name": "c", "rate": 0.5, "noise_shape": [null, 1, 1, 2]}),
            "noise_shape",
        ),
        (
            img(),
            "UpSampling2D",
            json!({"name": "c", "interpolation": "bicubic"}),
            "interpolation",
        ),
        (
            img(),
            "GlobalAveragePooling2D",
            json!({"name": "c", "keepdims": true}),
            "keepdims",
        ),
        (img(), "Conv3D", json!({"name": "c"}), "class_name"),
        (
            json!([null, 4]),
            "Dense",
            json!({"name": "c", "units": 2, "activity_regularizer": {"class_name": "L1"}}),
            "activity_regularizer",
        ),
        (
            json!([null, 4]),
            "Dense",
            json!({"name": "c", "units": 2, "activation": {"class_name": "MyAct", "config": {"k": 1}}}),
            "activation",
        ),
        (
            json!([null, 6, 6, 2]),
            "Dense",
            json!({"name": "c", "units": 2}),
            "Dense expects a 2-D input",
        ),
    ];
    for (shape, class, cfg, arg) in cases {
        let e = layer_err(shape, class, cfg.clone());
        assert!(
            e.contains("layer 'c'") && e.contains(class) && e.contains(arg),
            "{class} {cfg}: {e}"
        );
    }
    let e = layer_err(json!([null, 6, 6, 2]), "Conv3D", json!({"name": "c"}));
    assert!(
        e.contains("BatchNormalization") && e.contains("Conv2DTranspose"),
        "lists the supported: {e}"
    );
    let e = err(&seq(json!([input(json!([null, null, null, 3]))])));
    assert!(e.contains("static"), "{e}");
}

#[test]
fn arguments_map_to_the_layer() {
    // Defaults, pairs, tf.keras 2 BatchNormalization axis lists, serialized activations.
    let m = load_config(
        &seq(json!([
            input(json!([null, 8, 8, 2])),
            layer("Conv2D", json!({"name": "c", "filters": 4, "kernel_size": [3, 1], "strides": [2, 1],
                "padding": "same", "activation": {"module": "keras.activations", "class_name": "function", "config": "relu"},
                "kernel_initializer": {"class_name": "HeNormal"}, "lora_rank": null})),
            layer("BatchNormalization", json!({"name": "b", "axis": [3], "momentum": 0.5, "epsilon": 0.1})),
            layer("ZeroPadding2D", json!({"name": "z", "padding": [[1, 2], [0, 3]]})),
            layer("MaxPooling2D", json!({"name": "p", "pool_size": 2, "strides": null})),
            layer("Reshape", json!({"name": "r", "target_shape": [-1]})),
        ])),
        "m",
    )
    .unwrap();
    let shapes: Vec<Vec<usize>> = m.layer_info().iter().map(|i| i.output_shape.clone()).collect();
    assert_eq!(
        shapes,
        vec![
            vec![8, 8, 2],
            vec![4, 8, 4],
            vec![4, 8, 4],
            vec![7, 11, 4],
            vec![3, 5, 4],
            vec![60]
        ]
    );
}

// ---- Keras's numbers in the reference interpreter (no device needed) ----

/// The tensors of a safetensors file (F32), by name.
fn safetensors(path: &std::path::Path) -> std::collections::HashMap<String, Vec<f64>> {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let h: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    h.as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .map(|(k, v)| {
            let o: Vec<usize> = v["data_offsets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            let vals = data[o[0]..o[1]]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect();
            (k.clone(), vals)
        })
        .collect()
}

/// The values of a version-1 `.npy` fixture (`<f4` or `<i4`).
fn npy(path: &std::path::Path) -> Vec<f64> {
    let b = std::fs::read(path).unwrap();
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
    b[10 + hlen..]
        .chunks_exact(4)
        .map(|c| {
            if header.contains("<i4") {
                i32::from_le_bytes(c.try_into().unwrap()) as f64
            } else {
                f32::from_le_bytes(c.try_into().unwrap()) as f64
            }
        })
        .collect()
}

/// The largest `|a - b| / (|b| + mean|b|)`.
fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mean = b.iter().map(|v| v.abs()).sum::<f64>() / b.len() as f64;
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / (y.abs() + mean + 1e-30))
        .fold(0.0, f64::max)
}

fn fixture_model(name: &str) -> crate::Model {
    load_config(
        &std::fs::read_to_string(fixtures().join(format!("{name}.json"))).unwrap(),
        name,
    )
    .unwrap()
}

#[test]
fn reference_interpreter_reproduces_keras_outputs() {
    for name in [
        "seq_cnn",
        "func_unet",
        "func_misc",
        "train_seq",
        "train_func",
        "tf2_seq",
        "tf2_func",
        "train_frozen",
        "mobilenet_blocks",
        "new_layers",
        "unet_pixels",
    ] {
        let model = fixture_model(name);
        let x = npy(&fixtures().join(format!("{name}.x.npy")));
        let want = npy(&fixtures().join(format!("{name}.y.npy")));
        let per: usize = model.input_shapes()[0].iter().product();
        let graph = model.graph(x.len() / per).unwrap();
        let mut feeds = safetensors(&fixtures().join(format!("{name}.safetensors")));
        feeds.insert(model.layers()[0].name.clone(), x);
        let got = crate::interp::evaluate(&graph, &feeds).unwrap_or_else(|e| panic!("{name}: {e}"));
        let e = rel_err(&got[0], &want);
        eprintln!("{name}: reference interpreter vs Keras {e:.2e}");
        assert!(
            e < 1e-4,
            "{name}: the reference interpreter differs from Keras by {e:.3e}"
        );
    }
}

#[test]
fn reference_training_step_reproduces_keras_epochs() {
    use crate::train::{
        CompileConfig, LEARNING_RATE, Loss, Optimizer, STEP_SIZE, reference_step, target_input, train_step,
    };
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("manifest.json")).unwrap()).unwrap();
    // train_frozen: frozen Conv2D and BatchNormalization; unet_pixels: per-pixel labels.
    for name in ["train_seq", "train_func", "train_frozen", "unet_pixels"] {
        let m = &manifest["models"][name];
        let batch = m["batch_size"].as_u64().unwrap() as usize;
        let model = fixture_model(name);
        let x = npy(&fixtures().join(format!("{name}.x.npy")));
        let labels = npy(&fixtures().join(format!("{name}.labels.npy")));
        let classes = *model.output_shapes()[0].last().unwrap();
        let per: usize = model.input_shapes()[0].iter().product();
        // Labels per sample: 1, or one per pixel.
        let per_label = labels.len() / (x.len() / per);
        let optimizers: Vec<String> = match m.get("optimizers") {
            Some(Value::Array(o)) => o.iter().map(|v| v.as_str().unwrap().to_string()).collect(),
            _ => vec!["sgd".into(), "adam".into()],
        };
        for opt in optimizers.iter().map(String::as_str) {
            let lr = m[format!("{opt}_lr")].as_f64().unwrap() as f32;
            let cfg = CompileConfig::new(
                Loss::SparseCategoricalCrossentropy { from_logits: true },
                Optimizer::parse(opt, Some(lr)).unwrap(),
                vec![],
            );
            let step = train_step(&model, batch, &cfg).unwrap();
            let mut feeds = safetensors(&fixtures().join(format!("{name}.safetensors")));
            for s in step.slots.iter() {
                feeds.insert(s.name.clone(), vec![0.0; s.value.numel()]);
            }
            let mut loss = 0.0;
            let steps = labels.len() / per_label / batch;
            for s in 0..steps {
                let (lr, alpha) = cfg.optimizer.hyper(s as u64);
                feeds.insert(
                    model.layers()[0].name.clone(),
                    x[s * batch * per..(s + 1) * batch * per].to_vec(),
                );
                let span = batch * per_label;
                let mut onehot = vec![0.0; span * classes];
                for (i, &l) in labels[s * span..(s + 1) * span].iter().enumerate() {
                    onehot[i * classes + l as usize] = 1.0;
                }
                feeds.insert(target_input(&step.targets[0].name), onehot);
                feeds.insert(LEARNING_RATE.into(), vec![lr as f64]);
                feeds.insert(STEP_SIZE.into(), vec![alpha as f64]);
                loss += reference_step(&step.graph, &mut feeds).unwrap()[0][0] / steps as f64;
            }
            let want = safetensors(&fixtures().join(format!("{name}.{opt}.safetensors")));
            let mut worst = 0.0f64;
            for (w, v) in &want {
                let e = rel_err(&feeds[w], v);
                worst = worst.max(e);
                assert!(e < 1e-4, "{name} {opt}: {w} differs from Keras by {e:.3e}");
            }
            eprintln!(
                "{name} {opt}: reference weights vs Keras {worst:.2e}, loss {loss:.6} vs {:.6}",
                m["losses"][opt]
            );
            let keras_loss = m["losses"][opt].as_f64().unwrap();
            assert!(
                (loss - keras_loss).abs() < 1e-5 * keras_loss,
                "{name} {opt}: loss {loss} vs Keras {keras_loss}"
            );
        }
    }
}

#[test]
fn frozen_layers_and_models_load_frozen() {
    let json = std::fs::read_to_string(fixtures().join("train_frozen.json")).unwrap();
    let m = load_config(&json, "train_frozen").unwrap();
    for (layer, trainable) in [
        ("frozen_conv", false),
        ("frozen_bn", false),
        ("conv", true),
        ("head", true),
    ] {
        assert_eq!(m.is_trainable(layer).unwrap(), trainable, "{layer}");
    }
    let frozen: Vec<&str> = m
        .params
        .iter()
        .filter(|p| !p.trainable)
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(
        frozen,
        [
            "frozen_conv/kernel",
            "frozen_conv/bias",
            "frozen_bn/gamma",
            "frozen_bn/beta",
            "frozen_bn/moving_mean",
            "frozen_bn/moving_variance",
            "bn/moving_mean",
            "bn/moving_variance"
        ]
    );
    // `trainable: false` on the model freezes every layer (Keras's `model.trainable = False`).
    let mut v: Value = serde_json::from_str(&json).unwrap();
    v["config"]["trainable"] = json!(false);
    let m = load_config(&v.to_string(), "m.json").unwrap();
    assert!(m.params.iter().all(|p| !p.trainable));
    v["config"]["trainable"] = json!(3);
    let e = load_config(&v.to_string(), "m.json").unwrap_err().to_string();
    assert!(e.contains("trainable") && e.contains("3"), "{e}");
}

#[test]
fn several_inputs_and_outputs_keep_keras_order() {
    let json = std::fs::read_to_string(fixtures().join("two_io.json")).unwrap();
    let m = load_config(&json, "two_io").unwrap();
    assert_eq!(m.input_names(), ["meta", "image"]);
    assert_eq!(m.output_names(), ["classes", "box"]);
    assert_eq!(m.input_shapes(), vec![vec![4], vec![6, 6, 3]]);
    assert_eq!(m.output_shapes(), vec![vec![3], vec![4]]);
    let g = m.graph(2).unwrap();
    let inputs: Vec<String> = g
        .inputs
        .iter()
        .map(|&i| match &g.node(i).op {
            crate::ir::Op::Input { name } => name.clone(),
            op => panic!("{}", op.name()),
        })
        .collect();
    assert_eq!(inputs, ["meta", "image"]);
    let outputs: Vec<&str> = g.outputs.iter().map(|&o| g.node(o).layer.as_str()).collect();
    assert_eq!(outputs, ["classes", "box"]);
}

#[test]
fn activation_layer_arguments_map_to_the_layer() {
    // tf.keras 2's LeakyReLU `alpha`, Keras 3's `negative_slope`, ReLU's three arguments.
    let m = load_config(
        &seq(json!([
            input(json!([null, 4])),
            layer("LeakyReLU", json!({"name": "l2", "alpha": 0.1})),
            layer("LeakyReLU", json!({"name": "l3", "negative_slope": 0.5})),
            layer(
                "ReLU",
                json!({"name": "r", "max_value": 0.4, "negative_slope": 1.0, "threshold": 0.0})
            ),
        ])),
        "m",
    )
    .unwrap();
    let g = m.graph(1).unwrap();
    let mut feeds = crate::interp::Feeds::new();
    feeds.insert("x".into(), vec![-2.0, -0.5, 0.3, 3.0]);
    let y = crate::interp::evaluate(&g, &feeds).unwrap().remove(0);
    // Slopes 0.1 then 0.5 below zero (the ReLU's slope 1 keeps them), 3 clipped to 0.4.
    let want = [-0.1, -0.025, 0.3, 0.4];
    for (a, b) in y.iter().zip(want) {
        assert!((a - b).abs() < 1e-6, "{y:?}");
    }
}

#[test]
fn sizes_from_a_hostile_config_are_errors_not_aborts() {
    let img = || input(json!([null, 8, 8, 3]));
    for (cfg, class, want) in [
        (
            json!({"name": "c", "filters": 1_000_000_000_000_000u64, "kernel_size": [3, 3]}),
            "Conv2D",
            "limit",
        ),
        (
            json!({"name": "c", "filters": 4, "kernel_size": [1u64 << 40, 1u64 << 40]}),
            "Conv2D",
            "limit",
        ),
        (
            json!({"name": "c", "filters": 1u64 << 62, "kernel_size": [3, 3]}),
            "Conv2D",
            "limit",
        ),
        (json!({"name": "d", "units": 1u64 << 40}), "Dense", "limit"),
    ] {
        let layers = if class == "Dense" {
            json!([input(json!([null, 1u64 << 30])), layer(class, cfg)])
        } else {
            json!([img(), layer(class, cfg)])
        };
        let e = err(&seq(layers));
        assert!(e.contains(want) && (e.contains("'c'") || e.contains("'d'")), "{e}");
    }
    // An input whose shape overflows is refused too.
    let e = err(&seq(json!([input(json!([null, 1u64 << 32, 1u64 << 32, 3]))])));
    assert!(e.contains("limit"), "{e}");
}
