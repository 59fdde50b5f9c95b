//! CIFAR-10 in its binary format: records of 1 label byte and 3,072 pixel bytes (1,024 red,
//! 1,024 green, 1,024 blue, each 32x32 row-major), in `data_batch_1..5.bin` and
//! `test_batch.bin`, raw or gzipped. Whichever training batches are present are used.

use super::Dataset;
use super::idx::maybe_gunzip;
use crate::error::{DataError, Result};
use fovea_graph::Tensor;
use std::path::{Path, PathBuf};

/// Bytes per record.
pub const RECORD: usize = 1 + 3 * 32 * 32;

/// The class names, in label order.
pub const CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Which part of CIFAR-10.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// `data_batch_1..5`.
    Train,
    /// `test_batch`.
    Test,
}

const EMBEDDED_TRAIN: &[u8] = include_bytes!("../../../data/cifar10/data_batch_1.bin.gz");
const EMBEDDED_TEST: &[u8] = include_bytes!("../../../data/cifar10/test_batch.bin.gz");

fn file(dir: &Path, stem: &str) -> Option<PathBuf> {
    [format!("{stem}.bin"), format!("{stem}.bin.gz")]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// Decodes CIFAR-10 records (already decompressed or gzipped) into `out`.
pub fn parse_records(bytes: Vec<u8>, path: &Path, images: &mut Vec<f32>, labels: &mut Vec<u32>) -> Result<()> {
    let bytes = maybe_gunzip(bytes, path)?;
    if bytes.is_empty() || bytes.len() % RECORD != 0 {
        return Err(DataError::Format {
            path: path.to_path_buf(),
            message: format!(
                "{} bytes is not a whole number of {RECORD}-byte CIFAR-10 records (truncated or not CIFAR-10 binary)",
                bytes.len()
            ),
        });
    }
    for rec in bytes.chunks_exact(RECORD) {
        if rec[0] > 9 {
            return Err(DataError::Format {
                path: path.to_path_buf(),
                message: format!("label {} is not in 0..9", rec[0]),
            });
        }
        labels.push(rec[0] as u32);
        let px = &rec[1..];
        // Planar RGB to interleaved NHWC, scaled to [0, 1].
        for i in 0..1024 {
            for c in 0..3 {
                images.push(px[c * 1024 + i] as f32 / 255.0);
            }
        }
    }
    Ok(())
}

fn finish(images: Vec<f32>, labels: Vec<u32>) -> Dataset {
    let n = labels.len();
    Dataset {
        images: Tensor {
            shape: vec![n, 32, 32, 3],
            data: images,
        },
        labels,
        classes: 10,
    }
}

/// Loads a split from `dir`: the test batch, or every training batch present (`data_batch_1` to
/// `data_batch_5`, each raw or gzipped).
pub fn load(dir: &Path, split: Split) -> Result<Dataset> {
    let stems: Vec<String> = match split {
        Split::Train => (1..=5).map(|i| format!("data_batch_{i}")).collect(),
        Split::Test => vec!["test_batch".into()],
    };
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    let mut found = false;
    for stem in &stems {
        if let Some(path) = file(dir, stem) {
            let bytes = std::fs::read(&path).map_err(|e| DataError::io(&path, e))?;
            parse_records(bytes, &path, &mut images, &mut labels)?;
            found = true;
        }
    }
    if !found {
        return Err(DataError::Missing {
            dir: dir.to_path_buf(),
            names: stems
                .iter()
                .map(|s| format!("{s}.bin[.gz]"))
                .collect::<Vec<_>>()
                .join(", "),
            hint: " (CIFAR-10's binary version)".into(),
        });
    }
    Ok(finish(images, labels))
}

/// The embedded subset: the first 1,000 training and 200 test records.
pub fn embedded(split: Split) -> Result<Dataset> {
    let (bytes, name) = match split {
        Split::Train => (EMBEDDED_TRAIN, "data_batch_1.bin.gz"),
        Split::Test => (EMBEDDED_TEST, "test_batch.bin.gz"),
    };
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    parse_records(
        bytes.to_vec(),
        &PathBuf::from(format!("<embedded>/cifar10/{name}")),
        &mut images,
        &mut labels,
    )?;
    Ok(finish(images, labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn record(label: u8, seed: u8) -> Vec<u8> {
        let mut r = vec![label];
        r.extend((0..3072).map(|i| (i as u8).wrapping_mul(seed)));
        r
    }

    #[test]
    fn loads_generated_batches_raw_and_gzipped() {
        let dir = std::env::temp_dir().join(format!("fovea-cifar-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut b1 = record(3, 1);
        b1.extend(record(9, 2));
        std::fs::write(dir.join("data_batch_1.bin"), &b1).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&record(0, 5)).unwrap();
        std::fs::write(dir.join("data_batch_3.bin.gz"), gz.finish().unwrap()).unwrap();
        let train = load(&dir, Split::Train).unwrap();
        assert_eq!(train.labels, vec![3, 9, 0]);
        assert_eq!(train.images.shape, vec![3, 32, 32, 3]);
        // Pixel (0, 1) of record 1: red = byte 1, green = byte 1025, blue = byte 2049 (seed 2).
        let px = &train.images.data[32 * 32 * 3 + 3..32 * 32 * 3 + 6];
        let want = [2u8, (1025u32 * 2 % 256) as u8, (2049u32 * 2 % 256) as u8].map(|b| b as f32 / 255.0);
        assert_eq!(px, want);
        let e = load(&dir, Split::Test).unwrap_err().to_string();
        assert!(e.contains("test_batch.bin"), "{e}");
        std::fs::write(dir.join("test_batch.bin"), &b1[..5000]).unwrap();
        let e = load(&dir, Split::Test).unwrap_err().to_string();
        assert!(e.contains("test_batch.bin") && e.contains("3073"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn embedded_subset_has_all_classes() {
        let t = embedded(Split::Train).unwrap();
        assert_eq!(t.len(), 1000);
        for c in 0..10 {
            assert!(t.labels.iter().filter(|&&l| l == c).count() > 50, "class {c}");
        }
        assert_eq!(embedded(Split::Test).unwrap().len(), 200);
    }
}
