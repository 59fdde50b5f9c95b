//! MediaPipe's BlazeFace face detector around its TFLite model: the SSD anchors MediaPipe's
//! `SsdAnchorsCalculator` generates, the decoding of `TensorsToDetectionsCalculator`
//! (regressors `(anchors, 16)`: box centre offsets and size in input pixels, then six
//! keypoints) and the weighted non-maximum suppression of `NonMaxSuppressionCalculator`
//! (`WEIGHTED`: each kept face is the score-weighted mean of the boxes it suppresses).
//! Settings are those of MediaPipe's `face_detection_short_range` and `_full_range` graphs.
//! [`detect_faces`] runs the whole pipeline on a photo: letterboxed into the square input (black
//! bars, as MediaPipe's `ImageToTensorCalculator` with `keep_aspect_ratio`), RGB in `[-1, 1]`,
//! the model, decoding, suppression, and the faces mapped back to the photo's pixels.

use std::sync::Arc;

use fovea_engine::{Device, NamedArrays, predict_arrays};
use fovea_graph::{Model, Tensor};

use super::targets::iou;
use crate::vision::letterbox::letterbox;
use crate::vision::{Image, Normalization, images_to_tensor};
use crate::{DataError, Result};

/// One variant's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct BlazeFaceSpec {
    /// Input side (square), pixels.
    pub input: usize,
    /// `(stride, anchors per cell)` of each grid, in the model's output order.
    pub grids: Vec<(usize, usize)>,
    /// Faces must score above this.
    pub min_score: f32,
    /// Boxes overlapping a kept face by more than this IoU join it.
    pub min_suppression: f32,
}

impl BlazeFaceSpec {
    /// Short range (faces within ~2 m): 128x128, 896 anchors (16x16x2 + 8x8x6), score 0.5.
    pub fn short_range() -> BlazeFaceSpec {
        BlazeFaceSpec {
            input: 128,
            grids: vec![(8, 2), (16, 6)],
            min_score: 0.5,
            min_suppression: 0.3,
        }
    }

    /// Full range (faces within ~5 m): 192x192, 2304 anchors (48x48x1), score 0.6.
    pub fn full_range() -> BlazeFaceSpec {
        BlazeFaceSpec {
            input: 192,
            grids: vec![(4, 1)],
            min_score: 0.6,
            min_suppression: 0.3,
        }
    }

    /// The anchor centres, relative to the input (MediaPipe's fixed-size anchors: width and
    /// height 1, so offsets are in input units).
    pub fn anchors(&self) -> Vec<(f32, f32)> {
        let mut out = Vec::new();
        for &(stride, per_cell) in &self.grids {
            let g = self.input.div_ceil(stride);
            for y in 0..g {
                for x in 0..g {
                    let c = ((x as f32 + 0.5) / g as f32, (y as f32 + 0.5) / g as f32);
                    out.extend(std::iter::repeat_n(c, per_cell));
                }
            }
        }
        out
    }
}

/// A detected face: box corners and six keypoints (eyes, nose, mouth, ears), relative to the
/// input ([`decode`], [`weighted_nms`]) or in photo pixels ([`detect_faces`]), and the score.
#[derive(Debug, Clone, PartialEq)]
pub struct Face {
    /// `(xmin, ymin, xmax, ymax)`.
    pub bbox: [f32; 4],
    /// `(x, y)` of right eye, left eye, nose tip, mouth, right ear tragion, left ear tragion.
    pub keypoints: [(f32, f32); 6],
    /// The face score.
    pub score: f32,
}

/// Decodes `regressors` `(anchors, 16)` and `scores` `(anchors,)` logits into faces above the
/// spec's score, best first (before suppression).
pub fn decode(spec: &BlazeFaceSpec, regressors: &[f32], scores: &[f32]) -> Vec<Face> {
    let anchors = spec.anchors();
    let scale = spec.input as f32;
    let mut faces = Vec::new();
    for (a, &(ax, ay)) in anchors.iter().enumerate() {
        let (Some(r), Some(&logit)) = (regressors.get(a * 16..a * 16 + 16), scores.get(a)) else {
            break;
        };
        let score = 1.0 / (1.0 + (-logit.clamp(-100.0, 100.0)).exp());
        if score <= spec.min_score {
            continue;
        }
        let (cx, cy) = (ax + r[0] / scale, ay + r[1] / scale);
        let (w, h) = (r[2] / scale, r[3] / scale);
        let mut keypoints = [(0.0, 0.0); 6];
        for (k, kp) in keypoints.iter_mut().enumerate() {
            *kp = (ax + r[4 + 2 * k] / scale, ay + r[5 + 2 * k] / scale);
        }
        faces.push(Face {
            bbox: [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0],
            keypoints,
            score,
        });
    }
    faces.sort_by(|a, b| b.score.partial_cmp(&a.score).unwrap_or(std::cmp::Ordering::Equal));
    faces
}

/// MediaPipe's weighted NMS: take the best remaining face, gather every remaining face that
/// overlaps it by more than `min_suppression` (itself included), and keep their score-weighted
/// mean box and keypoints with the best score.
pub fn weighted_nms(mut faces: Vec<Face>, min_suppression: f32) -> Vec<Face> {
    faces.sort_by(|a, b| b.score.partial_cmp(&a.score).unwrap_or(std::cmp::Ordering::Equal));
    let mut out = Vec::new();
    while let Some(best) = faces.first().cloned() {
        let (cluster, rest): (Vec<Face>, Vec<Face>) = faces
            .into_iter()
            .partition(|f| iou(&f.bbox, &best.bbox) > min_suppression || *f == best);
        faces = rest;
        let total: f32 = cluster.iter().map(|f| f.score).sum();
        let mut merged = Face {
            bbox: [0.0; 4],
            keypoints: [(0.0, 0.0); 6],
            score: best.score,
        };
        for f in &cluster {
            let w = f.score / total;
            for k in 0..4 {
                merged.bbox[k] += w * f.bbox[k];
            }
            for k in 0..6 {
                merged.keypoints[k].0 += w * f.keypoints[k].0;
                merged.keypoints[k].1 += w * f.keypoints[k].1;
            }
        }
        out.push(merged);
    }
    out
}

/// Photos predicted per batch by [`detect_faces_in`].
const BATCH: usize = 32;

/// The model's outputs `(regressors, scores)` for letterboxed inputs `(N, side, side, 3)`, all
/// samples' rows one after another, after checking that it is a BlazeFace of `spec`: one
/// `(side, side, 3)` input, outputs `(anchors, 16)` and `(anchors, 1)`.
fn run_model(device: &Arc<Device>, model: &Model, spec: &BlazeFaceSpec, x: Tensor) -> Result<(Vec<f32>, Vec<f32>)> {
    let a = spec.anchors().len();
    let (ins, outs) = (model.input_shapes(), model.output_shapes());
    let reg = outs.iter().position(|s| *s == [a, 16]);
    let sc = outs.iter().position(|s| *s == [a, 1]);
    let (Some(reg), Some(sc), [input]) = (reg, sc, ins.as_slice()) else {
        return Err(DataError::value(
            "blazeface model",
            format!("expected one input and outputs ({a}, 16) and ({a}, 1), the model has {ins:?} -> {outs:?}"),
        ));
    };
    if *input != [spec.input, spec.input, 3] {
        return Err(DataError::value(
            "blazeface model",
            format!("expected a {0}x{0}x3 input, the model's is {input:?}", spec.input),
        ));
    }
    let name = &model.input_names()[0];
    let batch = x.shape.first().copied().unwrap_or(1).clamp(1, BATCH);
    let mut y = predict_arrays(device, model, &NamedArrays::new().with(name, x), batch)?;
    let scores = std::mem::take(&mut y[sc].1.data);
    Ok((std::mem::take(&mut y[reg].1.data), scores))
}

/// The faces in `photo` (any size, grey or colour), best first, with boxes and keypoints in the
/// photo's pixels. `model` is the TFLite model of `spec` (checked: an error names the model
/// when its input or outputs are not BlazeFace's).
pub fn detect_faces(device: &Arc<Device>, model: &Model, spec: &BlazeFaceSpec, photo: &Image) -> Result<Vec<Face>> {
    Ok(detect_faces_in(device, model, spec, std::slice::from_ref(photo))?.remove(0))
}

/// [`detect_faces`] for many photos in one program (batches of 32): one list of faces per photo.
pub fn detect_faces_in(
    device: &Arc<Device>,
    model: &Model,
    spec: &BlazeFaceSpec,
    photos: &[Image],
) -> Result<Vec<Vec<Face>>> {
    if photos.is_empty() {
        return Ok(Vec::new());
    }
    let side = spec.input;
    let mut boxed = Vec::with_capacity(photos.len());
    let mut fits = Vec::with_capacity(photos.len());
    for photo in photos {
        let (b, fit) = letterbox(&photo.to_rgb(), side, side, 0.0)?;
        boxed.push(b);
        fits.push(fit);
    }
    let x = images_to_tensor(&boxed, &Normalization::SymmetricRange)?;
    let (regressors, scores) = run_model(device, model, spec, x)?;
    let a = spec.anchors().len();
    let s = side as f32;
    Ok(photos
        .iter()
        .zip(&fits)
        .enumerate()
        .map(|(i, (photo, fit))| {
            let faces = decode(
                spec,
                &regressors[i * a * 16..(i + 1) * a * 16],
                &scores[i * a..(i + 1) * a],
            );
            // Relative input coordinates -> input pixels -> photo pixels.
            let back = |x: f32, y: f32| ((x * s - fit.offset_x) / fit.scale, (y * s - fit.offset_y) / fit.scale);
            let (w, h) = (photo.width as f32, photo.height as f32);
            weighted_nms(faces, spec.min_suppression)
                .into_iter()
                .map(|f| {
                    let (x0, y0) = back(f.bbox[0], f.bbox[1]);
                    let (x1, y1) = back(f.bbox[2], f.bbox[3]);
                    Face {
                        bbox: [x0.clamp(0.0, w), y0.clamp(0.0, h), x1.clamp(0.0, w), y1.clamp(0.0, h)],
                        keypoints: f.keypoints.map(|(x, y)| back(x, y)),
                        score: f.score,
                    }
                })
                .collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_anchor_counts_and_centres_are_mediapipes() {
        let s = BlazeFaceSpec::short_range().anchors();
        assert_eq!(s.len(), 896);
        assert_eq!(s[0], (1.0 / 32.0, 1.0 / 32.0));
        assert_eq!(s[1], s[0], "two anchors per 16x16 cell");
        assert_eq!(s[2], (3.0 / 32.0, 1.0 / 32.0));
        assert_eq!(s[512], (1.0 / 16.0, 1.0 / 16.0), "then six per 8x8 cell");
        assert_eq!(s[517], s[512]);
        assert_eq!(s[518], (3.0 / 16.0, 1.0 / 16.0));
        assert_eq!(BlazeFaceSpec::full_range().anchors().len(), 2304);
    }

    #[test]
    fn decoding_and_weighted_suppression_by_hand() {
        let spec = BlazeFaceSpec::short_range();
        let mut reg = vec![0.0f32; 896 * 16];
        let mut scores = vec![-10.0f32; 896];
        // Anchor 0 at (1/32, 1/32): centre moved by (+12.8, 0) px = +0.1, size 25.6 px = 0.2.
        reg[..4].copy_from_slice(&[12.8, 0.0, 25.6, 25.6]);
        scores[0] = 2.0;
        // Anchor 1 (same cell): the same box moved 0.02 right, lower score.
        reg[16..20].copy_from_slice(&[12.8 + 2.56, 0.0, 25.6, 25.6]);
        scores[1] = 0.0;
        scores[2] = 0.1; // sigmoid 0.525 > 0.5: a face of size 0 at anchor 2, apart from the rest.
        let faces = decode(&spec, &reg, &scores);
        assert_eq!(
            faces.len(),
            2,
            "scores at or below 0.5 are dropped (anchor 1 has exactly 0.5)"
        );
        let c = 1.0 / 32.0 + 0.1;
        let f = &faces[0];
        assert!((f.bbox[0] - (c - 0.1)).abs() < 1e-6 && (f.bbox[2] - (c + 0.1)).abs() < 1e-6);
        assert!((f.score - 1.0 / (1.0 + (-2.0f32).exp())).abs() < 1e-6);
        // Weighted NMS of two overlapping faces: the mean box weighted by score.
        let a = Face {
            bbox: [0.0, 0.0, 1.0, 1.0],
            keypoints: [(0.5, 0.5); 6],
            score: 0.9,
        };
        let b = Face {
            bbox: [0.1, 0.0, 1.1, 1.0],
            keypoints: [(0.6, 0.5); 6],
            score: 0.3,
        };
        let far = Face {
            bbox: [5.0, 5.0, 6.0, 6.0],
            keypoints: [(5.5, 5.5); 6],
            score: 0.6,
        };
        let out = weighted_nms(vec![b.clone(), far.clone(), a.clone()], 0.3);
        assert_eq!(out.len(), 2);
        assert!((out[0].bbox[0] - 0.025).abs() < 1e-6 && (out[0].bbox[2] - 1.025).abs() < 1e-6);
        assert!((out[0].keypoints[0].0 - 0.525).abs() < 1e-6 && out[0].score == 0.9);
        assert_eq!(out[1], far);
    }
}
