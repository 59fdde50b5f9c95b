//! Images to and from NHWC `f32` tensors, with the normalisation said out loud.

use fovea_graph::Tensor;

use super::Image;
use crate::{DataError, Result};

/// How pixel values in `[0, 1]` map to tensor values.
#[derive(Debug, Clone, PartialEq)]
pub enum Normalization {
    /// Unchanged: `[0, 1]` (also the choice for masks holding class ids).
    UnitRange,
    /// `2v - 1`: `[-1, 1]` (MobileNet, MediaPipe).
    SymmetricRange,
    /// `(v - mean[c]) / std[c]` per channel (ImageNet-style); one entry applies to all channels.
    MeanStd {
        /// Per-channel means, in `[0, 1]` units.
        mean: Vec<f32>,
        /// Per-channel standard deviations, in `[0, 1]` units; must be positive.
        std: Vec<f32>,
    },
}

impl Normalization {
    /// The `(scale, offset)` per channel so that `tensor = value * scale + offset`.
    fn affine(&self, channels: usize) -> Result<Vec<(f32, f32)>> {
        match self {
            Normalization::UnitRange => Ok(vec![(1.0, 0.0); channels]),
            Normalization::SymmetricRange => Ok(vec![(2.0, -1.0); channels]),
            Normalization::MeanStd { mean, std } => {
                let pick = |v: &[f32], c: usize, what: &str| -> Result<f32> {
                    match v.len() {
                        1 => Ok(v[0]),
                        n if n == channels => Ok(v[c]),
                        n => Err(DataError::value(
                            "normalization",
                            format!("{what} has {n} entries for a {channels}-channel image (expected 1 or {channels})"),
                        )),
                    }
                };
                (0..channels)
                    .map(|c| {
                        let (m, s) = (pick(mean, c, "mean")?, pick(std, c, "std")?);
                        if !(s > 0.0 && s.is_finite()) {
                            return Err(DataError::value(
                                "normalization",
                                format!("std[{c}] = {s} must be positive"),
                            ));
                        }
                        Ok((1.0 / s, -m / s))
                    })
                    .collect()
            }
        }
    }
}

/// One image as a `(height, width, channels)` tensor.
pub fn image_to_tensor(image: &Image, norm: &Normalization) -> Result<Tensor> {
    let affine = norm.affine(image.channels)?;
    let data = image
        .data
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let (s, o) = affine[i % image.channels];
            v * s + o
        })
        .collect();
    Ok(Tensor {
        shape: vec![image.height, image.width, image.channels],
        data,
    })
}

/// Images of one size as an NHWC `(count, height, width, channels)` tensor.
pub fn images_to_tensor(images: &[Image], norm: &Normalization) -> Result<Tensor> {
    let Some(first) = images.first() else {
        return Err(DataError::value("images", "no images to stack"));
    };
    let mut data = Vec::with_capacity(first.data.len() * images.len());
    for (i, image) in images.iter().enumerate() {
        if (image.width, image.height, image.channels) != (first.width, first.height, first.channels) {
            return Err(DataError::value(
                format!("images[{i}]"),
                format!(
                    "is {}x{}x{}, images[0] is {}x{}x{} (resize them to one size first)",
                    image.width, image.height, image.channels, first.width, first.height, first.channels
                ),
            ));
        }
        data.extend(image_to_tensor(image, norm)?.data);
    }
    Ok(Tensor {
        shape: vec![images.len(), first.height, first.width, first.channels],
        data,
    })
}

/// A `(height, width, channels)` or `(1, height, width, channels)` tensor back to an image:
/// the normalisation is undone and values are clamped to `[0, 1]`.
pub fn tensor_to_image(tensor: &Tensor, norm: &Normalization) -> Result<Image> {
    let shape = match tensor.shape.as_slice() {
        [h, w, c] | [1, h, w, c] => [*h, *w, *c],
        s => {
            return Err(DataError::value(
                "tensor",
                format!("shape {s:?} is not an image (expected (height, width, channels) or (1, h, w, c))"),
            ));
        }
    };
    let mut images = tensor_to_images(
        &Tensor {
            shape: [&[1], &shape[..]].concat(),
            data: tensor.data.clone(),
        },
        norm,
    )?;
    Ok(images.remove(0))
}

/// An NHWC tensor back to images (normalisation undone, clamped to `[0, 1]`).
pub fn tensor_to_images(tensor: &Tensor, norm: &Normalization) -> Result<Vec<Image>> {
    let [n, h, w, c] = tensor.shape[..] else {
        return Err(DataError::value(
            "tensor",
            format!("shape {:?} is not NHWC", tensor.shape),
        ));
    };
    if tensor.data.len() != n * h * w * c {
        return Err(DataError::value(
            "tensor",
            format!("shape {:?} but {} values", tensor.shape, tensor.data.len()),
        ));
    }
    let affine = norm.affine(c)?;
    let per = h * w * c;
    Ok((0..n)
        .map(|i| {
            let data = tensor.data[i * per..(i + 1) * per]
                .iter()
                .enumerate()
                .map(|(j, &t)| {
                    let (s, o) = affine[j % c];
                    ((t - o) / s).clamp(0.0, 1.0)
                })
                .collect();
            Image {
                width: w,
                height: h,
                channels: c,
                data,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisations_map_known_values() {
        let img = Image::new(1, 1, 3, vec![0.0, 0.5, 1.0]).unwrap();
        assert_eq!(
            image_to_tensor(&img, &Normalization::UnitRange).unwrap().data,
            vec![0.0, 0.5, 1.0]
        );
        assert_eq!(
            image_to_tensor(&img, &Normalization::SymmetricRange).unwrap().data,
            vec![-1.0, 0.0, 1.0]
        );
        let ms = Normalization::MeanStd {
            mean: vec![0.5, 0.5, 0.0],
            std: vec![0.25, 0.5, 2.0],
        };
        let t = image_to_tensor(&img, &ms).unwrap();
        assert_eq!(t.shape, vec![1, 1, 3]);
        assert_eq!(t.data, vec![-2.0, 0.0, 0.5]);
        let back = tensor_to_image(&t, &ms).unwrap();
        assert_eq!(back, img);
    }

    #[test]
    fn batches_stack_in_nhwc_order_and_round_trip() {
        let a = Image::new(2, 1, 1, vec![0.1, 0.2]).unwrap();
        let b = Image::new(2, 1, 1, vec![0.3, 0.4]).unwrap();
        let t = images_to_tensor(&[a.clone(), b.clone()], &Normalization::SymmetricRange).unwrap();
        assert_eq!(t.shape, vec![2, 1, 2, 1]);
        let back = tensor_to_images(&t, &Normalization::SymmetricRange).unwrap();
        for (x, y) in back.iter().zip([a, b].iter()) {
            for (p, q) in x.data.iter().zip(&y.data) {
                assert!((p - q).abs() < 1e-6);
            }
        }
        let c = Image::new(1, 1, 1, vec![0.0]).unwrap();
        assert!(
            images_to_tensor(&[back[0].clone(), c], &Normalization::UnitRange)
                .unwrap_err()
                .to_string()
                .contains("images[1]")
        );
    }

    #[test]
    fn bad_normalisations_and_shapes_are_errors() {
        let img = Image::new(1, 1, 3, vec![0.0; 3]).unwrap();
        let two = Normalization::MeanStd {
            mean: vec![0.0, 0.0],
            std: vec![1.0],
        };
        assert!(
            image_to_tensor(&img, &two)
                .unwrap_err()
                .to_string()
                .contains("mean has 2 entries")
        );
        let zero = Normalization::MeanStd {
            mean: vec![0.0],
            std: vec![0.0],
        };
        assert!(image_to_tensor(&img, &zero).is_err());
        let t = Tensor {
            shape: vec![2, 2],
            data: vec![0.0; 4],
        };
        assert!(tensor_to_image(&t, &Normalization::UnitRange).is_err());
        let clamped = tensor_to_image(
            &Tensor {
                shape: vec![1, 1, 1],
                data: vec![3.0],
            },
            &Normalization::UnitRange,
        )
        .unwrap();
        assert_eq!(clamped.data, vec![1.0]);
    }
}
