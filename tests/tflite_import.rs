//! TFLite import against LiteRT: the fixtures in tests/fixtures/tflite (made by
//! tools/pretrained/make_fixtures.py with PyPI `ai-edge-litert`) hold LiteRT's outputs of
//! BlazeFace short range, Selfie Segmentation, BlazeFace full range (the model itself from the
//! cache of tools/pretrained/fetch.sh) and small synthetic models covering the other operators.
//! Fovea's outputs on the GPU must agree within 1e-4 of the largest |reference| per output.

mod common;

use fovea::engine::state::DeviceState;
use fovea::engine::{Program, npy};
use fovea::formats::tflite;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/tflite").join(name)
}

fn manifest() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("manifest.json")).unwrap()).unwrap()
}

fn entry(name: &str) -> Value {
    manifest()["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no fixture for {name}"))
        .clone()
}

/// The integer-hash input of make_fixtures.py: the same float32 operations, the same bits.
fn hash_input(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    (0..n as u64)
        .map(|i| {
            let h = (i.wrapping_mul(2_654_435_761).wrapping_add(seed) % (1 << 32)) >> 8;
            lo + (hi - lo) * (h as f32 / 16_777_216.0)
        })
        .collect()
}

/// The input of one case, as the manifest describes it.
fn input(spec: &Value) -> Vec<f32> {
    match spec["kind"].as_str().unwrap() {
        "hash" => {
            let n = spec["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .product();
            let f = |k: &str| spec[k].as_f64().unwrap() as f32;
            hash_input(n, spec["seed"].as_u64().unwrap(), f("lo"), f("hi"))
        }
        "npy" => npy::read_f32(&fixture(spec["file"].as_str().unwrap())).unwrap().data,
        "photo" => {
            let a = npy::read(&fixture(spec["file"].as_str().unwrap())).unwrap();
            let npy::NpyData::Int(px) = a.data else {
                panic!("photo is not uint8")
            };
            let (h, w) = (a.shape[0], a.shape[1]);
            let r = spec["repeat"].as_u64().unwrap() as usize;
            let flip = spec["flip"].as_bool().unwrap_or(false);
            let (scale, offset) = (
                spec["scale"].as_f64().unwrap() as f32,
                spec["offset"].as_f64().unwrap() as f32,
            );
            let mut out = Vec::with_capacity(h * w * 3 * r * r);
            for y in 0..h * r {
                for x in 0..w * r {
                    for c in 0..3 {
                        let x = if flip { w * r - 1 - x } else { x };
                        out.push(px[((y / r) * w + x / r) * 3 + c] as f32 * scale + offset);
                    }
                }
            }
            out
        }
        k => panic!("unknown input kind {k}"),
    }
}

/// `y` (shaped `shape`) at every `steps[i]`-th index of each axis, as numpy's `y[::s0, ::s1, ...]`.
fn subsample(y: &[f32], shape: &[usize], steps: &[usize]) -> Vec<f32> {
    let mut idx: Vec<Vec<usize>> = vec![vec![]];
    for (&d, &s) in shape.iter().zip(steps) {
        idx = idx
            .into_iter()
            .flat_map(|p| {
                (0..d).step_by(s).map(move |i| {
                    let mut q = p.clone();
                    q.push(i);
                    q
                })
            })
            .collect();
    }
    idx.iter()
        .map(|q| y[q.iter().zip(shape).fold(0, |acc, (&i, &d)| acc * d + i)])
        .collect()
}

/// Runs every case of the fixture `name` on `model_path` and checks the outputs.
fn check_model(name: &str, model_path: &Path) {
    let device = common::device();
    let e = entry(name);
    let imported = tflite::import(model_path).unwrap_or_else(|err| panic!("{name}: {err}"));
    let model = &imported.model;
    let state = DeviceState::new(&device);
    state.upload(&model.params).unwrap();
    let program = Program::compile_with_state(&device, model.graph(1).unwrap(), &state).unwrap();
    for case in e["cases"].as_array().unwrap() {
        let x = input(&case["input"]);
        let got = program.run(&[&x]).unwrap_or_else(|err| panic!("{name}: {err}"));
        let outs = case["outputs"].as_array().unwrap();
        assert_eq!(got.len(), outs.len(), "{name}: output count");
        for (k, (o, y)) in outs.iter().zip(&got).enumerate() {
            assert_eq!(
                imported.outputs[k],
                o["name"].as_str().unwrap(),
                "{name}: output {k} name"
            );
            let shape: Vec<usize> = o["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            let steps: Vec<usize> = o["steps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(y.len(), shape.iter().product::<usize>(), "{name}: output {k} size");
            let want = npy::read_f32(&fixture(o["file"].as_str().unwrap())).unwrap();
            let got = subsample(y, &shape, &steps);
            assert_eq!(got.len(), want.data.len(), "{name}: output {k} subsample");
            let max_ref = o["max_abs"].as_f64().unwrap();
            let err = got
                .iter()
                .zip(&want.data)
                .map(|(a, b)| (*a as f64 - *b as f64).abs())
                .fold(0.0, f64::max);
            eprintln!(
                "{name} {}: output '{}' max |fovea - litert| = {err:.3e}, max |litert| = {max_ref:.3}",
                case["input"]["kind"], o["name"]
            );
            assert!(
                err <= 1e-4 * max_ref,
                "{name}: output '{}' differs from LiteRT by {err:e} (limit {:e})",
                o["name"],
                1e-4 * max_ref
            );
        }
    }
}

#[test]
fn blazeface_short_range_agrees_with_litert() {
    check_model(
        "blazeface_short_range",
        &root().join("data/pretrained/face_detection_short_range.tflite"),
    );
}

#[test]
fn selfie_segmentation_agrees_with_litert() {
    check_model(
        "selfie_segmentation",
        &root().join("data/pretrained/selfie_segmentation.tflite"),
    );
}

/// BlazeFace full range is 1 MB, so it is not in the repository: the test runs when
/// tools/pretrained/fetch.sh has put it in the cache, and says so when it has not.
#[test]
fn blazeface_full_range_agrees_with_litert_when_cached() {
    let dir = std::env::var_os("FOVEA_PRETRAINED_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/fovea/pretrained")));
    let path = dir.map(|d| d.join("face_detection_full_range.tflite"));
    match path {
        Some(p) if p.is_file() => check_model("blazeface_full_range", &p),
        _ => eprintln!(
            "note: skipped BlazeFace full range: face_detection_full_range.tflite is not in the cache \
             (run tools/pretrained/fetch.sh, or set FOVEA_PRETRAINED_DIR)"
        ),
    }
}

#[test]
fn synthetic_models_agree_with_litert() {
    let mut checked = 0;
    for m in manifest()["models"].as_array().unwrap() {
        let (Some(file), name) = (m["file"].as_str(), m["name"].as_str().unwrap()) else {
            continue;
        };
        if !file.starts_with("tests/") {
            continue;
        }
        if let Some(want) = m["expect_error"].as_str() {
            let err = tflite::import(root().join(file)).expect_err(name).to_string();
            assert!(err.contains(want) && err.contains(file), "{name}: {err}");
            eprintln!("{name}: refused as expected: {err}");
            continue;
        }
        check_model(name, &root().join(file));
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} synthetic models were checked");
}

/// An imported model runs at batch 32 as well: every sample of a batch gives the output that
/// sample gives alone.
#[test]
fn blazeface_batches_like_single_samples() {
    let device = common::device();
    let model = tflite::load(root().join("data/pretrained/face_detection_short_range.tflite")).unwrap();
    let state = DeviceState::new(&device);
    state.upload(&model.params).unwrap();
    let per = 128 * 128 * 3;
    let x = hash_input(3 * per, 5, -1.0, 1.0);
    let batched = Program::compile_with_state(&device, model.graph(3).unwrap(), &state)
        .unwrap()
        .run(&[&x])
        .unwrap();
    let single = Program::compile_with_state(&device, model.graph(1).unwrap(), &state).unwrap();
    for i in 0..3 {
        let one = single.run(&[&x[i * per..(i + 1) * per]]).unwrap();
        for (k, y) in one.iter().enumerate() {
            let b = &batched[k][i * y.len()..(i + 1) * y.len()];
            let err = y.iter().zip(b).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(err < 1e-5, "sample {i} output {k}: batch differs by {err}");
        }
    }
}

/// An imported model fine-tunes like any other: with its first layer frozen, that layer's
/// weights stay bit-identical while the rest train and the loss falls; unfrozen, it trains too.
#[test]
fn an_imported_model_fine_tunes_with_a_frozen_layer() {
    use fovea::engine::{CompiledModel, FitOptions, Targets, Verbosity};
    use fovea::graph::Tensor;
    use fovea::graph::train::{CompileConfig, Loss, Optimizer};

    let model = tflite::load(fixture("synthetic/prelu_dense.tflite")).unwrap();
    let first = model.params.iter().next().expect("parameters").name.clone();
    let layer = first.rsplit_once('/').expect("<layer>/<variable>").0.to_string();
    let per: usize = model.input_shapes()[0].iter().product();
    let out: usize = model.output_shapes()[0].iter().product();
    let n = 8;
    let xs = Tensor::new(
        [vec![n], model.input_shapes()[0].clone()].concat(),
        hash_input(n * per, 9, -1.0, 1.0),
        "x",
    )
    .unwrap();
    // Targets in tanh's range, a fixed pattern the random-weight model does not produce.
    let ys = hash_input(n * out, 10, -0.8, 0.8);
    let ys = Targets::Dense(Tensor::new([vec![n], model.output_shapes()[0].clone()].concat(), ys, "y").unwrap());
    let cfg = CompileConfig::new(Loss::MeanSquaredError, Optimizer::adam(1e-2), vec![]);
    let mut cm = CompiledModel::new(&common::device(), model, cfg).unwrap();
    let value = |cm: &mut CompiledModel, name: &str| cm.model().unwrap().params.get(name).unwrap().value.clone();
    let others: Vec<String> = cm
        .model()
        .unwrap()
        .params
        .iter()
        .map(|p| p.name.clone())
        .filter(|p| !p.starts_with(&format!("{layer}/")))
        .collect();
    assert!(!others.is_empty(), "the model has parameters beyond {layer}");
    let before: Vec<_> = others.iter().map(|p| value(&mut cm, p)).collect();
    let frozen = value(&mut cm, &first);
    cm.set_trainable(&layer, false).unwrap();
    let opts = FitOptions {
        epochs: 30,
        batch_size: n,
        shuffle: false,
        verbosity: Verbosity::Silent,
        ..FitOptions::default()
    };
    let h = cm.fit(&xs, &ys, &opts).unwrap();
    let loss = h.series("loss");
    assert!(loss[loss.len() - 1] < 0.5 * loss[0], "the loss did not fall: {loss:?}");
    assert_eq!(value(&mut cm, &first), frozen, "{first} is frozen");
    let after: Vec<_> = others.iter().map(|p| value(&mut cm, p)).collect();
    assert!(
        before.iter().zip(&after).any(|(b, a)| b != a),
        "the unfrozen layers trained"
    );
    cm.set_all_trainable(true).unwrap();
    cm.fit(&xs, &ys, &FitOptions { epochs: 1, ..opts }).unwrap();
    assert_ne!(value(&mut cm, &first), frozen, "unfrozen, {first} trains");
}
