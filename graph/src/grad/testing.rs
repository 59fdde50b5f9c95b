//! The finite-difference harness of the gradient tests: build a small graph with random fed
//! values, take `loss = sum(out * R)` for a fixed random `R`, and compare [`grad`] (run by the
//! f64 interpreter) with central differences of the loss.

use super::grad;
use crate::init::Rng;
use crate::interp::{Feeds, evaluate_all};
use crate::ir::{BinaryOp, Graph, NodeId, Op, ReduceOp, TensorType, numel};
use proptest::prelude::*;

/// The finite-difference step.
const EPS: f64 = 1e-6;
/// Allowed `|analytic - numeric| / max(1, |numeric|)`.
const TOL: f64 = 1e-6;
/// Values drawn by [`Check::input_distinct`] are at least this far apart.
const GAP: f64 = 1e-3;

/// Feeds from `(name, values)` pairs.
pub(super) fn fed(pairs: &[(&str, Vec<f64>)]) -> Feeds {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// A graph under construction with the values of its inputs and parameters.
pub(super) struct Check {
    /// The forward graph.
    pub graph: Graph,
    /// The value of every input and parameter.
    pub feeds: Feeds,
    /// The generator for values.
    pub rng: Rng,
    /// Every value drawn by [`Check::input_distinct`] so far.
    distinct: Vec<f64>,
}

impl Check {
    /// An empty graph drawing values from `rng`.
    pub fn new(rng: Rng) -> Self {
        Check {
            graph: Graph::new(),
            feeds: Feeds::new(),
            rng,
            distinct: Vec::new(),
        }
    }

    /// An input named `name` with the given values.
    pub fn input_values(&mut self, name: &str, shape: &[usize], values: Vec<f64>) -> NodeId {
        assert_eq!(values.len(), numel(shape));
        self.feeds.insert(name.to_string(), values);
        self.graph
            .input(name, TensorType::f32(shape.to_vec()))
            .expect("a valid input")
    }

    /// An `i32` input named `name` (indices) holding the integers `values`.
    pub fn input_indices(&mut self, name: &str, shape: &[usize], values: Vec<f64>) -> NodeId {
        assert_eq!(values.len(), numel(shape));
        self.feeds.insert(name.to_string(), values);
        let ty = TensorType {
            shape: shape.to_vec(),
            dtype: crate::ir::DType::I32,
        };
        self.graph.input(name, ty).expect("a valid input")
    }

    /// An input of values uniform in `[lo, hi)`.
    pub fn input(&mut self, name: &str, shape: &[usize], lo: f64, hi: f64) -> NodeId {
        let values = (0..numel(shape)).map(|_| self.rng.uniform_in(lo, hi)).collect();
        self.input_values(name, shape, values)
    }

    /// An input of values in `[-1, 1)` that are [`GAP`] apart from each other and from every
    /// other value this check drew so far (no ties within a finite-difference step, for max-like ops).
    pub fn input_distinct(&mut self, name: &str, shape: &[usize]) -> NodeId {
        let mut values = Vec::with_capacity(numel(shape));
        while values.len() < numel(shape) {
            let v = self.rng.uniform_in(-1.0, 1.0);
            if self.distinct.iter().all(|d| (d - v).abs() >= GAP) {
                self.distinct.push(v);
                values.push(v);
            }
        }
        self.input_values(name, shape, values)
    }

    /// A trainable parameter named `name` of values uniform in `[lo, hi)`.
    pub fn param(&mut self, name: &str, shape: &[usize], lo: f64, hi: f64) -> NodeId {
        let values = (0..numel(shape)).map(|_| self.rng.uniform_in(lo, hi)).collect();
        self.feeds.insert(name.to_string(), values);
        self.graph.param(name, shape, true, "test").expect("a valid param")
    }

    /// Adds `op` of `inputs` (the test's op: shape inference must accept it).
    pub fn push(&mut self, op: Op, inputs: &[NodeId]) -> NodeId {
        self.graph
            .push(op, inputs, "test")
            .expect("shape inference accepts the op")
    }

    /// `loss = sum(out * R)` with a random `R`, then checks `grad(loss, wrt)` (each `wrt` an
    /// input or parameter) against central differences, element by element. Returns the
    /// analytic gradients.
    pub fn check(self, out: NodeId, wrt: &[NodeId]) -> Result<Vec<Vec<f64>>, TestCaseError> {
        let Check {
            mut graph,
            mut feeds,
            mut rng,
            ..
        } = self;
        let shape = graph.shape(out).to_vec();
        let r = graph.param("fd/r", &shape, false, "fd").expect("a valid param");
        feeds.insert(
            "fd/r".into(),
            (0..numel(&shape)).map(|_| rng.uniform_in(-1.0, 1.0)).collect(),
        );
        let weighted = graph
            .push(Op::Binary(BinaryOp::Mul), &[out, r], "fd")
            .expect("same shapes");
        let loss = graph
            .push(
                Op::Reduce {
                    op: ReduceOp::Sum,
                    axes: (0..shape.len()).collect(),
                    keep_dims: false,
                },
                &[weighted],
                "fd",
            )
            .expect("a valid reduction");
        let forward = graph.clone();
        let grads = grad(&mut graph, loss, wrt).map_err(|e| TestCaseError::fail(format!("grad failed: {e}")))?;
        let values =
            evaluate_all(&graph, &feeds).map_err(|e| TestCaseError::fail(format!("evaluation failed: {e}")))?;
        let loss_at = |feeds: &Feeds| -> Result<f64, TestCaseError> {
            let v = evaluate_all(&forward, feeds).map_err(|e| TestCaseError::fail(format!("{e}")))?;
            Ok(v[loss.index()][0])
        };
        let mut analytic = Vec::new();
        for (&w, &gw) in wrt.iter().zip(&grads) {
            let name = match &graph.node(w).op {
                Op::Input { name } | Op::Param { name, .. } => name.clone(),
                op => panic!("the harness differentiates fed nodes only, not {}", op.name()),
            };
            let got = values[gw.index()].clone();
            prop_assert_eq!(got.len(), feeds[&name].len());
            let mut probe = feeds.clone();
            for (e, &a) in got.iter().enumerate() {
                let base = feeds[&name][e];
                probe.get_mut(&name).expect("fed")[e] = base + EPS;
                let up = loss_at(&probe)?;
                probe.get_mut(&name).expect("fed")[e] = base - EPS;
                let down = loss_at(&probe)?;
                probe.get_mut(&name).expect("fed")[e] = base;
                let numeric = (up - down) / (2.0 * EPS);
                prop_assert!(
                    (a - numeric).abs() <= TOL * numeric.abs().max(1.0),
                    "d loss / d {}[{}]: grad gives {}, finite differences {} (value {})",
                    name,
                    e,
                    a,
                    numeric,
                    base
                );
            }
            analytic.push(got);
        }
        Ok(analytic)
    }
}
