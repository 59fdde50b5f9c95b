//! Running a trained detector over a test source: predictions in original-image pixels,
//! COCO and VOC figures, and the COCO JSON files any COCO tool reads.

use std::sync::Arc;

use fovea_engine::fit::{CompiledModel, NamedArrays};
use fovea_graph::Tensor;
use fovea_graph::init::Rng;

use super::data::{INPUT_NORMALIZATION, SampleSource};
use super::decode::{DecodeRule, decode_host};
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

/// Runs `cm` over every image of `source` in batches of `batch` and decodes the detections.
pub fn predict_source(
    cm: &mut CompiledModel,
    cfg: &SsdLiteConfig,
    anchors: &[Anchor],
    coder: &BoxCoder,
    source: &Arc<dyn SampleSource>,
    rule: &DecodeRule,
    batch: usize,
) -> Result<Vec<Evaluated>> {
    let n = source.len();
    let mut out = Vec::with_capacity(n);
    let side = cfg.input;
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
        let outs = cm.predict_arrays(&NamedArrays::new().with(IMAGE_INPUT, x), batch)?;
        let get = |name: &str| outs.iter().find(|(k, _)| k == name).map(|(_, t)| t);
        let (Some(logits), Some(offsets)) = (get(CLASSES_OUTPUT), get(BOXES_OUTPUT)) else {
            return Err(crate::DataError::value(
                "model",
                "the detector has no classes/boxes outputs",
            ));
        };
        let (a, c) = (anchors.len(), cfg.classes);
        for (k, i) in (start..end).enumerate() {
            let dets = decode_host(
                anchors,
                coder,
                c,
                &logits.data[k * a * c..(k + 1) * a * c],
                &offsets.data[k * a * 4..(k + 1) * a * 4],
                rule,
            );
            let (width, height, truth, name) = source.original(i)?;
            out.push(Evaluated {
                name,
                width,
                height,
                eval: ImageEval {
                    truth,
                    detections: dets.iter().map(|(b, s)| (to_pixels(b, width, height), *s)).collect(),
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
