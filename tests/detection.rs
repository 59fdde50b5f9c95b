//! Detection across the crates: the loss in the step program against its host formula, a few
//! training steps on synthetic shapes, the device's NMS against the reference interpreter,
//! `fovea detect train|eval|predict` end to end, and `fovea detect` on bad input.

mod common;

use common::{fovea, text};
use fovea::engine::dataset::Dataset;
use fovea::engine::npy;
use fovea::engine::{CompiledModel, FitOptions, NamedArrays, Verbosity};
use fovea::graph::Tensor;
use fovea::graph::init::Rng;
use fovea::graph::train::{CompileConfig, Optimizer};
use fovea::models::tasks::detection::blazeface::{BlazeFaceSpec, detect_faces};
use fovea::models::tasks::detection::loss::{
    BOX_TARGET, BOX_WEIGHT, CLS_TARGET, CLS_WEIGHT, DetectionLoss, reference_loss,
};
use fovea::models::tasks::detection::shapes::ShapesSet;
use fovea::models::tasks::detection::train::{TrainSettings, target_stream};
use fovea::models::vision::{BitDepth, Image, write_png};
use fovea::models::zoo::detection::{IMAGE_INPUT, SsdLiteConfig, ssd_lite};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A batch of `n` shape images at 64 px with their targets, stacked.
fn batch(
    cfg: &SsdLiteConfig,
    n: usize,
    seed: u64,
) -> (
    NamedArrays,
    Vec<fovea::models::tasks::detection::targets::DetectionTargets>,
) {
    let stream = target_stream(
        cfg,
        Arc::new(ShapesSet::new(n, cfg.input, seed)),
        &TrainSettings::default(),
    );
    let mut fields: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let mut targets = Vec::new();
    for i in 0..n {
        let ex = stream.get(i, &mut Rng::new(0)).unwrap();
        targets.push(stream.targets(i, &mut Rng::new(0)).unwrap().1);
        for f in &ex.fields {
            match fields.iter_mut().find(|(k, _, _)| *k == f.name) {
                Some((_, _, data)) => data.extend(&f.value.data),
                None => fields.push((f.name.clone(), f.value.shape.clone(), f.value.data.clone())),
            }
        }
    }
    let mut arrays = NamedArrays::new();
    for (name, shape, data) in fields {
        let mut s = vec![n];
        s.extend(shape);
        arrays = arrays.with(&name, Tensor { shape: s, data });
    }
    (arrays, targets)
}

#[test]
fn the_loss_of_the_step_program_is_the_host_formula() {
    let device = common::device();
    let cfg = SsdLiteConfig::new(3, 64);
    let loss = DetectionLoss::default();
    let model = ssd_lite(&cfg, 1).unwrap();
    let cc = CompileConfig::with_terms(loss.terms(), Optimizer::adam(1e-3), vec![]);
    let mut cm = CompiledModel::new(&device, model, cc).unwrap();
    let (arrays, targets) = batch(&cfg, 3, 5);
    assert!(targets.iter().all(|t| t.positives > 0));
    let got = cm.evaluate_arrays(&arrays, 3).unwrap();
    let value = |k: &str| got.iter().find(|(n, _)| n == k).unwrap().1;
    let image = NamedArrays::new().with(IMAGE_INPUT, arrays.get(IMAGE_INPUT).unwrap().clone());
    let outs = cm.predict_arrays(&image, 3).unwrap();
    let refs: Vec<_> = targets.iter().collect();
    let (cls, reg) = reference_loss(&loss, &outs[0].1.data, &outs[1].1.data, &refs);
    assert!(
        (value("cls_loss") - cls).abs() < 1e-3 * cls.max(1.0),
        "{} vs {cls}",
        value("cls_loss")
    );
    assert!(
        (value("box_loss") - reg).abs() < 1e-3 * reg.max(1.0),
        "{} vs {reg}",
        value("box_loss")
    );
    // The targets feed what the names say.
    for name in [CLS_TARGET, CLS_WEIGHT, BOX_TARGET, BOX_WEIGHT] {
        assert!(arrays.get(name).is_some(), "{name}");
    }
}

#[test]
fn a_few_steps_on_shapes_lower_the_loss() {
    let device = common::device();
    let cfg = SsdLiteConfig::new(3, 64);
    let settings = TrainSettings {
        learning_rate: 3e-3,
        warmup_steps: 0,
        ..TrainSettings::default()
    };
    let mut cm = fovea::models::tasks::detection::train::compile(&device, &cfg, &settings, 40).unwrap();
    let stream = target_stream(&cfg, Arc::new(ShapesSet::new(16, 64, 2)), &settings);
    let (arrays, _) = batch(&cfg, 16, 2);
    let before = cm.evaluate_arrays(&arrays, 16).unwrap()[0].1;
    let opts = FitOptions {
        epochs: 10,
        batch_size: 8,
        verbosity: Verbosity::Silent,
        ..FitOptions::default()
    };
    let h = cm.fit_dataset(Arc::new(stream), &opts).unwrap();
    let after = cm.evaluate_arrays(&arrays, 16).unwrap()[0].1;
    let first = h.epochs[0].train[0].1;
    let last = h.epochs.last().unwrap().train[0].1;
    assert!(last < 0.8 * first, "training loss {first} -> {last}");
    assert!(after < before, "evaluation loss {before} -> {after}");
}

#[test]
fn bad_detect_input_fails_fast_naming_it_and_writes_nothing() {
    let dir = std::env::temp_dir().join(format!("fovea-detect-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("out");
    let m = dir.join("m.json");
    let w = dir.join("w.safetensors");
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    // A data folder that does not exist.
    let o = fovea(&[
        "detect",
        "train",
        "--data",
        "/nonexistent/voc",
        "--save",
        &s(&w),
        "--metrics-json",
        &s(&m),
    ]);
    let err = text(&o);
    assert!(!o.status.success() && err.contains("/nonexistent/voc"), "{err}");
    // An empty split: annotations without any usable box.
    let voc = dir.join("voc");
    std::fs::create_dir_all(voc.join("annotations")).unwrap();
    std::fs::create_dir_all(voc.join("images")).unwrap();
    std::fs::write(
        voc.join("annotations/a.xml"),
        "<annotation><filename>a.jpg</filename><size><width>10</width><height>10</height></size></annotation>",
    )
    .unwrap();
    let o = fovea(&[
        "detect",
        "train",
        "--data",
        &s(&voc),
        "--save",
        &s(&w),
        "--metrics-json",
        &s(&m),
    ]);
    let err = text(&o);
    assert!(
        !o.status.success() && err.contains("annotations") && err.contains("no usable images"),
        "{err}"
    );
    // Weights without their settings file, and weights of another model.
    std::fs::write(&w, b"not safetensors").unwrap();
    let img = dir.join("x.png");
    std::fs::write(&img, b"not a png").unwrap();
    let o = fovea(&["detect", "predict", &s(&img), "--weights", &s(&w), "--out", &s(&out)]);
    let err = text(&o);
    assert!(!o.status.success() && err.contains("w.json"), "{err}");
    std::fs::write(
        dir.join("w.json"),
        r#"{"model": "ssd_lite", "input": 64, "classes": ["a"]}"#,
    )
    .unwrap();
    let o = fovea(&["detect", "predict", &s(&img), "--weights", &s(&w), "--out", &s(&out)]);
    let err = text(&o);
    assert!(!o.status.success() && err.contains("w.safetensors"), "{err}");
    // A bad score.
    let o = fovea(&[
        "detect",
        "predict",
        &s(&img),
        "--weights",
        &s(&w),
        "--out",
        &s(&out),
        "--score",
        "2",
    ]);
    assert!(text(&o).contains("--score"));
    assert!(!out.exists() && !m.exists(), "nothing written on error");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The kinds of candidate sets the NMS tests draw.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Candidates {
    /// Exact copies of the previous box, boxes of zero width and inverted corners among random
    /// ones; the last image has no score above the threshold.
    Mixed,
    /// Jitters of one box: every pair overlaps with IoU above 0.9.
    AllOverlapping,
    /// Disjoint cells: nothing is suppressed.
    Disjoint,
    /// No score above the threshold anywhere.
    BelowThreshold,
}

/// Random candidates for `batched_nms`: boxes `(b, n, 4)` in a 100-pixel frame and scores
/// `(b, n, c)` on a coarse grid (so ties happen), of the given kind.
fn nms_inputs(b: usize, n: usize, c: usize, kind: Candidates, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = Rng::new(seed);
    let mut boxes: Vec<f32> = Vec::with_capacity(b * n * 4);
    for i in 0..b * n {
        let (x, y) = (rng.uniform_in(0.0, 90.0) as f32, rng.uniform_in(0.0, 90.0) as f32);
        let (w, h) = (rng.uniform_in(2.0, 40.0) as f32, rng.uniform_in(2.0, 40.0) as f32);
        let bx = match kind {
            Candidates::AllOverlapping => [10.0 + x * 0.01, 10.0 + y * 0.01, 50.0 + w * 0.01, 50.0 + h * 0.01],
            Candidates::Disjoint => {
                let k = (i % n) as f32;
                [k * 3.0, 0.0, k * 3.0 + 2.0, 2.0]
            }
            _ => match rng.below(10) {
                0 if i % n > 0 => {
                    let p = &boxes[boxes.len() - 4..];
                    [p[0], p[1], p[2], p[3]]
                }
                1 => [x, y, x, y + h],
                2 => [x + w, y, x, y + h],
                _ => [x, y, x + w, y + h],
            },
        };
        boxes.extend(bx);
    }
    let mut scores: Vec<f32> = (0..b * n * c).map(|_| (rng.below(20) as f32) * 0.05).collect();
    let low = match kind {
        Candidates::Mixed => (b - 1) * n * c,
        Candidates::BelowThreshold => 0,
        _ => scores.len(),
    };
    for s in &mut scores[low..] {
        *s *= 0.1;
    }
    (boxes, scores)
}

#[test]
fn nms_on_the_device_matches_the_reference() {
    use Candidates::*;
    use fovea::graph::ops::{NmsParams, batched_nms};
    // (images, boxes, classes, candidates per class, max detections, kind): one box; odd and
    // prime sizes; more boxes than candidates and candidates than detections; the detector's
    // shape; every kind.
    for (case, (b, n, c, candidates, m, kind)) in [
        (1, 1, 1, 1, 1, Mixed),
        (3, 37, 2, 37, 5, Mixed),
        (2, 300, 3, 100, 20, Mixed),
        (4, 1344, 1, 400, 100, Mixed),
        (3, 53, 2, 53, 10, AllOverlapping),
        (2, 61, 3, 61, 7, Disjoint),
        (1, 5, 2, 5, 40, Disjoint),
        (2, 41, 2, 41, 8, BelowThreshold),
    ]
    .into_iter()
    .enumerate()
    {
        let mut g = fovea::graph::Graph::new();
        let bx = g.input("boxes", fovea::graph::TensorType::f32(vec![b, n, 4])).unwrap();
        let sc = g.input("scores", fovea::graph::TensorType::f32(vec![b, n, c])).unwrap();
        let p = NmsParams {
            iou_threshold: 0.45,
            score_threshold: 0.12,
            max_detections: m,
            candidates,
        };
        let out = batched_nms(&mut g, bx, sc, p, "nms").unwrap();
        g.outputs.push(out);
        let (boxes, scores) = nms_inputs(b, n, c, kind, case as u64);
        let (err, at) = common::gpu_vs_reference(g, &[("boxes".into(), boxes), ("scores".into(), scores)]);
        assert!(err <= 1e-6, "{kind:?} b {b} n {n} c {c}: {err:e} at {at}");
    }
}

fn tflite_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tflite")
        .join(name)
}

/// An RGB image of a `(h, w, 3)` uint8 fixture (values / 255).
fn u8_image(name: &str) -> Image {
    let a = npy::read(&tflite_fixture(name)).unwrap();
    let npy::NpyData::Int(px) = a.data else {
        panic!("{name} is not uint8")
    };
    Image::new(
        a.shape[1],
        a.shape[0],
        3,
        px.iter().map(|&v| v as f32 / 255.0).collect(),
    )
    .unwrap()
}

/// The reference faces of tools/pretrained/make_blazeface_fixture.py (LiteRT's outputs decoded
/// with MediaPipe's published anchors and options): `(score, box, keypoints)`.
fn reference_faces(key: &str) -> Vec<(f32, Vec<f32>, Vec<f32>)> {
    let text = std::fs::read_to_string(tflite_fixture("blazeface_faces.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let nums = |v: &serde_json::Value| -> Vec<f32> {
        let flat: Vec<serde_json::Value> = match v.as_array().unwrap().first() {
            Some(serde_json::Value::Array(_)) => v
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|p| p.as_array().unwrap().clone())
                .collect(),
            _ => v.as_array().unwrap().clone(),
        };
        flat.iter().map(|x| x.as_f64().unwrap() as f32).collect()
    };
    doc[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["score"].as_f64().unwrap() as f32,
                nums(&f["bbox"]),
                nums(&f["keypoints"]),
            )
        })
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The whole BlazeFace pipeline (letterbox, [-1, 1], the imported model, anchors, decoding,
/// weighted NMS, back to pixels) on the very input the reference was computed on: the same
/// faces, boxes and keypoints within 0.3 px of 128, scores within 2e-3.
#[test]
fn blazeface_finds_the_reference_faces_on_the_reference_input() {
    let device = common::device();
    let model = fovea::import::tflite::load(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/pretrained/face_detection_short_range.tflite"),
    )
    .unwrap();
    let photo = u8_image("faces_row_lb128.u8.npy");
    let spec = BlazeFaceSpec::short_range();
    let got = detect_faces(&device, &model, &spec, &photo).unwrap();
    let want = reference_faces("faces_relative");
    assert_eq!(got.len(), want.len(), "{got:?}");
    assert_eq!(want.len(), 3, "three faces in the fixture");
    for (g, (score, bbox, kps)) in got.iter().zip(&want) {
        let px = |v: &[f32]| v.iter().map(|x| x * 128.0).collect::<Vec<_>>();
        let g_kps: Vec<f32> = g.keypoints.iter().flat_map(|&(x, y)| [x, y]).collect();
        assert!((g.score - score).abs() < 2e-3, "score {} vs {score}", g.score);
        assert!(max_diff(&g.bbox, &px(bbox)) < 0.3, "box {:?} vs {:?}", g.bbox, px(bbox));
        assert!(max_diff(&g_kps, &px(kps)) < 0.3, "keypoints {g_kps:?} vs {:?}", px(kps));
    }
    // Another model than BlazeFace: an error naming the model, not a panic.
    let other = fovea::import::tflite::load(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/pretrained/selfie_segmentation.tflite"),
    )
    .unwrap();
    let e = detect_faces(&device, &other, &spec, &photo).unwrap_err().to_string();
    assert!(e.contains("blazeface model"), "{e}");
}

/// `fovea detect predict --pretrained blazeface` on the fixture's picture (276x112, letterboxed
/// by Fovea: its bilinear resize is not Pillow's, hence the looser bounds) and on the person
/// photo, where LiteRT's own outputs score no anchor above 0.5: no face.
#[test]
fn detect_predict_blazeface_draws_the_reference_faces() {
    let dir = std::env::temp_dir().join(format!("fovea-blazeface-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let person = dir.join("person128.png");
    write_png(&person, &u8_image("photo128.u8.npy"), BitDepth::Eight).unwrap();
    let logits = npy::read_f32(&tflite_fixture("blazeface_short.photo.y1.npy"))
        .unwrap()
        .data;
    let best = logits.iter().fold(f32::MIN, |m, &v| m.max(v));
    assert!(
        1.0 / (1.0 + (-best).exp()) < 0.5,
        "LiteRT scores no face on the person photo"
    );
    let row = tflite_fixture("faces_row.png");
    let out = dir.join("out");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let o = fovea(&[
        "detect",
        "predict",
        "--pretrained",
        "blazeface",
        &s(&row),
        &s(&person),
        "--out",
        &s(&out),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("detections.json")).unwrap()).unwrap();
    let dets = json[0]["detections"].as_array().unwrap();
    let want = reference_faces("faces_pixels");
    assert_eq!(dets.len(), want.len(), "{json}");
    for (d, (score, bbox, _)) in dets.iter().zip(&want) {
        let b: Vec<f32> = d["bbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let got_score = d["score"].as_f64().unwrap() as f32;
        assert!((got_score - score).abs() < 0.04, "score {got_score} vs {score}");
        assert!(max_diff(&b, bbox) < 4.0, "box {b:?} vs {bbox:?}");
    }
    assert_eq!(json[1]["detections"].as_array().unwrap().len(), 0, "{json}");
    assert!(out.join("faces_row.png").is_file() && out.join("person128.png").is_file());
    // A corrupt image among good ones: an error naming it, nothing written.
    let bad = dir.join("bad.png");
    std::fs::write(&bad, b"not a png").unwrap();
    let out2 = dir.join("out2");
    let o = fovea(&[
        "detect",
        "predict",
        "--pretrained",
        "blazeface",
        &s(&row),
        &s(&bad),
        "--out",
        &s(&out2),
    ]);
    assert!(!o.status.success() && text(&o).contains("bad.png"), "{}", text(&o));
    assert!(!out2.exists(), "nothing written on error");
    let o = fovea(&[
        "detect",
        "predict",
        "--pretrained",
        "yolo",
        &s(&row),
        "--out",
        &s(&out2),
    ]);
    assert!(
        !o.status.success() && text(&o).contains("--pretrained yolo"),
        "{}",
        text(&o)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The device's inference program (sigmoid, anchor decoding and `Nms` as graph nodes) gives the
/// detections of the host decoding (`decode_host`) of the same model's raw outputs, a short last
/// batch included. The class biases are spread over [-3, 3] so that scores spread too (the
/// prior 0.01 would put them all at the threshold).
#[test]
fn the_device_inference_program_gives_the_host_decoding() {
    use fovea::models::tasks::detection::decode::{DecodeRule, decode_host};
    use fovea::models::tasks::detection::evaluate::device_detector;
    use fovea::models::tasks::detection::inference::InferenceProgram;
    use fovea::models::tasks::detection::targets::{BoxCoder, anchors};
    let device = common::device();
    let cfg = SsdLiteConfig::new(3, 64);
    let mut model = ssd_lite(&cfg, 4).unwrap();
    let mut rng = Rng::new(11);
    for k in 0..cfg.levels.len() {
        let n = cfg.levels[k].per_cell() * cfg.classes;
        let data = (0..n).map(|_| rng.uniform_in(-3.0, 3.0) as f32).collect();
        model
            .set_weight(&format!("cls{}_out/bias", k + 1), Tensor { shape: vec![n], data })
            .unwrap();
    }
    let (anchors, coder) = (anchors(&cfg), BoxCoder::default());
    let rule = DecodeRule {
        score_threshold: 0.05,
        iou_threshold: 0.45,
        max_detections: 20,
    };
    let (arrays, _) = batch(&cfg, 3, 8);
    let x = arrays.get(IMAGE_INPUT).unwrap().clone();
    let raw =
        fovea::engine::predict_arrays(&device, &model, &NamedArrays::new().with(IMAGE_INPUT, x.clone()), 3).unwrap();
    let (a, c) = (anchors.len(), cfg.classes);
    let program = InferenceProgram::new(&device, &model, &anchors, &coder, rule, 4).unwrap();
    let got = device_detector(&program)(x).unwrap();
    assert_eq!(got.len(), 3, "the padded fourth image is dropped");
    let mut total = 0;
    for (k, dets) in got.iter().enumerate() {
        let want = decode_host(
            &anchors,
            &coder,
            c,
            &raw[0].1.data[k * a * c..(k + 1) * a * c],
            &raw[1].1.data[k * a * 4..(k + 1) * a * 4],
            &rule,
        );
        assert_eq!(dets.len(), want.len(), "image {k}");
        for ((gb, gs), (wb, ws)) in dets.iter().zip(&want) {
            assert_eq!(gb.class, wb.class, "image {k}");
            assert!((gs - ws).abs() < 1e-5, "image {k}: score {gs} vs {ws}");
            let d = [
                gb.xmin - wb.xmin,
                gb.ymin - wb.ymin,
                gb.xmax - wb.xmax,
                gb.ymax - wb.ymax,
            ];
            assert!(d.iter().all(|v| v.abs() < 1e-4), "image {k}: {gb:?} vs {wb:?}");
        }
        total += dets.len();
    }
    assert!(total > 10 && got.iter().all(|d| d.len() <= 20), "{total} detections");
}

/// `fovea detect train`, then `eval` and `predict` with the saved weights: eval's figures
/// (decoding and NMS on the device) are train's own test figures (decoding on the host), the
/// COCO files and the drawn pictures are written, and weights without their settings fail.
#[test]
fn detect_train_eval_predict_end_to_end_on_shapes() {
    let dir = std::env::temp_dir().join(format!("fovea-detect-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let o = fovea(&[
        "detect",
        "train",
        "--synthetic",
        "16",
        "--epochs",
        "1",
        "--input",
        "64",
        "--batch-size",
        "8",
        "--save",
        &p("w.safetensors"),
        "--metrics-json",
        &p("train.json"),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = fovea(&[
        "detect",
        "eval",
        "--synthetic",
        "16",
        "--weights",
        &p("w.safetensors"),
        "--metrics-json",
        &p("eval.json"),
        "--coco-gt",
        &p("gt.json"),
        "--coco-results",
        &p("dt.json"),
        "--batch-size",
        "3",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
    };
    let (train, eval) = (read("train.json"), read("eval.json"));
    for key in ["ap", "ap50", "ap75", "recall", "voc_ap50", "images"] {
        let (t, e) = (train["test"][key].as_f64().unwrap(), eval[key].as_f64().unwrap());
        assert!((t - e).abs() < 1e-6, "{key}: train's test {t}, eval {e}");
    }
    assert_eq!(read("gt.json")["images"].as_array().unwrap().len(), 4);
    assert!(
        read("dt.json")
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["bbox"].as_array().unwrap().len() == 4)
    );
    let img = tflite_fixture("faces_row.png");
    let o = fovea(&[
        "detect",
        "predict",
        img.to_str().unwrap(),
        "--weights",
        &p("w.safetensors"),
        "--out",
        &p("out"),
        "--score",
        "0.2",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(dir.join("out/faces_row.png").is_file());
    let dets = read("out/detections.json");
    assert!(
        dets[0]["detections"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["score"].as_f64().unwrap() > 0.2)
    );
    // The data's classes must be the weights'.
    std::fs::write(
        dir.join("w.json"),
        r#"{"model": "ssd_lite", "input": 64, "classes": ["a", "b", "c"]}"#,
    )
    .unwrap();
    let o = fovea(&[
        "detect",
        "eval",
        "--synthetic",
        "16",
        "--weights",
        &p("w.safetensors"),
        "--metrics-json",
        &p("e2.json"),
    ]);
    assert!(!o.status.success() && text(&o).contains("classes"), "{}", text(&o));
    assert!(!dir.join("e2.json").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
