//! Which loss network paints better: the random normalised filters (the default) or the same
//! four layers trained as a CIFAR-10 classifier (`fovea style features`). Every painting is
//! optimised onto every photo under each network at the same settings; each result is then
//! scored under both networks, so neither is judged only by its own measure. Writes a grid
//! (rows alternate random / trained, per photo) and a JSON record.
//!
//! ```sh
//! fovea style features --data ../shared/data/cifar10 --save features.safetensors
//! cargo run --release --example style_loss_networks -- DATA_DIR OUT_DIR features.safetensors [SIZE] [STEPS]
//! ```
//! `DATA_DIR` holds `content/*.jpg` and `styles/*.jpg` (as `../shared/data/style`); the grid goes
//! to `OUT_DIR/style-loss-networks.png`, the figures to `OUT_DIR/style-loss-networks.json`.

use fovea::engine::Device;
use fovea::models::tasks::output::{write_atomic, write_json};
use fovea::models::tasks::style::data::{fit, image_files, read_rgb};
use fovea::models::tasks::style::features::LossNetwork;
use fovea::models::tasks::style::optimize::{OptimizeOptions, loss_parts, optimize};
use fovea::models::tasks::style::pictures::gallery;
use fovea::models::vision::image_io::encode_png;
use fovea::models::vision::{BitDepth, Image};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data, out, weights, ..] = &args[..] else {
        anyhow::bail!("usage: style_loss_networks DATA_DIR OUT_DIR FEATURE_WEIGHTS [SIZE] [STEPS]");
    };
    let (data, out) = (PathBuf::from(data), PathBuf::from(out));
    let size: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(256);
    let steps: usize = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(120);
    let nets = [
        ("random", LossNetwork::default()),
        ("trained", LossNetwork::trained(Path::new(weights))?),
    ];
    let device = Arc::new(Device::new()?);
    eprintln!("adapter: {}", device.describe());
    let photos = image_files(&data.join("content"))?;
    let paintings = image_files(&data.join("styles"))?;
    let photo_images = photos.iter().map(|p| read_rgb(p)).collect::<Result<Vec<_>, _>>()?;
    let painting_images: Vec<(String, Image)> = paintings
        .iter()
        .map(|p| Ok((stem(p), read_rgb(p)?)))
        .collect::<anyhow::Result<_>>()?;
    let opts = OptimizeOptions {
        size,
        steps,
        progress_every: 0,
        ..OptimizeOptions::default()
    };
    let (mut runs, mut rows, mut row_photos) = (Vec::new(), Vec::new(), Vec::new());
    for (pi, photo) in photo_images.iter().enumerate() {
        for (net_name, net) in &nets {
            let mut row = Vec::new();
            for (name, painting) in &painting_images {
                let r = optimize(&device, net, photo, painting, &opts, |_| {})?;
                // The result, and the photo itself (the floor), scored under both networks.
                let mut scores = serde_json::Map::new();
                for (judge, jnet) in &nets {
                    let same_size = fit(photo, r.image.width, r.image.height)?;
                    let floor = loss_parts(&device, jnet, photo, painting, &same_size, &opts)?;
                    let got = loss_parts(&device, jnet, photo, painting, &r.image, &opts)?;
                    scores.insert(
                        judge.to_string(),
                        json!({"photo_style": floor.style, "style": got.style, "content": got.content,
                               "fall": floor.style / got.style}),
                    );
                }
                eprintln!(
                    "{} x {name}, {net_name} network: {:.1} s; fall under random {:.1}x, under trained {:.1}x",
                    stem(&photos[pi]),
                    r.seconds,
                    scores["random"]["fall"].as_f64().unwrap_or(f64::NAN),
                    scores["trained"]["fall"].as_f64().unwrap_or(f64::NAN),
                );
                runs.push(json!({
                    "photo": stem(&photos[pi]), "painting": name, "network": net_name,
                    "seconds": r.seconds, "scores": scores,
                }));
                row.push(r.image);
            }
            rows.push(row);
            row_photos.push(photo.clone());
        }
    }
    let grid = gallery(&row_photos, &painting_images, &rows, 128)?;
    write_atomic(
        &out.join("style-loss-networks.png"),
        &encode_png(&grid, BitDepth::Eight)?,
    )?;
    write_json(
        &out.join("style-loss-networks.json"),
        &json!({ "adapter": device.describe(), "size": size, "steps": steps, "feature_weights": weights, "runs": runs }),
    )?;
    Ok(())
}
