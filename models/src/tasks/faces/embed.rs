//! Faces to embeddings: one path for every model. An [`Embedder`] is a model and the input
//! preparation it expects; a trained zoo net and face-api's pretrained descriptor differ only
//! in those two.

use std::path::Path;
use std::sync::Arc;

use fovea_engine::{CompiledModel, Device, NamedArrays, checkpoint};
use fovea_graph::{Model, Tensor};

use super::align::Aligner;
use crate::error::{DataError, Result};
use crate::vision::augment::mirror_x;
use crate::vision::letterbox::letterbox;
use crate::vision::{Filter, Image, Normalization, images_to_tensor, resize};
use crate::zoo::faces::{EMBEDDING_OUTPUT, EmbeddingConfig, embedding_net};

/// Images predicted per batch.
const BATCH: usize = 50;

/// The safetensors metadata key that names a faces weights file's architecture.
pub const MODEL_METADATA: &str = "faces_model";
/// [`MODEL_METADATA`] of the zoo's embedding net (also what a file without the key is).
pub const ZOO_ARCHITECTURE: &str = "zoo-embedding";
/// [`MODEL_METADATA`] of a fine-tuned face-api descriptor.
pub const FACE_API_ARCHITECTURE: &str = "face-api";

/// The safetensors metadata key saying a net was trained on aligned faces ([`Aligner`]).
pub const ALIGN_METADATA: &str = "faces_align";
/// [`ALIGN_METADATA`]'s value: BlazeFace's eyes to fixed places.
pub const ALIGN_EYES: &str = "blazeface-eyes";

/// Saves a trained embedding net's weights to `path` with its architecture's name
/// (`architecture`: [`ZOO_ARCHITECTURE`] or [`FACE_API_ARCHITECTURE`]) and, when `aligned`, the
/// mark that it was trained on aligned faces in the file's metadata, which
/// [`Embedder::trained`] and [`weights_aligned`] read back.
pub fn save_weights(path: &Path, model: &Model, architecture: &str, aligned: bool) -> Result<()> {
    let list: Vec<(String, &Tensor)> = model.params.iter().map(|p| (p.name.clone(), &p.value)).collect();
    let mut meta = std::collections::BTreeMap::from([(MODEL_METADATA.to_string(), architecture.to_string())]);
    if aligned {
        meta.insert(ALIGN_METADATA.to_string(), ALIGN_EYES.to_string());
    }
    Ok(checkpoint::write_safetensors_with(path, &list, &meta)?)
}

/// Whether the weights file at `path` was trained on aligned faces (so its faces must be
/// aligned the same way before embedding).
pub fn weights_aligned(path: &Path) -> Result<bool> {
    Ok(checkpoint::read_safetensors_metadata(path)?
        .get(ALIGN_METADATA)
        .map(String::as_str)
        == Some(ALIGN_EYES))
}

/// How a face image becomes a model input.
#[derive(Debug, Clone, PartialEq)]
pub enum Preparation {
    /// Resized (area filter) to `height x width`, grey (1 channel) or RGB (3), `[0, 1]`.
    Resize {
        /// Rows.
        height: usize,
        /// Columns.
        width: usize,
        /// 1 or 3.
        channels: usize,
    },
    /// Padded to a square (black), resized to `size x size`, RGB in `[0, 1]` (face-api's
    /// descriptor; its mean subtraction happens inside its graph).
    PadSquare {
        /// The side.
        size: usize,
    },
}

impl Preparation {
    /// The preparation of a zoo embedding net of `cfg`.
    pub fn for_config(cfg: &EmbeddingConfig) -> Preparation {
        Preparation::Resize {
            height: cfg.input[0],
            width: cfg.input[1],
            channels: cfg.input[2],
        }
    }

    /// Prepares one image.
    pub fn apply(&self, image: &Image) -> Result<Image> {
        match *self {
            Preparation::Resize {
                height,
                width,
                channels,
            } => {
                let img = if channels == 3 { image.to_rgb() } else { image.to_gray() };
                if (img.width, img.height) == (width, height) {
                    return Ok(img);
                }
                resize(&img, width, height, Filter::Area)
            }
            Preparation::PadSquare { size } => Ok(letterbox(&image.to_rgb(), size, size, 0.0)?.0),
        }
    }

    /// Prepares `images` and stacks them into `(N, H, W, C)`.
    pub fn tensor(&self, images: &[Image]) -> Result<Tensor> {
        let prepared = images.iter().map(|i| self.apply(i)).collect::<Result<Vec<_>>>()?;
        images_to_tensor(&prepared, &Normalization::UnitRange)
    }
}

/// A model that maps prepared faces to embeddings.
#[derive(Debug)]
pub struct Embedder {
    /// The network: input images, an output called `embedding` (or a single output).
    pub model: Model,
    /// What its input expects.
    pub prep: Preparation,
    /// What it is, for reports (`trained:W.safetensors`, `face-api`).
    pub kind: String,
    /// Embed each face and its mirror image and use their normalised mean (the usual test-time
    /// flip of face verification; on by default for learnt embeddings, off for raw pixels).
    pub mirror_average: bool,
    /// Align each face first ([`Aligner`]: BlazeFace's eyes to fixed places in a chip), before
    /// the preparation; `None` takes the images as they are.
    pub align: Option<Aligner>,
}

impl Embedder {
    /// The net `fovea faces train --save` wrote to `path`, with its weights: the zoo net of
    /// `cfg`, or a fine-tuned face-api descriptor when the file's metadata says so
    /// ([`MODEL_METADATA`]). Errors name the file and list every missing or mis-shaped weight.
    pub fn trained(path: &Path, cfg: &EmbeddingConfig) -> Result<Embedder> {
        let meta = checkpoint::read_safetensors_metadata(path)?;
        let (mut model, prep) = match meta.get(MODEL_METADATA).map(String::as_str) {
            None | Some(ZOO_ARCHITECTURE) => (embedding_net(cfg, 0)?, Preparation::for_config(cfg)),
            Some(FACE_API_ARCHITECTURE) => (
                crate::zoo::face_api::descriptor_embedding_architecture()?,
                Preparation::PadSquare {
                    size: crate::zoo::face_api::DESCRIPTOR_INPUT,
                },
            ),
            Some(other) => {
                return Err(DataError::format(
                    path,
                    format!(
                        "its {MODEL_METADATA} metadata is '{other}'; expected {ZOO_ARCHITECTURE} or {FACE_API_ARCHITECTURE}"
                    ),
                ));
            }
        };
        checkpoint::load_params(path, &mut model.params)?;
        Ok(Embedder {
            model,
            prep,
            kind: format!("trained:{}", path.display()),
            mirror_average: true,
            align: None,
        })
    }

    /// The raw-pixel floor: the face resized to `height x width` grey, its pixels the
    /// "embedding" (Euclidean nearest neighbour on pixels), through the same path.
    pub fn raw_pixels(height: usize, width: usize) -> Result<Embedder> {
        let model = fovea_graph::Sequential::named("raw_pixels")
            .add(fovea_graph::layers::Input::new(&[height, width, 1]).name("image"))
            .add(fovea_graph::layers::Flatten::new().name(EMBEDDING_OUTPUT))
            .build(0)?;
        Ok(Embedder {
            model,
            prep: Preparation::Resize {
                height,
                width,
                channels: 1,
            },
            kind: "raw-pixels".into(),
            mirror_average: false,
            align: None,
        })
    }

    /// The floor every trained result is reported beside: [`Embedder::raw_pixels`] at ORL's
    /// full 112x92.
    pub fn pixel_floor() -> Result<Embedder> {
        Embedder::raw_pixels(112, 92)
    }

    /// face-api's pretrained 128-d descriptor from the package folder `dir`.
    pub fn face_api(dir: &Path) -> Result<Embedder> {
        Ok(Embedder {
            model: crate::zoo::face_api::descriptor(dir)?,
            prep: Preparation::PadSquare { size: 150 },
            kind: "face-api".into(),
            mirror_average: true,
            align: None,
        })
    }

    /// Embeddings of `images`, one row each (aligned first with [`Embedder::align`],
    /// mirror-averaged when [`Embedder::mirror_average`]).
    pub fn embed(&self, device: &Arc<Device>, images: &[Image]) -> Result<Vec<Vec<f32>>> {
        let aligned;
        let images = match &self.align {
            Some(a) => {
                aligned = a.align(device, images)?.0;
                &aligned[..]
            }
            None => images,
        };
        let once = |images: &[Image]| -> Result<Vec<Vec<f32>>> {
            let x = self.prep.tensor(images)?;
            let inputs = NamedArrays::new().with(&self.model.input_names()[0], x);
            let outs = fovea_engine::predict_arrays(device, &self.model, &inputs, BATCH.min(images.len().max(1)))?;
            rows(pick_embedding(outs)?)
        };
        with_mirrors(self.mirror_average, images, once)
    }
}

/// Embeddings of `images` from a model being trained (its current weights), prepared as `prep`,
/// mirror-averaged when `mirror_average`.
pub fn embed_compiled(
    cm: &mut CompiledModel,
    prep: &Preparation,
    images: &[Image],
    mirror_average: bool,
) -> Result<Vec<Vec<f32>>> {
    let name = cm.model()?.input_names()[0].clone();
    with_mirrors(mirror_average, images, |images| {
        let x = prep.tensor(images)?;
        let outs = cm.predict_arrays(&NamedArrays::new().with(&name, x), BATCH.min(images.len().max(1)))?;
        rows(pick_embedding(outs)?)
    })
}

/// `embed(images)`, or with `mirror`, the normalised sums of the rows of `embed(images)` and
/// `embed(mirrored images)`.
fn with_mirrors(
    mirror: bool,
    images: &[Image],
    mut embed: impl FnMut(&[Image]) -> Result<Vec<Vec<f32>>>,
) -> Result<Vec<Vec<f32>>> {
    let plain = embed(images)?;
    if !mirror {
        return Ok(plain);
    }
    let mirrored: Vec<Image> = images.iter().map(mirror_x).collect();
    Ok(mirror_averaged(plain, embed(&mirrored)?))
}

/// Row-wise `(a + b) / |a + b|` (a zero sum stays zero).
pub fn mirror_averaged(a: Vec<Vec<f32>>, b: Vec<Vec<f32>>) -> Vec<Vec<f32>> {
    a.into_iter()
        .zip(b)
        .map(|(a, b)| {
            let sum: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
            let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm > 0.0 {
                sum.iter().map(|v| v / norm).collect()
            } else {
                sum
            }
        })
        .collect()
}

fn pick_embedding(mut outs: Vec<(String, Tensor)>) -> Result<Tensor> {
    let i = outs.iter().position(|(n, _)| n == EMBEDDING_OUTPUT).unwrap_or(0);
    if outs.is_empty() {
        return Err(DataError::value("embedding model", "has no outputs"));
    }
    Ok(outs.swap_remove(i).1)
}

fn rows(t: Tensor) -> Result<Vec<Vec<f32>>> {
    let [_, d] = t.shape[..] else {
        return Err(DataError::value(
            "embedding model",
            format!("its output must be (N, D), got {:?}", t.shape),
        ));
    };
    Ok(t.data.chunks(d.max(1)).map(<[f32]>::to_vec).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preparations_give_the_model_sizes() {
        let img = Image::filled(92, 112, 1, 0.5);
        let r = Preparation::for_config(&EmbeddingConfig::default())
            .apply(&img)
            .unwrap();
        assert_eq!((r.width, r.height, r.channels), (46, 56, 1));
        assert!(r.data.iter().all(|v| (v - 0.5).abs() < 1e-6));
        let s = Preparation::PadSquare { size: 150 }.apply(&img).unwrap();
        assert_eq!((s.width, s.height, s.channels), (150, 150, 3));
        // 92 of 112 columns are face: the padded columns at the sides are black.
        assert_eq!(s.pixel(0, 75), &[0.0, 0.0, 0.0]);
        assert!((s.pixel(75, 75)[0] - 0.5).abs() < 1e-6);
        let t = Preparation::PadSquare { size: 150 }
            .tensor(&[img.clone(), img])
            .unwrap();
        assert_eq!(t.shape, vec![2, 150, 150, 3]);
    }

    #[test]
    fn mirror_averaging_normalises_the_sum() {
        let got = mirror_averaged(
            vec![vec![1.0, 0.0], vec![0.0, 0.0]],
            vec![vec![0.0, 1.0], vec![0.0, 0.0]],
        );
        let h = std::f32::consts::FRAC_1_SQRT_2;
        assert!((got[0][0] - h).abs() < 1e-7 && (got[0][1] - h).abs() < 1e-7, "{got:?}");
        assert_eq!(got[1], [0.0, 0.0]);
    }

    #[test]
    fn face_api_without_its_files_is_an_error_naming_the_folder() {
        let e = Embedder::face_api(Path::new("/nowhere")).unwrap_err().to_string();
        assert!(e.contains("/nowhere"), "{e}");
    }
}
