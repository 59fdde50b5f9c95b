//! `fovea train mnist|cifar10`: the seed's Keras programs (Adam, from-logits sparse
//! cross-entropy, accuracy, batch 32), on the embedded subset or a data directory.

use anyhow::Context;
use fovea_engine::{CompiledModel, Device, FitOptions, Targets, Verbosity, checkpoint};
use fovea_graph::train::{CompileConfig, Loss, Metric, Optimizer};

use super::schedule::LrSchedule;
use fovea_models::data::{Dataset, cifar, mnist};
use fovea_models::plot::{Series, training_curves};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Arguments of `fovea train`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The zoo model: mnist or cifar10.
    pub model: String,
    /// Directory with the data set's files (default: the embedded subset).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Epochs (default: 5 for mnist, 10 for cifar10, as the seed programs).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Samples per step.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Seed of the initial weights, shuffling and dropout.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Adam's learning rate (the peak, with `--lr-schedule cosine`).
    #[arg(long, default_value_t = 0.001)]
    pub learning_rate: f32,
    /// The learning rate over the run: `constant` (the seed programs) or `cosine` (a linear
    /// warm-up over the first epoch, then a cosine decay to 1% at the last step).
    #[arg(long, value_enum, default_value_t = LrSchedule::Constant)]
    pub lr_schedule: LrSchedule,
    /// Write final test loss/accuracy, per-epoch history, wall time, images/s and adapter as JSON.
    #[arg(long)]
    pub metrics_json: Option<PathBuf>,
    /// Save the trained weights (safetensors, Keras names).
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Draw loss and accuracy curves to a PNG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Use only the first N training and test images.
    #[arg(long)]
    pub limit: Option<usize>,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
    /// Stop at the first kernel that writes a NaN or an infinity, naming its node and layer (slow).
    #[arg(long)]
    pub check_numerics: bool,
    /// Augment the training images as they stream: comma-separated `flip` (horizontal, p 0.5),
    /// `crop` (pad 4 with zeros, random crop back) and `reflect-crop` (the same shifts, the
    /// border filled by reflection); `flip,crop` is the standard CIFAR recipe.
    #[arg(long)]
    pub augment: Option<String>,
    /// Worker threads decoding and augmenting batches with --augment.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Crash-safe checkpoints and resuming.
    #[command(flatten)]
    pub checkpoints: super::checkpointing::CheckpointArgs,
}

/// The training and test sets of a seed model's data (`--data DIR`, or the embedded subset).
pub(crate) fn load(model: &str, dir: &Option<PathBuf>) -> anyhow::Result<(Dataset, Dataset)> {
    Ok(match (model, dir) {
        ("mnist", None) => (
            mnist::embedded(mnist::Split::Train)?,
            mnist::embedded(mnist::Split::Test)?,
        ),
        ("mnist", Some(d)) => (
            mnist::load(d, mnist::Split::Train)?,
            mnist::load(d, mnist::Split::Test)?,
        ),
        ("cifar10", None) => (
            cifar::embedded(cifar::Split::Train)?,
            cifar::embedded(cifar::Split::Test)?,
        ),
        ("cifar10", Some(d)) => (
            cifar::load(d, cifar::Split::Train)?,
            cifar::load(d, cifar::Split::Test)?,
        ),
        _ => anyhow::bail!("unknown model \"{model}\" for train; expected mnist or cifar10"),
    })
}

/// Trains a seed model and reports test loss and accuracy.
pub fn run(a: Args) -> anyhow::Result<()> {
    anyhow::ensure!(a.batch_size > 0, "--batch-size must be positive");
    let (mut train, mut test) = load(&a.model, &a.data)?;
    if let Some(n) = a.limit {
        anyhow::ensure!(n > 0, "--limit must be positive");
        train = train.take(n);
        test = test.take(n);
    }
    let epochs = a.epochs.unwrap_or(if a.model == "mnist" { 5 } else { 10 });
    anyhow::ensure!(epochs > 0, "--epochs must be positive");
    let checkpoint = a.checkpoints.options()?;
    let model = fovea_models::zoo::by_name(&a.model, a.seed)?;
    let stream = match &a.augment {
        Some(spec) => {
            anyhow::ensure!(a.workers > 0, "--workers must be positive");
            let pipeline = fovea_models::data::arrays::parse_array_augment(spec)?;
            let (input, output) = (model.input_names()[0].clone(), model.output_names()[0].clone());
            Some(fovea_models::data::arrays::ArrayStream::new(
                train.clone(),
                pipeline,
                &input,
                &output,
            )?)
        }
        None => None,
    };
    let device = Arc::new(Device::new()?);
    let source = a
        .data
        .as_ref()
        .map_or("embedded subset".to_string(), |d| d.display().to_string());
    eprintln!(
        "training {} on {} ({} train / {} test images), {} epochs, batch {}, device {}",
        a.model,
        source,
        train.len(),
        test.len(),
        epochs,
        a.batch_size,
        device.describe()
    );
    let mut optimizer = Optimizer::adam(a.learning_rate);
    let per_epoch = train.len().div_ceil(a.batch_size) as u64;
    optimizer.learning_rate = a.lr_schedule.schedule(a.learning_rate, per_epoch, epochs as u64);
    let cfg = CompileConfig::new(
        Loss::SparseCategoricalCrossentropy { from_logits: true },
        optimizer,
        vec![Metric::Accuracy],
    );
    let mut cm = CompiledModel::new(&device, model, cfg)?;
    let opts = FitOptions {
        epochs,
        batch_size: a.batch_size,
        shuffle: true,
        seed: a.seed,
        validation: Some((test.images.clone(), Targets::Classes(test.labels.clone()))),
        verbosity: if a.quiet { Verbosity::Silent } else { Verbosity::Auto },
        check_numerics: a.check_numerics,
        workers: a.workers,
        checkpoint,
        ..FitOptions::default()
    };
    let start = Instant::now();
    let history = match stream {
        Some(s) => {
            eprintln!(
                "augmenting with {} on {} worker threads",
                a.augment.as_deref().unwrap_or(""),
                a.workers
            );
            cm.fit_dataset(Arc::new(s), &opts)?
        }
        None => cm.fit(&train.images, &Targets::Classes(train.labels.clone()), &opts)?,
    };
    let wall = start.elapsed().as_secs_f64();
    let result = cm.evaluate(&test.images, &Targets::Classes(test.labels.clone()), a.batch_size)?;
    let get = |k: &str| result.iter().find(|(n, _)| n == k).map_or(f64::NAN, |(_, v)| *v);
    let train_secs: f64 = history.epochs.iter().map(|e| e.seconds).sum();
    let ips = (train.len() * epochs) as f64 / train_secs.max(1e-9);
    println!(
        "test loss {:.4}, test accuracy {:.2}%",
        get("loss"),
        100.0 * get("accuracy")
    );
    println!(
        "training: {:.1} s for {epochs} epochs ({ips:.0} images/s); total wall time {wall:.1} s",
        train_secs
    );
    if let Some(path) = &a.save {
        checkpoint::save_params(path, &cm.model()?.params).with_context(|| format!("--save {}", path.display()))?;
        println!("weights saved to {}", path.display());
    }
    if let Some(path) = &a.plot {
        let (loss, val_loss) = (history.series("loss"), history.series("val_loss"));
        let (acc, val_acc) = (history.series("accuracy"), history.series("val_accuracy"));
        training_curves(
            path,
            &[
                (
                    Series {
                        name: "loss",
                        values: &loss,
                    },
                    Some(Series {
                        name: "val_loss",
                        values: &val_loss,
                    }),
                ),
                (
                    Series {
                        name: "accuracy",
                        values: &acc,
                    },
                    Some(Series {
                        name: "val_accuracy",
                        values: &val_acc,
                    }),
                ),
            ],
        )?;
        println!("curves written to {}", path.display());
    }
    if let Some(path) = &a.metrics_json {
        let info = device.info();
        let json = serde_json::json!({
            "model": a.model,
            "data": source,
            "train_samples": train.len(),
            "test_samples": test.len(),
            "epochs": epochs,
            "batch_size": a.batch_size,
            "seed": a.seed,
            "learning_rate": a.learning_rate,
            "lr_schedule": a.lr_schedule.name(),
            "augment": a.augment,
            "workers": a.workers,
            "test_loss": get("loss"),
            "test_accuracy": get("accuracy"),
            "history": history.epochs,
            "train_seconds": train_secs,
            "wall_seconds": wall,
            "images_per_second": ips,
            "adapter": info.name,
            "backend": info.backend,
            "driver": info.driver_info,
        });
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
        println!("metrics written to {}", path.display());
    }
    Ok(())
}
