//! The pictures of the recipe: predicted masks as PNG (0 = membrane, 255 = cell, as the ISBI
//! labels) and colour overlays of a mask on its image. Every file is written atomically.

use std::path::Path;

use crate::Result;
use crate::tasks::output::write_atomic;
use crate::vision::draw::overlay_mask;
use crate::vision::{BitDepth, Image};

/// A `width x height` one-channel picture of `mask` (`true` -> 1.0, `false` -> 0.0).
pub fn mask_image(mask: &[bool], width: usize, height: usize) -> Result<Image> {
    Image::new(
        width,
        height,
        1,
        mask.iter().map(|&m| if m { 1.0 } else { 0.0 }).collect(),
    )
}

/// Encodes `image` as an 8-bit PNG.
pub fn png_bytes(image: &Image) -> Result<Vec<u8>> {
    crate::vision::image_io::encode_png(image, BitDepth::Eight)
}

/// Writes `image` as an 8-bit PNG at `path`, atomically.
pub fn write_png_atomic(path: &Path, image: &Image) -> Result<()> {
    write_atomic(path, &png_bytes(image)?)
}

/// `image` with the pixels where `highlight` is true tinted (opacity 0.5) in the palette's
/// colour of class 1, the rest unchanged.
pub fn overlay(image: &Image, highlight: &[bool]) -> Result<Image> {
    let ids = Image::new(
        image.width,
        image.height,
        1,
        highlight.iter().map(|&h| if h { 1.0 } else { 0.0 }).collect(),
    )?;
    overlay_mask(image, &ids, 0.5, Some(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_round_trip_as_0_and_255() {
        let mask = [true, false, false, true, true, false];
        let bytes = png_bytes(&mask_image(&mask, 3, 2).unwrap()).unwrap();
        let back = image::load_from_memory(&bytes).unwrap().to_luma8();
        assert_eq!(back.as_raw(), &vec![255, 0, 0, 255, 255, 0]);
        assert!(mask_image(&mask, 4, 2).is_err());
    }

    #[test]
    fn the_overlay_tints_only_highlighted_pixels() {
        let img = Image::filled(2, 1, 1, 0.5);
        let o = overlay(&img, &[true, false]).unwrap();
        assert_eq!(o.channels, 3);
        assert_eq!(o.pixel(1, 0), &[0.5, 0.5, 0.5]);
        assert_ne!(o.pixel(0, 0), &[0.5, 0.5, 0.5]);
    }
}
