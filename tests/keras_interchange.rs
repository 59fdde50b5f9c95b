//! Keras interchange against Keras itself: the fixtures in tests/fixtures/keras (made by
//! tools/keras/make_fixtures.py with TensorFlow/Keras on the CPU) hold Keras model configs,
//! weights, inputs, Keras's outputs, and Keras's weights after one epoch of SGD and of Adam.
//! Fovea must agree within 1e-4 (outputs) and 1e-3 (trained weights), relative to
//! `|keras| + mean|keras|`; bad inputs must give a clear error and write nothing.

mod common;

use fovea::engine::{CompiledModel, DeviceState, FitOptions, Program, Targets, Verbosity, checkpoint, npy, npz};
use fovea::graph::train::{CompileConfig, Loss, Optimizer};
use fovea::graph::{Model, Tensor, keras};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keras")
        .join(name)
}

fn load(name: &str, weights: &str) -> Model {
    let json = std::fs::read_to_string(fixture(&format!("{name}.json"))).unwrap();
    let mut model = keras::load_config(&json, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    checkpoint::load_params(&fixture(weights), &mut model.params).unwrap_or_else(|e| panic!("{name}: {e}"));
    model
}

/// The largest `|a - b| / (|b| + mean|b|)`.
fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mean = b.iter().map(|v| v.abs() as f64).sum::<f64>() / b.len().max(1) as f64;
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).abs() / (y.abs() as f64 + mean + 1e-30))
        .fold(0.0, f64::max)
}

fn manifest() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("manifest.json")).unwrap()).unwrap()
}

#[test]
fn outputs_agree_with_keras() {
    let device = common::device();
    let v = manifest();
    eprintln!("fixtures made with {}", v["versions"]);
    for (name, batch) in [
        ("seq_cnn", 2),
        ("func_unet", 5),
        ("func_misc", 3),
        ("train_seq", 16),
        ("train_func", 7),
        ("tf2_seq", 4),
        ("tf2_func", 1),
        ("train_frozen", 16),
        ("mobilenet_blocks", 2),
        ("new_layers", 3),
        ("unet_pixels", 5),
    ] {
        let model = load(name, &format!("{name}.safetensors"));
        let x = npy::read_f32(&fixture(&format!("{name}.x.npy"))).unwrap();
        let want = npy::read_f32(&fixture(&format!("{name}.y.npy"))).unwrap();
        let got = fovea::engine::predict(&device, &model, &x, batch).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.shape, want.shape, "{name}");
        let e = rel_err(&got.data, &want.data);
        eprintln!("{name} ({}): output error {e:.2e}", v["models"][name]["keras"]);
        assert!(e < 1e-4, "{name}: Fovea's outputs differ from Keras's by {e:.3e}");
    }
}

/// Trains `name` for one epoch as the fixture script did and compares every weight (and the
/// epoch's loss) with Keras's; returns the model before and after.
fn one_epoch_agrees(name: &str, optimizer: &str) -> (Model, Model) {
    let (_, labels) = npy::read_labels(&fixture(&format!("{name}.labels.npy"))).unwrap();
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: true };
    one_epoch_with(name, optimizer, loss, Targets::Classes(labels))
}

fn one_epoch_with(name: &str, optimizer: &str, loss_fn: Loss, targets: Targets) -> (Model, Model) {
    let v = manifest();
    let m = &v["models"][name];
    let lr = m[format!("{optimizer}_lr")].as_f64().unwrap() as f32;
    let model = load(name, &format!("{name}.safetensors"));
    let before = load(name, &format!("{name}.safetensors"));
    let x = npy::read_f32(&fixture(&format!("{name}.x.npy"))).unwrap();
    let cfg = CompileConfig::new(loss_fn, Optimizer::parse(optimizer, Some(lr)).unwrap(), vec![]);
    let mut cm = CompiledModel::new(&common::device(), model, cfg).unwrap();
    let opts = FitOptions {
        epochs: 1,
        batch_size: m["batch_size"].as_u64().unwrap() as usize,
        shuffle: false,
        verbosity: Verbosity::Silent,
        ..FitOptions::default()
    };
    let history = cm.fit(&x, &targets, &opts).unwrap();
    let loss = history.series("loss")[0];
    let keras_loss = m["losses"][optimizer].as_f64().unwrap();
    let trained = cm.model().unwrap();
    let want = checkpoint::read_safetensors(&fixture(&format!("{name}.{optimizer}.safetensors"))).unwrap();
    let mut worst = (0.0, String::new());
    for (wname, w) in &want {
        let p = trained
            .params
            .get(wname)
            .unwrap_or_else(|| panic!("{name}: no weight {wname}"));
        assert_eq!(p.value.shape, w.shape, "{name} {wname}");
        let e = rel_err(&p.value.data, &w.data);
        if e > worst.0 {
            worst = (e, wname.clone());
        }
    }
    let loss_err = (loss - keras_loss).abs() / keras_loss.abs();
    eprintln!(
        "{name} {optimizer}: worst weight error {:.2e} ({}), epoch loss {loss:.6} vs Keras {keras_loss:.6}",
        worst.0, worst.1
    );
    assert!(
        worst.0 < 1e-3,
        "{name} {optimizer}: {} differs from Keras by {:.3e}",
        worst.1,
        worst.0
    );
    assert!(loss_err < 1e-3, "{name} {optimizer}: loss {loss} vs Keras {keras_loss}");
    let mut after = load(name, &format!("{name}.safetensors"));
    after.params = trained.params.clone();
    (before, after)
}

/// The frozen Conv2D and BatchNormalization (Keras 3: inference mode, moving statistics kept)
/// stay bit-identical through `fit`; the trainable layers move, BatchNormalization's moving
/// statistics included, and every weight matches Keras's after one SGD epoch.
#[test]
fn one_epoch_of_sgd_with_frozen_layers_agrees_with_keras() {
    let (before, after) = one_epoch_agrees("train_frozen", "sgd");
    assert!(!before.is_trainable("frozen_conv").unwrap() && !before.is_trainable("frozen_bn").unwrap());
    assert!(before.is_trainable("conv").unwrap());
    for p in before.params.iter() {
        let moved = after.params.get(&p.name).unwrap().value.data != p.value.data;
        let frozen = p.name.starts_with("frozen_");
        assert_eq!(moved, !frozen, "{}: moved {moved}, frozen {frozen}", p.name);
    }
}

/// Per-pixel sparse labels `(B, H, W)` against `(B, H, W, C)` logits, as Keras's sparse
/// cross-entropy averages them over every pixel: fed here one-hot through the categorical
/// cross-entropy from logits, which is the same loss.
#[test]
fn one_epoch_of_sgd_with_per_pixel_labels_agrees_with_keras() {
    let name = "unet_pixels";
    let (shape, labels) = npy::read_labels(&fixture(&format!("{name}.labels.npy"))).unwrap();
    assert_eq!(shape, vec![16, 8, 8]);
    let classes = 3;
    let mut onehot = vec![0.0; labels.len() * classes];
    for (i, &l) in labels.iter().enumerate() {
        assert!((l as usize) < classes);
        onehot[i * classes + l as usize] = 1.0;
    }
    let targets = Targets::Dense(Tensor::new(vec![16, 8, 8, classes], onehot, "labels").unwrap());
    one_epoch_with(
        name,
        "sgd",
        Loss::CategoricalCrossentropy { from_logits: true },
        targets,
    );
    // The same epoch with the labels as they are: sparse CE over the last axis of a 4-D output.
    let indices = Tensor::new(shape, labels.iter().map(|&l| l as f32).collect(), "labels").unwrap();
    one_epoch_with(
        name,
        "sgd",
        Loss::SparseCategoricalCrossentropy { from_logits: true },
        Targets::ClassIndices(indices),
    );
}

/// `fovea fit` with per-pixel labels `(B, H, W)` straight from the fixture.
#[test]
fn cli_fit_takes_per_pixel_labels() {
    let dir = scratch("pixels");
    let name = "unet_pixels";
    let out_w = dir.join("trained.safetensors");
    let m = &manifest()["models"][name];
    let lr = m["sgd_lr"].as_f64().unwrap().to_string();
    let batch = m["batch_size"].as_u64().unwrap().to_string();
    let o = fovea(&[
        "fit",
        "--model",
        s(&fixture(&format!("{name}.json"))),
        "--weights",
        s(&fixture(&format!("{name}.safetensors"))),
        "--x",
        s(&fixture(&format!("{name}.x.npy"))),
        "--y",
        s(&fixture(&format!("{name}.labels.npy"))),
        "--loss",
        "sparse_categorical_crossentropy",
        "--from-logits",
        "--optimizer",
        "sgd",
        "--learning-rate",
        &lr,
        "--batch-size",
        &batch,
        "--no-shuffle",
        "--save-weights",
        s(&out_w),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let got = checkpoint::read_safetensors(&out_w).unwrap();
    let want = checkpoint::read_safetensors(&fixture(&format!("{name}.sgd.safetensors"))).unwrap();
    for (wname, w) in &want {
        let g = &got.iter().find(|(n, _)| n == wname).unwrap().1;
        let e = rel_err(&g.data, &w.data);
        assert!(e < 1e-3, "{name}: {wname} differs from Keras by {e:.3e}");
    }
}

/// `fovea predict` with an `.npz` of named inputs writes an `.npz` of named outputs.
#[test]
fn cli_predict_reads_and_writes_npz_for_several_inputs_and_outputs() {
    let dir = scratch("npz");
    let name = "two_io";
    let out = dir.join("y.npz");
    let o = fovea(&[
        "predict",
        "--model",
        s(&fixture(&format!("{name}.json"))),
        "--weights",
        s(&fixture(&format!("{name}.safetensors"))),
        "--input",
        s(&fixture(&format!("{name}.x.npz"))),
        "--output",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let got = npz::read_f32(&out).unwrap();
    let want = npz::read_f32(&fixture(&format!("{name}.y.npz"))).unwrap();
    let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        vec!["classes", "box"],
        "outputs keyed by layer name, in output order"
    );
    for (k, w) in &want {
        let g = &got.iter().find(|(n, _)| n == k).unwrap().1;
        assert_eq!(g.shape, w.shape, "{k}");
        let e = rel_err(&g.data, &w.data);
        assert!(e < 1e-4, "{name}: output {k} differs from Keras's by {e:.3e}");
    }
    // Several outputs do not fit one .npy.
    let o = fovea(&[
        "predict",
        "--model",
        s(&fixture(&format!("{name}.json"))),
        "--weights",
        s(&fixture(&format!("{name}.safetensors"))),
        "--input",
        s(&fixture(&format!("{name}.x.npz"))),
        "--output",
        s(&dir.join("y.npy")),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("2 outputs"), "{}", text(&o));
    assert!(!dir.join("y.npy").exists());
}

/// Two inputs and two outputs in Keras's order (`[meta, image]` in, `[classes, box]` out,
/// neither the layers' creation order): the program's feeds and results follow
/// `Model::input_names` / `output_names`, and match Keras's outputs.
#[test]
fn two_inputs_two_outputs_agree_with_keras() {
    let name = "two_io";
    let model = load(name, &format!("{name}.safetensors"));
    assert_eq!(model.input_names(), vec!["meta", "image"]);
    assert_eq!(model.output_names(), vec!["classes", "box"]);
    let device = common::device();
    let state = DeviceState::new(&device);
    state.upload(&model.params).unwrap();
    let xs: Vec<Tensor> = model
        .input_names()
        .iter()
        .map(|n| npy::read_f32(&fixture(&format!("{name}.x.{n}.npy"))).unwrap())
        .collect();
    let batch = xs[0].shape[0];
    let program = Program::compile_with_state(&device, model.graph(batch).unwrap(), &state).unwrap();
    let feeds: Vec<&[f32]> = xs.iter().map(|x| x.data.as_slice()).collect();
    let ys = program.run(&feeds).unwrap();
    assert_eq!(ys.len(), 2);
    for (out, got) in model.output_names().iter().zip(&ys) {
        let want = npy::read_f32(&fixture(&format!("{name}.y.{out}.npy"))).unwrap();
        let e = rel_err(got, &want.data);
        eprintln!("{name} output {out}: error {e:.2e}");
        assert!(e < 1e-4, "{name}: output {out} differs from Keras's by {e:.3e}");
    }
}

#[test]
fn one_epoch_of_sgd_agrees_with_keras() {
    one_epoch_agrees("train_seq", "sgd");
    one_epoch_agrees("train_func", "sgd");
}

#[test]
fn one_epoch_of_adam_agrees_with_keras() {
    one_epoch_agrees("train_seq", "adam");
}

// ---- the command line ----

fn fovea(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fovea"))
        .args(args)
        .output()
        .expect("run fovea")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A fresh scratch folder for one test.
fn scratch(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fovea-keras-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn cli_fit_matches_keras_adam_and_predict_writes_npy() {
    let dir = scratch("fit");
    let name = "train_func";
    let (out_w, out_m) = (dir.join("trained.safetensors"), dir.join("metrics.json"));
    let o = fovea(&[
        "fit",
        "--model",
        s(&fixture(&format!("{name}.json"))),
        "--weights",
        s(&fixture(&format!("{name}.safetensors"))),
        "--x",
        s(&fixture(&format!("{name}.x.npy"))),
        "--y",
        s(&fixture(&format!("{name}.labels.npy"))),
        "--loss",
        "sparse_categorical_crossentropy",
        "--from-logits",
        "--optimizer",
        "adam",
        "--learning-rate",
        "0.01",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--no-shuffle",
        "--metrics",
        "accuracy",
        "--save-weights",
        s(&out_w),
        "--metrics-json",
        s(&out_m),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let got = checkpoint::read_safetensors(&out_w).unwrap();
    let want = checkpoint::read_safetensors(&fixture(&format!("{name}.adam.safetensors"))).unwrap();
    assert_eq!(got.len(), want.len());
    for (wname, w) in &want {
        let g = &got.iter().find(|(n, _)| n == wname).unwrap().1;
        let e = rel_err(&g.data, &w.data);
        assert!(
            e < 1e-3,
            "{name} adam via the CLI: {wname} differs from Keras by {e:.3e}"
        );
    }
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out_m).unwrap()).unwrap();
    let loss = m["history"][0]["train"][0][1].as_f64().unwrap();
    let keras_loss = manifest()["models"][name]["losses"]["adam"].as_f64().unwrap();
    assert!((loss - keras_loss).abs() < 1e-3 * keras_loss, "{m}");
    // The trained weights predict through the CLI.
    let y = dir.join("y.npy");
    let o = fovea(&[
        "predict",
        "--model",
        s(&fixture(&format!("{name}.json"))),
        "--weights",
        s(&out_w),
        "--input",
        s(&fixture(&format!("{name}.x.npy"))),
        "--output",
        s(&y),
        "--batch-size",
        "5",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let y = npy::read_f32(&y).unwrap();
    assert_eq!(y.shape, vec![16, 4]);
    assert!(
        std::fs::read_dir(&dir)
            .unwrap()
            .all(|e| !e.unwrap().path().to_string_lossy().ends_with(".tmp"))
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `fovea fit` reads `trainable: false` from the config: the frozen-layer fixture trains as
/// Keras trained it, and the frozen weights come out bit-identical.
#[test]
fn cli_fit_keeps_frozen_layers_frozen() {
    let dir = scratch("frozen");
    let name = "train_frozen";
    let out_w = dir.join("trained.safetensors");
    let o = fovea(&[
        "fit",
        "--model",
        s(&fixture(&format!("{name}.json"))),
        "--weights",
        s(&fixture(&format!("{name}.safetensors"))),
        "--x",
        s(&fixture(&format!("{name}.x.npy"))),
        "--y",
        s(&fixture(&format!("{name}.labels.npy"))),
        "--loss",
        "sparse_categorical_crossentropy",
        "--from-logits",
        "--optimizer",
        "sgd",
        "--learning-rate",
        "0.1",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--no-shuffle",
        "--save-weights",
        s(&out_w),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let got = checkpoint::read_safetensors(&out_w).unwrap();
    let initial = checkpoint::read_safetensors(&fixture(&format!("{name}.safetensors"))).unwrap();
    let want = checkpoint::read_safetensors(&fixture(&format!("{name}.sgd.safetensors"))).unwrap();
    assert_eq!(got.len(), want.len());
    for (wname, w) in &want {
        let g = &got.iter().find(|(n, _)| n == wname).unwrap().1;
        let e = rel_err(&g.data, &w.data);
        assert!(
            e < 1e-3,
            "{name} sgd via the CLI: {wname} differs from Keras by {e:.3e}"
        );
        if wname.starts_with("frozen_") {
            let before = &initial.iter().find(|(n, _)| n == wname).unwrap().1;
            assert_eq!(g.data, before.data, "{wname} is frozen");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Writes a `.npy` file with `descr`, `fortran_order` and raw `body`.
fn raw_npy(path: &Path, descr: &str, fortran: bool, shape: &str, body: &[u8]) {
    let header = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}\n",
        if fortran { "True" } else { "False" }
    );
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(header.len() as u16).to_le_bytes());
    b.extend_from_slice(header.as_bytes());
    b.extend_from_slice(body);
    std::fs::write(path, b).unwrap();
}

#[test]
fn bad_inputs_are_clear_errors_and_write_nothing() {
    let dir = scratch("bad");
    let name = "seq_cnn";
    let json = fixture(&format!("{name}.json"));
    let weights = fixture(&format!("{name}.safetensors"));
    let x = fixture(&format!("{name}.x.npy"));
    let out = dir.join("out.npy");
    let predict = |model: &Path, weights: &Path, input: &Path| {
        fovea(&[
            "predict",
            "--model",
            s(model),
            "--weights",
            s(weights),
            "--input",
            s(input),
            "--output",
            s(&out),
        ])
    };
    let expect = |o: Output, wants: &[&str], case: &str| {
        let t = text(&o);
        assert!(!o.status.success(), "{case}: succeeded\n{t}");
        for w in wants {
            assert!(t.contains(w), "{case}: the message lacks {w:?}:\n{t}");
        }
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with("out") || n.starts_with("trained") || n.ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{case}: wrote {left:?}");
        eprintln!("{case}: {}", t.trim().lines().last().unwrap_or(""));
    };

    // Truncated and corrupt weights.
    let bytes = std::fs::read(&weights).unwrap();
    let truncated = dir.join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() - 10]).unwrap();
    expect(
        predict(&json, &truncated, &x),
        &["truncated.safetensors", "truncated"],
        "truncated safetensors",
    );
    let corrupt = dir.join("corrupt.safetensors");
    std::fs::write(&corrupt, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all").unwrap();
    expect(
        predict(&json, &corrupt, &x),
        &["corrupt.safetensors", "not a safetensors file"],
        "corrupt safetensors",
    );
    // A weight missing, a weight of the wrong shape.
    let tensors = checkpoint::read_safetensors(&weights).unwrap();
    let missing = dir.join("missing.safetensors");
    let some: Vec<(String, &Tensor)> = tensors
        .iter()
        .filter(|(n, _)| n != "dense_1/bias")
        .map(|(n, t)| (n.clone(), t))
        .collect();
    checkpoint::write_safetensors(&missing, &some).unwrap();
    expect(
        predict(&json, &missing, &x),
        &["missing dense_1/bias (5,)"],
        "missing weight",
    );
    let wrong = dir.join("wrong.safetensors");
    let bad_bias = Tensor::zeros(vec![7]);
    let mut all: Vec<(String, &Tensor)> = some.clone();
    all.push(("dense_1/bias".into(), &bad_bias));
    checkpoint::write_safetensors(&wrong, &all).unwrap();
    expect(
        predict(&json, &wrong, &x),
        &["dense_1/bias: file has shape (7,), the model needs (5,)"],
        "wrong-shape weight",
    );
    // Corrupt, truncated, wrongly shaped and wrongly typed inputs.
    let garbage = dir.join("garbage.npy");
    std::fs::write(&garbage, b"this is not numpy").unwrap();
    expect(
        predict(&json, &weights, &garbage),
        &["garbage.npy", "not a .npy file"],
        "corrupt npy",
    );
    let short = dir.join("short.npy");
    let xb = std::fs::read(&x).unwrap();
    std::fs::write(&short, &xb[..xb.len() - 7]).unwrap();
    expect(
        predict(&json, &weights, &short),
        &["short.npy", "truncated"],
        "truncated npy",
    );
    let fortran = dir.join("fortran.npy");
    raw_npy(&fortran, "<f4", true, "(1, 8, 8, 3)", &[0; 768]);
    expect(
        predict(&json, &weights, &fortran),
        &["fortran.npy", "Fortran-order"],
        "fortran npy",
    );
    let shape = dir.join("shape.npy");
    npy::write_f32(&shape, &Tensor::zeros(vec![2, 8, 3, 8])).unwrap();
    expect(
        predict(&json, &weights, &shape),
        &["shape.npy", "(samples, 8, 8, 3)", "(2, 8, 3, 8)"],
        "input of the wrong shape",
    );
    let f64s = dir.join("f64.npy");
    raw_npy(&f64s, "<f8", false, "(1, 8, 8, 3)", &[0; 1536]);
    expect(
        predict(&json, &weights, &f64s),
        &["f64.npy", "<f8", "float32"],
        "input of the wrong dtype",
    );
    // Model files that are not Keras configs, or use what Fovea lacks.
    let not_keras = dir.join("weights.json");
    std::fs::write(&not_keras, r#"{"dense/kernel": [1, 2, 3]}"#).unwrap();
    expect(
        predict(&not_keras, &weights, &x),
        &["weights.json", "not a Keras model config"],
        "not a config",
    );
    let text_json = std::fs::read_to_string(&json).unwrap();
    let channels_first = dir.join("channels_first.json");
    std::fs::write(
        &channels_first,
        text_json.replacen("channels_last", "channels_first", 1),
    )
    .unwrap();
    expect(
        predict(&channels_first, &weights, &x),
        &["layer 'conv2d'", "Conv2D", "data_format", "channels_first"],
        "unsupported argument",
    );
    let gelu = dir.join("gelu.json");
    std::fs::write(
        &gelu,
        text_json.replacen("\"activation\": \"tanh\"", "\"activation\": \"gelu\"", 1),
    )
    .unwrap();
    expect(
        predict(&gelu, &weights, &x),
        &["layer 'conv2d_2'", "Conv2D", "gelu"],
        "unsupported activation",
    );
    let conv3d = dir.join("conv3d.json");
    std::fs::write(&conv3d, text_json.replacen("\"MaxPooling2D\"", "\"MaxPooling3D\"", 1)).unwrap();
    expect(
        predict(&conv3d, &weights, &x),
        &["layer 'max_pooling2d'", "MaxPooling3D", "not supported"],
        "unsupported layer",
    );
    expect(
        fovea(&[
            "predict",
            "--model",
            s(&json),
            "--weights",
            s(&weights),
            "--input",
            s(&x),
        ]),
        &["--output"],
        "no --output",
    );

    // fit: labels that do not fit the model, and a corrupt labels file.
    let tname = "train_seq";
    let fit = |y: &Path| {
        fovea(&[
            "fit",
            "--model",
            s(&fixture(&format!("{tname}.json"))),
            "--weights",
            s(&fixture(&format!("{tname}.safetensors"))),
            "--x",
            s(&fixture(&format!("{tname}.x.npy"))),
            "--y",
            s(y),
            "--from-logits",
            "--optimizer",
            "sgd",
            "--save-weights",
            s(&dir.join("trained.safetensors")),
            "--metrics-json",
            s(&dir.join("out.json")),
        ])
    };
    let labels = dir.join("labels.npy");
    raw_npy(&labels, "<i8", false, "(16,)", &7i64.to_le_bytes().repeat(16));
    expect(
        fit(&labels),
        &["labels.npy", "out of range", "3 classes"],
        "labels out of range",
    );
    raw_npy(&labels, "<i4", false, "(15,)", &[0u8; 60]);
    expect(
        fit(&labels),
        &["labels.npy", "shaped (16,) for the 16 samples", "(15,)"],
        "too few labels",
    );
    raw_npy(&labels, "<i4", false, "(16,)", &[0u8; 50]);
    expect(fit(&labels), &["labels.npy", "truncated"], "truncated labels");
    std::fs::remove_dir_all(&dir).unwrap();
}
