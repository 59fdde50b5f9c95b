//! Running a trained detector over a test source: predictions in original-image pixels,
//! COCO and VOC figures, and the COCO JSON files any COCO tool reads.

use std::sync::Arc;

use fovea_engine::fit::{CompiledModel, NamedArrays};
use fovea_graph::Tensor;
use fovea_graph::init::Rng;

use super::data::{INPUT_NORMALIZATION, SampleSource};
use super::decode::{DecodeRule, decode_host};
use super::inference::InferenceProgram;
use super::metrics::{CocoMetrics, ImageEval, coco_metrics, voc_ap50};
use super::targets::{Anchor, BoxCoder};
use crate::Result;
use crate::vision::{BBox, image_to_tensor};
use crate::zoo::detection::{BOXES_OUTPUT, CLASSES_OUTPUT, IMAGE_INPUT, SsdLiteConfig};

/// One evaluated image: its name, size, ground truth and detections, in its own pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluated {
    /// The file name.
    pub name: String,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Ground truth and detections.
    pub eval: ImageEval,
}

/// The figures `fovea detect eval` reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalReport {
    /// COCO's summary.
    pub coco: CocoMetrics,
    /// VOC all-point AP@0.5.
    pub voc_ap50: f64,
    /// Images evaluated.
    pub images: usize,
}

/// Relative corners to `(width, height)` pixels (the detector's input is the image stretched).
pub fn to_pixels(b: &BBox, width: usize, height: usize) -> BBox {
    b.scaled(width as f32, height as f32).clip(width as f32, height as f32)
}

/// A detector: images `(n, side, side, 3)` (normalised) to each image's detections in
/// relative corners, best first.
pub type Detect<'a> = dyn FnMut(Tensor) -> Result<Vec<Vec<(BBox, f32)>>> + 'a;

/// A detector that runs a compiled (training) model and decodes on the host
/// ([`decode_host`]): used between training epochs, where the weights live in the trainer.
pub fn host_detector<'a>(
    cm: &'a mut CompiledModel,
    cfg: &'a SsdLiteConfig,
    anchors: &'a [Anchor],
    coder: &'a BoxCoder,
    rule: DecodeRule,
) -> impl FnMut(Tensor) -> Result<Vec<Vec<(BBox, f32)>>> + 'a {
    move |x| {
        let n = x.shape[0];
        let outs = cm.predict_arrays(&NamedArrays::new().with(IMAGE_INPUT, x), n)?;
        let get = |name: &str| outs.iter().find(|(k, _)| k == name).map(|(_, t)| t);
        let (Some(logits), Some(offsets)) = (get(CLASSES_OUTPUT), get(BOXES_OUTPUT)) else {
            return Err(crate::DataError::value(
                "model",
                "the detector has no classes/boxes outputs",
            ));
        };
        let (a, c) = (anchors.len(), cfg.classes);
        Ok((0..n)
            .map(|k| {
                decode_host(
                    anchors,
                    coder,
                    c,
                    &logits.data[k * a * c..(k + 1) * a * c],
                    &offsets.data[k * a * 4..(k + 1) * a * 4],
                    &rule,
                )
            })
            .collect())
    }
}

/// A detector that runs the whole inference program on the device (decoding and NMS
/// included); a short last batch is padded with zeros.
pub fn device_detector(program: &InferenceProgram) -> impl FnMut(Tensor) -> Result<Vec<Vec<(BBox, f32)>>> + '_ {
    move |x| {
        let n = x.shape[0];
        let per = x.data.len() / n.max(1);
        let mut data = x.data;
        data.resize(program.batch() * per, 0.0);
        let mut out = program.run(&data)?;
        out.truncate(n);
        Ok(out)
    }
}

/// Runs `detect` over every image of `source` (at `side` pixels) in batches of `batch` and
/// returns the detections in original-image pixels beside the ground truth.
pub fn predict_source(
    detect: &mut Detect<'_>,
    side: usize,
    source: &Arc<dyn SampleSource>,
    batch: usize,
) -> Result<Vec<Evaluated>> {
    let n = source.len();
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    while start < n {
        let end = (start + batch.max(1)).min(n);
        let mut data = Vec::with_capacity((end - start) * side * side * 3);
        for i in start..end {
            let s = source.sample(i, &mut Rng::new(0))?;
            data.extend(image_to_tensor(&s.image, &INPUT_NORMALIZATION)?.data);
        }
        let x = Tensor {
            shape: vec![end - start, side, side, 3],
            data,
        };
        let dets = detect(x)?;
        for (i, d) in (start..end).zip(dets) {
            let (width, height, truth, name) = source.original(i)?;
            out.push(Evaluated {
                name,
                width,
                height,
                eval: ImageEval {
                    truth,
                    detections: d.iter().map(|(b, s)| (to_pixels(b, width, height), *s)).collect(),
                },
            });
        }
        start = end;
    }
    Ok(out)
}

/// COCO and VOC figures over evaluated images.
pub fn report(images: &[Evaluated], classes: usize, max_dets: usize) -> EvalReport {
    let evals: Vec<ImageEval> = images.iter().map(|e| e.eval.clone()).collect();
    EvalReport {
        coco: coco_metrics(&evals, classes, max_dets),
        voc_ap50: voc_ap50(&evals, classes),
        images: images.len(),
    }
}

/// The floor of the issue: one box per image, the mean ground-truth box of the training set in
/// relative coordinates (score 1, class 0), evaluated on `test`.
pub fn mean_box_floor(train: &Arc<dyn SampleSource>, test: &Arc<dyn SampleSource>) -> Result<EvalReport> {
    let mut sum = [0f64; 4];
    let mut count = 0usize;
    for i in 0..train.len() {
        let (w, h, boxes, _) = train.original(i)?;
        for b in boxes {
            sum[0] += (b.xmin / w as f32) as f64;
            sum[1] += (b.ymin / h as f32) as f64;
            sum[2] += (b.xmax / w as f32) as f64;
            sum[3] += (b.ymax / h as f32) as f64;
            count += 1;
        }
    }
    let m: Vec<f32> = sum.iter().map(|v| (v / count.max(1) as f64) as f32).collect();
    let mean = BBox::new(m[0], m[1], m[2], m[3], 0);
    let mut images = Vec::new();
    for i in 0..test.len() {
        let (width, height, truth, name) = test.original(i)?;
        images.push(Evaluated {
            name,
            width,
            height,
            eval: ImageEval {
                truth,
                detections: vec![(to_pixels(&mean, width, height), 1.0)],
            },
        });
    }
    Ok(report(&images, 1, 100))
}

/// COCO ground truth (`images`, `annotations`, `categories`; ids from 1) of evaluated images.
pub fn coco_ground_truth(images: &[Evaluated], classes: &[String]) -> serde_json::Value {
    let mut anns = Vec::new();
    for (i, e) in images.iter().enumerate() {
        for b in &e.eval.truth {
            anns.push(serde_json::json!({
                "id": anns.len() + 1,
                "image_id": i + 1,
                "category_id": b.class + 1,
                "bbox": [b.xmin, b.ymin, b.width(), b.height()],
                "area": b.width() * b.height(),
                "iscrowd": 0,
            }));
        }
    }
    serde_json::json!({
        "images": images.iter().enumerate().map(|(i, e)| serde_json::json!({
            "id": i + 1, "file_name": e.name, "width": e.width, "height": e.height,
        })).collect::<Vec<_>>(),
        "annotations": anns,
        "categories": classes.iter().enumerate().map(|(k, name)| serde_json::json!({
            "id": k + 1, "name": name,
        })).collect::<Vec<_>>(),
    })
}

/// COCO results: `[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}]`.
pub fn coco_results(images: &[Evaluated]) -> serde_json::Value {
    let mut out = Vec::new();
    for (i, e) in images.iter().enumerate() {
        for (b, s) in &e.eval.detections {
            out.push(serde_json::json!({
                "image_id": i + 1,
                "category_id": b.class + 1,
                "bbox": [b.xmin, b.ymin, b.width(), b.height()],
                "score": s,
            }));
        }
    }
    serde_json::Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::detection::metrics::ImageEval;

    /// Random ground truth over `classes` classes and detections near it (jittered copies,
    /// duplicates, misses) plus up to `noise` noise boxes per image (exactly `noise` above 100), all with random scores and
    /// some tied scores.
    fn random_images(seed: u64, n: usize, classes: u32, noise: usize) -> Vec<Evaluated> {
        let mut rng = Rng::new(seed);
        let mut u = |lo: f64, hi: f64| rng.uniform_in(lo, hi) as f32;
        let mut images = Vec::new();
        for i in 0..n {
            let (w, h) = (320usize, 240usize);
            let mut truth = Vec::new();
            let mut detections = Vec::new();
            let count = (u(0.0, 5.0)) as usize;
            for _ in 0..count {
                let (bw, bh) = (u(8.0, 150.0), u(8.0, 150.0));
                let (x, y) = (u(0.0, w as f64 - bw as f64), u(0.0, h as f64 - bh as f64));
                let class = (u(0.0, classes as f64) as u32).min(classes - 1);
                let b = BBox::new(x, y, x + bw, y + bh, class);
                truth.push(b);
                for _ in 0..(u(0.0, 3.0) as usize) {
                    let j = u(0.0, 0.3) * bw.min(bh);
                    let d = b.shifted(u(-1.0, 1.0) * j, u(-1.0, 1.0) * j);
                    let score = if u(0.0, 1.0) < 0.2 { 0.5 } else { u(0.0, 1.0) };
                    detections.push((d, score));
                }
            }
            let noise_boxes = if noise > 100 {
                noise
            } else {
                u(0.0, noise as f64 + 1.0) as usize
            };
            for _ in 0..noise_boxes {
                let (bw, bh) = (u(4.0, 120.0), u(4.0, 120.0));
                let (x, y) = (u(0.0, 200.0), u(0.0, 120.0));
                let class = (u(0.0, classes as f64) as u32).min(classes - 1);
                detections.push((BBox::new(x, y, x + bw, y + bh, class), u(0.0, 1.0)));
            }
            images.push(Evaluated {
                name: format!("img{i}.jpg"),
                width: w,
                height: h,
                eval: ImageEval { truth, detections },
            });
        }
        images
    }

    #[test]
    fn the_coco_figures_match_hotcoco_on_random_detections() {
        let dir = std::env::temp_dir().join(format!("fovea-hotcoco-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Few and many images; some with more than COCO's 100 detections per image and class.
        // (Recalls are ratios of small integers: with enough cases some land on a recall point,
        // where numpy's rounding of the grid decides.)
        let mut nontrivial = 0;
        for seed in 0..40u64 {
            let classes = 1 + (seed % 3) as u32;
            let (n, noise) = [(12, 3), (5, 3), (20, 3), (3, 400)][seed as usize % 4];
            let images = random_images(seed, n, classes, noise);
            let names: Vec<String> = (0..classes).map(|c| format!("class{c}")).collect();
            let (gt, dt) = (dir.join(format!("gt{seed}.json")), dir.join(format!("dt{seed}.json")));
            std::fs::write(&gt, coco_ground_truth(&images, &names).to_string()).unwrap();
            std::fs::write(&dt, coco_results(&images).to_string()).unwrap();
            let coco_gt = hotcoco::COCO::new(&gt).unwrap();
            let coco_dt = coco_gt.load_res(&dt).unwrap();
            let mut ev = hotcoco::COCOeval::new(coco_gt, coco_dt, hotcoco::params::IouType::Bbox);
            ev.evaluate().unwrap();
            ev.accumulate();
            ev.summarize_lines();
            let stats = ev.stats().expect("hotcoco's summary").to_vec();
            let ours = report(&images, classes as usize, 100).coco;
            let pairs = [
                ("ap", ours.ap, stats[0]),
                ("ap50", ours.ap50, stats[1]),
                ("ap75", ours.ap75, stats[2]),
                ("ap_small", ours.ap_small, stats[3]),
                ("ap_medium", ours.ap_medium, stats[4]),
                ("ap_large", ours.ap_large, stats[5]),
                ("recall", ours.recall, stats[8]),
            ];
            for (name, a, b) in pairs {
                assert!((a - b).abs() < 1e-9, "seed {seed} {name}: ours {a}, hotcoco {b}");
            }
            if ours.ap50 > 0.0 && ours.ap50 < 0.99 {
                nontrivial += 1;
            }
            if noise > 100 {
                let most = (0..classes)
                    .map(|c| images[0].eval.detections.iter().filter(|d| d.0.class == c).count())
                    .max();
                assert!(most > Some(100), "seed {seed}: more than 100 detections of a class");
            }
        }
        assert!(
            nontrivial >= 30,
            "cases that can fail: {nontrivial} of 40 strictly inside (0, 1)"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn coco_json_has_the_fields_coco_tools_read() {
        let images = random_images(9, 3, 2, 3);
        let gt = coco_ground_truth(&images, &["a".into(), "b".into()]);
        assert_eq!(gt["images"][0]["file_name"], "img0.jpg");
        assert_eq!(gt["images"][0]["width"], 320);
        assert_eq!(gt["categories"][1]["id"], 2);
        let first = &images.iter().find(|e| !e.eval.truth.is_empty()).unwrap().eval.truth[0];
        let ann = &gt["annotations"][0];
        assert!((ann["bbox"][2].as_f64().unwrap() - first.width() as f64).abs() < 1e-4);
        let dt = coco_results(&images);
        assert!(dt[0]["score"].is_number() && dt[0]["bbox"].as_array().unwrap().len() == 4);
    }
}
