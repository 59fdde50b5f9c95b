//! Face alignment: find the face with MediaPipe's BlazeFace, then cut a square chip in which
//! the eyes sit level at fixed places (a similarity transform: rotation, scale and shift), as
//! face descriptors trained on aligned crops expect (face-api's descriptor is dlib's ResNet,
//! trained on chips with the eyes at about a third of the height). A face the detector misses
//! is padded to a square instead, and counted.

use std::path::Path;
use std::sync::Arc;

use fovea_engine::Device;
use fovea_graph::Model;

use crate::error::{DataError, Result};
use crate::tasks::detection::blazeface::{BlazeFaceSpec, detect_faces_in};
use crate::vision::Image;
use crate::vision::augment::{Affine, warp_affine};
use crate::vision::letterbox::letterbox;

/// The BlazeFace model file the aligner uses (shipped in the repo's `data/pretrained/`).
pub const DETECTOR_FILE: &str = "face_detection_short_range.tflite";

/// Where the eyes go in a chip, as fractions of its side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChipGeometry {
    /// The chip's side in pixels.
    pub size: usize,
    /// Height of the eye line from the top.
    pub eye_y: f32,
    /// Distance between the eye centres.
    pub eye_distance: f32,
}

impl ChipGeometry {
    /// face-api's descriptor input: 150 x 150, the eyes a third of the side apart on a line at
    /// 0.36 of its height: dlib's chip layout (its mean face shape with 25% padding) read off
    /// once, not tuned; checked on the training subjects s1-s30 only (BENCHMARKS.md).
    pub fn face_api() -> ChipGeometry {
        ChipGeometry {
            size: 150,
            eye_y: 0.36,
            eye_distance: 0.33,
        }
    }

    /// The map from photo pixels to chip pixels that puts the `right` eye (image left) and the
    /// `left` eye at their places.
    pub fn map(&self, right: (f32, f32), left: (f32, f32)) -> Option<Affine> {
        let s = self.size as f32;
        let half = 0.5 * self.eye_distance * s;
        let y = self.eye_y * s;
        Affine::similarity([right, left], [(0.5 * s - half, y), (0.5 * s + half, y)])
    }
}

/// Alignment figures of one batch of faces.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AlignStats {
    /// Faces aligned on detected eyes.
    pub aligned: usize,
    /// Faces the detector missed (padded to a square instead).
    pub missed: usize,
}

/// BlazeFace and a chip geometry.
#[derive(Debug)]
pub struct Aligner {
    model: Model,
    spec: BlazeFaceSpec,
    /// Where the eyes go.
    pub chip: ChipGeometry,
}

impl Aligner {
    /// The aligner with BlazeFace short range from `path` (a TFLite file).
    pub fn load(path: &Path, chip: ChipGeometry) -> Result<Aligner> {
        let model = fovea_formats::tflite::load(path).map_err(|e| DataError::format(path, e.to_string()))?;
        let mut spec = BlazeFaceSpec::short_range();
        // Every input holds one face: take the best candidate even when it is unsure.
        spec.min_score = 0.3;
        Ok(Aligner { model, spec, chip })
    }

    /// The aligner with the first of `folders` that holds [`DETECTOR_FILE`]; the error names
    /// every folder tried.
    pub fn find(folders: &[&Path], chip: ChipGeometry) -> Result<Aligner> {
        match folders.iter().map(|f| f.join(DETECTOR_FILE)).find(|p| p.is_file()) {
            Some(p) => Aligner::load(&p, chip),
            None => Err(DataError::Missing {
                dir: folders.first().map(|f| f.to_path_buf()).unwrap_or_default(),
                names: DETECTOR_FILE.into(),
                hint: format!(
                    " (looked in {}); run tools/pretrained/fetch.sh",
                    folders
                        .iter()
                        .map(|f| f.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }

    /// One chip per image, RGB, `chip.size` square, and how many were aligned.
    pub fn align(&self, device: &Arc<Device>, images: &[Image]) -> Result<(Vec<Image>, AlignStats)> {
        let mut stats = AlignStats::default();
        let mut chips = Vec::with_capacity(images.len());
        let rgb: Vec<Image> = images.iter().map(Image::to_rgb).collect();
        let found = detect_faces_in(device, &self.model, &self.spec, &rgb)?;
        for (rgb, faces) in rgb.iter().zip(found) {
            let map = faces
                .first()
                .and_then(|f| self.chip.map(f.keypoints[0], f.keypoints[1]));
            let size = self.chip.size;
            match map.and_then(|m| warp_affine(rgb, &m, size, size, 0.0)) {
                Some(chip) => {
                    stats.aligned += 1;
                    chips.push(chip);
                }
                None => {
                    stats.missed += 1;
                    chips.push(letterbox(rgb, size, size, 0.0)?.0);
                }
            }
        }
        Ok((chips, stats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chip_map_puts_tilted_eyes_level_at_their_places() {
        let g = ChipGeometry::face_api();
        // Eyes 40 px apart, the left one 10 px lower (a tilted head).
        let m = g.map((30.0, 50.0), (70.0, 60.0)).unwrap();
        let (r, l) = (m.apply(30.0, 50.0), m.apply(70.0, 60.0));
        let want_y = 0.36 * 150.0;
        assert!(
            (r.1 - want_y).abs() < 1e-3 && (l.1 - want_y).abs() < 1e-3,
            "{r:?} {l:?}"
        );
        assert!((l.0 - r.0 - 0.33 * 150.0).abs() < 1e-3);
        assert!(((r.0 + l.0) / 2.0 - 75.0).abs() < 1e-3);
        assert!(g.map((1.0, 1.0), (1.0, 1.0)).is_none());
    }

    #[test]
    fn a_missing_detector_names_the_folders() {
        let e = Aligner::find(
            &[Path::new("/nowhere-a"), Path::new("/nowhere-b")],
            ChipGeometry::face_api(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("/nowhere-a") && e.contains("/nowhere-b") && e.contains(DETECTOR_FILE),
            "{e}"
        );
    }
}
