//! [`ArrayStream`]: an in-memory labelled image set served as a streaming data set with
//! augmentation, so classification trains through the same prefetcher as the other tasks.

use fovea_engine::dataset::{Dataset, Example};
use fovea_graph::Tensor;
use fovea_graph::init::Rng;

use super::Dataset as LabelledImages;
use crate::vision::Image;
use crate::vision::augment::{Augmentation, Pipeline, Sample};
use crate::{DataError, Result};

/// Parses a comma-separated augmentation list for 32x32-style classification images:
/// `flip` (horizontal, p = 0.5), `crop` (pad 4 with zeros, random crop back to size) and
/// `reflect-crop` (the same shifts with the border filled by reflection); so `flip,crop` is the
/// standard CIFAR recipe. The empty string is no augmentation.
pub fn parse_array_augment(spec: &str) -> Result<Pipeline> {
    let mut steps = Vec::new();
    for word in spec.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        steps.push(match word {
            "flip" => Augmentation::HorizontalFlip(0.5),
            "crop" => Augmentation::PadCrop(4),
            "reflect-crop" => Augmentation::ReflectPadCrop(4),
            other => {
                return Err(DataError::value(
                    "--augment",
                    format!("unknown augmentation '{other}' (expected flip, crop, reflect-crop)"),
                ));
            }
        });
    }
    Ok(Pipeline { steps })
}

/// Serves samples of an in-memory NHWC image tensor: field `image_field` `(h, w, c)` and field
/// `label_field` (the class index, a scalar), each image passed through `pipeline` (which must
/// keep the size; `flip` and `crop` do).
#[derive(Debug, Clone)]
pub struct ArrayStream {
    /// The images and labels.
    pub data: LabelledImages,
    /// Augmentation.
    pub pipeline: Pipeline,
    /// Name of the image field (the model input's name).
    pub image_field: String,
    /// Name of the label field (the output layer's name).
    pub label_field: String,
}

impl ArrayStream {
    /// A stream of `data` through `pipeline`; errors if the images are not NHWC.
    pub fn new(data: LabelledImages, pipeline: Pipeline, image_field: &str, label_field: &str) -> Result<ArrayStream> {
        if data.images.shape.len() != 4 || data.images.shape[0] != data.labels.len() {
            return Err(DataError::value(
                "images",
                format!(
                    "shape {:?} is not (count, height, width, channels) for {} labels",
                    data.images.shape,
                    data.labels.len()
                ),
            ));
        }
        Ok(ArrayStream {
            data,
            pipeline,
            image_field: image_field.into(),
            label_field: label_field.into(),
        })
    }
}

impl Dataset for ArrayStream {
    fn len(&self) -> usize {
        self.data.labels.len()
    }

    fn get(&self, index: usize, rng: &mut Rng) -> std::result::Result<Example, String> {
        let [n, h, w, c] = self.data.images.shape[..] else {
            return Err("images are not NHWC".into());
        };
        if index >= n {
            return Err(format!("image {index} is outside the set ({n})"));
        }
        let per = h * w * c;
        let image = Image {
            width: w,
            height: h,
            channels: c,
            data: self.data.images.data[index * per..(index + 1) * per].to_vec(),
        };
        let out = if self.pipeline.steps.is_empty() {
            image
        } else {
            self.pipeline
                .apply(Sample::new(image), rng)
                .map_err(|e| e.to_string())?
                .image
        };
        if (out.width, out.height, out.channels) != (w, h, c) {
            return Err(format!(
                "the augmentation changed the size {w}x{h} to {}x{}",
                out.width, out.height
            ));
        }
        Ok(Example::default()
            .with(
                &self.image_field,
                Tensor {
                    shape: vec![h, w, c],
                    data: out.data,
                },
            )
            .with(
                &self.label_field,
                Tensor {
                    shape: vec![],
                    data: vec![self.data.labels[index] as f32],
                },
            ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fovea_engine::dataset::Prefetcher;
    use std::sync::Arc;

    /// Four 6x6 one-channel images, image `k` with a single 1 at `(k + 1, 2)`.
    fn tiny() -> LabelledImages {
        let mut data = vec![0.0; 4 * 36];
        for k in 0..4 {
            data[k * 36 + 2 * 6 + k + 1] = 1.0;
        }
        LabelledImages {
            images: Tensor {
                shape: vec![4, 6, 6, 1],
                data,
            },
            labels: vec![3, 1, 4, 1],
            classes: 5,
        }
    }

    #[test]
    fn parse_knows_flip_and_crop() {
        assert_eq!(
            parse_array_augment("flip,crop").unwrap().steps,
            vec![Augmentation::HorizontalFlip(0.5), Augmentation::PadCrop(4)]
        );
        assert!(parse_array_augment("").unwrap().steps.is_empty());
        let err = parse_array_augment("flip,rotate").unwrap_err().to_string();
        assert!(err.contains("--augment") && err.contains("'rotate'"), "{err}");
    }

    #[test]
    fn unaugmented_samples_are_the_arrays() {
        let s = ArrayStream::new(tiny(), Pipeline::default(), "x", "y").unwrap();
        let ex = s.get(2, &mut Rng::new(0)).unwrap();
        assert_eq!(ex.get("x").unwrap().data, tiny().images.data[72..108].to_vec());
        assert_eq!(ex.get("y").unwrap().data, vec![4.0]);
    }

    /// `img` (6x6, one channel) mirrored if `flip`, then moved by `(dx, dy)` with zeros coming in.
    fn moved(img: &[f32], flip: bool, dx: i64, dy: i64) -> Vec<f32> {
        let mut out = vec![0.0; 36];
        for y in 0..6i64 {
            for x in 0..6i64 {
                let (sx, sy) = (x - dx, y - dy);
                if (0..6).contains(&sx) && (0..6).contains(&sy) {
                    let sx = if flip { 5 - sx } else { sx };
                    out[(y * 6 + x) as usize] = img[(sy * 6 + sx) as usize];
                }
            }
        }
        out
    }

    #[test]
    fn flip_and_crop_are_a_mirror_and_a_shift_of_at_most_four() {
        let mut images = tiny();
        images.images.data = (0..4 * 36).map(|i| (i % 36 + 1) as f32).collect();
        let src = images.images.data[36..72].to_vec();
        let s = ArrayStream::new(images, parse_array_augment("flip,crop").unwrap(), "x", "y").unwrap();
        let mut seen = std::collections::HashSet::new();
        for epoch in 0..60 {
            let batches: Vec<_> = Prefetcher::new(Arc::new(s.clone()), (0..4).collect(), 4, 2, 1, epoch, 1).collect();
            let b = batches[0].as_ref().unwrap();
            assert_eq!(b.get("x").unwrap().shape, vec![4, 6, 6, 1]);
            assert_eq!(b.get("y").unwrap().data, vec![3.0, 1.0, 4.0, 1.0]);
            let out = &b.get("x").unwrap().data[36..72];
            let found = (0..2)
                .flat_map(|f| (-4..=4).flat_map(move |dx| (-4..=4).map(move |dy| (f == 1, dx, dy))))
                .find(|&(f, dx, dy)| moved(&src, f, dx, dy) == out);
            seen.insert(found.expect("output is a flip + shift of the input"));
        }
        assert!(
            seen.iter().any(|s| s.0) && seen.iter().any(|s| !s.0),
            "both flipped and unflipped"
        );
        assert!(seen.len() > 20, "{}", seen.len());
    }
}
