//! The recipe: prepare the training subjects' faces, build the embedding net (with a softmax
//! head for the classification loss), compile it with the chosen loss and the collapse
//! monitor, fit one P x K epoch at a time, watch for collapse, and hand back the embedding net.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use fovea_engine::{CheckpointOptions, CompiledModel, Device, FitOptions, Flow, Verbosity};
use fovea_graph::Model;
use fovea_graph::train::{CompileConfig, Optimizer};

use crate::error::{DataError, Result};
use crate::vision::Image;
use crate::zoo::face_api;
use crate::zoo::faces::{EmbeddingConfig, IMAGE_INPUT, embedding_classifier, embedding_net};

use super::data::{Faces, PkBatches, training_augmentation};
use super::embed::{Preparation, embed_compiled};
use super::loss::{FaceLoss, mean_distance_metric};
use super::metrics::{choose_threshold, verify};

/// Below this mean squared pairwise distance the embedding has collapsed (unit vectors drawn
/// at random average 2).
pub const COLLAPSE_DISTANCE: f64 = 1e-2;

/// Where training starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Init {
    /// The zoo's embedding net of [`TrainConfig::embedding`], from random weights.
    Scratch,
    /// face-api's pretrained descriptor (unit-normalised) from the package folder: fine-tuning.
    FaceApi(PathBuf),
}

impl Init {
    /// The input preparation of the net this start trains.
    pub fn preparation(&self, cfg: &EmbeddingConfig) -> Preparation {
        match self {
            Init::Scratch => Preparation::for_config(cfg),
            Init::FaceApi(_) => Preparation::PadSquare {
                size: face_api::DESCRIPTOR_INPUT,
            },
        }
    }

    /// The name a weights file records for the architecture ([`super::embed::MODEL_METADATA`]).
    pub fn architecture(&self) -> &'static str {
        match self {
            Init::Scratch => super::embed::ZOO_ARCHITECTURE,
            Init::FaceApi(_) => super::embed::FACE_API_ARCHITECTURE,
        }
    }
}

/// How to train.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Where training starts: a fresh zoo net or face-api's descriptor.
    pub init: Init,
    /// The net (of [`Init::Scratch`]).
    pub embedding: EmbeddingConfig,
    /// The loss.
    pub loss: FaceLoss,
    /// Epochs (each `batches` P x K batches).
    pub epochs: usize,
    /// Subjects per batch.
    pub p: usize,
    /// Images per subject in a batch.
    pub k: usize,
    /// Batches per epoch (0: enough to see every training image about once).
    pub batches: usize,
    /// Adam's learning rate.
    pub learning_rate: f32,
    /// Seed of the weights, the batches and the augmentation.
    pub seed: u64,
    /// Evaluate on the held-out faces every this many epochs (0: never during training).
    pub eval_every: usize,
    /// Crash-safe checkpoints at every epoch end (and every N steps), and resuming.
    pub checkpoint: Option<CheckpointOptions>,
    /// Evaluate with mirror-averaged embeddings ([`super::embed::Embedder::mirror_average`]).
    pub mirror_average: bool,
    /// Train only these layers (every other one frozen); empty: train them all.
    pub tune_layers: Vec<String>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            init: Init::Scratch,
            embedding: EmbeddingConfig::default(),
            loss: FaceLoss::Triplet {
                mining: super::loss::Mining::BatchAll,
                margin: 0.2,
            },
            epochs: 30,
            p: 8,
            k: 4,
            batches: 0,
            learning_rate: 1e-3,
            seed: 1,
            eval_every: 10,
            checkpoint: None,
            mirror_average: true,
            tune_layers: Vec::new(),
        }
    }
}

impl TrainConfig {
    /// The defaults of fine-tuning face-api's descriptor from the package folder `dir`: only
    /// its last layer, the 256 -> 128 projection `fc`, is trained (the ResNet frozen), with a
    /// small margin (its unit vectors lie in a narrow cone: mean squared distance about 0.05),
    /// for a few epochs. Training the whole net instead (`tune_layers` empty) overfits the 30
    /// ORL subjects: held-out EER 0.7% -> 5.6% on s1-s10 (BENCHMARKS.md).
    pub fn fine_tune_face_api(dir: PathBuf) -> TrainConfig {
        TrainConfig {
            init: Init::FaceApi(dir),
            loss: FaceLoss::Triplet {
                mining: super::loss::Mining::BatchHard,
                margin: 0.02,
            },
            epochs: 4,
            learning_rate: 1e-4,
            eval_every: 1,
            tune_layers: vec!["fc".into()],
            ..TrainConfig::default()
        }
    }
}

/// One epoch of training.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: usize,
    /// Mean training loss.
    pub loss: f64,
    /// Mean squared distance between a batch's embeddings (the collapse monitor).
    pub mean_distance: f64,
    /// Seconds of the epoch.
    pub seconds: f64,
    /// Held-out AUC, on the epochs evaluated.
    pub val_auc: Option<f64>,
    /// Held-out EER, on the epochs evaluated.
    pub val_eer: Option<f64>,
    /// A collapse warning, if this epoch showed one.
    pub collapse: Option<String>,
}

/// What training gives back.
#[derive(Debug)]
pub struct Trained {
    /// The embedding net with the trained weights (no classification head).
    pub model: Model,
    /// What its input expects.
    pub prep: Preparation,
    /// The epochs.
    pub history: Vec<EpochRecord>,
    /// Wall time of the whole training, seconds.
    pub seconds: f64,
}

/// Why an epoch looks collapsed: distances near zero, or a triplet loss stuck at the margin
/// with small distances.
pub fn collapse_warning(loss: &FaceLoss, mean_distance: f64, epoch_loss: f64) -> Option<String> {
    if mean_distance < COLLAPSE_DISTANCE {
        return Some(format!(
            "embedding collapse: mean squared distance {mean_distance:.2e} (every face maps to nearly one point)"
        ));
    }
    if let FaceLoss::Triplet { margin, .. } = loss {
        let m = *margin as f64;
        if (epoch_loss - m).abs() < 0.02 * m && mean_distance < 2.0 * m {
            return Some(format!(
                "embedding collapse likely: loss {epoch_loss:.4} stuck at the margin {m} with mean squared distance {mean_distance:.3}"
            ));
        }
    }
    None
}

/// Trains on `train` (the training subjects), evaluating on `test` every `cfg.eval_every`
/// epochs; `progress` sees every epoch as it ends.
pub fn train(
    device: &Arc<Device>,
    train: &Faces,
    test: &Faces,
    cfg: &TrainConfig,
    mut progress: impl FnMut(&EpochRecord),
) -> Result<Trained> {
    let started = Instant::now();
    let subjects = train.subject_list();
    let classes: Vec<usize> = train
        .subjects
        .iter()
        .map(|s| subjects.iter().position(|t| t == s).unwrap_or(0))
        .collect();
    let prep = cfg.init.preparation(&cfg.embedding);
    let images: Vec<Image> = train.images.iter().map(|i| prep.apply(i)).collect::<Result<_>>()?;
    let (images, classes) = (Arc::new(images), Arc::new(classes));
    let batch = cfg.p * cfg.k;
    let batches = if cfg.batches > 0 {
        cfg.batches
    } else {
        train.images.len().div_ceil(batch.max(1)).max(1)
    };
    if cfg.epochs == 0 {
        return Err(DataError::value("--epochs", "must be at least 1"));
    }
    let loss = match cfg.loss {
        FaceLoss::Softmax { .. } => FaceLoss::Softmax {
            classes: subjects.len(),
        },
        other => other,
    };
    let model = match (&cfg.init, loss) {
        (Init::Scratch, FaceLoss::Softmax { classes }) => embedding_classifier(&cfg.embedding, classes, cfg.seed)?,
        (Init::Scratch, FaceLoss::Triplet { .. }) => embedding_net(&cfg.embedding, cfg.seed)?,
        (Init::FaceApi(_), FaceLoss::Softmax { .. }) => {
            return Err(DataError::value(
                "--loss softmax",
                "needs a classification head, which face-api's descriptor lacks: fine-tune it with batch-hard or batch-all",
            ));
        }
        (Init::FaceApi(dir), FaceLoss::Triplet { .. }) => face_api::descriptor_embedding(dir)?,
    };
    let mut model = model;
    if !cfg.tune_layers.is_empty() {
        model.set_all_trainable(false)?;
        for name in &cfg.tune_layers {
            model
                .set_trainable(name, true)
                .map_err(|e| DataError::value(format!("--tune-layers {name}"), e.to_string()))?;
        }
    }
    let compile = CompileConfig::with_terms(
        vec![loss.term()],
        Optimizer::adam(cfg.learning_rate),
        vec![mean_distance_metric()],
    );
    let mut cm = CompiledModel::new(device, model, compile)?;
    let task = format!(
        "faces {:?} {:?} tune {:?} | {loss:?} | {} images of {} subjects | P {} K {} x {batches} batches | lr {} | seed {}",
        cfg.init,
        cfg.embedding,
        cfg.tune_layers,
        train.images.len(),
        subjects.len(),
        cfg.p,
        cfg.k,
        cfg.learning_rate,
        cfg.seed
    );
    let history = cm.fit_epochs(
        cfg.epochs,
        batch,
        cfg.checkpoint.as_ref(),
        &task,
        |cm, epoch, inner| -> Result<(EpochRecord, Flow)> {
            let t0 = Instant::now();
            let ds = PkBatches::new(
                images.clone(),
                classes.clone(),
                cfg.p,
                cfg.k,
                batches,
                training_augmentation(),
                IMAGE_INPUT,
                cfg.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64),
            )?;
            let opts = FitOptions {
                epochs: 1,
                batch_size: batch,
                shuffle: false,
                seed: cfg.seed.wrapping_add(epoch as u64),
                verbosity: Verbosity::Silent,
                checkpoint: inner,
                ..FitOptions::default()
            };
            let h = cm.fit_dataset(Arc::new(ds), &opts)?;
            let log = h.epochs.first();
            let value = |key: &str| {
                log.and_then(|l| l.train.iter().find(|(k, _)| k == key).map(|(_, v)| *v))
                    .unwrap_or(f64::NAN)
            };
            let (epoch_loss, mean_distance) = (value("loss"), value("mean_distance"));
            let mut record = EpochRecord {
                epoch,
                loss: epoch_loss,
                mean_distance,
                seconds: 0.0,
                val_auc: None,
                val_eer: None,
                collapse: collapse_warning(&loss, mean_distance, epoch_loss),
            };
            if cfg.eval_every > 0 && (epoch % cfg.eval_every == 0 || epoch == cfg.epochs) && !test.images.is_empty() {
                let e = embed_compiled(cm, &prep, &test.images, cfg.mirror_average)?;
                if let Some((v, _)) = verify(&e, &test.subjects, 1.0) {
                    record.val_auc = Some(v.auc);
                    record.val_eer = Some(v.eer);
                }
            }
            record.seconds = t0.elapsed().as_secs_f64();
            progress(&record);
            if !epoch_loss.is_finite() {
                return Err(DataError::value(
                    "training",
                    format!("the loss became {epoch_loss} at epoch {epoch}; try a smaller --learning-rate"),
                ));
            }
            Ok((record, Flow::Continue))
        },
    )?;
    let trained = cm.model()?;
    // The embedding alone (a softmax run leaves its head behind).
    let mut model = match cfg.init {
        Init::Scratch => embedding_net(&cfg.embedding, cfg.seed)?,
        Init::FaceApi(_) => face_api::descriptor_embedding_architecture()?,
    };
    let names: Vec<String> = model.params.iter().map(|p| p.name.clone()).collect();
    for name in names {
        let value = trained
            .params
            .get(&name)
            .map(|p| p.value.clone())
            .ok_or_else(|| DataError::value("training", format!("the trained model lacks {name}")))?;
        model.set_weight(&name, value)?;
    }
    Ok(Trained {
        model,
        prep,
        history,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The threshold chosen on the training subjects' faces (balanced accuracy), for `embed`.
pub fn training_threshold(embeddings: &[Vec<f32>], subjects: &[u32]) -> Result<f64> {
    choose_threshold(embeddings, subjects).ok_or_else(|| {
        DataError::value(
            "training subjects",
            "need at least 2 subjects of 2 images to choose a threshold",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::faces::loss::Mining;

    #[test]
    fn collapse_is_flagged_by_distance_or_a_loss_stuck_at_the_margin() {
        let hard = FaceLoss::Triplet {
            mining: Mining::BatchHard,
            margin: 0.2,
        };
        assert!(collapse_warning(&hard, 1e-4, 0.2).unwrap().contains("collapse"));
        assert!(collapse_warning(&hard, 0.3, 0.201).unwrap().contains("margin"));
        assert!(collapse_warning(&hard, 1.5, 0.05).is_none());
        assert!(collapse_warning(&FaceLoss::Softmax { classes: 3 }, 0.3, 0.2).is_none());
    }
}
