//! The faces data: held-out subject lists, the identity-disjoint split, and the P x K batch
//! sampler that triplet mining needs (P subjects per batch, K images of each).

use std::sync::Arc;

use fovea_engine::dataset::{Dataset, Example};
use fovea_graph::Tensor;
use fovea_graph::init::Rng;

use crate::data::orl::FaceSet;
use crate::error::{DataError, Result};
use crate::vision::augment::{AffineRange, Augmentation, ColorJitter, Pipeline, Sample};
use crate::vision::{Image, Normalization, image_to_tensor};

use super::loss::LABEL_TARGET;

/// The default held-out subjects: `s31`..`s40`.
pub const DEFAULT_TEST_SUBJECTS: &str = "31-40";

/// Parses a subject list such as `31,32,40` or `31-40` (1-based subject numbers, as the
/// folder names `sN`). Errors name `--test-subjects` and the bad entry.
pub fn parse_subjects(list: &str) -> Result<Vec<u32>> {
    let bad = |m: String| DataError::value("--test-subjects", m);
    let mut out = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |s: &str| {
            s.trim()
                .parse::<u32>()
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| bad(format!("'{s}' is not a subject number (1, 2, ...)")))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b || b - a > 10_000 {
                    return Err(bad(format!("'{part}' is not an ascending range")));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    out.sort_unstable();
    out.dedup();
    if out.is_empty() {
        return Err(bad("the list is empty".into()));
    }
    Ok(out)
}

/// Faces of a subset of subjects: images and 1-based subject numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Faces {
    /// The images as loaded (grey, `[0, 1]`).
    pub images: Vec<Image>,
    /// The subject of each image, 1-based (`s1` is 1).
    pub subjects: Vec<u32>,
}

impl Faces {
    /// Distinct subjects, ascending.
    pub fn subject_list(&self) -> Vec<u32> {
        let mut s = self.subjects.clone();
        s.sort_unstable();
        s.dedup();
        s
    }
}

/// The identity-disjoint split: training subjects and held-out subjects.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Subjects the model trains on (and the threshold is chosen on).
    pub train: Faces,
    /// Held-out subjects (verification and identification).
    pub test: Faces,
}

/// Splits `set` by `test_subjects` (1-based). Errors (naming `source` or the argument): a
/// listed subject absent from the data, a subject with fewer than 2 images, fewer than 2
/// subjects left for training (when `need_train`) or fewer than 2 held out.
pub fn split(set: &FaceSet, test_subjects: &[u32], source: &str, need_train: bool) -> Result<Split> {
    let mut train = Faces {
        images: Vec::new(),
        subjects: Vec::new(),
    };
    let mut test = train.clone();
    for (img, &s) in set.images.iter().zip(&set.subjects) {
        let s = s + 1;
        let part = if test_subjects.contains(&s) {
            &mut test
        } else {
            &mut train
        };
        part.images.push(img.clone());
        part.subjects.push(s);
    }
    let present: Vec<u32> = set.subjects.iter().map(|s| s + 1).collect();
    if let Some(missing) = test_subjects.iter().find(|s| !present.contains(s)) {
        return Err(DataError::value(
            "--test-subjects",
            format!(
                "subject {missing} is not in {source} (it holds s1..s{})",
                present.iter().max().unwrap_or(&0)
            ),
        ));
    }
    for s in train.subject_list().into_iter().chain(test.subject_list()) {
        let n = present.iter().filter(|&&p| p == s).count();
        if n < 2 {
            return Err(DataError::format(
                source,
                format!("subject s{s} has {n} readable image(s); every subject needs at least 2"),
            ));
        }
    }
    if need_train && train.subject_list().len() < 2 {
        return Err(DataError::value(
            "--test-subjects",
            format!(
                "leaves {} training subject(s) in {source}; training needs at least 2",
                train.subject_list().len()
            ),
        ));
    }
    if test.subject_list().len() < 2 {
        return Err(DataError::value(
            "--test-subjects",
            "names fewer than 2 subjects; verification needs impostor pairs",
        ));
    }
    Ok(Split { train, test })
}

/// The training augmentation: a mirror, a small random shift, rotation and scale, and a
/// brightness and contrast jitter (ORL's lighting varies between sessions; with batch-all
/// mining the jitter took the held-out EER from 15% to 9%, BENCHMARKS.md).
pub fn training_augmentation() -> Pipeline {
    Pipeline {
        steps: vec![
            Augmentation::HorizontalFlip(0.5),
            Augmentation::Affine(AffineRange {
                max_shift: 0.05,
                max_rotation_deg: 8.0,
                scale: (0.93, 1.07),
            }),
            Augmentation::Color(ColorJitter {
                brightness: 0.2,
                contrast: 0.3,
                saturation: 0.0,
            }),
        ],
    }
}

/// P x K batches: every batch holds `p` subjects with `k` images each, subjects cycling
/// through a shuffled order so every subject appears about equally often. Fields `image`
/// (the prepared face) and `label` (the subject's class index `0..classes`).
///
/// The plan of an epoch is drawn by [`PkBatches::new`] from its seed; `get` only reads it (so
/// it stays a pure function of the index, as [`Dataset`] asks). Train with `shuffle: false`
/// and `batch_size = p * k`.
pub struct PkBatches {
    images: Arc<Vec<Image>>,
    classes: Arc<Vec<usize>>,
    plan: Vec<usize>,
    augment: Pipeline,
    input_name: String,
}

impl PkBatches {
    /// An epoch of `batches` batches over `images` (already prepared to the model's size) with
    /// class indices `classes`. Errors if `p < 2`, `k < 2`, there are fewer than `p` classes, or
    /// a class has fewer than 2 images. A class with fewer than `k` images repeats some.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        images: Arc<Vec<Image>>,
        classes: Arc<Vec<usize>>,
        p: usize,
        k: usize,
        batches: usize,
        augment: Pipeline,
        input_name: &str,
        seed: u64,
    ) -> Result<PkBatches> {
        if p < 2 || k < 2 {
            return Err(DataError::value(
                "--pk",
                format!("P and K must be at least 2, got {p}x{k}"),
            ));
        }
        let n_classes = classes.iter().max().map_or(0, |m| m + 1);
        let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
        for (i, &c) in classes.iter().enumerate() {
            by_class[c].push(i);
        }
        if by_class.iter().filter(|v| !v.is_empty()).count() < p {
            return Err(DataError::value(
                "--pk",
                format!("P = {p} subjects per batch but only {n_classes} training subjects"),
            ));
        }
        if let Some(c) = by_class.iter().position(|v| v.len() < 2) {
            return Err(DataError::value(
                "training data",
                format!("class {c} has fewer than 2 images"),
            ));
        }
        let mut rng = Rng::new(seed);
        let mut order: Vec<usize> = Vec::new();
        let mut plan = Vec::with_capacity(batches * p * k);
        for _ in 0..batches {
            let mut chosen = Vec::with_capacity(p);
            while chosen.len() < p {
                if order.is_empty() {
                    order = (0..n_classes).filter(|&c| !by_class[c].is_empty()).collect();
                    shuffle(&mut order, &mut rng);
                }
                let c = order.pop().unwrap_or(0);
                if !chosen.contains(&c) {
                    chosen.push(c);
                }
            }
            for c in chosen {
                let mut pool = by_class[c].clone();
                shuffle(&mut pool, &mut rng);
                plan.extend((0..k).map(|j| pool[j % pool.len()]));
            }
        }
        Ok(PkBatches {
            images,
            classes,
            plan,
            augment,
            input_name: input_name.to_string(),
        })
    }

    /// The image index of every position of the epoch.
    pub fn plan(&self) -> &[usize] {
        &self.plan
    }
}

fn shuffle<T>(v: &mut [T], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        v.swap(i, rng.below(i + 1));
    }
}

impl Dataset for PkBatches {
    fn len(&self) -> usize {
        self.plan.len()
    }

    fn get(&self, index: usize, rng: &mut Rng) -> std::result::Result<Example, String> {
        let &i = self
            .plan
            .get(index)
            .ok_or_else(|| format!("position {index} is outside the epoch"))?;
        let s = self
            .augment
            .apply(Sample::new(self.images[i].clone()), rng)
            .map_err(|e| e.to_string())?;
        let image = image_to_tensor(&s.image, &Normalization::UnitRange).map_err(|e| e.to_string())?;
        let label = Tensor {
            shape: vec![],
            data: vec![self.classes[i] as f32],
        };
        Ok(Example::default()
            .with(&self.input_name, image)
            .with(LABEL_TARGET, label))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_lists_and_ranges_parse_and_bad_ones_name_the_argument() {
        assert_eq!(parse_subjects("31-33, 40,31").unwrap(), vec![31, 32, 33, 40]);
        assert_eq!(
            parse_subjects(DEFAULT_TEST_SUBJECTS).unwrap(),
            (31..=40).collect::<Vec<_>>()
        );
        for bad in ["", "0", "x", "5-3", "3-"] {
            let e = parse_subjects(bad).unwrap_err().to_string();
            assert!(e.contains("--test-subjects"), "{bad}: {e}");
        }
    }

    #[test]
    fn pk_batches_hold_p_subjects_of_k_images() {
        let images: Vec<Image> = (0..20).map(|i| Image::filled(4, 3, 1, i as f32 / 20.0)).collect();
        let classes: Vec<usize> = (0..20).map(|i| i / 4).collect(); // 5 classes of 4
        let ds = PkBatches::new(
            Arc::new(images),
            Arc::new(classes.clone()),
            3,
            2,
            7,
            Pipeline::default(),
            "image",
            9,
        )
        .unwrap();
        assert_eq!(ds.len(), 7 * 6);
        let mut seen = [0usize; 5];
        for batch in ds.plan().chunks(6) {
            let labels: Vec<usize> = batch.iter().map(|&i| classes[i]).collect();
            for pair in labels.chunks(2) {
                assert_eq!(pair[0], pair[1], "{labels:?}");
            }
            assert!(batch[0] != batch[1], "two different images of a subject");
            let mut distinct = vec![labels[0], labels[2], labels[4]];
            distinct.dedup();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), 3, "{labels:?}");
            for &l in &labels {
                seen[l] += 1;
            }
        }
        // 21 subject slots over 5 subjects cycling through shuffled orders: every subject
        // gets at least two slots (K = 2 images each).
        assert!(seen.iter().all(|&n| n >= 4), "{seen:?}");
        let ex = ds.get(0, &mut Rng::new(0)).unwrap();
        assert_eq!(ex.get("image").unwrap().shape, vec![3, 4, 1]);
        assert_eq!(ex.get(LABEL_TARGET).unwrap().data, vec![classes[ds.plan()[0]] as f32]);
        assert!(
            PkBatches::new(
                Arc::new(vec![]),
                Arc::new(vec![]),
                1,
                2,
                1,
                Pipeline::default(),
                "image",
                0
            )
            .is_err()
        );
        let Err(e) = PkBatches::new(
            Arc::new((0..20).map(|_| Image::filled(2, 2, 1, 0.0)).collect()),
            Arc::new(classes),
            6,
            2,
            1,
            Pipeline::default(),
            "image",
            0,
        ) else {
            panic!("6 subjects per batch out of 5 is an error")
        };
        let e = e.to_string();
        assert!(e.contains("only 5"), "{e}");
    }
}
