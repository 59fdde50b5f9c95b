//! The training step as one graph: forward (training mode), loss, metrics, reverse-mode
//! gradients, gradient clipping and the optimizer update of every trainable parameter, with
//! all state writes expressed as `Graph::updates`.

use super::{Loss, Metric, Optimizer};
use crate::error::{GraphError, Result};
use crate::grad::grad;
use crate::init::Initializer;
use crate::ir::{BinaryOp, Graph, NodeId, Op, ReduceOp, TensorType, UnaryOp};
use crate::model::{Model, ParamStore};

/// Name of the labels input (shaped like the model's output; one-hot for sparse labels).
pub const LABELS: &str = "labels";
/// Name of the learning-rate input, `(1,)`.
pub const LEARNING_RATE: &str = "optimizer/learning_rate";
/// Name of the step-size input, `(1,)` (Adam's bias-corrected rate; else the learning rate).
pub const STEP_SIZE: &str = "optimizer/step_size";

/// What `compile` fixes: the loss, the optimizer and the metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct CompileConfig {
    /// The loss.
    pub loss: Loss,
    /// The optimizer.
    pub optimizer: Optimizer,
    /// Metrics reported beside the loss.
    pub metrics: Vec<Metric>,
}

/// A training or evaluation step graph and what the runtime needs to drive it.
#[derive(Debug, Clone)]
pub struct StepGraph {
    /// The graph. Its outputs are the loss then the metrics, each `(1,)`.
    pub graph: Graph,
    /// Names of the outputs, in order (`loss`, `accuracy`, ...).
    pub output_names: Vec<String>,
    /// Initial values of the optimizer's state (zeros), named `optimizer/<slot>/<param>`.
    pub slots: ParamStore,
}

/// Adds the model's single output's loss and metrics against a `labels` input.
fn loss_and_metrics(graph: &mut Graph, cfg: &CompileConfig) -> Result<(NodeId, Vec<(String, NodeId)>)> {
    if graph.outputs.len() != 1 {
        return Err(GraphError::arg(
            "compile",
            "loss",
            format!(
                "a single loss needs a model with one output, this one has {}",
                graph.outputs.len()
            ),
        ));
    }
    let y = graph.outputs[0];
    let labels = graph.input(LABELS, TensorType::f32(graph.shape(y).to_vec()))?;
    let loss = cfg.loss.build(graph, y, labels)?;
    let mut metrics = Vec::new();
    for m in &cfg.metrics {
        metrics.push((m.name(), m.build(graph, y, labels)?));
    }
    Ok((loss, metrics))
}

/// The evaluation step at `batch`: the inference graph, then the loss and metrics.
pub fn eval_step(model: &Model, batch: usize, cfg: &CompileConfig) -> Result<StepGraph> {
    let mut graph = model.graph(batch)?;
    let (loss, metrics) = loss_and_metrics(&mut graph, cfg)?;
    finish(graph, loss, metrics, ParamStore::new(0))
}

/// The training step at `batch`: forward in training mode, loss and metrics, gradients of every
/// trainable parameter, optional global-norm clipping, and the optimizer update.
pub fn train_step(model: &Model, batch: usize, cfg: &CompileConfig) -> Result<StepGraph> {
    cfg.optimizer.validate()?;
    let mut graph = model.training_graph(batch)?;
    let (loss, metrics) = loss_and_metrics(&mut graph, cfg)?;
    let params: Vec<(NodeId, String)> = graph
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match &n.op {
            Op::Param { name, trainable: true } => Some((NodeId(i as u32), name.clone())),
            _ => None,
        })
        .collect();
    let wrt: Vec<NodeId> = params.iter().map(|(id, _)| *id).collect();
    let mut grads = grad(&mut graph, loss, &wrt)?;
    if let Some(clip) = cfg.optimizer.global_clipnorm {
        grads = clip_global_norm(&mut graph, &grads, clip)?;
    }
    let lr = graph.input(LEARNING_RATE, TensorType::f32(vec![1]))?;
    let step = graph.input(STEP_SIZE, TensorType::f32(vec![1]))?;
    let mut slots = ParamStore::new(0);
    for ((p, name), g) in params.iter().zip(grads) {
        let shape = graph.shape(*p).to_vec();
        let mut slot_nodes = Vec::new();
        for s in cfg.optimizer.slots() {
            let slot_name = format!("optimizer/{s}/{name}");
            slots.ensure(&slot_name, &shape, Initializer::Zeros, false, "optimizer")?;
            slot_nodes.push(graph.param(&slot_name, &shape, false, "optimizer")?);
        }
        let (new_p, new_slots) = cfg.optimizer.update(&mut graph, *p, g, &slot_nodes, lr, step)?;
        graph.updates.push((*p, new_p));
        for (s, v) in slot_nodes.into_iter().zip(new_slots) {
            graph.updates.push((s, v));
        }
    }
    finish(graph, loss, metrics, slots)
}

fn finish(mut graph: Graph, loss: NodeId, metrics: Vec<(String, NodeId)>, slots: ParamStore) -> Result<StepGraph> {
    let mut output_names = vec!["loss".to_string()];
    graph.outputs = vec![loss];
    for (n, id) in metrics {
        output_names.push(n);
        graph.outputs.push(id);
    }
    Ok(StepGraph {
        graph,
        output_names,
        slots,
    })
}

/// Scales `grads` by `clip / max(norm, clip)` where `norm` is their joint L2 norm.
fn clip_global_norm(graph: &mut Graph, grads: &[NodeId], clip: f32) -> Result<Vec<NodeId>> {
    let l = "optimizer";
    let mut total: Option<NodeId> = None;
    for &g in grads {
        let sq = graph.push(Op::Unary(UnaryOp::Square), &[g], l)?;
        let axes: Vec<usize> = (0..graph.shape(g).len()).collect();
        let s = graph.push(
            Op::Reduce {
                op: ReduceOp::Sum,
                axes,
                keep_dims: false,
            },
            &[sq],
            l,
        )?;
        total = Some(match total {
            None => s,
            Some(t) => graph.push(Op::Binary(BinaryOp::Add), &[t, s], l)?,
        });
    }
    let Some(total) = total else { return Ok(vec![]) };
    let norm = graph.push(Op::Unary(UnaryOp::Sqrt), &[total], l)?;
    let c = graph.fill(&[1], clip, l)?;
    let denom = graph.push(Op::Binary(BinaryOp::Max), &[norm, c], l)?;
    let scale = graph.push(Op::Binary(BinaryOp::Div), &[c, denom], l)?;
    grads
        .iter()
        .map(|&g| graph.push(Op::Binary(BinaryOp::Mul), &[g, scale], l))
        .collect()
}
