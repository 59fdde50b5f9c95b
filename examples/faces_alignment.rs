//! What `fovea faces --align` hands face-api's descriptor: ORL faces as they are (padded to a
//! square, the `--no-align` input) above their aligned 150x150 chips, the eyes BlazeFace found
//! put level at the chip geometry's places (marked by a cross in each chip).
//!
//! ```sh
//! cargo run --release --example faces_alignment -- [FACES] [OUT.png]
//! ```
//! `FACES` is what `--data` takes (default: the embedded subjects s1-s2,
//! `data/faces/att_faces_s1_s2.tar.gz`); the picture goes to `OUT.png` (default
//! `docs/img/faces-aligned.png`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fovea::engine::Device;
use fovea::models::data::orl::load_orl;
use fovea::models::tasks::faces::align::{Aligner, ChipGeometry};
use fovea::models::tasks::output::write_atomic;
use fovea::models::vision::draw::image_grid;
use fovea::models::vision::image_io::encode_png;
use fovea::models::vision::letterbox::letterbox;
use fovea::models::vision::{BitDepth, Image};

/// Faces shown, taken evenly from the set.
const SHOWN: usize = 8;

/// A small red cross centred at `(x, y)`.
fn mark(img: &mut Image, x: f32, y: f32) {
    let (cx, cy) = (x.round() as i64, y.round() as i64);
    for d in -3i64..=3 {
        for (px, py) in [(cx + d, cy), (cx, cy + d)] {
            if px >= 0 && py >= 0 && (px as usize) < img.width && (py as usize) < img.height {
                img.pixel_mut(px as usize, py as usize)
                    .copy_from_slice(&[1.0, 0.1, 0.1]);
            }
        }
    }
}

fn main() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let args: Vec<String> = std::env::args().skip(1).collect();
    let data = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("data/faces/att_faces_s1_s2.tar.gz"));
    let out = args
        .get(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("docs/img/faces-aligned.png"));
    let set = load_orl(&data)?;
    let step = (set.images.len() / SHOWN).max(1);
    let faces: Vec<Image> = set.images.iter().step_by(step).take(SHOWN).cloned().collect();
    let geometry = ChipGeometry::face_api();
    let aligner = Aligner::find(&[&root.join("data/pretrained")], geometry)?;
    let device = Arc::new(Device::new()?);
    let (mut chips, stats) = aligner.align(&device, &faces)?;
    eprintln!("aligned {} of {} faces", stats.aligned, faces.len());
    let s = geometry.size as f32;
    for chip in &mut chips {
        mark(chip, s * (0.5 - geometry.eye_distance / 2.0), s * geometry.eye_y);
        mark(chip, s * (0.5 + geometry.eye_distance / 2.0), s * geometry.eye_y);
    }
    let padded = faces
        .iter()
        .map(|f| Ok(letterbox(&f.to_rgb(), geometry.size, geometry.size, 0.0)?.0))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let grid = image_grid(&[padded, chips], &[], 4)?;
    write_atomic(&out, &encode_png(&grid, BitDepth::Eight)?)?;
    println!("wrote {}", out.display());
    Ok(())
}
