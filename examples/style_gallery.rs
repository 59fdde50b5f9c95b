//! The style-transfer gallery: every painting on every photo, by optimisation (and by
//! feed-forward transform networks when a folder of trained weights is given), one grid image
//! per method, plus a JSON record of each run's losses and seconds.
//!
//! ```sh
//! cargo run --release --example style_gallery -- DATA_DIR OUT_DIR [SIZE] [STEPS] [WEIGHTS_DIR]
//! ```
//! `DATA_DIR` holds `content/*.jpg` and `styles/*.jpg` (as `../shared/data/style`); the grids go
//! to `OUT_DIR/style-optimize.png` (and `style-feed-forward.png` with `WEIGHTS_DIR`, which holds
//! `<painting>.safetensors` from `fovea style train`).

use fovea::engine::Device;
use fovea::models::tasks::output::{write_atomic, write_json};
use fovea::models::tasks::style::data::{fit, image_files, read_rgb};
use fovea::models::tasks::style::features::LossNetwork;
use fovea::models::tasks::style::feed_forward::Stylizer;
use fovea::models::tasks::style::optimize::{OptimizeOptions, loss_parts, optimize};
use fovea::models::tasks::style::pictures::gallery;
use fovea::models::vision::BitDepth;
use fovea::models::vision::image_io::encode_png;
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
    let data = PathBuf::from(args.first().map(String::as_str).unwrap_or("../shared/data/style"));
    let out = PathBuf::from(args.get(1).map(String::as_str).unwrap_or("docs/img"));
    let size: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(192);
    let steps: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(80);
    let weights = args.get(4).map(PathBuf::from);
    let device = Arc::new(Device::new()?);
    eprintln!("adapter: {}", device.describe());
    let photos: Vec<PathBuf> = image_files(&data.join("content"))?;
    let paintings: Vec<PathBuf> = image_files(&data.join("styles"))?;
    let photo_images = photos.iter().map(|p| read_rgb(p)).collect::<Result<Vec<_>, _>>()?;
    let painting_images: Vec<(String, _)> = paintings
        .iter()
        .map(|p| Ok((stem(p), read_rgb(p)?)))
        .collect::<anyhow::Result<_>>()?;
    let net = LossNetwork::default();
    let opts = OptimizeOptions {
        size,
        steps,
        progress_every: 0,
        ..OptimizeOptions::default()
    };
    let mut runs = Vec::new();
    let mut optimized = Vec::new();
    for (pi, photo) in photo_images.iter().enumerate() {
        let mut row = Vec::new();
        for (name, painting) in &painting_images {
            let r = optimize(&device, &net, photo, painting, &opts, |_| {})?;
            eprintln!(
                "{} x {name}: style {:.4} -> {:.5} ({:.1}x), content {:.3}, {:.1} s",
                stem(&photos[pi]),
                r.start.style,
                r.end.style,
                r.start.style / r.end.style,
                r.end.content,
                r.seconds
            );
            let mut run = json!({
                "photo": stem(&photos[pi]), "painting": name, "method": "optimize",
                "style_loss_start": r.start.style, "style_loss_end": r.end.style,
                "content_loss_end": r.end.content, "seconds": r.seconds,
            });
            if let Some(dir) = &weights {
                let w = dir.join(format!("{name}.safetensors"));
                if w.is_file() {
                    let s = Stylizer::load(&w)?;
                    let t0 = std::time::Instant::now();
                    let y = s.apply(&device, &fit(photo, r.image.width, r.image.height)?)?;
                    let ms = t0.elapsed().as_secs_f64() * 1e3;
                    let parts = loss_parts(&device, &net, photo, painting, &y, &opts)?;
                    run["feed_forward_style_loss"] = json!(parts.style);
                    run["feed_forward_content_loss"] = json!(parts.content);
                    run["feed_forward_ms"] = json!(ms);
                }
            }
            runs.push(run);
            row.push(r.image);
        }
        optimized.push(row);
    }
    let grid = gallery(&photo_images, &painting_images, &optimized, 128)?;
    write_atomic(&out.join("style-optimize.png"), &encode_png(&grid, BitDepth::Eight)?)?;
    if let Some(dir) = &weights {
        let mut rows = Vec::new();
        for (pi, photo) in photo_images.iter().enumerate() {
            let mut row = Vec::new();
            for (name, _) in &painting_images {
                let w = dir.join(format!("{name}.safetensors"));
                let img = if w.is_file() {
                    let src = &optimized[pi][0];
                    Stylizer::load(&w)?.apply(&device, &fit(photo, src.width, src.height)?)?
                } else {
                    fovea::models::vision::Image::filled(8, 8, 3, 0.16)
                };
                row.push(img);
            }
            rows.push(row);
        }
        let grid = gallery(&photo_images, &painting_images, &rows, 128)?;
        write_atomic(
            &out.join("style-feed-forward.png"),
            &encode_png(&grid, BitDepth::Eight)?,
        )?;
    }
    write_json(
        &out.join("style-gallery.json"),
        &json!({ "adapter": device.describe(), "size": size, "steps": steps, "runs": runs }),
    )?;
    Ok(())
}
