//! Two pretrained models of the npm package `@vladmandic/face-api@1.7.15` (MIT), their
//! architectures written with Fovea's layers from the package's source and their weights read
//! from its tfjs manifests ([`fovea_formats::tfjs`]):
//!
//! - [`descriptor`]: the 128-d face descriptor (dlib's ResNet), input `(N, 150, 150, 3)` RGB in
//!   [0, 1], output `(N, 128)` (not normalised: face-api compares descriptors by Euclidean
//!   distance, 0.6 being its usual "same person" threshold);
//! - [`ssd_detector`]: the SSD-MobileNetV1 face detector, input `(N, 512, 512, 3)` RGB in [0, 1],
//!   outputs `box_encodings` `(N, 5118, 4)` and `scores` `(N, 5118)`, with the shipped anchors;
//!   [`detect_faces`] decodes one image's outputs and runs the package's NMS, giving [`FaceBox`]es
//!   in input pixels.
//!
//! `dir` is the cache folder of `tools/pretrained/fetch.sh` (default [`default_dir`]); the
//! package resizes its inputs itself (bilinear, padded to a square at the bottom/right for the
//! detector, centred for the descriptor); here the caller hands the model its input size.
//! Parameters are named after the package's tensors with `/` as `_`
//! (`conv32_1/conv1/conv/filters` -> `conv32_1_conv1_conv/kernel`).

mod descriptor;
mod layers;
mod ssd;
mod ssd_decode;

pub use descriptor::{DESCRIPTOR_LEN, MEAN_RGB};
pub use layers::{ChannelScale, Normalize, PadChannels};
pub use ssd::ANCHORS;
pub use ssd_decode::{FaceBox, NormBox, SsdOptions, decode_boxes, detect_faces, iou, non_max_suppression};

use crate::error::{DataError, Result};
use fovea_formats::tfjs::{self, Weights};
use fovea_graph::{Model, Tensor};
use std::path::{Path, PathBuf};

/// The descriptor's input side, pixels.
pub const DESCRIPTOR_INPUT: usize = descriptor::INPUT_SIZE;
/// The detector's input side, pixels.
pub const SSD_INPUT: usize = ssd::INPUT_SIZE;
/// The descriptor's manifest in the cache folder.
pub const DESCRIPTOR_MANIFEST: &str = "face_recognition_model-weights_manifest.json";
/// The detector's manifest in the cache folder.
pub const SSD_MANIFEST: &str = "ssd_mobilenetv1_model-weights_manifest.json";

/// The cache folder of `tools/pretrained/fetch.sh`: `$FOVEA_PRETRAINED_DIR`, else
/// `~/.cache/fovea/pretrained`.
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FOVEA_PRETRAINED_DIR") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    home.join(".cache/fovea/pretrained")
}

/// The face descriptor with the package's weights from `dir`.
pub fn descriptor(dir: &Path) -> Result<Model> {
    descriptor_with_weights(dir, false)
}

/// The descriptor with its output L2-normalised (a `UnitNormalization` named `embedding`
/// after `fc`) and the package's weights from `dir`: the starting point of fine-tuning
/// (`fovea faces train --init face-api`). Same parameters as [`descriptor`].
pub fn descriptor_embedding(dir: &Path) -> Result<Model> {
    descriptor_with_weights(dir, true)
}

/// The descriptor (its output unit-normalised when `unit`) with the package's weights.
fn descriptor_with_weights(dir: &Path, unit: bool) -> Result<Model> {
    let weights = read_manifest(dir, DESCRIPTOR_MANIFEST)?;
    let mut b = Binder::default();
    let mut model = descriptor::build(&mut b, unit)?;
    b.apply(&mut model, &weights)?;
    Ok(model)
}

/// [`descriptor_embedding`]'s architecture with placeholder weights, for loading a
/// fine-tuned descriptor's weights file (which holds every parameter) without the package.
pub fn descriptor_embedding_architecture() -> Result<Model> {
    descriptor::build(&mut Binder::default(), true)
}

/// The SSD face detector: its model and the anchors its outputs are decoded against.
#[derive(Debug)]
pub struct SsdDetector {
    /// The network: `image` `(N, 512, 512, 3)` in [0, 1] -> `box_encodings` `(N, 5118, 4)`,
    /// `scores` `(N, 5118)`.
    pub model: Model,
    /// The 5118 anchors (`Output/extra_dim`), normalised `[ymin, xmin, ymax, xmax]`.
    pub anchors: Vec<NormBox>,
}

impl SsdDetector {
    /// One image's faces from its slices of the two outputs (`5118 * 4` and `5118` values), in
    /// pixels of the 512x512 input.
    pub fn faces(&self, encodings: &[f32], scores: &[f32], opts: &SsdOptions) -> Result<Vec<FaceBox>> {
        detect_faces(encodings, scores, &self.anchors, opts, SSD_INPUT, SSD_INPUT)
    }
}

/// The SSD-MobileNetV1 face detector with the package's weights and anchors from `dir`.
pub fn ssd_detector(dir: &Path) -> Result<SsdDetector> {
    let weights = read_manifest(dir, SSD_MANIFEST)?;
    let mut b = Binder::default();
    let mut model = ssd::build(&mut b)?;
    b.apply(&mut model, &weights)?;
    let a = weights.expect("Output/extra_dim", &[1, ANCHORS, 4])?;
    let anchors = a.data.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]).collect();
    Ok(SsdDetector { model, anchors })
}

/// Reads `dir/name`, or says how to get it.
fn read_manifest(dir: &Path, name: &str) -> Result<Weights> {
    let path = dir.join(name);
    if !path.is_file() {
        return Err(DataError::Missing {
            dir: dir.to_path_buf(),
            names: name.to_string(),
            hint: "; run tools/pretrained/fetch.sh [DIR] to fetch @vladmandic/face-api@1.7.15".into(),
        });
    }
    Ok(tfjs::load(&path)?)
}

/// Which part of a manifest tensor a parameter takes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pick {
    /// The whole tensor.
    All,
    /// Elements `start, start + step, ...` of the last axis (one class of a class predictor).
    LastAxis { start: usize, step: usize },
}

/// The parameter <- manifest tensor pairs an architecture records while it is built.
#[derive(Debug, Default)]
struct Binder {
    pairs: Vec<(String, String, Pick)>,
}

impl Binder {
    /// Parameter `param` takes manifest tensor `tensor` whole.
    fn bind(&mut self, param: &str, tensor: &str) {
        self.bind_pick(param, tensor, Pick::All);
    }

    /// Parameter `param` takes the part `pick` of manifest tensor `tensor`.
    fn bind_pick(&mut self, param: &str, tensor: &str, pick: Pick) {
        self.pairs.push((param.to_string(), tensor.to_string(), pick));
    }

    /// Copies every bound tensor into `model`, checking shapes, and checks that no parameter
    /// of the model is left without one.
    fn apply(&self, model: &mut Model, w: &Weights) -> Result<()> {
        for (param, tensor, pick) in &self.pairs {
            let want = model
                .params
                .get(param)
                .map(|p| p.value.shape.clone())
                .ok_or_else(|| DataError::value(param, "the architecture has no such parameter"))?;
            let src = w.get(tensor).ok_or_else(|| {
                DataError::format(
                    &w.source,
                    format!("no tensor '{tensor}' (for parameter {param}, shape {want:?})"),
                )
            })?;
            let (shape, data) = match *pick {
                Pick::All => (src.shape.clone(), src.data.clone()),
                Pick::LastAxis { start, step } => last_axis(&src.shape, &src.data, start, step),
            };
            if shape != want {
                return Err(DataError::format(
                    &w.source,
                    format!("tensor '{tensor}' gives parameter {param} shape {shape:?}, expected {want:?}"),
                ));
            }
            model.set_weight(param, Tensor::new(shape, data, param)?)?;
        }
        for p in model.params.iter() {
            if !self.pairs.iter().any(|(name, _, _)| *name == p.name) {
                return Err(DataError::value(
                    &p.name,
                    "no manifest tensor is bound to this parameter",
                ));
            }
        }
        Ok(())
    }
}

/// Elements `start, start + step, ...` of the last axis of a row-major tensor.
fn last_axis(shape: &[usize], data: &[f32], start: usize, step: usize) -> (Vec<usize>, Vec<f32>) {
    let last = shape.last().copied().unwrap_or(1);
    let keep: Vec<usize> = (start..last).step_by(step.max(1)).collect();
    let mut out_shape = shape.to_vec();
    if let Some(l) = out_shape.last_mut() {
        *l = keep.len();
    }
    let data = data
        .chunks_exact(last.max(1))
        .flat_map(|row| keep.iter().map(|&k| row[k]))
        .collect();
    (out_shape, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_axis_takes_every_third_column_from_the_second() {
        let data: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let (s, d) = last_axis(&[2, 6], &data, 1, 3);
        assert_eq!(s, vec![2, 2]);
        assert_eq!(d, vec![1.0, 4.0, 7.0, 10.0]);
    }

    #[test]
    fn the_architectures_build_with_the_package_shapes() {
        let mut b = Binder::default();
        let m = descriptor::build(&mut b, false).unwrap();
        assert_eq!(m.input_shapes(), vec![vec![150, 150, 3]]);
        assert_eq!(m.output_shapes(), vec![vec![128]]);
        // 117 manifest tensors, one parameter each
        assert_eq!(b.pairs.len(), 117);
        assert_eq!(m.params.len(), 117);
        // The fine-tuning form: the same parameters, a unit-normalised `embedding` output.
        let e = descriptor_embedding_architecture().unwrap();
        assert_eq!(e.output_names(), vec![crate::zoo::faces::EMBEDDING_OUTPUT.to_string()]);
        assert_eq!(e.output_shapes(), vec![vec![128]]);
        for p in m.params.iter() {
            assert_eq!(
                e.params.get(&p.name).map(|q| q.value.shape.clone()),
                Some(p.value.shape.clone())
            );
        }
        assert_eq!(e.params.len(), 117);
        let mut b = Binder::default();
        let m = ssd::build(&mut b).unwrap();
        assert_eq!(m.output_shapes(), vec![vec![ANCHORS, 4], vec![ANCHORS]]);
        assert_eq!(m.output_names(), vec!["box_encodings", "scores"]);
        assert_eq!(m.params.len(), b.pairs.len());
    }

    #[test]
    fn a_missing_cache_says_how_to_fetch_it() {
        let e = descriptor(Path::new("/nonexistent/fovea")).unwrap_err().to_string();
        assert!(e.contains(DESCRIPTOR_MANIFEST) && e.contains("fetch.sh"), "{e}");
        let e = ssd_detector(Path::new("/nonexistent/fovea")).unwrap_err().to_string();
        assert!(e.contains(SSD_MANIFEST), "{e}");
    }
}
