//! Host-side training targets of a single-shot detector: the anchors, the matching of anchors
//! to ground-truth boxes, and the box encoding with variances (SSD, Liu et al. 2016, sec. 2.2).
//!
//! Coordinates here are relative to the input side: `[0, 1]` in both axes.

use crate::zoo::detection::SsdLiteConfig;

/// An anchor (prior box): centre and size, relative to the input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Anchor {
    /// Centre x.
    pub cx: f32,
    /// Centre y.
    pub cy: f32,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
}

impl Anchor {
    /// As corners `(xmin, ymin, xmax, ymax)`.
    pub fn corners(&self) -> [f32; 4] {
        [
            self.cx - self.w / 2.0,
            self.cy - self.h / 2.0,
            self.cx + self.w / 2.0,
            self.cy + self.h / 2.0,
        ]
    }
}

/// The anchors of `cfg`, in the detector's output order: level by level, then row, column and
/// the cell's anchors (every size at ratio 1, then the first size at each other ratio, with
/// `w = s sqrt(r)`, `h = s / sqrt(r)`).
pub fn anchors(cfg: &SsdLiteConfig) -> Vec<Anchor> {
    let mut out = Vec::with_capacity(cfg.anchor_count());
    for (level, grid) in cfg.levels.iter().zip(cfg.grids()) {
        for y in 0..grid {
            for x in 0..grid {
                let (cx, cy) = ((x as f32 + 0.5) / grid as f32, (y as f32 + 0.5) / grid as f32);
                for &s in &level.sizes {
                    out.push(Anchor { cx, cy, w: s, h: s });
                }
                for &r in &level.ratios {
                    let (s, q) = (level.sizes[0], r.sqrt());
                    out.push(Anchor {
                        cx,
                        cy,
                        w: s * q,
                        h: s / q,
                    });
                }
            }
        }
    }
    out
}

/// Intersection over union of two corner boxes (0 when the union is empty).
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// What an anchor is trained to predict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnchorMatch {
    /// Background: IoU with every box below the negative threshold.
    Negative,
    /// Between the thresholds: no class loss, no box loss.
    Ignore,
    /// Responsible for ground-truth box `index`.
    Positive(usize),
}

/// Matching thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchRule {
    /// An anchor with IoU at least this with some box is positive for its best box.
    pub positive_iou: f32,
    /// An anchor with IoU below this with every box is negative; between the two it is ignored.
    pub negative_iou: f32,
}

impl Default for MatchRule {
    /// SSD's single threshold 0.5 with a RetinaNet-style ignore band down to 0.4.
    fn default() -> Self {
        MatchRule {
            positive_iou: 0.5,
            negative_iou: 0.4,
        }
    }
}

/// Matches anchors to ground-truth corner boxes: every anchor goes to the box it overlaps most
/// (positive at `rule.positive_iou`, negative below `rule.negative_iou`, ignored between); then
/// every box claims its best anchor (the first one on ties) even below the threshold, so that no
/// box is left without a positive. A box without area claims nothing.
pub fn match_anchors(anchors: &[Anchor], boxes: &[[f32; 4]], rule: &MatchRule) -> Vec<AnchorMatch> {
    let corners: Vec<[f32; 4]> = anchors.iter().map(Anchor::corners).collect();
    let mut best_box = vec![(0.0f32, usize::MAX); anchors.len()];
    let mut best_anchor = vec![(0.0f32, usize::MAX); boxes.len()];
    for (a, c) in corners.iter().enumerate() {
        for (b, gt) in boxes.iter().enumerate() {
            let v = iou(c, gt);
            if v > best_box[a].0 {
                best_box[a] = (v, b);
            }
            if v > best_anchor[b].0 {
                best_anchor[b] = (v, a);
            }
        }
    }
    let mut out: Vec<AnchorMatch> = best_box
        .iter()
        .map(|&(v, b)| {
            if b != usize::MAX && v >= rule.positive_iou {
                AnchorMatch::Positive(b)
            } else if v < rule.negative_iou {
                AnchorMatch::Negative
            } else {
                AnchorMatch::Ignore
            }
        })
        .collect();
    for (b, &(v, a)) in best_anchor.iter().enumerate() {
        if a != usize::MAX && v > 0.0 {
            out[a] = AnchorMatch::Positive(b);
        }
    }
    out
}

/// SSD's box encoding: centre offsets in anchor sizes and log size ratios, each divided by its
/// variance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxCoder {
    /// Variances of `(cx, cy, w, h)`.
    pub variances: [f32; 4],
}

impl Default for BoxCoder {
    /// SSD's `(0.1, 0.1, 0.2, 0.2)`.
    fn default() -> Self {
        BoxCoder {
            variances: [0.1, 0.1, 0.2, 0.2],
        }
    }
}

/// The smallest box side the encoder takes the log of (relative units).
const MIN_SIDE: f32 = 1e-6;

impl BoxCoder {
    /// The regression target of corner box `b` for `anchor`.
    pub fn encode(&self, b: &[f32; 4], anchor: &Anchor) -> [f32; 4] {
        let (w, h) = ((b[2] - b[0]).max(MIN_SIDE), (b[3] - b[1]).max(MIN_SIDE));
        let (cx, cy) = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
        let v = self.variances;
        [
            (cx - anchor.cx) / anchor.w / v[0],
            (cy - anchor.cy) / anchor.h / v[1],
            (w / anchor.w).ln() / v[2],
            (h / anchor.h).ln() / v[3],
        ]
    }

    /// The corner box that offsets `t` describe for `anchor` (the inverse of `encode`); the
    /// log sizes are clamped so that a wild prediction stays finite.
    pub fn decode(&self, t: &[f32; 4], anchor: &Anchor) -> [f32; 4] {
        let v = self.variances;
        let cx = anchor.cx + t[0] * v[0] * anchor.w;
        let cy = anchor.cy + t[1] * v[1] * anchor.h;
        let w = anchor.w * (t[2] * v[2]).clamp(-10.0, 4.0).exp();
        let h = anchor.h * (t[3] * v[3]).clamp(-10.0, 4.0).exp();
        [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]
    }
}

/// The training targets of one image, flat row-major arrays over the anchors.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionTargets {
    /// `(anchors, classes)`: 1 at a positive anchor's class, 0 elsewhere.
    pub classes: Vec<f32>,
    /// `(anchors, classes)`: 1 where the class loss counts (positives and negatives), 0 for
    /// ignored anchors.
    pub class_weight: Vec<f32>,
    /// `(anchors, 4)`: encoded offsets at positives, 0 elsewhere.
    pub boxes: Vec<f32>,
    /// `(anchors, 4)`: 1 at positives.
    pub box_weight: Vec<f32>,
    /// Positive anchors.
    pub positives: usize,
}

/// The targets of `boxes` (relative corners with class ids) over `anchors` for `classes` classes.
/// Boxes with a class id outside `0..classes` are left out.
pub fn encode_targets(
    anchors: &[Anchor],
    boxes: &[([f32; 4], u32)],
    classes: usize,
    rule: &MatchRule,
    coder: &BoxCoder,
) -> DetectionTargets {
    let boxes: Vec<([f32; 4], u32)> = boxes.iter().copied().filter(|b| (b.1 as usize) < classes).collect();
    let corners: Vec<[f32; 4]> = boxes.iter().map(|b| b.0).collect();
    let matches = match_anchors(anchors, &corners, rule);
    let n = anchors.len();
    let mut t = DetectionTargets {
        classes: vec![0.0; n * classes],
        class_weight: vec![1.0; n * classes],
        boxes: vec![0.0; n * 4],
        box_weight: vec![0.0; n * 4],
        positives: 0,
    };
    for (a, m) in matches.iter().enumerate() {
        match *m {
            AnchorMatch::Negative => {}
            AnchorMatch::Ignore => t.class_weight[a * classes..(a + 1) * classes].fill(0.0),
            AnchorMatch::Positive(b) => {
                let (corner, class) = boxes[b];
                t.classes[a * classes + class as usize] = 1.0;
                t.boxes[a * 4..a * 4 + 4].copy_from_slice(&coder.encode(&corner, &anchors[a]));
                t.box_weight[a * 4..a * 4 + 4].fill(1.0);
                t.positives += 1;
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
    }

    #[test]
    fn anchors_of_a_cell_by_hand() {
        let cfg = SsdLiteConfig::new(1, 256);
        let a = anchors(&cfg);
        assert_eq!(a.len(), cfg.anchor_count());
        // Level 1 is 16x16, cell (0, 0) centred at (1/32, 1/32): sizes 0.1, sqrt(0.025), then
        // ratio 2 (w 0.1 sqrt 2, h 0.1 / sqrt 2) and ratio 1/2.
        let r2 = 2f32.sqrt();
        let want = [
            [1.0 / 32.0, 1.0 / 32.0, 0.1, 0.1],
            [1.0 / 32.0, 1.0 / 32.0, 0.025f32.sqrt(), 0.025f32.sqrt()],
            [1.0 / 32.0, 1.0 / 32.0, 0.1 * r2, 0.1 / r2],
            [1.0 / 32.0, 1.0 / 32.0, 0.1 / r2, 0.1 * r2],
        ];
        for (got, w) in a.iter().zip(want) {
            assert!(close(&[got.cx, got.cy, got.w, got.h], &w), "{got:?} {w:?}");
        }
        // Anchor 4 is the next column: centre x 3/32.
        assert!((a[4].cx - 3.0 / 32.0).abs() < 1e-6 && a[4].cy == a[0].cy);
        // The first anchor of level 3 (4x4) sits at (1/8, 1/8) with side 0.5.
        let l3 = a[(256 + 64) * 4];
        assert!(close(&[l3.cx, l3.cy, l3.w, l3.h], &[0.125, 0.125, 0.5, 0.5]));
    }

    #[test]
    fn iou_by_hand() {
        assert!((iou(&[0.0, 0.0, 2.0, 2.0], &[1.0, 1.0, 3.0, 3.0]) - 1.0 / 7.0).abs() < 1e-6);
        assert_eq!(iou(&[0.0, 0.0, 1.0, 1.0], &[2.0, 2.0, 3.0, 3.0]), 0.0);
        assert_eq!(iou(&[0.0, 0.0, 0.0, 0.0], &[0.0, 0.0, 0.0, 0.0]), 0.0);
    }

    #[test]
    fn encoding_by_hand_and_back() {
        let coder = BoxCoder::default();
        let anchor = Anchor {
            cx: 0.5,
            cy: 0.5,
            w: 0.2,
            h: 0.4,
        };
        // Box centre (0.52, 0.46), size 0.4 x 0.4: dx = 0.02 / 0.2 / 0.1 = 1, dy = -0.04 / 0.4 /
        // 0.1 = -1, dw = ln 2 / 0.2, dh = ln 1 / 0.2 = 0.
        let b = [0.32, 0.26, 0.72, 0.66];
        let t = coder.encode(&b, &anchor);
        assert!(close(&t, &[1.0, -1.0, 2f32.ln() / 0.2, 0.0]), "{t:?}");
        assert!(close(&coder.decode(&t, &anchor), &b));
    }

    #[test]
    fn matching_by_hand_thresholds_ignore_band_and_forced_best_anchor() {
        let a = |cx, cy, w, h| Anchor { cx, cy, w, h };
        let anchors = [
            a(0.25, 0.25, 0.5, 0.5), // the box itself: IoU 1
            a(0.25, 0.35, 0.5, 0.5), // shifted 0.1 down: IoU 0.4 / 0.6 = 0.667
            a(0.25, 0.45, 0.5, 0.5), // shifted 0.2: IoU 0.3 / 0.7 = 0.43 -> ignored
            a(0.75, 0.75, 0.5, 0.5), // disjoint: negative
            a(0.9, 0.1, 0.1, 0.1),   // the second box's best anchor, IoU 0.01 / 0.0625 = 0.16
        ];
        let boxes = [[0.0, 0.0, 0.5, 0.5], [0.75, 0.0, 1.0, 0.25]];
        let m = match_anchors(&anchors, &boxes, &MatchRule::default());
        assert_eq!(
            m,
            vec![
                AnchorMatch::Positive(0),
                AnchorMatch::Positive(0),
                AnchorMatch::Ignore,
                AnchorMatch::Negative,
                AnchorMatch::Positive(1),
            ]
        );
        let t = encode_targets(
            &anchors,
            &[(boxes[0], 1), (boxes[1], 0), ([0.1, 0.1, 0.2, 0.2], 7)],
            2,
            &MatchRule::default(),
            &BoxCoder::default(),
        );
        assert_eq!(t.positives, 3);
        assert_eq!(t.classes, vec![0., 1., 0., 1., 0., 0., 0., 0., 1., 0.]);
        assert_eq!(t.class_weight, vec![1., 1., 1., 1., 0., 0., 1., 1., 1., 1.]);
        assert_eq!(&t.box_weight[..8], &[1.0; 8]);
        assert_eq!(&t.box_weight[8..16], &[0.0; 8]);
        assert!(close(&t.boxes[..4], &[0.0; 4]));
        // Anchor 1 is 0.1 below the box centre: dy = -0.1 / 0.5 / 0.1 = -2.
        assert!(close(&t.boxes[4..8], &[0.0, -2.0, 0.0, 0.0]), "{:?}", &t.boxes[4..8]);
        // No boxes: every anchor is negative.
        let empty = encode_targets(&anchors, &[], 2, &MatchRule::default(), &BoxCoder::default());
        assert_eq!(empty.positives, 0);
        assert!(empty.class_weight.iter().all(|&w| w == 1.0));
    }
}
