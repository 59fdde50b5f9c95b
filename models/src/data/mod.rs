//! Data loaders. Each takes a directory (`--data DIR`); the small embedded subsets need none.

pub mod arrays;
pub mod cifar;
pub mod detection_stream;
pub mod idx;
pub mod membrane;
pub mod mnist;
pub mod orl;
pub mod voc;
pub mod warnings;

pub use warnings::Warnings;

use fovea_graph::Tensor;

/// Labelled images: NHWC `f32` pixels in `[0, 1]` and one class index per image.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// `(count, height, width, channels)`.
    pub images: Tensor,
    /// Class index per image.
    pub labels: Vec<u32>,
    /// Number of classes.
    pub classes: usize,
}

impl Dataset {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The first `n` samples (or all, if fewer).
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        let per: usize = self.images.shape[1..].iter().product();
        let mut shape = self.images.shape.clone();
        shape[0] = n;
        Dataset {
            images: Tensor {
                shape,
                data: self.images.data[..n * per].to_vec(),
            },
            labels: self.labels[..n].to_vec(),
            classes: self.classes,
        }
    }
}
