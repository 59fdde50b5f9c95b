//! From the detector's raw outputs to boxes on the host: sigmoid scores, anchor decoding,
//! per-class NMS and the top detections (the same rule as the graph's `Nms` op, which the
//! inference program runs on the device; this is the host check of it).

use super::targets::{Anchor, BoxCoder, iou};
use crate::vision::BBox;

/// Thresholds of the final detections.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeRule {
    /// Scores at or below this are dropped.
    pub score_threshold: f32,
    /// A box is suppressed by a kept box of its class overlapping it by more than this.
    pub iou_threshold: f32,
    /// Detections kept per image (and candidates per class).
    pub max_detections: usize,
}

impl Default for DecodeRule {
    /// Evaluation settings: score > 0.01, IoU 0.5, 100 detections (COCO's maxDets).
    fn default() -> Self {
        DecodeRule {
            score_threshold: 0.01,
            iou_threshold: 0.5,
            max_detections: 100,
        }
    }
}

/// The logistic function.
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Decodes one image's outputs (`logits` `(anchors, classes)`, `offsets` `(anchors, 4)`) into
/// detections in relative corners, best first.
pub fn decode_host(
    anchors: &[Anchor],
    coder: &BoxCoder,
    classes: usize,
    logits: &[f32],
    offsets: &[f32],
    rule: &DecodeRule,
) -> Vec<(BBox, f32)> {
    let boxes: Vec<[f32; 4]> = anchors
        .iter()
        .enumerate()
        .map(|(a, anchor)| {
            let t = [
                offsets[a * 4],
                offsets[a * 4 + 1],
                offsets[a * 4 + 2],
                offsets[a * 4 + 3],
            ];
            coder.decode(&t, anchor)
        })
        .collect();
    let mut kept: Vec<(usize, usize, f32)> = Vec::new();
    for c in 0..classes {
        let mut cand: Vec<(usize, f32)> = (0..anchors.len())
            .map(|a| (a, sigmoid(logits[a * classes + c])))
            .filter(|&(_, s)| s > rule.score_threshold)
            .collect();
        cand.sort_by(|x, y| y.1.partial_cmp(&x.1).unwrap_or(std::cmp::Ordering::Equal));
        let mut keep: Vec<(usize, f32)> = Vec::new();
        for (a, s) in cand {
            if keep.len() == rule.max_detections {
                break;
            }
            if keep
                .iter()
                .all(|&(j, _)| iou(&boxes[a], &boxes[j]) <= rule.iou_threshold)
            {
                keep.push((a, s));
            }
        }
        kept.extend(keep.into_iter().map(|(a, s)| (c, a, s)));
    }
    kept.sort_by(|x, y| y.2.partial_cmp(&x.2).unwrap_or(std::cmp::Ordering::Equal));
    kept.truncate(rule.max_detections);
    kept.into_iter()
        .map(|(c, a, s)| {
            let b = boxes[a];
            (BBox::new(b[0], b[1], b[2], b[3], c as u32), s)
        })
        .collect()
}
