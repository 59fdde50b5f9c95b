//! How good a membrane segmentation is: pixel measures and the ISBI 2012 region measures.
//!
//! Masks are `bool` per pixel, `true` = cell interior (255 in the PNGs), `false` = membrane (0).
//! The membrane is the positive class of Dice and IoU (it is what the network has to find).
//!
//! With TP, FP, FN, TN counted on membrane pixels:
//! - pixel accuracy = (TP + TN) / N;
//! - membrane Dice (F1) = 2 TP / (2 TP + FP + FN); membrane IoU = TP / (TP + FP + FN);
//! - mean IoU = the mean of the membrane IoU and the cell IoU TN / (TN + FN + FP).
//!
//! The ISBI 2012 challenge scores (Arganda-Carreras et al., "Crowdsourcing the creation of image
//! segmentation algorithms for connectomics", Frontiers in Neuroanatomy 9:142, 2015) compare the
//! *regions*: the connected components (4-connectivity) of the cell pixels of the prediction S
//! and of the truth T. Only pixels inside the truth's foreground (its cell pixels) count
//! ("foreground-restricted"); a pixel there that S calls membrane is a region of its own (a
//! singleton), as in the challenge's Fiji implementation. With `p_ij` the fraction of counted
//! pixels in region i of S and region j of T, `s_i = sum_j p_ij`, `t_j = sum_i p_ij`:
//! - Rand split score `sum p_ij^2 / sum t_j^2`, Rand merge score `sum p_ij^2 / sum s_i^2`, and
//!   V_rand = their harmonic mean `sum p_ij^2 / (0.5 sum s_i^2 + 0.5 sum t_j^2)`;
//! - with entropies `H(S) = -sum s_i log s_i`, `H(T)`, and the mutual information
//!   `I(S;T) = sum p_ij log(p_ij / (s_i t_j))`: information split score `I / H(S)`, merge score
//!   `I / H(T)`, and V_info = their harmonic mean `I / (0.5 H(S) + 0.5 H(T))`.
//!
//! Both are 1 for a perfect segmentation. The challenge's final ranking scores the proposal
//! "after border thinning": its membranes thinned to one pixel, so that borders drawn wider
//! than the truth's do not count as singletons. [`thin_borders`] does that by growing every
//! cell region of the proposal into the membrane around it, one pixel ring per round, until
//! regions meet; a pixel stays membrane only where two regions would touch, so thinning never
//! merges or splits regions, it only moves border pixels into regions. `v_rand` / `v_info` are
//! the scores of the mask as predicted (stricter); `v_rand_thinned` / `v_info_thinned` those
//! after thinning, the challenge's figure. (The challenge also takes the best threshold on the
//! test slices; `fovea segment eval --choose-threshold` picks it on the training slices.) A
//! score whose denominator is 0 (e.g. one region everywhere in both) is 1.

use std::collections::HashMap;

/// The scores of one prediction against its truth (or of several, pooled: see [`Scores::mean`]).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scores {
    /// Fraction of pixels labelled right.
    pub pixel_accuracy: f64,
    /// Membrane Dice (F1).
    pub dice: f64,
    /// Membrane IoU.
    pub iou: f64,
    /// Mean of membrane and cell IoU.
    pub miou: f64,
    /// Foreground-restricted Rand score (ISBI 2012).
    pub v_rand: f64,
    /// Foreground-restricted information-theoretic score (ISBI 2012).
    pub v_info: f64,
    /// `v_rand` after thinning the prediction's borders to one pixel (the challenge's ranking).
    pub v_rand_thinned: f64,
    /// `v_info` after thinning the prediction's borders to one pixel.
    pub v_info_thinned: f64,
}

impl Scores {
    /// The mean of every score over `all` (the ISBI challenge averages over slices).
    pub fn mean(all: &[Scores]) -> Option<Scores> {
        if all.is_empty() {
            return None;
        }
        let n = all.len() as f64;
        let m = |f: fn(&Scores) -> f64| all.iter().map(f).sum::<f64>() / n;
        Some(Scores {
            pixel_accuracy: m(|s| s.pixel_accuracy),
            dice: m(|s| s.dice),
            iou: m(|s| s.iou),
            miou: m(|s| s.miou),
            v_rand: m(|s| s.v_rand),
            v_info: m(|s| s.v_info),
            v_rand_thinned: m(|s| s.v_rand_thinned),
            v_info_thinned: m(|s| s.v_info_thinned),
        })
    }

    /// The scores as `(key, value)` pairs with the keys of `fovea segment eval`'s JSON.
    pub fn pairs(&self) -> [(&'static str, f64); 8] {
        [
            ("pixel_accuracy", self.pixel_accuracy),
            ("dice", self.dice),
            ("iou", self.iou),
            ("miou", self.miou),
            ("v_rand", self.v_rand),
            ("v_info", self.v_info),
            ("v_rand_thinned", self.v_rand_thinned),
            ("v_info_thinned", self.v_info_thinned),
        ]
    }
}

fn ratio(num: f64, den: f64) -> f64 {
    if den == 0.0 { 1.0 } else { num / den }
}

/// Every score of `pred` against `truth`, both `width x height` masks (`true` = cell).
/// Panics never: masks of different lengths score over the common prefix only, so callers
/// check sizes first (the task does, naming the file).
pub fn score(pred: &[bool], truth: &[bool], width: usize) -> Scores {
    let n = pred.len().min(truth.len());
    let (pred, truth) = (&pred[..n], &truth[..n]);
    let (mut tp, mut fp, mut fn_, mut tn) = (0usize, 0usize, 0usize, 0usize);
    for (&p, &t) in pred.iter().zip(truth) {
        match (!p, !t) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            (false, false) => tn += 1,
        }
    }
    let (tp, fp, fn_, tn) = (tp as f64, fp as f64, fn_ as f64, tn as f64);
    let iou = ratio(tp, tp + fp + fn_);
    let cell_iou = ratio(tn, tn + fn_ + fp);
    let (v_rand, v_info) = region_scores(pred, truth, width);
    let (v_rand_thinned, v_info_thinned) = region_scores(&thin_borders(pred, width), truth, width);
    Scores {
        pixel_accuracy: ratio(tp + tn, n as f64),
        dice: ratio(2.0 * tp, 2.0 * tp + fp + fn_),
        iou,
        miou: (iou + cell_iou) / 2.0,
        v_rand,
        v_info,
        v_rand_thinned,
        v_info_thinned,
    }
}

/// `mask` (`true` = cell) with its membranes thinned to one pixel (see the module docs): the
/// cell regions (4-connected) grow into the membrane in rounds; in each round a membrane pixel
/// joins the one region among its 4 neighbours (as they stood before the round), unless its 4
/// neighbours, counting those that joined earlier in the same round in scan order, touch two
/// regions. Such a pixel stays membrane for good, so no two regions ever become 4-adjacent.
/// Membrane that no region reaches (a mask without cells) stays membrane.
pub fn thin_borders(mask: &[bool], width: usize) -> Vec<bool> {
    if width == 0 {
        return mask.to_vec();
    }
    let height = mask.len() / width;
    let n = width * height;
    let mut labels = connected_components(&mask[..n], width);
    let mut fixed = vec![false; n];
    let neighbours = |i: usize| {
        let (x, y) = (i % width, i / width);
        [
            (x > 0).then(|| i - 1),
            (x + 1 < width).then(|| i + 1),
            (y > 0).then(|| i - width),
            (y + 1 < height).then(|| i + width),
        ]
    };
    loop {
        let before = labels.clone();
        let mut changed = false;
        for i in 0..n {
            if labels[i] != 0 || fixed[i] {
                continue;
            }
            // The region reaching this pixel from the last round's front.
            let Some(l) = neighbours(i).into_iter().flatten().map(|j| before[j]).find(|&l| l != 0) else {
                continue;
            };
            let touches_two = neighbours(i)
                .into_iter()
                .flatten()
                .any(|j| (before[j] != 0 && before[j] != l) || (labels[j] != 0 && labels[j] != l));
            if touches_two {
                fixed[i] = true;
            } else {
                labels[i] = l;
            }
            changed = true;
        }
        if !changed {
            break;
        }
    }
    let mut out: Vec<bool> = labels.iter().map(|&l| l != 0).collect();
    out.extend_from_slice(&mask[n..]);
    out
}

/// Labels the 4-connected components of the `true` pixels 1, 2, ... in scan order; `false`
/// pixels get 0.
pub fn connected_components(mask: &[bool], width: usize) -> Vec<u32> {
    let mut labels = vec![0u32; mask.len()];
    if width == 0 {
        return labels;
    }
    let height = mask.len() / width;
    let mut next = 0u32;
    let mut stack = Vec::new();
    for start in 0..width * height {
        if !mask[start] || labels[start] != 0 {
            continue;
        }
        next += 1;
        labels[start] = next;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % width, i / width);
            let mut visit = |j: usize| {
                if mask[j] && labels[j] == 0 {
                    labels[j] = next;
                    stack.push(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < width {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - width);
            }
            if y + 1 < height {
                visit(i + width);
            }
        }
    }
    labels
}

/// `(V_rand, V_info)` of `pred` against `truth` (see the module docs).
pub fn region_scores(pred: &[bool], truth: &[bool], width: usize) -> (f64, f64) {
    let s = connected_components(pred, width);
    let t = connected_components(truth, width);
    // Counts over the truth's foreground; S's membrane pixels there are singletons.
    let mut joint: HashMap<(u32, u32), f64> = HashMap::new();
    let mut s_count: HashMap<u32, f64> = HashMap::new();
    let mut t_count: HashMap<u32, f64> = HashMap::new();
    let mut singletons = 0.0;
    for (&si, &tj) in s.iter().zip(&t) {
        if tj == 0 {
            continue;
        }
        *t_count.entry(tj).or_default() += 1.0;
        if si == 0 {
            singletons += 1.0;
        } else {
            *joint.entry((si, tj)).or_default() += 1.0;
            *s_count.entry(si).or_default() += 1.0;
        }
    }
    let total: f64 = t_count.values().sum();
    if total == 0.0 {
        return (1.0, 1.0);
    }
    // Each singleton is its own region of S and its own cell of the joint table.
    fn sq<K>(c: &HashMap<K, f64>, total: f64) -> f64 {
        c.values().map(|v| (v / total).powi(2)).sum()
    }
    fn ent<K>(c: &HashMap<K, f64>, total: f64) -> f64 {
        c.values()
            .map(|v| {
                let p = v / total;
                -p * p.ln()
            })
            .sum()
    }
    let single_sq = singletons / (total * total);
    let (sum_p2, sum_s2, sum_t2) = (
        sq(&joint, total) + single_sq,
        sq(&s_count, total) + single_sq,
        sq(&t_count, total),
    );
    let v_rand = ratio(sum_p2, 0.5 * sum_s2 + 0.5 * sum_t2);
    let single_h = if singletons > 0.0 {
        (singletons / total) * total.ln()
    } else {
        0.0
    };
    let (h_s, h_t, h_st) = (
        ent(&s_count, total) + single_h,
        ent(&t_count, total),
        ent(&joint, total) + single_h,
    );
    let info = h_s + h_t - h_st;
    let v_info = ratio(info, 0.5 * h_s + 0.5 * h_t);
    (v_rand, v_info)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses rows of `#` (cell) and `.` (membrane).
    fn mask(rows: &[&str]) -> (Vec<bool>, usize) {
        let w = rows[0].len();
        (rows.iter().flat_map(|r| r.chars().map(|c| c == '#')).collect(), w)
    }

    #[test]
    fn components_use_four_connectivity() {
        let (m, w) = mask(&["#.#", ".#.", "##."]);
        // The diagonal neighbours are separate regions; (1,1), (0,2), (1,2) join.
        assert_eq!(connected_components(&m, w), vec![1, 0, 2, 0, 3, 0, 3, 3, 0]);
    }

    #[test]
    fn pixel_scores_by_hand() {
        // truth:      pred:
        //   . # #       . . #
        //   . # #       # # #
        // Membrane is positive: truth membrane at (0,0),(0,1); pred membrane at (0,0),(1,0).
        // TP = 1 (0,0); FP = 1 (1,0); FN = 1 (0,1); TN = 3.
        let (t, w) = mask(&[".##", ".##"]);
        let (p, _) = mask(&["..#", "###"]);
        let s = score(&p, &t, w);
        assert!((s.pixel_accuracy - 4.0 / 6.0).abs() < 1e-12);
        assert!((s.dice - 2.0 / 4.0).abs() < 1e-12); // 2*1 / (2*1 + 1 + 1)
        assert!((s.iou - 1.0 / 3.0).abs() < 1e-12); // 1 / 3
        // cell IoU = TN / (TN + FN + FP) = 3 / 5.
        assert!((s.miou - (1.0 / 3.0 + 3.0 / 5.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn a_perfect_prediction_scores_one_everywhere() {
        let (t, w) = mask(&["##.##", "##.##", ".....", "##.##"]);
        let s = score(&t, &t, w);
        for (k, v) in s.pairs() {
            assert!((v - 1.0).abs() < 1e-12, "{k} = {v}");
        }
    }

    #[test]
    fn a_merge_of_two_cells_by_hand() {
        // truth: two cells of 2 pixels split by a membrane column; pred: one merged cell.
        //   # . #    -> truth regions A = column 0, B = column 2 (two pixels each)
        //   # . #       pred region X = all six pixels.
        // Foreground of truth: 4 pixels (n = 4); p(X,A) = p(X,B) = 1/2.
        // sum p^2 = 1/2, sum s^2 = 1, sum t^2 = 1/2 -> V_rand = 0.5 / 0.75 = 2/3.
        // H(S) = 0, H(T) = ln 2, I = 0 -> V_info = 0.
        let (t, w) = mask(&["#.#", "#.#"]);
        let (p, _) = mask(&["###", "###"]);
        let (vr, vi) = region_scores(&p, &t, w);
        assert!((vr - 2.0 / 3.0).abs() < 1e-12, "{vr}");
        assert!(vi.abs() < 1e-12, "{vi}");
    }

    #[test]
    fn a_split_with_a_singleton_by_hand() {
        // truth: one cell of 4 pixels in a row; pred: membrane at the second pixel, so regions
        // X = {0}, Y = {2, 3} and the singleton {1}.
        //   truth  # # # #       pred  # . # #
        // n = 4: p = 1/4 (X), 1/4 (singleton), 1/2 (Y), all in truth region A.
        // sum p^2 = 1/16 + 1/16 + 1/4 = 3/8 = sum s^2; sum t^2 = 1.
        // V_rand = (3/8) / (0.5 * 3/8 + 0.5) = (6/16) / (11/16) = 6/11.
        // H(S) = 2 (1/4 ln 4) + 1/2 ln 2 = 1.5 ln 2; H(T) = 0; H(S,T) = H(S) -> I = 0, V_info = 0.
        let (t, w) = mask(&["####"]);
        let (p, _) = mask(&["#.##"]);
        let (vr, vi) = region_scores(&p, &t, w);
        assert!((vr - 6.0 / 11.0).abs() < 1e-12, "{vr}");
        assert!(vi.abs() < 1e-12, "{vi}");
    }

    #[test]
    fn truth_background_is_ignored_and_partial_information_by_hand() {
        // truth  # # . # #    regions A = {0, 1}, B = {3, 4}; pixel 2 (membrane) ignored.
        // pred   # # # . #    regions X = {0, 1, 2}, Y = {4}; pixel 3 is a singleton.
        // Counted (n = 4): (X,A) = 2, (singleton, B) = 1, (Y,B) = 1.
        // sum p^2 = 4/16 + 1/16 + 1/16 = 6/16; s: X = 2/4, single 1/4, Y 1/4 -> 6/16;
        // t: A = B = 2/4 -> 8/16. V_rand = (6/16) / (0.5*6/16 + 0.5*8/16) = 6/7.
        // H(T) = ln 2; H(S) = 1/2 ln 2 + 2 * 1/4 ln 4 = 1.5 ln 2; H(S,T) = H(S) (S refines T),
        // I = H(T) = ln 2, V_info = ln 2 / (0.75 ln 2 + 0.5 ln 2) = 0.8.
        let (t, w) = mask(&["##.##"]);
        let (p, _) = mask(&["###.#"]);
        let (vr, vi) = region_scores(&p, &t, w);
        assert!((vr - 6.0 / 7.0).abs() < 1e-12, "{vr}");
        assert!((vi - 0.8).abs() < 1e-12, "{vi}");
    }

    #[test]
    fn thinning_leaves_one_pixel_between_regions_by_hand() {
        // Two cells split by a 3-pixel membrane: the regions grow one column each way and meet
        // at the middle column, which stays membrane.
        let (m, w) = mask(&["##...##", "##...##"]);
        let (want, _) = mask(&["###.###", "###.###"]);
        assert_eq!(thin_borders(&m, w), want);
        // An even width (4): columns 1 and 4 join in the first round; in the second, column 2
        // joins the left region, and column 3 would then touch both, so it stays membrane.
        let (m, w) = mask(&["#....#"]);
        let (want, _) = mask(&["###.##"]);
        assert_eq!(thin_borders(&m, w), want);
        // A membrane blob inside one cell disappears; a mask without cells is left as it is.
        let (m, w) = mask(&["#####", "##..#", "#####"]);
        assert_eq!(thin_borders(&m, w), vec![true; 15]);
        let (m, w) = mask(&["...", "..."]);
        assert_eq!(thin_borders(&m, w), m);
        // Thinning never merges: the thinned mask has as many regions as the original.
        let (m, w) = mask(&["#..#..#", "#..#..#", ".......", "#..#..#"]);
        let count = |m: &[bool]| connected_components(m, w).into_iter().max().unwrap_or(0);
        assert_eq!(count(&thin_borders(&m, w)), count(&m));
    }

    #[test]
    fn thinned_scores_forgive_wide_borders_by_hand() {
        // truth: two cells split by a one-pixel membrane; pred: the same cells with a 3-pixel
        // membrane (columns 2-4). Unthinned, columns 2 and 4 of the truth's foreground are
        // singletons: n = 12, regions A = cols 0-2 and B = cols 4-6 of the truth (6 pixels
        // each); pred X = cols 0-1 (4 pixels, in A), Y = cols 5-6 (in B), and 4 singletons.
        //   sum p^2 = 2 * (4/12)^2 + 4/144 = 36/144 = sum s^2; sum t^2 = 2 * (6/12)^2 = 72/144.
        //   V_rand = 36 / (0.5 * 36 + 0.5 * 72) = 2/3.
        // Thinned, the pred's border is column 3 alone: the same as the truth, V_rand = 1.
        let (t, w) = mask(&["###.###", "###.###"]);
        let (p, _) = mask(&["##...##", "##...##"]);
        let s = score(&p, &t, w);
        assert!((s.v_rand - 2.0 / 3.0).abs() < 1e-12, "{}", s.v_rand);
        assert!((s.v_rand_thinned - 1.0).abs() < 1e-12 && (s.v_info_thinned - 1.0).abs() < 1e-12);
    }

    #[test]
    fn the_mean_averages_each_score() {
        let a = Scores {
            pixel_accuracy: 1.0,
            dice: 0.5,
            iou: 0.0,
            miou: 0.2,
            v_rand: 0.4,
            v_info: 0.6,
            v_rand_thinned: 0.5,
            v_info_thinned: 0.7,
        };
        let b = Scores {
            pixel_accuracy: 0.0,
            dice: 0.5,
            iou: 1.0,
            miou: 0.4,
            v_rand: 0.6,
            v_info: 0.8,
            v_rand_thinned: 0.9,
            v_info_thinned: 0.9,
        };
        let m = Scores::mean(&[a, b]).unwrap();
        assert_eq!(m.pixel_accuracy, 0.5);
        assert!((m.miou - 0.3).abs() < 1e-12 && (m.v_info - 0.7).abs() < 1e-12);
        assert!((m.v_rand_thinned - 0.7).abs() < 1e-12 && (m.v_info_thinned - 0.8).abs() < 1e-12);
        assert!(Scores::mean(&[]).is_none());
    }
}
