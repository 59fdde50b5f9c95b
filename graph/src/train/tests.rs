//! Losses and metrics against hand-computed values, optimizer updates against a hand-written
//! reference for several steps, and a whole training step in the reference interpreter.

use super::*;
use crate::init::Rng;
use crate::interp::{Feeds, evaluate};
use crate::ir::{Graph, TensorType};
use crate::layers::{Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D};
use crate::model::Sequential;

fn loss_value(loss: Loss, pred: &[f64], truth: &[f64], shape: &[usize]) -> f64 {
    let mut g = Graph::new();
    let p = g.input("pred", TensorType::f32(shape.to_vec())).unwrap();
    let t = g.input("truth", TensorType::f32(shape.to_vec())).unwrap();
    let l = loss.build(&mut g, p, t).unwrap();
    g.outputs.push(l);
    let feeds: Feeds = [
        ("pred".to_string(), pred.to_vec()),
        ("truth".to_string(), truth.to_vec()),
    ]
    .into();
    evaluate(&g, &feeds).unwrap()[0][0]
}

#[test]
fn losses_match_their_formulas() {
    let logits = [2.0, 1.0, 0.1, 0.5, 2.5, -1.0];
    let onehot = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0];
    // -log softmax at the label, averaged over the two samples.
    let lse = |r: &[f64]| r.iter().map(|v| v.exp()).sum::<f64>().ln();
    let want = ((lse(&logits[..3]) - 2.0) + (lse(&logits[3..]) + 1.0)) / 2.0;
    let got = loss_value(
        Loss::SparseCategoricalCrossentropy { from_logits: true },
        &logits,
        &onehot,
        &[2, 3],
    );
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    let probs = [0.7, 0.2, 0.1, 0.25, 0.25, 0.5];
    let want = -(0.7f64.ln() + 0.5f64.ln()) / 2.0;
    let got = loss_value(
        Loss::CategoricalCrossentropy { from_logits: false },
        &probs,
        &onehot,
        &[2, 3],
    );
    assert!((got - want).abs() < 1e-7, "{got} vs {want}");
    let x = [0.3, -2.0, 4.0, 0.0];
    let z = [1.0, 0.0, 1.0, 1.0];
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    let want: f64 = x
        .iter()
        .zip(z)
        .map(|(&v, t)| -(t * sig(v).ln() + (1.0 - t) * (1.0 - sig(v)).ln()))
        .sum::<f64>()
        / 4.0;
    let got = loss_value(Loss::BinaryCrossentropy { from_logits: true }, &x, &z, &[2, 2]);
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    let p: [f64; 4] = [0.9, 0.2, 0.6, 0.4];
    let want: f64 = p
        .iter()
        .zip(z)
        .map(|(&v, t)| -(t * v.ln() + (1.0 - t) * (1.0 - v).ln()))
        .sum::<f64>()
        / 4.0;
    let got = loss_value(Loss::BinaryCrossentropy { from_logits: false }, &p, &z, &[2, 2]);
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    let a = [1.0, 2.0, 3.0, 4.0];
    let b = [1.5, 0.0, 3.0, 7.0];
    assert!((loss_value(Loss::MeanSquaredError, &a, &b, &[2, 2]) - (0.25 + 4.0 + 0.0 + 9.0) / 4.0).abs() < 1e-12);
    assert!((loss_value(Loss::MeanAbsoluteError, &a, &b, &[2, 2]) - (0.5 + 2.0 + 0.0 + 3.0) / 4.0).abs() < 1e-12);
    // Huber(1): 0.5 * 0.25, 2 - 0.5, 0, 3 - 0.5.
    let want = (0.125 + 1.5 + 0.0 + 2.5) / 4.0;
    assert!((loss_value(Loss::Huber { delta: 1.0 }, &a, &b, &[2, 2]) - want).abs() < 1e-12);
}

#[test]
fn accuracy_metrics_count_correct_samples() {
    let mut g = Graph::new();
    let p = g.input("pred", TensorType::f32(vec![4, 3])).unwrap();
    let t = g.input("truth", TensorType::f32(vec![4, 3])).unwrap();
    for m in [Metric::Accuracy, Metric::TopK(2)] {
        let id = m.build(&mut g, p, t).unwrap();
        g.outputs.push(id);
    }
    // Argmax 0, 1, 2, 0; labels 0, 2, 2, 1. Top-1: samples 0 and 2. Top-2 adds sample 1 (its
    // label scores second) but not sample 3 (its label scores last).
    let pred = vec![3.0, 1.0, 0.0, 0.0, 5.0, 4.0, 0.1, 0.2, 0.3, 9.0, -1.0, 0.0];
    let truth = vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0];
    let feeds: Feeds = [("pred".to_string(), pred), ("truth".to_string(), truth)].into();
    let out = evaluate(&g, &feeds).unwrap();
    assert_eq!(out[0], vec![0.5]);
    assert_eq!(out[1], vec![0.75]);
    assert!(Metric::parse("top_3_accuracy").unwrap() == Metric::TopK(3));
    assert!(Metric::parse("f1").unwrap_err().to_string().contains("f1"));
}

/// Runs `opt` for several steps on a 3-element parameter with given gradients, through the
/// graph and the reference interpreter.
fn run_optimizer(opt: &Optimizer, grads: &[[f64; 3]], p0: [f64; 3]) -> Vec<f64> {
    let mut g = Graph::new();
    let p = g.param("w", &[3], true, "t").unwrap();
    let gr = g.input("g", TensorType::f32(vec![3])).unwrap();
    let lr = g.input("lr", TensorType::f32(vec![1])).unwrap();
    let alpha = g.input("alpha", TensorType::f32(vec![1])).unwrap();
    let slots: Vec<_> = opt
        .slots()
        .iter()
        .map(|s| g.param(&format!("slot/{s}"), &[3], false, "t").unwrap())
        .collect();
    let (np, ns) = opt.update(&mut g, p, gr, &slots, lr, alpha).unwrap();
    g.updates.push((p, np));
    for (s, v) in slots.iter().zip(ns) {
        g.updates.push((*s, v));
    }
    g.outputs.push(np);
    let mut feeds: Feeds = [("w".to_string(), p0.to_vec())].into();
    for s in opt.slots() {
        feeds.insert(format!("slot/{s}"), vec![0.0; 3]);
    }
    for (step, grad) in grads.iter().enumerate() {
        let (l, a) = opt.hyper(step as u64);
        feeds.insert("g".into(), grad.to_vec());
        feeds.insert("lr".into(), vec![l as f64]);
        feeds.insert("alpha".into(), vec![a as f64]);
        reference_step(&g, &mut feeds).unwrap();
    }
    feeds["w"].clone()
}

const GRADS: [[f64; 3]; 4] = [[0.5, -1.0, 2.0], [0.1, 0.3, -0.2], [-0.4, 0.0, 1.0], [1.0, 1.0, 1.0]];
const P0: [f64; 3] = [1.0, -2.0, 0.5];

fn assert_close(got: &[f64], want: &[f64]) {
    for (a, b) in got.iter().zip(want) {
        assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "{got:?} vs {want:?}");
    }
}

#[test]
fn sgd_and_momentum_follow_keras() {
    let lr = 0.1;
    let got = run_optimizer(&Optimizer::sgd(lr as f32), &GRADS, P0);
    let want: Vec<f64> = (0..3)
        .map(|i| P0[i] - lr * GRADS.iter().map(|g| g[i]).sum::<f64>())
        .collect();
    assert_close(&got, &want);
    for nesterov in [false, true] {
        let got = run_optimizer(&Optimizer::sgd_momentum(lr as f32, 0.9, nesterov), &GRADS, P0);
        let mut p = P0;
        let mut m = [0.0; 3];
        for g in GRADS {
            for i in 0..3 {
                m[i] = 0.9 * m[i] - lr * g[i];
                p[i] += if nesterov { 0.9 * m[i] - lr * g[i] } else { m[i] };
            }
        }
        assert_close(&got, &p);
    }
}

#[test]
fn adam_adamw_and_rmsprop_follow_keras() {
    let (lr, b1, b2, eps) = (0.01f64, 0.9f64, 0.999f64, 1e-7f64);
    for wd in [None, Some(0.004)] {
        let opt = match wd {
            None => Optimizer::adam(lr as f32),
            Some(w) => Optimizer::adamw(lr as f32, w as f32),
        };
        let got = run_optimizer(&opt, &GRADS, P0);
        let (mut p, mut m, mut v) = (P0, [0.0; 3], [0.0; 3]);
        for (t, g) in GRADS.iter().enumerate() {
            let t = (t + 1) as f64;
            let alpha = lr * (1.0 - b2.powf(t)).sqrt() / (1.0 - b1.powf(t));
            for i in 0..3 {
                if let Some(w) = wd {
                    p[i] -= p[i] * w * lr;
                }
                m[i] += (g[i] - m[i]) * (1.0 - b1);
                v[i] += (g[i] * g[i] - v[i]) * (1.0 - b2);
                p[i] -= alpha * m[i] / (v[i].sqrt() + eps);
            }
        }
        assert_close(&got, &p);
    }
    let got = run_optimizer(&Optimizer::rmsprop(lr as f32), &GRADS, P0);
    let (mut p, mut v) = (P0, [0.0; 3]);
    for g in GRADS {
        for i in 0..3 {
            v[i] = 0.9 * v[i] + 0.1 * g[i] * g[i];
            p[i] -= lr * g[i] / (v[i] + eps).sqrt();
        }
    }
    assert_close(&got, &p);
}

const DROP: f32 = 0.1;

fn tiny_cnn() -> crate::Model {
    Sequential::new()
        .add(Input::new(&[6, 6, 1]))
        .add(Conv2D::new(3, 3).activation("relu"))
        .add(MaxPooling2D::new(2))
        .add(Flatten::new())
        .add(Dropout::new(DROP))
        .add(Dense::new(2))
        .build(5)
        .unwrap()
}

#[test]
fn training_step_lowers_the_loss_in_the_reference_interpreter() {
    let model = tiny_cnn();
    let cfg = CompileConfig::new(
        Loss::SparseCategoricalCrossentropy { from_logits: true },
        Optimizer::adam(0.02),
        vec![Metric::Accuracy],
    );
    let step = train_step(&model, 4, &cfg).unwrap();
    assert_eq!(step.output_names, vec!["loss", "accuracy"]);
    assert_eq!(step.slots.len(), 2 * 4, "m and v for two kernels and two biases");
    assert_eq!(step.graph.updates.len(), 4 * 3);
    let mut rng = Rng::new(9);
    let x: Vec<f64> = (0..4 * 36).map(|_| rng.uniform()).collect();
    let labels = vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0];
    let mut feeds: Feeds = model
        .params
        .iter()
        .map(|p| (p.name.clone(), p.value.to_f64()))
        .collect();
    feeds.extend(step.slots.iter().map(|p| (p.name.clone(), p.value.to_f64())));
    feeds.insert("input_layer".into(), x);
    feeds.insert(target_input(&step.targets[0].name), labels);
    let mut losses = Vec::new();
    for s in 0..30u64 {
        let (lr, alpha) = cfg.optimizer.hyper(s);
        feeds.insert(LEARNING_RATE.into(), vec![lr as f64]);
        feeds.insert(STEP_SIZE.into(), vec![alpha as f64]);
        feeds.insert("dropout/seed".into(), vec![s as f64]);
        losses.push(reference_step(&step.graph, &mut feeds).unwrap()[0][0]);
    }
    let tail = losses[25..].iter().sum::<f64>() / 5.0;
    assert!(tail < 0.5 * losses[0], "loss did not fall: {losses:?}");
    let eval = eval_step(&model, 4, &cfg).unwrap();
    assert_eq!(eval.graph.updates.len(), 0);
}
