//! `fovea segment`: membrane segmentation (see fovea_models::tasks::segmentation) and MediaPipe
//! Selfie Segmentation. Thin: parse and check every argument, call the task, print.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Subcommand;
use fovea_engine::{Device, Verbosity, checkpoint};
use fovea_models::data::membrane::{MembraneSet, load_membrane};
use fovea_models::plot::{Series, training_curves};
use fovea_models::tasks::output::write_json;
use fovea_models::tasks::segmentation::data::{DEFAULT_TEST_SLICES, Slice, parse_test_slices, read_slices, split};
use fovea_models::tasks::segmentation::infer::{Inference, Views, choose_threshold, evaluate};
use fovea_models::tasks::segmentation::model::{Arch, NetSpec};
use fovea_models::tasks::segmentation::pictures::{mask_image, overlay, write_png_atomic};
use fovea_models::tasks::segmentation::train::{TrainOptions, compile, train};
use fovea_models::tasks::segmentation::{selfie, train as recipe};
use fovea_models::vision::read_image;

use super::schedule::LrSchedule;

/// Arguments of `fovea segment`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: SegmentCommand,
}

#[derive(Debug, Subcommand)]
enum SegmentCommand {
    /// Train a U-Net or DeepLab-style net on membrane image/mask pairs and score the held-out slices.
    Train(TrainArgs),
    /// Score trained weights on the held-out slices (pixel accuracy, Dice, IoU, mIoU, V_rand, V_info).
    Eval(EvalArgs),
    /// Predict masks of images: a mask PNG and a colour overlay PNG per image.
    Predict(PredictArgs),
}

#[derive(Debug, clap::Args)]
struct TrainArgs {
    #[command(flatten)]
    checkpoint: super::checkpointing::CheckpointArgs,
    /// Folder with image/*.png and label/*.png (or train/ holding them); default: the embedded slice.
    #[arg(long)]
    data: Option<PathBuf>,
    /// The network: unet or deeplab.
    #[arg(long, default_value = "unet")]
    model: String,
    /// Held-out slice indices, comma-separated, ranges allowed (default 24,25,26,27,28,29; with
    /// fewer slices, the last fifth).
    #[arg(long)]
    test_slices: Option<String>,
    /// Epochs of --patches random patches.
    #[arg(long, default_value_t = 40)]
    epochs: usize,
    /// Random patches per epoch.
    #[arg(long, default_value_t = 48)]
    patches: usize,
    /// Patches per step.
    #[arg(long, default_value_t = 4)]
    batch_size: usize,
    /// Side of the training patches and inference tiles (a multiple of 16).
    #[arg(long, default_value_t = 128)]
    tile: usize,
    /// Filters of the network's first level.
    #[arg(long, default_value_t = 16)]
    base_width: usize,
    /// Adam's learning rate (the peak, with `--lr-schedule cosine`).
    #[arg(long, default_value_t = 0.001)]
    learning_rate: f32,
    /// The learning rate over the run: `constant`, or `cosine` (a warm-up over the first epoch,
    /// then a decay to 1% at the last of --epochs; a --time-budget-min stop comes before it).
    #[arg(long, value_enum, default_value_t = LrSchedule::Constant)]
    lr_schedule: LrSchedule,
    /// Seed of the weights, patches and augmentation.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Also score the held-out slices every N epochs during training (0: only the final scores).
    #[arg(long, default_value_t = 0)]
    eval_every: usize,
    /// Stop after the epoch that passes this many minutes of training.
    #[arg(long)]
    time_budget_min: Option<f64>,
    /// Worker threads preparing patches.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Save the trained weights (safetensors).
    #[arg(long)]
    save: Option<PathBuf>,
    /// Write the held-out scores, the training log and the run's settings as JSON.
    #[arg(long)]
    metrics_json: Option<PathBuf>,
    /// Draw the training loss (and held-out Dice / V_rand when scored) to a PNG.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// No progress output.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, clap::Args)]
struct EvalArgs {
    /// Folder with image/*.png and label/*.png; default: the embedded slice.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Slices to score (as for train; all of them may be listed).
    #[arg(long)]
    test_slices: Option<String>,
    /// Weights written by `fovea segment train --save`.
    #[arg(long)]
    weights: PathBuf,
    /// Inference tile side (the training patch side).
    #[arg(long, default_value_t = 128)]
    tile: usize,
    /// Write the scores as JSON (pixel_accuracy, dice, iou, miou, v_rand, v_info, v_rand_thinned,
    /// v_info_thinned, per slice).
    #[arg(long)]
    metrics_json: Option<PathBuf>,
    /// Write each held-out slice's predicted mask here, named like its image (0 membrane, 255 cell).
    #[arg(long)]
    masks: Option<PathBuf>,
    /// A pixel is cell when its cell probability is at least this.
    #[arg(long, default_value_t = 0.5, conflicts_with = "choose_threshold")]
    threshold: f32,
    /// Choose the threshold (0.10-0.90 in steps of 0.05) by the best mean V_rand on the slices
    /// that are not scored (the training slices), then score the held-out slices with it.
    #[arg(long)]
    choose_threshold: bool,
    /// Test-time augmentation: average the predictions of the slice and of its mirror images,
    /// mapped back: `none`, `flips` (left-right, top-bottom and both: 4x the inference time)
    /// or `dihedral` (those and the transposed slice's four: every flip and quarter turn, 8x).
    #[arg(long, value_enum, default_value = "none")]
    tta: Tta,
    /// Overlap-tile margin: each tile's border of this many pixels is context only, and the
    /// `tile - 2*margin` core is kept (default: an eighth of the tile, at most 16). Wider
    /// margins give the border pixels more real context and cost more tiles. A multiple of 16.
    #[arg(long)]
    margin: Option<usize>,
}

/// The choices of `segment eval --tta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Tta {
    /// The slice alone.
    None,
    /// The four mirror images.
    Flips,
    /// The eight flips and quarter turns.
    Dihedral,
}

impl From<Tta> for Views {
    fn from(t: Tta) -> Views {
        match t {
            Tta::None => Views::One,
            Tta::Flips => Views::Flips,
            Tta::Dihedral => Views::Dihedral,
        }
    }
}

#[derive(Debug, clap::Args)]
struct PredictArgs {
    /// Images (PNG or JPEG).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Weights written by `fovea segment train --save`.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// A pretrained model instead of --weights: selfie (MediaPipe Selfie Segmentation).
    #[arg(long)]
    pretrained: Option<String>,
    /// Inference tile side for --weights (the training patch side).
    #[arg(long, default_value_t = 128)]
    tile: usize,
    /// Output folder: NAME-mask.png and NAME-overlay.png per image.
    #[arg(long)]
    out: PathBuf,
}

/// Runs `fovea segment`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        SegmentCommand::Train(a) => run_train(a),
        SegmentCommand::Eval(a) => run_eval(a),
        SegmentCommand::Predict(a) => run_predict(a),
    }
}

fn embedded_membrane() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/membrane")
}

/// The data, checked (every mask 0/255 and its image's size), split into training pairs and
/// held-out slices.
fn load_split(
    data: &Option<PathBuf>,
    spec: &Option<String>,
    allow_all: bool,
) -> anyhow::Result<(MembraneSet, Vec<Slice>)> {
    let dir = data.clone().unwrap_or_else(embedded_membrane);
    let set = load_membrane(&dir).with_context(|| format!("--data {}", dir.display()))?;
    // An unpaired file or a mask of another size than its image is an error here, not a skip.
    anyhow::ensure!(
        set.warnings.is_empty(),
        "--data {}: every image needs a mask of its size:\n{}",
        dir.display(),
        set.warnings
    );
    let n = set.pairs.len();
    let test = match spec {
        Some(s) => parse_test_slices(s, n, allow_all)?,
        None if n >= 30 => DEFAULT_TEST_SLICES.to_vec(),
        None if n == 1 => {
            eprintln!("one slice only: training and scoring on it");
            vec![0]
        }
        None => ((n - n.div_ceil(5))..n).collect(),
    };
    let slices = read_slices(&set)?;
    let (train_set, test_set) = split(&set, &test);
    let train_set = if train_set.pairs.is_empty() {
        set.clone()
    } else {
        train_set
    };
    let held: Vec<Slice> = test.iter().map(|&i| slices[i].clone()).collect();
    eprintln!(
        "{} training slices, {} held out ({})",
        train_set.pairs.len(),
        held.len(),
        test_set
            .pairs
            .iter()
            .map(|p| p.0.file_name().unwrap_or_default().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok((train_set, held))
}

/// Fails now if `path`'s folder cannot take a file (so a long run does not end in an error).
fn check_writable(path: &Option<PathBuf>, arg: &str) -> anyhow::Result<()> {
    if let Some(p) = path {
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        anyhow::ensure!(
            dir.is_dir(),
            "{arg} {}: the folder {} does not exist",
            p.display(),
            dir.display()
        );
        anyhow::ensure!(!p.is_dir(), "{arg} {}: is a folder, expected a file name", p.display());
    }
    Ok(())
}

fn check_tile(tile: usize) -> anyhow::Result<()> {
    anyhow::ensure!(
        tile >= 32 && tile.is_multiple_of(16),
        "--tile {tile}: expected a multiple of 16, at least 32"
    );
    Ok(())
}

fn run_train(a: TrainArgs) -> anyhow::Result<()> {
    let arch = Arch::parse(&a.model)?;
    check_tile(a.tile)?;
    anyhow::ensure!(a.epochs > 0, "--epochs must be positive");
    anyhow::ensure!(a.patches > 0, "--patches must be positive");
    anyhow::ensure!(a.batch_size > 0, "--batch-size must be positive");
    anyhow::ensure!(a.base_width > 0, "--base-width must be positive");
    anyhow::ensure!(a.workers > 0, "--workers must be positive");
    anyhow::ensure!(
        a.learning_rate > 0.0 && a.learning_rate.is_finite(),
        "--learning-rate must be positive"
    );
    if let Some(m) = a.time_budget_min {
        anyhow::ensure!(m > 0.0 && m.is_finite(), "--time-budget-min must be positive");
    }
    check_writable(&a.save, "--save")?;
    check_writable(&a.metrics_json, "--metrics-json")?;
    check_writable(&a.plot, "--plot")?;
    let (train_set, held) = load_split(&a.data, &a.test_slices, false)?;
    let mut net = NetSpec::new(arch);
    net.tile = a.tile;
    net.base_width = a.base_width;
    net.build(a.seed)?;
    let device = Arc::new(Device::new()?);
    let mut opts = TrainOptions {
        epochs: a.epochs,
        patches_per_epoch: a.patches,
        batch_size: a.batch_size,
        learning_rate: a.learning_rate,
        seed: a.seed,
        workers: a.workers,
        eval_every: a.eval_every,
        time_budget_s: a.time_budget_min.map(|m| m * 60.0),
        verbosity: if a.quiet { Verbosity::Silent } else { Verbosity::Auto },
        checkpoint: a.checkpoint.options()?,
        ..TrainOptions::new(net)
    };
    if a.lr_schedule != LrSchedule::Constant {
        opts.schedule = Some(
            a.lr_schedule
                .schedule(a.learning_rate, opts.steps_per_epoch(), a.epochs as u64),
        );
    }
    eprintln!(
        "training {} (width {}, {}x{} patches, batch {}) for {} epochs of {} patches on {}",
        arch.name(),
        net.base_width,
        net.tile,
        net.tile,
        opts.batch_size,
        opts.epochs,
        opts.patches_per_epoch,
        device.describe()
    );
    let quiet = a.quiet;
    let start = Instant::now();
    let mut trained = train(&device, train_set, &held, &opts, |r| {
        if quiet {
            return;
        }
        let scores = r
            .held_out
            .map(|s| {
                format!(
                    ", held out: pixel accuracy {:.4}, Dice {:.4}, V_rand {:.4}",
                    s.pixel_accuracy, s.dice, s.v_rand
                )
            })
            .unwrap_or_default();
        eprintln!("epoch {}: loss {:.4} ({:.0} s){scores}", r.epoch, r.loss, r.elapsed_s);
    })?;
    let wall = start.elapsed().as_secs_f64();
    let inference = Inference::new(net.tile);
    let eval = evaluate(&mut trained.model, &inference, &held)?;
    let m = eval.mean;
    println!(
        "held-out slices: pixel accuracy {:.4}, membrane Dice {:.4}, IoU {:.4}, mIoU {:.4}, V_rand {:.4}, V_info {:.4} \
         (after border thinning: V_rand {:.4}, V_info {:.4})",
        m.pixel_accuracy, m.dice, m.iou, m.miou, m.v_rand, m.v_info, m.v_rand_thinned, m.v_info_thinned
    );
    println!(
        "training {:.1} s ({} epochs), total {:.1} s; overlap-tile inference {:.0} ms per slice",
        trained.train_seconds,
        trained.epochs.len(),
        wall,
        eval.ms_per_slice
    );
    if let Some(path) = &a.save {
        checkpoint::save_params(path, &trained.model.model()?.params)
            .with_context(|| format!("--save {}", path.display()))?;
        println!("weights saved to {}", path.display());
    }
    if let Some(path) = &a.plot {
        let loss = trained.history.series("loss");
        // One value per epoch, NaN where the held-out slices were not scored.
        let dice: Vec<f64> = trained
            .epochs
            .iter()
            .map(|e| e.held_out.map_or(f64::NAN, |s| s.dice))
            .collect();
        let v_rand: Vec<f64> = trained
            .epochs
            .iter()
            .map(|e| e.held_out.map_or(f64::NAN, |s| s.v_rand))
            .collect();
        let mut panels = vec![(
            Series {
                name: "loss",
                values: &loss,
            },
            None,
        )];
        if dice.iter().filter(|v| v.is_finite()).count() > 1 {
            panels.push((
                Series {
                    name: "held-out Dice",
                    values: &dice,
                },
                Some(Series {
                    name: "held-out V_rand",
                    values: &v_rand,
                }),
            ));
        }
        training_curves(path, &panels)?;
        println!("curves written to {}", path.display());
    }
    if let Some(path) = &a.metrics_json {
        let mut json = scores_json(&eval);
        json["model"] = arch.name().into();
        json["base_width"] = net.base_width.into();
        json["tile"] = net.tile.into();
        json["batch_size"] = opts.batch_size.into();
        json["patches_per_epoch"] = opts.patches_per_epoch.into();
        json["learning_rate"] = (opts.learning_rate as f64).into();
        json["lr_schedule"] = a.lr_schedule.name().into();
        json["seed"] = opts.seed.into();
        json["train_seconds"] = trained.train_seconds.into();
        json["wall_seconds"] = wall.into();
        json["epochs"] = serde_json::to_value(&trained.epochs)?;
        json["adapter"] = device.describe().into();
        write_json(path, &json)?;
        println!("metrics written to {}", path.display());
    }
    Ok(())
}

fn scores_json(eval: &fovea_models::tasks::segmentation::infer::Evaluation) -> serde_json::Value {
    let mut json = serde_json::json!({});
    for (k, v) in eval.mean.pairs() {
        json[k] = v.into();
    }
    json["per_slice"] = serde_json::to_value(&eval.per_slice).unwrap_or_default();
    json["overlap_tile_ms_per_slice"] = eval.ms_per_slice.into();
    json
}

fn run_eval(a: EvalArgs) -> anyhow::Result<()> {
    check_tile(a.tile)?;
    check_writable(&a.metrics_json, "--metrics-json")?;
    if let Some(d) = &a.masks {
        anyhow::ensure!(!d.is_file(), "--masks {}: is a file, expected a folder", d.display());
    }
    anyhow::ensure!(
        a.threshold > 0.0 && a.threshold < 1.0,
        "--threshold must be in (0, 1), got {}",
        a.threshold
    );
    let (train, held) = load_split(&a.data, &a.test_slices, true)?;
    // The slices to choose a threshold on: those not scored (read only when asked).
    let others: Vec<Slice> = if a.choose_threshold {
        read_slices(&train)?
            .into_iter()
            .filter(|s| !held.iter().any(|h| h.path == s.path))
            .collect()
    } else {
        Vec::new()
    };
    anyhow::ensure!(
        !a.choose_threshold || !others.is_empty(),
        "--choose-threshold: every slice is held out, so none is left to choose the threshold on"
    );
    let (spec, model) =
        NetSpec::load(&a.weights, a.tile).with_context(|| format!("--weights {}", a.weights.display()))?;
    let device = Arc::new(Device::new()?);
    let mut cm = compile(&device, model, 1e-3, Default::default())?;
    let mut inference = Inference::new(spec.tile);
    inference.threshold = a.threshold;
    inference.views = a.tta.into();
    if let Some(m) = a.margin {
        anyhow::ensure!(
            m % 16 == 0,
            "--margin {m}: must be a multiple of 16, so that tile origins keep the pooling grid of the whole slice"
        );
        inference.tiles.margin = m;
        inference.tiles.core().context("--margin")?;
    }
    let mut chosen = serde_json::Value::Null;
    if a.choose_threshold {
        let (t, table) = choose_threshold(&mut cm, &inference, &others)?;
        for (c, m) in &table {
            println!(
                "threshold {c:.2} on the {} other slices: pixel accuracy {:.4}, Dice {:.4}, V_rand {:.4}, V_info {:.4}, \
                 thinned V_rand {:.4}",
                others.len(),
                m.pixel_accuracy,
                m.dice,
                m.v_rand,
                m.v_info,
                m.v_rand_thinned
            );
        }
        println!(
            "chosen threshold: {t:.2} (best mean V_rand on the {} other slices)",
            others.len()
        );
        inference.threshold = t;
        chosen = serde_json::to_value(table.iter().map(|(c, m)| (c, m.v_rand)).collect::<Vec<_>>())?;
    }
    let eval = evaluate(&mut cm, &inference, &held)?;
    let m = eval.mean;
    println!(
        "{} (width {}) on {} slices at threshold {:.2}: pixel accuracy {:.4}, membrane Dice {:.4}, IoU {:.4}, mIoU {:.4}, V_rand {:.4}, V_info {:.4} \
         (after border thinning: V_rand {:.4}, V_info {:.4}); {:.0} ms per slice",
        spec.arch.name(),
        spec.base_width,
        held.len(),
        inference.threshold,
        m.pixel_accuracy,
        m.dice,
        m.iou,
        m.miou,
        m.v_rand,
        m.v_info,
        m.v_rand_thinned,
        m.v_info_thinned,
        eval.ms_per_slice
    );
    if let Some(dir) = &a.masks {
        for (s, mask) in held.iter().zip(&eval.masks) {
            let name = s.path.file_name().unwrap_or_default();
            write_png_atomic(&dir.join(name), &mask_image(mask, s.image.width, s.image.height)?)?;
        }
        println!("{} masks written to {}", held.len(), dir.display());
    }
    if let Some(path) = &a.metrics_json {
        let mut json = scores_json(&eval);
        json["model"] = spec.arch.name().into();
        json["threshold"] = (inference.threshold as f64).into();
        json["tta"] = inference.views.name().into();
        json["margin"] = inference.tiles.margin.into();
        json["threshold_choice_v_rand"] = chosen;
        json["adapter"] = device.describe().into();
        write_json(path, &json)?;
        println!("metrics written to {}", path.display());
    }
    Ok(())
}

fn stem(path: &Path) -> String {
    path.file_stem().unwrap_or_default().to_string_lossy().into_owned()
}

fn run_predict(a: PredictArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        !a.out.is_file(),
        "--out {}: is a file, expected a folder",
        a.out.display()
    );
    let mut stems = Vec::new();
    for p in &a.images {
        anyhow::ensure!(p.is_file(), "{}: no such image", p.display());
        let s = stem(p);
        anyhow::ensure!(
            !stems.contains(&s),
            "{}: two images would write {s}-mask.png",
            p.display()
        );
        stems.push(s);
    }
    // Decode every image first, so that a bad one fails before anything is written.
    let images = a
        .images
        .iter()
        .map(|p| read_image(p).with_context(|| p.display().to_string()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let device = Arc::new(Device::new()?);
    let masks: Vec<Vec<bool>> = match (&a.pretrained, &a.weights) {
        (Some(_), Some(_)) => anyhow::bail!("give --weights or --pretrained, not both"),
        (None, None) => anyhow::bail!("give --weights W.safetensors or --pretrained selfie"),
        (Some(name), None) => {
            anyhow::ensure!(
                name == "selfie",
                "--pretrained {name}: unknown; the one pretrained segmenter is selfie"
            );
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/pretrained/selfie_segmentation.tflite");
            let model = fovea::import::tflite::load(&path).with_context(|| path.display().to_string())?;
            images
                .iter()
                .map(|img| {
                    Ok(selfie::person_probabilities(&device, &model, img)?
                        .iter()
                        .map(|&p| p >= 0.5)
                        .collect())
                })
                .collect::<anyhow::Result<_>>()?
        }
        (None, Some(w)) => {
            check_tile(a.tile)?;
            let (spec, model) = NetSpec::load(w, a.tile).with_context(|| format!("--weights {}", w.display()))?;
            let mut cm = recipe::compile(&device, model, 1e-3, Default::default())?;
            let inference = Inference::new(spec.tile);
            images
                .iter()
                .map(|img| Ok(inference.mask(&mut cm, &img.to_gray())?))
                .collect::<anyhow::Result<_>>()?
        }
    };
    // Selfie: highlight the person (mask 255 = person); membranes: highlight the membrane (0).
    let person = a.pretrained.is_some();
    for ((img, mask), s) in images.iter().zip(&masks).zip(&stems) {
        let mask_path = a.out.join(format!("{s}-mask.png"));
        let overlay_path = a.out.join(format!("{s}-overlay.png"));
        write_png_atomic(&mask_path, &mask_image(mask, img.width, img.height)?)?;
        let highlight: Vec<bool> = mask.iter().map(|&m| m == person).collect();
        write_png_atomic(&overlay_path, &overlay(img, &highlight)?)?;
        println!("{} -> {}, {}", s, mask_path.display(), overlay_path.display());
    }
    Ok(())
}
