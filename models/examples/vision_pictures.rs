//! Writes one picture of each kind from the embedded data: detection boxes with labels and
//! scores, a membrane mask overlay, and an input | target | prediction grid.
//!
//! `cargo run -p fovea-models --example vision_pictures -- OUT_DIR` (default: the temp folder).

use std::path::{Path, PathBuf};

use fovea_graph::init::Rng;
use fovea_models::data::detection_stream::DetectionStream;
use fovea_models::data::membrane::{MembraneStream, load_membrane};
use fovea_models::data::voc::{VocSplit, load_voc};
use fovea_models::vision::augment::{Augmentation, Elastic};
use fovea_models::vision::draw::{Detection, draw_detections, image_grid, overlay_mask};
use fovea_models::vision::{BitDepth, write_png};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data");
    let set = load_voc(&data.join("raccoon"), &VocSplit::All, None)?;
    let classes = set.classes.clone();
    let stream = DetectionStream::new(set, (320, 320));
    let s = stream.sample(0, &mut Rng::new(0))?;
    let mut dets: Vec<Detection> = s
        .boxes
        .iter()
        .map(|&b| Detection {
            bbox: b,
            score: Some(0.93),
        })
        .collect();
    dets.push(Detection {
        bbox: fovea_models::vision::BBox::new(200.0, 240.0, 300.0, 310.0, 1),
        score: Some(0.41),
    });
    let boxes = draw_detections(&s.image, &dets, &classes)?;
    write_png(&out.join("fovea_boxes.png"), &boxes, BitDepth::Eight)?;

    let mut membrane = MembraneStream::new(load_membrane(&data.join("membrane"))?);
    let plain = membrane.sample(0, &mut Rng::new(0))?;
    let mask = plain.mask.clone().ok_or("no mask")?;
    let overlay = overlay_mask(&plain.image, &mask, 0.4, Some(1))?;
    write_png(&out.join("fovea_overlay.png"), &overlay, BitDepth::Eight)?;

    membrane.pipeline.steps.push(Augmentation::Elastic {
        p: 1.0,
        elastic: Elastic::default(),
    });
    let bent = membrane.sample(0, &mut Rng::new(3))?;
    let bent_mask = bent.mask.clone().ok_or("no mask")?;
    let bent_overlay = overlay_mask(&bent.image, &bent_mask, 0.4, Some(1))?;
    let grid = image_grid(
        &[
            vec![plain.image.clone(), mask.clone(), overlay],
            vec![bent.image, bent_mask, bent_overlay],
        ],
        &["input", "target", "overlay"],
        4,
    )?;
    write_png(&out.join("fovea_grid.png"), &grid, BitDepth::Eight)?;
    println!(
        "wrote fovea_boxes.png, fovea_overlay.png, fovea_grid.png to {}",
        out.display()
    );
    Ok(())
}
