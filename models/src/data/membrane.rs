//! ISBI-2012 EM membrane segmentation: `image/N.png` paired with `label/N.png` (8-bit grey; in the
//! labels 255 = cell interior, 0 = membrane), as U-Net used it.
//!
//! A file without its partner, or a pair whose sizes differ, is a warning and skipped; an
//! unreadable PNG is an error naming it when the item is decoded.

use std::path::{Path, PathBuf};

use fovea_engine::dataset::{Dataset, Example};
use fovea_graph::init::Rng;

use super::voc::natural_key;
use super::warnings::Warnings;
use crate::vision::augment::{Pipeline, Sample, crop_sample};
use crate::vision::crop::random_rect;
use crate::vision::{Image, Normalization, image_to_tensor, read_image};
use crate::{DataError, Result};

/// The image/label pairs of a membrane folder.
#[derive(Debug, Clone, PartialEq)]
pub struct MembraneSet {
    /// `(image, label)` files, in slice order.
    pub pairs: Vec<(PathBuf, PathBuf)>,
    /// Pairs skipped.
    pub warnings: Warnings,
}

/// Finds the pairs in `dir` (which holds `image/` and `label/`, or a `train/` folder that does).
pub fn load_membrane(dir: &Path) -> Result<MembraneSet> {
    let root = if dir.join("image").is_dir() {
        dir.to_path_buf()
    } else {
        dir.join("train")
    };
    let (img_dir, lab_dir) = (root.join("image"), root.join("label"));
    let list = |d: &Path| -> Result<Vec<String>> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .map_err(|e| DataError::io(d, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.to_ascii_lowercase().ends_with(".png"))
            .collect();
        v.sort_by_key(|n| natural_key(n));
        Ok(v)
    };
    let images = list(&img_dir)?;
    let labels = list(&lab_dir)?;
    let mut warnings = Warnings::default();
    let mut pairs = Vec::new();
    for name in &images {
        let (i, l) = (img_dir.join(name), lab_dir.join(name));
        if !labels.contains(name) {
            warnings.push(format!("{}: no label {}; skipped", i.display(), l.display()));
            continue;
        }
        let dims = |p: &Path| image::ImageReader::open(p).ok().and_then(|r| r.into_dimensions().ok());
        match (dims(&i), dims(&l)) {
            (Some(a), Some(b)) if a == b => pairs.push((i, l)),
            (Some(a), Some(b)) => warnings.push(format!(
                "{}: {}x{}, its label is {}x{}; skipped",
                i.display(),
                a.0,
                a.1,
                b.0,
                b.1
            )),
            _ => warnings.push(format!("{}: image or label header unreadable; skipped", i.display())),
        }
    }
    for name in labels.iter().filter(|n| !images.contains(n)) {
        warnings.push(format!(
            "{}: no image for this label; skipped",
            lab_dir.join(name).display()
        ));
    }
    if pairs.is_empty() {
        return Err(DataError::Missing {
            dir: root,
            names: "image/*.png with label/*.png".into(),
            hint: String::new(),
        });
    }
    Ok(MembraneSet { pairs, warnings })
}

/// Serves membrane pairs: field `image` `(h, w, 1)` and field `mask` `(h, w, 1)` with 1 = cell
/// interior, 0 = membrane. With `crop` set, a random `crop` x `crop` patch is cut first (as U-Net
/// trains on tiles); then the pipeline runs (masks move with the image).
#[derive(Debug, Clone)]
pub struct MembraneStream {
    /// The pairs.
    pub set: MembraneSet,
    /// Side of a random square patch, or `None` for whole slices.
    pub crop: Option<usize>,
    /// Augmentation (flips, elastic deformation, ...).
    pub pipeline: Pipeline,
    /// Tensor normalisation of the image.
    pub normalization: Normalization,
}

impl MembraneStream {
    /// Whole slices, no augmentation, `[0, 1]` pixels.
    pub fn new(set: MembraneSet) -> MembraneStream {
        MembraneStream {
            set,
            crop: None,
            pipeline: Pipeline::default(),
            normalization: Normalization::UnitRange,
        }
    }

    /// Pair `index`: grey image and binary mask, cropped and augmented.
    pub fn sample(&self, index: usize, rng: &mut Rng) -> Result<Sample> {
        let (ip, lp) = self.set.pairs.get(index).ok_or_else(|| {
            DataError::value(
                "index",
                format!("{index} is outside the data set ({} pairs)", self.set.pairs.len()),
            )
        })?;
        let image = read_image(ip)?.to_gray();
        let label = read_image(lp)?.to_gray();
        if (image.width, image.height) != (label.width, label.height) {
            return Err(DataError::format(
                lp,
                format!(
                    "{}x{}, its image is {}x{}",
                    label.width, label.height, image.width, image.height
                ),
            ));
        }
        let mask = Image {
            data: label.data.iter().map(|&v| if v > 0.5 { 1.0 } else { 0.0 }).collect(),
            ..label
        };
        let mut sample = Sample::new(image).with_mask(mask);
        if let Some(side) = self.crop {
            let rect =
                random_rect(&sample.image, side, side, rng).map_err(|e| DataError::format(ip, format!("crop: {e}")))?;
            sample = crop_sample(&sample, rect)?;
        }
        self.pipeline.apply(sample, rng)
    }
}

impl Dataset for MembraneStream {
    fn len(&self) -> usize {
        self.set.pairs.len()
    }

    fn get(&self, index: usize, rng: &mut Rng) -> std::result::Result<Example, String> {
        let s = self.sample(index, rng).map_err(|e| e.to_string())?;
        let mask = s.mask.as_ref().ok_or("the pipeline lost the mask")?;
        Ok(Example::default()
            .with(
                "image",
                image_to_tensor(&s.image, &self.normalization).map_err(|e| e.to_string())?,
            )
            .with(
                "mask",
                image_to_tensor(mask, &Normalization::UnitRange).map_err(|e| e.to_string())?,
            ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::augment::{Augmentation, Elastic};

    fn embedded() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/membrane")
    }

    #[test]
    fn the_embedded_pair_loads_as_image_and_binary_mask() {
        let set = load_membrane(&embedded()).unwrap();
        assert_eq!(set.pairs.len(), 1);
        let stream = MembraneStream::new(set);
        let ex = stream.get(0, &mut Rng::new(0)).unwrap();
        assert_eq!(ex.get("image").unwrap().shape, vec![128, 128, 1]);
        let m = ex.get("mask").unwrap();
        assert!(m.data.iter().all(|&v| v == 0.0 || v == 1.0));
        let interior = m.data.iter().filter(|&&v| v == 1.0).count();
        assert!(interior > 128 * 128 / 2 && interior < 128 * 128, "{interior}");
    }

    #[test]
    fn crops_and_elastic_deformation_keep_image_and_mask_aligned() {
        let mut stream = MembraneStream::new(load_membrane(&embedded()).unwrap());
        let whole = stream.sample(0, &mut Rng::new(0)).unwrap();
        stream.crop = Some(64);
        stream.pipeline.steps.push(Augmentation::HorizontalFlip(1.0));
        let s = stream.sample(0, &mut Rng::new(5)).unwrap();
        assert_eq!((s.image.width, s.image.height), (64, 64));
        // Find the crop in the flipped whole slice: the mask must match at the same place.
        let flipped = crate::vision::augment::hflip(&whole);
        let found = (0..=64).flat_map(|y| (0..=64).map(move |x| (x, y))).find(|&(x, y)| {
            crate::vision::crop::crop(
                &flipped.image,
                crate::vision::crop::Rect {
                    x,
                    y,
                    width: 64,
                    height: 64,
                },
            )
            .unwrap()
                == s.image
        });
        let (x, y) = found.expect("the crop comes from the slice");
        let m = crate::vision::crop::crop(
            flipped.mask.as_ref().unwrap(),
            crate::vision::crop::Rect {
                x,
                y,
                width: 64,
                height: 64,
            },
        )
        .unwrap();
        assert_eq!(&m, s.mask.as_ref().unwrap());
        stream.pipeline.steps.push(Augmentation::Elastic {
            p: 1.0,
            elastic: Elastic::default(),
        });
        let e = stream.get(0, &mut Rng::new(5)).unwrap();
        assert!(e.get("mask").unwrap().data.iter().all(|&v| v == 0.0 || v == 1.0));
    }

    #[test]
    fn unpaired_files_are_warnings() {
        let dir = std::env::temp_dir().join(format!("fovea-membrane-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["train/image", "train/label"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        for sub in ["image", "label"] {
            std::fs::copy(
                embedded().join(format!("{sub}/0.png")),
                dir.join(format!("train/{sub}/0.png")),
            )
            .unwrap();
        }
        std::fs::copy(embedded().join("image/0.png"), dir.join("train/image/1.png")).unwrap();
        std::fs::write(dir.join("train/label/2.png"), b"junk").unwrap();
        let set = load_membrane(&dir).unwrap();
        assert_eq!(set.pairs.len(), 1);
        assert_eq!(set.warnings.len(), 2, "{}", set.warnings);
        assert!(set.warnings.to_string().contains("1.png: no label"));
        assert!(set.warnings.to_string().contains("2.png: no image"));
        std::fs::write(dir.join("train/label/0.png"), b"junk").unwrap();
        assert!(load_membrane(&dir).is_err(), "no pair left");
    }
}
