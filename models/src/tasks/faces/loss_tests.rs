//! The faces losses against straight loops over triplets, and their gradients against central
//! differences (run by the f64 reference interpreter).

use super::*;
use fovea_graph::grad::grad;
use fovea_graph::init::Rng;
use fovea_graph::interp::{Feeds, evaluate};
use fovea_graph::ir::TensorType;

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Batch-hard by hand: per anchor, the farthest positive and nearest negative.
fn batch_hard_by_hand(e: &[Vec<f64>], labels: &[f64], margin: f64) -> Vec<f64> {
    (0..e.len())
        .map(|a| {
            let (mut hp, mut hn) = (0.0f64, f64::INFINITY);
            for j in 0..e.len() {
                let d = sq_dist(&e[a], &e[j]);
                if j != a && labels[j] == labels[a] {
                    hp = hp.max(d);
                } else if labels[j] != labels[a] {
                    hn = hn.min(d);
                }
            }
            (hp - hn + margin).max(0.0)
        })
        .collect()
}

/// Batch-all by hand: the mean over triplets with a positive loss.
fn batch_all_by_hand(e: &[Vec<f64>], labels: &[f64], margin: f64) -> f64 {
    let (mut sum, mut count) = (0.0, 0usize);
    for a in 0..e.len() {
        for p in 0..e.len() {
            for n in 0..e.len() {
                if p != a && labels[p] == labels[a] && labels[n] != labels[a] {
                    let l = sq_dist(&e[a], &e[p]) - sq_dist(&e[a], &e[n]) + margin;
                    if l > 0.0 {
                        sum += l;
                        count += 1;
                    }
                }
            }
        }
    }
    sum / count.max(1) as f64
}

/// A graph of the loss summed to one value, with its gradient with respect to `e`.
fn loss_graph(n: usize, dim: usize, mining: Mining, margin: f32) -> Graph {
    let mut g = Graph::new();
    let e = g.input("e", TensorType::f32(vec![n, dim])).unwrap();
    let labels = g.input("labels", TensorType::f32(vec![n])).unwrap();
    let l = triplet_loss(&mut g, e, labels, mining, margin, "triplet").unwrap();
    let total = g
        .push(
            Op::Reduce {
                op: ReduceOp::Sum,
                axes: vec![0],
                keep_dims: false,
            },
            &[l],
            "sum",
        )
        .unwrap();
    let de = grad(&mut g, total, &[e]).unwrap()[0];
    g.outputs = vec![l, total, de];
    g
}

fn feeds(e: &[f64], labels: &[f64]) -> Feeds {
    [("e".to_string(), e.to_vec()), ("labels".to_string(), labels.to_vec())]
        .into_iter()
        .collect()
}

fn check(mining: Mining, labels: &[f64], dim: usize, margin: f32, seed: u64) {
    let n = labels.len();
    let mut rng = Rng::new(seed);
    let flat: Vec<f64> = (0..n * dim).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
    let rows: Vec<Vec<f64>> = flat.chunks(dim).map(|c| c.to_vec()).collect();
    let g = loss_graph(n, dim, mining, margin);
    let out = evaluate(&g, &feeds(&flat, labels)).unwrap();
    // The value against the loops.
    match mining {
        Mining::BatchHard => {
            let want = batch_hard_by_hand(&rows, labels, margin as f64);
            assert_eq!(out[0].len(), n);
            for (a, (got, want)) in out[0].iter().zip(&want).enumerate() {
                assert!((got - want).abs() < 1e-9, "anchor {a}: {got} vs {want}");
            }
            assert!(want.iter().any(|&v| v > 0.0), "the case exercises the hinge");
        }
        Mining::BatchAll => {
            let want = batch_all_by_hand(&rows, labels, margin as f64);
            assert!((out[0][0] - want).abs() < 1e-9, "{} vs {want}", out[0][0]);
            assert!(want > 0.0);
        }
    }
    // The gradient against central differences of the summed loss.
    let h = 1e-6;
    for i in 0..flat.len() {
        let mut up = flat.clone();
        up[i] += h;
        let mut down = flat.clone();
        down[i] -= h;
        let f_up = evaluate(&g, &feeds(&up, labels)).unwrap()[1][0];
        let f_down = evaluate(&g, &feeds(&down, labels)).unwrap()[1][0];
        let numeric = (f_up - f_down) / (2.0 * h);
        let analytic = out[2][i];
        assert!(
            (analytic - numeric).abs() <= 1e-5 * (1.0 + numeric.abs()),
            "{mining:?} d/de[{i}]: analytic {analytic}, numeric {numeric}"
        );
    }
}

#[test]
fn batch_hard_matches_the_loops_and_finite_differences() {
    check(Mining::BatchHard, &[0.0, 0.0, 1.0, 1.0, 2.0, 2.0], 3, 0.5, 1);
    check(Mining::BatchHard, &[3.0, 3.0, 3.0, 1.0, 1.0, 7.0, 7.0], 5, 1.0, 2);
}

#[test]
fn batch_all_matches_the_loops_and_finite_differences() {
    check(Mining::BatchAll, &[0.0, 0.0, 1.0, 1.0, 2.0, 2.0], 3, 0.5, 3);
    check(Mining::BatchAll, &[3.0, 3.0, 3.0, 1.0, 1.0, 7.0, 7.0], 4, 0.2, 4);
}

#[test]
fn distances_and_masks_by_hand() {
    let mut g = Graph::new();
    let e = g.input("e", TensorType::f32(vec![3, 2])).unwrap();
    let labels = g.input("labels", TensorType::f32(vec![3])).unwrap();
    let d = pairwise_sq_distances(&mut g, e, "d").unwrap();
    let (pos, neg) = label_masks(&mut g, labels, "m").unwrap();
    g.outputs = vec![d, pos, neg];
    let out = evaluate(&g, &feeds(&[0.0, 0.0, 3.0, 4.0, 1.0, 0.0], &[5.0, 5.0, 2.0])).unwrap();
    assert_eq!(out[0], vec![0.0, 25.0, 1.0, 25.0, 0.0, 20.0, 1.0, 20.0, 0.0]);
    assert_eq!(out[1], vec![0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    assert_eq!(out[2], vec![0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0]);
}

#[test]
fn a_collapsed_embedding_sits_at_the_margin() {
    // Every face on one point: batch-hard gives exactly the margin (the collapse signature).
    let g = loss_graph(4, 2, Mining::BatchHard, 0.3);
    let out = evaluate(
        &g,
        &feeds(&[0.6, 0.8, 0.6, 0.8, 0.6, 0.8, 0.6, 0.8], &[0.0, 0.0, 1.0, 1.0]),
    )
    .unwrap();
    assert!(out[0].iter().all(|v| (v - 0.3).abs() < 1e-7), "{:?}", out[0]);
}

#[test]
fn bad_margins_and_names_are_errors() {
    assert!(FaceLoss::parse("batch-hard", 0.0, 3).unwrap_err().contains("margin"));
    assert!(FaceLoss::parse("semi", 0.2, 3).unwrap_err().contains("semi"));
    assert_eq!(FaceLoss::parse("softmax", 0.2, 3), Ok(FaceLoss::Softmax { classes: 3 }));
    let mut g = Graph::new();
    let e = g.input("e", TensorType::f32(vec![2, 2])).unwrap();
    let l = g.input("l", TensorType::f32(vec![2])).unwrap();
    let err = triplet_loss(&mut g, e, l, Mining::BatchAll, f32::NAN, "tl")
        .unwrap_err()
        .to_string();
    assert!(err.contains("tl") && err.contains("margin"), "{err}");
}
