//! `fovea detect`: object detection (see fovea_models::tasks::detection). Thin: parse, call the
//! task, print.

use anyhow::Context;
use fovea_engine::{Device, Verbosity, checkpoint};
use fovea_models::data::detection_stream::DetectionStream;
use fovea_models::plot::{Series, training_curves};
use fovea_models::tasks::detection::data::INPUT_NORMALIZATION;
use fovea_models::tasks::detection::data::{SampleSource, ssd_augmentation, voc_splits};
use fovea_models::tasks::detection::decode::DecodeRule;
use fovea_models::tasks::detection::evaluate::to_pixels;
use fovea_models::tasks::detection::evaluate::{
    EvalReport, coco_ground_truth, coco_results, device_detector, host_detector, mean_box_floor, predict_source, report,
};
use fovea_models::tasks::detection::inference::InferenceProgram;
use fovea_models::tasks::detection::shapes::ShapesSet;
use fovea_models::tasks::detection::targets::BoxCoder;
use fovea_models::tasks::detection::targets::anchors;
use fovea_models::tasks::detection::train::{TrainSettings, train_with};
use fovea_models::tasks::output::write_json;
use fovea_models::vision::draw::{Detection, draw_detections};
use fovea_models::vision::{Filter, image_to_tensor, read_image, resize};
use fovea_models::zoo::detection::{SsdLiteConfig, ssd_lite};
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
    /// Evaluate trained weights on the test split: COCO AP@[.5:.95], AP50, AP75, recall and
    /// VOC AP50; optionally the COCO ground truth and results as JSON.
    Eval(EvalArgs),
    /// Detect objects in images with trained weights: PNGs with boxes, labels and scores drawn,
    /// and the boxes as JSON.
    Predict(PredictArgs),
}

#[derive(Debug, clap::Args)]
struct EvalArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Weights from `fovea detect train --save` (its W.json beside it gives input and classes).
    #[arg(long)]
    weights: PathBuf,
    /// Write the figures as JSON (keys ap, ap50, ap75, recall, voc_ap50, images).
    #[arg(long)]
    metrics_json: PathBuf,
    /// Write the test split's ground truth as COCO JSON.
    #[arg(long)]
    coco_gt: Option<PathBuf>,
    /// Write the detections as COCO results JSON (original-image pixels).
    #[arg(long)]
    coco_results: Option<PathBuf>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Seed of the synthetic test images (with --synthetic).
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Debug, clap::Args)]
struct PredictArgs {
    /// Images to detect objects in (JPEG, PNG, ...).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Weights from `fovea detect train --save`.
    #[arg(long, required_unless_present = "pretrained", conflicts_with = "pretrained")]
    weights: Option<PathBuf>,
    /// A pretrained detector instead: `blazeface` (MediaPipe's short-range face detector, in
    /// data/pretrained/) or `blazeface-full` (full range, from $FOVEA_PRETRAINED_DIR or
    /// ~/.cache/fovea/pretrained, see tools/pretrained/fetch.sh).
    #[arg(long)]
    pretrained: Option<String>,
    /// Folder for the drawn PNGs and detections.json.
    #[arg(long)]
    out: PathBuf,
    /// Keep detections scoring above this (BlazeFace: MediaPipe's 0.5 short range, 0.6 full
    /// range, unless given).
    #[arg(long)]
    score: Option<f32>,
    /// Also print the detections as JSON on stdout.
    #[arg(long)]
    json: bool,
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
    /// Passes over the training images (200: about 25-45 minutes for the raccoon set on 2 cores).
    #[arg(long, default_value_t = fovea_models::tasks::detection::train::TrainSettings::default().epochs)]
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
        DetectCommand::Eval(a) => run_eval(a),
        DetectCommand::Predict(a) => run_predict(a),
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
        let test = ShapesSet::test_set(n, input, seed);
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
        &mut host_detector(&mut cm, &cfg, &anchors, &settings.coder, DecodeRule::default()),
        cfg.input,
        &test_src,
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

/// Input side and class names of saved weights, from the W.json beside them.
fn read_settings(weights: &Path) -> anyhow::Result<(usize, Vec<String>)> {
    let path = settings_path(weights);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "--weights {}: cannot read {} (written by fovea detect train beside the weights)",
            weights.display(),
            path.display()
        )
    })?;
    let v: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    let input = v["input"]
        .as_u64()
        .context(format!("{}: no \"input\" number", path.display()))? as usize;
    let classes: Vec<String> = v["classes"]
        .as_array()
        .context(format!("{}: no \"classes\" list", path.display()))?
        .iter()
        .map(|c| c.as_str().map(String::from))
        .collect::<Option<_>>()
        .context(format!("{}: \"classes\" must be strings", path.display()))?;
    anyhow::ensure!(
        v["model"] == "ssd_lite" && !classes.is_empty(),
        "{}: not an ssd_lite detector's settings",
        path.display()
    );
    Ok((input, classes))
}

/// The detector of saved weights, loaded (every name and shape checked).
fn load_detector(weights: &Path) -> anyhow::Result<(SsdLiteConfig, fovea_graph::Model, Vec<String>)> {
    let (input, classes) = read_settings(weights)?;
    let cfg = SsdLiteConfig::new(classes.len(), input);
    cfg.validate()
        .with_context(|| format!("{}", settings_path(weights).display()))?;
    let mut model = ssd_lite(&cfg, 0)?;
    checkpoint::load_params(weights, &mut model.params)
        .with_context(|| format!("--weights {}: not this detector's weights", weights.display()))?;
    Ok((cfg, model, classes))
}

fn run_eval(a: EvalArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.batch_size > 0, "--batch-size must be positive");
    let (cfg, model, classes) = load_detector(&a.weights)?;
    let (_, test_src, data_classes) = sources(&a.data, cfg.input, a.seed)?;
    anyhow::ensure!(
        data_classes == classes,
        "--weights {} detects {classes:?}, the data's classes are {data_classes:?}",
        a.weights.display()
    );
    let device = Arc::new(Device::new()?);
    let anchors = anchors(&cfg);
    let batch = a.batch_size.min(test_src.len()).max(1);
    let start = Instant::now();
    let program = InferenceProgram::new(
        &device,
        &model,
        &anchors,
        &BoxCoder::default(),
        DecodeRule::default(),
        batch,
    )?;
    let evaluated = predict_source(&mut device_detector(&program), cfg.input, &test_src, batch)?;
    let rep = report(&evaluated, cfg.classes, 100);
    print_report("test", &rep);
    let mut json = report_json(&rep);
    json["seconds"] = serde_json::json!(start.elapsed().as_secs_f64());
    json["adapter"] = serde_json::json!(device.info().name);
    if let Some(p) = &a.coco_gt {
        write_json(p, &coco_ground_truth(&evaluated, &classes))?;
    }
    if let Some(p) = &a.coco_results {
        write_json(p, &coco_results(&evaluated))?;
    }
    write_json(&a.metrics_json, &json)?;
    println!("metrics written to {}", a.metrics_json.display());
    Ok(())
}

fn run_predict(a: PredictArgs) -> anyhow::Result<()> {
    if let Some(s) = a.score {
        anyhow::ensure!(
            s.is_finite() && (0.0..1.0).contains(&s),
            "--score must be in [0, 1), got {s}"
        );
    }
    let mut stems: Vec<(String, &Path)> = Vec::new();
    for p in &a.images {
        anyhow::ensure!(p.is_file(), "{}: no such image file", p.display());
        let stem = picture_stem(p);
        if let Some((_, first)) = stems.iter().find(|(s, _)| *s == stem) {
            anyhow::bail!(
                "{} and {} would both be drawn to {}: give images with different names",
                first.display(),
                p.display(),
                a.out.join(format!("{stem}.png")).display()
            );
        }
        stems.push((stem, p));
    }
    if let Some(name) = &a.pretrained {
        return run_blazeface(&a, name);
    }
    let weights = a.weights.clone().context("--weights or --pretrained is required")?;
    let (cfg, model, classes) = load_detector(&weights)?;
    let device = Arc::new(Device::new()?);
    let anchors = anchors(&cfg);
    let rule = DecodeRule {
        score_threshold: a.score.unwrap_or(0.5),
        ..DecodeRule::default()
    };
    let program = InferenceProgram::new(&device, &model, &anchors, &BoxCoder::default(), rule, 1)?;
    // Decode every image before writing anything, so a bad file leaves no output.
    let mut pictures = Vec::new();
    let mut all = Vec::new();
    for path in &a.images {
        let image = read_image(path)?.to_rgb();
        let small = resize(&image, cfg.input, cfg.input, Filter::Bilinear)?;
        let x = image_to_tensor(&small, &INPUT_NORMALIZATION)?;
        let x = fovea_graph::Tensor {
            shape: vec![1, cfg.input, cfg.input, 3],
            data: x.data,
        };
        let start = Instant::now();
        let dets = program.run(&x.data)?.remove(0);
        let ms = start.elapsed().as_secs_f64() * 1e3;
        let dets: Vec<(fovea_models::vision::BBox, f32)> = dets
            .iter()
            .map(|(b, s)| (to_pixels(b, image.width, image.height), *s))
            .collect();
        let drawn = draw_detections(
            &image,
            &dets
                .iter()
                .map(|(b, s)| Detection {
                    bbox: *b,
                    score: Some(*s),
                })
                .collect::<Vec<_>>(),
            &classes,
        )?;
        let stem = picture_stem(path);
        println!("{}: {} detections ({ms:.0} ms)", path.display(), dets.len());
        all.push(serde_json::json!({
            "image": path.display().to_string(),
            "width": image.width,
            "height": image.height,
            "detections": dets.iter().map(|(b, s)| serde_json::json!({
                "class": classes.get(b.class as usize).cloned().unwrap_or_default(),
                "class_id": b.class,
                "score": s,
                "bbox": [b.xmin, b.ymin, b.xmax, b.ymax],
            })).collect::<Vec<_>>(),
        }));
        pictures.push((a.out.join(format!("{stem}.png")), drawn));
    }
    write_outputs(&a, &pictures, all)
}

/// The name of an image's drawn picture in `--out`, without `.png`.
fn picture_stem(image: &Path) -> String {
    image
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into())
}

/// Writes the drawn pictures and detections.json (after every image has been processed).
fn write_outputs(
    a: &PredictArgs,
    pictures: &[(PathBuf, fovea_models::vision::Image)],
    all: Vec<serde_json::Value>,
) -> anyhow::Result<()> {
    for (p, img) in pictures {
        let bytes = fovea_models::vision::image_io::encode_png(img, fovea_models::vision::BitDepth::Eight)?;
        fovea_models::tasks::output::write_atomic(p, &bytes)?;
        println!("wrote {}", p.display());
    }
    let json = serde_json::Value::Array(all);
    write_json(&a.out.join("detections.json"), &json)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    Ok(())
}

/// `--pretrained blazeface[-full]`: MediaPipe's face detector with its anchors, decoding and
/// weighted NMS; the image is letterboxed into the square input as MediaPipe does.
fn run_blazeface(a: &PredictArgs, name: &str) -> anyhow::Result<()> {
    use fovea_models::tasks::detection::blazeface::{BlazeFaceSpec, detect_faces};
    let (mut spec, file) = match name {
        "blazeface" => (BlazeFaceSpec::short_range(), "face_detection_short_range.tflite"),
        "blazeface-full" => (BlazeFaceSpec::full_range(), "face_detection_full_range.tflite"),
        other => anyhow::bail!("--pretrained {other}: expected blazeface or blazeface-full"),
    };
    if let Some(s) = a.score {
        spec.min_score = s;
    }
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/pretrained").join(file);
    let cache = fovea_models::zoo::face_api::default_dir().join(file);
    let path = [shipped, cache.clone()]
        .into_iter()
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "--pretrained {name}: {file} is neither in data/pretrained nor in {} (run \
                 tools/pretrained/fetch.sh, or set FOVEA_PRETRAINED_DIR)",
                cache.parent().unwrap_or(&cache).display()
            )
        })?;
    let model = fovea::import::tflite::load(&path).with_context(|| format!("{}", path.display()))?;
    let device = Arc::new(Device::new()?);
    // Decode every image before writing anything, so a bad file leaves no output.
    let mut pictures = Vec::new();
    let mut all = Vec::new();
    for img_path in &a.images {
        let image = read_image(img_path)?.to_rgb();
        let start = Instant::now();
        let faces = detect_faces(&device, &model, &spec, &image).with_context(|| format!("{}", path.display()))?;
        let ms = start.elapsed().as_secs_f64() * 1e3;
        let dets: Vec<Detection> = faces
            .iter()
            .map(|f| Detection {
                bbox: fovea_models::vision::BBox::new(f.bbox[0], f.bbox[1], f.bbox[2], f.bbox[3], 0),
                score: Some(f.score),
            })
            .collect();
        let json: Vec<serde_json::Value> = faces
            .iter()
            .map(|f| {
                serde_json::json!({
                    "class": "face", "class_id": 0, "score": f.score, "bbox": f.bbox,
                    "keypoints": f.keypoints.iter().map(|&(x, y)| [x, y]).collect::<Vec<_>>(),
                })
            })
            .collect();
        let drawn = draw_detections(&image, &dets, &["face".to_string()])?;
        println!("{}: {} faces ({ms:.0} ms)", img_path.display(), faces.len());
        let stem = picture_stem(img_path);
        pictures.push((a.out.join(format!("{stem}.png")), drawn));
        all.push(serde_json::json!({
            "image": img_path.display().to_string(),
            "width": image.width, "height": image.height,
            "model": path.display().to_string(),
            "detections": json,
        }));
    }
    write_outputs(a, &pictures, all)
}
