//! Helpers for the interpreter's tests: one-op graphs, random values, tolerant comparison.

use super::{Feeds, evaluate};
use crate::init::Rng;
use crate::ir::{Graph, Op, TensorType};

/// Builds a graph whose first argument is an `Input` named `x` and whose others are `Param`s
/// named `op/p1`, `op/p2`, ..., pushes `op` on them, evaluates it and returns the output's shape
/// and values.
pub(super) fn run_op(op: Op, args: &[(&[usize], &[f64])]) -> (Vec<usize>, Vec<f64>) {
    let mut g = Graph::new();
    let mut feeds = Feeds::new();
    let mut ids = Vec::new();
    for (i, (shape, data)) in args.iter().enumerate() {
        let name = if i == 0 { "x".to_string() } else { format!("op/p{i}") };
        let id = if i == 0 {
            g.input(&name, TensorType::f32(shape.to_vec())).expect("valid input")
        } else {
            g.param(&name, shape, true, "op").expect("valid param")
        };
        feeds.insert(name, data.to_vec());
        ids.push(id);
    }
    let out = g.push(op, &ids, "op").expect("shape inference accepts the test op");
    g.outputs.push(out);
    let mut values = evaluate(&g, &feeds).expect("evaluation succeeds");
    (g.shape(out).to_vec(), values.remove(0))
}

/// `n` values uniform in `[-1, 1)`.
pub(super) fn random(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.uniform_in(-1.0, 1.0)).collect()
}

/// Sum of elementwise products.
pub(super) fn dot(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Asserts equal lengths and `|got - want| <= tol * max(1, |want|)` elementwise.
#[track_caller]
pub(super) fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "lengths differ: got {got:?}, want {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "element {i}: got {g}, want {w}\n got {got:?}\nwant {want:?}"
        );
    }
}
