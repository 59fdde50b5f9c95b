//! The membrane data of the recipe: the held-out split, checked image/mask pairs, and the
//! augmented training stream (random crops, flips, quarter turns and elastic deformation applied
//! to image and mask alike, through [`crate::data::membrane::MembraneStream`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fovea_engine::dataset::{Dataset, Example};
use fovea_graph::init::Rng;

use crate::data::membrane::{MembraneSet, MembraneStream};
use crate::vision::augment::{Augmentation, Elastic, Pipeline};
use crate::vision::{Image, read_image};
use crate::{DataError, Result};

/// The held-out slices of the ISBI 2012 training stack used when none are given.
pub const DEFAULT_TEST_SLICES: &[usize] = &[24, 25, 26, 27, 28, 29];

/// Parses `--test-slices`: comma-separated slice indices (ranges `a-b` allowed), each below
/// `slices`, without repeats; at least one must remain for training unless `allow_all`.
pub fn parse_test_slices(spec: &str, slices: usize, allow_all: bool) -> Result<Vec<usize>> {
    let arg = |message: String| DataError::value("--test-slices", message);
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim) {
        if part.is_empty() {
            return Err(arg(format!(
                "\"{spec}\" has an empty entry; expected slice indices like 24,25,26"
            )));
        }
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let num = |s: &str| {
            s.parse::<usize>().map_err(|_| {
                arg(format!(
                    "\"{part}\" is not a slice index or range (expected e.g. 24 or 24-29)"
                ))
            })
        };
        let (lo, hi) = (num(lo)?, num(hi)?);
        if lo > hi {
            return Err(arg(format!("range \"{part}\" runs backwards")));
        }
        for i in lo..=hi {
            if i >= slices {
                return Err(arg(format!(
                    "slice {i} is out of range: the data have {slices} slices (0-{})",
                    slices.saturating_sub(1)
                )));
            }
            if out.contains(&i) {
                return Err(arg(format!("slice {i} is listed twice")));
            }
            out.push(i);
        }
    }
    if !allow_all && out.len() >= slices {
        return Err(arg(format!(
            "holds out all {slices} slices; at least one must remain for training"
        )));
    }
    Ok(out)
}

/// Splits `set` into `(train, test)` by slice index (the position in slice order).
pub fn split(set: &MembraneSet, test: &[usize]) -> (MembraneSet, MembraneSet) {
    let pick = |keep: bool| MembraneSet {
        pairs: set
            .pairs
            .iter()
            .enumerate()
            .filter(|(i, _)| test.contains(i) != keep)
            .map(|(_, p)| p.clone())
            .collect(),
        warnings: Default::default(),
    };
    (pick(true), pick(false))
}

/// A checked pair: the grey image in `[0, 1]` and the mask, `true` = cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Slice {
    /// The image file.
    pub path: PathBuf,
    /// The image, one channel.
    pub image: Image,
    /// `width * height` mask values, `true` = cell (255).
    pub mask: Vec<bool>,
}

/// Reads a mask PNG and checks that it holds only 0 and 255 and has `size` (the image's), naming
/// the file and the values found otherwise.
pub fn read_mask(path: &Path, size: (usize, usize)) -> Result<Vec<bool>> {
    let m = read_image(path)?.to_gray();
    if (m.width, m.height) != size {
        return Err(DataError::format(
            path,
            format!("mask is {}x{}, its image is {}x{}", m.width, m.height, size.0, size.1),
        ));
    }
    let mut bad: Vec<u32> = Vec::new();
    let mut mask = Vec::with_capacity(m.data.len());
    for &v in &m.data {
        let q = (v * 255.0).round() as u32;
        match q {
            0 => mask.push(false),
            255 => mask.push(true),
            other => {
                if !bad.contains(&other) && bad.len() < 8 {
                    bad.push(other);
                }
            }
        }
    }
    if !bad.is_empty() {
        bad.sort_unstable();
        let list: Vec<String> = bad.iter().map(|v| v.to_string()).collect();
        return Err(DataError::format(
            path,
            format!(
                "mask values must be 0 (membrane) or 255 (cell); found {}",
                list.join(", ")
            ),
        ));
    }
    Ok(mask)
}

/// Reads and checks every pair of `set` (grey image, 0/255 mask of the same size).
pub fn read_slices(set: &MembraneSet) -> Result<Vec<Slice>> {
    set.pairs
        .iter()
        .map(|(ip, lp)| {
            let image = read_image(ip)?.to_gray();
            let mask = read_mask(lp, (image.width, image.height))?;
            Ok(Slice {
                path: ip.clone(),
                image,
                mask,
            })
        })
        .collect()
}

/// The training augmentation: flips, a random quarter turn and (half the time) an elastic
/// deformation, all moving the mask with the image.
pub fn train_pipeline() -> Pipeline {
    Pipeline {
        steps: vec![
            Augmentation::HorizontalFlip(0.5),
            Augmentation::VerticalFlip(0.5),
            Augmentation::Rotate90,
            Augmentation::Elastic {
                p: 0.5,
                elastic: Elastic::default(),
            },
        ],
    }
}

/// The training stream: `items_per_epoch` random `crop` x `crop` patches, each from slice
/// `index % slices`, augmented by [`train_pipeline`]; fields `image` and `mask` (1 = cell).
#[derive(Debug, Clone)]
pub struct TrainStream {
    inner: Arc<MembraneStream>,
    items: usize,
}

impl TrainStream {
    /// Patches of side `crop` from the slices of `set`, `items_per_epoch` per epoch.
    pub fn new(set: MembraneSet, crop: usize, items_per_epoch: usize) -> TrainStream {
        let mut s = MembraneStream::new(set);
        s.crop = Some(crop);
        s.pipeline = train_pipeline();
        TrainStream {
            inner: Arc::new(s),
            items: items_per_epoch,
        }
    }
}

impl Dataset for TrainStream {
    fn len(&self) -> usize {
        if self.inner.len() == 0 { 0 } else { self.items }
    }

    fn get(&self, index: usize, rng: &mut Rng) -> std::result::Result<Example, String> {
        self.inner.get(index % self.inner.len().max(1), rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_slices_parse_lists_and_ranges() {
        assert_eq!(
            parse_test_slices("24,25,26,27,28,29", 30, false).unwrap(),
            DEFAULT_TEST_SLICES
        );
        assert_eq!(parse_test_slices("0-2, 7", 30, false).unwrap(), vec![0, 1, 2, 7]);
    }

    #[test]
    fn bad_test_slices_name_the_argument_and_the_problem() {
        let err = |s: &str| parse_test_slices(s, 30, false).unwrap_err().to_string();
        assert!(err("").contains("empty entry"), "{}", err(""));
        assert!(err("1,,2").contains("empty entry"));
        assert!(err("30").contains("slice 30 is out of range") && err("30").contains("30 slices"));
        assert!(err("x").contains("\"x\" is not a slice index"));
        assert!(err("3,3").contains("listed twice"));
        assert!(err("5-2").contains("backwards"));
        assert!(err("0-29").contains("at least one must remain"));
        assert!(err("31").starts_with("--test-slices"));
        assert_eq!(parse_test_slices("0-29", 30, true).unwrap().len(), 30);
    }

    #[test]
    fn split_by_slice_index() {
        let set = MembraneSet {
            pairs: (0..5)
                .map(|i| (PathBuf::from(format!("i{i}")), PathBuf::from(format!("l{i}"))))
                .collect(),
            warnings: Default::default(),
        };
        let (train, test) = split(&set, &[1, 3]);
        assert_eq!(
            test.pairs.iter().map(|p| p.0.to_str().unwrap()).collect::<Vec<_>>(),
            ["i1", "i3"]
        );
        assert_eq!(train.pairs.len(), 3);
    }
}
