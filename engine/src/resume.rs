//! Crash-safe, resumable training: `fit` writes a checkpoint at every epoch end (and every N
//! steps if asked) holding everything the rest of the run depends on, and continues from the
//! newest one on request.
//!
//! A checkpoint is one safetensors file, `DIR/step-<steps>.safetensors`, written atomically
//! (temporary file, fsync, rename), so a kill at any moment leaves the previous checkpoints
//! intact. It holds every device tensor of the model (parameters, batch-norm statistics and
//! optimizer slots, under their state names) and, in the `__metadata__` entry `fovea_run`, the
//! run's position as JSON ([`RunState`]): epochs and steps done, the states of the shuffling and
//! dropout random streams, the current epoch's sample order and per-step metrics, and the
//! history so far. With the same seed, data and options a resumed run computes exactly the
//! same steps as an uninterrupted one, so it ends with the same weights bit for bit (the
//! device's arithmetic is deterministic for a fixed program).

use crate::checkpoint::{read_safetensors, read_safetensors_metadata, write_safetensors_with};
use crate::error::{EngineError, Result};
use crate::fit::EpochLog;
use fovea_graph::Tensor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where and how often `fit` checkpoints a run, and whether it resumes.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointOptions {
    /// The folder holding the run's checkpoints (created if missing).
    pub dir: PathBuf,
    /// Also checkpoint every this many steps inside an epoch (0: at epoch ends only).
    pub every_steps: usize,
    /// Continue from the newest checkpoint in `dir`, if there is one.
    pub resume: bool,
    /// How many checkpoints to keep (the newest; at least 1).
    pub keep: usize,
}

impl CheckpointOptions {
    /// Epoch-end checkpoints in `dir`, keeping the newest two, not resuming.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CheckpointOptions {
            dir: dir.into(),
            every_steps: 0,
            resume: false,
            keep: 2,
        }
    }
}

/// The metadata key of the run state.
const RUN_KEY: &str = "fovea_run";

/// A run's position, as a checkpoint records it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunState {
    /// What must match for a resume to continue the same run (model, data size, batch, seed).
    pub fingerprint: String,
    /// Epochs finished.
    pub epochs_done: usize,
    /// Steps finished inside the current (unfinished) epoch; 0 at an epoch end.
    pub step_in_epoch: usize,
    /// Steps finished in the whole run (drives the learning-rate schedule and Adam's bias
    /// correction).
    pub steps_done: u64,
    /// State of the shuffling stream (after the current epoch's shuffle when mid-epoch).
    pub shuffle_rng: u64,
    /// State of the dropout-seed stream.
    pub dropout_rng: u64,
    /// The current epoch's sample order (empty at an epoch end).
    pub order: Vec<usize>,
    /// The current epoch's per-step loss and metric values so far.
    pub partial: Vec<Vec<f64>>,
    /// The sample count of each of those steps.
    pub partial_sizes: Vec<usize>,
    /// Training seconds spent in the current epoch so far.
    pub partial_seconds: f64,
    /// Seconds spent waiting for data in the current epoch so far.
    pub partial_wait: f64,
    /// The finished epochs' logs.
    pub history: Vec<EpochLog>,
    /// A task loop's own records of its finished epochs ([`crate::epochs`]); null for `fit`.
    #[serde(default)]
    pub task: serde_json::Value,
}

impl RunState {
    /// The state of run `fingerprint` at an epoch end with nothing done yet: no partial epoch,
    /// fresh random streams (the caller sets what it has).
    pub fn at_epoch_end(fingerprint: String) -> RunState {
        RunState {
            fingerprint,
            epochs_done: 0,
            step_in_epoch: 0,
            steps_done: 0,
            shuffle_rng: 0,
            dropout_rng: 0,
            order: Vec::new(),
            partial: Vec::new(),
            partial_sizes: Vec::new(),
            partial_seconds: 0.0,
            partial_wait: 0.0,
            history: Vec::new(),
            task: serde_json::Value::Null,
        }
    }
}

fn bad(path: &Path, message: impl Into<String>) -> EngineError {
    EngineError::Input {
        what: path.display().to_string(),
        message: message.into(),
    }
}

/// The checkpoint files in `dir` with their step counts, oldest first.
fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(bad(dir, format!("cannot list the checkpoint folder: {e}"))),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(step) = name
            .strip_prefix("step-")
            .and_then(|r| r.strip_suffix(".safetensors"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            out.push((step, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Writes a checkpoint of `tensors` at `state` into `opts.dir` and prunes old ones.
pub fn save(opts: &CheckpointOptions, state: &RunState, tensors: &[(String, Vec<f32>)]) -> Result<PathBuf> {
    std::fs::create_dir_all(&opts.dir).map_err(|e| bad(&opts.dir, format!("cannot create: {e}")))?;
    let path = opts.dir.join(format!("step-{:010}.safetensors", state.steps_done));
    let owned: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(n, d)| {
            (
                n.clone(),
                Tensor {
                    shape: vec![d.len()],
                    data: d.clone(),
                },
            )
        })
        .collect();
    let refs: Vec<(String, &Tensor)> = owned.iter().map(|(n, t)| (n.clone(), t)).collect();
    let json = serde_json::to_string(state).map_err(|e| bad(&path, format!("cannot encode the run state: {e}")))?;
    let meta = BTreeMap::from([(RUN_KEY.to_string(), json)]);
    write_safetensors_with(&path, &refs, &meta)?;
    let all = list(&opts.dir)?;
    let keep = opts.keep.max(1);
    if all.len() > keep {
        for (_, old) in &all[..all.len() - keep] {
            let _ = std::fs::remove_file(old);
        }
    }
    Ok(path)
}

/// A checkpoint read back: its file, the run state and the tensors.
pub type Loaded = (PathBuf, RunState, Vec<(String, Tensor)>);

/// The newest readable checkpoint in `dir` (its file, state and tensors), or `None` when the
/// folder has none. A checkpoint that cannot be read is skipped with a note on stderr, so a
/// damaged newest file falls back to the one before it.
pub fn newest(dir: &Path) -> Result<Option<Loaded>> {
    for (_, path) in list(dir)?.into_iter().rev() {
        match load(&path) {
            Ok((state, tensors)) => return Ok(Some((path, state, tensors))),
            Err(e) => eprintln!("note: skipping checkpoint {}: {e}", path.display()),
        }
    }
    Ok(None)
}

/// Reads one checkpoint file.
pub fn load(path: &Path) -> Result<(RunState, Vec<(String, Tensor)>)> {
    let meta = read_safetensors_metadata(path)?;
    let json = meta
        .get(RUN_KEY)
        .ok_or_else(|| bad(path, "not a Fovea training checkpoint (no run state in its metadata)"))?;
    let state: RunState =
        serde_json::from_str(json).map_err(|e| bad(path, format!("the run state is not readable: {e}")))?;
    let tensors = read_safetensors(path)?;
    Ok((state, tensors))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(steps: u64) -> RunState {
        RunState {
            fingerprint: "f".into(),
            epochs_done: 1,
            step_in_epoch: 2,
            steps_done: steps,
            shuffle_rng: u64::MAX - 3,
            dropout_rng: 12345678901234567890,
            order: vec![3, 1, 2],
            partial: vec![vec![0.5, 0.25]],
            partial_sizes: vec![4],
            partial_seconds: 1.5,
            partial_wait: 0.1,
            history: Vec::new(),
            task: serde_json::json!([{"epoch": 1}]),
        }
    }

    #[test]
    fn save_load_round_trip_and_pruning() {
        let dir = std::env::temp_dir().join(format!("fovea-resume-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let opts = CheckpointOptions::new(&dir);
        let tensors = vec![("a/kernel".to_string(), vec![1.0, -2.5, f32::MIN_POSITIVE])];
        for steps in [3, 7, 11] {
            save(&opts, &state(steps), &tensors).unwrap();
        }
        let files = list(&dir).unwrap();
        assert_eq!(files.iter().map(|f| f.0).collect::<Vec<_>>(), vec![7, 11]);
        let (path, back, t) = newest(&dir).unwrap().unwrap();
        assert!(path.ends_with("step-0000000011.safetensors"));
        assert_eq!(back, state(11), "u64 states survive JSON exactly");
        assert_eq!(t[0].1.data, tensors[0].1);
        // A damaged newest checkpoint falls back to the previous one.
        std::fs::write(&path, b"garbage").unwrap();
        let (_, back, _) = newest(&dir).unwrap().unwrap();
        assert_eq!(back.steps_done, 7);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_empty_or_missing_folder_has_no_checkpoint() {
        let dir = std::env::temp_dir().join(format!("fovea-resume-none-{}", std::process::id()));
        assert!(newest(&dir).unwrap().is_none());
    }
}
