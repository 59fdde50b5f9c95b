//! Detection metrics with pycocotools' semantics (COCO AP@[.5:.95], AP50, AP75, AP by area,
//! recall at 100 detections) and Pascal VOC's all-point AP@0.5.
//!
//! COCO, as `COCOeval` with `iouType="bbox"`: per image and class, detections sorted by score
//! (stable) and cut to `max_dets`; greedy matching at each IoU threshold 0.50, 0.55, ..., 0.95
//! to the best still-unmatched ground truth with IoU at least the threshold (ground truth
//! outside the area range is "ignored" and is matched only when nothing else is); unmatched
//! detections outside the area range are ignored; precision made monotone and sampled at 101
//! recall points; AP is the mean over thresholds, recall points and classes that have ground
//! truth. Areas and IoUs are in pixels, `w * h`, without VOC's `+1`.
//!
//! VOC (2010 and later, `voc_eval.py`'s `use_07_metric=False`): per class, detections of all
//! images by score; each is a true positive when its best-overlapping ground truth (IoU above
//! 0.5) is not yet taken; AP is the area under the monotone precision-recall curve.

use crate::vision::BBox;

/// One image's ground truth and detections (pixels; boxes carry their class).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageEval {
    /// Ground-truth boxes.
    pub truth: Vec<BBox>,
    /// Detections with scores.
    pub detections: Vec<(BBox, f32)>,
}

/// The COCO summary figures (-1 where no class has ground truth in range).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CocoMetrics {
    /// AP@[.5:.95], all areas.
    pub ap: f64,
    /// AP@0.5.
    pub ap50: f64,
    /// AP@0.75.
    pub ap75: f64,
    /// AP@[.5:.95], area below 32^2.
    pub ap_small: f64,
    /// AP@[.5:.95], area 32^2 to 96^2.
    pub ap_medium: f64,
    /// AP@[.5:.95], area above 96^2.
    pub ap_large: f64,
    /// Recall at `max_dets` detections averaged over the IoU thresholds (COCO's AR@100).
    pub recall: f64,
}

/// COCO's area ranges: all, small, medium, large.
pub const AREA_RANGES: [(f64, f64); 4] = [(0.0, 1e10), (0.0, 1024.0), (1024.0, 9216.0), (9216.0, 1e10)];

/// `N` points from `start` to `stop` as numpy's `linspace` computes them (pycocotools builds its
/// grids with it): one `step = (stop - start) / (N - 1)`, point `i` is `i * step + start`, and
/// the last is `stop` exactly. The rounding matters: recalls are ratios of small integers and
/// often land on a grid point (`70 * 0.01` is just above `0.7`, so a recall of 7/10 does not
/// reach it).
fn linspace<const N: usize>(start: f64, stop: f64) -> [f64; N] {
    let step = (stop - start) / (N.max(2) - 1) as f64;
    let mut t = [0.0; N];
    for (i, v) in t.iter_mut().enumerate() {
        *v = i as f64 * step + start;
    }
    if let Some(last) = t.last_mut() {
        *last = stop;
    }
    t
}

/// COCO's IoU thresholds 0.50:0.05:0.95, computed as numpy's `linspace` does.
pub fn iou_thresholds() -> [f64; 10] {
    linspace(0.5, 0.95)
}

/// COCO's 101 recall points 0:0.01:1, computed as numpy's `linspace` does.
pub fn recall_points() -> [f64; 101] {
    linspace(0.0, 1.0)
}

fn box_iou(a: &BBox, b: &BBox) -> f64 {
    let (ax, ay, aw, ah) = (a.xmin as f64, a.ymin as f64, a.width() as f64, a.height() as f64);
    let (bx, by, bw, bh) = (b.xmin as f64, b.ymin as f64, b.width() as f64, b.height() as f64);
    let iw = ((ax + aw).min(bx + bw) - ax.max(bx)).max(0.0);
    let ih = ((ay + ah).min(by + bh) - ay.max(by)).max(0.0);
    let inter = iw * ih;
    let union = aw * ah + bw * bh - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

fn area(b: &BBox) -> f64 {
    b.width() as f64 * b.height() as f64
}

/// One (image, class, area range) evaluation: per threshold, which of the kept detections
/// matched and which are ignored; their scores; the number of ground truths not ignored.
struct Evaluated {
    scores: Vec<f64>,
    matched: Vec<Vec<bool>>,
    ignored: Vec<Vec<bool>>,
    truths: usize,
}

fn evaluate_image(img: &ImageEval, class: u32, range: (f64, f64), max_dets: usize, thr: &[f64]) -> Option<Evaluated> {
    let gt: Vec<&BBox> = img.truth.iter().filter(|b| b.class == class).collect();
    let mut dt: Vec<(&BBox, f32)> = img
        .detections
        .iter()
        .filter(|d| d.0.class == class)
        .map(|d| (&d.0, d.1))
        .collect();
    if gt.is_empty() && dt.is_empty() {
        return None;
    }
    // Ground truth not ignored first (stable), detections by score (stable), cut.
    let mut gt: Vec<(&BBox, bool)> = gt
        .into_iter()
        .map(|g| (g, area(g) < range.0 || area(g) > range.1))
        .collect();
    gt.sort_by_key(|g| g.1);
    dt.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
    dt.truncate(max_dets);
    let mut matched = vec![vec![false; dt.len()]; thr.len()];
    let mut ignored = vec![vec![false; dt.len()]; thr.len()];
    for (t, &threshold) in thr.iter().enumerate() {
        let mut taken = vec![false; gt.len()];
        for (d, (db, _)) in dt.iter().enumerate() {
            let mut best = threshold.min(1.0 - 1e-10);
            let mut m: Option<usize> = None;
            for (g, (gb, g_ignored)) in gt.iter().enumerate() {
                if taken[g] {
                    continue;
                }
                if let Some(prev) = m {
                    if !gt[prev].1 && *g_ignored {
                        break;
                    }
                }
                let v = box_iou(db, gb);
                if v < best {
                    continue;
                }
                best = v;
                m = Some(g);
            }
            if let Some(g) = m {
                taken[g] = true;
                matched[t][d] = true;
                ignored[t][d] = gt[g].1;
            }
        }
        for (d, (db, _)) in dt.iter().enumerate() {
            if !matched[t][d] && (area(db) < range.0 || area(db) > range.1) {
                ignored[t][d] = true;
            }
        }
    }
    Some(Evaluated {
        scores: dt.iter().map(|d| d.1 as f64).collect(),
        matched,
        ignored,
        truths: gt.iter().filter(|g| !g.1).count(),
    })
}

/// Per threshold and class: the 101-point precision (`None` for a class without ground truth
/// in range) and the recall.
/// Per IoU threshold and class: the 101-point precision curve (None: no ground truth).
type PrecisionTable = Vec<Vec<Option<Vec<f64>>>>;
/// Per IoU threshold and class: the recall reached (None: no ground truth).
type RecallTable = Vec<Vec<Option<f64>>>;

fn accumulate(
    images: &[ImageEval],
    classes: usize,
    range: (f64, f64),
    max_dets: usize,
) -> (PrecisionTable, RecallTable) {
    let thr = iou_thresholds();
    let mut precision = vec![vec![None; classes]; thr.len()];
    let mut recall = vec![vec![None; classes]; thr.len()];
    for class in 0..classes {
        let evals: Vec<Evaluated> = images
            .iter()
            .filter_map(|im| evaluate_image(im, class as u32, range, max_dets, &thr))
            .collect();
        let truths: usize = evals.iter().map(|e| e.truths).sum();
        if truths == 0 {
            continue;
        }
        // All kept detections, by score (stable over image order).
        let mut all: Vec<(f64, usize, usize)> = Vec::new();
        for (e, ev) in evals.iter().enumerate() {
            for (d, &s) in ev.scores.iter().enumerate() {
                all.push((s, e, d));
            }
        }
        all.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
        for t in 0..thr.len() {
            let (mut tp, mut fp) = (0.0f64, 0.0f64);
            let (mut rc, mut pr) = (Vec::new(), Vec::new());
            for &(_, e, d) in &all {
                if evals[e].ignored[t][d] {
                    continue;
                }
                if evals[e].matched[t][d] {
                    tp += 1.0;
                } else {
                    fp += 1.0;
                }
                rc.push(tp / truths as f64);
                pr.push(tp / (tp + fp + f64::EPSILON));
            }
            recall[t][class] = Some(rc.last().copied().unwrap_or(0.0));
            for i in (1..pr.len()).rev() {
                if pr[i] > pr[i - 1] {
                    pr[i - 1] = pr[i];
                }
            }
            let q: Vec<f64> = recall_points()
                .iter()
                .map(|&target| {
                    let i = rc.partition_point(|&v| v < target);
                    pr.get(i).copied().unwrap_or(0.0)
                })
                .collect();
            precision[t][class] = Some(q);
        }
    }
    (precision, recall)
}

fn mean_of(values: impl Iterator<Item = f64>) -> f64 {
    let (mut s, mut n) = (0.0, 0usize);
    for v in values {
        s += v;
        n += 1;
    }
    if n == 0 { -1.0 } else { s / n as f64 }
}

/// COCO's summary of `images` over `classes` classes with at most `max_dets` detections per
/// image and class (COCO's 100).
pub fn coco_metrics(images: &[ImageEval], classes: usize, max_dets: usize) -> CocoMetrics {
    let ap_over = |prec: &Vec<Vec<Option<Vec<f64>>>>, ts: &[usize]| {
        mean_of(
            ts.iter()
                .flat_map(|&t| prec[t].iter().flatten().flat_map(|q| q.iter().copied()))
                .collect::<Vec<_>>()
                .into_iter(),
        )
    };
    let all_t: Vec<usize> = (0..10).collect();
    let (p_all, r_all) = accumulate(images, classes, AREA_RANGES[0], max_dets);
    let by_area: Vec<f64> = AREA_RANGES[1..]
        .iter()
        .map(|&r| ap_over(&accumulate(images, classes, r, max_dets).0, &all_t))
        .collect();
    CocoMetrics {
        ap: ap_over(&p_all, &all_t),
        ap50: ap_over(&p_all, &[0]),
        ap75: ap_over(&p_all, &[5]),
        ap_small: by_area[0],
        ap_medium: by_area[1],
        ap_large: by_area[2],
        recall: mean_of(
            r_all
                .iter()
                .flat_map(|row| row.iter().flatten().copied())
                .collect::<Vec<_>>()
                .into_iter(),
        ),
    }
}

/// VOC's all-point AP at IoU > 0.5, averaged over the classes that have ground truth
/// (-1 when none has).
pub fn voc_ap50(images: &[ImageEval], classes: usize) -> f64 {
    let mut aps = Vec::new();
    for class in 0..classes as u32 {
        let truths: usize = images
            .iter()
            .map(|im| im.truth.iter().filter(|b| b.class == class).count())
            .sum();
        if truths == 0 {
            continue;
        }
        let mut dets: Vec<(f32, usize, &BBox)> = Vec::new();
        for (i, im) in images.iter().enumerate() {
            for (b, s) in im.detections.iter().filter(|d| d.0.class == class) {
                dets.push((*s, i, b));
            }
        }
        dets.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
        let mut taken: Vec<Vec<bool>> = images.iter().map(|im| vec![false; im.truth.len()]).collect();
        let (mut tp, mut fp) = (0.0f64, 0.0f64);
        let (mut rec, mut prec) = (vec![0.0], vec![0.0]);
        for (_, i, b) in dets {
            let mut best = (0.0, None);
            for (g, gt) in images[i].truth.iter().enumerate() {
                if gt.class != class {
                    continue;
                }
                let v = box_iou(b, gt);
                if v > best.0 {
                    best = (v, Some(g));
                }
            }
            match best {
                (v, Some(g)) if v > 0.5 && !taken[i][g] => {
                    taken[i][g] = true;
                    tp += 1.0;
                }
                _ => fp += 1.0,
            }
            rec.push(tp / truths as f64);
            prec.push(tp / (tp + fp));
        }
        rec.push(1.0);
        prec.push(0.0);
        for k in (0..prec.len() - 1).rev() {
            prec[k] = prec[k].max(prec[k + 1]);
        }
        let ap: f64 = (1..rec.len()).map(|k| (rec[k] - rec[k - 1]) * prec[k]).sum();
        aps.push(ap);
    }
    mean_of(aps.into_iter())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x0: f32, y0: f32, x1: f32, y1: f32) -> BBox {
        BBox::new(x0, y0, x1, y1, 0)
    }

    #[test]
    fn perfect_detections_score_one_and_none_score_zero() {
        let img = ImageEval {
            truth: vec![b(0.0, 0.0, 50.0, 50.0), b(100.0, 100.0, 200.0, 180.0)],
            detections: vec![(b(0.0, 0.0, 50.0, 50.0), 0.9), (b(100.0, 100.0, 200.0, 180.0), 0.8)],
        };
        let m = coco_metrics(std::slice::from_ref(&img), 1, 100);
        assert!((m.ap - 1.0).abs() < 1e-12 && (m.ap50 - 1.0).abs() < 1e-12 && (m.recall - 1.0).abs() < 1e-12);
        // 50x50 = 2500 is medium, 100x80 = 8000 medium too: no small or large ground truth.
        assert_eq!(m.ap_small, -1.0);
        assert!((m.ap_medium - 1.0).abs() < 1e-12);
        assert_eq!(m.ap_large, -1.0);
        assert!((voc_ap50(std::slice::from_ref(&img), 1) - 1.0).abs() < 1e-12);
        let empty = ImageEval {
            truth: img.truth.clone(),
            detections: vec![],
        };
        let m = coco_metrics(std::slice::from_ref(&empty), 1, 100);
        assert_eq!((m.ap, m.recall), (0.0, 0.0));
        assert_eq!(voc_ap50(&[empty], 1), 0.0);
    }

    #[test]
    fn a_hand_computed_precision_recall_curve() {
        // Two ground truths; detections by score: hit, miss, hit.
        // COCO at IoU 0.5: recall 0.5 at precision 1, recall 1 at precision 2/3, so the 101
        // points are 1 for r <= 0.5 (51 points) and 2/3 for the other 50: AP50 = (51 + 100/3) / 101.
        // VOC: 0.5 * 1 + 0.5 * 2/3.
        let img = ImageEval {
            truth: vec![b(0.0, 0.0, 100.0, 100.0), b(200.0, 0.0, 300.0, 100.0)],
            detections: vec![
                (b(0.0, 0.0, 100.0, 100.0), 0.9),
                (b(400.0, 400.0, 450.0, 450.0), 0.8),
                (b(200.0, 0.0, 300.0, 100.0), 0.7),
            ],
        };
        let m = coco_metrics(std::slice::from_ref(&img), 1, 100);
        let want = (51.0 + 100.0 / 3.0) / 101.0;
        assert!((m.ap50 - want).abs() < 1e-12, "{} {want}", m.ap50);
        assert!((m.ap - want).abs() < 1e-12, "exact boxes match at every threshold");
        assert!((voc_ap50(std::slice::from_ref(&img), 1) - (0.5 + 1.0 / 3.0)).abs() < 1e-12);
        // Cut to one detection per image: recall 0.5, AP50 = 51 / 101.
        let m1 = coco_metrics(&[img], 1, 1);
        assert!((m1.ap50 - 51.0 / 101.0).abs() < 1e-12 && (m1.recall - 0.5).abs() < 1e-12);
    }

    #[test]
    fn a_shifted_box_counts_only_below_its_iou_and_duplicates_are_false_positives() {
        // Box shifted by 20 of 100: IoU 80 / 120 = 0.667: a hit for thresholds 0.50..0.65
        // (4 of 10), so AP = 0.4 and AP75 = 0. The duplicate at a lower score is a false
        // positive that comes after full recall, so it costs nothing.
        let img = ImageEval {
            truth: vec![b(0.0, 0.0, 100.0, 100.0)],
            detections: vec![(b(20.0, 0.0, 120.0, 100.0), 0.9), (b(20.0, 0.0, 120.0, 100.0), 0.5)],
        };
        let m = coco_metrics(&[img], 1, 100);
        assert!(
            (m.ap50 - 1.0).abs() < 1e-12 && m.ap75 == 0.0 && (m.ap - 0.4).abs() < 1e-12,
            "{m:?}"
        );
    }
}
