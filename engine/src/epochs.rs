//! Crash-safe epoch loops for the task trainers (detection, segmentation, faces, style), which
//! run one `fit_dataset` call per epoch with a data set and seed of that epoch and then do
//! their own work (held-out scores, progress lines).
//!
//! [`CompiledModel::fit_epochs`] runs such a loop under a [`CheckpointOptions`]: at every
//! epoch end it writes a checkpoint (the device state, the steps done and the task's records
//! so far, as JSON in the run state's `task` field) into the checkpoint folder; with
//! `every_steps` the epoch's own `fit_dataset` also checkpoints mid-epoch into
//! `DIR/epoch-<e>/`, a folder removed once the epoch ends. Resuming restores the newest
//! epoch-end checkpoint, continues a half-done epoch from its mid-epoch checkpoint, and hands
//! the task back its records. Every epoch's data and seeds depend only on the epoch number, so
//! a resumed run ends with the same weights as an uninterrupted one.

use crate::error::EngineError;
use crate::fit::CompiledModel;
use crate::resume::{self, CheckpointOptions, RunState};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What an epoch of a task loop tells [`CompiledModel::fit_epochs`]: go on or stop early (a
/// time budget spent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Run the next epoch.
    Continue,
    /// This was the last epoch.
    Stop,
}

impl CompiledModel {
    /// Runs epochs `1..=epochs` of a task loop: `epoch(model, e, inner)` trains epoch `e`
    /// (passing `inner` as its `fit_dataset` checkpoint options: mid-epoch checkpoints, or
    /// `None`) and returns the task's record of it. With `checkpoint`, a checkpoint is written
    /// after every epoch and, when resuming, the finished epochs are skipped and their records
    /// returned from the checkpoint. `task` names the run (model, data, settings): a
    /// checkpoint of another run is refused. `batch` is the training batch size, whose step
    /// program must exist before a checkpoint's state can be restored.
    pub fn fit_epochs<R: Serialize + DeserializeOwned, E: From<EngineError>>(
        &mut self,
        epochs: usize,
        batch: usize,
        checkpoint: Option<&CheckpointOptions>,
        task: &str,
        mut epoch: impl FnMut(&mut CompiledModel, usize, Option<CheckpointOptions>) -> std::result::Result<(R, Flow), E>,
    ) -> std::result::Result<Vec<R>, E> {
        let fingerprint = format!("task {task} | model {} | {epochs} epochs", self.model_name());
        let mut records: Vec<R> = Vec::new();
        let mut first = 1;
        let mut resuming = false;
        if let Some(ck) = checkpoint.filter(|c| c.resume) {
            resuming = true;
            match resume::newest(&ck.dir)? {
                None => eprintln!(
                    "note: no epoch checkpoint in {} yet: starting from the beginning",
                    ck.dir.display()
                ),
                Some((path, run, tensors)) => {
                    if run.fingerprint != fingerprint {
                        return Err(EngineError::Input {
                            what: path.display().to_string(),
                            message: format!(
                                "this checkpoint belongs to another run ({}); this run is {fingerprint}: resume \
                                 with the same data and settings, or use another --checkpoint-dir",
                                run.fingerprint
                            ),
                        }
                        .into());
                    }
                    self.prepare_training(batch)?;
                    self.restore_tensors(&path, &tensors, run.steps_done)?;
                    records = serde_json::from_value(run.task.clone()).map_err(|e| EngineError::Input {
                        what: path.display().to_string(),
                        message: format!("the task's epoch records are not readable: {e}"),
                    })?;
                    first = run.epochs_done + 1;
                    eprintln!(
                        "resuming from {} after epoch {} (step {} of the run)",
                        path.display(),
                        run.epochs_done,
                        run.steps_done
                    );
                }
            }
        }
        if let Some(ck) = checkpoint.filter(|c| c.resume) {
            // A crash between an epoch-end checkpoint and the removal of that epoch's
            // mid-epoch folder leaves the folder behind: the finished epochs' folders go now.
            for e in 1..first {
                let _ = std::fs::remove_dir_all(ck.dir.join(format!("epoch-{e}")));
            }
        }
        for e in first..=epochs {
            let inner = checkpoint.filter(|c| c.every_steps > 0).map(|c| CheckpointOptions {
                dir: c.dir.join(format!("epoch-{e}")),
                every_steps: c.every_steps,
                // Only the epoch a crash cut short has a mid-epoch checkpoint to continue from.
                resume: resuming && e == first,
                keep: c.keep,
            });
            let (record, flow) = epoch(self, e, inner.clone())?;
            records.push(record);
            if let Some(ck) = checkpoint {
                let run = RunState {
                    fingerprint: fingerprint.clone(),
                    epochs_done: if flow == Flow::Stop { epochs } else { e },
                    steps_done: self.steps_done(),
                    task: serde_json::to_value(&records).map_err(|err| EngineError::Input {
                        what: ck.dir.display().to_string(),
                        message: format!("cannot encode the task's epoch records: {err}"),
                    })?,
                    ..RunState::at_epoch_end(fingerprint.clone())
                };
                let tensors = self.state_snapshot()?;
                resume::save(ck, &run, &tensors)?;
                if let Some(inner) = inner {
                    let _ = std::fs::remove_dir_all(inner.dir);
                }
            }
            if flow == Flow::Stop {
                break;
            }
        }
        Ok(records)
    }
}
