//! Crops that carry boxes and masks: a given rectangle, SSD's random minimum-IoU crop, SSD's
//! zoom-out expansion, and the CIFAR pad-and-crop.

use fovea_graph::init::Rng;

use super::{Sample, keep_boxes};
use crate::Result;
use crate::vision::BBox;
use crate::vision::crop::{Padding, Rect, crop, pad, random_rect};

/// The part of the sample inside `rect`: image and mask cropped, boxes whose centre lies in the
/// rectangle kept (moved to its frame and clipped), the others dropped.
pub fn crop_sample(s: &Sample, rect: Rect) -> Result<Sample> {
    let image = crop(&s.image, rect)?;
    let mask = s.mask.as_ref().map(|m| crop(m, rect)).transpose()?;
    let moved = s.boxes.iter().map(|b| b.shifted(-(rect.x as f32), -(rect.y as f32)));
    let boxes = keep_boxes(moved.collect::<Vec<_>>(), rect.width as f32, rect.height as f32);
    Ok(Sample {
        image,
        mask,
        boxes,
        ..s.clone()
    })
}

/// Zooms out: the sample placed at `(left, top)` on a canvas `ratio` times its size, filled with
/// `Sample::fill` (image) and `Sample::mask_fill` (mask); boxes move with it.
pub fn expand(s: &Sample, ratio: f32, left: usize, top: usize) -> Sample {
    let (w, h) = (s.image.width, s.image.height);
    let cw = ((w as f32 * ratio.max(1.0)) as usize).max(w);
    let ch = ((h as f32 * ratio.max(1.0)) as usize).max(h);
    let (left, top) = (left.min(cw - w), top.min(ch - h));
    let padding = Padding {
        top,
        bottom: ch - h - top,
        left,
        right: cw - w - left,
    };
    Sample {
        image: pad(&s.image, padding, s.fill),
        mask: s.mask.as_ref().map(|m| pad(m, padding, s.mask_fill)),
        boxes: s.boxes.iter().map(|b| b.shifted(left as f32, top as f32)).collect(),
        ..s.clone()
    }
}

/// Pads by `n` on every side with `Sample::fill`, then crops a random patch of the original size.
pub(crate) fn pad_crop(s: &Sample, n: usize, rng: &mut Rng) -> Result<Sample> {
    let (w, h) = (s.image.width, s.image.height);
    let padded = expand_by(s, n);
    let rect = random_rect(&padded.image, w, h, rng)?;
    crop_sample(&padded, rect)
}

fn expand_by(s: &Sample, n: usize) -> Sample {
    let p = Padding::uniform(n);
    Sample {
        image: pad(&s.image, p, s.fill),
        mask: s.mask.as_ref().map(|m| pad(m, p, s.mask_fill)),
        boxes: s.boxes.iter().map(|b| b.shifted(n as f32, n as f32)).collect(),
        ..s.clone()
    }
}

/// SSD's random crop (Liu et al. 2016, sec. 2.2 "Data augmentation"): pick one of `min_ious`
/// (`None` keeps the whole image); then up to `trials` times draw a patch with sides in `scale`
/// of the image's and aspect ratio (height / width) in `aspect`, and accept it when some box
/// overlaps it with IoU at least the chosen minimum (as SSD's Caffe sampler does) and at least one
/// box centre lies inside. With no accepted patch the sample is returned unchanged. A sample
/// without boxes accepts the first patch of a valid shape.
#[derive(Debug, Clone, PartialEq)]
pub struct SsdCrop {
    /// The choices, drawn uniformly.
    pub min_ious: Vec<Option<f32>>,
    /// Patches to try before giving up.
    pub trials: usize,
    /// Side range, relative to the image.
    pub scale: (f32, f32),
    /// Height / width range of the patch.
    pub aspect: (f32, f32),
}

impl Default for SsdCrop {
    /// SSD's settings: whole image, or min IoU 0.1, 0.3, 0.5, 0.7, 0.9, or any patch; 50 trials,
    /// sides 0.3-1, aspect 0.5-2.
    fn default() -> Self {
        SsdCrop {
            min_ious: vec![None, Some(0.1), Some(0.3), Some(0.5), Some(0.7), Some(0.9), Some(0.0)],
            trials: 50,
            scale: (0.3, 1.0),
            aspect: (0.5, 2.0),
        }
    }
}

impl SsdCrop {
    /// Applies the crop, drawing from `rng`.
    pub fn apply(&self, s: &Sample, rng: &mut Rng) -> Result<Sample> {
        if self.min_ious.is_empty() {
            return Ok(s.clone());
        }
        let pick = ((rng.uniform() * self.min_ious.len() as f64) as usize).min(self.min_ious.len() - 1);
        let Some(min_iou) = self.min_ious[pick] else {
            return Ok(s.clone());
        };
        let (w, h) = (s.image.width as f32, s.image.height as f32);
        for _ in 0..self.trials {
            let cw = (rng.uniform_in(self.scale.0 as f64, self.scale.1 as f64) as f32 * w)
                .floor()
                .max(1.0);
            let ch = (rng.uniform_in(self.scale.0 as f64, self.scale.1 as f64) as f32 * h)
                .floor()
                .max(1.0);
            let ratio = ch / cw;
            if ratio < self.aspect.0 || ratio > self.aspect.1 || cw > w || ch > h {
                continue;
            }
            let x = (rng.uniform() as f32 * (w - cw + 1.0)).floor().min(w - cw);
            let y = (rng.uniform() as f32 * (h - ch + 1.0)).floor().min(h - ch);
            let patch = BBox::new(x, y, x + cw, y + ch, 0);
            let rect = Rect {
                x: x as usize,
                y: y as usize,
                width: cw as usize,
                height: ch as usize,
            };
            if s.boxes.is_empty() {
                return crop_sample(s, rect);
            }
            if !s.boxes.iter().any(|b| b.iou(&patch) >= min_iou) {
                continue;
            }
            let out = crop_sample(s, rect)?;
            if !out.boxes.is_empty() {
                return Ok(out);
            }
        }
        Ok(s.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::Image;

    fn ramp(w: usize, h: usize) -> Image {
        Image::new(w, h, 1, (0..w * h).map(|i| i as f32).collect()).unwrap()
    }

    #[test]
    fn a_crop_drops_the_box_whose_centre_leaves_and_clips_the_other() {
        let s = Sample::new(ramp(10, 10))
            .with_mask(ramp(10, 10))
            .with_boxes(vec![BBox::new(0.0, 0.0, 4.0, 4.0, 1), BBox::new(3.0, 3.0, 9.0, 7.0, 2)]);
        let c = crop_sample(
            &s,
            Rect {
                x: 3,
                y: 2,
                width: 5,
                height: 5,
            },
        )
        .unwrap();
        // Box 1's centre (2, 2) is left of x = 3: dropped. Box 2 moves by (-3, -2) and is clipped to 5x5.
        assert_eq!(c.boxes, vec![BBox::new(0.0, 1.0, 5.0, 5.0, 2)]);
        assert_eq!(c.image.data[0], 23.0);
        assert_eq!(c.mask.unwrap().data[0], 23.0);
    }

    #[test]
    fn expand_moves_boxes_and_fills_the_mask() {
        let mut s = Sample::new(ramp(2, 2))
            .with_mask(Image::filled(2, 2, 1, 1.0))
            .with_boxes(vec![BBox::new(0.0, 0.0, 1.0, 2.0, 0)]);
        s.mask_fill = 9.0;
        let e = expand(&s, 2.0, 1, 2);
        assert_eq!((e.image.width, e.image.height), (4, 4));
        assert_eq!(e.boxes, vec![BBox::new(1.0, 2.0, 2.0, 4.0, 0)]);
        let m = e.mask.unwrap();
        assert_eq!(m.pixel(0, 0), &[9.0]);
        assert_eq!(m.pixel(1, 2), &[1.0]);
        assert_eq!(e.image.pixel(2, 3), &[3.0]);
    }

    #[test]
    fn pad_crop_keeps_the_size_and_moves_a_one_hot_pixel_consistently() {
        let mut m = Image::filled(8, 8, 1, 0.0);
        m.pixel_mut(3, 4)[0] = 1.0;
        let s = Sample::new(m.clone()).with_mask(m);
        let mut rng = Rng::new(11);
        let mut shifts = std::collections::HashSet::new();
        for _ in 0..200 {
            let out = pad_crop(&s, 2, &mut rng).unwrap();
            assert_eq!((out.image.width, out.image.height), (8, 8));
            assert_eq!(out.image, out.mask.clone().unwrap());
            let at = out.image.data.iter().position(|&v| v == 1.0).unwrap();
            let (x, y) = ((at % 8) as i64 - 3, (at / 8) as i64 - 4);
            assert!(x.abs() <= 2 && y.abs() <= 2);
            shifts.insert((x, y));
        }
        assert_eq!(shifts.len(), 25, "every shift in -2..=2 appears");
    }

    #[test]
    fn ssd_crop_meets_the_minimum_iou() {
        let s = Sample::new(ramp(100, 80)).with_boxes(vec![BBox::new(20.0, 10.0, 70.0, 60.0, 0)]);
        let crop = SsdCrop {
            min_ious: vec![Some(0.5)],
            ..SsdCrop::default()
        };
        let mut rng = Rng::new(2);
        let mut changed = 0;
        for _ in 0..50 {
            let out = crop.apply(&s, &mut rng).unwrap();
            assert_eq!(out.boxes.len(), 1);
            if out.image.width != 100 || out.image.height != 80 {
                changed += 1;
                let b = out.boxes[0];
                assert!(b.xmin >= 0.0 && b.xmax <= out.image.width as f32 && b.ymax <= out.image.height as f32);
                // The box's IoU with the patch (the whole new frame) is at least 0.5 before clipping,
                // so the kept part covers at least half the patch.
                assert!(b.area() >= 0.5 * (out.image.width * out.image.height) as f32 - 1e-3);
            }
        }
        assert!(changed > 30, "{changed}");
        let keep = SsdCrop {
            min_ious: vec![None],
            ..SsdCrop::default()
        };
        assert_eq!(keep.apply(&s, &mut rng).unwrap(), s);
    }
}
