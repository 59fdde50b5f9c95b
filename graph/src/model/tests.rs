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
