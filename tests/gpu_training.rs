//! Training on the GPU: a whole training step (forward, loss, backward, optimizer update)
//! against the reference interpreter, `fit` lowering the loss on the embedded data, seeded
//! determinism, partial batches, and checkpoints.

mod common;

use common::device;
use fovea::engine::{CompiledModel, Device, DeviceState, FitOptions, Program, Targets, Verbosity, checkpoint};
use fovea::graph::interp::Feeds;
use fovea::graph::layers::*;
use fovea::graph::train::*;
use fovea::graph::{Functional, Model, Sequential, Tensor};
use fovea::models::data::mnist;

/// A model touching most ops: strided and dilated convs, depthwise, batch norm, concat,
/// upsampling, pooling, dense.
fn mixed_model(seed: u64) -> Model {
    let mut f = Functional::new("mixed");
    let x = f.input(Input::new(&[9, 9, 3]));
    let a = f.call(Conv2D::new(5, 3).strides(2).padding("same").activation("relu"), &[x]);
    let b = f.call(
        DepthwiseConv2D::new(3)
            .padding("same")
            .depth_multiplier(2)
            .use_bias(false),
        &[a],
    );
    let b = f.call(BatchNormalization::new(), &[b]);
    let b = f.call(Activation::new("tanh"), &[b]);
    let c = f.call(
        Conv2D::new(4, 3).dilation_rate(2).padding("same").activation("sigmoid"),
        &[a],
    );
    let cat = f.call(Concatenate::new(), &[b, c]);
    let up = f.call(UpSampling2D::new(2).interpolation("bilinear"), &[cat]);
    let t = f.call(Conv2DTranspose::new(3, 3).strides(2).padding("same"), &[up]);
    let p = f.call(MaxPooling2D::new(3).strides(2), &[t]);
    let q = f.call(AveragePooling2D::new(2).padding("same"), &[p]);
    let g = f.call(GlobalAveragePooling2D::new(), &[q]);
    let fl = f.call(Flatten::new(), &[p]);
    let both = f.call(Concatenate::new(), &[g, fl]);
    let out = f.call(Dense::new(4), &[both]);
    f.build(&[out], seed).expect("mixed model")
}

/// The kernels lavapipe gets (CPU-class tile table), chosen explicitly so that the test means
/// the same on every adapter.
#[test]
fn one_training_step_matches_the_reference_interpreter() {
    let cpu = std::sync::Arc::new(Device::with_kernel_class(fovea::kernels::AdapterClass::Cpu).unwrap());
    step_matches_the_reference(&cpu, "cpu-class kernels");
}

/// The kernels a real GPU gets (workgroup-memory tiles, GPU tile table), run on this adapter.
#[test]
fn gpu_class_kernels_train_like_the_reference_interpreter() {
    let gpu = std::sync::Arc::new(Device::with_kernel_class(fovea::kernels::AdapterClass::Gpu).unwrap());
    step_matches_the_reference(&gpu, "gpu-class kernels");
}

fn step_matches_the_reference(device: &std::sync::Arc<Device>, what: &str) {
    for (name, optimizer) in [
        ("sgd", Optimizer::sgd_momentum(0.05, 0.9, true)),
        ("adam", Optimizer::adam(0.01)),
    ] {
        let model = mixed_model(3);
        let cfg = CompileConfig::new(
            Loss::SparseCategoricalCrossentropy { from_logits: true },
            optimizer,
            vec![Metric::Accuracy],
        );
        let batch = 5;
        let step = train_step(&model, batch, &cfg).unwrap();
        let mut rng = fovea::graph::init::Rng::new(17);
        let x: Vec<f32> = (0..batch * 9 * 9 * 3).map(|_| rng.uniform() as f32).collect();
        let mut labels = vec![0f32; batch * 4];
        for i in 0..batch {
            labels[i * 4 + i % 4] = 1.0;
        }
        let (lr, alpha) = cfg.optimizer.hyper(0);
        // Reference.
        let mut feeds: Feeds = model
            .params
            .iter()
            .chain(step.slots.iter())
            .map(|p| (p.name.clone(), p.value.to_f64()))
            .collect();
        let f64s = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<_>>();
        feeds.insert("input_layer".into(), f64s(&x));
        let labels_input = target_input(&step.targets[0].name);
        feeds.insert(labels_input.clone(), f64s(&labels));
        feeds.insert(LEARNING_RATE.into(), vec![lr as f64]);
        feeds.insert(STEP_SIZE.into(), vec![alpha as f64]);
        let want = reference_step(&step.graph, &mut feeds).unwrap();
        // GPU.
        let state = DeviceState::new(device);
        state.upload(&model.params).unwrap();
        state.upload(&step.slots).unwrap();
        let program = Program::compile_with_state(device, step.graph.clone(), &state).unwrap();
        let got = program.run(&[&x, &labels, &[lr], &[alpha]]).unwrap();
        let tag = if what.starts_with("gpu") { "_gpu_" } else { "_cpu_" };
        assert!(
            program.kernels().iter().any(|k| k.name.contains(tag)),
            "{what}: no {tag} GEMM kernel in the program"
        );
        assert_eq!(
            program.input_names(),
            vec!["input_layer", labels_input.as_str(), LEARNING_RATE, STEP_SIZE]
        );
        assert!(
            (got[0][0] as f64 - want[0][0]).abs() < 1e-4 * (1.0 + want[0][0].abs()),
            "{what} {name} loss {} vs {}",
            got[0][0],
            want[0][0]
        );
        let mut after = model.params.clone();
        state.download(&mut after).unwrap();
        let mut worst = (0.0f64, String::new());
        // Updates are compared relative to their size in each tensor, floored at 1e-3 of the
        // largest update anywhere (a bias followed by batch norm has a zero gradient in exact
        // arithmetic, so its update is rounding noise).
        let global = after
            .iter()
            .flat_map(|p| {
                feeds[&p.name]
                    .iter()
                    .zip(&model.params.get(&p.name).unwrap().value.data)
                    .map(|(r, b)| (r - *b as f64).abs())
            })
            .fold(0.0, f64::max);
        for p in after.iter() {
            let before = model.params.get(&p.name).unwrap();
            let reference = &feeds[&p.name];
            // Compare the updates (new - old), relative to the update's size in this tensor.
            let scale = reference
                .iter()
                .zip(&before.value.data)
                .map(|(r, b)| (r - *b as f64).abs())
                .fold(1e-3 * global, f64::max);
            for ((g, r), b) in p.value.data.iter().zip(reference).zip(&before.value.data) {
                let err = ((*g as f64 - *b as f64) - (r - *b as f64)).abs() / scale;
                if err > worst.0 {
                    worst = (err, format!("{}: gpu {g}, reference {r}, before {b}", p.name));
                }
            }
        }
        assert!(
            worst.0 < 1e-3,
            "{what} {name}: update differs by {:.2e} of its size at {}",
            worst.0,
            worst.1
        );
    }
}

fn small_mnist(n: usize) -> (Tensor, Vec<u32>) {
    let d = mnist::embedded(mnist::Split::Train).unwrap().take(n);
    (d.images, d.labels)
}

fn small_cnn(seed: u64) -> Model {
    Sequential::new()
        .add(Input::new(&[28, 28, 1]))
        .add(Conv2D::new(8, 3).strides(2).activation("relu"))
        .add(MaxPooling2D::new(2))
        .add(Flatten::new())
        .add(Dropout::new(0.2))
        .add(Dense::new(10))
        .build(seed)
        .unwrap()
}

fn compile(model: Model) -> CompiledModel {
    let cfg = CompileConfig::new(
        Loss::SparseCategoricalCrossentropy { from_logits: true },
        Optimizer::adam(0.003),
        vec![Metric::Accuracy],
    );
    CompiledModel::new(&device(), model, cfg).unwrap()
}

fn quiet(epochs: usize, batch_size: usize, seed: u64) -> FitOptions {
    FitOptions {
        epochs,
        batch_size,
        shuffle: true,
        seed,
        validation: None,
        verbosity: Verbosity::Silent,
        check_numerics: false,
        ..FitOptions::default()
    }
}

#[test]
fn fit_lowers_the_loss_and_learns_digits() {
    let (x, y) = small_mnist(600);
    let mut cm = compile(small_cnn(1));
    let before = cm.evaluate(&x, &Targets::Classes(y.clone()), 100).unwrap();
    let opts = FitOptions {
        validation: Some((x.clone(), Targets::Classes(y.clone()))),
        ..quiet(3, 32, 0)
    };
    let h = cm.fit(&x, &Targets::Classes(y.clone()), &opts).unwrap();
    let loss = h.series("loss");
    assert_eq!(loss.len(), 3);
    assert!(
        loss[2] < loss[0] && loss[2] < 0.8 * before[0].1,
        "loss {loss:?}, before {before:?}"
    );
    let acc = h.series("val_accuracy");
    assert!(acc[2] > 0.6, "accuracy {acc:?}");
    assert_eq!(
        cm.steps_done(),
        3 * 19,
        "600 samples at batch 32: 18 full steps and one of 24"
    );
}

#[test]
fn steps_after_the_first_compile_nothing_new() {
    // A device of its own: the other tests compile pipelines on the shared one concurrently.
    let own = std::sync::Arc::new(fovea::engine::Device::with_cache_dir(None).unwrap());
    let cfg = CompileConfig::new(
        Loss::SparseCategoricalCrossentropy { from_logits: true },
        Optimizer::adam(0.003),
        vec![Metric::Accuracy],
    );
    let (x, y) = small_mnist(96);
    let mut cm = CompiledModel::new(&own, small_cnn(8), cfg).unwrap();
    cm.fit(&x, &Targets::Classes(y.clone()), &quiet(1, 32, 0)).unwrap();
    let after_first = own.pipelines_created();
    assert!(after_first > 10);
    let steps = cm.steps_done();
    cm.fit(&x, &Targets::Classes(y.clone()), &quiet(2, 32, 1)).unwrap();
    assert_eq!(cm.steps_done(), steps + 6);
    assert_eq!(
        own.pipelines_created(),
        after_first,
        "a training step must not build pipelines"
    );
}

#[test]
fn same_seed_same_weights() {
    let (x, y) = small_mnist(100);
    let run = |seed| {
        let mut cm = compile(small_cnn(2));
        cm.fit(&x, &Targets::Classes(y.clone()), &quiet(1, 16, seed)).unwrap();
        cm.model().unwrap().params.clone()
    };
    let (a, b, c) = (run(5), run(5), run(6));
    assert_eq!(a, b, "same seed, same adapter: same weights");
    assert_ne!(a, c);
}

#[test]
fn partial_batches_average_like_one_batch() {
    let (x, y) = small_mnist(70);
    let mut cm = compile(small_cnn(4));
    let whole = cm.evaluate(&x, &Targets::Classes(y.clone()), 70).unwrap();
    let split = cm.evaluate(&x, &Targets::Classes(y.clone()), 32).unwrap();
    for ((n, a), (_, b)) in whole.iter().zip(&split) {
        assert!((a - b).abs() < 1e-5 * (1.0 + a.abs()), "{n}: {a} vs {b}");
    }
    let p = cm.predict(&x, 32).unwrap();
    assert_eq!(p.shape, vec![70, 10]);
    let bad = cm
        .evaluate(&x, &Targets::Classes(vec![3; 69]), 32)
        .unwrap_err()
        .to_string();
    assert!(bad.contains("has 69 samples") && bad.contains("70"), "{bad}");
    let bad = cm
        .evaluate(&x, &Targets::Classes(vec![11; 70]), 32)
        .unwrap_err()
        .to_string();
    assert!(bad.contains("label 11"), "{bad}");
}

#[test]
fn checkpoints_round_trip_trained_weights() {
    let (x, y) = small_mnist(64);
    let mut cm = compile(small_cnn(7));
    cm.fit(&x, &Targets::Classes(y.clone()), &quiet(1, 32, 1)).unwrap();
    let want = cm.predict(&x, 64).unwrap();
    let dir = std::env::temp_dir().join(format!("fovea-train-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("w.safetensors");
    checkpoint::save_params(&path, &cm.model().unwrap().params).unwrap();
    let mut fresh = small_cnn(99);
    checkpoint::load_params(&path, &mut fresh.params).unwrap();
    let got = fovea::engine::predict(&device(), &fresh, &x, 64).unwrap();
    assert_eq!(got.data, want.data);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The optimised program (passes, arena memory plan, in-place kernels, parameter updates
/// written straight into the state by one multi-tensor dispatch) and the plain one (no
/// passes, no in-place reuse) give the same weights and optimizer slots after three steps.
#[test]
fn optimised_and_plain_programs_train_alike() {
    use fovea::engine::CompileOptions;
    for (name, optimizer) in [
        ("sgd", Optimizer::sgd_momentum(0.05, 0.9, true)),
        ("adam", Optimizer::adam(0.01)),
    ] {
        let model = mixed_model(5);
        let cfg = CompileConfig::new(
            Loss::SparseCategoricalCrossentropy { from_logits: true },
            optimizer,
            vec![Metric::Accuracy],
        );
        let batch = 3;
        let step = train_step(&model, batch, &cfg).unwrap();
        let mut results = Vec::new();
        for options in [
            CompileOptions {
                optimize: false,
                in_place: false,
                tune: false,
            },
            CompileOptions::default(),
        ] {
            let state = DeviceState::new(&device());
            state.upload(&model.params).unwrap();
            state.upload(&step.slots).unwrap();
            let program = Program::compile_with_options(&device(), step.graph.clone(), &state, options).unwrap();
            let mut rng = fovea::graph::init::Rng::new(23);
            let mut losses = Vec::new();
            for s in 0..3 {
                let x: Vec<f32> = (0..batch * 9 * 9 * 3).map(|_| rng.uniform() as f32).collect();
                let mut labels = vec![0f32; batch * 4];
                for i in 0..batch {
                    labels[i * 4 + (i + s) % 4] = 1.0;
                }
                let (lr, alpha) = cfg.optimizer.hyper(s as u64);
                losses.push(program.run(&[&x, &labels, &[lr], &[alpha]]).unwrap()[0][0]);
            }
            let mut after = model.params.clone();
            state.download(&mut after).unwrap();
            let mut slots = step.slots.clone();
            state.download(&mut slots).unwrap();
            let families: Vec<&str> = program.kernels().iter().map(|k| k.family).collect();
            results.push((losses, after, slots, families));
        }
        let (plain, fused) = (&results[0], &results[1]);
        assert!(
            !plain.3.contains(&"multi_tensor"),
            "{name}: plain program fused updates"
        );
        assert_eq!(
            fused.3.iter().filter(|&&f| f == "multi_tensor").count(),
            1,
            "{name}: one multi-tensor update dispatch: {:?}",
            fused.3
        );
        assert!(
            fused.3.len() < plain.3.len(),
            "{name}: {} vs {} dispatches",
            fused.3.len(),
            plain.3.len()
        );
        for (a, b) in plain.0.iter().zip(&fused.0) {
            assert!(
                (a - b).abs() <= 1e-4 * (1.0 + a.abs()),
                "{name}: losses {:?} vs {:?}",
                plain.0,
                fused.0
            );
        }
        for (store_a, store_b) in [(&plain.1, &fused.1), (&plain.2, &fused.2)] {
            for p in store_a.iter() {
                let q = store_b.get(&p.name).unwrap();
                let scale = p.value.data.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
                for (i, (a, b)) in p.value.data.iter().zip(&q.value.data).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-4 * scale,
                        "{name}: {}[{i}] plain {a} vs optimised {b}",
                        p.name
                    );
                }
            }
        }
    }
}
