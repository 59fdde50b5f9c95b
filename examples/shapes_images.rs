//! Writes synthetic-shapes images as PNG files, so that `fovea detect predict` can draw a
//! trained shapes detector's boxes on them. By default they are the first images of the test
//! set that `fovea detect train --synthetic N` holds out (seed 0, 256 pixels), which the
//! detector never saw.
//!
//! `cargo run --release --example shapes_images -- --out /tmp/shapes --count 4`
//! (`--synthetic N` the training-set size the test set belongs to, `--seed S`, `--input SIDE`
//! as given to `fovea detect train`), then
//! `fovea detect predict /tmp/shapes/*.png --weights W.safetensors --out /tmp/shapes-drawn`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use fovea_models::tasks::detection::shapes::ShapesSet;
use fovea_models::vision::image_io::{BitDepth, write_png};

fn main() -> anyhow::Result<()> {
    let mut out: Option<PathBuf> = None;
    let (mut count, mut synthetic, mut seed, mut input) = (4usize, 1024usize, 0u64, 256usize);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--out" => out = Some(PathBuf::from(value()?)),
            "--count" => count = value()?.parse().context("--count: expected a whole number")?,
            "--synthetic" => synthetic = value()?.parse().context("--synthetic: expected a whole number")?,
            "--seed" => seed = value()?.parse().context("--seed: expected a whole number")?,
            "--input" => input = value()?.parse().context("--input: expected a whole number")?,
            other => bail!("unknown argument {other} (expected --out, --count, --synthetic, --seed, --input)"),
        }
    }
    let out = out.context("--out DIR is required")?;
    anyhow::ensure!(input >= 32, "--input must be at least 32 pixels, got {input}");
    let test = ShapesSet::test_set(synthetic, input, seed);
    anyhow::ensure!(
        count <= test.len,
        "--count {count}: the test set of --synthetic {synthetic} holds {} images",
        test.len
    );
    std::fs::create_dir_all(&out).with_context(|| format!("--out {}", out.display()))?;
    for i in 0..count {
        let sample = test.draw(i);
        let path = out.join(format!("shapes-{i:03}.png"));
        write_png(&path, &sample.image, BitDepth::Eight)?;
        println!("{}: {} object(s)", path.display(), sample.boxes.len());
    }
    Ok(())
}
