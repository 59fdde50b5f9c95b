//! Style transfer: paint a photo's content in a painting's style.
//!
//! The recipe: a loss network measures content (activations at one layer) and style (Gram
//! matrices at several layers) — by default random normalised multi-scale filters
//! ([`crate::zoo::style`]), or any Keras feature network ([`features`]); the losses are graph
//! functions ([`loss`]); [`optimize`] moves the pixels of one image (Gatys: L-BFGS or Adam),
//! [`feed_forward`] trains a transform network for one style (Johnson) that then stylises any
//! image in one pass; [`pictures`] lays results out as a gallery.

pub mod data;
pub mod feature_training;
pub mod features;
pub mod feed_forward;
pub mod loss;
pub mod optimize;
pub mod pictures;
