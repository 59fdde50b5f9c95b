//! `compile` / `fit` / `evaluate` / `predict` with Keras's semantics.
//!
//! A training step is one program (forward, loss, backward, optimizer update) whose dispatches
//! go into one command encoder and one submit; parameters and optimizer state stay on the
//! device in a [`DeviceState`] shared by the programs for the full batch, the last partial
//! batch, evaluation and prediction. Per-step loss and metrics are copied on the device into a
//! log that is read at most a few times a second for the progress bar and once per epoch.

use crate::device::Device;
use crate::error::{EngineError, Result};
use crate::program::Program;
use crate::progress::{Progress, Verbosity};
use crate::state::DeviceState;
use fovea_graph::init::Rng;
use fovea_graph::ir::fmt_shape;
use fovea_graph::train::{CompileConfig, LABELS, LEARNING_RATE, STEP_SIZE, StepGraph, eval_step, train_step};
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
}

impl Targets {
    fn len(&self) -> usize {
        match self {
            Targets::Classes(c) => c.len(),
            Targets::Dense(t) => t.shape.first().copied().unwrap_or(0),
        }
    }
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
    /// Progress output.
    pub verbosity: Verbosity,
    /// The NaN/Inf tripwire: stop at the first kernel writing a non-finite value (slow).
    pub check_numerics: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            shuffle: true,
            seed: 0,
            validation: None,
            verbosity: Verbosity::Auto,
            check_numerics: false,
        }
    }
}

/// One epoch of a training history.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
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

struct Step {
    program: Program,
    names: Vec<String>,
}

/// A model compiled with a loss, an optimizer and metrics for one device.
pub struct CompiledModel {
    device: Arc<Device>,
    model: Model,
    cfg: CompileConfig,
    state: Arc<DeviceState>,
    train: HashMap<usize, Step>,
    eval: HashMap<usize, Step>,
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

impl CompiledModel {
    /// Keras's `model.compile(optimizer, loss, metrics)`: uploads the weights and checks the
    /// configuration (programs are built on first use, per batch size).
    pub fn new(device: &Arc<Device>, model: Model, cfg: CompileConfig) -> Result<Self> {
        cfg.optimizer.validate()?;
        let state = DeviceState::new(device);
        state.upload(&model.params)?;
        Ok(CompiledModel {
            device: device.clone(),
            model,
            cfg,
            state,
            train: HashMap::new(),
            eval: HashMap::new(),
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

    fn step_program(&mut self, batch: usize, training: bool) -> Result<&Step> {
        let have = if training {
            self.train.contains_key(&batch)
        } else {
            self.eval.contains_key(&batch)
        };
        if !have {
            let StepGraph {
                graph,
                output_names,
                slots,
            } = if training {
                train_step(&self.model, batch, &self.cfg)?
            } else {
                eval_step(&self.model, batch, &self.cfg)?
            };
            if training {
                // Optimizer slots start at zero the first time they are seen.
                let fresh: Vec<_> = slots
                    .iter()
                    .filter(|p| !self.state.contains(&p.name))
                    .cloned()
                    .collect();
                let mut store = fovea_graph::model::ParamStore::new(0);
                for p in fresh {
                    store.ensure(
                        &p.name,
                        &p.value.shape,
                        fovea_graph::init::Initializer::Zeros,
                        false,
                        "optimizer",
                    )?;
                }
                self.state.upload(&store)?;
            }
            let program = Program::compile_with_state(&self.device, graph, &self.state)?;
            let map = if training { &mut self.train } else { &mut self.eval };
            map.insert(
                batch,
                Step {
                    program,
                    names: output_names,
                },
            );
        }
        Ok(if training {
            &self.train[&batch]
        } else {
            &self.eval[&batch]
        })
    }

    fn check_data(&self, x: &Tensor, y: Option<&Targets>) -> Result<usize> {
        let ins = self.model.input_shapes();
        let outs = self.model.output_shapes();
        if ins.len() != 1 || outs.len() != 1 {
            return Err(EngineError::Input {
                what: "fit".into(),
                message: "needs a model with one input and one output".into(),
            });
        }
        if x.shape.len() != ins[0].len() + 1 || x.shape[1..] != ins[0][..] {
            return Err(EngineError::Input {
                what: "x".into(),
                message: format!(
                    "expected shape (samples, {}), got {}",
                    join(&ins[0]),
                    fmt_shape(&x.shape)
                ),
            });
        }
        let n = x.shape[0];
        if n == 0 {
            return Err(EngineError::Input {
                what: "x".into(),
                message: "no samples".into(),
            });
        }
        match y {
            None => {}
            Some(Targets::Classes(c)) => {
                if !self.cfg.loss.sparse_labels() {
                    return Err(EngineError::Input {
                        what: "y".into(),
                        message: format!(
                            "class labels need a sparse loss; {} needs dense targets",
                            self.cfg.loss.name()
                        ),
                    });
                }
                let classes = *outs[0].last().unwrap_or(&0);
                if outs[0].len() != 1 {
                    return Err(EngineError::Input {
                        what: "y".into(),
                        message: "class labels need a (batch, classes) output".into(),
                    });
                }
                if let Some(bad) = c.iter().find(|&&l| l as usize >= classes) {
                    return Err(EngineError::Input {
                        what: "y".into(),
                        message: format!("label {bad} is out of range for {classes} classes"),
                    });
                }
            }
            Some(Targets::Dense(t)) if t.shape.len() != outs[0].len() + 1 || t.shape[1..] != outs[0][..] => {
                return Err(EngineError::Input {
                    what: "y".into(),
                    message: format!(
                        "expected shape (samples, {}), got {}",
                        join(&outs[0]),
                        fmt_shape(&t.shape)
                    ),
                });
            }
            Some(Targets::Dense(_)) => {}
        }
        if let Some(y) = y {
            if y.len() != n {
                return Err(EngineError::Input {
                    what: "y".into(),
                    message: format!("{} targets for {n} samples", y.len()),
                });
            }
        }
        Ok(n)
    }

    /// Gathers samples `idx` of `x` and `y` into host batch buffers.
    fn gather(&self, x: &Tensor, y: Option<&Targets>, idx: &[usize], xb: &mut Vec<f32>, yb: &mut Vec<f32>) {
        let per: usize = x.shape[1..].iter().product();
        xb.clear();
        for &i in idx {
            xb.extend_from_slice(&x.data[i * per..(i + 1) * per]);
        }
        yb.clear();
        match y {
            Some(Targets::Classes(c)) => {
                let classes = self.model.output_shapes()[0][0];
                for &i in idx {
                    let start = yb.len();
                    yb.resize(start + classes, 0.0);
                    yb[start + c[i] as usize] = 1.0;
                }
            }
            Some(Targets::Dense(t)) => {
                let per: usize = t.shape[1..].iter().product();
                for &i in idx {
                    yb.extend_from_slice(&t.data[i * per..(i + 1) * per]);
                }
            }
            None => {}
        }
    }

    /// Keras's `fit`: trains for `opts.epochs` epochs and returns the history.
    pub fn fit(&mut self, x: &Tensor, y: &Targets, opts: &FitOptions) -> Result<History> {
        let n = self.check_data(x, Some(y))?;
        if opts.batch_size == 0 {
            return Err(EngineError::Input {
                what: "batch_size".into(),
                message: "must be positive".into(),
            });
        }
        if let Some((vx, vy)) = &opts.validation {
            self.check_data(vx, Some(vy))?;
        }
        let input = self.model_input_name();
        let batch = opts.batch_size.min(n);
        let steps = n.div_ceil(batch);
        let mut rng = Rng::new(opts.seed);
        let mut history = History::default();
        let (mut xb, mut yb) = (Vec::new(), Vec::new());
        for epoch in 1..=opts.epochs {
            let mut order: Vec<usize> = (0..n).collect();
            if opts.shuffle {
                for i in (1..n).rev() {
                    order.swap(i, rng.below(i + 1));
                }
            }
            let mut progress = Progress::new(opts.verbosity, epoch, opts.epochs, steps);
            let width = self.step_program(batch, true)?.names.len();
            let device = self.device.clone();
            let mut log = MetricLog::new(&device, steps, width);
            let start = Instant::now();
            let mut sizes = Vec::with_capacity(steps);
            for s in 0..steps {
                let idx = &order[s * batch..((s + 1) * batch).min(n)];
                self.gather(x, Some(y), idx, &mut xb, &mut yb);
                let (lr, alpha) = self.cfg.optimizer.hyper(self.steps_done);
                let seed_base = (rng.next_u64() & 0xff_ffff) as f32;
                let step = self.step_program(idx.len(), true)?;
                let p = &step.program;
                p.set_input(&input, &xb)?;
                p.set_input(LABELS, &yb)?;
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
                log.record(p, &mut enc, s);
                device.queue.submit([enc.finish()]);
                self.steps_done += 1;
                self.weights_on_host = false;
                sizes.push(idx.len());
                if progress.due() {
                    let names = self.step_program(batch, true)?.names.clone();
                    let running = log.means(&device, &sizes, &names, "")?;
                    progress.draw(s + 1, sizes.iter().sum(), &running);
                }
            }
            let names = self.step_program(batch, true)?.names.clone();
            let train = log.means(&device, &sizes, &names, "")?;
            let seconds = start.elapsed().as_secs_f64();
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
            let val = match &opts.validation {
                Some((vx, vy)) => self
                    .evaluate(vx, vy, opts.batch_size)?
                    .into_iter()
                    .map(|(k, v)| (format!("val_{k}"), v))
                    .collect(),
                None => Vec::new(),
            };
            progress.finish(n, &train, &val);
            history.epochs.push(EpochLog {
                epoch,
                train,
                val,
                seconds,
                images_per_second: n as f64 / seconds.max(1e-9),
            });
        }
        Ok(history)
    }

    fn model_input_name(&self) -> String {
        self.model.layers()[0].name.clone()
    }

    /// Keras's `evaluate`: the mean loss and metrics over `x`, in batches of `batch_size`.
    pub fn evaluate(&mut self, x: &Tensor, y: &Targets, batch_size: usize) -> Result<Vec<(String, f64)>> {
        let n = self.check_data(x, Some(y))?;
        if batch_size == 0 {
            return Err(EngineError::Input {
                what: "batch_size".into(),
                message: "must be positive".into(),
            });
        }
        let input = self.model_input_name();
        let batch = batch_size.min(n);
        let steps = n.div_ceil(batch);
        let names = self.step_program(batch, false)?.names.clone();
        let device = self.device.clone();
        let mut log = MetricLog::new(&device, steps, names.len());
        let (mut xb, mut yb) = (Vec::new(), Vec::new());
        let order: Vec<usize> = (0..n).collect();
        let mut sizes = Vec::new();
        for s in 0..steps {
            let idx = &order[s * batch..((s + 1) * batch).min(n)];
            self.gather(x, Some(y), idx, &mut xb, &mut yb);
            let step = self.step_program(idx.len(), false)?;
            step.program.set_input(&input, &xb)?;
            step.program.set_input(LABELS, &yb)?;
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
        self.check_data(x, None)?;
        if batch_size == 0 {
            return Err(EngineError::Input {
                what: "batch_size".into(),
                message: "must be positive".into(),
            });
        }
        crate::predict::run_batches(&self.device, &self.state, &self.model, x, batch_size, &mut self.predict)
    }
}

fn join(s: &[usize]) -> String {
    s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
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
