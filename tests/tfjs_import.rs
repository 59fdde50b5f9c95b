//! face-api's descriptor and SSD face detector (tfjs manifests read by `fovea::import::tfjs`,
//! architectures in `fovea::models::zoo::face_api`) against the package's own runtime: the
//! fixtures in tests/fixtures/tfjs were made by tools/pretrained/make_tfjs_fixtures.mjs, which
//! runs face-api 1.7.15's code with its bundled tfjs (CPU backend) in Node. Fovea's outputs on
//! the GPU must agree within 1e-3. The models come from the cache of tools/pretrained/fetch.sh;
//! without it the tests print a note and skip.

mod common;

use fovea::engine::state::DeviceState;
use fovea::engine::{Program, npy};
use fovea::models::zoo::face_api::{self, SsdOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/tfjs").join(name)
}

fn manifest() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("manifest.json")).unwrap()).unwrap()
}

/// The cache folder, when it holds `file`; else a printed note.
fn cached(file: &str) -> Option<PathBuf> {
    let dir = face_api::default_dir();
    if dir.join(file).is_file() {
        Some(dir)
    } else {
        eprintln!(
            "note: skipped: {file} is not in {} (run tools/pretrained/fetch.sh, or set FOVEA_PRETRAINED_DIR)",
            dir.display()
        );
        None
    }
}

/// The integer-hash input of the fixture scripts (same float32 steps, same bits).
fn hash_input(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    (0..n as u64)
        .map(|i| {
            let h = (i.wrapping_mul(2_654_435_761).wrapping_add(seed) % (1 << 32)) >> 8;
            lo + (hi - lo) * (h as f32 / 16_777_216.0)
        })
        .collect()
}

/// A case's input as 0-255 pixel values, the package's units.
fn pixels(spec: &Value) -> Vec<f32> {
    let u = |k: &str| spec[k].as_u64().unwrap();
    match spec["kind"].as_str().unwrap() {
        "hash" => {
            let n = spec["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .product();
            hash_input(
                n,
                u("seed"),
                spec["lo"].as_f64().unwrap() as f32,
                spec["hi"].as_f64().unwrap() as f32,
            )
        }
        kind @ ("grey" | "photo") => {
            let a = npy::read(&fixture(spec["file"].as_str().unwrap())).unwrap();
            let npy::NpyData::Int(px) = a.data else {
                panic!("not uint8")
            };
            let (h, w) = (a.shape[0], a.shape[1]);
            let r = spec["repeat"].as_u64().unwrap_or(1) as usize;
            let mut out = Vec::with_capacity(h * w * 3 * r * r);
            for y in 0..h * r {
                for x in 0..w * r {
                    for c in 0..3 {
                        let i = (y / r) * w + x / r;
                        let v = if kind == "grey" { px[i] } else { px[i * 3 + c] };
                        out.push(v as f32);
                    }
                }
            }
            out
        }
        k => panic!("unknown input kind {k}"),
    }
}

fn max_diff(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).abs())
        .fold(0.0, f64::max)
}

fn compile(model: &fovea::graph::Model, batch: usize) -> Program {
    let device = common::device();
    let state = DeviceState::new(&device);
    state.upload(&model.params).unwrap();
    Program::compile_with_state(&device, model.graph(batch).unwrap(), &state).unwrap()
}

#[test]
fn descriptor_agrees_with_face_api() {
    let Some(dir) = cached(face_api::DESCRIPTOR_MANIFEST) else {
        return;
    };
    let model = face_api::descriptor(&dir).unwrap();
    assert_eq!(model.output_shapes(), vec![vec![128]]);
    for case in manifest()["descriptor"].as_array().unwrap() {
        let batch = case["shape"][0].as_u64().unwrap() as usize;
        let x: Vec<f32> = pixels(&case["input"]).iter().map(|v| v / 255.0).collect();
        let got = compile(&model, batch).run(&[&x]).unwrap().remove(0);
        let want = npy::read_f32(&fixture(case["output"].as_str().unwrap())).unwrap().data;
        let err = max_diff(&got, &want);
        let max_ref = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        eprintln!(
            "descriptor {}: max |fovea - face-api| = {err:.3e}, max |face-api| = {max_ref:.3}",
            case["name"]
        );
        assert!(err <= 1e-3, "descriptor {}: differs by {err:e}", case["name"]);
        // The fine-tuning form is face-api's descriptor divided by its length.
        let unit = compile(&face_api::descriptor_embedding(&dir).unwrap(), batch)
            .run(&[&x])
            .unwrap()
            .remove(0);
        let normalised: Vec<f32> = want
            .chunks(128)
            .flat_map(|row| {
                let n = row.iter().map(|v| v * v).sum::<f32>().sqrt();
                row.iter().map(move |v| v / n)
            })
            .collect();
        let err = max_diff(&unit, &normalised);
        assert!(err <= 1e-4, "unit descriptor {}: differs by {err:e}", case["name"]);
    }
}

#[test]
fn ssd_detector_agrees_with_face_api() {
    let Some(dir) = cached(face_api::SSD_MANIFEST) else {
        return;
    };
    let det = face_api::ssd_detector(&dir).unwrap();
    assert_eq!(det.anchors.len(), face_api::ANCHORS);
    let program = compile(&det.model, 1);
    for case in manifest()["ssd"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let x: Vec<f32> = pixels(&case["input"]).iter().map(|v| v / 255.0).collect();
        let out = program.run(&[&x]).unwrap();
        let (enc, scores) = (&out[0], &out[1]);
        let want_scores = npy::read_f32(&fixture(case["scores"].as_str().unwrap())).unwrap().data;
        let err = max_diff(scores, &want_scores);
        eprintln!("ssd {name}: scores max |fovea - face-api| = {err:.3e}");
        assert!(err <= 1e-3, "ssd {name}: scores differ by {err:e}");
        if let Some(file) = case["boxes"].as_str() {
            let boxes: Vec<f32> = face_api::decode_boxes(enc, &det.anchors).unwrap().concat();
            let want_boxes = npy::read_f32(&fixture(file)).unwrap().data;
            let err = max_diff(&boxes, &want_boxes);
            eprintln!("ssd {name}: decoded boxes max |fovea - face-api| = {err:.3e}");
            assert!(err <= 1e-3, "ssd {name}: boxes differ by {err:e}");
        }
        let faces = det.faces(enc, scores, &SsdOptions::default()).unwrap();
        let want = case["faces"].as_array().unwrap();
        assert_eq!(faces.len(), want.len(), "ssd {name}: {faces:?} against {want:?}");
        for (f, w) in faces.iter().zip(want) {
            let g = |k: &str| w[k].as_f64().unwrap() as f32;
            let px = [
                f.x0 - g("x"),
                f.y0 - g("y"),
                f.x1 - f.x0 - g("width"),
                f.y1 - f.y0 - g("height"),
            ];
            eprintln!("ssd {name}: face {f:?}");
            assert!(px.iter().all(|d| d.abs() <= 0.5), "ssd {name}: {f:?} against {w}");
            assert!((f.score - g("score")).abs() <= 1e-3, "ssd {name}: {f:?} against {w}");
        }
    }
}

#[test]
fn the_real_manifests_read_with_every_tensor() {
    for (file, count) in [(face_api::DESCRIPTOR_MANIFEST, 117), (face_api::SSD_MANIFEST, 151)] {
        let Some(dir) = cached(file) else { continue };
        let w = fovea::import::tfjs::load(dir.join(file)).unwrap();
        assert_eq!(w.weights.len(), count, "{file}");
        assert!(w.weights.iter().all(|t| t.data.iter().all(|v| v.is_finite())), "{file}");
    }
    // int32 scalars of the detector's manifest come back as whole numbers
    if let Some(dir) = cached(face_api::SSD_MANIFEST) {
        let w = fovea::import::tfjs::load(dir.join(face_api::SSD_MANIFEST)).unwrap();
        assert_eq!(
            w.expect("Prediction/BoxPredictor_0/stack_1/1", &[]).unwrap().data,
            vec![3072.0]
        );
    }
}

#[test]
fn a_truncated_shard_is_an_error_naming_the_tensor() {
    let Some(dir) = cached(face_api::DESCRIPTOR_MANIFEST) else {
        return;
    };
    let tmp = std::env::temp_dir().join(format!("fovea-tfjs-short-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let m = face_api::DESCRIPTOR_MANIFEST;
    std::fs::copy(dir.join(m), tmp.join(m)).unwrap();
    let bin = std::fs::read(dir.join("face_recognition_model.bin")).unwrap();
    std::fs::write(tmp.join("face_recognition_model.bin"), &bin[..bin.len() - 100]).unwrap();
    let e = face_api::descriptor(Path::new(&tmp)).unwrap_err().to_string();
    assert!(e.contains(m) && e.contains("'fc'") && e.contains("short shard"), "{e}");
    std::fs::remove_dir_all(&tmp).ok();
}
