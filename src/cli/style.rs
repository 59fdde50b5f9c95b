//! `fovea style`: style transfer (see `fovea_models::tasks::style`). Thin: parse, check every
//! argument before any work, call the task, print, write results atomically.

use super::keras::check_output;
use super::schedule::LrSchedule;
use anyhow::{Context, bail, ensure};
use fovea::engine::Device;
use fovea::engine::Verbosity;
use fovea::models::tasks::output::{write_atomic, write_json};
use fovea::models::tasks::style::data::{fit, image_files, read_rgb, working_size};
use fovea::models::tasks::style::feature_training::{self, FeatureTrainOptions};
use fovea::models::tasks::style::features::LossNetwork;
use fovea::models::tasks::style::feed_forward::{self, Stylizer, TrainOptions};
use fovea::models::tasks::style::optimize::{Method, OptimizeOptions, Start, loss_parts, optimize};
use fovea::models::vision::image_io::encode_png;
use fovea::models::vision::{BitDepth, Image};
use fovea::models::zoo::style::FeatureLayers;
use fovea::models::zoo::style::TransformConfig;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Arguments of `fovea style`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: StyleCommand,
}

#[derive(Debug, clap::Subcommand)]
enum StyleCommand {
    /// Optimise one image (Gatys): content of --content, style of --style.
    Optimize(OptimizeArgs),
    /// Train a feed-forward transform network for one style on a folder of photos (Johnson).
    Train(TrainArgs),
    /// Stylise an image (any size) with a trained transform network: one forward pass.
    Apply(ApplyArgs),
    /// Train the loss network's filters as a CIFAR-10 classifier instead of drawing them, for
    /// `optimize --feature-weights`.
    Features(FeaturesArgs),
}

#[derive(Debug, clap::Args)]
struct FeaturesArgs {
    /// CIFAR-10 directory (the binary batches; default: the embedded subset).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Where to write the normalised loss-network weights (safetensors).
    #[arg(long)]
    save: PathBuf,
    /// Passes over the training images.
    #[arg(long, default_value_t = FeatureTrainOptions::default().epochs)]
    epochs: usize,
    /// Images per step.
    #[arg(long, default_value_t = FeatureTrainOptions::default().batch_size)]
    batch_size: usize,
    /// Adam's peak learning rate (warm-up over the first epoch, then cosine decay to 1%).
    #[arg(long, default_value_t = FeatureTrainOptions::default().learning_rate)]
    learning_rate: f32,
    /// Seed of the initial weights and the shuffling.
    #[arg(long, default_value_t = FeatureTrainOptions::default().seed)]
    seed: u64,
    /// Use only the first N training and test images.
    #[arg(long)]
    limit: Option<usize>,
    /// Write the test accuracy, per-epoch history, channel statistics and seconds as JSON here.
    #[arg(long)]
    metrics_json: Option<PathBuf>,
    /// No progress output.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, clap::Args)]
struct OptimizeArgs {
    /// The content photo.
    #[arg(long)]
    content: PathBuf,
    /// The style painting.
    #[arg(long)]
    style: PathBuf,
    /// Where to write the result (PNG).
    #[arg(long)]
    out: PathBuf,
    /// The result's longer side in pixels.
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Optimiser steps in all.
    #[arg(long, default_value_t = 120)]
    steps: usize,
    /// lbfgs or adam.
    #[arg(long, default_value = "lbfgs")]
    optimizer: String,
    /// Adam's learning rate (pixel units).
    #[arg(long, default_value_t = 0.02)]
    learning_rate: f32,
    /// Start from the content image (content) or from noise (noise).
    #[arg(long, default_value = "content")]
    init: String,
    /// Content, style and total-variation weights.
    #[arg(long, default_value_t = 0.05)]
    content_weight: f32,
    /// The style loss's weight.
    #[arg(long, default_value_t = 1.0)]
    style_weight: f32,
    /// The total-variation loss's weight.
    #[arg(long, default_value_t = 2.0)]
    tv_weight: f32,
    /// Optimise at the final size only (no half-size pass first).
    #[arg(long)]
    no_coarse_to_fine: bool,
    /// Print progress every N steps.
    #[arg(long, default_value_t = 20)]
    progress_every: usize,
    /// Write the intermediate image every --progress-every steps to this folder.
    #[arg(long)]
    frames: Option<PathBuf>,
    /// A Keras feature network (model.to_json() of a Functional model) instead of the random one.
    #[arg(long)]
    features: Option<PathBuf>,
    /// The feature network's weights (safetensors, Keras names). Without --features: the
    /// random network's layers with weights from `fovea style features`.
    #[arg(long)]
    feature_weights: Option<PathBuf>,
    /// The feature network's content layer.
    #[arg(long)]
    content_layer: Option<String>,
    /// The feature network's style layers, comma-separated.
    #[arg(long)]
    style_layers: Option<String>,
    /// The random loss network's seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write style_loss_start, style_loss_end, content_loss_end, seconds as JSON here.
    #[arg(long)]
    metrics_json: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct TrainArgs {
    #[command(flatten)]
    checkpoint: super::checkpointing::CheckpointArgs,
    /// The style painting.
    #[arg(long)]
    style: PathBuf,
    /// A folder of content photos.
    #[arg(long)]
    data: PathBuf,
    /// Where to write the transform network's weights (safetensors).
    #[arg(long)]
    save: PathBuf,
    /// Training crop side in pixels.
    #[arg(long, default_value_t = TrainOptions::default().size)]
    size: usize,
    /// The painting's longer side when its style is measured (default: `--size`). Strokes keep
    /// the scale the network learned, so give the size you will apply the network at.
    #[arg(long)]
    style_size: Option<usize>,
    /// Passes over the photos.
    #[arg(long, default_value_t = TrainOptions::default().epochs)]
    epochs: usize,
    /// Photos per step.
    #[arg(long, default_value_t = TrainOptions::default().batch_size)]
    batch_size: usize,
    /// Adam's learning rate (the peak, with `--lr-schedule cosine`).
    #[arg(long, default_value_t = TrainOptions::default().learning_rate)]
    learning_rate: f32,
    /// The learning rate over the run: `cosine` warms up over the first epoch (at most a quarter
    /// of the run), then decays to 1% at the end of `--epochs` (with `--max-minutes`, choose the
    /// epochs that fit).
    #[arg(long, value_enum, default_value_t = LrSchedule::Constant)]
    lr_schedule: LrSchedule,
    /// The content loss's weight.
    #[arg(long, default_value_t = TrainOptions::default().content_weight)]
    content_weight: f32,
    /// The style loss's weight.
    #[arg(long, default_value_t = TrainOptions::default().style_weight)]
    style_weight: f32,
    /// The total-variation loss's weight.
    #[arg(long, default_value_t = TrainOptions::default().tv_weight)]
    tv_weight: f32,
    /// The transform network's channels at full, 1/2 and 1/4 resolution (default 16,32,64;
    /// Johnson et al.'s is 32,64,128).
    #[arg(long, value_delimiter = ',')]
    widths: Option<Vec<usize>>,
    /// Residual blocks at 1/4 resolution (default 3; Johnson et al.'s 5).
    #[arg(long)]
    residual_blocks: Option<usize>,
    /// Stop after the epoch that passes this many minutes.
    #[arg(long)]
    max_minutes: Option<f64>,
    /// Seed of the initial weights and the shuffling.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the per-epoch losses and seconds as JSON here.
    #[arg(long)]
    metrics_json: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct ApplyArgs {
    /// The transform network's weights (from `fovea style train`).
    #[arg(long)]
    weights: PathBuf,
    /// Where to write the result (PNG).
    #[arg(long)]
    out: PathBuf,
    /// The image to stylise.
    image: PathBuf,
    /// Resize the image to this longer side first (a multiple of 8); default: its own size.
    #[arg(long)]
    size: Option<usize>,
    /// Score the result as `fovea style optimize` scores its own (content = the input image,
    /// style = this painting, the random loss network of seed 1, optimize's default weights),
    /// to compare the two methods on the same photo.
    #[arg(long)]
    score_style: Option<PathBuf>,
    /// Write the size, milliseconds and (with --score-style) the loss parts as JSON here.
    #[arg(long)]
    metrics_json: Option<PathBuf>,
}

/// Runs `fovea style`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        StyleCommand::Optimize(a) => run_optimize(a),
        StyleCommand::Train(a) => run_train(a),
        StyleCommand::Apply(a) => run_apply(a),
        StyleCommand::Features(a) => run_features(a),
    }
}

fn read(path: &Path, flag: &str) -> anyhow::Result<Image> {
    read_rgb(path).with_context(|| format!("{flag} {}", path.display()))
}

fn write_png(path: &Path, image: &Image) -> anyhow::Result<()> {
    write_atomic(path, &encode_png(image, BitDepth::Eight)?).with_context(|| format!("writing {}", path.display()))
}

fn loss_network(a: &OptimizeArgs) -> anyhow::Result<LossNetwork> {
    let Some(model) = &a.features else {
        ensure!(
            a.content_layer.is_none() && a.style_layers.is_none(),
            "--content-layer and --style-layers go with --features"
        );
        if let Some(w) = &a.feature_weights {
            return LossNetwork::trained(w).with_context(|| format!("--feature-weights {}", w.display()));
        }
        return Ok(LossNetwork::Random {
            seed: a.seed,
            layers: fovea::models::zoo::style::random_feature_layers(),
        });
    };
    let (Some(weights), Some(content), Some(style)) = (&a.feature_weights, &a.content_layer, &a.style_layers) else {
        bail!(
            "--features {} needs --feature-weights, --content-layer and --style-layers",
            model.display()
        );
    };
    let style: Vec<String> = style
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    ensure!(!style.is_empty(), "--style-layers: no layer names");
    let layers = FeatureLayers {
        content: content.clone(),
        style,
    };
    LossNetwork::keras(model, weights, layers).with_context(|| format!("--features {}", model.display()))
}

fn run_features(a: FeaturesArgs) -> anyhow::Result<()> {
    let opts = FeatureTrainOptions {
        epochs: a.epochs,
        batch_size: a.batch_size,
        learning_rate: a.learning_rate,
        seed: a.seed,
        verbosity: if a.quiet { Verbosity::Silent } else { Verbosity::Auto },
        ..FeatureTrainOptions::default()
    };
    opts.validate()?;
    check_output(&a.save, "--save")?;
    if let Some(m) = &a.metrics_json {
        check_output(m, "--metrics-json")?;
    }
    let (mut train, mut test) = super::train::load("cifar10", &a.data)?;
    if let Some(n) = a.limit {
        ensure!(n > 0, "--limit must be positive");
        train = train.take(n);
        test = test.take(n);
    }
    let device = Arc::new(Device::new()?);
    eprintln!(
        "training the loss network's filters on CIFAR-10 ({} train / {} test images), {} epochs, batch {}, device {}",
        train.len(),
        test.len(),
        opts.epochs,
        opts.batch_size,
        device.describe()
    );
    let t = feature_training::train(&device, &train, &test, &opts)?;
    println!(
        "classifier test accuracy {:.2}% (loss {:.4}); {} dead channels; {:.1} s",
        100.0 * t.test_accuracy,
        t.test_loss,
        t.dead_channels(),
        t.seconds
    );
    feature_training::save(&a.save, &t.weights).with_context(|| format!("--save {}", a.save.display()))?;
    println!(
        "loss network saved to {}; use it with: fovea style optimize --feature-weights {} ...",
        a.save.display(),
        a.save.display()
    );
    if let Some(path) = &a.metrics_json {
        let means: Vec<_> = t
            .channel_means
            .iter()
            .map(|(l, m)| json!({"layer": l, "mean_activation": m}))
            .collect();
        let info = device.info();
        write_json(
            path,
            &json!({
                "train_samples": train.len(),
                "test_samples": test.len(),
                "epochs": opts.epochs,
                "batch_size": opts.batch_size,
                "learning_rate": opts.learning_rate,
                "seed": opts.seed,
                "test_accuracy": t.test_accuracy,
                "test_loss": t.test_loss,
                "dead_channels": t.dead_channels(),
                "channel_means": means,
                "history": t.history.epochs,
                "seconds": t.seconds,
                "adapter": info.name,
            }),
        )?;
        println!("metrics written to {}", path.display());
    }
    Ok(())
}

fn run_optimize(a: OptimizeArgs) -> anyhow::Result<()> {
    let method = match a.optimizer.as_str() {
        "lbfgs" => Method::Lbfgs,
        "adam" => Method::Adam {
            learning_rate: a.learning_rate,
        },
        o => bail!("--optimizer {o}: expected lbfgs or adam"),
    };
    let start = match a.init.as_str() {
        "content" => Start::Content,
        "noise" => Start::Noise { seed: a.seed },
        o => bail!("--init {o}: expected content or noise"),
    };
    let opts = OptimizeOptions {
        size: a.size,
        steps: a.steps,
        method,
        start,
        content_weight: a.content_weight,
        style_weight: a.style_weight,
        tv_weight: a.tv_weight,
        coarse_to_fine: !a.no_coarse_to_fine,
        progress_every: a.progress_every,
    };
    opts.validate()?;
    check_output(&a.out, "--out")?;
    if let Some(m) = &a.metrics_json {
        check_output(m, "--metrics-json")?;
    }
    if let Some(f) = &a.frames {
        ensure!(f.is_dir(), "--frames {}: not a folder", f.display());
    }
    let net = loss_network(&a)?;
    let content = read(&a.content, "--content")?;
    let style = read(&a.style, "--style")?;
    let device = Arc::new(Device::new()?);
    let mut frame_error = None;
    let result = optimize(&device, &net, &content, &style, &opts, |p| {
        let every = a.progress_every.max(1);
        if p.step % every == 0 || p.step == p.steps {
            eprintln!(
                "step {:>4}/{} at {}x{}: loss {:.4}  content {:.4}  style {:.5}  tv {:.5}",
                p.step, p.steps, p.size.0, p.size.1, p.loss.total, p.loss.content, p.loss.style, p.loss.tv
            );
        }
        if let (Some(dir), Some(img)) = (&a.frames, &p.image)
            && let Err(e) = write_png(&dir.join(format!("step-{:04}.png", p.step)), img)
        {
            frame_error.get_or_insert(e);
        }
    })?;
    if let Some(e) = frame_error {
        return Err(e);
    }
    write_png(&a.out, &result.image)?;
    println!(
        "style loss {:.5} -> {:.5} ({:.1}x lower), content loss {:.4}, {} steps in {:.1} s; wrote {}",
        result.start.style,
        result.end.style,
        result.start.style / result.end.style.max(1e-30),
        result.end.content,
        result.steps,
        result.seconds,
        a.out.display()
    );
    if let Some(m) = &a.metrics_json {
        let v = json!({
            "style_loss_start": result.start.style,
            "style_loss_end": result.end.style,
            "content_loss_start": result.start.content,
            "content_loss_end": result.end.content,
            "tv_loss_end": result.end.tv,
            "seconds": result.seconds,
            "steps": result.steps,
            "size": [result.image.width, result.image.height],
            "optimizer": a.optimizer,
            "adapter": device.info().name,
        });
        write_json(m, &v)?;
    }
    Ok(())
}

/// `--widths` and `--residual-blocks` over the default transform network.
fn transform_config(widths: Option<&[usize]>, blocks: Option<usize>) -> anyhow::Result<TransformConfig> {
    let mut t = TransformConfig::default();
    if let Some(w) = widths {
        ensure!(
            w.len() == 3 && w.iter().all(|&c| (1..=512).contains(&c)),
            "--widths {w:?}: expected three channel counts of 1 to 512 (full, 1/2, 1/4 resolution), e.g. 32,64,128"
        );
        t.widths = [w[0], w[1], w[2]];
    }
    if let Some(b) = blocks {
        ensure!(b <= 32, "--residual-blocks {b}: expected 0 to 32");
        t.residual_blocks = b;
    }
    Ok(t)
}

fn run_train(a: TrainArgs) -> anyhow::Result<()> {
    let opts = TrainOptions {
        size: a.size,
        style_size: a.style_size,
        epochs: a.epochs,
        batch_size: a.batch_size,
        learning_rate: a.learning_rate,
        cosine: a.lr_schedule == LrSchedule::Cosine,
        content_weight: a.content_weight,
        style_weight: a.style_weight,
        tv_weight: a.tv_weight,
        seed: a.seed,
        max_seconds: a.max_minutes.map(|m| m * 60.0),
        checkpoint: a.checkpoint.options()?,
        transform: transform_config(a.widths.as_deref(), a.residual_blocks)?,
        ..TrainOptions::default()
    };
    opts.validate()?;
    check_output(&a.save, "--save")?;
    if let Some(m) = &a.metrics_json {
        check_output(m, "--metrics-json")?;
    }
    let style = read(&a.style, "--style")?;
    let photos = image_files(&a.data).with_context(|| format!("--data {}", a.data.display()))?;
    let device = Arc::new(Device::new()?);
    eprintln!(
        "training on {} photos at {}x{}, {} epochs of {} steps{}",
        photos.len(),
        a.size,
        a.size,
        a.epochs,
        photos.len().div_ceil(a.batch_size.max(1)),
        a.max_minutes
            .map(|m| format!(", at most about {m} minutes"))
            .unwrap_or_default()
    );
    let mut elapsed = 0.0;
    let trained = feed_forward::train(&device, &style, &photos, &opts, |e| {
        elapsed += e.seconds;
        let eta = elapsed / e.epoch as f64 * a.epochs.saturating_sub(e.epoch) as f64;
        eprintln!(
            "epoch {}/{}: loss {:.4}  content {:.4}  style {:.5}  ({:.0} s, ETA {:.0} min)",
            e.epoch,
            a.epochs,
            e.loss,
            e.content,
            e.style,
            e.seconds,
            eta / 60.0
        );
    })?;
    feed_forward::save(&a.save, &trained.weights)?;
    println!(
        "trained {} epochs on {} photos in {:.0} s; wrote {}",
        trained.epochs.len(),
        trained.photos,
        trained.seconds,
        a.save.display()
    );
    if let Some(m) = &a.metrics_json {
        let epochs: Vec<_> = trained
            .epochs
            .iter()
            .map(|e| json!({"epoch": e.epoch, "loss": e.loss, "content_loss": e.content, "style_loss": e.style, "seconds": e.seconds}))
            .collect();
        let v = json!({
            "epochs": epochs,
            "seconds": trained.seconds,
            "photos": trained.photos,
            "size": a.size,
            "style_size": a.style_size.unwrap_or(a.size),
            "learning_rate": a.learning_rate,
            "lr_schedule": a.lr_schedule.name(),
            "widths": opts.transform.widths,
            "residual_blocks": opts.transform.residual_blocks,
            "adapter": device.info().name,
        });
        write_json(m, &v)?;
    }
    Ok(())
}

fn run_apply(a: ApplyArgs) -> anyhow::Result<()> {
    check_output(&a.out, "--out")?;
    let net = Stylizer::load(&a.weights).with_context(|| format!("--weights {}", a.weights.display()))?;
    if let Some(m) = &a.metrics_json {
        check_output(m, "--metrics-json")?;
    }
    let mut image = read(&a.image, "IMAGE")?;
    if let Some(size) = a.size {
        ensure!((16..=8192).contains(&size), "--size {size}: expected 16 to 8192 pixels");
        let (w, h) = working_size(image.width, image.height, size, 16);
        image = fit(&image, w, h).context("--size")?;
    }
    let style = match &a.score_style {
        Some(p) => Some(read(p, "--score-style")?),
        None => None,
    };
    let device = Arc::new(Device::new()?);
    let t0 = std::time::Instant::now();
    let out = net
        .apply(&device, &image)
        .with_context(|| format!("IMAGE {}", a.image.display()))?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    // With --metrics-json, once more with the program compiled: the time a warm process sees.
    let warm_ms = match &a.metrics_json {
        Some(_) => {
            let t1 = std::time::Instant::now();
            net.apply(&device, &image)?;
            Some(t1.elapsed().as_secs_f64() * 1e3)
        }
        None => None,
    };
    write_png(&a.out, &out)?;
    let warm = warm_ms.map_or(String::new(), |w| format!(", {w:.0} ms warm"));
    println!(
        "stylised {}x{} in {ms:.0} ms with compilation{warm}; wrote {}",
        image.width,
        image.height,
        a.out.display()
    );
    let mut metrics = json!({"width": image.width, "height": image.height, "ms_first": ms, "ms_warm": warm_ms,
        "adapter": device.info().name});
    if let Some(style) = style {
        let loss_net = LossNetwork::Random {
            seed: 1,
            layers: fovea::models::zoo::style::random_feature_layers(),
        };
        let parts = loss_parts(&device, &loss_net, &image, &style, &out, &OptimizeOptions::default())?;
        println!(
            "scored as optimize scores: style loss {:.5}, content loss {:.4}, tv {:.5}",
            parts.style, parts.content, parts.tv
        );
        metrics["style_loss"] = json!(parts.style);
        metrics["content_loss"] = json!(parts.content);
        metrics["tv_loss"] = json!(parts.tv);
    }
    if let Some(m) = &a.metrics_json {
        write_json(m, &metrics)?;
    }
    Ok(())
}
