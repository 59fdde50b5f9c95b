//! Augmentation that carries labels along: every geometric transform moves the image, its mask
//! (nearest sampling, so labels stay labels) and its boxes together.
//!
//! Boxes follow one rule everywhere: a box is kept when its centre stays in the picture, and is
//! then clipped to it (SSD's rule).

mod color;
mod elastic;
mod geometric;
mod ssd_crop;

pub use color::{ColorJitter, adjust_brightness, adjust_contrast, adjust_saturation};
pub use elastic::{Elastic, displacement_field, elastic_with_grid};
pub use geometric::{Affine, AffineRange, affine, hflip, mirror_x, mirror_y, rot90, transpose, vflip, warp_affine};
pub use ssd_crop::{SsdCrop, crop_sample, expand};

use fovea_graph::init::Rng;

use super::crop::{random_offset, reflect_shift};
use super::{BBox, Image};
use crate::Result;

/// An image with the labels that move with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The picture.
    pub image: Image,
    /// A per-pixel label map of the image's size (segmentation), if any.
    pub mask: Option<Image>,
    /// Boxes in pixels (detection).
    pub boxes: Vec<BBox>,
    /// The image value for pixels that come from outside the picture.
    pub fill: f32,
    /// The mask value for pixels that come from outside the picture (e.g. an "ignore" class).
    pub mask_fill: f32,
}

impl Sample {
    /// A sample of just an image (fills 0).
    pub fn new(image: Image) -> Sample {
        Sample {
            image,
            mask: None,
            boxes: Vec::new(),
            fill: 0.0,
            mask_fill: 0.0,
        }
    }

    /// With a mask.
    pub fn with_mask(mut self, mask: Image) -> Sample {
        self.mask = Some(mask);
        self
    }

    /// With boxes.
    pub fn with_boxes(mut self, boxes: Vec<BBox>) -> Sample {
        self.boxes = boxes;
        self
    }
}

/// Keeps the boxes whose centre lies in `[0, width) x [0, height)` and clips them to it.
pub(crate) fn keep_boxes(boxes: impl IntoIterator<Item = BBox>, width: f32, height: f32) -> Vec<BBox> {
    boxes
        .into_iter()
        .filter(|b| {
            let (cx, cy) = b.centre();
            (0.0..width).contains(&cx) && (0.0..height).contains(&cy)
        })
        .map(|b| b.clip(width, height))
        .filter(|b| b.area() > 0.0)
        .collect()
}

/// [`Augmentation::ReflectPadCrop`]: the crop origin in the reflected `pad`-pixel border is
/// drawn as [`ssd_crop::pad_crop`] draws it (by [`random_offset`]), so both shift by the same
/// amounts.
fn reflect_pad_crop(s: Sample, pad: usize, rng: &mut Rng) -> Sample {
    let dx = pad as isize - random_offset(2 * pad, rng) as isize;
    let dy = pad as isize - random_offset(2 * pad, rng) as isize;
    let (w, h) = (s.image.width as f32, s.image.height as f32);
    Sample {
        image: reflect_shift(&s.image, dx, dy),
        mask: s.mask.as_ref().map(|m| reflect_shift(m, dx, dy)),
        boxes: keep_boxes(s.boxes.iter().map(|b| b.shifted(dx as f32, dy as f32)), w, h),
        ..s
    }
}

/// One step of a pipeline, with the probability or range it draws from.
#[derive(Debug, Clone, PartialEq)]
pub enum Augmentation {
    /// Mirror left-right with probability `p`.
    HorizontalFlip(f64),
    /// Mirror top-bottom with probability `p`.
    VerticalFlip(f64),
    /// A uniformly random number (0-3) of clockwise quarter turns.
    Rotate90,
    /// Pad with `Sample::fill` by `pad` pixels on every side, then take a random crop of the
    /// original size (the standard CIFAR recipe with `pad = 4`).
    PadCrop(usize),
    /// The same random shift of up to `pad` pixels each way, with the border filled by
    /// reflection instead (no black bars; the fast CIFAR-10 recipes' padding). Masks move alike;
    /// boxes are shifted and clipped, but the reflected copies of objects get no boxes, so
    /// detection should use [`Augmentation::PadCrop`].
    ReflectPadCrop(usize),
    /// Zoom out (SSD's expansion) with probability `p` onto a canvas up to `max_ratio` times larger.
    Expand {
        /// Probability.
        p: f64,
        /// Largest canvas side relative to the image's.
        max_ratio: f32,
    },
    /// SSD's random crop with minimum-IoU choices.
    SsdCrop(SsdCrop),
    /// Random shift, rotation and scale.
    Affine(AffineRange),
    /// Brightness, contrast and saturation jitter.
    Color(ColorJitter),
    /// Elastic deformation (segmentation) with probability `p`.
    Elastic {
        /// Probability.
        p: f64,
        /// The deformation.
        elastic: Elastic,
    },
}

impl Augmentation {
    /// Applies this step, drawing from `rng`.
    pub fn apply(&self, sample: Sample, rng: &mut Rng) -> Result<Sample> {
        match self {
            Augmentation::HorizontalFlip(p) => Ok(if rng.uniform() < *p { hflip(&sample) } else { sample }),
            Augmentation::VerticalFlip(p) => Ok(if rng.uniform() < *p { vflip(&sample) } else { sample }),
            Augmentation::Rotate90 => {
                let k = (rng.uniform() * 4.0) as usize % 4;
                Ok(rot90(&sample, k))
            }
            Augmentation::PadCrop(pad) => ssd_crop::pad_crop(&sample, *pad, rng),
            Augmentation::ReflectPadCrop(pad) => Ok(reflect_pad_crop(sample, *pad, rng)),
            Augmentation::Expand { p, max_ratio } => {
                if rng.uniform() >= *p || *max_ratio <= 1.0 {
                    return Ok(sample);
                }
                let ratio = rng.uniform_in(1.0, *max_ratio as f64) as f32;
                let (w, h) = (sample.image.width as f32, sample.image.height as f32);
                let left = rng.uniform() as f32 * (w * ratio - w);
                let top = rng.uniform() as f32 * (h * ratio - h);
                Ok(expand(&sample, ratio, left as usize, top as usize))
            }
            Augmentation::SsdCrop(c) => c.apply(&sample, rng),
            Augmentation::Affine(r) => Ok(affine(&sample, &r.draw(sample.image.width, sample.image.height, rng))),
            Augmentation::Color(j) => Ok(j.apply(sample, rng)),
            Augmentation::Elastic { p, elastic } => Ok(if rng.uniform() < *p {
                elastic.apply(&sample, rng)
            } else {
                sample
            }),
        }
    }
}

/// A sequence of augmentation steps.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pipeline {
    /// The steps, applied in order.
    pub steps: Vec<Augmentation>,
}

impl Pipeline {
    /// Applies every step in order.
    pub fn apply(&self, mut sample: Sample, rng: &mut Rng) -> Result<Sample> {
        for step in &self.steps {
            sample = step.apply(sample, rng)?;
        }
        Ok(sample)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_boxes_drops_boxes_whose_centre_leaves() {
        let kept = keep_boxes(
            vec![
                BBox::new(-4.0, 0.0, 2.0, 2.0, 0),
                BBox::new(-1.0, 0.0, 5.0, 2.0, 1),
                BBox::new(8.0, 8.0, 12.0, 12.0, 2),
            ],
            10.0,
            10.0,
        );
        assert_eq!(kept, vec![BBox::new(0.0, 0.0, 5.0, 2.0, 1)]);
    }

    #[test]
    fn a_reflected_crop_shifts_image_mask_and_boxes_alike_within_the_pad() {
        // A 7x7 ramp (pixel (x, y) holds 7 y + x) with a mask equal to it and a box around (3, 3).
        let img = Image::new(7, 7, 1, (0..49).map(|i| i as f32).collect()).unwrap();
        let s = Sample::new(img.clone())
            .with_mask(img.clone())
            .with_boxes(vec![BBox::new(2.0, 2.0, 5.0, 5.0, 1)]);
        let mut rng = Rng::new(3);
        let mut shifts = std::collections::HashSet::new();
        for _ in 0..300 {
            let out = Augmentation::ReflectPadCrop(2).apply(s.clone(), &mut rng).unwrap();
            assert_eq!(out.mask.as_ref(), Some(&out.image));
            // The centre pixel (3, 3) = 24 reads the source at (3 - dx, 3 - dy).
            let c = out.image.pixel(3, 3)[0] as isize;
            let (dx, dy) = (3 - c % 7, 3 - c / 7);
            assert!(dx.abs() <= 2 && dy.abs() <= 2, "shift ({dx}, {dy})");
            assert_eq!(out.image, reflect_shift(&img, dx, dy));
            let b = BBox::new(2.0 + dx as f32, 2.0 + dy as f32, 5.0 + dx as f32, 5.0 + dy as f32, 1);
            assert_eq!(out.boxes, vec![b]);
            shifts.insert((dx, dy));
        }
        assert_eq!(shifts.len(), 25, "every shift in -2..=2 appears");
    }

    #[test]
    fn a_pipeline_is_deterministic_per_stream() {
        let img = Image::new(8, 6, 3, (0..144).map(|i| i as f32 / 144.0).collect()).unwrap();
        let s = Sample::new(img).with_boxes(vec![BBox::new(1.0, 1.0, 5.0, 4.0, 0)]);
        let p = Pipeline {
            steps: vec![
                Augmentation::HorizontalFlip(0.5),
                Augmentation::Rotate90,
                Augmentation::Affine(AffineRange {
                    max_shift: 0.1,
                    max_rotation_deg: 10.0,
                    scale: (0.9, 1.1),
                }),
                Augmentation::Color(ColorJitter {
                    brightness: 0.1,
                    contrast: 0.1,
                    saturation: 0.1,
                }),
            ],
        };
        let a = p.apply(s.clone(), &mut Rng::new(5)).unwrap();
        let b = p.apply(s.clone(), &mut Rng::new(5)).unwrap();
        assert_eq!(a, b);
        let different = (0..10).any(|seed| p.apply(s.clone(), &mut Rng::new(seed)).unwrap() != a);
        assert!(different);
    }
}
