//! The seed classification CNNs (Keras's CIFAR-10 CNN tutorial model and its MNIST variant).

use crate::error::Result;
use fovea_graph::layers::{Conv2D, Dense, Flatten, Input, MaxPooling2D};
use fovea_graph::{Model, Sequential};

/// The seed CNN on `input` images with `classes` logits: Conv2D 32 3x3 relu, MaxPooling2D 2,
/// Conv2D 64 3x3 relu, MaxPooling2D 2, Conv2D 64 3x3 relu, Flatten, Dense 64 relu, Dense.
pub fn seed_cnn(input: [usize; 3], classes: usize, seed: u64) -> Result<Model> {
    Ok(Sequential::new()
        .add(Input::new(&input))
        .add(Conv2D::new(32, 3).activation("relu"))
        .add(MaxPooling2D::new(2))
        .add(Conv2D::new(64, 3).activation("relu"))
        .add(MaxPooling2D::new(2))
        .add(Conv2D::new(64, 3).activation("relu"))
        .add(Flatten::new())
        .add(Dense::new(64).activation("relu"))
        .add(Dense::new(classes))
        .build(seed)?)
}

/// The seed CNN for CIFAR-10 (32x32x3, 10 classes): 122,570 parameters.
pub fn cifar10_cnn(seed: u64) -> Result<Model> {
    seed_cnn([32, 32, 3], 10, seed)
}

/// The seed CNN for MNIST (28x28x1, 10 classes): 93,322 parameters.
pub fn mnist_cnn(seed: u64) -> Result<Model> {
    seed_cnn([28, 28, 1], 10, seed)
}
