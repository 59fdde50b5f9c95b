//! The SSD detector's post-processing as face-api does it (`outputLayer.ts`,
//! `nonMaxSuppression.ts`, `SsdMobilenetv1.locateFaces`): box regressions decoded against the
//! shipped anchors with variances (10, 10, 5, 5), then a greedy NMS over the unclipped boxes,
//! then boxes clipped to the image and scaled to input pixels.

use crate::error::{DataError, Result};

/// A box in normalised `[ymin, xmin, ymax, xmax]` coordinates (the package's order).
pub type NormBox = [f32; 4];

/// A detected face in pixels of the detector's input (`x0 <= x1`, `y0 <= y1`, inside the input).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceBox {
    /// Left edge, pixels.
    pub x0: f32,
    /// Top edge, pixels.
    pub y0: f32,
    /// Right edge, pixels.
    pub x1: f32,
    /// Bottom edge, pixels.
    pub y1: f32,
    /// The face score (sigmoid), in (min_confidence, 1].
    pub score: f32,
    /// Which of the 5118 anchors it came from.
    pub anchor: usize,
}

/// face-api's `SsdMobilenetv1Options` and its fixed NMS overlap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SsdOptions {
    /// Scores must exceed this (package default 0.5).
    pub min_confidence: f32,
    /// At most this many faces (package default 100).
    pub max_results: usize,
    /// A box overlapping a kept one by more than this IoU is dropped (the package uses 0.5).
    pub iou_threshold: f32,
}

impl Default for SsdOptions {
    fn default() -> Self {
        SsdOptions {
            min_confidence: 0.5,
            max_results: 100,
            iou_threshold: 0.5,
        }
    }
}

/// Decodes one image's `(anchors, 4)` regressions `(dy, dx, dh, dw)` against `anchors`
/// (normalised `[ymin, xmin, ymax, xmax]`), as `decodeBoxesLayer` does.
pub fn decode_boxes(encodings: &[f32], anchors: &[NormBox]) -> Result<Vec<NormBox>> {
    if encodings.len() != anchors.len() * 4 {
        return Err(DataError::value(
            "box encodings",
            format!(
                "expected {} values ({} anchors x 4), got {}",
                anchors.len() * 4,
                anchors.len(),
                encodings.len()
            ),
        ));
    }
    Ok(encodings
        .chunks_exact(4)
        .zip(anchors)
        .map(|(e, a)| {
            let (h, w) = (a[2] - a[0], a[3] - a[1]);
            let (cy, cx) = (a[0] + h / 2.0, a[1] + w / 2.0);
            let half_h = (e[2] / 5.0).exp() * h / 2.0;
            let half_w = (e[3] / 5.0).exp() * w / 2.0;
            let y = e[0] / 10.0 * h + cy;
            let x = e[1] / 10.0 * w + cx;
            [y - half_h, x - half_w, y + half_h, x + half_w]
        })
        .collect())
}

/// The package's IoU: corners sorted per axis; 0 when either box has no area.
pub fn iou(a: &NormBox, b: &NormBox) -> f32 {
    let sorted = |v: &NormBox| [v[0].min(v[2]), v[1].min(v[3]), v[0].max(v[2]), v[1].max(v[3])];
    let (a, b) = (sorted(a), sorted(b));
    let area_a = (a[2] - a[0]) * (a[3] - a[1]);
    let area_b = (b[2] - b[0]) * (b[3] - b[1]);
    if area_a <= 0.0 || area_b <= 0.0 {
        return 0.0;
    }
    let ih = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let iw = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = ih * iw;
    inter / (area_a + area_b - inter)
}

/// face-api's greedy NMS: candidates above `min_confidence` by descending score (ties in anchor
/// order), each kept unless it overlaps an already kept box by more than `iou_threshold`.
/// Returns the kept indices, best first.
pub fn non_max_suppression(boxes: &[NormBox], scores: &[f32], opts: &SsdOptions) -> Vec<usize> {
    let mut candidates: Vec<usize> = (0..boxes.len().min(scores.len()))
        .filter(|&i| scores[i] > opts.min_confidence)
        .collect();
    candidates.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let limit = opts.max_results.min(boxes.len());
    let mut kept: Vec<usize> = Vec::new();
    for c in candidates {
        if kept.len() >= limit {
            break;
        }
        let suppressed = kept
            .iter()
            .rev()
            .any(|&k| iou(&boxes[c], &boxes[k]) > opts.iou_threshold);
        if !suppressed {
            kept.push(c);
        }
    }
    kept
}

/// One image's faces: decodes `encodings` `(anchors*4)` against `anchors`, runs the NMS on
/// `scores` `(anchors)`, clips the kept boxes to [0, 1] and scales them to a `width` x `height`
/// input (the detector's is 512 x 512).
pub fn detect_faces(
    encodings: &[f32],
    scores: &[f32],
    anchors: &[NormBox],
    opts: &SsdOptions,
    width: usize,
    height: usize,
) -> Result<Vec<FaceBox>> {
    if scores.len() != anchors.len() {
        return Err(DataError::value(
            "scores",
            format!(
                "expected {} values (one per anchor), got {}",
                anchors.len(),
                scores.len()
            ),
        ));
    }
    if !(opts.min_confidence > 0.0 && opts.min_confidence < 1.0) {
        return Err(DataError::value(
            "min_confidence",
            format!("expected a number between 0 and 1, got {}", opts.min_confidence),
        ));
    }
    let boxes = decode_boxes(encodings, anchors)?;
    let (w, h) = (width as f32, height as f32);
    Ok(non_max_suppression(&boxes, scores, opts)
        .into_iter()
        .map(|i| {
            let b = boxes[i];
            FaceBox {
                x0: b[1].max(0.0) * w,
                y0: b[0].max(0.0) * h,
                x1: b[3].min(1.0) * w,
                y1: b[2].min(1.0) * h,
                score: scores[i],
                anchor: i,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_regressions_give_back_the_anchor() {
        let a = [[0.1, 0.2, 0.5, 0.6]];
        let d = decode_boxes(&[0.0; 4], &a).unwrap();
        for k in 0..4 {
            assert!((d[0][k] - a[0][k]).abs() < 1e-6, "{d:?}");
        }
        // dy = 10 moves the centre by one anchor height; dh = 5 ln 2 doubles the height
        let d = decode_boxes(&[10.0, 0.0, 5.0 * 2f32.ln(), 0.0], &a).unwrap();
        let want = [0.3, 0.2, 1.1, 0.6];
        for k in 0..4 {
            assert!((d[0][k] - want[k]).abs() < 1e-5, "{d:?}");
        }
        assert!(decode_boxes(&[0.0; 3], &a).is_err());
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes_and_separate_ones() {
        let boxes = [
            [0.0, 0.0, 0.5, 0.5],
            [0.0, 0.05, 0.5, 0.55], // best; box 0 overlaps it by IoU 0.225/0.275 = 0.82: dropped
            [0.6, 0.6, 0.9, 0.9],   // apart: kept
            [0.0, 0.3, 0.5, 0.8],   // IoU with box 1 is 0.125/0.375 = 0.33: kept
            [0.6, 0.6, 0.9, 0.9],   // below min_confidence
        ];
        let scores = [0.9, 0.95, 0.7, 0.6, 0.4];
        let kept = non_max_suppression(&boxes, &scores, &SsdOptions::default());
        assert_eq!(kept, vec![1, 2, 3]);
        let one = SsdOptions {
            max_results: 1,
            ..SsdOptions::default()
        };
        assert_eq!(non_max_suppression(&boxes, &scores, &one), vec![1]);
    }

    #[test]
    fn faces_are_clipped_and_scaled_to_input_pixels() {
        let anchors = [[-0.1, 0.25, 0.5, 0.75]];
        let f = detect_faces(&[0.0; 4], &[0.8], &anchors, &SsdOptions::default(), 512, 256).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].x0, f[0].y0, f[0].x1, f[0].y1), (128.0, 0.0, 384.0, 128.0));
        let bad = SsdOptions {
            min_confidence: 1.5,
            ..SsdOptions::default()
        };
        assert!(detect_faces(&[0.0; 4], &[0.8], &anchors, &bad, 512, 512).is_err());
        assert!(detect_faces(&[0.0; 4], &[0.8, 0.1], &anchors, &SsdOptions::default(), 512, 512).is_err());
    }
}
