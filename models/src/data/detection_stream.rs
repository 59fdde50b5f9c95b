//! [`DetectionStream`]: a [`VocSet`] served as a streaming data set: decoded, augmented and
//! resized on the prefetcher's worker threads.

use fovea_engine::dataset::{Dataset, Example};
use fovea_graph::Tensor;
use fovea_graph::init::Rng;

use super::voc::VocSet;
use crate::Result;
use crate::vision::augment::{Pipeline, Sample};
use crate::vision::{BBox, Filter, Normalization, image_to_tensor, read_image, resize};

/// Serves detection items: field `image` `(height, width, 3)` (grey photos become RGB) and field
/// `boxes` `(max_boxes, 5)`, rows `(xmin, ymin, xmax, ymax, class)` in output pixels, unused rows
/// all `-1`. Boxes beyond `max_boxes` are left out.
#[derive(Debug, Clone)]
pub struct DetectionStream {
    /// The annotated images.
    pub set: VocSet,
    /// Output `(width, height)`; the image is stretched to it, boxes scaled with it.
    pub size: (usize, usize),
    /// Augmentation, applied before the resize.
    pub pipeline: Pipeline,
    /// Tensor normalisation of the image.
    pub normalization: Normalization,
    /// Rows of the `boxes` field.
    pub max_boxes: usize,
    /// Name of the image field.
    pub image_field: String,
    /// Name of the boxes field.
    pub boxes_field: String,
}

impl DetectionStream {
    /// A stream of `set` at `size` with no augmentation, `[0, 1]` pixels, 16 boxes, fields
    /// `image` and `boxes`.
    pub fn new(set: VocSet, size: (usize, usize)) -> DetectionStream {
        DetectionStream {
            set,
            size,
            pipeline: Pipeline::default(),
            normalization: Normalization::UnitRange,
            max_boxes: 16,
            image_field: "image".into(),
            boxes_field: "boxes".into(),
        }
    }

    /// Item `index` decoded (RGB), augmented and resized, with its boxes.
    pub fn sample(&self, index: usize, rng: &mut Rng) -> Result<Sample> {
        let item = self.set.items.get(index).ok_or_else(|| {
            crate::DataError::value(
                "index",
                format!("{index} is outside the data set ({} items)", self.set.items.len()),
            )
        })?;
        let image = read_image(&item.image)?.to_rgb();
        let sample = self
            .pipeline
            .apply(Sample::new(image).with_boxes(item.boxes.clone()), rng)?;
        let (w, h) = self.size;
        let (sx, sy) = (
            w as f32 / sample.image.width as f32,
            h as f32 / sample.image.height as f32,
        );
        Ok(Sample {
            image: resize(&sample.image, w, h, Filter::Bilinear)?,
            boxes: sample.boxes.iter().map(|b| b.scaled(sx, sy)).collect(),
            ..sample
        })
    }
}

/// Boxes as a `(max_boxes, 5)` tensor, unused rows `-1`.
pub fn boxes_tensor(boxes: &[BBox], max_boxes: usize) -> Tensor {
    let mut data = vec![-1.0; max_boxes * 5];
    for (row, b) in data.chunks_exact_mut(5).zip(boxes) {
        row.copy_from_slice(&[b.xmin, b.ymin, b.xmax, b.ymax, b.class as f32]);
    }
    Tensor {
        shape: vec![max_boxes, 5],
        data,
    }
}

impl Dataset for DetectionStream {
    fn len(&self) -> usize {
        self.set.items.len()
    }

    fn get(&self, index: usize, rng: &mut Rng) -> std::result::Result<Example, String> {
        let s = self.sample(index, rng).map_err(|e| e.to_string())?;
        let image = image_to_tensor(&s.image, &self.normalization).map_err(|e| e.to_string())?;
        Ok(Example::default()
            .with(&self.image_field, image)
            .with(&self.boxes_field, boxes_tensor(&s.boxes, self.max_boxes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::voc::{VocSplit, load_voc};
    use crate::vision::augment::Augmentation;
    use fovea_engine::dataset::Prefetcher;
    use std::path::Path;
    use std::sync::Arc;

    fn set() -> VocSet {
        load_voc(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/raccoon"),
            &VocSplit::All,
            None,
        )
        .unwrap()
    }

    #[test]
    fn items_are_resized_with_their_boxes_and_grey_becomes_rgb() {
        let stream = DetectionStream::new(set(), (100, 50));
        // raccoon-150 (index 3) is a grey JPEG, 275x183, box (80, 62, 187, 169).
        let ex = stream.get(3, &mut Rng::new(0)).unwrap();
        assert_eq!(ex.get("image").unwrap().shape, vec![50, 100, 3]);
        let b = ex.get("boxes").unwrap();
        assert_eq!(b.shape, vec![16, 5]);
        let want = [
            80.0 * 100.0 / 275.0,
            62.0 * 50.0 / 183.0,
            187.0 * 100.0 / 275.0,
            169.0 * 50.0 / 183.0,
            0.0,
        ];
        for (x, y) in b.data[..5].iter().zip(want) {
            assert!((x - y).abs() < 1e-3, "{x} {y}");
        }
        assert!(b.data[5..].iter().all(|&v| v == -1.0));
        let px = &ex.get("image").unwrap().data[..3];
        assert!(px[0] == px[1] && px[1] == px[2]);
    }

    #[test]
    fn a_flipped_stream_flips_boxes_and_streams_through_the_prefetcher() {
        let mut stream = DetectionStream::new(set(), (64, 64));
        stream.pipeline.steps.push(Augmentation::HorizontalFlip(1.0));
        let b = stream.sample(0, &mut Rng::new(0)).unwrap().boxes;
        // raccoon-31 is 236 wide: (82, 187) -> (49, 154), scaled by 64/236.
        assert!((b[0].xmin - 49.0 * 64.0 / 236.0).abs() < 1e-3 && (b[0].xmax - 154.0 * 64.0 / 236.0).abs() < 1e-3);
        let batches: Vec<_> = Prefetcher::new(Arc::new(stream), (0..5).collect(), 2, 2, 0, 0, 2).collect();
        assert_eq!(batches.len(), 3);
        assert_eq!(
            batches[0].as_ref().unwrap().get("image").unwrap().shape,
            vec![2, 64, 64, 3]
        );
    }

    #[test]
    fn a_corrupt_jpeg_is_an_error_naming_it() {
        let dir = std::env::temp_dir().join(format!("fovea-detstream-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = set();
        let src = std::fs::read(&s.items[0].image).unwrap();
        let bad = dir.join("broken.jpg");
        std::fs::write(&bad, &src[..200]).unwrap();
        s.items[0].image = bad;
        let err = DetectionStream::new(s, (32, 32)).get(0, &mut Rng::new(0)).unwrap_err();
        assert!(err.contains("broken.jpg"), "{err}");
    }
}
