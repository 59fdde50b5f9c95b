//! The Keras MNIST workflow in Rust: define, compile, fit with validation, evaluate, save.
//!
//! `cargo run --release --example train_mnist` (embedded digits; a few seconds per epoch on
//! lavapipe).

use fovea::models::data::mnist::{Split, embedded};
use fovea::prelude::*;

fn main() -> anyhow::Result<()> {
    let train = embedded(Split::Train)?.take(2000);
    let test = embedded(Split::Test)?;
    let model = Sequential::new()
        .add(Input::new(&[28, 28, 1]))
        .add(Conv2D::new(16, 3).activation("relu"))
        .add(MaxPooling2D::new(2))
        .add(Conv2D::new(32, 3).activation("relu"))
        .add(MaxPooling2D::new(2))
        .add(Flatten::new())
        .add(Dropout::new(0.25))
        .add(Dense::new(10))
        .build(42)?;
    print!("{}", model.summary());
    let device = Arc::new(Device::new()?);
    println!("device: {}", device.describe());
    let mut model = model.compile(
        &device,
        Optimizer::adam(0.001),
        Loss::SparseCategoricalCrossentropy { from_logits: true },
        &["accuracy"],
    )?;
    let opts = FitOptions {
        epochs: 2,
        batch_size: 32,
        validation: Some((test.images.clone(), Targets::Classes(test.labels.clone()))),
        ..FitOptions::default()
    };
    let history = model.fit(&train.images, &Targets::Classes(train.labels.clone()), &opts)?;
    println!("val_accuracy per epoch: {:?}", history.series("val_accuracy"));
    for (name, value) in model.evaluate(&test.images, &Targets::Classes(test.labels.clone()), 100)? {
        println!("test {name}: {value:.4}");
    }
    let path = std::env::temp_dir().join("fovea-mnist-example.safetensors");
    fovea::engine::checkpoint::save_params(&path, &model.model()?.params)?;
    println!("weights saved to {}", path.display());
    Ok(())
}
