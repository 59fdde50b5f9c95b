//! MNIST: the IDX files (raw or gzipped) from a directory, or the embedded subset.

use super::Dataset;
use super::idx::{IdxArray, parse_idx};
use crate::error::{DataError, Result};
use fovea_graph::Tensor;
use std::path::{Path, PathBuf};

/// Which half of MNIST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// `train-*`: 60,000 records in the full set.
    Train,
    /// `t10k-*`: 10,000 records in the full set.
    Test,
}

impl Split {
    fn prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

/// The embedded subset: the first 4,000 training and 1,000 test records of MNIST.
const EMBEDDED: [(&str, &[u8]); 4] = [
    (
        "train-images-idx3-ubyte.gz",
        include_bytes!("../../../data/mnist/train-images-idx3-ubyte.gz"),
    ),
    (
        "train-labels-idx1-ubyte.gz",
        include_bytes!("../../../data/mnist/train-labels-idx1-ubyte.gz"),
    ),
    (
        "t10k-images-idx3-ubyte.gz",
        include_bytes!("../../../data/mnist/t10k-images-idx3-ubyte.gz"),
    ),
    (
        "t10k-labels-idx1-ubyte.gz",
        include_bytes!("../../../data/mnist/t10k-labels-idx1-ubyte.gz"),
    ),
];

fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    let names = [stem.to_string(), format!("{stem}.gz"), stem.replacen("-idx", ".idx", 1)];
    for n in &names {
        let p = dir.join(n);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(DataError::Missing {
        dir: dir.to_path_buf(),
        names: names.join(", "),
        hint: " (MNIST's original IDX files, raw or gzipped)".into(),
    })
}

fn read(path: &Path) -> Result<IdxArray> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    parse_idx(bytes, path)
}

fn assemble(images: IdxArray, labels: IdxArray, ipath: &Path, lpath: &Path) -> Result<Dataset> {
    if images.dims.len() != 3 {
        return Err(DataError::Format {
            path: ipath.to_path_buf(),
            message: format!("expected 3 dimensions (count, rows, cols), got {:?}", images.dims),
        });
    }
    if labels.dims.len() != 1 || labels.dims[0] != images.dims[0] {
        return Err(DataError::Format {
            path: lpath.to_path_buf(),
            message: format!(
                "expected {} labels to match the images, got dimensions {:?}",
                images.dims[0], labels.dims
            ),
        });
    }
    if let Some(bad) = labels.data.iter().find(|&&l| l > 9) {
        return Err(DataError::Format {
            path: lpath.to_path_buf(),
            message: format!("label {bad} is not a digit"),
        });
    }
    let (n, h, w) = (images.dims[0], images.dims[1], images.dims[2]);
    let data = images.data.iter().map(|&p| p as f32 / 255.0).collect();
    Ok(Dataset {
        images: Tensor {
            shape: vec![n, h, w, 1],
            data,
        },
        labels: labels.data.iter().map(|&l| l as u32).collect(),
        classes: 10,
    })
}

/// Loads a split of MNIST from `dir` (`train-images-idx3-ubyte[.gz]` and so on), pixels
/// scaled to `[0, 1]` as the Keras examples do.
pub fn load(dir: &Path, split: Split) -> Result<Dataset> {
    let ipath = find(dir, &format!("{}-images-idx3-ubyte", split.prefix()))?;
    let lpath = find(dir, &format!("{}-labels-idx1-ubyte", split.prefix()))?;
    assemble(read(&ipath)?, read(&lpath)?, &ipath, &lpath)
}

/// The embedded subset (4,000 training / 1,000 test records), needing no files.
pub fn embedded(split: Split) -> Result<Dataset> {
    let get = |kind: &str| -> Result<(PathBuf, IdxArray)> {
        let name = format!("{}-{kind}-ubyte.gz", split.prefix());
        let bytes = EMBEDDED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| b.to_vec())
            .unwrap_or_default();
        let path = PathBuf::from(format!("<embedded>/mnist/{name}"));
        let arr = parse_idx(bytes, &path)?;
        Ok((path, arr))
    };
    let (ipath, images) = get("images-idx3")?;
    let (lpath, labels) = get("labels-idx1")?;
    assemble(images, labels, &ipath, &lpath)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_subset_is_real_mnist() {
        let test = embedded(Split::Test).unwrap();
        assert_eq!(test.images.shape, vec![1000, 28, 28, 1]);
        assert_eq!(test.labels.len(), 1000);
        // The first MNIST test digits are 7, 2, 1, 0, 4, 1, 4, 9, 5, 9.
        assert_eq!(&test.labels[..10], &[7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
        let train = embedded(Split::Train).unwrap();
        assert_eq!(train.len(), 4000);
        assert_eq!(&train.labels[..5], &[5, 0, 4, 1, 9]);
        let mean: f32 = train.images.data.iter().sum::<f32>() / train.images.numel() as f32;
        assert!(
            (0.10..0.16).contains(&mean),
            "MNIST's mean pixel is about 0.13, got {mean}"
        );
    }

    #[test]
    fn missing_directory_files_name_the_directory() {
        let e = load(Path::new("/nonexistent/mnist"), Split::Test)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/nonexistent/mnist") && e.contains("t10k-images-idx3-ubyte"),
            "{e}"
        );
    }
}
