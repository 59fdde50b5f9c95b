//! Data sets that stream: items decoded and augmented on worker threads while the device runs
//! the previous step (Keras's `PyDataset` / `tf.data` role).
//!
//! A [`Dataset`] produces one [`Example`] at a time from an index and a random stream. The
//! [`Prefetcher`] runs `Dataset::get` on worker threads, assembles [`Batch`]es in the epoch's
//! order and keeps a bounded number ready ahead of the consumer. Every item draws its random
//! numbers from its own stream, seeded by `(seed, epoch, index)`, so a batch never depends on
//! the number of workers or on scheduling.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

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

/// Stacks `examples` (data set items `indices`, in the same order) into a batch; see
/// [`stack_examples`].
pub fn stack(examples: &[Example], indices: &[usize]) -> Result<Batch, String> {
    if examples.len() != indices.len() {
        return Err(format!("{} examples but {} indices", examples.len(), indices.len()));
    }
    let items: Vec<(usize, &Example)> = indices.iter().copied().zip(examples).collect();
    stack_refs(&items)
}

/// Stacks examples into a batch: each field's values along a new leading axis.
///
/// Every example must have the first example's field names (in any order) and shapes; an error
/// names the data set index of the offending item and the field. `items` pairs each example
/// with its index.
pub fn stack_examples(items: Vec<(usize, Example)>) -> Result<Batch, String> {
    let refs: Vec<(usize, &Example)> = items.iter().map(|(i, e)| (*i, e)).collect();
    stack_refs(&refs)
}

fn stack_refs(items: &[(usize, &Example)]) -> Result<Batch, String> {
    let Some((first_index, first)) = items.first() else {
        return Ok(Batch::default());
    };
    for (index, example) in items {
        if example.fields.len() != first.fields.len() {
            return Err(format!(
                "item {index}: has {} fields ({}), item {first_index} has {} ({})",
                example.fields.len(),
                field_names(example),
                first.fields.len(),
                field_names(first)
            ));
        }
        for (i, f) in example.fields.iter().enumerate() {
            if example.fields[..i].iter().any(|g| g.name == f.name) {
                return Err(format!("item {index}: field '{}' appears twice", f.name));
            }
        }
        for f in &first.fields {
            let Some(value) = example.get(&f.name) else {
                return Err(format!(
                    "item {index}: has no field '{}' (item {first_index} has fields {})",
                    f.name,
                    field_names(first)
                ));
            };
            if value.shape != f.value.shape {
                return Err(format!(
                    "item {index}: field '{}' has shape {:?}, item {first_index} has {:?}",
                    f.name, value.shape, f.value.shape
                ));
            }
            if value.data.len() != f.value.data.len() {
                return Err(format!(
                    "item {index}: field '{}' holds {} values for shape {:?}",
                    f.name,
                    value.data.len(),
                    value.shape
                ));
            }
        }
    }
    let fields = first
        .fields
        .iter()
        .map(|f| {
            let mut data = Vec::with_capacity(f.value.data.len() * items.len());
            for (_, example) in items {
                if let Some(v) = example.get(&f.name) {
                    data.extend_from_slice(&v.data);
                }
            }
            let mut shape = Vec::with_capacity(f.value.shape.len() + 1);
            shape.push(items.len());
            shape.extend_from_slice(&f.value.shape);
            Field {
                name: f.name.clone(),
                value: Tensor { shape, data },
            }
        })
        .collect();
    Ok(Batch {
        fields,
        indices: items.iter().map(|(i, _)| *i).collect(),
    })
}

fn field_names(example: &Example) -> String {
    let names: Vec<&str> = example.fields.iter().map(|f| f.name.as_str()).collect();
    names.join(", ")
}

/// What the workers and the consumer of a [`Prefetcher`] share, under one lock.
struct Shared {
    /// Next position in `order` a worker will claim.
    next_item: usize,
    /// The batch the consumer will take next.
    next_batch: usize,
    /// Items decoded so far, per batch not yet stacked: `(position in batch, index, example)`.
    partial: HashMap<usize, Vec<(usize, usize, Example)>>,
    /// Stacked batches (or the first error of a batch), ready for the consumer.
    ready: HashMap<usize, Result<Batch, String>>,
    /// Set when the consumer is dropped or an error stops the epoch.
    stop: bool,
}

struct State {
    shared: Mutex<Shared>,
    /// Signalled when a batch becomes ready.
    batch_ready: Condvar,
    /// Signalled when the consumer takes a batch (so workers may run further ahead) or on stop.
    room: Condvar,
}

/// Runs [`Dataset::get`] on worker threads and yields [`Batch`]es in `order`'s order.
///
/// Item `order[i]` draws from [`item_rng`]`(seed, epoch, order[i])`, so the batches are the same
/// for any number of workers. At most `depth` batches are being prepared or waiting ahead of the
/// consumer. The first error (an item's, a stacking mismatch, or a worker's panic) is yielded once,
/// after which the iterator ends. Dropping the prefetcher stops the workers: each finishes at most
/// the item it is decoding, and the drop waits for them.
pub struct Prefetcher {
    state: Arc<State>,
    workers: Vec<JoinHandle<()>>,
    batches: usize,
    /// Where the iterator stands: the next batch to yield, or `None` once it has ended.
    next: Option<usize>,
    /// An error found before any work started (bad arguments).
    setup_error: Option<String>,
}

impl Prefetcher {
    /// Starts `workers` threads (at least one) that prepare the batches of one epoch over `order`
    /// (data set indices), `batch_size` samples each (the last may be smaller), keeping at most
    /// `depth` (at least one) batches ahead of the consumer.
    ///
    /// A zero `batch_size` or an index outside the data set is reported as the first item.
    pub fn new(
        dataset: Arc<dyn Dataset>,
        order: Vec<usize>,
        batch_size: usize,
        workers: usize,
        seed: u64,
        epoch: u64,
        depth: usize,
    ) -> Prefetcher {
        let state = Arc::new(State {
            shared: Mutex::new(Shared {
                next_item: 0,
                next_batch: 0,
                partial: HashMap::new(),
                ready: HashMap::new(),
                stop: false,
            }),
            batch_ready: Condvar::new(),
            room: Condvar::new(),
        });
        if batch_size == 0 {
            return Prefetcher {
                state,
                workers: Vec::new(),
                batches: 0,
                next: Some(0),
                setup_error: Some("batch size must be at least 1".to_string()),
            };
        }
        let len = dataset.len();
        if let Some((pos, &bad)) = order.iter().enumerate().find(|&(_, &i)| i >= len) {
            return Prefetcher {
                state,
                workers: Vec::new(),
                batches: 0,
                next: Some(0),
                setup_error: Some(format!("order[{pos}] = {bad} is outside the data set ({len} items)")),
            };
        }
        let batches = order.len().div_ceil(batch_size);
        let job = Arc::new(Job {
            dataset,
            order,
            batch_size,
            seed,
            epoch,
            depth: depth.max(1),
        });
        let workers = (0..workers.max(1))
            .map(|_| {
                let state = Arc::clone(&state);
                let job = Arc::clone(&job);
                std::thread::spawn(move || work(&state, &job))
            })
            .collect();
        Prefetcher {
            state,
            workers,
            batches,
            next: Some(0),
            setup_error: None,
        }
    }

    /// Number of batches in the epoch.
    pub fn batches(&self) -> usize {
        self.batches
    }

    fn halt(&self) {
        if let Ok(mut shared) = self.state.shared.lock() {
            shared.stop = true;
        }
        self.state.room.notify_all();
        self.state.batch_ready.notify_all();
    }
}

/// The epoch a [`Prefetcher`]'s workers prepare.
struct Job {
    dataset: Arc<dyn Dataset>,
    order: Vec<usize>,
    batch_size: usize,
    seed: u64,
    epoch: u64,
    depth: usize,
}

impl Job {
    fn batch_len(&self, batch: usize) -> usize {
        self.batch_size.min(self.order.len() - batch * self.batch_size)
    }

    fn get(&self, index: usize) -> Result<Example, String> {
        let mut rng = item_rng(self.seed, self.epoch, index);
        let dataset = &self.dataset;
        match std::panic::catch_unwind(AssertUnwindSafe(|| dataset.get(index, &mut rng))) {
            Ok(result) => result.map_err(|e| format!("item {index}: {e}")),
            Err(_) => Err(format!("item {index}: the data set panicked while decoding it")),
        }
    }
}

/// A worker's loop: claim the next item when its batch is within `depth` of the consumer,
/// decode it, and stack its batch when it completes one.
fn work(state: &State, job: &Job) {
    loop {
        let pos = {
            let Ok(mut shared) = state.shared.lock() else {
                return;
            };
            loop {
                if shared.stop || shared.next_item >= job.order.len() {
                    return;
                }
                if shared.next_item / job.batch_size < shared.next_batch + job.depth {
                    break;
                }
                shared = match state.room.wait(shared) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            }
            shared.next_item += 1;
            shared.next_item - 1
        };
        let index = job.order[pos];
        let batch = pos / job.batch_size;
        let result = job.get(index);
        let Ok(mut shared) = state.shared.lock() else {
            return;
        };
        if shared.stop {
            return;
        }
        match result {
            Err(e) => {
                shared.partial.remove(&batch);
                shared.ready.entry(batch).or_insert(Err(e));
                drop(shared);
                state.batch_ready.notify_all();
            }
            Ok(example) => {
                if shared.ready.contains_key(&batch) {
                    continue; // the batch already failed
                }
                let items = shared.partial.entry(batch).or_default();
                items.push((pos % job.batch_size, index, example));
                if items.len() < job.batch_len(batch) {
                    continue;
                }
                let mut items = shared.partial.remove(&batch).unwrap_or_default();
                drop(shared);
                items.sort_by_key(|(p, _, _)| *p);
                let stacked = stack_examples(items.into_iter().map(|(_, i, e)| (i, e)).collect());
                let Ok(mut shared) = state.shared.lock() else {
                    return;
                };
                shared.ready.insert(batch, stacked);
                drop(shared);
                state.batch_ready.notify_all();
            }
        }
    }
}

impl Iterator for Prefetcher {
    type Item = Result<Batch, String>;

    fn next(&mut self) -> Option<Self::Item> {
        let batch = self.next?;
        if let Some(e) = self.setup_error.take() {
            self.next = None;
            return Some(Err(e));
        }
        if batch >= self.batches {
            self.next = None;
            return None;
        }
        let result = {
            let Ok(mut shared) = self.state.shared.lock() else {
                self.next = None;
                return Some(Err("a data worker failed (lock poisoned)".to_string()));
            };
            loop {
                if let Some(r) = shared.ready.remove(&batch) {
                    shared.next_batch = batch + 1;
                    break r;
                }
                shared = match self.state.batch_ready.wait(shared) {
                    Ok(s) => s,
                    Err(_) => {
                        self.next = None;
                        return Some(Err("a data worker failed (lock poisoned)".to_string()));
                    }
                };
            }
        };
        self.state.room.notify_all();
        match result {
            Ok(b) => {
                self.next = Some(batch + 1);
                Some(Ok(b))
            }
            Err(e) => {
                self.next = None;
                self.halt();
                Some(Err(e))
            }
        }
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        self.halt();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    /// Item `i` is `[i, a random draw]`; items sleep a little, unevenly, to shuffle completion.
    struct Numbers {
        len: usize,
        fail_at: Option<usize>,
        sleep_ms: u64,
        calls: AtomicUsize,
    }

    impl Numbers {
        fn new(len: usize) -> Self {
            Numbers {
                len,
                fail_at: None,
                sleep_ms: 0,
                calls: AtomicUsize::new(0),
            }
        }
    }

    impl Dataset for Numbers {
        fn len(&self) -> usize {
            self.len
        }

        fn get(&self, index: usize, rng: &mut Rng) -> Result<Example, String> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(self.sleep_ms + (index * 7 % 5) as u64));
            if Some(index) == self.fail_at {
                return Err("corrupt record".to_string());
            }
            let x = Tensor::new(vec![2], vec![index as f32, rng.uniform() as f32], "x").map_err(|e| e.to_string())?;
            let y = Tensor::new(vec![], vec![(index % 3) as f32], "y").map_err(|e| e.to_string())?;
            Ok(Example::default().with("x", x).with("y", y))
        }
    }

    fn collect(workers: usize, depth: usize) -> Vec<Batch> {
        let order: Vec<usize> = (0..23).map(|i| (i * 5) % 23).collect();
        Prefetcher::new(Arc::new(Numbers::new(23)), order, 4, workers, 7, 3, depth)
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    }

    #[test]
    fn batches_do_not_depend_on_the_number_of_workers() {
        let one = collect(1, 1);
        assert_eq!(one.len(), 6);
        assert_eq!(one[5].len(), 3, "the last batch holds the remainder");
        let order: Vec<usize> = (0..23).map(|i| (i * 5) % 23).collect();
        let seen: Vec<usize> = one.iter().flat_map(|b| b.indices.clone()).collect();
        assert_eq!(seen, order);
        let x = one[1].get("x").unwrap();
        assert_eq!(x.shape, vec![4, 2]);
        assert_eq!(x.data[0], order[4] as f32);
        let mut rng = item_rng(7, 3, order[4]);
        assert_eq!(x.data[1], rng.uniform() as f32);
        assert_eq!(one[1].get("y").unwrap().shape, vec![4]);
        assert_eq!(one, collect(2, 2));
        assert_eq!(one, collect(4, 3));
        let other_epoch = Prefetcher::new(Arc::new(Numbers::new(23)), order.clone(), 4, 2, 7, 4, 2)
            .next()
            .unwrap()
            .unwrap();
        assert_ne!(
            one[0].get("x"),
            other_epoch.get("x"),
            "another epoch draws other numbers"
        );
    }

    #[test]
    fn an_item_error_names_the_item_and_ends_the_epoch() {
        let mut data = Numbers::new(20);
        data.fail_at = Some(9);
        let mut p = Prefetcher::new(Arc::new(data), (0..20).collect(), 4, 3, 1, 0, 2);
        assert!(p.next().unwrap().is_ok());
        assert!(p.next().unwrap().is_ok());
        let err = p.next().unwrap().unwrap_err();
        assert!(err.contains("item 9") && err.contains("corrupt record"), "{err}");
        assert!(p.next().is_none());
    }

    #[test]
    fn bad_arguments_are_errors_not_panics() {
        let mut p = Prefetcher::new(Arc::new(Numbers::new(5)), vec![0, 7], 2, 2, 1, 0, 2);
        let err = p.next().unwrap().unwrap_err();
        assert!(err.contains("order[1] = 7"), "{err}");
        assert!(p.next().is_none());
        let mut p = Prefetcher::new(Arc::new(Numbers::new(5)), vec![0, 1], 0, 2, 1, 0, 2);
        assert!(p.next().unwrap().unwrap_err().contains("batch size"));
    }

    struct Panics;
    impl Dataset for Panics {
        fn len(&self) -> usize {
            4
        }
        fn get(&self, index: usize, _: &mut Rng) -> Result<Example, String> {
            if index == 2 {
                panic!("boom");
            }
            Ok(Example::default().with("x", Tensor::zeros(vec![1])))
        }
    }

    #[test]
    fn a_panicking_item_is_an_error() {
        let results: Vec<_> = Prefetcher::new(Arc::new(Panics), (0..4).collect(), 1, 2, 0, 0, 2).collect();
        assert_eq!(results.len(), 3);
        assert!(results[2].as_ref().unwrap_err().contains("item 2"));
    }

    /// Item 3's field `x` has another shape.
    struct Ragged;
    impl Dataset for Ragged {
        fn len(&self) -> usize {
            4
        }
        fn get(&self, index: usize, _: &mut Rng) -> Result<Example, String> {
            let n = if index == 3 { 2 } else { 1 };
            Ok(Example::default().with("x", Tensor::zeros(vec![n])))
        }
    }

    #[test]
    fn mismatched_fields_name_the_item_and_field() {
        let err = Prefetcher::new(Arc::new(Ragged), (0..4).collect(), 4, 2, 0, 0, 1)
            .next()
            .unwrap()
            .unwrap_err();
        assert!(
            err.contains("item 3") && err.contains("'x'") && err.contains("[2]"),
            "{err}"
        );
        let a = Example::default().with("x", Tensor::zeros(vec![1]));
        let b = Example::default().with("z", Tensor::zeros(vec![1]));
        let err = stack_examples(vec![(0, a), (5, b)]).unwrap_err();
        assert!(err.contains("item 5") && err.contains("no field 'x'"), "{err}");
    }

    /// Waits (up to 10 s, for a loaded machine) until `calls` reaches `n`, then a little longer.
    fn settle(calls: &AtomicUsize, n: usize) -> usize {
        let start = Instant::now();
        while calls.load(Ordering::SeqCst) < n && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(200));
        calls.load(Ordering::SeqCst)
    }

    #[test]
    fn at_most_depth_batches_are_prepared_ahead() {
        let data = Arc::new(Numbers::new(40));
        let mut p = Prefetcher::new(data.clone(), (0..40).collect(), 4, 3, 0, 0, 2);
        assert_eq!(settle(&data.calls, 8), 8, "two batches of four, no more");
        p.next().unwrap().unwrap();
        assert_eq!(settle(&data.calls, 12), 12, "taking one lets one more be prepared");
    }

    #[test]
    fn dropping_early_stops_the_workers() {
        let mut data = Numbers::new(1000);
        data.sleep_ms = 20;
        let data = Arc::new(data);
        let mut p = Prefetcher::new(data.clone(), (0..1000).collect(), 8, 4, 0, 0, 4);
        p.next().unwrap().unwrap();
        let start = Instant::now();
        drop(p);
        assert!(start.elapsed() < Duration::from_secs(2));
        let calls = data.calls.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            data.calls.load(Ordering::SeqCst),
            calls,
            "no worker runs after the drop"
        );
        assert!(calls <= 8 * 5 + 4, "{calls}");
        // Never consumed at all.
        drop(Prefetcher::new(data, (0..1000).collect(), 8, 4, 0, 0, 4));
    }
}
