//! `fovea faces`: face recognition (see `fovea_models::tasks::faces`). Thin: parse, check
//! every argument, call the task, print, write the results (atomically, only at the end).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use fovea_engine::{Device, npy};
use fovea_graph::Tensor;
use fovea_models::data::orl::load_orl;
use fovea_models::tasks::faces::align::{Aligner, ChipGeometry};
use fovea_models::tasks::faces::data::{DEFAULT_TEST_SUBJECTS, Faces, Split, parse_subjects, split};
use fovea_models::tasks::faces::embed::{Embedder, save_weights, weights_aligned};
use fovea_models::tasks::faces::evaluate::{DEFAULT_GALLERY_PER_SUBJECT, Evaluation, evaluate};
use fovea_models::tasks::faces::gallery::{GALLERY_FORMAT, GalleryFile, GalleryModel, Person, read_gallery_folder};
use fovea_models::tasks::faces::loss::FaceLoss;
use fovea_models::tasks::faces::pictures::roc_png;
use fovea_models::tasks::faces::train::{Init, TrainConfig, train};
use fovea_models::tasks::output::{write_atomic, write_json};
use fovea_models::vision::read_image;
use fovea_models::zoo::faces::EmbeddingConfig;

/// Arguments of `fovea faces`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: FacesCommand,
}

#[derive(Debug, clap::Subcommand)]
enum FacesCommand {
    /// Train the embedding net on the AT&T faces (held-out subjects excluded) and report
    /// verification and identification on the held-out subjects.
    Train(TrainArgs),
    /// Verification and identification figures of trained weights (or a pretrained or
    /// raw-pixel embedder) on the held-out subjects.
    Verify(VerifyArgs),
    /// Embed a gallery folder (one subfolder of face images per person) into a gallery file.
    Enroll(EnrollArgs),
    /// Name the faces in images from a gallery file, or say "unknown".
    Identify(IdentifyArgs),
}

#[derive(Debug, clap::Args)]
struct DataArgs {
    /// A folder holding att_faces.tar.gz or the unpacked s1..s40 folders (or the .tar.gz itself).
    #[arg(long)]
    data: PathBuf,
    /// Held-out subjects (1-based, as the sN folders): a list and/or ranges, `31,32,40` or `31-40`.
    #[arg(long, default_value = DEFAULT_TEST_SUBJECTS)]
    test_subjects: String,
}

#[derive(Debug, clap::Args)]
struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    checkpoint: super::checkpointing::CheckpointArgs,
    /// Where training starts: `scratch` (the zoo's embedding net, random weights) or
    /// `face-api` (fine-tune face-api's pretrained descriptor from --pretrained-dir). The
    /// defaults of --epochs, --loss, --margin, --learning-rate and --eval-every follow it.
    #[arg(long, default_value = "scratch")]
    init: String,
    /// With `--init face-api`: the package folder (tools/pretrained/fetch.sh).
    #[arg(long, default_value = "~/.cache/fovea/pretrained")]
    pretrained_dir: String,
    /// Passes of P x K batches over the training subjects [default: 30 from scratch, 4 fine-tuning].
    #[arg(long)]
    epochs: Option<usize>,
    /// The loss: batch-hard or batch-all triplet mining, or softmax over the training subjects
    /// [default: batch-all from scratch, batch-hard fine-tuning].
    #[arg(long)]
    loss: Option<String>,
    /// The triplet margin, on squared distances of unit embeddings [default: 0.2 from scratch,
    /// 0.02 fine-tuning].
    #[arg(long)]
    margin: Option<f32>,
    /// Batches of P subjects with K images each, `PxK`.
    #[arg(long, default_value = "8x4")]
    pk: String,
    /// Adam's learning rate [default: 1e-3 from scratch, 1e-4 fine-tuning].
    #[arg(long)]
    learning_rate: Option<f32>,
    /// Seed of the weights, batches and augmentation.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Held-out evaluation every N epochs during training (0: only at the end) [default: 10
    /// from scratch, 1 fine-tuning].
    #[arg(long)]
    eval_every: Option<usize>,
    /// Gallery images per held-out subject for identification.
    #[arg(long, default_value_t = DEFAULT_GALLERY_PER_SUBJECT)]
    gallery_size: usize,
    /// Save the trained weights (safetensors); a `.json` beside them records the threshold.
    #[arg(long)]
    save: Option<PathBuf>,
    /// Write the history and the held-out figures as JSON.
    #[arg(long)]
    metrics_json: Option<PathBuf>,
    /// Plot the training loss and the collapse monitor as PNG.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Plot the held-out ROC as PNG.
    #[arg(long)]
    roc: Option<PathBuf>,
    /// No per-epoch lines.
    #[arg(long)]
    quiet: bool,
    /// Evaluate each face as it is, without averaging in its mirror image's embedding.
    #[arg(long)]
    no_mirror: bool,
    /// Train and evaluate on aligned faces (as `verify --align`; the default with `--init
    /// face-api`); the weights file records it.
    #[arg(long, conflicts_with = "no_align")]
    align: bool,
    /// Train on the faces as they are, even with `--init face-api`.
    #[arg(long)]
    no_align: bool,
    /// Train only these layers (comma-separated names, as `fovea graph` lists them), every
    /// other one frozen; `all` trains every layer [default: all from scratch, `fc` (the last
    /// projection) fine-tuning].
    #[arg(long, value_delimiter = ',')]
    tune_layers: Option<Vec<String>>,
}

#[derive(Debug, clap::Args)]
struct ModelArgs {
    /// Weights written by `fovea faces train --save`.
    #[arg(long, conflicts_with = "pretrained")]
    weights: Option<PathBuf>,
    /// A pretrained embedder instead: `face-api` (its 128-d descriptor) or `pixels` (the
    /// raw-pixel nearest-neighbour floor).
    #[arg(long)]
    pretrained: Option<String>,
    /// With `--pretrained face-api`: the package folder.
    #[arg(long, default_value = "~/.cache/fovea/pretrained")]
    pretrained_dir: String,
    /// Embed each face as it is, without averaging in its mirror image.
    #[arg(long)]
    no_mirror: bool,
    /// Align each face first: BlazeFace finds the eyes, and a similarity transform puts them
    /// level at fixed places in a 150x150 chip. The default for `--pretrained face-api` (its
    /// descriptor was trained on aligned crops) and for weights trained aligned.
    #[arg(long, conflicts_with = "no_align")]
    align: bool,
    /// Embed the faces as they are (padded to a square for face-api), without aligning.
    #[arg(long)]
    no_align: bool,
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// Gallery images per held-out subject for identification.
    #[arg(long, default_value_t = DEFAULT_GALLERY_PER_SUBJECT)]
    gallery_size: usize,
    /// Write the figures as JSON.
    #[arg(long)]
    metrics_json: Option<PathBuf>,
    /// Write one embedding per held-out image (float32 .npy, rows in data order).
    #[arg(long)]
    embeddings: Option<PathBuf>,
    /// With --embeddings: each row's subject number 1..40 (int32 .npy).
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Plot the held-out ROC as PNG.
    #[arg(long)]
    roc: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct EnrollArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// A folder with one subfolder per person (named for them) of face images.
    #[arg(long)]
    gallery: PathBuf,
    /// The gallery file to write.
    #[arg(long)]
    out: PathBuf,
    /// Distances at most this are a match (default: the threshold `train --save` recorded).
    #[arg(long)]
    threshold: Option<f64>,
}

#[derive(Debug, clap::Args)]
struct IdentifyArgs {
    /// A gallery file written by `fovea faces enroll`.
    #[arg(long)]
    gallery: PathBuf,
    /// Face images to identify.
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

/// Runs `fovea faces`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        FacesCommand::Train(a) => run_train(a),
        FacesCommand::Verify(a) => run_verify(a),
        FacesCommand::Enroll(a) => run_enroll(a),
        FacesCommand::Identify(a) => run_identify(a),
    }
}

/// An output path must not be a folder (checked before any long work).
fn check_output(flag: &str, path: &Option<PathBuf>) -> anyhow::Result<()> {
    if let Some(p) = path {
        anyhow::ensure!(!p.is_dir(), "{flag} {}: is a folder, expected a file path", p.display());
    }
    Ok(())
}

fn parse_pk(s: &str) -> anyhow::Result<(usize, usize)> {
    let parsed = s
        .split_once(['x', 'X'])
        .and_then(|(p, k)| Some((p.trim().parse().ok()?, k.trim().parse().ok()?)));
    match parsed {
        Some((p, k)) if p >= 2 && k >= 2 => Ok((p, k)),
        _ => anyhow::bail!("--pk {s}: expected PxK with P, K >= 2 (subjects per batch x images each), e.g. 8x4"),
    }
}

/// Loads the faces and splits them; errors name --data or --test-subjects.
fn load_split(d: &DataArgs, need_train: bool) -> anyhow::Result<Split> {
    let subjects = parse_subjects(&d.test_subjects)?;
    let set = load_orl(&d.data).with_context(|| format!("--data {}", d.data.display()))?;
    if !set.warnings.is_empty() {
        eprintln!("warning: {}", set.warnings);
    }
    Ok(split(&set, &subjects, &d.data.display().to_string(), need_train)?)
}

fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(p),
    }
}

/// The embedder the model arguments name.
fn embedder(m: &ModelArgs) -> anyhow::Result<Embedder> {
    let mut e = match (&m.weights, m.pretrained.as_deref()) {
        (Some(w), None) => {
            Embedder::trained(w, &EmbeddingConfig::default()).with_context(|| format!("--weights {}", w.display()))?
        }
        (None, Some("face-api")) => Embedder::face_api(&expand_home(&m.pretrained_dir))?,
        (None, Some("pixels")) => Embedder::pixel_floor()?,
        (None, Some(other)) => anyhow::bail!("--pretrained {other}: expected face-api or pixels"),
        _ => anyhow::bail!(
            "give --weights W.safetensors (from fovea faces train --save) or --pretrained face-api|pixels"
        ),
    };
    if m.no_mirror {
        e.mirror_average = false;
    }
    if wants_align(m)? {
        e.align = Some(aligner()?);
    }
    Ok(e)
}

/// Whether faces are aligned for the model the arguments name: `--align`, or by default (unless
/// `--no-align`) for face-api's descriptor and for weights trained on aligned faces.
fn wants_align(m: &ModelArgs) -> anyhow::Result<bool> {
    let by_default = match (&m.weights, m.pretrained.as_deref()) {
        (Some(w), _) => weights_aligned(w).with_context(|| format!("--weights {}", w.display()))?,
        (None, Some("face-api")) => true,
        _ => false,
    };
    Ok(m.align || (by_default && !m.no_align))
}

/// The face aligner, with BlazeFace from the repo's data/pretrained or the pretrained cache.
fn aligner() -> anyhow::Result<Aligner> {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/pretrained");
    let cache = fovea_models::zoo::face_api::default_dir();
    Aligner::find(&[&shipped, &cache], ChipGeometry::face_api()).context("--align")
}

/// `faces` with every image replaced by its aligned chip; prints how many were aligned.
fn align_faces(device: &Arc<Device>, aligner: &Aligner, faces: &Faces, what: &str) -> anyhow::Result<Faces> {
    let (images, stats) = aligner.align(device, &faces.images)?;
    eprintln!(
        "aligned {} of {} {what} faces ({} without a detected face, padded instead)",
        stats.aligned,
        faces.images.len(),
        stats.missed
    );
    Ok(Faces {
        images,
        subjects: faces.subjects.clone(),
    })
}

fn sidecar(weights: &Path) -> PathBuf {
    weights.with_extension("json")
}

fn run_train(a: TrainArgs) -> anyhow::Result<()> {
    let base = match a.init.as_str() {
        "scratch" => TrainConfig::default(),
        "face-api" => TrainConfig::fine_tune_face_api(expand_home(&a.pretrained_dir)),
        other => anyhow::bail!("--init {other}: expected scratch or face-api"),
    };
    let (p, k) = parse_pk(&a.pk)?;
    let epochs = a.epochs.unwrap_or(base.epochs);
    let learning_rate = a.learning_rate.unwrap_or(base.learning_rate);
    anyhow::ensure!(epochs > 0, "--epochs must be at least 1");
    anyhow::ensure!(a.gallery_size > 0, "--gallery-size must be at least 1");
    anyhow::ensure!(
        learning_rate.is_finite() && learning_rate > 0.0,
        "--learning-rate must be a positive number"
    );
    let (base_name, base_margin) = match base.loss {
        FaceLoss::Triplet { mining, margin } => (mining.name(), margin),
        FaceLoss::Softmax { .. } => ("softmax", 0.2),
    };
    let loss_name = a.loss.clone().unwrap_or_else(|| base_name.to_string());
    let margin = a.margin.unwrap_or(base_margin);
    let loss = FaceLoss::parse(&loss_name, margin, 0)
        .map_err(|e| anyhow::anyhow!("--loss {loss_name} / --margin {margin}: {e}"))?;
    for (flag, path) in [
        ("--save", &a.save),
        ("--metrics-json", &a.metrics_json),
        ("--plot", &a.plot),
        ("--roc", &a.roc),
    ] {
        check_output(flag, path)?;
    }
    if let (Some(w), Some(m)) = (&a.save, &a.metrics_json) {
        anyhow::ensure!(
            sidecar(w) != *m,
            "--metrics-json {}: --save {} writes its threshold file there; choose another name",
            m.display(),
            w.display()
        );
    }
    let split = load_split(&a.data, true)?;
    let device = Arc::new(Device::new()?);
    let cfg = TrainConfig {
        loss,
        epochs,
        p,
        k,
        learning_rate,
        seed: a.seed,
        eval_every: a.eval_every.unwrap_or(base.eval_every),
        checkpoint: a.checkpoint.options()?,
        mirror_average: !a.no_mirror,
        tune_layers: match &a.tune_layers {
            Some(l) if l.iter().any(|n| n == "all") => Vec::new(),
            Some(l) => l.clone(),
            None => base.tune_layers.clone(),
        },
        ..base
    };
    eprintln!(
        "training the face embedding (from {}, {loss_name}, {p}x{k} batches, {epochs} epochs, lr {learning_rate}) on {} faces of {} subjects; held out {} faces of {} subjects; device {}",
        a.init,
        split.train.images.len(),
        split.train.subject_list().len(),
        split.test.images.len(),
        split.test.subject_list().len(),
        device.describe()
    );
    // With --align, training and evaluation see aligned chips; the raw-pixel floor the faces
    // as they are.
    let align = a.align || (matches!(cfg.init, Init::FaceApi(_)) && !a.no_align);
    let aligned = if align {
        let al = aligner()?;
        Some(Split {
            train: align_faces(&device, &al, &split.train, "training")?,
            test: align_faces(&device, &al, &split.test, "held-out")?,
        })
    } else {
        None
    };
    let data = aligned.as_ref().unwrap_or(&split);
    let started = std::time::Instant::now();
    let mut collapses = Vec::new();
    let trained = train(&device, &data.train, &data.test, &cfg, |r| {
        if let Some(w) = &r.collapse {
            eprintln!("warning: epoch {}: {w}", r.epoch);
            collapses.push(serde_json::json!({"epoch": r.epoch, "warning": w}));
        }
        if !a.quiet {
            let elapsed = started.elapsed().as_secs_f64();
            let eta = elapsed / r.epoch as f64 * (cfg.epochs - r.epoch) as f64;
            let val = match (r.val_auc, r.val_eer) {
                (Some(auc), Some(eer)) => format!("  held-out AUC {auc:.4} EER {:.2}%", 100.0 * eer),
                _ => String::new(),
            };
            eprintln!(
                "epoch {}/{}  loss {:.4}  mean distance {:.3}{val}  {:.1} s  ETA {:.0} s",
                r.epoch, cfg.epochs, r.loss, r.mean_distance, r.seconds, eta
            );
        }
    })?;
    let fovea_models::tasks::faces::train::Trained {
        model,
        prep,
        history: records,
        seconds: train_seconds,
    } = trained;
    let history = serde_json::to_value(&records)?;
    let embedder = Embedder {
        model,
        prep,
        kind: "trained".into(),
        mirror_average: cfg.mirror_average,
        align: None,
    };
    let eval = evaluate(&device, &embedder, data, a.gallery_size)?;
    println!("held-out subjects: {}", eval.summary());
    // The trivial floor beside it: raw grey pixels, nearest neighbour.
    let floor = evaluate(&device, &Embedder::pixel_floor()?, &split, a.gallery_size)?;
    println!("raw-pixel floor:   {}", floor.summary());
    // A fine-tuning run also reports where it started: the untouched descriptor, on the same
    // (aligned or not) faces.
    let start = match &cfg.init {
        Init::FaceApi(dir) => {
            let e = evaluate(&device, &Embedder::face_api(dir)?, data, a.gallery_size)?;
            println!("face-api, untuned: {}", e.summary());
            Some(e)
        }
        Init::Scratch => None,
    };
    println!("training took {train_seconds:.1} s");
    if let Some(path) = &a.save {
        save_weights(path, &embedder.model, cfg.init.architecture(), align)
            .with_context(|| format!("--save {}", path.display()))?;
        write_json(
            &sidecar(path),
            &serde_json::json!({"threshold": eval.verification.threshold, "test_subjects": a.data.test_subjects, "loss": loss_name, "init": a.init}),
        )?;
        println!(
            "weights saved to {} (threshold in {})",
            path.display(),
            sidecar(path).display()
        );
    }
    if let Some(path) = &a.metrics_json {
        let mut json = eval.to_json();
        json["train_seconds"] = serde_json::json!(train_seconds);
        json["loss"] = serde_json::json!(loss_name);
        json["init"] = serde_json::json!(a.init);
        json["align"] = serde_json::json!(align);
        json["tune_layers"] = serde_json::json!(cfg.tune_layers);
        json["learning_rate"] = serde_json::json!(learning_rate);
        json["margin"] = serde_json::json!(margin);
        json["epochs"] = serde_json::json!(epochs);
        json["pk"] = serde_json::json!(a.pk);
        json["test_subjects"] = serde_json::json!(a.data.test_subjects);
        json["device"] = serde_json::json!(device.describe());
        json["collapse_warnings"] = serde_json::Value::Array(collapses);
        json["raw_pixel_floor"] = floor.to_json();
        if let Some(e) = &start {
            json["untuned"] = e.to_json();
        }
        json["history"] = history;
        write_json(path, &json)?;
    }
    if let Some(path) = &a.plot {
        write_training_plot(path, &records)?;
    }
    if let Some(path) = &a.roc {
        let mut curves = vec![("trained".to_string(), &eval.roc)];
        if let Some(e) = &start {
            curves.push(("face-api, untuned".into(), &e.roc));
        }
        curves.push(("raw pixels".into(), &floor.roc));
        write_atomic(path, &roc_png(&curves)?)?;
    }
    Ok(())
}

fn write_training_plot(path: &Path, history: &[fovea_models::tasks::faces::train::EpochRecord]) -> anyhow::Result<()> {
    use fovea_models::plot::{Series, training_curves};
    let loss: Vec<f64> = history.iter().map(|r| r.loss).collect();
    let dist: Vec<f64> = history.iter().map(|r| r.mean_distance).collect();
    training_curves(
        path,
        &[
            (
                Series {
                    name: "loss",
                    values: &loss,
                },
                None,
            ),
            (
                Series {
                    name: "mean distance",
                    values: &dist,
                },
                None,
            ),
        ],
    )
    .with_context(|| format!("--plot {}", path.display()))?;
    Ok(())
}

fn run_verify(a: VerifyArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.gallery_size > 0, "--gallery-size must be at least 1");
    anyhow::ensure!(
        a.labels.is_none() || a.embeddings.is_some(),
        "--labels needs --embeddings"
    );
    for (flag, path) in [
        ("--metrics-json", &a.metrics_json),
        ("--embeddings", &a.embeddings),
        ("--labels", &a.labels),
        ("--roc", &a.roc),
    ] {
        check_output(flag, path)?;
    }
    let embedder = embedder(&a.model)?;
    let split = load_split(&a.data, false)?;
    let device = Arc::new(Device::new()?);
    let eval: Evaluation = evaluate(&device, &embedder, &split, a.gallery_size)?;
    println!(
        "{} on held-out subjects {}: {}",
        embedder.kind,
        a.data.test_subjects,
        eval.summary()
    );
    if let Some(path) = &a.embeddings {
        let d = eval.embeddings.first().map_or(0, Vec::len);
        let t = Tensor {
            shape: vec![eval.embeddings.len(), d],
            data: eval.embeddings.concat(),
        };
        write_atomic(path, &npy::to_bytes(&t))?;
    }
    if let Some(path) = &a.labels {
        write_atomic(path, &int32_npy(&eval.subjects))?;
    }
    if let Some(path) = &a.metrics_json {
        let mut json = eval.to_json();
        json["model"] = serde_json::json!(embedder.kind);
        json["test_subjects"] = serde_json::json!(a.data.test_subjects);
        json["device"] = serde_json::json!(device.describe());
        write_json(path, &json)?;
    }
    if let Some(path) = &a.roc {
        // The legend names the kind of model (`trained`, `face-api`, `raw-pixels`), not its path.
        let label = embedder.kind.split(':').next().unwrap_or("model").to_string();
        write_atomic(path, &roc_png(&[(label, &eval.roc)])?)?;
    }
    Ok(())
}

/// A version-1 `<i4` `.npy` of `values`.
fn int32_npy(values: &[u32]) -> Vec<u8> {
    let mut header = format!(
        "{{'descr': '<i4', 'fortran_order': False, 'shape': ({},), }}",
        values.len()
    );
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in values {
        out.extend_from_slice(&(*v as i32).to_le_bytes());
    }
    out
}

fn run_enroll(a: EnrollArgs) -> anyhow::Result<()> {
    check_output("--out", &Some(a.out.clone()))?;
    let embedder = embedder(&a.model)?;
    let threshold = match (a.threshold, &a.model.weights) {
        (Some(t), _) => t,
        (None, Some(w)) => {
            let side = sidecar(w);
            let text = std::fs::read_to_string(&side)
                .with_context(|| format!("no --threshold and no {} (written by train --save)", side.display()))?;
            let v: serde_json::Value =
                serde_json::from_str(&text).with_context(|| format!("{}: not JSON", side.display()))?;
            v["threshold"]
                .as_f64()
                .with_context(|| format!("{}: no numeric \"threshold\"", side.display()))?
        }
        (None, None) => anyhow::bail!("--threshold is needed with --pretrained"),
    };
    anyhow::ensure!(
        threshold.is_finite() && threshold >= 0.0,
        "--threshold must be a non-negative distance"
    );
    let people = read_gallery_folder(&a.gallery).with_context(|| format!("--gallery {}", a.gallery.display()))?;
    let device = Arc::new(Device::new()?);
    let mut enrolled = Vec::new();
    for (name, images) in people {
        let faces: Vec<_> = images.iter().map(|(_, i)| i.clone()).collect();
        let embeddings = embedder.embed(&device, &faces)?;
        println!("enrolled {name}: {} image(s)", faces.len());
        enrolled.push(Person {
            name,
            images: images.into_iter().map(|(p, _)| p).collect(),
            embeddings,
        });
    }
    let model = match (&a.model.weights, a.model.pretrained.as_deref()) {
        (Some(w), _) => GalleryModel::Trained {
            weights: std::fs::canonicalize(w).unwrap_or_else(|_| w.clone()),
        },
        _ => GalleryModel::FaceApi {
            dir: expand_home(&a.model.pretrained_dir),
            align: wants_align(&a.model)?,
        },
    };
    let file = GalleryFile {
        format: GALLERY_FORMAT.into(),
        model,
        threshold,
        people: enrolled,
    };
    write_json(&a.out, &serde_json::to_value(&file)?)?;
    println!("gallery of {} people written to {}", file.people.len(), a.out.display());
    Ok(())
}

fn run_identify(a: IdentifyArgs) -> anyhow::Result<()> {
    let gallery = GalleryFile::read(&a.gallery).with_context(|| format!("--gallery {}", a.gallery.display()))?;
    let model_args = match &gallery.model {
        GalleryModel::Trained { weights } => ModelArgs {
            weights: Some(weights.clone()),
            pretrained: None,
            pretrained_dir: String::new(),
            no_mirror: false,
            align: false,
            no_align: false,
        },
        GalleryModel::FaceApi { dir, align } => ModelArgs {
            weights: None,
            pretrained: Some("face-api".into()),
            pretrained_dir: dir.display().to_string(),
            no_mirror: false,
            align: *align,
            no_align: !*align,
        },
    };
    let embedder = embedder(&model_args).with_context(|| format!("the model named by {}", a.gallery.display()))?;
    let images = a
        .images
        .iter()
        .map(|p| read_image(p).with_context(|| format!("image {}", p.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let device = Arc::new(Device::new()?);
    let embeddings = embedder.embed(&device, &images)?;
    anyhow::ensure!(
        embeddings.first().map(Vec::len) == gallery.people.first().and_then(|p| p.embeddings.first()).map(Vec::len),
        "{}: its embeddings do not have this model's dimension",
        a.gallery.display()
    );
    for (path, e) in a.images.iter().zip(&embeddings) {
        match gallery.identify(e) {
            Some(m) if m.accepted => println!("{}: {} (distance {:.4})", path.display(), m.nearest, m.distance),
            Some(m) => println!(
                "{}: unknown (nearest {} at distance {:.4} > threshold {:.4})",
                path.display(),
                m.nearest,
                m.distance,
                gallery.threshold
            ),
            None => println!("{}: unknown", path.display()),
        }
    }
    Ok(())
}
