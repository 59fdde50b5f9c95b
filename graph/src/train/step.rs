//! The training step as one graph: forward (training mode), loss, metrics, reverse-mode
//! gradients, gradient clipping and the optimizer update of every trainable parameter, with
//! all state writes expressed as `Graph::updates`.

use super::objective::{LossCtx, LossKind, LossTerm, MetricKind, MetricTerm, SAMPLE_WEIGHT, TargetSpec};
use super::{Loss, Metric, Optimizer};
use crate::error::{GraphError, Result};
use crate::grad::grad;
use crate::init::Initializer;
use crate::ir::{BinaryOp, Graph, NodeId, Op, ReduceOp, TensorType, UnaryOp};
use crate::model::{Model, ParamStore};

/// Name of the learning-rate input, `(1,)`.
pub const LEARNING_RATE: &str = "optimizer/learning_rate";
/// Name of the step-size input, `(1,)` (Adam's bias-corrected rate; else the learning rate).
pub const STEP_SIZE: &str = "optimizer/step_size";

/// What `compile` fixes: the losses, the optimizer and the metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct CompileConfig {
    /// The weighted loss terms; the training loss is their weighted sum.
    pub losses: Vec<LossTerm>,
    /// The optimizer.
    pub optimizer: Optimizer,
    /// Metrics reported beside the loss.
    pub metrics: Vec<MetricTerm>,
    /// Whether steps read a per-sample weight input ([`SAMPLE_WEIGHT`], Keras's
    /// `sample_weight`): every term's per-sample values are multiplied by it before averaging.
    pub sample_weights: bool,
    /// Model inputs the optimizer updates instead of reading them from the data (an image
    /// optimised through a frozen network). Each becomes a trainable variable named
    /// [`variable_name`]`(input)` whose value the runtime holds, with the batch axis.
    pub trainable_inputs: Vec<String>,
}

impl CompileConfig {
    /// One built-in loss on the model's only output, with metrics on that output.
    pub fn new(loss: Loss, optimizer: Optimizer, metrics: Vec<Metric>) -> Self {
        CompileConfig {
            losses: vec![LossTerm::single(loss)],
            optimizer,
            metrics: metrics.into_iter().map(MetricTerm::single).collect(),
            sample_weights: false,
            trainable_inputs: Vec::new(),
        }
    }

    /// Several loss terms (built-in per output, or custom) and metrics.
    pub fn with_terms(losses: Vec<LossTerm>, optimizer: Optimizer, metrics: Vec<MetricTerm>) -> Self {
        CompileConfig {
            losses,
            optimizer,
            metrics,
            sample_weights: false,
            trainable_inputs: Vec::new(),
        }
    }

    /// The single built-in loss, if the configuration is one built-in loss on one output.
    pub fn single_loss(&self) -> Option<Loss> {
        match self.losses.as_slice() {
            [
                LossTerm {
                    kind: LossKind::Builtin { loss, .. },
                    ..
                },
            ] => Some(*loss),
            _ => None,
        }
    }
}

/// The runtime variable that replaces the trainable input `input`.
pub fn variable_name(input: &str) -> String {
    format!("{input}/variable")
}

/// A training or evaluation step graph and what the runtime needs to drive it.
#[derive(Debug, Clone)]
pub struct StepGraph {
    /// The graph. Its outputs are the total loss, then each loss term's value (when there
    /// are several), then the metrics, each `(1,)`; an input-gradient step adds the gradient.
    pub graph: Graph,
    /// Names of the outputs, in order (`loss`, `boxes_loss`, `accuracy`, ...).
    pub output_names: Vec<String>,
    /// Initial values of the optimizer's state (zeros), named `optimizer/<slot>/<param>`.
    pub slots: ParamStore,
    /// The model inputs fed from the data, with one sample's shape (no batch axis).
    pub inputs: Vec<(String, Vec<usize>)>,
    /// The targets fed from the data.
    pub targets: Vec<TargetSpec>,
    /// Whether the step reads [`SAMPLE_WEIGHT`].
    pub sample_weight: bool,
    /// Trainable inputs turned into variables: `(variable name, full shape with batch)`.
    pub variables: Vec<(String, Vec<usize>)>,
}

/// The loss and metric nodes of a step.
struct Objective {
    loss: NodeId,
    terms: Vec<(String, NodeId)>,
    metrics: Vec<(String, NodeId)>,
    targets: Vec<TargetSpec>,
    sample_weight: bool,
}

/// The model's outputs of `graph` by output layer name.
fn named_outputs(model: &Model, graph: &Graph) -> Vec<(String, NodeId)> {
    model
        .output_names()
        .into_iter()
        .zip(graph.outputs.iter().copied())
        .collect()
}

fn resolve_output(outputs: &[(String, NodeId)], term: &str, output: &Option<String>) -> Result<String> {
    match output {
        Some(o) => Ok(o.clone()),
        None if outputs.len() == 1 => Ok(outputs[0].0.clone()),
        None => Err(GraphError::arg(
            term,
            "output",
            format!(
                "the model has {} outputs ({}); name the output each loss and metric applies to",
                outputs.len(),
                outputs
                    .iter()
                    .map(|(n, _)| format!("'{n}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// Averages a term's values: per-sample values `(batch, ...)` are weighted by the sample
/// weights when the step has them; the mean is over every element.
fn reduce_term(graph: &mut Graph, v: NodeId, batch: usize, w: Option<NodeId>, term: &str) -> Result<NodeId> {
    let shape = graph.shape(v).to_vec();
    let v = match w {
        Some(w) if shape.first() == Some(&batch) => {
            let mut ws = vec![batch];
            ws.extend(std::iter::repeat_n(1, shape.len() - 1));
            let w = graph.reshape(w, &ws, term)?;
            graph.push(Op::Binary(BinaryOp::Mul), &[v, w], term)?
        }
        _ => v,
    };
    super::loss::mean_all(graph, v, term)
}

/// Adds every loss term and metric of `cfg` to `graph` (whose outputs are the model's).
fn objective(graph: &mut Graph, model: &Model, batch: usize, cfg: &CompileConfig) -> Result<Objective> {
    if cfg.losses.is_empty() {
        return Err(GraphError::arg("compile", "loss", "no loss given"));
    }
    let outputs = named_outputs(model, graph);
    let mut targets: Vec<(TargetSpec, NodeId)> = Vec::new();
    let mut sw: Option<NodeId> = None;
    if cfg.sample_weights {
        sw = Some(graph.input(SAMPLE_WEIGHT, TensorType::f32(vec![batch]))?);
    }
    let mut terms = Vec::new();
    let mut total: Option<NodeId> = None;
    for t in &cfg.losses {
        if !t.weight.is_finite() {
            return Err(GraphError::arg(
                &t.name,
                "weight",
                format!("must be finite, got {}", t.weight),
            ));
        }
        let mut ctx = LossCtx::new(graph, &t.name, &outputs, batch, &mut targets, &mut sw);
        let v = match &t.kind {
            LossKind::Builtin { output, loss } => {
                let o = resolve_output(&outputs, &t.name, output)?;
                loss.build_term(&mut ctx, &o)?
            }
            LossKind::Custom(f) => f.call(&mut ctx)?,
        };
        let v = reduce_term(graph, v, batch, if cfg.sample_weights { sw } else { None }, &t.name)?;
        let weighted = if t.weight == 1.0 {
            v
        } else {
            graph.push(Op::Unary(UnaryOp::Scale(t.weight)), &[v], &t.name)?
        };
        total = Some(match total {
            None => weighted,
            Some(s) => graph.push(Op::Binary(BinaryOp::Add), &[s, weighted], "loss")?,
        });
        terms.push((t.name.clone(), v));
    }
    let mut metrics = Vec::new();
    for m in &cfg.metrics {
        let mut ctx = LossCtx::new(graph, &m.name, &outputs, batch, &mut targets, &mut sw);
        let v = match &m.kind {
            MetricKind::Builtin { output, metric } => {
                let o = resolve_output(&outputs, &m.name, output)?;
                let y = ctx.output(&o)?;
                let shape = ctx.graph.shape(y)[1..].to_vec();
                let truth = match metric {
                    Metric::Accuracy | Metric::TopK(_) => {
                        let (last, rest) = shape
                            .split_last()
                            .ok_or_else(|| GraphError::shape(&m.name, format!("output '{o}' has no class axis")))?;
                        // A dense target of the output's shape if a loss declared one.
                        match ctx.declared(&o).map(|s| s.classes) {
                            Some(None) => ctx.target(&o, &shape)?,
                            _ => ctx.class_target(&o, rest, *last)?,
                        }
                    }
                    Metric::BinaryAccuracy { .. } => ctx.target(&o, &shape)?,
                };
                metric.build(ctx.graph, y, truth)?
            }
            MetricKind::Custom(f) => {
                let v = f.call(&mut ctx)?;
                super::loss::mean_all(graph, v, &m.name)?
            }
        };
        metrics.push((m.name.clone(), v));
    }
    let Some(loss) = total else {
        return Err(GraphError::arg("compile", "loss", "no loss given"));
    };
    Ok(Objective {
        loss,
        terms,
        metrics,
        targets: targets.into_iter().map(|(s, _)| s).collect(),
        sample_weight: sw.is_some(),
    })
}

fn model_inputs(model: &Model) -> Vec<(String, Vec<usize>)> {
    model.input_names().into_iter().zip(model.input_shapes()).collect()
}

/// The evaluation step at `batch`: the inference graph, then the losses and metrics.
pub fn eval_step(model: &Model, batch: usize, cfg: &CompileConfig) -> Result<StepGraph> {
    let mut graph = model.graph(batch)?;
    let obj = objective(&mut graph, model, batch, cfg)?;
    finish(graph, obj, ParamStore::new(0), model_inputs(model), Vec::new())
}

/// The gradient of the total loss with respect to the model input `input`, in inference
/// mode (saliency maps): a step graph whose outputs are the loss, each term, the metrics and
/// last the gradient, shaped like the input batch.
pub fn input_gradient_step(model: &Model, batch: usize, cfg: &CompileConfig, input: &str) -> Result<StepGraph> {
    let mut graph = model.graph(batch)?;
    let x = find_input(&graph, model, input)?;
    let obj = objective(&mut graph, model, batch, cfg)?;
    let loss = obj.loss;
    let g = grad(&mut graph, loss, &[x])?;
    let mut step = finish(graph, obj, ParamStore::new(0), model_inputs(model), Vec::new())?;
    step.graph.outputs.push(g[0]);
    step.output_names.push(format!("gradient/{input}"));
    Ok(step)
}

fn find_input(graph: &Graph, model: &Model, input: &str) -> Result<NodeId> {
    graph
        .inputs
        .iter()
        .copied()
        .find(|&i| matches!(&graph.node(i).op, Op::Input { name } if name == input))
        .ok_or_else(|| {
            let names = model.input_names();
            let hint = if graph
                .params()
                .any(|(_, n)| n.starts_with(&format!("{input}/")) || n == input)
            {
                format!(" ('{input}' is a layer with weights: freeze or unfreeze layers with set_trainable)")
            } else {
                String::new()
            };
            GraphError::arg(
                "compile",
                "trainable_inputs",
                format!(
                    "'{input}' is not a model input{hint}; the inputs are {}",
                    names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
                ),
            )
        })
}

/// The training step at `batch`: forward in training mode, losses and metrics, gradients of
/// every trainable parameter (and trainable input), optional global-norm clipping, and the
/// optimizer update.
pub fn train_step(model: &Model, batch: usize, cfg: &CompileConfig) -> Result<StepGraph> {
    cfg.optimizer.validate()?;
    let mut graph = model.training_graph(batch)?;
    let mut variables = Vec::new();
    for input in &cfg.trainable_inputs {
        let x = find_input(&graph, model, input)?;
        let name = variable_name(input);
        graph.nodes[x.index()].op = Op::Param {
            name: name.clone(),
            trainable: true,
        };
        graph.inputs.retain(|&i| i != x);
        variables.push((name, graph.shape(x).to_vec()));
    }
    let obj = objective(&mut graph, model, batch, cfg)?;
    let loss = obj.loss;
    let params: Vec<(NodeId, String)> = graph
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match &n.op {
            Op::Param { name, trainable: true } => Some((NodeId(i as u32), name.clone())),
            _ => None,
        })
        .collect();
    if params.is_empty() {
        return Err(GraphError::arg(
            "compile",
            "trainable",
            "nothing to train: every layer is frozen and no input is trainable",
        ));
    }
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
    let inputs = model_inputs(model)
        .into_iter()
        .filter(|(n, _)| !cfg.trainable_inputs.contains(n))
        .collect();
    finish(graph, obj, slots, inputs, variables)
}

fn finish(
    mut graph: Graph,
    obj: Objective,
    slots: ParamStore,
    inputs: Vec<(String, Vec<usize>)>,
    variables: Vec<(String, Vec<usize>)>,
) -> Result<StepGraph> {
    let mut output_names = vec!["loss".to_string()];
    graph.outputs = vec![obj.loss];
    if obj.terms.len() > 1 {
        for (n, id) in obj.terms {
            output_names.push(n);
            graph.outputs.push(id);
        }
    }
    for (n, id) in obj.metrics {
        output_names.push(n);
        graph.outputs.push(id);
    }
    for (i, n) in output_names.iter().enumerate() {
        if output_names[..i].contains(n) {
            return Err(GraphError::arg(
                "compile",
                "metrics",
                format!("two losses or metrics are named '{n}'"),
            ));
        }
    }
    Ok(StepGraph {
        graph,
        output_names,
        slots,
        inputs,
        targets: obj.targets,
        sample_weight: obj.sample_weight,
        variables,
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
