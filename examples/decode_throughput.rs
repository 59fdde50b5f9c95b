//! Decode throughput: every image of a VOC folder decoded (JPEG), made RGB and resized to
//! 320x320 on worker threads through the `Prefetcher`, reported as images per second.
//!
//! `cargo run --release --example decode_throughput -- --data ../shared/data/raccoon --threads 2`
//! (`--size N` changes the output side, `--batch N` the batch size, `--epochs N` the passes).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use fovea_engine::dataset::Prefetcher;
use fovea_models::data::detection_stream::DetectionStream;
use fovea_models::data::voc::{VocSplit, load_voc};

fn main() -> anyhow::Result<()> {
    let mut data = PathBuf::from("data/raccoon");
    let (mut threads, mut size, mut batch, mut epochs) = (2usize, 320usize, 8usize, 1u64);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--data" => data = PathBuf::from(value()?),
            "--threads" => threads = value()?.parse().context("--threads: expected a whole number")?,
            "--size" => size = value()?.parse().context("--size: expected a whole number")?,
            "--batch" => batch = value()?.parse().context("--batch: expected a whole number")?,
            "--epochs" => epochs = value()?.parse().context("--epochs: expected a whole number")?,
            other => bail!("unknown argument {other} (expected --data, --threads, --size, --batch, --epochs)"),
        }
    }
    let set = load_voc(&data, &VocSplit::All, None)?;
    if !set.warnings.is_empty() {
        eprintln!("{}", set.warnings);
    }
    let n = set.items.len();
    let stream: Arc<DetectionStream> = Arc::new(DetectionStream::new(set, (size, size)));
    let start = Instant::now();
    let mut images = 0usize;
    for epoch in 0..epochs {
        let prefetch = Prefetcher::new(stream.clone(), (0..n).collect(), batch, threads, 0, epoch, 4);
        for b in prefetch {
            images += b.map_err(anyhow::Error::msg)?.len();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{images} images from {} decoded and resized to {size}x{size} with {threads} threads in {secs:.2} s: {:.1} images/s",
        data.display(),
        images as f64 / secs
    );
    Ok(())
}
