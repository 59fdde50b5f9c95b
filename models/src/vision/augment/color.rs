//! Brightness, contrast and saturation jitter (images only; masks and boxes do not change).

use fovea_graph::init::Rng;

use super::Sample;
use crate::vision::Image;

/// Adds `delta` to every value, clamped to `[0, 1]`.
pub fn adjust_brightness(img: &Image, delta: f32) -> Image {
    Image {
        data: img.data.iter().map(|v| (v + delta).clamp(0.0, 1.0)).collect(),
        ..img.clone()
    }
}

/// Scales the distance of every value from the image's mean grey by `factor`, clamped to `[0, 1]`.
pub fn adjust_contrast(img: &Image, factor: f32) -> Image {
    let grey = img.to_gray();
    let mean = grey.data.iter().sum::<f32>() / grey.data.len().max(1) as f32;
    Image {
        data: img
            .data
            .iter()
            .map(|v| (mean + (v - mean) * factor).clamp(0.0, 1.0))
            .collect(),
        ..img.clone()
    }
}

/// Blends each RGB pixel with its own grey: `factor` 0 is greyscale, 1 unchanged. Images
/// without three colour channels are returned unchanged.
pub fn adjust_saturation(img: &Image, factor: f32) -> Image {
    if img.channels < 3 {
        return img.clone();
    }
    let mut out = img.clone();
    for p in out.data.chunks_exact_mut(img.channels) {
        let g = 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
        for v in &mut p[..3] {
            *v = (g + (*v - g) * factor).clamp(0.0, 1.0);
        }
    }
    out
}

/// Random brightness shift in `[-brightness, brightness]`, then contrast and saturation factors in
/// `[1 - x, 1 + x]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColorJitter {
    /// Largest brightness shift (values are in `[0, 1]`).
    pub brightness: f32,
    /// Largest relative contrast change.
    pub contrast: f32,
    /// Largest relative saturation change.
    pub saturation: f32,
}

impl ColorJitter {
    /// Applies the jitter to the sample's image.
    pub fn apply(&self, mut s: Sample, rng: &mut Rng) -> Sample {
        let b = rng.uniform_in(-1.0, 1.0) as f32 * self.brightness;
        let c = 1.0 + rng.uniform_in(-1.0, 1.0) as f32 * self.contrast;
        let sat = 1.0 + rng.uniform_in(-1.0, 1.0) as f32 * self.saturation;
        s.image = adjust_saturation(&adjust_contrast(&adjust_brightness(&s.image, b), c), sat);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_adjustments() {
        let img = Image::new(2, 1, 3, vec![0.2, 0.4, 0.6, 0.9, 0.95, 1.0]).unwrap();
        let b = adjust_brightness(&img, 0.1);
        let want = [0.3, 0.5, 0.7, 1.0, 1.0, 1.0];
        for (x, y) in b.data.iter().zip(want) {
            assert!((x - y).abs() < 1e-6);
        }
        let same = adjust_contrast(&img, 1.0);
        assert!(same.data.iter().zip(&img.data).all(|(a, b)| (a - b).abs() < 1e-6));
        let doubled = adjust_contrast(&img, 2.0);
        let mean = img.to_gray().data.iter().sum::<f32>() / 2.0;
        assert!((doubled.data[2] - (mean + 2.0 * (0.6 - mean))).abs() < 1e-6);
        assert_eq!(doubled.data[0], 0.0, "clamped");
        let flat = adjust_contrast(&img, 0.0);
        assert!(flat.data.windows(2).all(|w| (w[0] - w[1]).abs() < 1e-6));
        let grey = adjust_saturation(&img, 0.0);
        let g0 = 0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6;
        assert!(grey.data[..3].iter().all(|v| (v - g0).abs() < 1e-6));
        let mask_img = Image::new(1, 1, 1, vec![0.5]).unwrap();
        assert_eq!(adjust_saturation(&mask_img, 0.0), mask_img);
    }

    #[test]
    fn jitter_leaves_masks_and_boxes_alone() {
        let img = Image::filled(3, 3, 3, 0.5);
        let s = Sample::new(img)
            .with_mask(Image::filled(3, 3, 1, 1.0))
            .with_boxes(vec![crate::vision::BBox::new(0.0, 0.0, 1.0, 1.0, 0)]);
        let j = ColorJitter {
            brightness: 0.3,
            contrast: 0.3,
            saturation: 0.3,
        };
        let out = j.apply(s.clone(), &mut Rng::new(9));
        assert_eq!(out.mask, s.mask);
        assert_eq!(out.boxes, s.boxes);
        assert_ne!(out.image, s.image);
    }
}
