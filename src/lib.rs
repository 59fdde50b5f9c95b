//! # Fovea
//!
//! Fovea compiles Keras-style convolutional networks into hand-written WGSL compute shaders and
//! runs them on any GPU wgpu reaches (Vulkan, Metal, DX12) or, with no GPU, on Mesa's software
//! Vulkan (lavapipe).
//!
//! ```no_run
//! use fovea::prelude::*;
//! # fn main() -> anyhow::Result<()> {
//! let model = Sequential::new()
//!     .add(Input::new(&[28, 28, 1]))
//!     .add(Conv2D::new(32, 3).activation("relu"))
//!     .add(MaxPooling2D::new(2))
//!     .add(Flatten::new())
//!     .add(Dense::new(10))
//!     .build(42)?;
//! println!("{}", model.summary());
//! let device = Arc::new(Device::new()?);
//! let x = Tensor::zeros(vec![4, 28, 28, 1]);
//! let logits = predict(&device, &model, &x, 32)?;
//! assert_eq!(logits.shape, vec![4, 10]);
//! # Ok(()) }
//! ```

pub use fovea_engine as engine;
pub use fovea_formats as formats;
pub use fovea_graph as graph;
pub use fovea_kernels as kernels;
pub use fovea_models as models;

pub mod fuzzing;

/// Importers of models made elsewhere: `fovea::import::tflite::load(path)`,
/// `fovea::import::tfjs::load(manifest)` (named weights for architectures written in Fovea).
pub mod import {
    pub use fovea_formats::tfjs;
    pub use fovea_formats::tflite;
}

/// Everything a model script needs, with Keras's names.
pub mod prelude {
    pub use crate::Compile;
    pub use fovea_engine::{
        CompiledModel, Device, FitOptions, History, NamedArrays, Program, Targets, Verbosity, predict, predict_arrays,
    };
    pub use fovea_graph::layers::*;
    pub use fovea_graph::train::{
        CompileConfig, GraphFn, Loss, LossCtx, LossTerm, Metric, MetricTerm, Optimizer, Schedule,
    };
    pub use fovea_graph::{Functional, Model, Sequential, Tensor};
    pub use std::sync::Arc;
}

/// Keras's `model.compile(optimizer, loss, metrics)` on a built model.
pub trait Compile {
    /// Compiles the model for `device` with a loss, an optimizer and metrics by Keras name
    /// (`"accuracy"`, `"top_5_accuracy"`, ...); `fit`, `evaluate` and `predict` follow.
    fn compile(
        self,
        device: &std::sync::Arc<fovea_engine::Device>,
        optimizer: fovea_graph::train::Optimizer,
        loss: fovea_graph::train::Loss,
        metrics: &[&str],
    ) -> Result<fovea_engine::CompiledModel, fovea_engine::EngineError>;
}

impl Compile for fovea_graph::Model {
    fn compile(
        self,
        device: &std::sync::Arc<fovea_engine::Device>,
        optimizer: fovea_graph::train::Optimizer,
        loss: fovea_graph::train::Loss,
        metrics: &[&str],
    ) -> Result<fovea_engine::CompiledModel, fovea_engine::EngineError> {
        let metrics = metrics
            .iter()
            .map(|m| fovea_graph::train::Metric::parse(m))
            .collect::<Result<Vec<_>, _>>()?;
        fovea_engine::CompiledModel::new(
            device,
            self,
            fovea_graph::train::CompileConfig::new(loss, optimizer, metrics),
        )
    }
}
