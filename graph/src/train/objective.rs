//! Losses and metrics as graph functions over named model outputs and named targets (Keras's
//! `compile(loss={"boxes": ..., "classes": ...}, loss_weights={...})` and custom loss functions).
//!
//! A term is either a built-in [`Loss`] / [`Metric`] applied to one output against the target
//! of the same name, or a [`GraphFn`]: Rust code that builds IR nodes through a [`LossCtx`],
//! asking for model outputs and declaring the targets it reads. Every declared target becomes
//! an `Input` of the step graph named [`target_input`]`(name)`, and a [`TargetSpec`] tells the
//! trainer what to feed there.

use super::{Loss, Metric};
use crate::error::{GraphError, Result};
use crate::ir::{Graph, NodeId, TensorType, fmt_shape};
use std::sync::Arc;

/// Name of the per-sample weight input, `(batch,)` (Keras's `sample_weight`).
pub const SAMPLE_WEIGHT: &str = "sample_weight";

/// The step graph's input name of target `name`.
pub fn target_input(name: &str) -> String {
    format!("target/{name}")
}

/// What the trainer feeds to one target input.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSpec {
    /// The target's name: an output layer's name for built-in losses, or any name a custom
    /// loss declared.
    pub name: String,
    /// The shape of one sample as the user gives it (no batch axis); for class targets, the
    /// class indices' shape.
    pub shape: Vec<usize>,
    /// For class targets: the number of classes. The user gives class indices, the trainer
    /// feeds them one-hot along a new last axis of this length.
    pub classes: Option<usize>,
}

impl TargetSpec {
    /// The shape of the graph input at `batch` (one-hot classes appended for class targets).
    pub fn input_shape(&self, batch: usize) -> Vec<usize> {
        let mut s = vec![batch];
        s.extend_from_slice(&self.shape);
        s.extend(self.classes);
        s
    }
}

/// The function behind a [`GraphFn`].
type BuildFn = dyn Fn(&mut LossCtx<'_>) -> Result<NodeId> + Send + Sync;

/// A loss or metric written as Rust code over IR nodes.
#[derive(Clone)]
pub struct GraphFn(Arc<BuildFn>);

impl GraphFn {
    /// Wraps `f`. It returns per-sample values shaped `(batch, ...)` (averaged over every
    /// element after sample weighting), or one `(1,)` value.
    pub fn new(f: impl Fn(&mut LossCtx<'_>) -> Result<NodeId> + Send + Sync + 'static) -> Self {
        GraphFn(Arc::new(f))
    }

    /// Builds the function's nodes.
    pub fn call(&self, ctx: &mut LossCtx<'_>) -> Result<NodeId> {
        (self.0)(ctx)
    }
}

impl std::fmt::Debug for GraphFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GraphFn(..)")
    }
}

impl PartialEq for GraphFn {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// What a loss term computes.
#[derive(Debug, Clone, PartialEq)]
pub enum LossKind {
    /// A built-in loss of one output (`None`: the model's only output) against the target of
    /// the same name.
    Builtin {
        /// The output layer's name.
        output: Option<String>,
        /// The loss.
        loss: Loss,
    },
    /// A custom loss.
    Custom(GraphFn),
}

/// One weighted term of the total loss.
#[derive(Debug, Clone, PartialEq)]
pub struct LossTerm {
    /// The term's name in histories (`loss` for a single term, else `<output>_loss` or the
    /// custom loss's name).
    pub name: String,
    /// The factor of this term in the total loss (Keras's `loss_weights`).
    pub weight: f32,
    /// What it computes.
    pub kind: LossKind,
}

impl LossTerm {
    /// A built-in loss on the model's only output.
    pub fn single(loss: Loss) -> Self {
        LossTerm {
            name: "loss".into(),
            weight: 1.0,
            kind: LossKind::Builtin { output: None, loss },
        }
    }

    /// A built-in loss on output `output`, named `<output>_loss`.
    pub fn on(output: &str, loss: Loss, weight: f32) -> Self {
        LossTerm {
            name: format!("{output}_loss"),
            weight,
            kind: LossKind::Builtin {
                output: Some(output.to_string()),
                loss,
            },
        }
    }

    /// A custom loss called `name`.
    pub fn custom(name: &str, weight: f32, f: GraphFn) -> Self {
        LossTerm {
            name: name.to_string(),
            weight,
            kind: LossKind::Custom(f),
        }
    }
}

/// What a metric computes.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricKind {
    /// A built-in metric of one output (`None`: the model's only output).
    Builtin {
        /// The output layer's name.
        output: Option<String>,
        /// The metric.
        metric: Metric,
    },
    /// A custom metric (never differentiated).
    Custom(GraphFn),
}

/// A metric reported beside the loss.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricTerm {
    /// The name in histories (`accuracy`, or `<output>_accuracy` on a named output).
    pub name: String,
    /// What it computes.
    pub kind: MetricKind,
}

impl MetricTerm {
    /// A built-in metric on the model's only output.
    pub fn single(metric: Metric) -> Self {
        MetricTerm {
            name: metric.name(),
            kind: MetricKind::Builtin { output: None, metric },
        }
    }

    /// A built-in metric on output `output`, named `<output>_<metric>`.
    pub fn on(output: &str, metric: Metric) -> Self {
        MetricTerm {
            name: format!("{output}_{}", metric.name()),
            kind: MetricKind::Builtin {
                output: Some(output.to_string()),
                metric,
            },
        }
    }

    /// A custom metric called `name`.
    pub fn custom(name: &str, f: GraphFn) -> Self {
        MetricTerm {
            name: name.to_string(),
            kind: MetricKind::Custom(f),
        }
    }
}

/// What a loss or metric function sees while it builds its nodes: the step graph, the model's
/// outputs by name, and the targets declared so far.
pub struct LossCtx<'a> {
    /// The step graph under construction.
    pub graph: &'a mut Graph,
    term: &'a str,
    outputs: &'a [(String, NodeId)],
    batch: usize,
    targets: &'a mut Vec<(TargetSpec, NodeId)>,
    sample_weight: &'a mut Option<NodeId>,
}

impl<'a> LossCtx<'a> {
    pub(crate) fn new(
        graph: &'a mut Graph,
        term: &'a str,
        outputs: &'a [(String, NodeId)],
        batch: usize,
        targets: &'a mut Vec<(TargetSpec, NodeId)>,
        sample_weight: &'a mut Option<NodeId>,
    ) -> Self {
        LossCtx {
            graph,
            term,
            outputs,
            batch,
            targets,
            sample_weight,
        }
    }

    /// The batch size of the step being built.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The name of the loss or metric being built (for errors and node names).
    pub fn term(&self) -> &str {
        self.term
    }

    /// The model's output called `name` (an output layer's name).
    pub fn output(&self, name: &str) -> Result<NodeId> {
        self.outputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
            .ok_or_else(|| {
                GraphError::arg(
                    self.term,
                    "output",
                    format!(
                        "refers to output '{name}'; the model's outputs are {}",
                        self.outputs
                            .iter()
                            .map(|(n, _)| format!("'{n}'"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
    }

    /// The names of the model's outputs, in order.
    pub fn output_names(&self) -> Vec<String> {
        self.outputs.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Declares (or reuses) a dense target called `name` with per-sample shape `shape`, and
    /// returns its `(batch, ...shape)` input node.
    pub fn target(&mut self, name: &str, shape: &[usize]) -> Result<NodeId> {
        self.declare(TargetSpec {
            name: name.to_string(),
            shape: shape.to_vec(),
            classes: None,
        })
    }

    /// Declares (or reuses) a class target called `name`: class indices of per-sample shape
    /// `shape`, fed one-hot over `classes`. Returns the one-hot `(batch, ...shape, classes)` node.
    pub fn class_target(&mut self, name: &str, shape: &[usize], classes: usize) -> Result<NodeId> {
        self.declare(TargetSpec {
            name: name.to_string(),
            shape: shape.to_vec(),
            classes: Some(classes),
        })
    }

    fn declare(&mut self, spec: TargetSpec) -> Result<NodeId> {
        if let Some((have, id)) = self.targets.iter().find(|(s, _)| s.name == spec.name) {
            if *have != spec {
                return Err(GraphError::arg(
                    self.term,
                    "target",
                    format!(
                        "target '{}' is declared twice with different shapes: {}{} and {}{}",
                        spec.name,
                        fmt_shape(&have.shape),
                        have.classes.map(|c| format!(" ({c} classes)")).unwrap_or_default(),
                        fmt_shape(&spec.shape),
                        spec.classes.map(|c| format!(" ({c} classes)")).unwrap_or_default(),
                    ),
                ));
            }
            return Ok(*id);
        }
        let id = self
            .graph
            .input(&target_input(&spec.name), TensorType::f32(spec.input_shape(self.batch)))?;
        self.targets.push((spec, id));
        Ok(id)
    }

    /// The target called `name`, if one was declared.
    pub fn declared(&self, name: &str) -> Option<&TargetSpec> {
        self.targets.iter().find(|(s, _)| s.name == name).map(|(s, _)| s)
    }

    /// The per-sample weight input `(batch,)`, declared on first use.
    pub fn sample_weight(&mut self) -> Result<NodeId> {
        if let Some(w) = *self.sample_weight {
            return Ok(w);
        }
        let w = self.graph.input(SAMPLE_WEIGHT, TensorType::f32(vec![self.batch]))?;
        *self.sample_weight = Some(w);
        Ok(w)
    }
}
