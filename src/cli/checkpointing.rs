//! The checkpoint flags every training command shares (`#[command(flatten)]` them).

use fovea_engine::CheckpointOptions;
use std::path::PathBuf;

/// `--checkpoint-dir`, `--checkpoint-every`, `--resume`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckpointArgs {
    /// Write a crash-safe checkpoint (weights, optimizer state, position, random streams) into
    /// this folder at every epoch end; with --resume, continue from its newest checkpoint.
    #[arg(long)]
    pub checkpoint_dir: Option<PathBuf>,
    /// Also checkpoint every N training steps (needs --checkpoint-dir).
    #[arg(long, requires = "checkpoint_dir")]
    pub checkpoint_every: Option<usize>,
    /// Continue from the newest checkpoint in --checkpoint-dir (starts afresh if it has none).
    /// A resumed run ends with the same weights as an uninterrupted one with the same flags.
    #[arg(long, requires = "checkpoint_dir")]
    pub resume: bool,
}

impl CheckpointArgs {
    /// The engine's options, or `None` without --checkpoint-dir.
    pub fn options(&self) -> anyhow::Result<Option<CheckpointOptions>> {
        let Some(dir) = &self.checkpoint_dir else {
            return Ok(None);
        };
        if dir.exists() && !dir.is_dir() {
            anyhow::bail!("--checkpoint-dir {}: exists and is not a folder", dir.display());
        }
        let every = self.checkpoint_every.unwrap_or(0);
        if self.checkpoint_every == Some(0) {
            anyhow::bail!("--checkpoint-every must be at least 1 (leave it out for epoch ends only)");
        }
        Ok(Some(CheckpointOptions {
            every_steps: every,
            resume: self.resume,
            ..CheckpointOptions::new(dir)
        }))
    }
}
