//! The identity-disjoint evaluation of an embedder: the threshold chosen on the training
//! subjects' faces, then verification (ROC, AUC, EER, TAR at FAR 1e-2 and 1e-3, accuracy at
//! that threshold) and identification (rank-1, rank-5, open set) on the held-out subjects.

use std::sync::Arc;

use fovea_engine::Device;

use crate::error::{DataError, Result};

use super::data::Split;
use super::embed::Embedder;
use super::metrics::{Identification, Roc, Verification, choose_threshold, identify, verify};

/// Gallery images per held-out subject for identification (the rest are probes).
pub const DEFAULT_GALLERY_PER_SUBJECT: usize = 3;

/// An evaluation's figures and what they came from.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Verification on the held-out subjects.
    pub verification: Verification,
    /// Identification on the held-out subjects.
    pub identification: Identification,
    /// The held-out ROC.
    pub roc: Roc,
    /// One embedding per held-out image.
    pub embeddings: Vec<Vec<f32>>,
    /// The held-out images' subjects (1-based).
    pub subjects: Vec<u32>,
}

/// Evaluates `embedder` on `split` (see the module docs). With no training subjects the
/// threshold is the held-out EER threshold, and the report says so.
pub fn evaluate(device: &Arc<Device>, embedder: &Embedder, split: &Split, gallery_k: usize) -> Result<Evaluation> {
    if gallery_k == 0 {
        return Err(DataError::value("--gallery-size", "must be at least 1"));
    }
    let test = embedder.embed(device, &split.test.images)?;
    let (_, roc) = verify(&test, &split.test.subjects, 0.0).ok_or_else(|| {
        DataError::value(
            "--test-subjects",
            "the held-out faces give no genuine or no impostor pair",
        )
    })?;
    let threshold = if split.train.subject_list().len() >= 2 {
        let train = embedder.embed(device, &split.train.images)?;
        choose_threshold(&train, &split.train.subjects).unwrap_or_else(|| roc.eer().1)
    } else {
        roc.eer().1
    };
    let (verification, roc) = verify(&test, &split.test.subjects, threshold)
        .ok_or_else(|| DataError::value("--test-subjects", "no pairs"))?;
    let identification = identify(&test, &split.test.subjects, gallery_k, threshold);
    Ok(Evaluation {
        verification,
        identification,
        roc,
        embeddings: test,
        subjects: split.test.subjects.clone(),
    })
}

impl Evaluation {
    /// The figures as JSON, with the keys `auc`, `eer`, `tar_at_far_1e-2`, `tar_at_far_1e-3`,
    /// `accuracy`, `threshold`, `rank1` at the top level, and the rest beside them.
    pub fn to_json(&self) -> serde_json::Value {
        let v = &self.verification;
        let i = &self.identification;
        serde_json::json!({
            "auc": v.auc,
            "eer": v.eer,
            "tar_at_far_1e-2": v.tar_at_far_1e_2,
            "tar_at_far_1e-3": v.tar_at_far_1e_3,
            "accuracy": v.accuracy,
            "threshold": v.threshold,
            "rank1": i.rank1,
            "rank5": i.rank5,
            "open_set_dir": i.open_set_dir,
            "open_set_false_alarm": i.open_set_false_alarm,
            "gallery_per_subject": i.gallery_per_subject,
            "probes": i.probes,
            "genuine_pairs": v.genuine_pairs,
            "impostor_pairs": v.impostor_pairs,
        })
    }

    /// One line for a terminal.
    pub fn summary(&self) -> String {
        let v = &self.verification;
        let i = &self.identification;
        format!(
            "AUC {:.4}, EER {:.2}%, TAR@FAR1e-2 {:.2}%, TAR@FAR1e-3 {:.2}%, accuracy {:.2}% at threshold {:.4}; rank-1 {:.2}%, rank-5 {:.2}%; open set DIR {:.2}%, false alarms {:.2}%",
            v.auc,
            100.0 * v.eer,
            100.0 * v.tar_at_far_1e_2,
            100.0 * v.tar_at_far_1e_3,
            100.0 * v.accuracy,
            v.threshold,
            100.0 * i.rank1,
            100.0 * i.rank5,
            100.0 * i.open_set_dir,
            100.0 * i.open_set_false_alarm
        )
    }
}
