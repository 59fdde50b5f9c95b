//! Training: the network, the loss, Adam, and the augmented patch stream, one epoch per `fit`
//! call so that held-out slices can be scored along the way and a time budget respected.

use std::sync::Arc;
use std::time::Instant;

use fovea_engine::{CheckpointOptions, CompiledModel, Device, EpochLog, FitOptions, Flow, History, Verbosity};
use fovea_graph::Model;
use fovea_graph::train::{CompileConfig, Optimizer, Schedule};

use super::data::{Slice, TrainStream};
use super::infer::{Inference, evaluate};
use super::loss::{LossWeights, loss_terms};
use super::metrics::Scores;
use super::model::NetSpec;
use crate::data::membrane::MembraneSet;
use crate::{DataError, Result};

/// The knobs of a training run.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// The network.
    pub net: NetSpec,
    /// Epochs (each `patches_per_epoch` random patches).
    pub epochs: usize,
    /// Random patches per epoch.
    pub patches_per_epoch: usize,
    /// Patches per step.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub learning_rate: f32,
    /// The learning rate over the run when it is not constant (a step counts one batch; see
    /// [`TrainOptions::steps_per_epoch`]); it replaces `learning_rate`.
    pub schedule: Option<Schedule>,
    /// The loss.
    pub loss: LossWeights,
    /// Seed of the weights, the patches and the augmentation.
    pub seed: u64,
    /// Worker threads preparing patches.
    pub workers: usize,
    /// Score the held-out slices every this many epochs (0: never; the caller scores the result).
    pub eval_every: usize,
    /// Stop after the epoch that passes this many seconds of wall time.
    pub time_budget_s: Option<f64>,
    /// Progress output.
    pub verbosity: Verbosity,
    /// Crash-safe checkpoints at every epoch end (and every N steps), and resuming.
    pub checkpoint: Option<CheckpointOptions>,
}

impl TrainOptions {
    /// The defaults of `fovea segment train`: 40 epochs of 48 patches (two per training slice
    /// of the standard split), batch 4, Adam 1e-3, the default loss.
    pub fn new(net: NetSpec) -> TrainOptions {
        TrainOptions {
            net,
            epochs: 40,
            patches_per_epoch: 48,
            batch_size: 4,
            learning_rate: 1e-3,
            schedule: None,
            loss: LossWeights::default(),
            seed: 0,
            workers: 2,
            eval_every: 0,
            time_budget_s: None,
            verbosity: Verbosity::Auto,
            checkpoint: None,
        }
    }

    /// Adam steps per epoch (the last batch of an epoch may be short).
    pub fn steps_per_epoch(&self) -> u64 {
        self.patches_per_epoch.div_ceil(self.batch_size.max(1)) as u64
    }
}

/// Compiles `model` with the membrane loss and Adam.
pub fn compile(device: &Arc<Device>, model: Model, learning_rate: f32, loss: LossWeights) -> Result<CompiledModel> {
    compile_with(device, model, Optimizer::adam(learning_rate), loss)
}

/// Compiles `model` with the membrane loss and `optimizer`.
pub fn compile_with(
    device: &Arc<Device>,
    model: Model,
    optimizer: Optimizer,
    loss: LossWeights,
) -> Result<CompiledModel> {
    let cfg = CompileConfig::with_terms(loss_terms(loss), optimizer, Vec::new());
    Ok(CompiledModel::new(device, model, cfg)?)
}

/// One line of the training log.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub loss: f64,
    /// Wall seconds since training started.
    pub elapsed_s: f64,
    /// Held-out scores, when evaluated after this epoch.
    pub held_out: Option<Scores>,
}

/// What training returns.
pub struct Trained {
    /// The compiled, trained network.
    pub model: CompiledModel,
    /// The per-epoch `fit` histories, concatenated.
    pub history: History,
    /// The log.
    pub epochs: Vec<EpochRecord>,
    /// Wall seconds of training (without the held-out scoring).
    pub train_seconds: f64,
}

/// Trains on `train` (patches cut from its slices), scoring `held_out` every `opts.eval_every`
/// epochs (that time is not counted as training time).
/// `on_epoch` sees every record as it is made (progress output).
pub fn train(
    device: &Arc<Device>,
    train: MembraneSet,
    held_out: &[Slice],
    opts: &TrainOptions,
    mut on_epoch: impl FnMut(&EpochRecord),
) -> Result<Trained> {
    if opts.epochs == 0 || opts.batch_size == 0 || opts.patches_per_epoch == 0 {
        return Err(DataError::value(
            "train",
            "epochs, batch size and patches per epoch must be positive",
        ));
    }
    let slices = train.pairs.len();
    let model = opts.net.build(opts.seed)?;
    let mut optimizer = Optimizer::adam(opts.learning_rate);
    if let Some(schedule) = &opts.schedule {
        optimizer.learning_rate = schedule.clone();
    }
    let mut cm = compile_with(device, model, optimizer, opts.loss)?;
    let stream: Arc<TrainStream> = Arc::new(TrainStream::new(train, opts.net.tile, opts.patches_per_epoch));
    let inference = Inference::new(opts.net.tile);
    let start = Instant::now();
    let mut eval_seconds = 0.0;
    // A resumed run's clock goes on from its last record.
    let mut offset: Option<f64> = None;
    let task = format!(
        "segment {:?} | {} slices | {} patches x {} epochs | batch {} | lr {} {:?} | loss {:?} | seed {}",
        opts.net,
        slices,
        opts.patches_per_epoch,
        opts.epochs,
        opts.batch_size,
        opts.learning_rate,
        opts.schedule,
        opts.loss,
        opts.seed
    );
    let done = cm.fit_epochs(
        opts.epochs,
        opts.batch_size,
        opts.checkpoint.as_ref(),
        &task,
        |cm, epoch, inner| -> Result<((EpochRecord, Vec<EpochLog>), Flow)> {
            let fit = FitOptions {
                epochs: 1,
                batch_size: opts.batch_size,
                shuffle: true,
                seed: opts.seed.wrapping_add(epoch as u64 * 7919),
                workers: opts.workers,
                verbosity: opts.verbosity,
                checkpoint: inner,
                ..FitOptions::default()
            };
            let h = cm.fit_dataset(stream.clone(), &fit)?;
            let loss = h.series("loss").first().copied().unwrap_or(f64::NAN);
            let logs: Vec<EpochLog> = h.epochs.into_iter().map(|e| EpochLog { epoch, ..e }).collect();
            let elapsed = *offset.get_or_insert(0.0) + start.elapsed().as_secs_f64() - eval_seconds;
            let last = epoch == opts.epochs || opts.time_budget_s.is_some_and(|b| elapsed >= b);
            let held = if !held_out.is_empty() && opts.eval_every > 0 && epoch % opts.eval_every == 0 {
                let t = Instant::now();
                let e = evaluate(cm, &inference, held_out)?;
                eval_seconds += t.elapsed().as_secs_f64();
                Some(e.mean)
            } else {
                None
            };
            let record = EpochRecord {
                epoch,
                loss,
                elapsed_s: elapsed,
                held_out: held,
            };
            on_epoch(&record);
            Ok(((record, logs), if last { Flow::Stop } else { Flow::Continue }))
        },
    )?;
    let mut history = History::default();
    let mut epochs = Vec::new();
    for (record, logs) in done {
        history.epochs.extend(logs);
        epochs.push(record);
    }
    let train_seconds = epochs.last().map_or(0.0, |r| r.elapsed_s);
    Ok(Trained {
        model: cm,
        history,
        epochs,
        train_seconds,
    })
}
