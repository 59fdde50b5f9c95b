//! The vision tasks, each a folder that reads like the recipe: data, model, loss, fit,
//! evaluation, pictures. What is general lives in the core (`fovea_graph::train` for losses,
//! [`crate::vision`] and [`crate::data`] for images and loaders, [`crate::plot`] for plots);
//! a task holds only what is its own.

pub mod bench;
pub mod detection;
pub mod faces;
pub mod output;
pub mod segmentation;
pub mod style;
