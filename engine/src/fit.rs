//! `compile` / `fit` / `evaluate` / `predict` with Keras's semantics.
//!
//! A training step is one program (forward, loss, backward, optimizer update) whose dispatches
//! go into one command encoder and one submit; parameters and optimizer state stay on the
//! device in a [`DeviceState`] shared by the programs for the full batch, the last partial
//! batch, evaluation and prediction. Per-step loss and metrics are copied on the device into a
//! log that is read at most a few times a second for the progress bar and once per epoch.

use crate::dataset::{Batch, Dataset, Field, Prefetcher};
use crate::device::Device;
use crate::error::{EngineError, Result};
use crate::program::Program;
use crate::progress::{Progress, Verbosity};
use crate::resume::{self, CheckpointOptions, RunState};
use crate::state::DeviceState;
use fovea_graph::init::Rng;
use fovea_graph::ir::fmt_shape;
use fovea_graph::train::{
    CompileConfig, LEARNING_RATE, SAMPLE_WEIGHT, STEP_SIZE, StepGraph, TargetSpec, eval_step, input_gradient_step,
    target_input, train_step, variable_name,
};
use fovea_graph::{Model, Tensor};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Training targets.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// One class index per sample (sparse labels; fed one-hot to the loss).
    Classes(Vec<u32>),
    /// Dense targets shaped like the model's output, `(samples, ...)`.
    Dense(Tensor),
    /// Class indices of any shape `(samples, ...)` (per-pixel labels `(samples, H, W)` for
    /// `(samples, H, W, classes)` outputs), as whole numbers; fed one-hot to sparse losses.
    ClassIndices(Tensor),
}

/// Options of `fit`, with Keras's defaults.
#[derive(Debug, Clone)]
pub struct FitOptions {
    /// Passes over the data.
    pub epochs: usize,
    /// Samples per step (the last batch may be smaller).
    pub batch_size: usize,
    /// Shuffle the samples every epoch (seeded).
    pub shuffle: bool,
    /// Seed of the shuffling and of dropout.
    pub seed: u64,
    /// Data evaluated after every epoch.
    pub validation: Option<(Tensor, Targets)>,
    /// Named arrays evaluated after every epoch (for models with several inputs or outputs).
    pub validation_arrays: Option<NamedArrays>,
    /// Worker threads decoding and augmenting a streaming data set (`fit_dataset`).
    pub workers: usize,
    /// Progress output.
    pub verbosity: Verbosity,
    /// The NaN/Inf tripwire: stop at the first kernel writing a non-finite value (slow).
    pub check_numerics: bool,
    /// Crash-safe checkpoints of the run (weights, optimizer state, position, random streams)
    /// and resuming from the newest one; see [`crate::resume`].
    pub checkpoint: Option<CheckpointOptions>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            shuffle: true,
            seed: 0,
            validation: None,
            validation_arrays: None,
            workers: 2,
            verbosity: Verbosity::Auto,
            check_numerics: false,
            checkpoint: None,
        }
    }
}

/// One epoch of a training history.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochLog {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss and metrics over the epoch's samples (`loss`, `accuracy`, ...).
    pub train: Vec<(String, f64)>,
    /// Validation loss and metrics (`val_loss`, `val_accuracy`, ...), if validation data was given.
    pub val: Vec<(String, f64)>,
    /// Wall time of the epoch's training steps, in seconds.
    pub seconds: f64,
    /// Training images per second.
    pub images_per_second: f64,
    /// Seconds the training loop waited for the next batch (data-bound time: the device may
    /// have idled then).
    pub data_wait_seconds: f64,
}

/// What `fit` returns: one entry per epoch.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct History {
    /// The epochs, in order.
    pub epochs: Vec<EpochLog>,
}

impl History {
    /// The value of `key` (`loss`, `val_accuracy`, ...) for every epoch.
    pub fn series(&self, key: &str) -> Vec<f64> {
        self.epochs
            .iter()
            .filter_map(|e| e.train.iter().chain(&e.val).find(|(k, _)| k == key).map(|(_, v)| *v))
            .collect()
    }
}

/// What a compiled step reads from the data, and its program.
struct Step {
    program: Program,
    names: Vec<String>,
    inputs: Vec<(String, Vec<usize>)>,
    targets: Vec<TargetSpec>,
    sample_weight: bool,
}

impl Step {
    /// Uploads one batch: every model input and target by name (class targets one-hot), and
    /// the sample weights (ones where the batch has none).
    fn feed(&self, batch: &Batch, scratch: &mut Vec<f32>) -> Result<()> {
        let n = batch.len();
        for (name, sample) in &self.inputs {
            let t = field(batch, name, "input")?;
            check_field(name, t, n, sample)?;
            self.program.set_input(name, &t.data)?;
        }
        for spec in &self.targets {
            let t = field(batch, &spec.name, "target")?;
            check_field(&spec.name, t, n, &spec.shape)?;
            match spec.classes {
                None => self.program.set_input(&target_input(&spec.name), &t.data)?,
                Some(c) => {
                    one_hot(&spec.name, &t.data, c, scratch)?;
                    self.program.set_input(&target_input(&spec.name), scratch)?;
                }
            }
        }
        if self.sample_weight {
            match batch.get(SAMPLE_WEIGHT) {
                Some(w) => {
                    check_field(SAMPLE_WEIGHT, w, n, &[])?;
                    self.program.set_input(SAMPLE_WEIGHT, &w.data)?;
                }
                None => {
                    scratch.clear();
                    scratch.resize(n, 1.0);
                    self.program.set_input(SAMPLE_WEIGHT, scratch)?;
                }
            }
        }
        Ok(())
    }

    /// Checks that `fields` names only this step's inputs, targets and sample weights.
    fn check_names<'a>(&self, fields: impl Iterator<Item = &'a str>) -> Result<()> {
        for f in fields {
            let known = self.inputs.iter().any(|(n, _)| n == f)
                || self.targets.iter().any(|t| t.name == f)
                || f == SAMPLE_WEIGHT;
            if !known {
                return Err(EngineError::Input {
                    what: f.to_string(),
                    message: format!(
                        "is neither a model input ({}) nor a target ({})",
                        list(self.inputs.iter().map(|(n, _)| n.as_str())),
                        list(self.targets.iter().map(|t| t.name.as_str()))
                    ),
                });
            }
        }
        Ok(())
    }
}

fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<String> = names.map(|n| format!("'{n}'")).collect();
    if v.is_empty() { "none".into() } else { v.join(", ") }
}

fn field<'a>(batch: &'a Batch, name: &str, kind: &str) -> Result<&'a Tensor> {
    batch.get(name).ok_or_else(|| EngineError::Input {
        what: name.to_string(),
        message: format!(
            "the step reads this {kind} but the data has none (it has {})",
            list(batch.fields.iter().map(|f| f.name.as_str()))
        ),
    })
}

fn check_field(name: &str, t: &Tensor, n: usize, sample: &[usize]) -> Result<()> {
    if t.shape.first() != Some(&n) || t.shape[1..] != *sample {
        let mut want = vec![n];
        want.extend_from_slice(sample);
        return Err(EngineError::Input {
            what: name.to_string(),
            message: format!("expected shape {}, got {}", fmt_shape(&want), fmt_shape(&t.shape)),
        });
    }
    Ok(())
}

/// Class indices (whole numbers in `[0, classes)`) to one-hot rows.
fn one_hot(name: &str, labels: &[f32], classes: usize, out: &mut Vec<f32>) -> Result<()> {
    out.clear();
    out.resize(labels.len() * classes, 0.0);
    for (i, &l) in labels.iter().enumerate() {
        if l.fract() != 0.0 || l < 0.0 || l as usize >= classes {
            return Err(EngineError::Input {
                what: name.to_string(),
                message: format!("label {l} (element {i}) is not a class index in [0, {classes})"),
            });
        }
        out[i * classes + l as usize] = 1.0;
    }
    Ok(())
}

/// Named arrays with a leading sample axis (Keras's dicts of arrays): model inputs by input
/// layer name, targets by target name (an output layer's name for built-in losses; class
/// targets as whole-number class indices), and optionally [`SAMPLE_WEIGHT`] `(samples,)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NamedArrays {
    /// The arrays, each `(samples, ...)`.
    pub arrays: Vec<(String, Tensor)>,
}

impl NamedArrays {
    /// No arrays.
    pub fn new() -> Self {
        NamedArrays::default()
    }

    /// Adds an array called `name`.
    pub fn with(mut self, name: &str, value: Tensor) -> Self {
        self.arrays.push((name.to_string(), value));
        self
    }

    /// The array called `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.arrays.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// The common number of samples; an error if the arrays disagree or there are none.
    pub fn samples(&self) -> Result<usize> {
        let mut n: Option<(usize, &str)> = None;
        for (i, (name, t)) in self.arrays.iter().enumerate() {
            if self.arrays[..i].iter().any(|(o, _)| o == name) {
                return Err(EngineError::Input {
                    what: name.clone(),
                    message: "appears twice in the data".into(),
                });
            }
            let len = t.shape.first().copied().unwrap_or(0);
            match n {
                None => n = Some((len, name)),
                Some((m, first)) if m != len => {
                    return Err(EngineError::Input {
                        what: name.clone(),
                        message: format!("has {len} samples but '{first}' has {m}"),
                    });
                }
                _ => {}
            }
        }
        match n {
            Some((len, _)) if len > 0 => Ok(len),
            _ => Err(EngineError::Input {
                what: "data".into(),
                message: "no samples".into(),
            }),
        }
    }

    /// Samples `idx` of every array, stacked.
    pub fn gather(&self, idx: &[usize]) -> Batch {
        let fields = self
            .arrays
            .iter()
            .map(|(name, t)| {
                let per: usize = t.shape[1..].iter().product();
                let mut data = Vec::with_capacity(per * idx.len());
                for &i in idx {
                    data.extend_from_slice(&t.data[i * per..(i + 1) * per]);
                }
                let mut shape = t.shape.clone();
                shape[0] = idx.len();
                Field {
                    name: name.clone(),
                    value: Tensor { shape, data },
                }
            })
            .collect();
        Batch {
            fields,
            indices: idx.to_vec(),
        }
    }
}

/// A model compiled with a loss, an optimizer and metrics for one device.
pub struct CompiledModel {
    device: Arc<Device>,
    model: Model,
    cfg: CompileConfig,
    state: Arc<DeviceState>,
    train: HashMap<usize, Step>,
    eval: HashMap<usize, Step>,
    grads: HashMap<(usize, String), Step>,
    predict: HashMap<usize, Program>,
    steps_done: u64,
    weights_on_host: bool,
}

impl std::fmt::Debug for CompiledModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledModel")
            .field("model", &self.model.name())
            .field("steps", &self.steps_done)
            .finish()
    }
}

/// Which step program to build.
#[derive(Debug, Clone, PartialEq, Eq)]
enum StepKind {
    Train,
    Eval,
    InputGradient(String),
}

impl CompiledModel {
    /// Keras's `model.compile(optimizer, loss, metrics)`: uploads the weights and checks the
    /// configuration by building the step graph (programs are compiled on first use, per batch
    /// size), so that a loss naming a missing output, or a bad trainable input, fails here.
    pub fn new(device: &Arc<Device>, model: Model, cfg: CompileConfig) -> Result<Self> {
        cfg.optimizer.validate()?;
        train_step(&model, 1, &cfg)?;
        let state = DeviceState::new(device);
        state.upload(&model.params)?;
        Ok(CompiledModel {
            device: device.clone(),
            model,
            cfg,
            state,
            train: HashMap::new(),
            eval: HashMap::new(),
            grads: HashMap::new(),
            predict: HashMap::new(),
            steps_done: 0,
            weights_on_host: true,
        })
    }

    /// The compile configuration.
    pub fn config(&self) -> &CompileConfig {
        &self.cfg
    }

    /// The device.
    pub fn device(&self) -> &Arc<Device> {
        &self.device
    }

    /// The model with its current weights (read back from the device if training changed them).
    pub fn model(&mut self) -> Result<&Model> {
        self.sync_weights()?;
        Ok(&self.model)
    }

    /// Optimizer updates applied so far.
    pub fn steps_done(&self) -> u64 {
        self.steps_done
    }

    /// Reads the device's weights (and moving statistics) back into the model's parameters.
    pub fn sync_weights(&mut self) -> Result<()> {
        if !self.weights_on_host {
            self.state.download(&mut self.model.params)?;
            self.weights_on_host = true;
        }
        Ok(())
    }

    /// Replaces the weights (host and device) with `params`' values.
    pub fn set_weights(&mut self, params: &fovea_graph::model::ParamStore) -> Result<()> {
        for p in params.iter() {
            self.model.params.set(&p.name, p.value.clone())?;
        }
        self.state.upload(&self.model.params)?;
        self.weights_on_host = true;
        Ok(())
    }

    /// Freezes (`false`) or unfreezes (`true`) the layer `layer` for the next `fit` (Keras's
    /// `layer.trainable = ...` then `compile` again): the current weights are kept, the step
    /// programs are rebuilt, and optimizer state already held for weights stays. Fine-tuning
    /// is: freeze the backbone, fit the head, unfreeze, fit on.
    pub fn set_trainable(&mut self, layer: &str, trainable: bool) -> Result<()> {
        self.sync_weights()?;
        self.model.set_trainable(layer, trainable)?;
        self.train.clear();
        self.eval.clear();
        self.grads.clear();
        Ok(())
    }

    /// [`CompiledModel::set_trainable`] for every layer.
    pub fn set_all_trainable(&mut self, trainable: bool) -> Result<()> {
        self.sync_weights()?;
        self.model.set_all_trainable(trainable)?;
        self.train.clear();
        self.eval.clear();
        self.grads.clear();
        Ok(())
    }

    /// Sets the value of trainable input `input` (see [`CompileConfig::trainable_inputs`]),
    /// with its batch axis: the starting point of the optimisation.
    pub fn set_variable(&mut self, input: &str, value: &Tensor) -> Result<()> {
        let shape = self.variable_shape(input, value.shape[0..1].first().copied().unwrap_or(1))?;
        if value.shape != shape {
            return Err(EngineError::Input {
                what: input.to_string(),
                message: format!("expected shape {}, got {}", fmt_shape(&shape), fmt_shape(&value.shape)),
            });
        }
        let mut store = fovea_graph::model::ParamStore::new(0);
        let name = variable_name(input);
        store.ensure(&name, &shape, fovea_graph::init::Initializer::Zeros, true, input)?;
        store.set(&name, value.clone())?;
        self.state.upload(&store)
    }

    /// The current value of trainable input `input` (`batch` samples).
    pub fn variable(&self, input: &str, batch: usize) -> Result<Tensor> {
        let shape = self.variable_shape(input, batch)?;
        let mut store = fovea_graph::model::ParamStore::new(0);
        let name = variable_name(input);
        store.ensure(&name, &shape, fovea_graph::init::Initializer::Zeros, true, input)?;
        if !self.state.contains(&name) {
            return Err(EngineError::Input {
                what: input.to_string(),
                message: "has no value yet: call set_variable first".into(),
            });
        }
        self.state.download(&mut store)?;
        Ok(store
            .get(&name)
            .map(|p| p.value.clone())
            .unwrap_or_else(|| Tensor::zeros(shape)))
    }

    fn variable_shape(&self, input: &str, batch: usize) -> Result<Vec<usize>> {
        if !self.cfg.trainable_inputs.iter().any(|i| i == input) {
            return Err(EngineError::Input {
                what: input.to_string(),
                message: format!(
                    "is not a trainable input; the trainable inputs are {}",
                    list(self.cfg.trainable_inputs.iter().map(|s| s.as_str()))
                ),
            });
        }
        let names = self.model.input_names();
        let k = names
            .iter()
            .position(|n| n == input)
            .ok_or_else(|| EngineError::Input {
                what: input.to_string(),
                message: "is not a model input".into(),
            })?;
        let mut shape = vec![batch.max(1)];
        shape.extend_from_slice(&self.model.input_shapes()[k]);
        Ok(shape)
    }

    fn step_program(&mut self, batch: usize, kind: &StepKind) -> Result<&Step> {
        let have = match kind {
            StepKind::Train => self.train.contains_key(&batch),
            StepKind::Eval => self.eval.contains_key(&batch),
            StepKind::InputGradient(i) => self.grads.contains_key(&(batch, i.clone())),
        };
        if !have {
            let sg = match kind {
                StepKind::Train => train_step(&self.model, batch, &self.cfg)?,
                StepKind::Eval => eval_step(&self.model, batch, &self.cfg)?,
                StepKind::InputGradient(i) => input_gradient_step(&self.model, batch, &self.cfg, i)?,
            };
            let StepGraph {
                graph,
                output_names,
                slots,
                inputs,
                targets,
                sample_weight,
                variables,
            } = sg;
            // Optimizer slots start at zero the first time they are seen; so do variables
            // nobody set (an error names them when they are read back).
            let mut store = fovea_graph::model::ParamStore::new(0);
            for p in slots.iter().filter(|p| !self.state.contains(&p.name)) {
                store.ensure(
                    &p.name,
                    &p.value.shape,
                    fovea_graph::init::Initializer::Zeros,
                    false,
                    "optimizer",
                )?;
            }
            for (name, shape) in variables.iter().filter(|(n, _)| !self.state.contains(n)) {
                store.ensure(name, shape, fovea_graph::init::Initializer::Zeros, true, name)?;
            }
            self.state.upload(&store)?;
            let program = Program::compile_with_state(&self.device, graph, &self.state)?;
            let step = Step {
                program,
                names: output_names,
                inputs,
                targets,
                sample_weight,
            };
            match kind {
                StepKind::Train => self.train.insert(batch, step),
                StepKind::Eval => self.eval.insert(batch, step),
                StepKind::InputGradient(i) => self.grads.insert((batch, i.clone()), step),
            };
        }
        Ok(match kind {
            StepKind::Train => &self.train[&batch],
            StepKind::Eval => &self.eval[&batch],
            StepKind::InputGradient(i) => &self.grads[&(batch, i.clone())],
        })
    }

    /// `x` and `y` of a one-input, one-output model as named arrays.
    fn named(&self, x: &Tensor, y: Option<&Targets>) -> Result<NamedArrays> {
        let ins = self.model.input_names();
        let outs = self.model.output_names();
        if ins.len() != 1 || (y.is_some() && outs.len() != 1) {
            return Err(EngineError::Input {
                what: "data".into(),
                message: format!(
                    "the model has {} inputs and {} outputs: pass named arrays (fit_arrays, evaluate_arrays)",
                    ins.len(),
                    outs.len()
                ),
            });
        }
        let mut data = NamedArrays::new().with(&ins[0], x.clone());
        match y {
            Some(Targets::Classes(_)) | Some(Targets::ClassIndices(_)) => {
                if self.cfg.single_loss().is_some_and(|l| !l.sparse_labels()) {
                    return Err(EngineError::Input {
                        what: "y".into(),
                        message: format!(
                            "class labels need a sparse loss; {} needs dense targets",
                            self.cfg.single_loss().map(|l| l.name()).unwrap_or("this loss")
                        ),
                    });
                }
                let t = match y {
                    Some(Targets::Classes(c)) => Tensor {
                        shape: vec![c.len()],
                        data: c.iter().map(|&v| v as f32).collect(),
                    },
                    Some(Targets::ClassIndices(t)) => t.clone(),
                    _ => unreachable!("matched above"),
                };
                data = data.with(&outs[0], t);
            }
            Some(Targets::Dense(t)) => data = data.with(&outs[0], t.clone()),
            None => {}
        }
        Ok(data)
    }

    /// Checks named arrays against the step before anything runs: names, shapes, labels.
    fn check_arrays(&mut self, data: &NamedArrays, kind: &StepKind) -> Result<usize> {
        let n = data.samples()?;
        let step = self.step_program(1, kind)?;
        step.check_names(data.arrays.iter().map(|(n, _)| n.as_str()))?;
        let probe = data.gather(&[0]);
        let mut scratch = Vec::new();
        for (name, sample) in &step.inputs {
            let t = field(&probe, name, "input")?;
            check_field(name, t, 1, sample).map_err(|_| shape_error(name, n, sample, data))?;
        }
        for spec in &step.targets {
            let t = field(&probe, &spec.name, "target")?;
            check_field(&spec.name, t, 1, &spec.shape).map_err(|_| shape_error(&spec.name, n, &spec.shape, data))?;
            if let Some(c) = spec.classes {
                if let Some(full) = data.get(&spec.name) {
                    one_hot(&spec.name, &full.data, c, &mut scratch)?;
                }
            }
        }
        if let Some(w) = data.get(SAMPLE_WEIGHT) {
            if !step.sample_weight {
                return Err(EngineError::Input {
                    what: SAMPLE_WEIGHT.into(),
                    message: "given, but the model was compiled without sample_weights".into(),
                });
            }
            check_field(SAMPLE_WEIGHT, w, n, &[])?;
        }
        Ok(n)
    }

    /// Keras's `fit`: trains for `opts.epochs` epochs and returns the history.
    pub fn fit(&mut self, x: &Tensor, y: &Targets, opts: &FitOptions) -> Result<History> {
        let data = self.named(x, Some(y))?;
        self.fit_arrays(&data, opts)
    }

    /// `fit` on named arrays (several inputs and targets, sample weights).
    pub fn fit_arrays(&mut self, data: &NamedArrays, opts: &FitOptions) -> Result<History> {
        let n = self.check_arrays(data, &StepKind::Train)?;
        self.check_validation(opts)?;
        let batch = check_batch(opts.batch_size)?.min(n);
        let mut source = |_epoch: usize,
                          order: Vec<usize>|
         -> Result<Box<dyn Iterator<Item = std::result::Result<Batch, String>> + '_>> {
            let batches: Vec<Vec<usize>> = order.chunks(batch).map(|c| c.to_vec()).collect();
            Ok(Box::new(batches.into_iter().map(move |idx| Ok(data.gather(&idx)))))
        };
        self.run_fit(n, batch, &mut source, opts)
    }

    /// `fit` on a streaming data set: items are decoded and augmented on `opts.workers`
    /// threads while the device runs the previous step. Each epoch visits every item once,
    /// shuffled when `opts.shuffle`; results do not depend on the number of workers.
    pub fn fit_dataset(&mut self, dataset: Arc<dyn Dataset>, opts: &FitOptions) -> Result<History> {
        let n = dataset.len();
        if n == 0 {
            return Err(EngineError::Input {
                what: "dataset".into(),
                message: "no samples".into(),
            });
        }
        self.check_validation(opts)?;
        let batch = check_batch(opts.batch_size)?.min(n);
        let workers = opts.workers.max(1);
        let mut source =
            |epoch: usize, order: Vec<usize>| -> Result<Box<dyn Iterator<Item = std::result::Result<Batch, String>>>> {
                Ok(Box::new(Prefetcher::new(
                    dataset.clone(),
                    order,
                    batch,
                    workers,
                    opts.seed,
                    epoch as u64,
                    2,
                )))
            };
        self.run_fit(n, batch, &mut source, opts)
    }

    fn check_validation(&mut self, opts: &FitOptions) -> Result<()> {
        if let Some((vx, vy)) = &opts.validation {
            let v = self.named(vx, Some(vy))?;
            self.check_arrays(&v, &StepKind::Eval)?;
        }
        if let Some(v) = &opts.validation_arrays {
            self.check_arrays(v, &StepKind::Eval)?;
        }
        Ok(())
    }

    /// What a checkpoint must agree on to continue this run.
    fn fingerprint(&self, n: usize, batch: usize, opts: &FitOptions) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for name in self.state.names() {
            for b in name.bytes() {
                h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        format!(
            "model {} | {n} samples | batch {batch} | seed {} | shuffle {} | lr {:?} | state {h:016x}",
            self.model.name(),
            opts.seed,
            opts.shuffle,
            self.cfg.optimizer.learning_rate
        )
    }

    /// Restores the newest checkpoint of `ck.dir` (when resuming and there is one) after
    /// checking that it belongs to this run; returns its run state.
    fn restore_checkpoint(&mut self, ck: &CheckpointOptions, fingerprint: &str) -> Result<Option<RunState>> {
        if !ck.resume {
            return Ok(None);
        }
        let Some((path, run, tensors)) = resume::newest(&ck.dir)? else {
            eprintln!(
                "note: no checkpoint in {} yet: starting from the beginning",
                ck.dir.display()
            );
            return Ok(None);
        };
        if run.fingerprint != fingerprint {
            return Err(EngineError::Input {
                what: path.display().to_string(),
                message: format!(
                    "this checkpoint belongs to another run ({}); this run is {fingerprint}: resume with the same \
                     model, data, --batch-size and --seed, or use another --checkpoint-dir",
                    run.fingerprint
                ),
            });
        }
        self.restore_tensors(&path, &tensors, run.steps_done)?;
        eprintln!(
            "resuming from {} (epoch {}, step {} of the run)",
            path.display(),
            run.epochs_done + usize::from(run.step_in_epoch > 0),
            run.steps_done
        );
        Ok(Some(run))
    }

    #[allow(clippy::type_complexity)]
    fn run_fit<'a>(
        &mut self,
        n: usize,
        batch: usize,
        source: &mut dyn FnMut(
            usize,
            Vec<usize>,
        ) -> Result<Box<dyn Iterator<Item = std::result::Result<Batch, String>> + 'a>>,
        opts: &FitOptions,
    ) -> Result<History> {
        let steps = n.div_ceil(batch);
        let mut shuffle_rng = Rng::new(opts.seed);
        let mut rng = Rng::new(opts.seed ^ 0x5eed_d0d0);
        let mut history = History::default();
        let mut scratch = Vec::new();
        // Build the step first: it places every state tensor a checkpoint holds.
        let width = self.step_program(batch, &StepKind::Train)?.names.len();
        let fingerprint = self.fingerprint(n, batch, opts);
        let mut resumed = match &opts.checkpoint {
            Some(ck) => self.restore_checkpoint(ck, &fingerprint)?,
            None => None,
        };
        let mut first_epoch = 1;
        if let Some(run) = &resumed {
            shuffle_rng = Rng::from_state(run.shuffle_rng);
            rng = Rng::from_state(run.dropout_rng);
            history.epochs = run.history.clone();
            first_epoch = run.epochs_done + 1;
        }
        for epoch in first_epoch..=opts.epochs {
            // The epoch's order, and where in it to start: mid-epoch after a resume.
            let (order, first_step, mut done_values, mut sizes, done_seconds, done_wait) =
                match resumed.take().filter(|r| r.step_in_epoch > 0) {
                    Some(r) => (
                        r.order,
                        r.step_in_epoch,
                        r.partial,
                        r.partial_sizes,
                        r.partial_seconds,
                        r.partial_wait,
                    ),
                    None => {
                        let mut order: Vec<usize> = (0..n).collect();
                        if opts.shuffle {
                            for i in (1..n).rev() {
                                order.swap(i, shuffle_rng.below(i + 1));
                            }
                        }
                        (order, 0, Vec::new(), Vec::new(), 0.0, 0.0)
                    }
                };
            let mut progress = Progress::new(opts.verbosity, epoch, opts.epochs, steps);
            let device = self.device.clone();
            let mut log = MetricLog::new(&device, steps, width);
            let start = Instant::now();
            let mut waiting = std::time::Duration::ZERO;
            let mut batches = source(epoch, order[(first_step * batch).min(n)..].to_vec())?;
            let mut logged = 0;
            for s in first_step..steps {
                let t0 = Instant::now();
                let Some(b) = batches.next() else { break };
                waiting += t0.elapsed();
                let b = b.map_err(|message| EngineError::Input {
                    what: "dataset".into(),
                    message,
                })?;
                let (lr, alpha) = self.cfg.optimizer.hyper(self.steps_done);
                let seed_base = (rng.next_u64() & 0xff_ffff) as f32;
                let step = self.step_program(b.len(), &StepKind::Train)?;
                step.feed(&b, &mut scratch)?;
                let p = &step.program;
                p.set_input(LEARNING_RATE, &[lr])?;
                p.set_input(STEP_SIZE, &[alpha])?;
                for (k, name) in p.input_names().iter().enumerate() {
                    if name.ends_with("/seed") {
                        p.set_input(name, &[(seed_base + k as f32) % 16_777_216.0])?;
                    }
                }
                let mut enc = device.device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("train step"),
                });
                if opts.check_numerics {
                    p.run_checked()?;
                    p.encode_updates(&mut enc);
                } else {
                    p.encode(&mut enc);
                }
                log.record(p, &mut enc, logged);
                device.queue.submit([enc.finish()]);
                self.steps_done += 1;
                self.weights_on_host = false;
                logged += 1;
                sizes.push(b.len());
                if progress.due() {
                    let names = self.step_program(batch, &StepKind::Train)?.names.clone();
                    let running = log.means(&device, &sizes[sizes.len() - logged..], &names, "")?;
                    progress.draw(s + 1, sizes.iter().sum(), &running);
                }
                let every = opts.checkpoint.as_ref().map_or(0, |c| c.every_steps);
                if every > 0 && self.steps_done.is_multiple_of(every as u64) && s + 1 < steps {
                    let names = self.step_program(batch, &StepKind::Train)?.names.clone();
                    let mut values = done_values.clone();
                    values.extend(log.per_step(&device, logged, &names)?.into_iter().map(values_of));
                    let run = RunState {
                        fingerprint: fingerprint.clone(),
                        epochs_done: epoch - 1,
                        step_in_epoch: s + 1,
                        steps_done: self.steps_done,
                        shuffle_rng: shuffle_rng.state(),
                        dropout_rng: rng.state(),
                        order: order.clone(),
                        partial: values,
                        partial_sizes: sizes.clone(),
                        partial_seconds: done_seconds + start.elapsed().as_secs_f64(),
                        partial_wait: done_wait + waiting.as_secs_f64(),
                        history: history.epochs.clone(),
                        task: serde_json::Value::Null,
                    };
                    self.write_checkpoint(opts, &run)?;
                }
            }
            drop(batches);
            let names = self.step_program(batch, &StepKind::Train)?.names.clone();
            done_values.extend(log.per_step(&device, logged, &names)?.into_iter().map(values_of));
            let train = weighted_means(&names, &done_values, &sizes);
            let seconds = done_seconds + start.elapsed().as_secs_f64();
            if train.iter().any(|(_, v)| !v.is_finite()) {
                return Err(EngineError::Device(format!(
                    "training diverged in epoch {epoch}: {} (lower the learning rate?)",
                    train
                        .iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let mut val = Vec::new();
            if let Some((vx, vy)) = &opts.validation {
                val = self.evaluate(vx, vy, opts.batch_size)?;
            } else if let Some(v) = &opts.validation_arrays {
                val = self.evaluate_arrays(v, opts.batch_size)?;
            }
            let val: Vec<(String, f64)> = val.into_iter().map(|(k, v)| (format!("val_{k}"), v)).collect();
            let seen: usize = sizes.iter().sum();
            progress.finish(seen, &train, &val);
            history.epochs.push(EpochLog {
                epoch,
                train,
                val,
                seconds,
                images_per_second: seen as f64 / seconds.max(1e-9),
                data_wait_seconds: done_wait + waiting.as_secs_f64(),
            });
            if opts.checkpoint.is_some() {
                let run = RunState {
                    epochs_done: epoch,
                    steps_done: self.steps_done,
                    shuffle_rng: shuffle_rng.state(),
                    dropout_rng: rng.state(),
                    history: history.epochs.clone(),
                    ..RunState::at_epoch_end(fingerprint.clone())
                };
                self.write_checkpoint(opts, &run)?;
            }
        }
        Ok(history)
    }

    /// Puts a checkpoint's `tensors` (read from `path`) into the device state and continues the
    /// step count (the learning-rate schedule, Adam's bias correction) at `steps_done`.
    pub(crate) fn restore_tensors(
        &mut self,
        path: &std::path::Path,
        tensors: &[(String, Tensor)],
        steps_done: u64,
    ) -> Result<()> {
        let held = self.state.names();
        if tensors.len() != held.len() {
            return Err(EngineError::Input {
                what: path.display().to_string(),
                message: format!("holds {} tensors, the run has {}", tensors.len(), held.len()),
            });
        }
        for (name, t) in tensors {
            self.state.restore(name, &t.data)?;
        }
        self.steps_done = steps_done;
        self.weights_on_host = false;
        Ok(())
    }

    /// Builds the training step for `batch`, which places every state tensor (optimizer
    /// slots) a checkpoint holds.
    pub(crate) fn prepare_training(&mut self, batch: usize) -> Result<()> {
        self.step_program(batch, &StepKind::Train).map(|_| ())
    }

    /// Every device tensor of the run (weights, statistics, optimizer slots), by state name.
    pub(crate) fn state_snapshot(&self) -> Result<Vec<(String, Vec<f32>)>> {
        self.state.snapshot()
    }

    /// The model's name.
    pub(crate) fn model_name(&self) -> &str {
        self.model.name()
    }

    /// Saves the device state at `run` into the run's checkpoint folder.
    fn write_checkpoint(&self, opts: &FitOptions, run: &RunState) -> Result<()> {
        let Some(ck) = &opts.checkpoint else { return Ok(()) };
        let tensors = self.state.snapshot()?;
        resume::save(ck, run, &tensors)?;
        Ok(())
    }

    /// Keras's `evaluate`: the mean loss and metrics over `x`, in batches of `batch_size`.
    pub fn evaluate(&mut self, x: &Tensor, y: &Targets, batch_size: usize) -> Result<Vec<(String, f64)>> {
        let data = self.named(x, Some(y))?;
        self.evaluate_arrays(&data, batch_size)
    }

    /// `evaluate` on named arrays.
    pub fn evaluate_arrays(&mut self, data: &NamedArrays, batch_size: usize) -> Result<Vec<(String, f64)>> {
        let n = self.check_arrays(data, &StepKind::Eval)?;
        let batch = check_batch(batch_size)?.min(n);
        let steps = n.div_ceil(batch);
        let names = self.step_program(batch, &StepKind::Eval)?.names.clone();
        let device = self.device.clone();
        let mut log = MetricLog::new(&device, steps, names.len());
        let order: Vec<usize> = (0..n).collect();
        let mut sizes = Vec::new();
        let mut scratch = Vec::new();
        for (s, idx) in order.chunks(batch).enumerate() {
            let b = data.gather(idx);
            let step = self.step_program(idx.len(), &StepKind::Eval)?;
            step.feed(&b, &mut scratch)?;
            let mut enc = device.device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("eval step"),
            });
            step.program.encode(&mut enc);
            log.record(&step.program, &mut enc, s);
            device.queue.submit([enc.finish()]);
            sizes.push(idx.len());
        }
        log.means(&device, &sizes, &names, "")
    }

    /// Keras's `predict`: the model's outputs for `x`, in batches of `batch_size`.
    pub fn predict(&mut self, x: &Tensor, batch_size: usize) -> Result<Tensor> {
        let data = self.named(x, None)?;
        let mut out = self.predict_arrays(&data, batch_size)?;
        if out.len() != 1 {
            return Err(EngineError::Input {
                what: "predict".into(),
                message: format!("the model has {} outputs: use predict_arrays", out.len()),
            });
        }
        Ok(out.remove(0).1)
    }

    /// `predict` on named inputs: every output, keyed by output layer name.
    pub fn predict_arrays(&mut self, inputs: &NamedArrays, batch_size: usize) -> Result<Vec<(String, Tensor)>> {
        check_batch(batch_size)?;
        crate::predict::check_inputs(&self.model, inputs)?;
        crate::predict::run_batches(
            &self.device,
            &self.state,
            &self.model,
            inputs,
            batch_size,
            &mut self.predict,
        )
    }

    /// The gradient of the mean loss over `data` with respect to model input `input`, in
    /// inference mode (saliency maps), shaped like that input's array. All samples go in one
    /// batch.
    pub fn gradient_wrt_input(&mut self, input: &str, data: &NamedArrays) -> Result<Tensor> {
        let kind = StepKind::InputGradient(input.to_string());
        let n = self.check_arrays(data, &kind)?;
        let all: Vec<usize> = (0..n).collect();
        let b = data.gather(&all);
        let mut scratch = Vec::new();
        let device = self.device.clone();
        let step = self.step_program(n, &kind)?;
        step.feed(&b, &mut scratch)?;
        let last = step.names.len() - 1;
        let rb = device.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("input gradient"),
            size: (step.program.graph().ty(step.program.graph().outputs[last]).numel() * 4) as u64,
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        let mut enc = device.device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("input gradient"),
        });
        step.program.encode(&mut enc);
        step.program.copy_output(&mut enc, last, &rb, 0);
        device.queue.submit([enc.finish()]);
        let shape = step
            .program
            .graph()
            .ty(step.program.graph().outputs[last])
            .shape
            .clone();
        let values = crate::readback::map_read(&device, &rb, shape.iter().product())?;
        Ok(Tensor::new(shape, values, "gradient")?)
    }

    /// Runs `steps` optimizer steps on the same `data` (the whole of it as one batch): the
    /// loop of optimising trainable inputs (style transfer) against fixed targets. Returns
    /// the loss and metrics after every step.
    pub fn train_steps(&mut self, steps: usize, data: &NamedArrays) -> Result<Vec<Vec<(String, f64)>>> {
        let batch = if data.arrays.is_empty() {
            1
        } else {
            self.check_arrays(data, &StepKind::Train)?
        };
        let all: Vec<usize> = (0..batch).collect();
        let b = if data.arrays.is_empty() {
            Batch {
                fields: Vec::new(),
                indices: all,
            }
        } else {
            data.gather(&all)
        };
        let names = self.step_program(batch, &StepKind::Train)?.names.clone();
        let device = self.device.clone();
        let mut log = MetricLog::new(&device, steps, names.len());
        let mut scratch = Vec::new();
        for s in 0..steps {
            let (lr, alpha) = self.cfg.optimizer.hyper(self.steps_done);
            let step = self.step_program(batch, &StepKind::Train)?;
            step.feed(&b, &mut scratch)?;
            step.program.set_input(LEARNING_RATE, &[lr])?;
            step.program.set_input(STEP_SIZE, &[alpha])?;
            let mut enc = device.device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("train step"),
            });
            step.program.encode(&mut enc);
            log.record(&step.program, &mut enc, s);
            device.queue.submit([enc.finish()]);
            self.steps_done += 1;
            self.weights_on_host = false;
        }
        log.per_step(&device, steps, &names)
    }
}

fn shape_error(name: &str, n: usize, sample: &[usize], data: &NamedArrays) -> EngineError {
    let mut want = vec![n];
    want.extend_from_slice(sample);
    let got = data.get(name).map(|t| fmt_shape(&t.shape)).unwrap_or_default();
    EngineError::Input {
        what: name.to_string(),
        message: format!("expected shape {}, got {got}", fmt_shape(&want)),
    }
}

fn check_batch(batch_size: usize) -> Result<usize> {
    if batch_size == 0 {
        return Err(EngineError::Input {
            what: "batch_size".into(),
            message: "must be positive".into(),
        });
    }
    Ok(batch_size)
}

/// The values of one step's named outputs.
fn values_of(step: Vec<(String, f64)>) -> Vec<f64> {
    step.into_iter().map(|(_, v)| v).collect()
}

/// Sample-weighted means of per-step values (`sizes[i]` samples in step `i`).
fn weighted_means(names: &[String], values: &[Vec<f64>], sizes: &[usize]) -> Vec<(String, f64)> {
    let total: usize = sizes.iter().take(values.len()).sum();
    names
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let s: f64 = values
                .iter()
                .zip(sizes)
                .map(|(v, &n)| v.get(j).copied().unwrap_or(f64::NAN) * n as f64)
                .sum();
            (name.clone(), s / total.max(1) as f64)
        })
        .collect()
}

/// Per-step scalar outputs (loss and metrics) copied on the device into one buffer.
struct MetricLog {
    buffer: wgpu::Buffer,
    staging: wgpu::Buffer,
    width: usize,
    steps: usize,
}

impl MetricLog {
    fn new(device: &Device, steps: usize, width: usize) -> Self {
        let size = (steps.max(1) * width.max(1) * 4) as u64;
        let buffer = device.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("metric log"),
            size,
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let staging = device.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("metric log readback"),
            size,
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        MetricLog {
            buffer,
            staging,
            width,
            steps,
        }
    }

    fn record(&self, p: &Program, enc: &mut wgpu::CommandEncoder, step: usize) {
        for i in 0..self.width {
            p.copy_output(enc, i, &self.buffer, ((step * self.width + i) * 4) as u64);
        }
    }

    /// Every step's values, in order.
    fn per_step(&mut self, device: &Device, steps: usize, names: &[String]) -> Result<Vec<Vec<(String, f64)>>> {
        let n = steps.min(self.steps);
        if n == 0 {
            return Ok(Vec::new());
        }
        let bytes = (n * self.width * 4) as u64;
        let mut enc = device.device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("metric log"),
        });
        enc.copy_buffer_to_buffer(&self.buffer, 0, &self.staging, 0, bytes.max(4));
        device.queue.submit([enc.finish()]);
        let values = crate::readback::map_read(device, &self.staging, n * self.width)?;
        Ok((0..n)
            .map(|i| {
                names
                    .iter()
                    .enumerate()
                    .map(|(j, name)| (name.clone(), values[i * self.width + j] as f64))
                    .collect()
            })
            .collect())
    }

    /// The sample-weighted means of the first `sizes.len()` steps, named `prefix + name`.
    fn means(
        &mut self,
        device: &Device,
        sizes: &[usize],
        names: &[String],
        prefix: &str,
    ) -> Result<Vec<(String, f64)>> {
        let n = sizes.len().min(self.steps);
        let bytes = (n * self.width * 4) as u64;
        let mut enc = device.device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("metric log"),
        });
        enc.copy_buffer_to_buffer(&self.buffer, 0, &self.staging, 0, bytes.max(4));
        device.queue.submit([enc.finish()]);
        let values = crate::readback::map_read(device, &self.staging, n * self.width)?;
        let total: usize = sizes[..n].iter().sum();
        Ok(names
            .iter()
            .enumerate()
            .map(|(j, name)| {
                let s: f64 = (0..n)
                    .map(|i| values[i * self.width + j] as f64 * sizes[i] as f64)
                    .sum();
                (format!("{prefix}{name}"), s / total.max(1) as f64)
            })
            .collect())
    }
}
