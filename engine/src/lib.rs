//! # fovea-engine
//!
//! Runs Fovea programs on wgpu: adapter choice ([`Device`]), the pipeline cache, and compiled
//! [`Program`]s that record every dispatch of a run into one command encoder.

pub mod bench;
pub mod checkpoint;
pub mod dataset;
pub mod device;
mod dump;
pub mod epochs;
pub mod error;
pub mod fit;
pub mod lbfgs;
pub mod npy;
pub mod npz;
pub mod pipelines;
pub mod predict;
pub mod program;
pub mod progress;
mod readback;
pub mod resume;
pub mod shader_module;
pub mod state;
pub mod tuning;

pub use device::{Device, DeviceInfo};
pub use epochs::Flow;
pub use error::{EngineError, Result};
pub use fit::{CompiledModel, EpochLog, FitOptions, History, NamedArrays, Targets};
pub use predict::{predict, predict_arrays};
pub use program::{CompileOptions, Program};
pub use progress::Verbosity;
pub use resume::CheckpointOptions;
pub use state::DeviceState;
