//! The detector's data: any source of images with boxes (a VOC folder through
//! [`DetectionStream`], or the synthetic shapes), augmented SSD-style, resized to the input and
//! turned into training targets on the prefetcher's worker threads.

use std::sync::Arc;

use fovea_engine::dataset::{Dataset, Example};
use fovea_graph::Tensor;
use fovea_graph::init::Rng;

use super::loss::{BOX_TARGET, BOX_WEIGHT, CLS_TARGET, CLS_WEIGHT};
use super::targets::{Anchor, BoxCoder, DetectionTargets, MatchRule, encode_targets};
use crate::Result;
use crate::data::detection_stream::DetectionStream;
use crate::vision::augment::{Augmentation, ColorJitter, Pipeline, Sample, SsdCrop};
use crate::vision::{Normalization, image_to_tensor};
use crate::zoo::detection::IMAGE_INPUT;

/// Images with boxes, already at the detector's input size (square), boxes in its pixels.
pub trait SampleSource: Send + Sync {
    /// Number of images.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Image `index`, augmented with `rng`, at the input size.
    fn sample(&self, index: usize, rng: &mut Rng) -> Result<Sample>;
    /// The class names.
    fn classes(&self) -> Vec<String>;
    /// Image `index` as it is on file: `(width, height)`, its ground-truth boxes in those
    /// pixels, and a name for reports (the file name).
    fn original(&self, index: usize) -> Result<(usize, usize, Vec<crate::vision::BBox>, String)>;
}

impl SampleSource for DetectionStream {
    fn len(&self) -> usize {
        self.set.items.len()
    }
    fn sample(&self, index: usize, rng: &mut Rng) -> Result<Sample> {
        DetectionStream::sample(self, index, rng)
    }
    fn classes(&self) -> Vec<String> {
        self.set.classes.clone()
    }
    fn original(&self, index: usize) -> Result<(usize, usize, Vec<crate::vision::BBox>, String)> {
        let item = self.set.items.get(index).ok_or_else(|| {
            crate::DataError::value(
                "index",
                format!("{index} is outside the data set ({} items)", self.set.items.len()),
            )
        })?;
        let name = item
            .image
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok((item.width, item.height, item.boxes.clone(), name))
    }
}

/// The normalisation of the detector's input: `[-1, 1]`.
pub const INPUT_NORMALIZATION: Normalization = Normalization::SymmetricRange;

/// SSD's training augmentation: colour jitter, zoom-out up to `expand` (half the time), the
/// minimum-IoU random crop, and a horizontal flip.
pub fn ssd_augmentation(expand: f32) -> Pipeline {
    Pipeline {
        steps: vec![
            Augmentation::Color(ColorJitter {
                brightness: 0.125,
                contrast: 0.5,
                saturation: 0.5,
            }),
            Augmentation::Expand {
                p: 0.5,
                max_ratio: expand,
            },
            Augmentation::SsdCrop(SsdCrop::default()),
            Augmentation::HorizontalFlip(0.5),
        ],
    }
}

/// Relative corner boxes with classes from a sample at `side` pixels.
pub fn relative_boxes(s: &Sample, side: usize) -> Vec<([f32; 4], u32)> {
    let k = 1.0 / side as f32;
    s.boxes
        .iter()
        .map(|b| ([b.xmin * k, b.ymin * k, b.xmax * k, b.ymax * k], b.class))
        .collect()
}

/// Serves `image` `(side, side, 3)` in `[-1, 1]` and the four targets of the loss.
#[derive(Clone)]
pub struct TargetStream {
    /// Where the images come from.
    pub source: Arc<dyn SampleSource>,
    /// The detector's anchors.
    pub anchors: Arc<Vec<Anchor>>,
    /// Input side.
    pub side: usize,
    /// Classes.
    pub classes: usize,
    /// Matching thresholds.
    pub rule: MatchRule,
    /// Box encoding.
    pub coder: BoxCoder,
}

impl TargetStream {
    /// The targets of item `index` with its image tensor.
    pub fn targets(&self, index: usize, rng: &mut Rng) -> Result<(Tensor, DetectionTargets)> {
        let s = self.source.sample(index, rng)?;
        let image = image_to_tensor(&s.image, &INPUT_NORMALIZATION)?;
        let t = encode_targets(
            &self.anchors,
            &relative_boxes(&s, self.side),
            self.classes,
            &self.rule,
            &self.coder,
        );
        Ok((image, t))
    }
}

impl Dataset for TargetStream {
    fn len(&self) -> usize {
        self.source.len()
    }

    fn get(&self, index: usize, rng: &mut Rng) -> std::result::Result<Example, String> {
        let (image, t) = self.targets(index, rng).map_err(|e| e.to_string())?;
        let (a, c) = (self.anchors.len(), self.classes);
        let tensor = |shape: Vec<usize>, data: Vec<f32>| Tensor { shape, data };
        Ok(Example::default()
            .with(IMAGE_INPUT, image)
            .with(CLS_TARGET, tensor(vec![a, c], t.classes))
            .with(CLS_WEIGHT, tensor(vec![a, c], t.class_weight))
            .with(BOX_TARGET, tensor(vec![a, 4], t.boxes))
            .with(BOX_WEIGHT, tensor(vec![a, 4], t.box_weight)))
    }
}

/// The training and test splits of a VOC folder: `data/train_labels.csv` and
/// `data/test_labels.csv` when both exist (the raccoon layout), else every annotation for both.
/// Class names are those of the training split, sorted. Warnings (skipped boxes or images) are
/// returned with counts; an empty split is an error naming it.
pub fn voc_splits(dir: &std::path::Path) -> Result<(crate::data::voc::VocSet, crate::data::voc::VocSet)> {
    use crate::data::voc::{VocSplit, load_voc};
    let (tr, te) = (dir.join("data/train_labels.csv"), dir.join("data/test_labels.csv"));
    let (train_split, test_split) = if tr.is_file() && te.is_file() {
        (VocSplit::Csv(tr.clone()), VocSplit::Csv(te.clone()))
    } else {
        (VocSplit::All, VocSplit::All)
    };
    let train = load_voc(dir, &train_split, None)?;
    let names: Vec<&str> = train.classes.iter().map(String::as_str).collect();
    let test = load_voc(dir, &test_split, Some(&names))?;
    for (set, split, what) in [(&train, &train_split, "training"), (&test, &test_split, "test")] {
        if set.items.is_empty() {
            let path = match split {
                VocSplit::Csv(p) => p.clone(),
                VocSplit::All => dir.join("annotations"),
            };
            return Err(crate::DataError::format(
                path,
                format!(
                    "the {what} split has no usable images ({} warnings)",
                    set.warnings.len()
                ),
            ));
        }
    }
    Ok((train, test))
}
