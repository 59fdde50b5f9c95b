//! Segmentation end to end on the device: the membrane loss against a direct computation,
//! overlap-tile inference against whole-image prediction, a short U-Net training run, and the
//! `fovea segment` command's outputs and bad-input errors (nothing written on error).

mod common;

use common::{fovea, text};

use fovea::models::vision::read_image;
use std::path::{Path, PathBuf};

use fovea::engine::NamedArrays;
use fovea::graph::Tensor;
use fovea::graph::layers::{Conv2D, Input};
use fovea::graph::train::Schedule;
use fovea::graph::{Functional, Model};
use fovea::models::data::membrane::load_membrane;
use fovea::models::tasks::segmentation::loss::LossWeights;
use fovea::models::tasks::segmentation::tiles::TileSpec;
use fovea::models::tasks::segmentation::train::{TrainOptions, compile, train};
use fovea::models::tasks::segmentation::{data, infer, model::Arch, model::NetSpec};
use fovea::models::vision::Image;
use fovea::models::zoo::segmentation::{Decoder, OUTPUT, UNetConfig, unet};

fn embedded() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/membrane")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fovea-seg-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn the_membrane_loss_matches_a_direct_computation() {
    // A 1x1 convolution with kernel 1 and bias 0 passes the input through as the logit.
    let mut f = Functional::new("pass");
    let x = f.input(Input::new(&[3, 5, 1]).name("image"));
    let y = f.call(Conv2D::new(1, 1).name(OUTPUT), &[x]);
    let mut model: Model = f.build(&[y], 0).unwrap();
    model
        .set_weight("mask/kernel", Tensor::new(vec![1, 1, 1, 1], vec![1.0], "k").unwrap())
        .unwrap();
    let weights = LossWeights {
        bce: 1.0,
        dice: 0.5,
        membrane_weight: 3.0,
        cell_weight: 0.5,
    };
    let mut cm = compile(&common::device(), model, 1e-3, weights).unwrap();
    let logits: Vec<f32> = (0..30).map(|i| ((i * 7) % 11) as f32 * 0.6 - 3.0).collect();
    let mask: Vec<f32> = (0..30).map(|i| if (i * 5) % 7 < 2 { 0.0 } else { 1.0 }).collect();
    let arrays = NamedArrays::new()
        .with("image", Tensor::new(vec![2, 3, 5, 1], logits.clone(), "x").unwrap())
        .with(OUTPUT, Tensor::new(vec![2, 3, 5, 1], mask.clone(), "y").unwrap());
    let got = cm.evaluate_arrays(&arrays, 2).unwrap();
    let get = |k: &str| {
        got.iter()
            .find(|(n, _)| n == k)
            .unwrap_or_else(|| panic!("{k}: {got:?}"))
            .1
    };
    // Direct: mean over pixels of w * BCE, and per-sample 1 - (2 sum pt + 1)/(sum p + sum t + 1)
    // with p = sigmoid(-x) the membrane probability and t = 1 - mask, averaged over samples.
    let (mut bce, mut dice) = (0.0f64, 0.0f64);
    for s in 0..2 {
        let (mut inter, mut sp, mut st) = (0.0, 0.0, 0.0);
        for i in s * 15..(s + 1) * 15 {
            let (x, z) = (logits[i] as f64, mask[i] as f64);
            let p_cell = 1.0 / (1.0 + (-x).exp());
            let w = if z == 1.0 { 0.5 } else { 3.0 };
            bce += w * -(z * p_cell.ln() + (1.0 - z) * (1.0 - p_cell).ln()) / 30.0;
            let (p, t) = (1.0 - p_cell, 1.0 - z);
            inter += p * t;
            sp += p;
            st += t;
        }
        dice += (1.0 - (2.0 * inter + 1.0) / (sp + st + 1.0)) / 2.0;
    }
    assert!(
        (get("weighted_bce") - bce).abs() < 1e-4,
        "{} vs {bce}",
        get("weighted_bce")
    );
    assert!(
        (get("membrane_dice") - dice).abs() < 1e-4,
        "{} vs {dice}",
        get("membrane_dice")
    );
    assert!((get("loss") - (bce + 0.5 * dice)).abs() < 1e-4, "{got:?}");
}

#[test]
fn overlap_tiles_on_the_device_match_whole_image_prediction_inside() {
    // A depth-1 U-Net sees about 10 pixels around a pixel: with a 12-pixel margin and tile
    // origins on multiples of 4 (so the max-pool windows line up), every kept pixel is exactly
    // what the same weights give on the whole image, away from the image border (where the
    // whole-image net pads with zeros and the tiles mirror).
    let cfg = |side: usize| UNetConfig {
        input: [side, side, 1],
        base_width: 4,
        depth: 1,
        batch_norm: false,
        decoder: Decoder::Transposed,
        classes: 1,
    };
    let tiled_model = unet(&cfg(32), 3).unwrap();
    let mut whole = unet(&cfg(48), 3).unwrap();
    whole.params = tiled_model.params.clone();
    let img = Image::new(48, 48, 1, (0..48 * 48).map(|i| ((i * 13) % 29) as f32 / 29.0).collect()).unwrap();
    let device = common::device();
    let x = Tensor::new(vec![1, 48, 48, 1], img.data.clone(), "x").unwrap();
    let want = fovea::engine::predict(&device, &whole, &x, 1).unwrap();
    let mut cm = compile(&device, tiled_model, 1e-3, LossWeights::default()).unwrap();
    let inference = infer::Inference {
        tiles: TileSpec { tile: 32, margin: 12 },
        batch: 5,
        threshold: 0.5,
        views: infer::Views::One,
    };
    let p = inference.probabilities(&mut cm, &img).unwrap();
    let mut compared = 0;
    for y in 12..36 {
        for xx in 12..36 {
            let z = want.data[y * 48 + xx];
            let sig = 1.0 / (1.0 + (-z).exp());
            assert!(
                (p[y * 48 + xx] - sig).abs() < 1e-4,
                "({xx},{y}): {} vs {sig}",
                p[y * 48 + xx]
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 24 * 24);
    // With test-time views: the mean of the whole-image predictions of the mirrored (and for
    // the dihedral views, transposed) slices, each mapped back (the net is not symmetric, so a
    // wrong mapping shows). View k transposes if bit 2 is set, then mirrors x (bit 0), then y
    // (bit 1); `forward` is where slice pixel (x, y) lands in view k.
    let forward = |x: usize, y: usize, k: usize| {
        let (x, y) = if k & 4 != 0 { (y, x) } else { (x, y) };
        let x = if k & 1 != 0 { 47 - x } else { x };
        let y = if k & 2 != 0 { 47 - y } else { y };
        (x, y)
    };
    for (views, n) in [(infer::Views::Flips, 4), (infer::Views::Dihedral, 8)] {
        let viewed = infer::Inference { views, ..inference };
        let pv = viewed.probabilities(&mut cm, &img).unwrap();
        let mut mean = vec![0.0f32; 48 * 48];
        for k in 0..n {
            let mut data = vec![0.0; 48 * 48];
            for i in 0..48 * 48 {
                let (vx, vy) = forward(i % 48, i / 48, k);
                data[vy * 48 + vx] = img.data[i];
            }
            let z = fovea::engine::predict(&device, &whole, &Tensor::new(vec![1, 48, 48, 1], data, "x").unwrap(), 1)
                .unwrap();
            for (i, m) in mean.iter_mut().enumerate() {
                let (vx, vy) = forward(i % 48, i / 48, k);
                *m += 1.0 / (1.0 + (-z.data[vy * 48 + vx]).exp()) / n as f32;
            }
        }
        let mut differs = false;
        for y in 12..36 {
            for xx in 12..36 {
                let i = y * 48 + xx;
                assert!(
                    (pv[i] - mean[i]).abs() < 1e-4,
                    "{views:?} ({xx},{y}): {} vs {}",
                    pv[i],
                    mean[i]
                );
                differs |= (pv[i] - p[i]).abs() > 1e-3;
            }
        }
        assert!(
            differs,
            "{views:?} changed nothing: the test would not see a wrong mapping"
        );
    }
}

#[test]
fn a_short_unet_run_lowers_the_loss_and_scores_the_slice() {
    let set = load_membrane(&embedded()).unwrap();
    let held = data::read_slices(&set).unwrap();
    let mut net = NetSpec::new(Arch::UNet);
    net.tile = 64;
    net.base_width = 4;
    net.depth = 2;
    let opts = TrainOptions {
        epochs: 6,
        patches_per_epoch: 8,
        batch_size: 4,
        learning_rate: 3e-3,
        eval_every: 3,
        verbosity: fovea::engine::Verbosity::Silent,
        ..TrainOptions::new(net)
    };
    let mut seen = 0;
    let trained = train(&common::device(), set, &held, &opts, |_| seen += 1).unwrap();
    assert_eq!(seen, 6);
    let losses: Vec<f64> = trained.epochs.iter().map(|e| e.loss).collect();
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    assert!(losses[5] < losses[0], "the loss falls: {losses:?}");
    assert!(trained.epochs[3].held_out.is_none());
    let s = trained.epochs[5].held_out.expect("every third epoch is scored");
    for (k, v) in s.pairs() {
        assert!((0.0..=1.0).contains(&v), "{k} = {v}");
    }
}

#[test]
fn the_learning_rate_schedule_drives_the_updates() {
    // Without batch norm every parameter is trained, so a zero learning rate leaves the weights
    // exactly as built and a non-zero one moves them.
    let mut net = NetSpec::new(Arch::UNet);
    net.tile = 64;
    net.base_width = 4;
    net.depth = 2;
    net.batch_norm = false;
    let initial = net.build(5).unwrap().params;
    for (rate, moves) in [(0.0, false), (3e-3, true)] {
        let set = load_membrane(&embedded()).unwrap();
        let opts = TrainOptions {
            epochs: 1,
            patches_per_epoch: 4,
            batch_size: 2,
            learning_rate: 3e-3,
            schedule: Some(Schedule::Constant(rate)),
            seed: 5,
            verbosity: fovea::engine::Verbosity::Silent,
            ..TrainOptions::new(net)
        };
        assert_eq!(opts.steps_per_epoch(), 2);
        let mut trained = train(&common::device(), set, &[], &opts, |_| {}).unwrap();
        let after = trained.model.model().unwrap().params.clone();
        assert_eq!(after != initial, moves, "rate {rate}");
    }
}

/// A copy of the embedded pair as `n` slices (for splits), with `label/0.png` replaced by `bad`.
fn membrane_copy(name: &str, n: usize, bad: Option<&Image>) -> PathBuf {
    let d = tmp(name);
    for sub in ["image", "label"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
        for i in 0..n {
            std::fs::copy(
                embedded().join(format!("{sub}/0.png")),
                d.join(format!("{sub}/{i}.png")),
            )
            .unwrap();
        }
    }
    if let Some(img) = bad {
        fovea::models::vision::write_png(&d.join("label/0.png"), img, fovea::models::vision::BitDepth::Eight).unwrap();
    }
    d
}

#[test]
fn the_command_trains_evaluates_and_predicts() {
    let data = membrane_copy("cli", 3, None);
    let out = tmp("cli-out");
    let (w, m, plot) = (
        out.join("w.safetensors"),
        out.join("train.json"),
        out.join("curves.png"),
    );
    let o = fovea(&[
        "segment",
        "train",
        "--data",
        data.to_str().unwrap(),
        "--test-slices",
        "2",
        "--epochs",
        "2",
        "--patches",
        "4",
        "--tile",
        "64",
        "--base-width",
        "4",
        "--eval-every",
        "1",
        "--save",
        w.to_str().unwrap(),
        "--metrics-json",
        m.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&m).unwrap()).unwrap();
    for k in [
        "pixel_accuracy",
        "dice",
        "iou",
        "miou",
        "v_rand",
        "v_info",
        "v_rand_thinned",
        "v_info_thinned",
    ] {
        assert!(
            json[k].as_f64().is_some_and(|v| (0.0..=1.0).contains(&v)),
            "{k}: {json}"
        );
    }
    assert!(plot.is_file());
    let masks = out.join("masks");
    let em = out.join("eval.json");
    let eval = |slices: &str, extra: &[&str]| {
        let mut args = vec![
            "segment",
            "eval",
            "--data",
            data.to_str().unwrap(),
            "--test-slices",
            slices,
            "--tile",
            "64",
            "--weights",
            w.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        fovea(&args)
    };
    let o = eval(
        "0,2",
        &[
            "--metrics-json",
            em.to_str().unwrap(),
            "--masks",
            masks.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let mask = read_image(&masks.join("2.png")).unwrap();
    assert_eq!((mask.width, mask.height, mask.channels), (128, 128, 1));
    assert!(
        mask.data.iter().all(|&v| v == 0.0 || v == 1.0),
        "mask values other than 0/255"
    );
    assert!(masks.join("0.png").is_file());
    // Bad margins: not a multiple of 16, or leaving no centre of the 64 tile; nothing written.
    let bad_json = out.join("bad-margin.json");
    for (margin, want) in [("8", "multiple of 16"), ("32", "must leave a centre")] {
        let o = eval("0", &["--margin", margin, "--metrics-json", bad_json.to_str().unwrap()]);
        assert!(!o.status.success());
        assert!(
            text(&o).contains("--margin") && text(&o).contains(want),
            "{margin}: {}",
            text(&o)
        );
    }
    assert!(!bad_json.exists());
    let pred = out.join("pred");
    let o = fovea(&[
        "segment",
        "predict",
        embedded().join("image/0.png").to_str().unwrap(),
        "--weights",
        w.to_str().unwrap(),
        "--tile",
        "64",
        "--out",
        pred.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(pred.join("0-mask.png").is_file() && pred.join("0-overlay.png").is_file());
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn bad_inputs_name_the_file_or_argument_and_write_nothing() {
    let out = tmp("bad-out");
    let w = out.join("w.safetensors");
    let m = out.join("m.json");
    let run = |data: &Path, extra: &[&str]| {
        let mut args = vec![
            "segment",
            "train",
            "--data",
            data.to_str().unwrap(),
            "--epochs",
            "1",
            "--tile",
            "64",
            "--save",
            w.to_str().unwrap(),
            "--metrics-json",
            m.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        fovea(&args)
    };
    // Mask values other than 0/255, named.
    let grey = Image::new(
        128,
        128,
        1,
        (0..128 * 128)
            .map(|i| if i % 2 == 0 { 0.0 } else { 128.0 / 255.0 })
            .collect(),
    )
    .unwrap();
    let d = membrane_copy("bad-values", 2, Some(&grey));
    let o = run(&d, &["--test-slices", "1"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("0.png") && text(&o).contains("found 128"),
        "{}",
        text(&o)
    );
    // A mask of another size.
    let small = Image::filled(64, 128, 1, 1.0);
    let d2 = membrane_copy("bad-size", 2, Some(&small));
    let o = run(&d2, &["--test-slices", "1"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("0.png") && text(&o).contains("64x128"),
        "{}",
        text(&o)
    );
    // Bad --test-slices.
    let d3 = membrane_copy("bad-split", 2, None);
    for (spec, want) in [
        ("", "empty entry"),
        ("5", "out of range"),
        ("0,1", "at least one must remain"),
    ] {
        let o = run(&d3, &["--test-slices", spec]);
        assert!(!o.status.success());
        assert!(
            text(&o).contains("--test-slices") && text(&o).contains(want),
            "{spec}: {}",
            text(&o)
        );
    }
    let o = run(&d3, &["--model", "segnet"]);
    assert!(
        text(&o).contains("segnet") && text(&o).contains("unet or deeplab"),
        "{}",
        text(&o)
    );
    assert!(!w.exists() && !m.exists(), "nothing written on error");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
    for dir in [out, d, d2, d3] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn the_selfie_model_masks_a_photo() {
    let out = tmp("selfie");
    let photo = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/raccoon/images/raccoon-31.jpg");
    let o = fovea(&[
        "segment",
        "predict",
        "--pretrained",
        "selfie",
        photo.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let p = read_image(&photo).unwrap();
    let mask = read_image(&out.join("raccoon-31-mask.png")).unwrap();
    assert_eq!((mask.width, mask.height), (p.width, p.height));
    let overlay = read_image(&out.join("raccoon-31-overlay.png")).unwrap();
    assert_eq!((overlay.width, overlay.height), (p.width, p.height));
    let o = fovea(&[
        "segment",
        "predict",
        "--pretrained",
        "deeplabv3",
        photo.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success() && text(&o).contains("deeplabv3"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&out);
}
