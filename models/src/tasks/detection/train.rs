//! Training the detector: the model of [`SsdLiteConfig`], the focal + smooth-L1 loss, AdamW
//! with warm-up and cosine decay, and a [`TargetStream`] streamed through the prefetcher.

use std::sync::Arc;

use fovea_engine::fit::{CompiledModel, EpochLog, FitOptions, History};
use fovea_engine::{CheckpointOptions, Device, Flow, Verbosity};
use fovea_graph::train::{CompileConfig, Optimizer, Schedule};

use super::data::{SampleSource, TargetStream};
use super::loss::DetectionLoss;
use super::targets::{BoxCoder, MatchRule, anchors};
use crate::Result;
use crate::zoo::detection::{SsdLiteConfig, ssd_lite};

/// How to train.
#[derive(Debug, Clone)]
pub struct TrainSettings {
    /// Passes over the data.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Peak learning rate (after warm-up).
    pub learning_rate: f32,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f32,
    /// Warm-up steps (linear from 0).
    pub warmup_steps: u64,
    /// Seed of the weights, the shuffling and the augmentation.
    pub seed: u64,
    /// Data worker threads.
    pub workers: usize,
    /// The loss.
    pub loss: DetectionLoss,
    /// Matching thresholds.
    pub rule: MatchRule,
    /// Box encoding.
    pub coder: BoxCoder,
    /// Progress output.
    pub verbosity: Verbosity,
    /// Crash-safe checkpoints at every epoch end (and every N steps), and resuming.
    pub checkpoint: Option<CheckpointOptions>,
}

impl Default for TrainSettings {
    /// 200 epochs of batch 16 at AdamW 2e-3 (weight decay 1e-4), 50 warm-up steps, seed 0.
    fn default() -> Self {
        TrainSettings {
            epochs: 200,
            batch_size: 16,
            learning_rate: 2e-3,
            weight_decay: 1e-4,
            warmup_steps: 50,
            seed: 0,
            workers: 2,
            loss: DetectionLoss::default(),
            rule: MatchRule::default(),
            coder: BoxCoder::default(),
            verbosity: Verbosity::Auto,
            checkpoint: None,
        }
    }
}

impl TrainSettings {
    /// The optimizer for `steps` steps in all: AdamW, linear warm-up, cosine decay to 1 %,
    /// gradients clipped to global norm 10.
    pub fn optimizer(&self, steps: u64) -> Optimizer {
        let mut opt = Optimizer::adamw(self.learning_rate, self.weight_decay);
        opt.learning_rate = Schedule::warmup_cosine(self.learning_rate, steps, self.warmup_steps, 0.01);
        opt.global_clipnorm = Some(10.0);
        opt
    }
}

/// The stream of training targets for `source` and the detector `cfg`.
pub fn target_stream(cfg: &SsdLiteConfig, source: Arc<dyn SampleSource>, settings: &TrainSettings) -> TargetStream {
    TargetStream {
        source,
        anchors: Arc::new(anchors(cfg)),
        side: cfg.input,
        classes: cfg.classes,
        rule: settings.rule,
        coder: settings.coder,
    }
}

/// Compiles a fresh detector of `cfg` for training `steps` steps.
pub fn compile(
    device: &Arc<Device>,
    cfg: &SsdLiteConfig,
    settings: &TrainSettings,
    steps: u64,
) -> Result<CompiledModel> {
    let model = ssd_lite(cfg, settings.seed)?;
    let cc = CompileConfig::with_terms(settings.loss.terms(), settings.optimizer(steps), vec![]);
    Ok(CompiledModel::new(device, model, cc)?)
}

/// What the training loop reports after every epoch: the model (to save a checkpoint), the
/// epoch's log, and the epochs done so far.
pub type EpochHook<'a> = dyn FnMut(&mut CompiledModel, &EpochLog, usize) -> Result<()> + 'a;

/// Trains a fresh detector of `cfg` on `source`; returns it with its history.
pub fn train(
    device: &Arc<Device>,
    cfg: &SsdLiteConfig,
    source: Arc<dyn SampleSource>,
    settings: &TrainSettings,
) -> Result<(CompiledModel, History)> {
    train_with(device, cfg, source, settings, &mut |_, _, _| Ok(()))
}

/// [`train`], calling `hook` after every epoch. Each epoch is one `fit_dataset` pass with its
/// own seed (`seed + epoch`), so shuffling and augmentation differ from epoch to epoch and the
/// learning-rate schedule runs on over the whole training.
pub fn train_with(
    device: &Arc<Device>,
    cfg: &SsdLiteConfig,
    source: Arc<dyn SampleSource>,
    settings: &TrainSettings,
    hook: &mut EpochHook<'_>,
) -> Result<(CompiledModel, History)> {
    let n = source.len();
    if n == 0 {
        return Err(crate::DataError::value("data", "no training images"));
    }
    let batch = settings.batch_size.clamp(1, n);
    let steps = (n.div_ceil(batch) * settings.epochs) as u64;
    let mut cm = compile(device, cfg, settings, steps)?;
    let stream = target_stream(cfg, source, settings);
    let stream: Arc<dyn fovea_engine::dataset::Dataset> = Arc::new(stream);
    let task = format!(
        "detect {cfg:?} | {n} images | batch {batch} | lr {} wd {} warm-up {} | {:?} {:?} {:?} | seed {}",
        settings.learning_rate,
        settings.weight_decay,
        settings.warmup_steps,
        settings.loss,
        settings.rule,
        settings.coder,
        settings.seed
    );
    let logs = cm.fit_epochs(
        settings.epochs,
        batch,
        settings.checkpoint.as_ref(),
        &task,
        |cm, epoch, inner| -> Result<(Vec<EpochLog>, Flow)> {
            let opts = FitOptions {
                epochs: 1,
                batch_size: batch,
                seed: settings.seed.wrapping_add(epoch as u64 * 1_000_003),
                workers: settings.workers,
                verbosity: settings.verbosity,
                checkpoint: inner,
                ..FitOptions::default()
            };
            let h = cm.fit_dataset(stream.clone(), &opts)?;
            let mut logs = Vec::new();
            for mut log in h.epochs {
                log.epoch = epoch;
                hook(cm, &log, epoch)?;
                logs.push(log);
            }
            Ok((logs, Flow::Continue))
        },
    )?;
    let history = History {
        epochs: logs.into_iter().flatten().collect(),
    };
    Ok((cm, history))
}
