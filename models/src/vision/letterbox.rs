//! Letterboxing: fit an image inside a fixed size, keeping its aspect ratio, and map boxes
//! between the original and the letterboxed frame.

use super::resize::{Filter, resize};
use super::{BBox, Image};
use crate::Result;

/// Where a letterboxed image lies in its frame: `frame = original * scale + offset`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LetterboxFit {
    /// The scale applied to both axes.
    pub scale: f32,
    /// Left border in frame pixels.
    pub offset_x: f32,
    /// Top border in frame pixels.
    pub offset_y: f32,
}

impl LetterboxFit {
    /// A box of the original image in frame coordinates.
    pub fn to_frame(&self, b: &BBox) -> BBox {
        b.scaled(self.scale, self.scale).shifted(self.offset_x, self.offset_y)
    }

    /// A box in frame coordinates (a detection) back in the original image's coordinates.
    pub fn to_original(&self, b: &BBox) -> BBox {
        b.shifted(-self.offset_x, -self.offset_y)
            .scaled(1.0 / self.scale, 1.0 / self.scale)
    }
}

/// Resizes `image` (bilinear) to fit `width` x `height` with its aspect ratio kept, centred on a
/// background of `fill`.
pub fn letterbox(image: &Image, width: usize, height: usize, fill: f32) -> Result<(Image, LetterboxFit)> {
    let scale = (width as f64 / image.width.max(1) as f64).min(height as f64 / image.height.max(1) as f64);
    let w = ((image.width as f64 * scale).round() as usize).clamp(1, width.max(1));
    let h = ((image.height as f64 * scale).round() as usize).clamp(1, height.max(1));
    let inner = resize(image, w, h, Filter::Bilinear)?;
    let (ox, oy) = ((width - w) / 2, (height - h) / 2);
    let c = image.channels;
    let mut out = Image::filled(width, height, c, fill);
    for y in 0..h {
        let start = ((y + oy) * width + ox) * c;
        out.data[start..start + w * c].copy_from_slice(&inner.data[y * w * c..(y + 1) * w * c]);
    }
    Ok((
        out,
        LetterboxFit {
            scale: scale as f32,
            offset_x: ox as f32,
            offset_y: oy as f32,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wide_image_gets_bars_above_and_below() {
        let img = Image::filled(40, 20, 3, 1.0);
        let (out, fit) = letterbox(&img, 20, 20, 0.0).unwrap();
        assert_eq!(
            fit,
            LetterboxFit {
                scale: 0.5,
                offset_x: 0.0,
                offset_y: 5.0
            }
        );
        assert_eq!(out.pixel(10, 4), &[0.0, 0.0, 0.0]);
        assert_eq!(out.pixel(10, 5), &[1.0, 1.0, 1.0]);
        assert_eq!(out.pixel(10, 14), &[1.0, 1.0, 1.0]);
        assert_eq!(out.pixel(10, 15), &[0.0, 0.0, 0.0]);
        let b = BBox::new(10.0, 4.0, 30.0, 16.0, 1);
        let f = fit.to_frame(&b);
        assert_eq!(f, BBox::new(5.0, 7.0, 15.0, 13.0, 1));
        assert_eq!(fit.to_original(&f), b);
    }
}
