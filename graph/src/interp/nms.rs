//! `Nms`: per-class greedy non-maximum suppression and the top detections of each image, the
//! CPU reference of `kernels/wgsl/nms.wgsl` (see [`crate::ir::Op::Nms`] for the semantics).

use super::Arg;

/// The intersection over union of two corner boxes `(xmin, ymin, xmax, ymax)`; a box with
/// `xmax < xmin` (or `ymax < ymin`) has zero area, and IoU is 0 when the union is empty.
pub fn box_iou(a: &[f64], b: &[f64]) -> f64 {
    let area = |r: &[f64]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let union = area(a) + area(b) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// `Nms { iou_threshold, score_threshold, max_detections }` of `scores` `(B, C, K)` and
/// `boxes` `(B, C, K, 4)`: `(B, max_detections, 6)` rows `(xmin, ymin, xmax, ymax, score,
/// class)`, unused rows all -1.
pub(super) fn nms(
    iou_threshold: f32,
    score_threshold: f32,
    max_detections: usize,
    scores: Arg,
    boxes: Arg,
) -> Vec<f64> {
    let (b, c, k) = (scores.0[0], scores.0[1], scores.0[2]);
    let (iou_t, score_t) = (f64::from(iou_threshold), f64::from(score_threshold));
    let mut out = vec![-1.0; b * max_detections * 6];
    for img in 0..b {
        // Per class: the kept candidates, in processing order.
        let mut kept: Vec<Vec<usize>> = vec![Vec::new(); c];
        for (class, keep) in kept.iter_mut().enumerate() {
            let row = (img * c + class) * k;
            for i in 0..k {
                let s = scores.1[row + i];
                // Not above the threshold (a NaN score included): the end of the class.
                if s.partial_cmp(&score_t) != Some(std::cmp::Ordering::Greater) || keep.len() == max_detections {
                    break;
                }
                let bi = &boxes.1[(row + i) * 4..(row + i) * 4 + 4];
                if keep
                    .iter()
                    .all(|&j| box_iou(bi, &boxes.1[(row + j) * 4..(row + j) * 4 + 4]) <= iou_t)
                {
                    keep.push(i);
                }
            }
        }
        // Merge: the highest next score of any class, the lower class on ties.
        let mut heads = vec![0usize; c];
        for slot in 0..max_detections {
            let mut best: Option<(usize, f64)> = None;
            for class in 0..c {
                if let Some(&i) = kept[class].get(heads[class]) {
                    let s = scores.1[(img * c + class) * k + i];
                    if best.is_none_or(|(_, bs)| s > bs) {
                        best = Some((class, s));
                    }
                }
            }
            let Some((class, s)) = best else { break };
            let i = kept[class][heads[class]];
            heads[class] += 1;
            let at = ((img * c + class) * k + i) * 4;
            let o = &mut out[(img * max_detections + slot) * 6..(img * max_detections + slot + 1) * 6];
            o[..4].copy_from_slice(&boxes.1[at..at + 4]);
            o[4] = s;
            o[5] = class as f64;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_identical_disjoint_and_degenerate_boxes() {
        let a = [0.0, 0.0, 2.0, 2.0];
        assert_eq!(box_iou(&a, &a), 1.0);
        assert!((box_iou(&a, &[1.0, 1.0, 3.0, 3.0]) - 1.0 / 7.0).abs() < 1e-12);
        assert_eq!(box_iou(&a, &[5.0, 5.0, 6.0, 6.0]), 0.0);
        assert_eq!(box_iou(&[1.0, 1.0, 1.0, 1.0], &[1.0, 1.0, 1.0, 1.0]), 0.0);
        assert_eq!(box_iou(&[2.0, 2.0, 0.0, 0.0], &a), 0.0, "inverted corners: zero area");
    }

    #[test]
    fn suppression_by_hand() {
        // One image, two classes, three candidates each (sorted by score).
        // Class 0: box A (0.9), a near copy of A (0.8, IoU 0.9: suppressed), box B (0.7).
        // Class 1: a copy of A (0.85, other class: kept), then 0.3 and 0.1 below the threshold.
        let scores = [0.9, 0.8, 0.7, 0.85, 0.3, 0.1];
        let boxes = [
            0.0, 0.0, 10.0, 10.0, 0.0, 0.0, 10.0, 9.0, 20.0, 20.0, 30.0, 30.0, //
            0.0, 0.0, 10.0, 10.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0,
        ];
        let out = nms(0.5, 0.35, 4, (&[1, 2, 3], &scores), (&[1, 2, 3, 4], &boxes));
        assert_eq!(
            out,
            vec![
                0.0, 0.0, 10.0, 10.0, 0.9, 0.0, //
                0.0, 0.0, 10.0, 10.0, 0.85, 1.0, //
                20.0, 20.0, 30.0, 30.0, 0.7, 0.0, //
                -1.0, -1.0, -1.0, -1.0, -1.0, -1.0,
            ]
        );
        // max_detections 1 keeps only the best; IoU threshold 0.95 keeps the near copy too.
        let one = nms(0.5, 0.35, 1, (&[1, 2, 3], &scores), (&[1, 2, 3, 4], &boxes));
        assert_eq!(one, vec![0.0, 0.0, 10.0, 10.0, 0.9, 0.0]);
        let loose = nms(0.95, 0.35, 4, (&[1, 2, 3], &scores), (&[1, 2, 3, 4], &boxes));
        assert_eq!(loose[6 * 2..6 * 3], [0.0, 0.0, 10.0, 9.0, 0.8, 0.0]);
        // Nothing above the threshold: every row is -1.
        let none = nms(0.5, 0.95, 2, (&[1, 2, 3], &scores), (&[1, 2, 3, 4], &boxes));
        assert!(none.iter().all(|&v| v == -1.0));
    }
}
