//! Data sets that stream: items decoded and augmented on worker threads while the device runs
//! the previous step (Keras's `PyDataset` / `tf.data` role).
//!
//! A [`Dataset`] produces one [`Example`] at a time from an index and a random stream. The
//! [`Prefetcher`] runs `Dataset::get` on worker threads, assembles [`Batch`]es in the epoch's
//! order and keeps a bounded number ready ahead of the consumer. Every item draws its random
//! numbers from its own stream, seeded by `(seed, epoch, index)`, so a batch never depends on
//! the number of workers or on scheduling.

use fovea_graph::Tensor;
use fovea_graph::init::Rng;

/// One named field of an example: a model input or a training target, without the batch axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The model input's name (the `Input` layer's name) or the target's name (the output
    /// layer's name for built-in losses, or a name a custom loss declared).
    pub name: String,
    /// The value of one sample (no batch axis). Class labels are stored as `f32` integers.
    pub value: Tensor,
}

/// One sample: every input and target the model's step reads, by name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Example {
    /// The fields, in any order; names must be unique.
    pub fields: Vec<Field>,
}

impl Example {
    /// Adds a field.
    pub fn with(mut self, name: &str, value: Tensor) -> Self {
        self.fields.push(Field {
            name: name.to_string(),
            value,
        });
        self
    }

    /// The field called `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.fields.iter().find(|f| f.name == name).map(|f| &f.value)
    }
}

/// A batch: each field's samples stacked along a new leading axis, in the order they were asked for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    /// The stacked fields, in the first example's field order.
    pub fields: Vec<Field>,
    /// The data set indices of the samples, in order.
    pub indices: Vec<usize>,
}

impl Batch {
    /// The stacked field called `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.fields.iter().find(|f| f.name == name).map(|f| &f.value)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether the batch holds no samples.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// A source of examples that need not fit in memory, and may differ every epoch (augmentation).
///
/// `get` must be a pure function of `(index, rng)`: the same index with a random stream in the
/// same state gives the same example. It runs on worker threads.
pub trait Dataset: Send + Sync {
    /// Number of examples in one epoch.
    fn len(&self) -> usize;

    /// Whether the data set is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decodes (and augments, drawing from `rng`) example `index`. An error names the item
    /// (file, row) and what was wrong.
    fn get(&self, index: usize, rng: &mut Rng) -> Result<Example, String>;
}

/// The random stream of item `index` in `epoch` of a run seeded with `seed`.
pub fn item_rng(seed: u64, epoch: u64, index: usize) -> Rng {
    Rng::new(seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (index as u64).wrapping_mul(0xD1B5_4A32_D192_ED03))
}
