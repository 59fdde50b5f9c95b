//! The segmentation task, as the recipe reads: membrane data with a held-out split
//! ([`data`]), a U-Net or DeepLab-style network ([`model`], from [`crate::zoo::segmentation`]),
//! a class-weighted cross-entropy plus Dice loss ([`loss`]), training ([`train`]), overlap-tile
//! inference on whole slices ([`tiles`], [`infer`]), the ISBI scores ([`metrics`]), mask and
//! overlay pictures ([`pictures`]), and MediaPipe's pretrained person segmenter ([`selfie`]).

pub mod data;
pub mod infer;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod pictures;
pub mod selfie;
pub mod tiles;
pub mod train;
