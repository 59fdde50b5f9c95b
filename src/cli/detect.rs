//! `fovea detect`: object detection (see fovea_models::tasks::detection). Thin: parse, call the
//! task, print.

use anyhow::Context;
use fovea_engine::{Device, Verbosity, checkpoint};
use fovea_models::data::detection_stream::DetectionStream;
use fovea_models::plot::{Series, training_curves};
use fovea_models::tasks::detection::data::{SampleSource, ssd_augmentation, voc_splits};
use fovea_models::tasks::detection::decode::DecodeRule;
use fovea_models::tasks::detection::evaluate::{EvalReport, mean_box_floor, predict_source, report};
use fovea_models::tasks::detection::shapes::ShapesSet;
use fovea_models::tasks::detection::targets::anchors;
use fovea_models::tasks::detection::train::{TrainSettings, train_with};
use fovea_models::tasks::output::write_json;
use fovea_models::zoo::detection::SsdLiteConfig;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Arguments of `fovea detect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: DetectCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DetectCommand {
    /// Train the SSD-lite detector on a VOC folder (images/ + annotations/, split by
    /// data/train_labels.csv and data/test_labels.csv when present) or on synthetic shapes.
    Train(TrainArgs),
}

/// Where the images come from.
#[derive(Debug, clap::Args)]
struct DataArgs {
    /// A VOC folder: images/, annotations/*.xml, optionally data/{train,test}_labels.csv.
    #[arg(long, required_unless_present = "synthetic")]
    data: Option<PathBuf>,
    /// Instead of --data: N synthetic shape images (squares, discs, triangles) for training
    /// and N / 4 others for testing.
    #[arg(long, conflicts_with = "data")]
    synthetic: Option<usize>,
}

#[derive(Debug, clap::Args)]
struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    checkpoint: super::checkpointing::CheckpointArgs,
    /// Passes over the training images.
    #[arg(long, default_value_t = 60)]
    epochs: usize,
    /// Seed of the weights, shuffling and augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Images per step.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Peak learning rate (AdamW, warm-up then cosine decay).
    #[arg(long, default_value_t = 2e-3)]
    learning_rate: f32,
    /// Input side in pixels (a multiple of 64: 256 or 320).
    #[arg(long, default_value_t = 256)]
    input: usize,
    /// Worker threads decoding and augmenting images.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Where to save the weights (safetensors); the model's settings go beside it as W.json.
    #[arg(long)]
    save: PathBuf,
    /// Write the history, settings, timing and adapter as JSON.
    #[arg(long)]
    metrics_json: PathBuf,
    /// Draw the loss curves to a PNG.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// No progress output.
    #[arg(long)]
    quiet: bool,
}

/// Runs `fovea detect`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        DetectCommand::Train(a) => run_train(a),
    }
}

/// The settings file written beside the weights.
fn settings_path(weights: &Path) -> PathBuf {
    weights.with_extension("json")
}

/// Training and test sources with their class names.
type Sources = (Arc<dyn SampleSource>, Arc<dyn SampleSource>, Vec<String>);

fn sources(d: &DataArgs, input: usize, seed: u64) -> anyhow::Result<Sources> {
    if let Some(n) = d.synthetic {
        anyhow::ensure!(n > 0, "--synthetic must be positive");
        let mut train = ShapesSet::new(n, input, seed);
        train.pipeline = fovea_models::vision::augment::Pipeline {
            steps: vec![fovea_models::vision::augment::Augmentation::HorizontalFlip(0.5)],
        };
        let test = ShapesSet::new(n.div_ceil(4), input, seed ^ 0x7e57);
        let classes = train.classes();
        return Ok((Arc::new(train), Arc::new(test), classes));
    }
    let dir = d.data.as_ref().context("--data DIR or --synthetic N is required")?;
    anyhow::ensure!(dir.is_dir(), "--data {}: not a directory", dir.display());
    let (train, test) = voc_splits(dir)?;
    for (what, set) in [("training", &train), ("test", &test)] {
        if !set.warnings.is_empty() {
            eprintln!("{what} split: {}", set.warnings);
        }
    }
    let classes = train.classes.clone();
    let mut tr = DetectionStream::new(train, (input, input));
    tr.pipeline = ssd_augmentation(2.0);
    let te = DetectionStream::new(test, (input, input));
    Ok((Arc::new(tr), Arc::new(te), classes))
}

fn run_train(a: TrainArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.epochs > 0, "--epochs must be positive");
    anyhow::ensure!(a.batch_size > 0, "--batch-size must be positive");
    anyhow::ensure!(a.workers > 0, "--workers must be positive");
    anyhow::ensure!(
        a.learning_rate.is_finite() && a.learning_rate > 0.0,
        "--learning-rate must be positive"
    );
    for p in [&a.save, &a.metrics_json].into_iter().chain(a.plot.as_ref()) {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    let (train_src, test_src, classes) = sources(&a.data, a.input, a.seed)?;
    let cfg = SsdLiteConfig::new(classes.len(), a.input);
    cfg.validate().context("--input")?;
    let settings = TrainSettings {
        epochs: a.epochs,
        batch_size: a.batch_size,
        learning_rate: a.learning_rate,
        seed: a.seed,
        workers: a.workers,
        verbosity: Verbosity::Silent,
        checkpoint: a.checkpoint.options()?,
        ..TrainSettings::default()
    };
    let device = Arc::new(Device::new()?);
    eprintln!(
        "training SSD-lite {0}x{0} ({1} anchors) on {2} training / {3} test images of {4:?}, {5} epochs, batch {6}, device {7}",
        a.input,
        cfg.anchor_count(),
        train_src.len(),
        test_src.len(),
        classes,
        a.epochs,
        a.batch_size,
        device.describe()
    );
    let start = Instant::now();
    let settings_json = serde_json::json!({"model": "ssd_lite", "input": a.input, "classes": classes});
    let mut hook =
        |cm: &mut fovea_engine::CompiledModel, log: &fovea_engine::EpochLog, done: usize| -> fovea_models::Result<()> {
            let parts: Vec<String> = log.train.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
            let elapsed = start.elapsed().as_secs_f64();
            let eta = elapsed / done as f64 * (a.epochs - done) as f64;
            if !a.quiet {
                eprintln!(
                    "epoch {done}/{}  {}  {:.1} img/s  data wait {:.1} s  elapsed {:.0} s  ETA {:.0} s",
                    a.epochs,
                    parts.join("  "),
                    log.images_per_second,
                    log.data_wait_seconds,
                    elapsed,
                    eta
                );
            }
            // A checkpoint after every epoch, so that a stopped run still leaves weights.
            checkpoint::save_params(&a.save, &cm.model()?.params)?;
            write_json(&settings_path(&a.save), &settings_json)?;
            Ok(())
        };
    let (mut cm, history) = train_with(&device, &cfg, train_src.clone(), &settings, &mut hook)
        .with_context(|| format!("training (checkpoints at --save {})", a.save.display()))?;
    let wall = start.elapsed().as_secs_f64();
    let train_secs: f64 = history.epochs.iter().map(|e| e.seconds).sum();
    let ips = (train_src.len() * a.epochs) as f64 / train_secs.max(1e-9);
    println!(
        "training: {train_secs:.1} s for {} epochs ({ips:.1} images/s); wall {wall:.1} s",
        a.epochs
    );
    println!("weights saved to {}", a.save.display());
    if let Some(path) = &a.plot {
        let keys = ["loss", "cls_loss", "box_loss"];
        let series: Vec<Vec<f64>> = keys.iter().map(|k| history.series(k)).collect();
        let panels: Vec<(Series<'_>, Option<Series<'_>>)> = keys
            .iter()
            .zip(&series)
            .map(|(k, v)| (Series { name: k, values: v }, None))
            .collect();
        training_curves(path, &panels)?;
        println!("curves written to {}", path.display());
    }
    let anchors = anchors(&cfg);
    let evaluated = predict_source(
        &mut cm,
        &cfg,
        &anchors,
        &settings.coder,
        &test_src,
        &DecodeRule::default(),
        a.batch_size,
    )?;
    let rep = report(&evaluated, cfg.classes, 100);
    print_report("test", &rep);
    let floor = mean_box_floor(&train_src, &test_src)?;
    if cfg.classes == 1 {
        print_report("mean-box floor", &floor);
    }
    let info = device.info();
    write_json(
        &a.metrics_json,
        &serde_json::json!({
            "model": "ssd_lite",
            "input": a.input,
            "classes": classes,
            "train_images": train_src.len(),
            "epochs": a.epochs,
            "batch_size": a.batch_size,
            "learning_rate": a.learning_rate,
            "seed": a.seed,
            "test": report_json(&rep),
            "mean_box_floor": report_json(&floor),
            "history": history.epochs,
            "train_seconds": train_secs,
            "wall_seconds": wall,
            "images_per_second": ips,
            "adapter": info.name,
            "backend": info.backend,
            "driver": info.driver_info,
        }),
    )?;
    println!("metrics written to {}", a.metrics_json.display());
    Ok(())
}

fn print_report(what: &str, r: &EvalReport) {
    println!(
        "{what}: AP {:.3}  AP50 {:.3}  AP75 {:.3}  recall {:.3}  VOC AP50 {:.3}  ({} images)",
        r.coco.ap, r.coco.ap50, r.coco.ap75, r.coco.recall, r.voc_ap50, r.images
    );
}

fn report_json(r: &EvalReport) -> serde_json::Value {
    serde_json::json!({
        "ap": r.coco.ap,
        "ap50": r.coco.ap50,
        "ap75": r.coco.ap75,
        "ap_small": r.coco.ap_small,
        "ap_medium": r.coco.ap_medium,
        "ap_large": r.coco.ap_large,
        "recall": r.coco.recall,
        "voc_ap50": r.voc_ap50,
        "images": r.images,
    })
}
