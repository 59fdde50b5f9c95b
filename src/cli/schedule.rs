//! `--lr-schedule`: the learning rate over a training run, shared by the training commands.

use fovea_graph::train::Schedule;

/// The learning rate over a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LrSchedule {
    /// The same rate every step.
    Constant,
    /// A linear warm-up over the first epoch, then a cosine decay to 1% at the last step.
    Cosine,
}

impl LrSchedule {
    /// The name on the command line and in the metrics JSON.
    pub fn name(self) -> &'static str {
        match self {
            LrSchedule::Constant => "constant",
            LrSchedule::Cosine => "cosine",
        }
    }

    /// The schedule for a run of `epochs` epochs of `steps_per_epoch` steps peaking at `peak`.
    pub fn schedule(self, peak: f32, steps_per_epoch: u64, epochs: u64) -> Schedule {
        match self {
            LrSchedule::Constant => Schedule::Constant(peak),
            LrSchedule::Cosine => Schedule::epoch_cosine(peak, steps_per_epoch, epochs),
        }
    }
}
