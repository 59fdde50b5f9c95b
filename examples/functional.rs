//! A small residual network with the functional API: build it, print its summary, run it.
//!
//! `cargo run --example functional`

use fovea::prelude::*;

fn main() -> anyhow::Result<()> {
    let mut f = Functional::new("tiny_resnet");
    let x = f.input(Input::new(&[16, 16, 3]));
    let stem = f.call(Conv2D::new(8, 3).padding("same").activation("relu"), &[x]);
    let branch = f.call(Conv2D::new(8, 3).padding("same").activation("relu"), &[stem]);
    let branch = f.call(Conv2D::new(8, 3).padding("same"), &[branch]);
    let sum = f.call(Add::new(), &[stem, branch]);
    let act = f.call(Activation::new("relu"), &[sum]);
    let pooled = f.call(GlobalAveragePooling2D::new(), &[act]);
    let out = f.call(Dense::new(10).activation("softmax"), &[pooled]);
    let model = f.build(&[out], 7)?;
    print!("{}", model.summary());

    let device = Arc::new(Device::new()?);
    println!("device: {}", device.describe());
    let images = Tensor::full(vec![4, 16, 16, 3], 0.5);
    let probs = predict(&device, &model, &images, 4)?;
    for row in probs.data.chunks(10) {
        let total: f32 = row.iter().sum();
        println!("class probabilities sum to {total:.4}: {row:.3?}");
    }
    Ok(())
}
