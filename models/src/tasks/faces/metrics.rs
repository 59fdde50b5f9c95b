//! Verification and identification figures, defined as biometrics defines them
//! (ISO/IEC 19795-1 vocabulary). A comparison is a distance between two embeddings; a pair is
//! *accepted* when its distance is at most the threshold `t`.
//!
//! - genuine pairs: two different images of one subject; impostor pairs: images of two subjects;
//!   every unordered pair of the evaluated images is one or the other;
//! - TAR(t) (true accept rate): genuine pairs accepted / genuine pairs; FRR = 1 - TAR;
//! - FAR(t) (false accept rate): impostor pairs accepted / impostor pairs;
//! - ROC: (FAR, TAR) over every threshold, from (0, 0) to (1, 1);
//! - AUC: the area under the ROC = the probability that a random genuine pair is closer than a
//!   random impostor pair (ties count one half);
//! - EER (equal error rate): the rate where FAR = FRR, linearly interpolated between the two
//!   ROC points where FAR - FRR changes sign;
//! - TAR at FAR x: the largest TAR of a threshold whose FAR does not exceed x;
//! - verification accuracy: balanced accuracy `(TAR + (1 - FAR)) / 2` at a threshold, as on LFW's
//!   balanced pair lists; the threshold is the one maximising it on *training* subjects;
//! - identification (closed set): each probe is compared with every enrolled subject (the
//!   distance to a subject is the smallest over its gallery images); rank-k: the probe's
//!   subject is among the k nearest subjects;
//! - open set: a probe is accepted when its nearest subject is within the threshold; the
//!   detection-and-identification rate (DIR) counts enrolled probes accepted *and* correctly
//!   named, the false alarm rate counts probes of unenrolled subjects accepted as someone.

/// Euclidean distance.
pub fn distance(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| ((x - y) as f64).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// Distances of every genuine and every impostor pair of `embeddings` (one row per image,
/// `labels` its subject).
pub fn pair_distances(embeddings: &[Vec<f32>], labels: &[u32]) -> (Vec<f64>, Vec<f64>) {
    let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
    for i in 0..embeddings.len() {
        for j in i + 1..embeddings.len() {
            let d = distance(&embeddings[i], &embeddings[j]);
            if labels[i] == labels[j] {
                genuine.push(d);
            } else {
                impostor.push(d);
            }
        }
    }
    (genuine, impostor)
}

/// A ROC curve: one `(threshold, far, tar)` per distinct distance, thresholds ascending, after
/// a first point `(-inf, 0, 0)`; the last point is `(1, 1)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Roc {
    /// `(threshold, FAR, TAR)` points.
    pub points: Vec<(f64, f64, f64)>,
}

impl Roc {
    /// The ROC of genuine and impostor distances (both non-empty, else `None`).
    pub fn new(genuine: &[f64], impostor: &[f64]) -> Option<Roc> {
        if genuine.is_empty() || impostor.is_empty() {
            return None;
        }
        let mut all: Vec<(f64, bool)> = genuine
            .iter()
            .map(|&d| (d, true))
            .chain(impostor.iter().map(|&d| (d, false)))
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (g, i) = (genuine.len() as f64, impostor.len() as f64);
        let mut points = vec![(f64::NEG_INFINITY, 0.0, 0.0)];
        let (mut ta, mut fa) = (0usize, 0usize);
        let mut k = 0;
        while k < all.len() {
            let t = all[k].0;
            while k < all.len() && all[k].0 == t {
                if all[k].1 {
                    ta += 1;
                } else {
                    fa += 1;
                }
                k += 1;
            }
            points.push((t, fa as f64 / i, ta as f64 / g));
        }
        Some(Roc { points })
    }

    /// The area under the curve (trapezoids; equals the tie-aware Mann-Whitney probability).
    pub fn auc(&self) -> f64 {
        self.points
            .windows(2)
            .map(|w| (w[1].1 - w[0].1) * (w[1].2 + w[0].2) / 2.0)
            .sum()
    }

    /// The equal error rate and the threshold where it falls (interpolated).
    pub fn eer(&self) -> (f64, f64) {
        // diff = FAR - FRR rises from -1 (nothing accepted) to +1 (everything accepted).
        let diff = |p: &(f64, f64, f64)| p.1 - (1.0 - p.2);
        for w in self.points.windows(2) {
            let (d0, d1) = (diff(&w[0]), diff(&w[1]));
            if d0 <= 0.0 && d1 >= 0.0 {
                let s = if d1 - d0 > 0.0 { -d0 / (d1 - d0) } else { 0.0 };
                let far = w[0].1 + s * (w[1].1 - w[0].1);
                let frr = (1.0 - w[0].2) + s * ((1.0 - w[1].2) - (1.0 - w[0].2));
                let t0 = if w[0].0.is_finite() { w[0].0 } else { w[1].0 };
                return ((far + frr) / 2.0, t0 + s * (w[1].0 - t0));
            }
        }
        (0.5, f64::NAN)
    }

    /// The largest TAR among thresholds with FAR at most `far`.
    pub fn tar_at_far(&self, far: f64) -> f64 {
        self.points
            .iter()
            .filter(|p| p.1 <= far + 1e-12)
            .map(|p| p.2)
            .fold(0.0, f64::max)
    }

    /// The threshold maximising balanced accuracy, and that accuracy (ties: the smallest threshold).
    pub fn best_threshold(&self) -> (f64, f64) {
        let mut best = (f64::NAN, -1.0);
        for p in self.points.iter().skip(1) {
            let acc = (p.2 + 1.0 - p.1) / 2.0;
            if acc > best.1 {
                best = (p.0, acc);
            }
        }
        best
    }
}

/// Balanced accuracy `(TAR + 1 - FAR) / 2` of accepting distances `<= threshold`.
pub fn accuracy_at(genuine: &[f64], impostor: &[f64], threshold: f64) -> f64 {
    let rate = |d: &[f64]| d.iter().filter(|&&v| v <= threshold).count() as f64 / d.len().max(1) as f64;
    (rate(genuine) + 1.0 - rate(impostor)) / 2.0
}

/// Verification figures of one set of held-out subjects.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Verification {
    /// Area under the ROC.
    pub auc: f64,
    /// Equal error rate.
    pub eer: f64,
    /// TAR at FAR 1e-2.
    pub tar_at_far_1e_2: f64,
    /// TAR at FAR 1e-3.
    pub tar_at_far_1e_3: f64,
    /// Balanced accuracy at `threshold`.
    pub accuracy: f64,
    /// The threshold (chosen on the training subjects).
    pub threshold: f64,
    /// Genuine pairs compared.
    pub genuine_pairs: usize,
    /// Impostor pairs compared.
    pub impostor_pairs: usize,
}

/// The verification figures of `embeddings` (one row per image, `labels` its subject) at a
/// given `threshold`, with the ROC. `None` when there is no genuine or no impostor pair.
pub fn verify(embeddings: &[Vec<f32>], labels: &[u32], threshold: f64) -> Option<(Verification, Roc)> {
    let (genuine, impostor) = pair_distances(embeddings, labels);
    let roc = Roc::new(&genuine, &impostor)?;
    let v = Verification {
        auc: roc.auc(),
        eer: roc.eer().0,
        tar_at_far_1e_2: roc.tar_at_far(1e-2),
        tar_at_far_1e_3: roc.tar_at_far(1e-3),
        accuracy: accuracy_at(&genuine, &impostor, threshold),
        threshold,
        genuine_pairs: genuine.len(),
        impostor_pairs: impostor.len(),
    };
    Some((v, roc))
}

/// The threshold maximising balanced accuracy over the pairs of `embeddings` (training subjects).
pub fn choose_threshold(embeddings: &[Vec<f32>], labels: &[u32]) -> Option<f64> {
    let (genuine, impostor) = pair_distances(embeddings, labels);
    Roc::new(&genuine, &impostor).map(|r| r.best_threshold().0)
}

/// An enrolled gallery: subjects with one or more embeddings each.
#[derive(Debug, Clone, PartialEq)]
pub struct Gallery {
    /// `(subject, embeddings)`.
    pub subjects: Vec<(u32, Vec<Vec<f32>>)>,
}

impl Gallery {
    /// Subjects ordered from nearest to farthest from `probe`, with their distances (the
    /// smallest over each subject's images).
    pub fn ranked(&self, probe: &[f32]) -> Vec<(u32, f64)> {
        let mut r: Vec<(u32, f64)> = self
            .subjects
            .iter()
            .map(|(s, es)| (*s, es.iter().map(|e| distance(e, probe)).fold(f64::INFINITY, f64::min)))
            .collect();
        r.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        r
    }
}

/// Identification figures.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Identification {
    /// Gallery images per subject.
    pub gallery_per_subject: usize,
    /// Closed-set probes.
    pub probes: usize,
    /// Probes whose subject is the nearest.
    pub rank1: f64,
    /// Probes whose subject is among the 5 nearest.
    pub rank5: f64,
    /// Open set (half the subjects enrolled): enrolled probes accepted and correctly named.
    pub open_set_dir: f64,
    /// Open set: probes of unenrolled subjects accepted as someone.
    pub open_set_false_alarm: f64,
}

/// Splits `(embeddings, labels)` into a gallery of the first `k` images of each subject (in
/// order) and the remaining probes.
pub fn split_gallery(embeddings: &[Vec<f32>], labels: &[u32], k: usize) -> (Gallery, Vec<(u32, Vec<f32>)>) {
    let mut subjects: Vec<(u32, Vec<Vec<f32>>)> = Vec::new();
    let mut probes = Vec::new();
    for (e, &l) in embeddings.iter().zip(labels) {
        let slot = match subjects.iter().position(|(s, _)| *s == l) {
            Some(i) => i,
            None => {
                subjects.push((l, Vec::new()));
                subjects.len() - 1
            }
        };
        if subjects[slot].1.len() < k {
            subjects[slot].1.push(e.clone());
        } else {
            probes.push((l, e.clone()));
        }
    }
    (Gallery { subjects }, probes)
}

/// Rank-1/rank-5 with a gallery of `k` images per subject, and the open-set rates at
/// `threshold` with the first half of the subjects (by order of appearance) enrolled.
pub fn identify(embeddings: &[Vec<f32>], labels: &[u32], k: usize, threshold: f64) -> Identification {
    let (gallery, probes) = split_gallery(embeddings, labels, k);
    let hits = |rank: usize| {
        probes
            .iter()
            .filter(|(l, e)| gallery.ranked(e).iter().take(rank).any(|(s, _)| s == l))
            .count() as f64
            / probes.len().max(1) as f64
    };
    let half = gallery.subjects.len() / 2;
    let enrolled = Gallery {
        subjects: gallery.subjects[..half].to_vec(),
    };
    let known = |l: &u32| enrolled.subjects.iter().any(|(s, _)| s == l);
    let (mut dir, mut n_known, mut alarms, mut n_unknown) = (0usize, 0usize, 0usize, 0usize);
    for (l, e) in &probes {
        let accepted = enrolled
            .ranked(e)
            .first()
            .filter(|(_, d)| *d <= threshold)
            .map(|(s, _)| *s);
        if known(l) {
            n_known += 1;
            dir += usize::from(accepted == Some(*l));
        } else {
            n_unknown += 1;
            alarms += usize::from(accepted.is_some());
        }
    }
    Identification {
        gallery_per_subject: k,
        probes: probes.len(),
        rank1: hits(1),
        rank5: hits(5),
        open_set_dir: dir as f64 / n_known.max(1) as f64,
        open_set_false_alarm: alarms as f64 / n_unknown.max(1) as f64,
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
