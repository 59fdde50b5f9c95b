//! Model-building tests: Keras's parameter counts and error messages that name the layer.

use crate::layers::*;
use crate::model::{Functional, Sequential};

fn seed_cnn(input: &[usize]) -> Sequential {
    Sequential::new()
        .add(Input::new(input))
        .add(Conv2D::new(32, 3).activation("relu"))
        .add(MaxPooling2D::new(2))
        .add(Conv2D::new(64, 3).activation("relu"))
        .add(MaxPooling2D::new(2))
        .add(Conv2D::new(64, 3).activation("relu"))
        .add(Flatten::new())
        .add(Dense::new(64).activation("relu"))
        .add(Dense::new(10))
}

#[test]
fn seed_models_have_keras_parameter_counts() {
    let cifar = seed_cnn(&[32, 32, 3]).build(0).unwrap();
    assert_eq!(cifar.params.count(None), 122_570);
    let mnist = seed_cnn(&[28, 28, 1]).build(0).unwrap();
    assert_eq!(mnist.params.count(None), 93_322);
    let s = cifar.summary();
    assert!(s.contains("Total params: 122,570 (478.79 KB)"), "{s}");
    assert!(s.contains("conv2d_2 (Conv2D)"), "{s}");
    assert!(s.contains("(None, 4, 4, 64)"), "{s}");
    assert!(s.contains("dense_1 (Dense)"), "{s}");
    assert!(!s.contains("InputLayer"), "Sequential summaries hide the input: {s}");
    let names: Vec<&str> = cifar.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        &names[..4],
        &["conv2d/kernel", "conv2d/bias", "conv2d_1/kernel", "conv2d_1/bias"]
    );
}

#[test]
fn same_seed_same_weights() {
    let a = seed_cnn(&[28, 28, 1]).build(3).unwrap();
    let b = seed_cnn(&[28, 28, 1]).build(3).unwrap();
    let c = seed_cnn(&[28, 28, 1]).build(4).unwrap();
    assert_eq!(a.params, b.params);
    assert_ne!(a.params, c.params);
}

fn err_of(r: crate::Result<crate::Model>) -> String {
    r.expect_err("expected an error").to_string()
}

#[test]
fn conv_that_does_not_fit_names_the_layer() {
    let e = err_of(
        Sequential::new()
            .add(Input::new(&[2, 2, 3]))
            .add(Conv2D::new(4, 3).name("tiny_conv"))
            .build(0),
    );
    assert!(e.contains("tiny_conv") && e.contains("3x3") && e.contains("2x2"), "{e}");
}

#[test]
fn dense_on_images_asks_for_flatten() {
    let e = err_of(
        Sequential::new()
            .add(Input::new(&[8, 8, 3]))
            .add(Dense::new(10))
            .build(0),
    );
    assert!(e.contains("'dense'") && e.contains("Flatten"), "{e}");
}

#[test]
fn add_of_mismatched_shapes_names_the_layer() {
    let mut f = Functional::new("m");
    let x = f.input(Input::new(&[8, 8, 3]));
    let y = f.call(Conv2D::new(4, 1), &[x]);
    let z = f.call(Add::new().name("residual"), &[x, y]);
    let e = err_of(f.build(&[z], 0));
    assert!(
        e.contains("residual") && e.contains("(1, 8, 8, 3)") && e.contains("(1, 8, 8, 4)"),
        "{e}"
    );
}

#[test]
fn bad_arguments_name_layer_and_argument() {
    let e = err_of(
        Sequential::new()
            .add(Input::new(&[8, 8, 3]))
            .add(Conv2D::new(0, 3))
            .build(0),
    );
    assert!(e.contains("'conv2d'") && e.contains("filters"), "{e}");
    let e = err_of(
        Sequential::new()
            .add(Input::new(&[8, 8, 3]))
            .add(Conv2D::new(4, 3).activation("relux"))
            .build(0),
    );
    assert!(e.contains("activation") && e.contains("relux"), "{e}");
    let e = err_of(
        Sequential::new()
            .add(Input::new(&[8, 8, 3]))
            .add(Conv2D::new(4, 3).padding("full"))
            .build(0),
    );
    assert!(e.contains("padding") && e.contains("full"), "{e}");
    let e = err_of(
        Sequential::new()
            .add(Input::new(&[8, 8, 3]))
            .add(Conv2D::new(4, 3).groups(2))
            .build(0),
    );
    assert!(e.contains("groups"), "{e}");
    let e = err_of(
        Sequential::new()
            .add(Input::new(&[8, 8, 3]))
            .add(Dropout::new(1.5))
            .build(0),
    );
    assert!(e.contains("rate"), "{e}");
    let e = err_of(
        Sequential::new()
            .add(Input::new(&[8, 8, 3]))
            .add(MaxPooling2D::new(0))
            .build(0),
    );
    assert!(e.contains("pool_size"), "{e}");
    let e = err_of(
        Sequential::new()
            .add(Input::new(&[8, 8, 3]))
            .add(UpSampling2D::new(2).interpolation("cubic"))
            .build(0),
    );
    assert!(e.contains("interpolation"), "{e}");
    let e = err_of(
        Sequential::new()
            .add(Input::new(&[8, 8, 3]))
            .add(Reshape::new(&[5, -1]))
            .build(0),
    );
    assert!(e.contains("target_shape"), "{e}");
    let e = err_of(Sequential::new().add(Conv2D::new(4, 3)).build(0));
    assert!(e.contains("Input"), "{e}");
}

#[test]
fn every_layer_builds_with_keras_shapes() {
    let mut f = Functional::new("all_layers");
    let x = f.input(Input::new(&[9, 7, 4]));
    let c = f.call(Conv2D::new(6, 3).strides(2).padding("same"), &[x]); // (5, 4, 6)
    let d = f.call(DepthwiseConv2D::new(3).depth_multiplier(2).padding("same"), &[c]); // (5, 4, 12)
    let t = f.call(Conv2DTranspose::new(5, 3).strides(2).padding("same"), &[d]); // (10, 8, 5)
    let tv = f.call(Conv2DTranspose::new(2, 3).strides(2), &[d]); // (11, 9, 2)
    let p = f.call(MaxPooling2D::new(2).padding("same"), &[t]); // (5, 4, 5)
    let a = f.call(AveragePooling2D::new(3).strides(1).padding("same"), &[p]); // (5, 4, 5)
    let b = f.call(BatchNormalization::new(), &[a]);
    let u = f.call(UpSampling2D::new(2).interpolation("bilinear"), &[b]); // (10, 8, 5)
    let z = f.call(ZeroPadding2D::symmetric(1, 0), &[u]); // (12, 8, 5)
    let cat = f.call(Concatenate::new(), &[z, z]); // (12, 8, 10)
    let g = f.call(GlobalAveragePooling2D::new(), &[cat]); // (10,)
    let r = f.call(Reshape::new(&[2, -1]), &[g]); // (2, 5)
    let fl = f.call(Flatten::new(), &[r]);
    let dr = f.call(Dropout::new(0.5), &[fl]);
    let act = f.call(Activation::new("softmax"), &[dr]);
    let model = f.build(&[act, tv], 1).unwrap();
    let shapes: Vec<Vec<usize>> = model.layer_info().iter().map(|i| i.output_shape.clone()).collect();
    assert_eq!(shapes[1], vec![5, 4, 6]);
    assert_eq!(shapes[2], vec![5, 4, 12]);
    assert_eq!(shapes[3], vec![10, 8, 5]);
    assert_eq!(shapes[4], vec![11, 9, 2]);
    assert_eq!(shapes[5], vec![5, 4, 5]);
    assert_eq!(shapes[8], vec![10, 8, 5]);
    assert_eq!(shapes[9], vec![12, 8, 5]);
    assert_eq!(shapes[10], vec![12, 8, 10]);
    assert_eq!(shapes[12], vec![2, 5]);
    assert_eq!(model.output_shapes(), vec![vec![10], vec![11, 9, 2]]);
    // depthwise: (3, 3, 6, 2) kernel + 12 biases; batch norm: 4 x 5, 2 of them frozen.
    assert_eq!(model.layer_info()[2].params, 3 * 3 * 6 * 2 + 12);
    assert_eq!(model.layer_info()[7].params, 20);
    assert_eq!(model.params.count(Some(false)), 10);
    let s = model.summary();
    assert!(s.contains("Connected to") && s.contains("input_layer[0][0]"), "{s}");
    let g7 = model.graph(7).unwrap();
    assert_eq!(g7.shape(g7.outputs[0]), &[7, 10]);
}

// ---- frozen layers ----

fn frozen_test_model() -> crate::model::Model {
    Sequential::new()
        .add(Input::new(&[6, 6, 2]))
        .add(Conv2D::new(3, 3).padding("same").name("a"))
        .add(BatchNormalization::new().name("bn"))
        .add(Conv2D::new(3, 3).name("b"))
        .add(Flatten::new())
        .add(Dropout::new(0.5).name("drop"))
        .add(Dense::new(2).name("head"))
        .build(0)
        .unwrap()
}

/// The training step after the passes: its kernels' op names and the optimizer slots.
fn optimized_step(model: &crate::model::Model) -> (Vec<String>, Vec<String>, crate::ir::Graph) {
    use crate::train::{CompileConfig, Loss, Optimizer, train_step};
    let cfg = CompileConfig::new(
        Loss::SparseCategoricalCrossentropy { from_logits: true },
        Optimizer::parse("adam", Some(0.01)).unwrap(),
        vec![],
    );
    let step = train_step(model, 4, &cfg).unwrap();
    let slots = step.slots.iter().map(|p| p.name.clone()).collect();
    let (g, _) = crate::passes::optimize(step.graph).unwrap();
    (g.nodes.iter().map(|n| n.op.name()).collect(), slots, g)
}

fn count(ops: &[String], prefix: &str) -> usize {
    ops.iter().filter(|o| o.starts_with(prefix)).count()
}

#[test]
fn frozen_layers_get_no_gradient_kernels_and_no_optimizer_slots() {
    let mut model = frozen_test_model();
    let (ops, slots, _) = optimized_step(&model);
    assert_eq!(count(&ops, "conv2d_backprop_filter"), 2, "{ops:?}");
    assert_eq!(slots.len(), 2 * 8, "Adam's m and v for 8 trainable weights: {slots:?}");

    model.set_trainable("a", false).unwrap();
    let (ops, slots, _) = optimized_step(&model);
    assert_eq!(count(&ops, "conv2d_backprop_filter"), 1, "{ops:?}");
    assert!(
        slots
            .iter()
            .all(|s| !s.ends_with("/a/kernel") && !s.ends_with("/a/bias")),
        "{slots:?}"
    );
    assert_eq!(slots.len(), 2 * 6);

    // Freezing `b` too leaves nothing below the head to differentiate: no convolution gradient
    // of any kind, nor the batch-norm statistics' (the frozen BN runs in inference mode).
    model.set_trainable("bn", false).unwrap();
    model.set_trainable("b", false).unwrap();
    let (ops, slots, g) = optimized_step(&model);
    assert_eq!(count(&ops, "conv2d_backprop"), 0, "{ops:?}");
    assert_eq!(slots.len(), 2 * 2);
    let updated: Vec<String> = g
        .updates
        .iter()
        .map(|&(p, _)| match &g.node(p).op {
            crate::ir::Op::Param { name, .. } => name.clone(),
            op => op.name(),
        })
        .filter(|n| !n.starts_with("optimizer/"))
        .collect();
    assert_eq!(updated, ["head/kernel", "head/bias"]);
    // Dropout still drops in training.
    assert!(ops.iter().any(|o| o == "dropout"), "{ops:?}");
}

#[test]
fn frozen_batch_norm_runs_in_inference_mode_in_training() {
    let mut model = frozen_test_model();
    let g = model.training_graph(2).unwrap();
    assert!(!g.nodes.iter().any(|n| n.op.name() == "batch_norm"));
    assert_eq!(g.updates.len(), 2, "moving mean and variance");
    model.set_trainable("bn", false).unwrap();
    let g = model.training_graph(2).unwrap();
    assert_eq!(g.nodes.iter().filter(|n| n.op.name() == "batch_norm").count(), 1);
    assert!(g.updates.is_empty());
    let s = model.summary();
    assert!(
        s.contains("Non-trainable params: 12 ("),
        "gamma, beta and the statistics of 3 channels: {s}"
    );
}

#[test]
fn trainable_flags_set_query_and_undo() {
    let mut model = frozen_test_model();
    let all = model.params.count(None);
    assert_eq!(model.params.count(Some(true)), all - 6);
    model.set_all_trainable(false).unwrap();
    assert_eq!(model.params.count(Some(true)), 0);
    assert!(!model.is_trainable("head").unwrap());
    assert!(
        model
            .training_graph(2)
            .unwrap()
            .nodes
            .iter()
            .all(|n| !matches!(n.op, crate::ir::Op::Param { trainable: true, .. }))
    );
    model.set_all_trainable(true).unwrap();
    model.set_trainable("head", false).unwrap();
    assert_eq!(model.params.count(Some(true)), all - 6 - (48 * 2 + 2));
    model.set_trainable("head", true).unwrap();
    assert_eq!(model.params.count(Some(true)), all - 6);
    for e in [
        model.set_trainable("nope", false).unwrap_err(),
        model.is_trainable("nope").unwrap_err(),
    ] {
        let e = e.to_string();
        assert!(e.contains("no layer named 'nope'") && e.contains("head"), "{e}");
    }
}
