//! The faces task end to end: the triplet losses and their gradients on the GPU against the
//! reference interpreter, and `fovea faces train|verify|enroll|identify` on a tiny face set made
//! from the embedded subjects s1-s2 (bad input fails naming the argument and writes nothing).

mod common;

use common::{fovea, read_json, text};

use std::path::{Path, PathBuf};

use common::{gpu_vs_reference, random};
use fovea::graph::grad::grad;
use fovea::graph::init::Rng;
use fovea::graph::ir::{Graph, Op, ReduceOp, TensorType};
use fovea::models::tasks::faces::loss::{Mining, triplet_loss};

#[test]
fn triplet_losses_and_gradients_match_the_reference_on_the_gpu() {
    // 12 = P 3 x K 4 (batch-hard) and 7 with an odd subject (batch-all); embeddings of 5 and 128.
    for (mining, labels, dim) in [
        (
            Mining::BatchHard,
            vec![0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0],
            5usize,
        ),
        (Mining::BatchAll, vec![4.0, 4.0, 9.0, 9.0, 9.0, 1.0, 1.0], 128),
    ] {
        let n = labels.len();
        let mut g = Graph::new();
        let e = g.input("e", TensorType::f32(vec![n, dim])).unwrap();
        let l = g.input("labels", TensorType::f32(vec![n])).unwrap();
        let loss = triplet_loss(&mut g, e, l, mining, 0.3, "triplet").unwrap();
        let total = g
            .push(
                Op::Reduce {
                    op: ReduceOp::Sum,
                    axes: vec![0],
                    keep_dims: false,
                },
                &[loss],
                "sum",
            )
            .unwrap();
        let de = grad(&mut g, total, &[e]).unwrap()[0];
        g.outputs = vec![loss, de];
        let mut rng = Rng::new(n as u64);
        let feeds = vec![
            ("e".to_string(), random(&mut rng, n * dim, -0.3, 0.3)),
            ("labels".to_string(), labels.iter().map(|&v| v as f32).collect()),
        ];
        let (err, at) = gpu_vs_reference(g, &feeds);
        assert!(err < 1e-4, "{mining:?}: {err} at {at}");
    }
}

/// A face folder of four subjects: s1, s2 as embedded, s3 and s4 their mirror images made
/// darker (so they are other "people" to the net).
fn tiny_faces(dir: &Path) {
    let set = fovea::models::data::orl::load_orl(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("data/faces/att_faces_s1_s2.tar.gz"),
    )
    .unwrap();
    for (i, (img, s)) in set.images.iter().zip(&set.subjects).enumerate() {
        for (subject, transform) in [(s + 1, false), (s + 3, true)] {
            let mut out = img.clone();
            if transform {
                for y in 0..img.height {
                    for x in 0..img.width {
                        out.data[y * img.width + x] = 0.6 * img.data[y * img.width + img.width - 1 - x];
                    }
                }
            }
            let folder = dir.join(format!("s{subject}"));
            std::fs::create_dir_all(&folder).unwrap();
            let px: Vec<u8> = out
                .data
                .iter()
                .map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8)
                .collect();
            let mut pgm = format!("P5\n{} {}\n255\n", img.width, img.height).into_bytes();
            pgm.extend(px);
            std::fs::write(folder.join(format!("{}.pgm", i % 10 + 1)), pgm).unwrap();
        }
    }
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fovea-faces-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn train_verify_enroll_identify_round_trip() {
    let dir = temp("cli");
    let data = dir.join("faces");
    tiny_faces(&data);
    let (w, m) = (dir.join("w.safetensors"), dir.join("m.json"));
    let d = data.to_str().unwrap();
    let o = fovea(&[
        "faces",
        "train",
        "--data",
        d,
        "--test-subjects",
        "3,4",
        "--epochs",
        "2",
        "--pk",
        "2x2",
        "--eval-every",
        "1",
        "--save",
        w.to_str().unwrap(),
        "--metrics-json",
        m.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let json = read_json(&m);
    for key in ["auc", "eer", "tar_at_far_1e-2", "tar_at_far_1e-3", "accuracy", "rank1"] {
        let v = json[key].as_f64().unwrap_or(f64::NAN);
        assert!((0.0..=1.0).contains(&v), "{key} = {v}");
    }
    assert_eq!(json["history"].as_array().map(Vec::len), Some(2));
    assert_eq!(json["genuine_pairs"], 2 * 45);
    assert!(w.with_extension("json").is_file());
    // The raw-pixel floor beside the result is what `verify --pretrained pixels` gives alone.
    let pm = dir.join("pixels.json");
    let o = fovea(&[
        "faces",
        "verify",
        "--data",
        d,
        "--test-subjects",
        "3,4",
        "--pretrained",
        "pixels",
        "--metrics-json",
        pm.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let pixels = read_json(&pm);
    for key in ["auc", "eer", "tar_at_far_1e-2", "rank1"] {
        let (a, b) = (json["raw_pixel_floor"][key].as_f64(), pixels[key].as_f64());
        assert!(
            a.is_some() && a == b,
            "raw_pixel_floor.{key}: {a:?} in train, {b:?} from verify"
        );
    }
    // verify with the saved weights writes the embeddings (20 held-out faces x 128) and labels.
    let (e, l, roc) = (dir.join("e.npy"), dir.join("l.npy"), dir.join("roc.png"));
    let o = fovea(&[
        "faces",
        "verify",
        "--data",
        d,
        "--test-subjects",
        "3,4",
        "--weights",
        w.to_str().unwrap(),
        "--embeddings",
        e.to_str().unwrap(),
        "--labels",
        l.to_str().unwrap(),
        "--roc",
        roc.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let emb = fovea::engine::npy::read_f32(&e).unwrap();
    assert_eq!(emb.shape, vec![20, 128]);
    let norm: f32 = emb.data[..128].iter().map(|v| v * v).sum();
    assert!((norm - 1.0).abs() < 1e-3, "unit embeddings: {norm}");
    let (_, labels) = fovea::engine::npy::read_labels(&l).unwrap();
    assert_eq!(labels.iter().filter(|&&s| s == 3).count(), 10);
    assert_eq!(fovea::models::vision::read_image(&roc).unwrap().width, 560);
    // enroll s3 and s4 from folders, identify one of them.
    let gallery = dir.join("gallery");
    for s in ["s3", "s4"] {
        std::fs::create_dir_all(gallery.join(s)).unwrap();
        for i in 1..=3 {
            std::fs::copy(
                data.join(s).join(format!("{i}.pgm")),
                gallery.join(s).join(format!("{i}.pgm")),
            )
            .unwrap();
        }
    }
    let g = dir.join("g.json");
    let o = fovea(&[
        "faces",
        "enroll",
        "--weights",
        w.to_str().unwrap(),
        "--gallery",
        gallery.to_str().unwrap(),
        "--out",
        g.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let probe = data.join("s4/1.pgm");
    let o = fovea(&[
        "faces",
        "identify",
        "--gallery",
        g.to_str().unwrap(),
        probe.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // An enrolled image is at distance 0 from itself.
    assert!(text(&o).contains("s4 (distance 0.0000)"), "{}", text(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_names_the_argument_and_writes_nothing() {
    let dir = temp("bad");
    let m = dir.join("m.json");
    let ms = m.to_str().unwrap();
    let beside = m.with_extension("safetensors").to_string_lossy().into_owned();
    let tiny = dir.join("tiny");
    tiny_faces(&tiny);
    let t = tiny.to_str().unwrap();
    let embedded = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/faces");
    let d = embedded.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "faces",
                "train",
                "--data",
                d,
                "--test-subjects",
                "1",
                "--metrics-json",
                ms,
            ],
            "training needs at least 2",
        ),
        (
            vec![
                "faces",
                "train",
                "--data",
                d,
                "--test-subjects",
                "7",
                "--metrics-json",
                ms,
            ],
            "subject 7",
        ),
        (
            vec![
                "faces",
                "train",
                "--data",
                d,
                "--test-subjects",
                "x",
                "--metrics-json",
                ms,
            ],
            "--test-subjects",
        ),
        (
            vec!["faces", "train", "--data", d, "--pk", "1x4", "--metrics-json", ms],
            "--pk",
        ),
        (
            vec!["faces", "train", "--data", d, "--loss", "semi", "--metrics-json", ms],
            "semi",
        ),
        (
            vec!["faces", "train", "--data", "/nonexistent", "--metrics-json", ms],
            "/nonexistent",
        ),
        (
            vec![
                "faces",
                "verify",
                "--data",
                d,
                "--test-subjects",
                "1,2",
                "--weights",
                "/nonexistent.safetensors",
                "--metrics-json",
                ms,
            ],
            "nonexistent.safetensors",
        ),
        (
            vec![
                "faces",
                "verify",
                "--data",
                d,
                "--test-subjects",
                "1,2",
                "--pretrained",
                "face-api",
                "--pretrained-dir",
                "/nonexistent-face-api",
                "--metrics-json",
                ms,
            ],
            "nonexistent-face-api",
        ),
        (
            vec!["faces", "identify", "--gallery", "/nonexistent.json", "x.pgm"],
            "nonexistent.json",
        ),
        (
            vec!["faces", "train", "--data", d, "--init", "vgg", "--metrics-json", ms],
            "--init vgg",
        ),
        (
            vec![
                "faces",
                "train",
                "--data",
                t,
                "--test-subjects",
                "3,4",
                "--tune-layers",
                "projection,nosuch",
                "--metrics-json",
                ms,
            ],
            "--tune-layers nosuch",
        ),
        (
            vec![
                "faces",
                "train",
                "--data",
                t,
                "--test-subjects",
                "3,4",
                "--init",
                "face-api",
                "--pretrained-dir",
                "/nonexistent-face-api",
                "--metrics-json",
                ms,
            ],
            "nonexistent-face-api",
        ),
        (
            vec![
                "faces",
                "train",
                "--data",
                t,
                "--test-subjects",
                "3,4",
                "--init",
                "face-api",
                "--loss",
                "softmax",
                "--metrics-json",
                ms,
            ],
            "--loss softmax",
        ),
        (
            vec!["faces", "train", "--data", d, "--save", &beside, "--metrics-json", ms],
            "threshold",
        ),
    ];
    for (args, want) in cases {
        let o = fovea(&args);
        assert!(!o.status.success(), "{args:?} should fail");
        assert!(text(&o).contains(want), "{args:?}: expected '{want}' in: {}", text(&o));
        assert!(!m.exists(), "{args:?} wrote {}", m.display());
    }
    // The raw-pixel floor needs no weights and no training subjects.
    let o = fovea(&[
        "faces",
        "verify",
        "--data",
        d,
        "--test-subjects",
        "1,2",
        "--pretrained",
        "pixels",
        "--metrics-json",
        ms,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let json = read_json(&m);
    assert!(json["auc"].as_f64().unwrap() > 0.5, "{json}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A weights file marked as a fine-tuned face-api descriptor loads as that architecture (150x150
/// RGB, padded to a square) and embeds as the model does; an unknown mark is an error naming
/// the file. Needs no package: the architecture comes from the code, the weights from the file.
#[test]
fn weights_files_name_their_architecture() {
    use fovea::models::tasks::faces::embed::{
        Embedder, FACE_API_ARCHITECTURE, MODEL_METADATA, Preparation, save_weights,
    };
    use fovea::models::zoo::face_api::descriptor_embedding_architecture;
    use fovea::models::zoo::faces::EmbeddingConfig;
    let dir = temp("arch");
    let model = descriptor_embedding_architecture().unwrap();
    let w = dir.join("tuned.safetensors");
    save_weights(&w, &model, FACE_API_ARCHITECTURE, false).unwrap();
    let e = Embedder::trained(&w, &EmbeddingConfig::default()).unwrap();
    assert_eq!(e.prep, Preparation::PadSquare { size: 150 });
    assert_eq!(e.model.params.len(), model.params.len());
    let face = fovea::models::vision::Image::filled(92, 112, 1, 0.4);
    let device = common::device();
    let got = Embedder {
        mirror_average: false,
        ..e
    }
    .embed(&device, std::slice::from_ref(&face))
    .unwrap();
    let x = Preparation::PadSquare { size: 150 }.tensor(&[face]).unwrap();
    let want =
        fovea::engine::predict_arrays(&device, &model, &fovea::engine::NamedArrays::new().with("image", x), 1).unwrap();
    assert_eq!(got[0], want[0].1.data);
    let n: f32 = got[0].iter().map(|v| v * v).sum();
    assert!((n - 1.0).abs() < 1e-4, "unit norm: {n}");
    // A zoo file and an unknown mark.
    let zoo = fovea::models::zoo::faces::embedding_net(&EmbeddingConfig::default(), 3).unwrap();
    let z = dir.join("zoo.safetensors");
    save_weights(&z, &zoo, "zoo-embedding", false).unwrap();
    let e = Embedder::trained(&z, &EmbeddingConfig::default()).unwrap();
    assert_eq!(e.prep, Preparation::for_config(&EmbeddingConfig::default()));
    let odd = dir.join("odd.safetensors");
    save_weights(&odd, &zoo, "resnet-9000", false).unwrap();
    let err = Embedder::trained(&odd, &EmbeddingConfig::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("odd.safetensors") && err.contains("resnet-9000") && err.contains(MODEL_METADATA),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--init face-api` fine-tunes the package's descriptor and `verify --weights` reads the
/// result back as that architecture (skipped, with a note, when the package is not cached).
#[test]
fn fine_tuning_face_api_round_trips() {
    let cache = fovea::models::zoo::face_api::default_dir();
    if !cache.join(fovea::models::zoo::face_api::DESCRIPTOR_MANIFEST).is_file() {
        eprintln!(
            "note: face-api is not cached in {}; run tools/pretrained/fetch.sh",
            cache.display()
        );
        return;
    }
    let dir = temp("tune");
    let data = dir.join("faces");
    tiny_faces(&data);
    let (w, m) = (dir.join("w.safetensors"), dir.join("m.json"));
    let d = data.to_str().unwrap();
    let o = fovea(&[
        "faces",
        "train",
        "--data",
        d,
        "--test-subjects",
        "3,4",
        "--init",
        "face-api",
        "--pretrained-dir",
        cache.to_str().unwrap(),
        "--epochs",
        "1",
        "--pk",
        "2x2",
        "--save",
        w.to_str().unwrap(),
        "--metrics-json",
        m.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let json = read_json(&m);
    assert_eq!(json["init"], "face-api");
    assert_eq!(json["align"], true, "fine-tuning face-api aligns by default");
    assert_eq!(
        json["tune_layers"],
        serde_json::json!(["fc"]),
        "and trains only its projection"
    );
    let untuned = json["untuned"]["auc"].as_f64().unwrap_or(f64::NAN);
    assert!(
        (0.0..=1.0).contains(&untuned),
        "the untuned descriptor's AUC: {untuned}"
    );
    assert_eq!(json["loss"], "batch-hard");
    assert_eq!(json["history"].as_array().map(Vec::len), Some(1));
    let meta = fovea::engine::checkpoint::read_safetensors_metadata(&w).unwrap();
    assert_eq!(meta.get("faces_model").map(String::as_str), Some("face-api"));
    assert_eq!(meta.get("faces_align").map(String::as_str), Some("blazeface-eyes"));
    let (e, v) = (dir.join("e.npy"), dir.join("v.json"));
    let o = fovea(&[
        "faces",
        "verify",
        "--data",
        d,
        "--test-subjects",
        "3,4",
        "--weights",
        w.to_str().unwrap(),
        "--embeddings",
        e.to_str().unwrap(),
        "--metrics-json",
        v.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(fovea::engine::npy::read_f32(&e).unwrap().shape, vec![20, 128]);
    // verify's figures are train's: the same weights and preparation (alignment included).
    assert_eq!(read_json(&v)["auc"], json["auc"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The aligner finds every embedded ORL face with the shipped BlazeFace, and in each chip it
/// cuts, BlazeFace finds the eyes again where the chip geometry put them (within 4 px of 150).
#[test]
fn aligned_chips_have_the_eyes_where_the_geometry_says() {
    use fovea::models::tasks::detection::blazeface::{BlazeFaceSpec, detect_faces};
    use fovea::models::tasks::faces::align::{Aligner, ChipGeometry, DETECTOR_FILE};
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/pretrained");
    let geometry = ChipGeometry::face_api();
    let aligner = Aligner::find(&[&shipped], geometry).unwrap();
    let set = fovea::models::data::orl::load_orl(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("data/faces/att_faces_s1_s2.tar.gz"),
    )
    .unwrap();
    let faces: Vec<_> = set.images.iter().step_by(3).cloned().collect();
    let device = common::device();
    let (chips, stats) = aligner.align(&device, &faces).unwrap();
    assert_eq!((stats.aligned, stats.missed), (faces.len(), 0));
    let detector = fovea::import::tflite::load(shipped.join(DETECTOR_FILE)).unwrap();
    let s = geometry.size as f32;
    let want_right = (s * (0.5 - geometry.eye_distance / 2.0), s * geometry.eye_y);
    let want_left = (s * (0.5 + geometry.eye_distance / 2.0), s * geometry.eye_y);
    let mut errors = Vec::new();
    for (i, chip) in chips.iter().enumerate() {
        assert_eq!((chip.width, chip.height, chip.channels), (150, 150, 3));
        let found = detect_faces(&device, &detector, &BlazeFaceSpec::short_range(), chip).unwrap();
        let f = found.first().unwrap_or_else(|| panic!("chip {i}: no face"));
        for (got, want) in [(f.keypoints[0], want_right), (f.keypoints[1], want_left)] {
            errors.push(((got.0 - want.0).powi(2) + (got.1 - want.1).powi(2)).sqrt());
        }
    }
    // BlazeFace's keypoints move by a few pixels between a photo and its chip (its input is
    // 128 px): on average the eyes land within 10% of their distance (49.5 px), none beyond 20%.
    let mean = errors.iter().sum::<f32>() / errors.len() as f32;
    let max = errors.iter().fold(0f32, |m, &e| m.max(e));
    eprintln!(
        "eye placement error over {} eyes: mean {mean:.2} px, max {max:.2} px",
        errors.len()
    );
    assert!(
        mean < 5.0 && max < 10.0,
        "eyes misplaced: mean {mean} px, max {max} px ({errors:?})"
    );
}
