//! The style task's images: reading a photo or painting as RGB, the working size for a
//! requested `--size`, and images to and from `(1, H, W, 3)` tensors in `[0, 1]`.

use crate::error::{DataError, Result};
use crate::vision::{Filter, Image, Normalization, image_to_tensor, read_image, resize, tensor_to_image};
use fovea_graph::Tensor;
use std::path::{Path, PathBuf};

/// Reads an image file as RGB in `[0, 1]` (errors name the file).
pub fn read_rgb(path: &Path) -> Result<Image> {
    Ok(read_image(path)?.to_rgb())
}

/// The working `(width, height)` for an image of `width x height` at `size`: the longer side
/// becomes `size`, the aspect ratio is kept, and both sides are rounded to a multiple of 8
/// (at least `min`).
pub fn working_size(width: usize, height: usize, size: usize, min: usize) -> (usize, usize) {
    let long = width.max(height).max(1) as f64;
    let round = |v: f64| ((v / 8.0).round() as usize * 8).max(min.div_ceil(8) * 8);
    (
        round(width as f64 * size as f64 / long),
        round(height as f64 * size as f64 / long),
    )
}

/// `image` resized to `width x height` (area filter when shrinking, bilinear when enlarging).
pub fn fit(image: &Image, width: usize, height: usize) -> Result<Image> {
    if (image.width, image.height) == (width, height) {
        return Ok(image.clone());
    }
    let filter = if width < image.width {
        Filter::Area
    } else {
        Filter::Bilinear
    };
    resize(image, width, height, filter)
}

/// An RGB image as a `(1, H, W, 3)` tensor in `[0, 1]`.
pub fn to_batch(image: &Image) -> Result<Tensor> {
    let t = image_to_tensor(&image.to_rgb(), &Normalization::UnitRange)?;
    let mut shape = vec![1];
    shape.extend(t.shape);
    Ok(Tensor { shape, data: t.data })
}

/// A `(1, H, W, 3)` tensor back to an image, clamped to `[0, 1]`.
pub fn from_batch(t: &Tensor) -> Result<Image> {
    tensor_to_image(t, &Normalization::UnitRange)
}

/// The image files (JPEG, PNG, BMP, PPM/PGM by extension) directly in `dir`, sorted.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    matches!(
                        e.to_ascii_lowercase().as_str(),
                        "jpg" | "jpeg" | "png" | "bmp" | "ppm" | "pgm"
                    )
                })
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(DataError::Missing {
            dir: dir.to_path_buf(),
            names: "*.jpg, *.jpeg, *.png, *.bmp, *.ppm, *.pgm".into(),
            hint: ": --data needs a folder of content photos".into(),
        });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longer_side_becomes_the_size_in_multiples_of_eight() {
        assert_eq!(working_size(512, 384, 256, 16), (256, 192));
        assert_eq!(working_size(300, 1000, 256, 16), (80, 256));
        assert_eq!(working_size(1000, 10, 256, 16), (256, 16));
    }

    #[test]
    fn images_round_trip_through_batch_tensors() {
        let img = Image::new(2, 1, 3, vec![0.0, 0.5, 1.0, 0.25, 0.75, 0.125]).unwrap();
        let t = to_batch(&img).unwrap();
        assert_eq!(t.shape, vec![1, 1, 2, 3]);
        assert_eq!(from_batch(&t).unwrap(), img);
    }
}
