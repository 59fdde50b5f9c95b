//! `predict`: a model's forward pass over many samples, batch by batch.

use crate::device::Device;
use crate::error::{EngineError, Result};
use crate::program::Program;
use crate::state::DeviceState;
use fovea_graph::ir::fmt_shape;
use fovea_graph::{Model, Tensor};
use std::collections::HashMap;
use std::sync::Arc;

/// Runs `model` (one input, one output) on `x` (`(samples, ...)`) in batches of `batch_size`
/// and returns the stacked outputs.
pub fn predict(device: &Arc<Device>, model: &Model, x: &Tensor, batch_size: usize) -> Result<Tensor> {
    let in_shapes = model.input_shapes();
    let out_shapes = model.output_shapes();
    if in_shapes.len() != 1 || out_shapes.len() != 1 {
        return Err(EngineError::Input {
            what: "predict".into(),
            message: format!(
                "needs a model with one input and one output, this one has {} and {}",
                in_shapes.len(),
                out_shapes.len()
            ),
        });
    }
    if batch_size == 0 {
        return Err(EngineError::Input {
            what: "batch_size".into(),
            message: "must be positive".into(),
        });
    }
    let sample = &in_shapes[0];
    if x.shape.len() != sample.len() + 1 || x.shape[1..] != sample[..] {
        return Err(EngineError::Input {
            what: "x".into(),
            message: format!(
                "expected shape (samples, {}), got {}",
                sample.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
                fmt_shape(&x.shape)
            ),
        });
    }
    let state = DeviceState::new(device);
    state.upload(&model.params)?;
    run_batches(device, &state, model, x, batch_size, &mut HashMap::new())
}

/// The forward pass of `model` (one input, one output; `x` already checked against it) over
/// `x` in batches of `batch_size`, with parameters from `state`. The last, smaller batch gets a
/// program of its own; `programs` keeps the programs by batch size for later calls.
pub(crate) fn run_batches(
    device: &Arc<Device>,
    state: &Arc<DeviceState>,
    model: &Model,
    x: &Tensor,
    batch_size: usize,
    programs: &mut HashMap<usize, Program>,
) -> Result<Tensor> {
    let n = x.shape[0];
    let batch = batch_size.min(n).max(1);
    let per_in: usize = x.shape[1..].iter().product();
    let out_shape = model.output_shapes()[0].clone();
    let mut out = Vec::with_capacity(n * out_shape.iter().product::<usize>());
    let mut start = 0;
    while start < n {
        let take = batch.min(n - start);
        let program = match programs.entry(take) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(Program::compile_with_state(device, model.graph(take)?, state)?)
            }
        };
        let y = program.run(&[&x.data[start * per_in..(start + take) * per_in]])?;
        out.extend_from_slice(&y[0]);
        start += take;
    }
    let mut shape = vec![n];
    shape.extend(out_shape);
    Ok(Tensor::new(shape, out, "predictions")?)
}
