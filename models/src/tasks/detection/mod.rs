//! The detection task, as the recipe reads: data ([`data`], [`shapes`]), the model
//! ([`crate::zoo::detection`]), targets ([`targets`]), the loss ([`loss`]), training
//! ([`train`]), decoding ([`decode`]) and evaluation ([`evaluate`], [`metrics`]).

pub mod blazeface;
pub mod data;
pub mod decode;
pub mod evaluate;
pub mod inference;
pub mod loss;
pub mod metrics;
pub mod shapes;
pub mod targets;
pub mod train;
