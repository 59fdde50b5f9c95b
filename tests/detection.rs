//! Detection across the crates: the loss in the step program against its host formula, a few
//! training steps on synthetic shapes, the device's NMS against the reference interpreter,
//! `fovea detect train|eval|predict` end to end, and `fovea detect` on bad input.

mod common;

use common::{fovea, text};
use fovea::engine::dataset::Dataset;
use fovea::engine::{CompiledModel, FitOptions, NamedArrays, Verbosity};
use fovea::graph::Tensor;
use fovea::graph::init::Rng;
use fovea::graph::train::{CompileConfig, Optimizer};
use fovea::models::tasks::detection::loss::{
    BOX_TARGET, BOX_WEIGHT, CLS_TARGET, CLS_WEIGHT, DetectionLoss, reference_loss,
};
use fovea::models::tasks::detection::shapes::ShapesSet;
use fovea::models::tasks::detection::train::{TrainSettings, target_stream};
use fovea::models::zoo::detection::{IMAGE_INPUT, SsdLiteConfig, ssd_lite};
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
