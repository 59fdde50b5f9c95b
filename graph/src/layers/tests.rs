//! Tests of the activation, merge, cropping, separable, spatial-dropout and layer-norm layers:
//! values on the reference interpreter against the formulas Keras documents (written out
//! here, element by element), gradients of their compositions against central differences,
//! and their argument errors. Keras's own outputs are checked in tests/keras_interchange.rs.

use super::*;
use crate::grad::grad;
use crate::init::Rng;
use crate::interp::{Feeds, evaluate, evaluate_all};
use crate::ir::{BinaryOp, Graph, NodeId, Op, ReduceOp, TensorType, numel};
use crate::model::{Functional, Model};

/// A one-layer functional model on inputs of the given per-sample shapes.
fn one_layer(layer: impl Layer + 'static, inputs: &[&[usize]]) -> crate::error::Result<Model> {
    let mut f = Functional::new("t");
    let ins: Vec<_> = inputs
        .iter()
        .enumerate()
        .map(|(i, s)| f.input(Input::new(s).name(format!("in{i}"))))
        .collect();
    let y = f.call(layer, &ins);
    f.build(&[y], 7)
}

/// Values in `[-2, 2)` kept at least 0.01 away from `kinks` (no ties within a difference step).
fn values(rng: &mut Rng, n: usize, kinks: &[f64]) -> Vec<f64> {
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        let x = rng.uniform_in(-2.0, 2.0);
        if kinks.iter().all(|k| (x - k).abs() > 0.01) {
            v.push(x);
        }
    }
    v
}

/// Feeds every input of `graph` from `rng` (away from `kinks`) and every parameter from the
/// model's store.
fn feeds(model: &Model, graph: &Graph, rng: &mut Rng, kinks: &[f64]) -> Feeds {
    let mut f = Feeds::new();
    for n in &graph.nodes {
        match &n.op {
            Op::Input { name } if name.ends_with("/seed") => {
                f.insert(name.clone(), vec![3.0]);
            }
            Op::Input { name } => {
                f.insert(name.clone(), values(rng, n.ty.numel(), kinks));
            }
            Op::Param { name, .. } => {
                let p = model.params.get(name).expect("a model parameter");
                f.insert(name.clone(), p.value.to_f64());
            }
            _ => {}
        }
    }
    f
}

/// Runs `model` at batch `batch` and returns its inputs' values and its output.
fn run(model: &Model, batch: usize, kinks: &[f64], seed: u64) -> (Vec<Vec<f64>>, Vec<f64>) {
    let g = model.graph(batch).unwrap();
    let f = feeds(model, &g, &mut Rng::new(seed), kinks);
    let ins = model.input_names().iter().map(|n| f[n.as_str()].clone()).collect();
    (ins, evaluate(&g, &f).unwrap().remove(0))
}

fn close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        // The layers hold their constants in f32 (0.3, 1/3, ...), the formulas in f64.
        assert!(
            (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
            "{what}: element {i}: {a} vs {b}"
        );
    }
}

/// `loss = sum(out * R)`: checks the gradient with respect to every input and trainable
/// parameter of `model`'s training graph against central differences.
fn check_gradients(model: &Model, batch: usize, kinks: &[f64]) {
    let mut g = model.training_graph(batch).unwrap();
    let mut rng = Rng::new(11);
    let mut f = feeds(model, &g, &mut rng, kinks);
    let out = g.outputs[0];
    let shape = g.shape(out).to_vec();
    let r = g.input("fd/r", TensorType::f32(shape.clone())).unwrap();
    f.insert(
        "fd/r".into(),
        (0..numel(&shape)).map(|_| rng.uniform_in(-1.0, 1.0)).collect(),
    );
    let w = g.push(Op::Binary(BinaryOp::Mul), &[out, r], "fd").unwrap();
    let loss = g
        .push(
            Op::Reduce {
                op: ReduceOp::Sum,
                axes: (0..shape.len()).collect(),
                keep_dims: false,
            },
            &[w],
            "fd",
        )
        .unwrap();
    let wrt: Vec<(NodeId, String)> = g
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match &n.op {
            Op::Input { name } if !name.ends_with("/seed") && name != "fd/r" => Some((NodeId(i as u32), name.clone())),
            Op::Param { name, trainable: true } => Some((NodeId(i as u32), name.clone())),
            _ => None,
        })
        .collect();
    assert!(!wrt.is_empty());
    let forward = g.clone();
    let ids: Vec<NodeId> = wrt.iter().map(|(id, _)| *id).collect();
    let grads = grad(&mut g, loss, &ids).unwrap();
    let all = evaluate_all(&g, &f).unwrap();
    let loss_at = |f: &Feeds| evaluate_all(&forward, f).unwrap()[loss.index()][0];
    let eps = 1e-6;
    for ((_, name), gid) in wrt.iter().zip(grads) {
        let analytic = &all[gid.index()];
        for (e, &a) in analytic.iter().enumerate() {
            let mut probe = f.clone();
            probe.get_mut(name).unwrap()[e] += eps;
            let up = loss_at(&probe);
            probe.get_mut(name).unwrap()[e] -= 2.0 * eps;
            let down = loss_at(&probe);
            let numeric = (up - down) / (2.0 * eps);
            assert!(
                (a - numeric).abs() <= 1e-5 * numeric.abs().max(1.0),
                "{name}[{e}]: analytic {a}, numeric {numeric}"
            );
        }
    }
}

fn relu_keras(x: f64, max: Option<f64>, ns: f64, t: f64) -> f64 {
    // Keras's documented piecewise form (threshold >= 0).
    match max {
        Some(m) if x >= m => m,
        _ if x >= t => x,
        _ => ns * (x - t),
    }
}

#[test]
fn relu_variants_match_keras_piecewise_and_differentiate() {
    let cases: [(Option<f64>, f64, f64); 6] = [
        (None, 0.0, 0.0),
        (Some(6.0), 0.0, 0.0),
        (Some(1.5), 0.0, 0.0),
        (None, 0.1, 0.0),
        (None, 0.0, 0.5),
        (Some(1.5), 0.1, 0.25),
    ];
    for (max, ns, t) in cases {
        let mut l = ReLU::new().negative_slope(ns as f32).threshold(t as f32);
        if let Some(m) = max {
            l = l.max_value(m as f32);
        }
        let model = one_layer(l, &[&[3, 5, 2]]).unwrap();
        let kinks = [0.0, t, max.unwrap_or(0.0), 6.0];
        let (ins, y) = run(&model, 2, &kinks, 1);
        let want: Vec<f64> = ins[0].iter().map(|&x| relu_keras(x, max, ns, t)).collect();
        close(&y, &want, &format!("ReLU({max:?}, {ns}, {t})"));
        check_gradients(&model, 1, &kinks);
    }
    let e = one_layer(ReLU::new().threshold(-1.0), &[&[3]]).unwrap_err().to_string();
    assert!(e.contains("threshold") && e.contains("-1"), "{e}");
    let e = one_layer(ReLU::new().max_value(-2.0), &[&[3]]).unwrap_err().to_string();
    assert!(e.contains("max_value"), "{e}");
}

#[test]
fn leaky_relu_elu_and_prelu_match_their_formulas() {
    let model = one_layer(LeakyReLU::new(), &[&[7]]).unwrap();
    let (ins, y) = run(&model, 3, &[0.0], 2);
    let want: Vec<f64> = ins[0].iter().map(|&x| if x >= 0.0 { x } else { 0.3 * x }).collect();
    close(&y, &want, "LeakyReLU default slope 0.3");

    let model = one_layer(ELU::new().alpha(0.7), &[&[4, 3]]).unwrap();
    let (ins, y) = run(&model, 2, &[0.0], 3);
    let want: Vec<f64> = ins[0]
        .iter()
        .map(|&x| if x > 0.0 { x } else { 0.7 * (x.exp() - 1.0) })
        .collect();
    close(&y, &want, "ELU");
    check_gradients(&model, 1, &[0.0]);

    // One alpha per channel of an image (shared over height and width).
    let mut model = one_layer(PReLU::new().shared_axes(&[1, 2]), &[&[2, 3, 4]]).unwrap();
    let alpha = model.params.get("p_re_lu/alpha").unwrap().value.shape.clone();
    assert_eq!(alpha, vec![1, 1, 4]);
    model
        .set_weight(
            "p_re_lu/alpha",
            crate::Tensor::new(vec![1, 1, 4], vec![0.5, -1.0, 2.0, 0.0], "a").unwrap(),
        )
        .unwrap();
    let (ins, y) = run(&model, 2, &[0.0], 4);
    let a = [0.5, -1.0, 2.0, 0.0];
    let want: Vec<f64> = ins[0]
        .iter()
        .enumerate()
        .map(|(i, &x)| if x >= 0.0 { x } else { a[i % 4] * x })
        .collect();
    close(&y, &want, "PReLU shared_axes [1, 2]");
    check_gradients(&model, 2, &[0.0]);
    // Without shared axes: one alpha per element of a sample.
    let model = one_layer(PReLU::new(), &[&[2, 3]]).unwrap();
    assert_eq!(model.params.get("p_re_lu/alpha").unwrap().value.shape, vec![2, 3]);
    let e = one_layer(PReLU::new().shared_axes(&[3]), &[&[2, 3]])
        .unwrap_err()
        .to_string();
    assert!(e.contains("shared_axes") && e.contains("axis 3"), "{e}");
}

#[test]
fn softmax_layer_is_the_last_axis_softmax() {
    let model = one_layer(Softmax::new(), &[&[2, 5]]).unwrap();
    let (ins, y) = run(&model, 3, &[], 5);
    let mut want = Vec::new();
    for row in ins[0].chunks(5) {
        let s: f64 = row.iter().map(|v| v.exp()).sum();
        want.extend(row.iter().map(|v| v.exp() / s));
    }
    close(&y, &want, "Softmax");
    let e = one_layer(Softmax::new().axis(1), &[&[2, 5]]).unwrap_err().to_string();
    assert!(e.contains("axis") && e.contains("last axis"), "{e}");
}

#[test]
fn merge_layers_combine_elementwise() {
    let s: &[usize] = &[2, 3];
    type Case = (Box<dyn Fn() -> Box<dyn Layer>>, usize, fn(&[f64]) -> f64);
    let cases: Vec<(&str, Case)> = vec![
        (
            "Multiply",
            (Box::new(|| Box::new(Multiply::new())), 3, |v| v.iter().product()),
        ),
        ("Subtract", (Box::new(|| Box::new(Subtract::new())), 2, |v| v[0] - v[1])),
        (
            "Maximum",
            (Box::new(|| Box::new(Maximum::new())), 3, |v| {
                v.iter().cloned().fold(f64::MIN, f64::max)
            }),
        ),
        (
            "Average",
            (Box::new(|| Box::new(Average::new())), 3, |v| {
                v.iter().sum::<f64>() / v.len() as f64
            }),
        ),
    ];
    for (class, (make, n, f)) in cases {
        let mut fm = Functional::new("t");
        let ins: Vec<_> = (0..n).map(|i| fm.input(Input::new(s).name(format!("in{i}")))).collect();
        let y = fm.call(BoxedLayer(make()), &ins);
        let model = fm.build(&[y], 0).unwrap();
        let (xs, y) = run(&model, 2, &[], 6);
        let want: Vec<f64> = (0..y.len())
            .map(|e| f(&xs.iter().map(|x| x[e]).collect::<Vec<_>>()))
            .collect();
        close(&y, &want, class);
        check_gradients(&model, 1, &[]);
    }
    let e = one_layer(Subtract::new(), &[&[2], &[2], &[2]]).unwrap_err().to_string();
    assert!(e.contains("Subtract needs exactly 2 inputs, got 3"), "{e}");
    let e = one_layer(Maximum::new(), &[&[2], &[3]]).unwrap_err().to_string();
    assert!(e.contains("Maximum needs inputs of one shape"), "{e}");
}

/// A boxed layer as a layer (for tables of layer constructors).
#[derive(Debug)]
struct BoxedLayer(Box<dyn Layer>);

impl Layer for BoxedLayer {
    fn class_name(&self) -> &'static str {
        self.0.class_name()
    }
    fn default_prefix(&self) -> &'static str {
        self.0.default_prefix()
    }
    fn name(&self) -> Option<&str> {
        self.0.name()
    }
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> crate::error::Result<NodeId> {
        self.0.lower(ctx, inputs)
    }
}

#[test]
fn cropping2d_keeps_the_inner_box() {
    let (h, w, c) = (5, 6, 2);
    let model = one_layer(Cropping2D::explicit(((1, 2), (0, 3))), &[&[h, w, c]]).unwrap();
    assert_eq!(model.output_shapes(), vec![vec![2, 3, 2]]);
    let (ins, y) = run(&model, 2, &[], 7);
    let mut want = Vec::new();
    for n in 0..2 {
        for i in 1..h - 2 {
            for j in 0..w - 3 {
                for k in 0..c {
                    want.push(ins[0][((n * h + i) * w + j) * c + k]);
                }
            }
        }
    }
    close(&y, &want, "Cropping2D");
    check_gradients(&model, 1, &[]);
    let e = one_layer(Cropping2D::symmetric(3, 0), &[&[6, 6, 1]])
        .unwrap_err()
        .to_string();
    assert!(e.contains("cropping") && e.contains("6x6"), "{e}");
}

#[test]
fn separable_conv2d_is_depthwise_then_pointwise() {
    let sep = SeparableConv2D::new(3, 3)
        .depth_multiplier(2)
        .strides(2)
        .padding("same")
        .activation("tanh")
        .name("sep");
    let model = one_layer(sep, &[&[5, 6, 2]]).unwrap();
    let names: Vec<&str> = model.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["sep/depthwise_kernel", "sep/pointwise_kernel", "sep/bias"]);
    assert_eq!(
        model.params.get("sep/depthwise_kernel").unwrap().value.shape,
        vec![3, 3, 2, 2]
    );
    assert_eq!(
        model.params.get("sep/pointwise_kernel").unwrap().value.shape,
        vec![1, 1, 4, 3]
    );
    // The same computation through DepthwiseConv2D and a 1x1 Conv2D with the same weights.
    let mut f = Functional::new("ref");
    let x = f.input(Input::new(&[5, 6, 2]).name("in0"));
    let d = f.call(
        DepthwiseConv2D::new(3)
            .depth_multiplier(2)
            .strides(2)
            .padding("same")
            .use_bias(false)
            .name("dw"),
        &[x],
    );
    let y = f.call(Conv2D::new(3, 1).activation("tanh").name("pw"), &[d]);
    let mut reference = f.build(&[y], 0).unwrap();
    let mut model = model;
    let bias = crate::Tensor::new(vec![3], vec![-0.1, 0.05, 0.2], "bias").unwrap();
    model.set_weight("sep/bias", bias.clone()).unwrap();
    reference.set_weight("pw/bias", bias).unwrap();
    for (from, to) in [
        ("sep/depthwise_kernel", "dw/kernel"),
        ("sep/pointwise_kernel", "pw/kernel"),
    ] {
        let v = model.params.get(from).unwrap().value.clone();
        reference.set_weight(to, v).unwrap();
    }
    let (_, got) = run(&model, 2, &[], 8);
    let (_, want) = run(&reference, 2, &[], 8);
    assert_eq!(model.output_shapes(), vec![vec![3, 3, 3]]);
    close(&got, &want, "SeparableConv2D");
    check_gradients(&model, 1, &[]);
}

#[test]
fn spatial_dropout_drops_whole_channels_in_training_only() {
    let (n, h, w, c) = (4, 3, 2, 8);
    let rate = 0.5;
    let model = one_layer(SpatialDropout2D::new(rate).name("sd"), &[&[h, w, c]]).unwrap();
    let (ins, y) = run(&model, n, &[], 9);
    close(&y, &ins[0], "inference is the identity");
    let g = model.training_graph(n).unwrap();
    let f = feeds(&model, &g, &mut Rng::new(9), &[0.0]);
    let y = evaluate(&g, &f).unwrap().remove(0);
    let x = &f["in0"];
    let (mut kept, mut dropped) = (0, 0);
    for s in 0..n {
        for k in 0..c {
            let at = |i: usize, j: usize| ((s * h + i) * w + j) * c + k;
            let scale = y[at(0, 0)] / x[at(0, 0)];
            assert!(
                scale == 0.0 || (scale - 1.0 / (1.0 - rate as f64)).abs() < 1e-9,
                "scale {scale}"
            );
            for i in 0..h {
                for j in 0..w {
                    assert!((y[at(i, j)] - scale * x[at(i, j)]).abs() < 1e-9, "one mask per channel");
                }
            }
            if scale == 0.0 { dropped += 1 } else { kept += 1 }
        }
    }
    assert!(kept > 4 && dropped > 4, "kept {kept}, dropped {dropped} of {}", n * c);
    check_gradients(&model, 2, &[]);
    let e = one_layer(SpatialDropout2D::new(1.0), &[&[2, 2, 1]])
        .unwrap_err()
        .to_string();
    assert!(e.contains("rate"), "{e}");
    let e = one_layer(SpatialDropout2D::new(0.1), &[&[4]]).unwrap_err().to_string();
    assert!(e.contains("4-D"), "{e}");
}

#[test]
fn layer_normalization_normalises_each_sample_over_the_last_axis() {
    let mut model = one_layer(LayerNormalization::new().epsilon(0.01).name("ln"), &[&[3, 4]]).unwrap();
    let gamma = [0.5, 1.0, 1.5, -2.0];
    let beta = [0.1, 0.0, -0.2, 0.3];
    model
        .set_weight("ln/gamma", crate::Tensor::new(vec![4], gamma.to_vec(), "g").unwrap())
        .unwrap();
    model
        .set_weight("ln/beta", crate::Tensor::new(vec![4], beta.to_vec(), "b").unwrap())
        .unwrap();
    let (ins, y) = run(&model, 2, &[], 10);
    let mut want = Vec::new();
    for row in ins[0].chunks(4) {
        let mean = row.iter().sum::<f64>() / 4.0;
        let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 4.0;
        for (k, v) in row.iter().enumerate() {
            want.push((v - mean) / (var + 0.01).sqrt() * gamma[k] as f64 + beta[k] as f64);
        }
    }
    close(&y, &want, "LayerNormalization");
    check_gradients(&model, 2, &[]);
    let plain = one_layer(LayerNormalization::new().center(false).scale(false), &[&[4]]).unwrap();
    assert!(plain.params.is_empty());
}

#[test]
fn instance_normalization_normalises_each_channel_of_each_sample_over_space() {
    let (h, w, c) = (3, 5, 2);
    let mut model = one_layer(InstanceNormalization::new().epsilon(0.01).name("in"), &[&[h, w, c]]).unwrap();
    let (gamma, beta) = ([0.5f32, -1.5], [0.1f32, 0.3]);
    model
        .set_weight("in/gamma", crate::Tensor::new(vec![c], gamma.to_vec(), "g").unwrap())
        .unwrap();
    model
        .set_weight("in/beta", crate::Tensor::new(vec![c], beta.to_vec(), "b").unwrap())
        .unwrap();
    let (ins, y) = run(&model, 2, &[], 12);
    let mut want = vec![0.0; ins[0].len()];
    for (s, sample) in ins[0].chunks(h * w * c).enumerate() {
        for k in 0..c {
            let vals: Vec<f64> = sample.iter().skip(k).step_by(c).copied().collect();
            let mean = vals.iter().sum::<f64>() / vals.len() as f64;
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64;
            for (p, v) in vals.iter().enumerate() {
                want[s * h * w * c + p * c + k] = (v - mean) / (var + 0.01).sqrt() * gamma[k] as f64 + beta[k] as f64;
            }
        }
    }
    close(&y, &want, "InstanceNormalization");
    check_gradients(&model, 2, &[]);
    let e = one_layer(InstanceNormalization::new(), &[&[4]])
        .unwrap_err()
        .to_string();
    assert!(e.contains("4-D"), "{e}");
    let e = one_layer(InstanceNormalization::new().epsilon(0.0), &[&[2, 2, 1]])
        .unwrap_err()
        .to_string();
    assert!(e.contains("epsilon"), "{e}");
}

#[test]
fn reflection_padding_mirrors_without_repeating_the_edge() {
    let model = one_layer(ReflectionPadding2D::symmetric(2, 1), &[&[3, 2, 1]]).unwrap();
    let (ins, y) = run(&model, 1, &[], 13);
    // Rows 0..3 padded by 2: -2 -> 2, -1 -> 1, 3 -> 1, 4 -> 0; columns 0..2 by 1: -1 -> 1, 2 -> 0.
    let row = [2, 1, 0, 1, 2, 1, 0];
    let col = [1, 0, 1, 0];
    let want: Vec<f64> = row
        .iter()
        .flat_map(|r| col.iter().map(move |c| (*r, *c)))
        .map(|(r, c)| ins[0][r * 2 + c])
        .collect();
    close(&y, &want, "ReflectionPadding2D");
    check_gradients(&model, 2, &[]);
    let e = one_layer(ReflectionPadding2D::new(3), &[&[3, 8, 1]])
        .unwrap_err()
        .to_string();
    assert!(e.contains("3 rows") && e.contains("3x8"), "{e}");
}

#[test]
fn unit_normalization_gives_each_sample_unit_norm_over_the_last_axis() {
    let model = one_layer(UnitNormalization::new().name("embedding"), &[&[3, 4]]).unwrap();
    assert!(model.params.is_empty());
    let (ins, y) = run(&model, 2, &[], 11);
    let mut want = Vec::new();
    for row in ins[0].chunks(4) {
        let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        want.extend(row.iter().map(|v| v / norm));
    }
    close(&y, &want, "UnitNormalization");
    check_gradients(&model, 2, &[]);
    let e = one_layer(UnitNormalization::new().name("u"), &[&[]])
        .unwrap_err()
        .to_string();
    assert!(e.contains('u') && e.contains("feature axis"), "{e}");
}
