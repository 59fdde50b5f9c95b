//! The general training core on the GPU against the reference interpreter: a two-output model
//! with a custom loss, sample weights, per-pixel sparse labels and the new losses; trainable
//! inputs with frozen weights; input gradients; and the errors of bad configurations and data.

mod common;

use common::device;
use fovea::engine::{CompiledModel, FitOptions, NamedArrays, Verbosity};
use fovea::graph::init::Rng;
use fovea::graph::interp::Feeds;
use fovea::graph::ir::{BinaryOp, Op};
use fovea::graph::layers::*;
use fovea::graph::train::*;
use fovea::graph::{Functional, Model, Tensor};

/// A two-output model: class logits `(3,)` and a box `(4,)`, with batch norm in the trunk.
fn two_output_model(seed: u64) -> Model {
    let mut f = Functional::new("two_out");
    let x = f.input(Input::new(&[6, 6, 2]).name("image"));
    let h = f.call(Conv2D::new(4, 3).padding("same").activation("relu"), &[x]);
    let h = f.call(BatchNormalization::new(), &[h]);
    let h = f.call(Flatten::new(), &[h]);
    let c = f.call(Dense::new(3).name("classes"), &[h]);
    let b = f.call(Dense::new(4).activation("sigmoid").name("box"), &[h]);
    f.build(&[c, b], seed).expect("two-output model")
}

fn tensor(shape: &[usize], data: Vec<f32>) -> Tensor {
    Tensor::new(shape.to_vec(), data, "test").unwrap()
}

fn data(n: usize, seed: u64) -> NamedArrays {
    let mut rng = Rng::new(seed);
    let image = common::random(&mut rng, n * 72, -1.0, 1.0);
    let classes = (0..n).map(|i| (i % 3) as f32).collect();
    let boxes = common::random(&mut rng, n * 4, 0.0, 1.0);
    let present = (0..n).map(|i| (i % 2) as f32).collect();
    let weights = common::random(&mut rng, n, 0.5, 2.0);
    NamedArrays::new()
        .with("image", tensor(&[n, 6, 6, 2], image))
        .with("classes", tensor(&[n], classes))
        .with("box", tensor(&[n, 4], boxes))
        .with("present", tensor(&[n], present))
        .with(SAMPLE_WEIGHT, tensor(&[n], weights))
}

/// Cross-entropy on the classes, a custom Huber box loss masked by "present" (weight 2), a
/// focal loss on the box (weight 0.5), and a custom metric.
fn config() -> CompileConfig {
    let box_loss = GraphFn::new(|ctx| {
        let pred = ctx.output("box")?;
        let truth = ctx.target("box", &[4])?;
        let present = ctx.target("present", &[])?;
        let per = Loss::Huber { delta: 0.5 }.elements(ctx.graph, pred, truth, None)?;
        ctx.graph.push(Op::Binary(BinaryOp::Mul), &[per, present], "box_loss")
    });
    let mean_box = GraphFn::new(|ctx| {
        let pred = ctx.output("box")?;
        Ok(pred)
    });
    let mut cfg = CompileConfig::with_terms(
        vec![
            LossTerm::on(
                "classes",
                Loss::SparseCategoricalCrossentropy { from_logits: true },
                1.0,
            ),
            LossTerm::custom("masked_box", 2.0, box_loss),
            LossTerm::on(
                "box",
                Loss::BinaryFocal {
                    alpha: Some(0.25),
                    gamma: 2.0,
                    from_logits: false,
                },
                0.5,
            ),
        ],
        Optimizer::sgd_momentum(0.1, 0.9, false),
        vec![
            MetricTerm::on("classes", Metric::Accuracy),
            MetricTerm::custom("mean_box", mean_box),
        ],
    );
    cfg.sample_weights = true;
    cfg
}

fn quiet(epochs: usize, batch_size: usize) -> FitOptions {
    FitOptions {
        epochs,
        batch_size,
        shuffle: false,
        verbosity: Verbosity::Silent,
        ..FitOptions::default()
    }
}

/// Feeds of one whole-data step in the interpreter (class targets one-hot).
fn reference_feeds(step: &StepGraph, model: &Model, d: &NamedArrays) -> Feeds {
    let mut feeds: Feeds = model
        .params
        .iter()
        .chain(step.slots.iter())
        .map(|p| (p.name.clone(), p.value.to_f64()))
        .collect();
    for (name, _) in &step.inputs {
        feeds.insert(name.clone(), d.get(name).unwrap().to_f64());
    }
    for spec in &step.targets {
        let t = d.get(&spec.name).unwrap();
        let v = match spec.classes {
            None => t.to_f64(),
            Some(c) => {
                let mut v = vec![0.0; t.data.len() * c];
                for (i, &l) in t.data.iter().enumerate() {
                    v[i * c + l as usize] = 1.0;
                }
                v
            }
        };
        feeds.insert(target_input(&spec.name), v);
    }
    if step.sample_weight {
        feeds.insert(SAMPLE_WEIGHT.into(), d.get(SAMPLE_WEIGHT).unwrap().to_f64());
    }
    feeds
}

#[test]
fn two_outputs_with_a_custom_loss_train_as_the_interpreter_does() {
    let n = 6;
    let d = data(n, 5);
    let cfg = config();
    let model = two_output_model(11);
    let before = model.params.clone();
    let step = train_step(&model, n, &cfg).unwrap();
    assert_eq!(
        step.output_names,
        [
            "loss",
            "classes_loss",
            "masked_box",
            "box_loss",
            "classes_accuracy",
            "mean_box"
        ]
    );
    // Reference: three SGD-momentum steps on the whole data.
    let mut feeds = reference_feeds(&step, &model, &d);
    let mut ref_losses = Vec::new();
    for s in 0..3u64 {
        let (lr, alpha) = cfg.optimizer.hyper(s);
        feeds.insert(LEARNING_RATE.into(), vec![lr as f64]);
        feeds.insert(STEP_SIZE.into(), vec![alpha as f64]);
        ref_losses.push(reference_step(&step.graph, &mut feeds).unwrap()[0][0]);
    }
    // GPU: fit, three epochs of one whole batch each.
    let mut cm = CompiledModel::new(&device(), model, cfg).unwrap();
    let h = cm.fit_arrays(&d, &quiet(3, n)).unwrap();
    let losses = h.series("loss");
    for (g, r) in losses.iter().zip(&ref_losses) {
        assert!((g - r).abs() < 1e-4 * (1.0 + r.abs()), "loss {g} vs reference {r}");
    }
    let trained = cm.model().unwrap();
    for p in before.iter() {
        let want = &feeds[&p.name];
        let got = &trained.params.get(&p.name).unwrap().value.data;
        let size = want
            .iter()
            .zip(&p.value.data)
            .map(|(w, b)| (w - *b as f64).abs())
            .fold(0.0, f64::max);
        let err = want
            .iter()
            .zip(got)
            .map(|(w, g)| (w - *g as f64).abs())
            .fold(0.0, f64::max);
        assert!(
            err <= 1e-3 * size.max(1e-6) + 1e-7,
            "{}: update differs from the reference by {err:.3e} (update size {size:.3e})",
            p.name
        );
    }
}

#[test]
fn loss_terms_are_weighted_and_sample_weights_scale_them() {
    let n = 4;
    let d = data(n, 7);
    let model = two_output_model(2);
    let cfg = config();
    let step = eval_step(&model, n, &cfg).unwrap();
    let feeds = reference_feeds(&step, &model, &d);
    let out = fovea::graph::interp::evaluate(&step.graph, &feeds).unwrap();
    let (total, terms) = (out[0][0], [out[1][0], out[2][0], out[3][0]]);
    let want = terms[0] + 2.0 * terms[1] + 0.5 * terms[2];
    assert!((total - want).abs() < 1e-9, "{total} vs {want}");
    // Doubling every sample weight doubles every term.
    let mut d2 = d.clone();
    for (k, t) in d2.arrays.iter_mut() {
        if k == SAMPLE_WEIGHT {
            t.data.iter_mut().for_each(|w| *w *= 2.0);
        }
    }
    let out2 = fovea::graph::interp::evaluate(&step.graph, &reference_feeds(&step, &model, &d2)).unwrap();
    assert!((out2[0][0] - 2.0 * total).abs() < 1e-9);
    // The GPU evaluates the same.
    let mut cm = CompiledModel::new(&device(), model, cfg).unwrap();
    let got = cm.evaluate_arrays(&d, 3).unwrap();
    // Batches of 3 then 1 average to the whole-data value.
    assert!(
        (got[0].1 - total).abs() < 1e-4 * (1.0 + total.abs()),
        "{:?} vs {total}",
        got[0]
    );
}

#[test]
fn bad_configurations_and_data_are_errors_naming_the_culprit() {
    let dev = device();
    // A loss naming an output the model lacks.
    let cfg = CompileConfig::with_terms(
        vec![LossTerm::on("boxes", Loss::MeanSquaredError, 1.0)],
        Optimizer::sgd(0.1),
        vec![],
    );
    let e = CompiledModel::new(&dev, two_output_model(1), cfg)
        .unwrap_err()
        .to_string();
    assert!(e.contains("boxes_loss") && e.contains("'classes', 'box'"), "{e}");
    // A built-in loss without an output name on a two-output model.
    let cfg = CompileConfig::new(Loss::MeanSquaredError, Optimizer::sgd(0.1), vec![]);
    let e = CompiledModel::new(&dev, two_output_model(1), cfg)
        .unwrap_err()
        .to_string();
    assert!(e.contains("2 outputs"), "{e}");
    // A frozen layer's name given as a trainable input.
    let mut cfg = config();
    cfg.trainable_inputs = vec!["classes".into()];
    let e = CompiledModel::new(&dev, two_output_model(1), cfg)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("'classes' is not a model input") && e.contains("set_trainable"),
        "{e}"
    );
    // Targets of the wrong shape, a missing target, an unknown field, a bad class index.
    let mut cm = CompiledModel::new(&dev, two_output_model(1), config()).unwrap();
    let mut d = data(4, 1);
    d.arrays.retain(|(k, _)| k != "box");
    d = d.with("box", tensor(&[4, 3], vec![0.0; 12]));
    let e = cm.fit_arrays(&d, &quiet(1, 2)).unwrap_err().to_string();
    assert!(e.contains("box") && e.contains("(4, 4)") && e.contains("(4, 3)"), "{e}");
    let mut d = data(4, 1);
    d.arrays.retain(|(k, _)| k != "present");
    let e = cm.fit_arrays(&d, &quiet(1, 2)).unwrap_err().to_string();
    assert!(e.contains("present"), "{e}");
    let d = data(4, 1).with("boxes", tensor(&[4], vec![0.0; 4]));
    let e = cm.fit_arrays(&d, &quiet(1, 2)).unwrap_err().to_string();
    assert!(e.contains("boxes") && e.contains("neither"), "{e}");
    let mut d = data(4, 1);
    for (k, t) in d.arrays.iter_mut() {
        if k == "classes" {
            t.data[2] = 3.0;
        }
    }
    let e = cm.fit_arrays(&d, &quiet(1, 2)).unwrap_err().to_string();
    assert!(e.contains("classes") && e.contains("label 3"), "{e}");
    assert_eq!(cm.steps_done(), 0, "nothing ran");
}

/// A tiny fixed "feature network": conv + relu, every weight frozen.
fn frozen_features(seed: u64) -> Model {
    let mut f = Functional::new("features");
    let x = f.input(Input::new(&[5, 5, 3]).name("image"));
    let h = f.call(Conv2D::new(4, 3).padding("same").activation("relu").name("conv"), &[x]);
    let out = f.call(Conv2D::new(2, 1).name("head"), &[h]);
    let mut m = f.build(&[out], seed).unwrap();
    m.set_all_trainable(false).unwrap();
    m
}

#[test]
fn a_trainable_input_is_optimised_through_frozen_weights() {
    let model = frozen_features(4);
    let weights = model.params.clone();
    let target_model = frozen_features(4);
    let mut rng = Rng::new(9);
    let goal_image = tensor(&[1, 5, 5, 3], common::random(&mut rng, 75, 0.0, 1.0));
    let goal = fovea::engine::predict(&device(), &target_model, &goal_image, 1).unwrap();
    let mut cfg = CompileConfig::with_terms(
        vec![LossTerm::on("head", Loss::MeanSquaredError, 1.0)],
        Optimizer::adam(0.05),
        vec![],
    );
    cfg.trainable_inputs = vec!["image".into()];
    let mut cm = CompiledModel::new(&device(), model, cfg.clone()).unwrap();
    let start = tensor(&[1, 5, 5, 3], vec![0.5; 75]);
    cm.set_variable("image", &start).unwrap();
    let targets = NamedArrays::new().with("head", goal);
    let log = cm.train_steps(60, &targets).unwrap();
    let (first, last) = (log[0][0].1, log[59][0].1);
    assert!(last < 0.2 * first, "the loss did not fall: {first} -> {last}");
    let image = cm.variable("image", 1).unwrap();
    assert_ne!(image, start);
    // Every weight is bit-identical.
    let after = cm.model().unwrap();
    assert_eq!(after.params, weights, "frozen weights moved");
    // The first step matches the interpreter's.
    let model = frozen_features(4);
    let step = train_step(&model, 1, &cfg).unwrap();
    assert!(step.variables.iter().any(|(n, _)| n == &variable_name("image")));
    assert!(
        step.slots.iter().all(|p| p.name.ends_with("image/variable")),
        "slots only for the image"
    );
    // Asking for a variable that is not one is an error.
    assert!(cm.variable("head", 1).is_err());
}

#[test]
fn input_gradients_match_the_interpreter() {
    let mut model = frozen_features(6);
    model.set_all_trainable(true).unwrap();
    let n = 2;
    let mut rng = Rng::new(3);
    let x = tensor(&[n, 5, 5, 3], common::random(&mut rng, n * 75, -1.0, 1.0));
    let y = tensor(&[n, 5, 5, 2], common::random(&mut rng, n * 50, -1.0, 1.0));
    let cfg = CompileConfig::new(Loss::MeanSquaredError, Optimizer::sgd(0.1), vec![]);
    let step = input_gradient_step(&model, n, &cfg, "image").unwrap();
    let mut feeds: Feeds = model
        .params
        .iter()
        .map(|p| (p.name.clone(), p.value.to_f64()))
        .collect();
    feeds.insert("image".into(), x.to_f64());
    feeds.insert(target_input("head"), y.to_f64());
    let want = fovea::graph::interp::evaluate(&step.graph, &feeds).unwrap();
    let want = want.last().unwrap();
    let mut cm = CompiledModel::new(&device(), model, cfg).unwrap();
    let d = NamedArrays::new().with("image", x.clone()).with("head", y);
    let got = cm.gradient_wrt_input("image", &d).unwrap();
    assert_eq!(got.shape, x.shape);
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(scale > 0.0);
    for (g, w) in got.data.iter().zip(want) {
        assert!((*g as f64 - w).abs() <= 1e-4 * scale, "{g} vs {w}");
    }
}

#[test]
fn per_pixel_sparse_labels_and_dice_train_a_segmentation_head() {
    let mut f = Functional::new("seg");
    let x = f.input(Input::new(&[8, 8, 1]).name("image"));
    let h = f.call(Conv2D::new(4, 3).padding("same").activation("relu"), &[x]);
    let out = f.call(Conv2D::new(2, 1).name("mask"), &[h]);
    let model = f.build(&[out], 1).unwrap();
    let n = 8;
    let mut rng = Rng::new(2);
    let img = common::random(&mut rng, n * 64, 0.0, 1.0);
    let labels: Vec<f32> = img.iter().map(|&v| if v > 0.5 { 1.0 } else { 0.0 }).collect();
    let d = NamedArrays::new()
        .with("image", tensor(&[n, 8, 8, 1], img))
        .with("mask", tensor(&[n, 8, 8], labels));
    let cfg = CompileConfig::with_terms(
        vec![
            LossTerm::on("mask", Loss::SparseCategoricalCrossentropy { from_logits: true }, 1.0),
            LossTerm::custom(
                "dice",
                1.0,
                GraphFn::new(|ctx| {
                    let y = ctx.output("mask")?;
                    let t = ctx.class_target("mask", &[8, 8], 2)?;
                    dice_per_sample(ctx.graph, y, t, 1.0, true)
                }),
            ),
        ],
        Optimizer::adam(0.05),
        vec![MetricTerm::on("mask", Metric::Accuracy)],
    );
    let mut cm = CompiledModel::new(&device(), model, cfg).unwrap();
    let h = cm.fit_arrays(&d, &quiet(30, 8)).unwrap();
    let acc = h.series("mask_accuracy");
    let loss = h.series("loss");
    assert!(loss[29] < 0.5 * loss[0], "loss {loss:?}");
    assert!(acc[29] > 0.9, "per-pixel accuracy {acc:?}");
}

#[test]
fn fine_tuning_freezes_a_backbone_then_unfreezes_it() {
    let n = 6;
    let d = data(n, 3);
    let mut cm = CompiledModel::new(&device(), two_output_model(8), config()).unwrap();
    let conv = |cm: &mut CompiledModel| cm.model().unwrap().params.get("conv2d/kernel").unwrap().value.clone();
    let head = |cm: &mut CompiledModel| cm.model().unwrap().params.get("classes/kernel").unwrap().value.clone();
    let (c0, h0) = (conv(&mut cm), head(&mut cm));
    cm.set_trainable("conv2d", false).unwrap();
    cm.set_trainable("batch_normalization", false).unwrap();
    cm.fit_arrays(&d, &quiet(2, 3)).unwrap();
    let (c1, h1) = (conv(&mut cm), head(&mut cm));
    assert_eq!(c0, c1, "the frozen backbone is bit-identical");
    assert_ne!(h0, h1, "the head trained");
    cm.set_all_trainable(true).unwrap();
    cm.fit_arrays(&d, &quiet(1, 3)).unwrap();
    assert_ne!(conv(&mut cm), c1, "unfrozen, the backbone trains");
    assert!(cm.set_trainable("no_such_layer", false).is_err());
}

/// Serves the rows of named arrays one at a time (the streaming path, no augmentation).
struct Rows(NamedArrays);

impl fovea::engine::dataset::Dataset for Rows {
    fn len(&self) -> usize {
        self.0.samples().unwrap()
    }

    fn get(&self, index: usize, _rng: &mut Rng) -> Result<fovea::engine::dataset::Example, String> {
        let b = self.0.gather(&[index]);
        let mut e = fovea::engine::dataset::Example::default();
        for f in b.fields {
            let shape = f.value.shape[1..].to_vec();
            e = e.with(
                &f.name,
                Tensor {
                    shape,
                    data: f.value.data,
                },
            );
        }
        Ok(e)
    }
}

#[test]
fn streaming_fit_matches_fit_on_arrays_whatever_the_worker_count() {
    let d = data(10, 4);
    let opts = |workers| FitOptions {
        workers,
        shuffle: true,
        seed: 3,
        ..quiet(2, 4)
    };
    let run_arrays = || {
        let mut cm = CompiledModel::new(&device(), two_output_model(5), config()).unwrap();
        cm.fit_arrays(&d, &opts(1)).unwrap();
        cm.model().unwrap().params.clone()
    };
    let run_stream = |workers| {
        let mut cm = CompiledModel::new(&device(), two_output_model(5), config()).unwrap();
        let h = cm
            .fit_dataset(std::sync::Arc::new(Rows(d.clone())), &opts(workers))
            .unwrap();
        assert!(h.epochs.iter().all(|e| e.data_wait_seconds >= 0.0));
        cm.model().unwrap().params.clone()
    };
    let want = run_arrays();
    assert_eq!(run_stream(1), want, "one worker");
    assert_eq!(run_stream(3), want, "three workers");
}
