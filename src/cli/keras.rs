//! Keras models on the command line: `fovea predict --model M.json ...` and `fovea fit`.
//!
//! Everything is read and checked before any computation (model config, weights, arrays,
//! output folders), and every output is written to a temporary file renamed into place, so a
//! bad input gets an error and leaves no output file behind.

use anyhow::{Context, bail, ensure};
use fovea_engine::{CompiledModel, Device, FitOptions, Targets, Verbosity, checkpoint, npy, npz};
use fovea_graph::ir::fmt_shape;
use fovea_graph::train::{CompileConfig, Loss, Metric, Optimizer};
use fovea_graph::{Model, Tensor};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Reads a Keras model config (`model.to_json()`, see `tools/keras/export.py`) into a model
/// with Fovea's seeded initial weights.
pub fn load_model_file(path: &Path) -> anyhow::Result<Model> {
    let json = std::fs::read_to_string(path).with_context(|| format!("cannot read model file {}", path.display()))?;
    Ok(fovea_graph::keras::load_config(&json, &path.display().to_string())?)
}

/// The model with its weights from a safetensors file (names `<layer>/<variable>`).
fn load_model(model: &Path, weights: Option<&Path>) -> anyhow::Result<Model> {
    let mut m = load_model_file(model)?;
    match weights {
        Some(w) => checkpoint::load_params(w, &mut m.params)
            .with_context(|| format!("loading --weights {} into {}", w.display(), model.display()))?,
        None => eprintln!("note: no --weights: starting from Fovea's seeded initial weights"),
    }
    Ok(m)
}

/// Checks that `path` can be written later: its folder exists and it is not a folder.
pub(super) fn check_output(path: &Path, flag: &str) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    ensure!(
        dir.is_dir(),
        "{flag} {}: the folder {} does not exist",
        path.display(),
        dir.display()
    );
    ensure!(!path.is_dir(), "{flag} {}: is a folder", path.display());
    Ok(())
}

/// The model's single input and output shapes (per sample).
fn single_io(model: &Model, path: &Path) -> anyhow::Result<(Vec<usize>, Vec<usize>)> {
    let (ins, outs) = (model.input_shapes(), model.output_shapes());
    ensure!(
        ins.len() == 1 && outs.len() == 1,
        "{}: the model has {} inputs and {} outputs; predict and fit take models with one of each",
        path.display(),
        ins.len(),
        outs.len()
    );
    Ok((ins[0].clone(), outs[0].clone()))
}

/// Reads float32 samples shaped `(samples, *sample)`.
fn read_samples(path: &Path, sample: &[usize], flag: &str) -> anyhow::Result<Tensor> {
    let x = npy::read_f32(path).with_context(|| format!("reading {flag} {}", path.display()))?;
    let mut want = vec![0];
    want.extend_from_slice(sample);
    ensure!(
        x.shape.len() == sample.len() + 1 && x.shape[1..] == *sample && x.shape[0] > 0,
        "{flag} {}: the model takes float32 arrays shaped (samples, {}), this one is {}",
        path.display(),
        sample.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
        fmt_shape(&x.shape)
    );
    Ok(x)
}

fn write_json(path: &Path, value: &serde_json::Value) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, serde_json::to_string_pretty(value)?).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// Arguments of `fovea predict --model`.
pub struct PredictArgs {
    pub model: PathBuf,
    pub weights: Option<PathBuf>,
    pub input: Option<PathBuf>,
    pub output: Option<PathBuf>,
    pub batch_size: usize,
}

/// `fovea predict --model M.json --weights W.safetensors --input X.npy --output Y.npy`.
pub fn predict(a: PredictArgs) -> anyhow::Result<()> {
    let (Some(weights), Some(input), Some(output)) = (&a.weights, &a.input, &a.output) else {
        bail!("predict --model needs --weights W.safetensors, --input X.npy and --output Y.npy");
    };
    ensure!(a.batch_size > 0, "--batch-size must be positive");
    let model = load_model(&a.model, Some(weights))?;
    let inputs = read_inputs(&model, input)?;
    let npz_out = is_npz(output);
    ensure!(
        npz_out || model.output_names().len() == 1,
        "--output {}: the model has {} outputs ({}); write them to an .npz file",
        output.display(),
        model.output_names().len(),
        model.output_names().join(", ")
    );
    check_output(output, "--output")?;
    let device = Arc::new(Device::new()?);
    eprintln!("device: {}", device.describe());
    let start = Instant::now();
    let n = inputs.samples()?;
    let ys = fovea_engine::predict_arrays(&device, &model, &inputs, a.batch_size)?;
    let secs = start.elapsed().as_secs_f64();
    write_outputs(output, &ys)?;
    let shapes: Vec<String> = ys.iter().map(|(k, t)| format!("{k} {}", fmt_shape(&t.shape))).collect();
    println!(
        "wrote {n} predictions ({}) to {} ({secs:.2} s, including compilation)",
        shapes.join(", "),
        output.display()
    );
    Ok(())
}

fn is_npz(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npz"))
}

/// The model's inputs from `--input`: an `.npy` array for a one-input model, or an `.npz`
/// archive keyed by input layer name.
pub fn read_inputs(model: &Model, input: &Path) -> anyhow::Result<fovea_engine::NamedArrays> {
    let names = model.input_names();
    let shapes = model.input_shapes();
    let mut data = fovea_engine::NamedArrays::new();
    if is_npz(input) {
        let arrays = npz::read_f32(input).with_context(|| format!("reading --input {}", input.display()))?;
        for (k, t) in arrays {
            let Some(i) = names.iter().position(|n| *n == k) else {
                bail!(
                    "--input {}: array '{k}' is not a model input; the inputs are {}",
                    input.display(),
                    names.join(", ")
                );
            };
            let mut want = vec![t.shape.first().copied().unwrap_or(0)];
            want.extend_from_slice(&shapes[i]);
            ensure!(
                t.shape == want && want[0] > 0,
                "--input {}: array '{k}' should be (samples, {}), it is {}",
                input.display(),
                shapes[i].iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
                fmt_shape(&t.shape)
            );
            data = data.with(&k, t);
        }
        for n in &names {
            ensure!(
                data.get(n).is_some(),
                "--input {}: no array named '{n}' (the model's inputs are {})",
                input.display(),
                names.join(", ")
            );
        }
        data.samples().with_context(|| format!("--input {}", input.display()))?;
    } else {
        ensure!(
            names.len() == 1,
            "--input {}: the model has {} inputs ({}); give an .npz file keyed by input name",
            input.display(),
            names.len(),
            names.join(", ")
        );
        data = data.with(&names[0], read_samples(input, &shapes[0], "--input")?);
    }
    Ok(data)
}

/// Writes predictions: one `.npy` array, or an `.npz` archive keyed by output name.
pub fn write_outputs(output: &Path, ys: &[(String, Tensor)]) -> anyhow::Result<()> {
    if is_npz(output) {
        let refs: Vec<(String, &Tensor)> = ys.iter().map(|(k, t)| (k.clone(), t)).collect();
        npz::write_f32(output, &refs).with_context(|| format!("writing --output {}", output.display()))
    } else {
        npy::write_f32(output, &ys[0].1).with_context(|| format!("writing --output {}", output.display()))
    }
}

/// Arguments of `fovea fit`.
#[derive(Debug, clap::Args)]
pub struct FitArgs {
    /// The Keras model config (JSON).
    #[arg(long)]
    pub model: PathBuf,
    /// Initial weights in safetensors, named <layer>/<variable> (default: Fovea's seeded init).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Training samples: a float32 .npy array shaped (samples, ...).
    #[arg(long)]
    pub x: PathBuf,
    /// Targets: integer class labels for sparse losses, shaped like the output without its class
    /// axis ((samples,) for classifiers, (samples, H, W) per pixel), else float32 like the output.
    #[arg(long)]
    pub y: PathBuf,
    /// The loss, by Keras name.
    #[arg(long, default_value = "sparse_categorical_crossentropy")]
    pub loss: String,
    /// The model outputs logits (for the cross-entropies).
    #[arg(long)]
    pub from_logits: bool,
    /// The optimizer: sgd, adam, adamw or rmsprop (Keras's defaults).
    #[arg(long, default_value = "adam")]
    pub optimizer: String,
    /// The learning rate (default: Keras's for the optimizer).
    #[arg(long)]
    pub learning_rate: Option<f32>,
    /// Metrics reported beside the loss (comma-separated Keras names, e.g. accuracy).
    #[arg(long, value_delimiter = ',')]
    pub metrics: Vec<String>,
    /// Passes over the data.
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    /// Samples per step.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Keep the samples' order (Keras's shuffle=False).
    #[arg(long)]
    pub no_shuffle: bool,
    /// Seed of the shuffling and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Crash-safe checkpoints and resuming.
    #[command(flatten)]
    pub checkpoints: super::checkpointing::CheckpointArgs,
    /// Where to save the trained weights (safetensors, Keras names).
    #[arg(long)]
    pub save_weights: Option<PathBuf>,
    /// Write the per-epoch loss and metrics as JSON.
    #[arg(long)]
    pub metrics_json: Option<PathBuf>,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

/// Reads the targets of `fit`: class indices for sparse losses, else float32 arrays shaped
/// like the model's output.
fn read_targets(path: &Path, loss: &Loss, out: &[usize], n: usize) -> anyhow::Result<Targets> {
    let ctx = || format!("reading --y {}", path.display());
    if loss.sparse_labels() {
        let (shape, labels) = npy::read_labels(path).with_context(ctx)?;
        let Some((&classes, per_sample)) = out.split_last() else {
            bail!("--y {}: the model's output has no class axis", path.display());
        };
        // Class indices shaped like the output without its class axis: (n,) or (n, 1) for
        // (classes,) outputs, (n, H, W) for per-pixel (H, W, classes) outputs.
        let mut want = vec![n];
        want.extend_from_slice(per_sample);
        ensure!(
            shape == want || (per_sample.is_empty() && shape == [n, 1]),
            "--y {}: expected class labels shaped {} for the {n} samples of --x and the model's output {}, got {}",
            path.display(),
            fmt_shape(&want),
            fmt_shape(out),
            fmt_shape(&shape)
        );
        if let Some((i, l)) = labels.iter().enumerate().find(|(_, l)| **l as usize >= classes) {
            bail!(
                "--y {}: label {l} (element {i}) is out of range for the model's {classes} classes",
                path.display(),
            );
        }
        if per_sample.is_empty() {
            return Ok(Targets::Classes(labels));
        }
        let data = labels.iter().map(|&l| l as f32).collect();
        Ok(Targets::ClassIndices(Tensor { shape: want, data }))
    } else {
        let t = read_samples(path, out, "--y")?;
        ensure!(
            t.shape[0] == n,
            "--y {}: {} targets for the {n} samples of --x",
            path.display(),
            t.shape[0]
        );
        Ok(Targets::Dense(t))
    }
}

/// `fovea fit --model M.json --weights W.safetensors --x X.npy --y Y.npy ...`.
pub fn fit(a: FitArgs) -> anyhow::Result<()> {
    ensure!(a.batch_size > 0, "--batch-size must be positive");
    ensure!(a.epochs > 0, "--epochs must be positive");
    let loss = Loss::parse(&a.loss, a.from_logits)?;
    let optimizer = Optimizer::parse(&a.optimizer, a.learning_rate)?;
    let metrics = a
        .metrics
        .iter()
        .map(|m| Metric::parse(m))
        .collect::<Result<Vec<_>, _>>()?;
    let model = load_model(&a.model, a.weights.as_deref())?;
    let (sample, out) = single_io(&model, &a.model)?;
    let x = read_samples(&a.x, &sample, "--x")?;
    let n = x.shape[0];
    let y = read_targets(&a.y, &loss, &out, n)?;
    if let Some(p) = &a.save_weights {
        check_output(p, "--save-weights")?;
    }
    if let Some(p) = &a.metrics_json {
        check_output(p, "--metrics-json")?;
    }
    if a.save_weights.is_none() {
        eprintln!("note: no --save-weights: the trained weights will not be kept");
    }
    let device = Arc::new(Device::new()?);
    let lr = optimizer.learning_rate.at(0);
    eprintln!(
        "training {} on {n} samples, {} epochs, batch {}, {} (learning rate {lr}), device {}",
        model.name(),
        a.epochs,
        a.batch_size,
        optimizer.name(),
        device.describe()
    );
    let cfg = CompileConfig::new(loss, optimizer, metrics);
    let mut cm = CompiledModel::new(&device, model, cfg)?;
    let opts = FitOptions {
        epochs: a.epochs,
        batch_size: a.batch_size,
        shuffle: !a.no_shuffle,
        seed: a.seed,
        validation: None,
        verbosity: if a.quiet { Verbosity::Silent } else { Verbosity::Auto },
        check_numerics: false,
        checkpoint: a.checkpoints.options()?,
        ..FitOptions::default()
    };
    let start = Instant::now();
    let history = cm.fit(&x, &y, &opts)?;
    let wall = start.elapsed().as_secs_f64();
    if let Some(last) = history.epochs.last() {
        let parts: Vec<String> = last.train.iter().map(|(k, v)| format!("{k} {v:.5}")).collect();
        println!("epoch {}: {} ({wall:.1} s in all)", last.epoch, parts.join(", "));
    }
    if let Some(p) = &a.save_weights {
        checkpoint::save_params(p, &cm.model()?.params).with_context(|| format!("--save-weights {}", p.display()))?;
        println!("weights saved to {}", p.display());
    }
    if let Some(p) = &a.metrics_json {
        let info = device.info();
        let json = serde_json::json!({
            "model": a.model.display().to_string(),
            "samples": n,
            "epochs": a.epochs,
            "batch_size": a.batch_size,
            "shuffle": !a.no_shuffle,
            "seed": a.seed,
            "loss": a.loss,
            "from_logits": a.from_logits,
            "optimizer": a.optimizer,
            "learning_rate": lr,
            "history": history.epochs,
            "wall_seconds": wall,
            "adapter": info.name,
            "backend": info.backend,
        });
        write_json(p, &json)?;
        println!("metrics written to {}", p.display());
    }
    Ok(())
}
