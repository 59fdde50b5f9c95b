//! The segmentation models of the zoo, written with the Keras-like API.
