//! `fovea predict`: the seed MNIST CNN on MNIST test digits.

use anyhow::Context;
use fovea_engine::{Device, checkpoint, predict};
use fovea_models::data::mnist::{self, Split};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Arguments of `fovea predict`.
pub struct Args {
    pub data: Option<PathBuf>,
    pub weights: Option<PathBuf>,
    pub count: usize,
    pub batch_size: usize,
    pub seed: u64,
    pub show: usize,
}

fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b })
        .0
}

/// Classifies the first `count` test digits and reports accuracy and throughput.
pub fn run(a: Args) -> anyhow::Result<()> {
    anyhow::ensure!(a.count > 0, "--count must be positive");
    anyhow::ensure!(a.batch_size > 0, "--batch-size must be positive");
    let data = match &a.data {
        Some(dir) => mnist::load(dir, Split::Test)?,
        None => mnist::embedded(Split::Test)?,
    }
    .take(a.count);
    let mut model = fovea_models::zoo::mnist_cnn(a.seed)?;
    match &a.weights {
        Some(w) => checkpoint::load_params(w, &mut model.params)
            .with_context(|| format!("loading --weights {}", w.display()))?,
        None => eprintln!(
            "note: random weights (seed {}); pass --weights FILE.safetensors for trained ones",
            a.seed
        ),
    }
    let device = Arc::new(Device::new()?);
    eprintln!("device: {}", device.describe());
    let start = Instant::now();
    let logits = predict(&device, &model, &data.images, a.batch_size)?;
    let secs = start.elapsed().as_secs_f64();
    let classes = logits.shape[1];
    let mut correct = 0;
    for (i, row) in logits.data.chunks(classes).enumerate() {
        let p = argmax(row);
        if p == data.labels[i] as usize {
            correct += 1;
        }
        if i < a.show {
            println!("image {i:>5}: predicted {p}, label {}", data.labels[i]);
        }
    }
    let n = data.len();
    println!("accuracy: {correct}/{n} = {:.2}%", 100.0 * correct as f64 / n as f64);
    println!(
        "time: {:.3} s ({:.0} images/s, including compilation)",
        secs,
        n as f64 / secs
    );
    Ok(())
}
