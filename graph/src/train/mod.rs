//! Training as IR: losses, metrics, optimizers, learning-rate schedules, and the step graph
//! that puts them together with the model's forward pass and its reverse-mode gradient.

mod loss;
mod metrics;
mod objective;
mod optimizer;
mod schedule;
mod step;
#[cfg(test)]
mod tests;

pub use loss::{EPSILON, Loss, bce_logits_elems, dice_per_sample, focal_elems};
pub use metrics::Metric;
pub use objective::{
    GraphFn, LossCtx, LossKind, LossTerm, MetricKind, MetricTerm, SAMPLE_WEIGHT, TargetSpec, target_input,
};
pub use optimizer::{Optimizer, OptimizerKind};
pub use schedule::Schedule;
pub use step::{
    CompileConfig, LEARNING_RATE, STEP_SIZE, StepGraph, eval_step, input_gradient_step, train_step, variable_name,
};

use crate::error::{GraphError, Result};
use crate::interp::{Feeds, evaluate_all};
use crate::ir::{Graph, Op};

/// Runs one step of `graph` in the reference interpreter: evaluates it with `feeds` (inputs and
/// parameters by name), then applies `graph.updates` to the parameter feeds. Returns the outputs.
pub fn reference_step(graph: &Graph, feeds: &mut Feeds) -> Result<Vec<Vec<f64>>> {
    let values = evaluate_all(graph, feeds)?;
    for &(param, value) in &graph.updates {
        let Op::Param { name, .. } = &graph.node(param).op else {
            return Err(GraphError::Value {
                what: format!("{param}"),
                message: "updates must target parameters".into(),
            });
        };
        feeds.insert(name.clone(), values[value.index()].clone());
    }
    Ok(graph.outputs.iter().map(|o| values[o.index()].clone()).collect())
}
