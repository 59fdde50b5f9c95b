//! Style transfer: the loss parts on the device against the same formulas on the reference
//! interpreter's activations (f64), that optimisation (L-BFGS and Adam) lowers the style
//! loss, that a transform network trains, saves, loads and applies at any size, and the
//! `fovea style` errors for bad input (nothing written).

mod common;

use common::{fovea, text};

use common::device;
use fovea::graph::init::Rng;
use fovea::graph::interp::{Feeds, evaluate};
use fovea::graph::{Model, Tensor};
use fovea::models::tasks::style::data::to_batch;
use fovea::models::tasks::style::feature_training;
use fovea::models::tasks::style::features::LossNetwork;
use fovea::models::tasks::style::feed_forward::{self, Stylizer, TrainOptions};
use fovea::models::tasks::style::loss::{GramTarget, host_content_loss, host_gram, host_style_loss, host_tv_loss};
use fovea::models::tasks::style::optimize::{Method, OptimizeOptions, Start, loss_parts, optimize};
use fovea::models::vision::Image;
use fovea::models::zoo::style::{FeatureLayers, TransformConfig, random_feature_layers, random_loss_network};

/// A smooth random picture: a few sinusoids per channel plus noise, in `[0, 1]`.
fn picture(w: usize, h: usize, seed: u64) -> Image {
    let mut rng = Rng::new(seed);
    let f: Vec<f64> = (0..9).map(|_| rng.uniform_in(0.5, 4.0)).collect();
    let mut data = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let (u, v) = (x as f64 / w as f64, y as f64 / h as f64);
                let s = (f[c * 3] * u * 6.0 + f[c * 3 + 1] * v * 5.0).sin() * (f[c * 3 + 2] * (u - v) * 4.0).cos();
                data.push((0.5 + 0.35 * s + 0.1 * rng.uniform_in(-1.0, 1.0)).clamp(0.0, 1.0) as f32);
            }
        }
    }
    Image::new(w, h, 3, data).unwrap()
}

/// The loss network's outputs by name, on the reference interpreter.
fn interp_features(model: &Model, image: &Image) -> Vec<(String, Tensor)> {
    let g = model.graph(1).unwrap();
    let mut feeds: Feeds = model
        .params
        .iter()
        .map(|p| (p.name.clone(), p.value.to_f64()))
        .collect();
    feeds.insert("image".into(), to_batch(image).unwrap().to_f64());
    let outs = evaluate(&g, &feeds).unwrap();
    model
        .output_names()
        .into_iter()
        .zip(outs)
        .zip(model.output_shapes())
        .map(|((n, v), s)| {
            let mut shape = vec![1];
            shape.extend(s);
            (
                n,
                Tensor::new(shape, v.iter().map(|x| *x as f32).collect(), "f").unwrap(),
            )
        })
        .collect()
}

fn get<'a>(f: &'a [(String, Tensor)], n: &str) -> &'a Tensor {
    &f.iter().find(|(k, _)| k == n).unwrap().1
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-12)
}

#[test]
fn loss_parts_match_the_formulas_on_the_reference_interpreter() {
    let dev = device();
    let layers = random_feature_layers();
    let net = LossNetwork::Random {
        seed: 3,
        layers: layers.clone(),
    };
    // Odd aspect; the style image gets its own (different) working size.
    let (w, h) = (24, 16);
    let content = picture(w, h, 1);
    let style = picture(40, 40, 2);
    let image = picture(w, h, 5);
    let opts = OptimizeOptions {
        size: 24,
        content_weight: 0.3,
        style_weight: 2.0,
        tv_weight: 0.7,
        ..OptimizeOptions::default()
    };
    let got = loss_parts(&dev, &net, &content, &style, &image, &opts).unwrap();
    // The host side: activations from the interpreter (f64), the formulas of loss.rs's host_*.
    let model = net.build(h, w).unwrap();
    let fc = interp_features(&model, &content);
    let fx = interp_features(&model, &image);
    let style_model = net.build(24, 24).unwrap();
    let fs = interp_features(
        &style_model,
        &fovea::models::tasks::style::data::fit(&style, 24, 24).unwrap(),
    );
    let targets: Vec<GramTarget> = layers
        .style
        .iter()
        .map(|l| GramTarget {
            layer: l.clone(),
            gram: host_gram(get(&fs, l)).remove(0),
        })
        .collect();
    let feats: Vec<&Tensor> = layers.style.iter().map(|l| get(&fx, l)).collect();
    let style_loss = host_style_loss(&feats, &targets);
    let content_loss = host_content_loss(get(&fx, &layers.content), get(&fc, &layers.content));
    let tv = host_tv_loss(&to_batch(&image).unwrap());
    assert!(style_loss > 0.0 && content_loss > 0.0 && tv > 0.0);
    assert!(rel(got.style, style_loss) < 2e-3, "style {} vs {style_loss}", got.style);
    assert!(
        rel(got.content, content_loss) < 2e-3,
        "content {} vs {content_loss}",
        got.content
    );
    assert!(rel(got.tv, tv) < 1e-4, "tv {} vs {tv}", got.tv);
    let total = 0.3 * content_loss + 2.0 * style_loss + 0.7 * tv;
    assert!(rel(got.total, total) < 2e-3, "total {} vs {total}", got.total);
    // The content image against itself has no content loss.
    let zero = loss_parts(&dev, &net, &content, &style, &content, &opts).unwrap();
    assert!(zero.content < 1e-9, "{zero:?}");
    // The host Gram by hand on a 1x1x2x2 tensor: rows (1, 2) and (3, 4) -> [[5, 7], [7, 10]].
    let t = Tensor::new(vec![1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0], "t").unwrap();
    assert_eq!(host_gram(&t)[0].data, vec![5.0, 7.0, 7.0, 10.0]);
}

#[test]
fn a_few_steps_of_lbfgs_and_of_adam_lower_the_style_loss() {
    let dev = device();
    let net = LossNetwork::default();
    let content = picture(32, 32, 7);
    let style = picture(32, 32, 8);
    for (method, start, factor) in [
        (Method::Lbfgs, Start::Content, 0.5),
        (Method::Adam { learning_rate: 0.03 }, Start::Content, 0.9),
    ] {
        let opts = OptimizeOptions {
            size: 32,
            steps: 8,
            method,
            start,
            coarse_to_fine: false,
            progress_every: 4,
            ..OptimizeOptions::default()
        };
        let mut seen = Vec::new();
        let r = optimize(&dev, &net, &content, &style, &opts, |p| {
            seen.push((p.step, p.loss.style, p.image.is_some()))
        })
        .unwrap();
        assert_eq!((r.image.width, r.image.height), (32, 32));
        assert!(r.image.data.iter().all(|v| (0.0..=1.0).contains(v)));
        assert!(
            r.end.style < factor * r.start.style,
            "{method:?}: {:?} -> {:?}",
            r.start,
            r.end
        );
        assert!(seen.iter().any(|(s, _, img)| *s == 4 && *img), "{seen:?}");
        assert!(seen.last().is_some_and(|(s, _, img)| *s <= 8 && *img), "{seen:?}");
    }
    // From noise: the result is far from the content image (its content loss is large).
    let opts = OptimizeOptions {
        size: 32,
        steps: 2,
        start: Start::Noise { seed: 4 },
        coarse_to_fine: false,
        ..OptimizeOptions::default()
    };
    let r = optimize(&dev, &net, &content, &style, &opts, |_| {}).unwrap();
    assert!(
        r.end.content > 0.1 && r.start.content < 1e-9,
        "{:?} {:?}",
        r.start,
        r.end
    );
}

#[test]
fn a_transform_network_trains_saves_and_applies_at_any_size() {
    let dev = device();
    let dir = std::env::temp_dir().join(format!("fovea-style-ff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut photos = Vec::new();
    for k in 0..4 {
        let p = dir.join(format!("photo{k}.png"));
        let bytes = fovea::models::vision::image_io::encode_png(
            &picture(20 + 4 * k, 18, 20 + k as u64),
            fovea::models::vision::BitDepth::Eight,
        )
        .unwrap();
        std::fs::write(&p, bytes).unwrap();
        photos.push(p);
    }
    let style = picture(24, 24, 9);
    let opts = TrainOptions {
        size: 16,
        epochs: 4,
        batch_size: 2,
        learning_rate: 5e-3,
        transform: TransformConfig {
            widths: [4, 8, 8],
            residual_blocks: 1,
        },
        ..TrainOptions::default()
    };
    let mut seen = Vec::new();
    let t = feed_forward::train(&dev, &style, &photos, &opts, |e| seen.push(e.clone())).unwrap();
    assert_eq!(t.epochs.len(), 4);
    let (first, last) = (&t.epochs[0], &t.epochs[3]);
    assert!(
        first.loss.is_finite() && last.loss < first.loss,
        "{first:?} -> {last:?}"
    );
    // The same run with a warm-up and cosine decay: the schedule reaches the optimiser (the
    // weights differ from the constant rate's, every other setting and seed equal).
    let cosine = TrainOptions {
        cosine: true,
        ..opts.clone()
    };
    let tc = feed_forward::train(&dev, &style, &photos, &cosine, |_| {}).unwrap();
    assert!(tc.epochs.iter().all(|e| e.loss.is_finite()), "{:?}", tc.epochs);
    let differs = t
        .weights
        .iter()
        .any(|p| tc.weights.get(&p.name).map(|q| &q.value.data) != Some(&p.value.data));
    assert!(differs, "the cosine schedule changed nothing");
    // `style_size` reaches the Gram targets: one epoch scores a different style loss.
    let one = TrainOptions {
        epochs: 1,
        ..opts.clone()
    };
    let at_crop = feed_forward::train(&dev, &style, &photos, &one, |_| {}).unwrap();
    let larger = TrainOptions {
        style_size: Some(40),
        ..one
    };
    let at_40 = feed_forward::train(&dev, &style, &photos, &larger, |_| {}).unwrap();
    let (a, b) = (at_crop.epochs[0].style, at_40.epochs[0].style);
    assert!(a.is_finite() && b.is_finite() && a != b, "style size 16 {a} vs 40 {b}");
    let path = dir.join("w.safetensors");
    feed_forward::save(&path, &t.weights).unwrap();
    let s = Stylizer::load(&path).unwrap();
    // A size that is not a multiple of 4 comes back at its own size.
    let out = s.apply(&dev, &picture(23, 17, 3)).unwrap();
    assert_eq!((out.width, out.height, out.channels), (23, 17, 3));
    assert!(out.data.iter().all(|v| (0.0..=1.0).contains(v)));
    let e = s.apply(&dev, &picture(12, 40, 3)).unwrap_err().to_string();
    assert!(e.contains("12x40") && e.contains("16"), "{e}");
    let e = Stylizer::load(&photos[0]).unwrap_err().to_string();
    assert!(e.contains("photo0.png"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_input_is_an_error_naming_it_and_writes_nothing() {
    let dir = std::env::temp_dir().join(format!("fovea-style-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.png");
    std::fs::write(
        &good,
        fovea::models::vision::image_io::encode_png(&picture(32, 32, 1), fovea::models::vision::BitDepth::Eight)
            .unwrap(),
    )
    .unwrap();
    let broken = dir.join("broken.jpg");
    std::fs::write(&broken, b"\xff\xd8\xff\xe0 not really a jpeg").unwrap();
    let out = dir.join("out.png");
    let metrics = dir.join("m.json");
    let (g, b, o, m) = (
        good.to_str().unwrap(),
        broken.to_str().unwrap(),
        out.to_str().unwrap(),
        metrics.to_str().unwrap(),
    );
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "style",
                "optimize",
                "--content",
                b,
                "--style",
                g,
                "--out",
                o,
                "--metrics-json",
                m,
            ],
            "broken.jpg",
        ),
        (
            vec![
                "style",
                "optimize",
                "--content",
                g,
                "--style",
                "/nonexistent/s.jpg",
                "--out",
                o,
            ],
            "s.jpg",
        ),
        (
            vec![
                "style",
                "optimize",
                "--content",
                g,
                "--style",
                g,
                "--out",
                o,
                "--size",
                "8",
            ],
            "--size",
        ),
        (
            vec![
                "style",
                "optimize",
                "--content",
                g,
                "--style",
                g,
                "--out",
                o,
                "--optimizer",
                "sgd",
            ],
            "--optimizer",
        ),
        (
            vec![
                "style",
                "optimize",
                "--content",
                g,
                "--style",
                g,
                "--out",
                "/nonexistent/dir/o.png",
            ],
            "/nonexistent/dir",
        ),
        (
            vec!["style", "train", "--style", g, "--data", "/nonexistent", "--save", o],
            "/nonexistent",
        ),
        (
            vec![
                "style",
                "train",
                "--style",
                g,
                "--data",
                dir.to_str().unwrap(),
                "--save",
                o,
                "--size",
                "10",
            ],
            "--size",
        ),
        (
            vec![
                "style",
                "train",
                "--style",
                g,
                "--data",
                dir.to_str().unwrap(),
                "--save",
                o,
                "--style-size",
                "4",
            ],
            "--style-size",
        ),
        (
            vec![
                "style",
                "train",
                "--style",
                g,
                "--data",
                dir.to_str().unwrap(),
                "--save",
                o,
                "--widths",
                "32,64",
            ],
            "--widths",
        ),
        (vec!["style", "apply", "--weights", g, "--out", o, g], "good.png"),
        (
            vec![
                "style",
                "optimize",
                "--content",
                g,
                "--style",
                g,
                "--out",
                o,
                "--feature-weights",
                g,
                "--metrics-json",
                m,
            ],
            "--feature-weights",
        ),
        (
            vec![
                "style",
                "optimize",
                "--content",
                g,
                "--style",
                g,
                "--out",
                o,
                "--content-layer",
                "conv2",
            ],
            "--content-layer",
        ),
        (vec!["style", "features", "--save", o, "--epochs", "0"], "--epochs"),
        (
            vec!["style", "features", "--save", o, "--data", "/nonexistent"],
            "/nonexistent",
        ),
        (
            vec!["style", "features", "--save", "/nonexistent/dir/w.safetensors"],
            "/nonexistent/dir",
        ),
    ];
    for (args, needle) in cases {
        let r = fovea(&args);
        assert!(!r.status.success(), "{args:?} succeeded");
        assert!(text(&r).contains(needle), "{args:?}: {}", text(&r));
        assert!(!out.exists() && !metrics.exists(), "{args:?} wrote a file");
        // The OS's reason is given once, not once per level of the error chain.
        let t = text(&r);
        if let Some(reason) = ["No such file or directory", "cannot find"]
            .into_iter()
            .find(|k| t.contains(k))
        {
            assert_eq!(t.matches(reason).count(), 1, "{args:?}: {t}");
        }
    }
    // A Keras feature network without the named layer.
    let json = r#"{"class_name": "Functional", "config": {"name": "f", "layers": [
        {"class_name": "InputLayer", "name": "img", "config": {"batch_shape": [null, 32, 32, 3], "name": "img"}, "inbound_nodes": []},
        {"class_name": "Conv2D", "name": "block1_conv1", "config": {"name": "block1_conv1", "filters": 4, "kernel_size": [3, 3],
         "strides": [1, 1], "padding": "same", "activation": "relu", "use_bias": true},
         "inbound_nodes": [[["img", 0, 0, {}]]]}],
        "input_layers": [["img", 0, 0]], "output_layers": [["block1_conv1", 0, 0]]}}"#;
    let model = dir.join("features.json");
    std::fs::write(&model, json).unwrap();
    let r = fovea(&[
        "style",
        "optimize",
        "--content",
        g,
        "--style",
        g,
        "--out",
        o,
        "--features",
        model.to_str().unwrap(),
        "--feature-weights",
        g,
        "--content-layer",
        "block4_conv2",
        "--style-layers",
        "block1_conv1",
    ]);
    assert!(!r.status.success());
    assert!(
        text(&r).contains("block4_conv2") && text(&r).contains("block1_conv1"),
        "{}",
        text(&r)
    );
    assert!(!out.exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn normalising_a_loss_network_gives_unit_channel_means_and_keeps_its_features() {
    let dev = device();
    let layers = random_feature_layers();
    let build = || {
        let mut net = random_loss_network(32, 32, &layers, 3).unwrap();
        // Biases too, so that forgetting to scale them shows.
        let mut rng = Rng::new(5);
        for k in 1..=4 {
            let name = format!("conv{k}/bias");
            let n = net.params.get(&name).unwrap().value.shape[0];
            let b: Vec<f32> = (0..n).map(|_| rng.uniform_in(-0.05, 0.2) as f32).collect();
            net.set_weight(&name, Tensor::new(vec![n], b, "bias").unwrap()).unwrap();
        }
        net
    };
    let (before, mut after) = (build(), build());
    let pictures: Vec<Image> = (0..3).map(|k| picture(32, 32, 40 + k)).collect();
    let mut data = Vec::new();
    for p in &pictures {
        data.extend(to_batch(p).unwrap().data);
    }
    let images = Tensor::new(vec![3, 32, 32, 3], data, "images").unwrap();
    let means = feature_training::normalise(&dev, &mut after, &images).unwrap();
    assert_eq!(
        means.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>(),
        ["conv1", "conv2", "conv3", "conv4"]
    );
    let fb: Vec<_> = pictures.iter().map(|p| interp_features(&before, p)).collect();
    let fa: Vec<_> = pictures.iter().map(|p| interp_features(&after, p)).collect();
    let mut live = 0;
    for (layer, m) in &means {
        let c = m.len();
        let (mut mean_before, mut mean_after) = (vec![0.0f64; c], vec![0.0f64; c]);
        for (b, a) in fb.iter().zip(&fa) {
            let (b, a) = (get(b, layer), get(a, layer));
            let peak = b.data.iter().fold(0.0f32, |x, v| x.max(v.abs())) as f64;
            for (i, (vb, va)) in b.data.iter().zip(&a.data).enumerate() {
                mean_before[i % c] += *vb as f64;
                mean_after[i % c] += *va as f64;
                // The same feature, divided by its channel's mean (dead channels unchanged).
                let scale = if m[i % c] > 1e-6 { m[i % c] } else { 1.0 };
                let (va, vb) = (*va as f64 * scale, *vb as f64);
                assert!((va - vb).abs() <= 1e-4 * peak.max(1e-6), "{layer} [{i}]: {va} vs {vb}");
            }
        }
        let n = (fb.len() * get(&fb[0], layer).data.len() / c) as f64;
        for k in 0..c {
            // The device's means are the interpreter's.
            assert!(
                (mean_before[k] / n - m[k]).abs() <= 1e-4 + 1e-3 * m[k],
                "{layer} channel {k}: mean {} vs {}",
                mean_before[k] / n,
                m[k]
            );
            if m[k] > 1e-6 {
                live += 1;
                assert!(
                    rel(mean_after[k] / n, 1.0) < 2e-3,
                    "{layer} channel {k}: mean after {}",
                    mean_after[k] / n
                );
            }
        }
    }
    assert!(live > 100, "only {live} live channels");
}

#[test]
fn trained_features_from_the_command_drive_an_optimisation() {
    let dir = std::env::temp_dir().join(format!("fovea-style-features-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let weights = dir.join("features.safetensors");
    let metrics = dir.join("features.json");
    let r = fovea(&[
        "style",
        "features",
        "--limit",
        "48",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--quiet",
        "--save",
        weights.to_str().unwrap(),
        "--metrics-json",
        metrics.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", text(&r));
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&metrics).unwrap()).unwrap();
    let acc = m["test_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc), "{m}");
    assert_eq!(m["channel_means"].as_array().unwrap().len(), 4);
    // The file is the loss network's: it loads into every size's network.
    let net = LossNetwork::trained(&weights).unwrap();
    assert_eq!(net.build(48, 64).unwrap().params.len(), 8);
    let photo = dir.join("photo.png");
    std::fs::write(
        &photo,
        fovea::models::vision::image_io::encode_png(&picture(40, 32, 2), fovea::models::vision::BitDepth::Eight)
            .unwrap(),
    )
    .unwrap();
    let (p, out, om) = (photo.to_str().unwrap(), dir.join("out.png"), dir.join("opt.json"));
    let r = fovea(&[
        "style",
        "optimize",
        "--content",
        p,
        "--style",
        p,
        "--out",
        out.to_str().unwrap(),
        "--size",
        "32",
        "--steps",
        "2",
        "--no-coarse-to-fine",
        "--feature-weights",
        weights.to_str().unwrap(),
        "--metrics-json",
        om.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", text(&r));
    assert!(out.exists());
    let om: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&om).unwrap()).unwrap();
    assert!(om["style_loss_end"].as_f64().unwrap().is_finite(), "{om}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn feature_layers_list_content_first_without_repeats() {
    let l = FeatureLayers {
        content: "b".into(),
        style: vec!["a".into(), "b".into(), "c".into()],
    };
    assert_eq!(l.all(), vec!["b", "a", "c"]);
}
