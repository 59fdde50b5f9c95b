//! MediaPipe Selfie Segmentation (the general 256x256 model, Apache-2.0, in
//! `data/pretrained/selfie_segmentation.tflite`): a person mask for any photo. The photo is
//! resized to the model's input (RGB in `[0, 1]`), the sigmoid mask is resized back to the
//! photo's size (bilinear) and thresholded at 0.5.

use std::sync::Arc;

use fovea_engine::{Device, predict};
use fovea_graph::Model;

use crate::vision::{Filter, Image, Normalization, image_to_tensor, resize};
use crate::{DataError, Result};

/// The person probability of every pixel of `photo` (any size, grey or colour), `width * height`.
pub fn person_probabilities(device: &Arc<Device>, model: &Model, photo: &Image) -> Result<Vec<f32>> {
    let shapes = model.input_shapes();
    let [h, w, c] = match shapes.as_slice() {
        [s] if s.len() == 3 => [s[0], s[1], s[2]],
        _ => {
            return Err(DataError::value(
                "selfie model",
                format!("expected one (h, w, 3) input, the model has {shapes:?}"),
            ));
        }
    };
    let outs = model.output_shapes();
    if c != 3 || outs.len() != 1 || outs[0] != [h, w, 1] {
        return Err(DataError::value(
            "selfie model",
            format!("expected an RGB input and one (h, w, 1) mask output, got {shapes:?} -> {outs:?}"),
        ));
    }
    let rgb = photo.to_rgb();
    let small = resize(&rgb, w, h, Filter::Bilinear)?;
    let mut x = image_to_tensor(&small, &Normalization::UnitRange)?;
    x.shape.insert(0, 1);
    let y = predict(device, model, &x, 1)?;
    let mask = Image::new(w, h, 1, y.data)?;
    let full = resize(&mask, photo.width, photo.height, Filter::Bilinear)?;
    Ok(full.data)
}
