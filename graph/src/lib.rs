//! # fovea-graph
//!
//! The device-free half of Fovea: the typed graph IR ([`ir`]), Keras-like layers and models
//! ([`layers`], [`model`]), seeded initializers ([`init`]) and the CPU reference interpreter
//! ([`interp`]) that every GPU kernel is checked against.

pub mod dump;
pub mod error;
pub mod grad;
pub mod init;
pub mod interp;
pub mod ir;
pub mod keras;
pub mod ops;
pub mod tensor;
pub mod train;

pub use error::{GraphError, Result};
pub use ir::{DType, Graph, Node, NodeId, Op, TensorType};
pub use tensor::Tensor;
pub mod layers;
pub mod model;
pub mod passes;
pub mod plan;

pub use model::{Functional, Model, Sequential};
