//! `predict`: a model's forward pass over many samples, batch by batch, for any number of
//! named inputs and outputs.

use crate::device::Device;
use crate::error::{EngineError, Result};
use crate::fit::NamedArrays;
use crate::program::Program;
use crate::state::DeviceState;
use fovea_graph::ir::fmt_shape;
use fovea_graph::{Model, Tensor};
use std::collections::HashMap;
use std::sync::Arc;

/// Runs a one-input, one-output `model` on `x` (`(samples, ...)`) in batches of `batch_size`
/// and returns the stacked outputs.
pub fn predict(device: &Arc<Device>, model: &Model, x: &Tensor, batch_size: usize) -> Result<Tensor> {
    let ins = model.input_names();
    let outs = model.output_names();
    if ins.len() != 1 || outs.len() != 1 {
        return Err(EngineError::Input {
            what: "predict".into(),
            message: format!(
                "needs a model with one input and one output, this one has {} and {}: use predict_arrays",
                ins.len(),
                outs.len()
            ),
        });
    }
    let inputs = NamedArrays::new().with(&ins[0], x.clone());
    let mut out = predict_arrays(device, model, &inputs, batch_size)?;
    Ok(out.remove(0).1)
}

/// Runs `model` on named inputs (every model input, keyed by input layer name) and returns
/// every output keyed by output layer name, in output order.
pub fn predict_arrays(
    device: &Arc<Device>,
    model: &Model,
    inputs: &NamedArrays,
    batch_size: usize,
) -> Result<Vec<(String, Tensor)>> {
    if batch_size == 0 {
        return Err(EngineError::Input {
            what: "batch_size".into(),
            message: "must be positive".into(),
        });
    }
    check_inputs(model, inputs)?;
    let state = DeviceState::new(device);
    state.upload(&model.params)?;
    run_batches(device, &state, model, inputs, batch_size, &mut HashMap::new())
}

/// Checks that `inputs` holds exactly the model's inputs, with the right sample shapes and a
/// common number of samples.
pub(crate) fn check_inputs(model: &Model, inputs: &NamedArrays) -> Result<usize> {
    let n = inputs.samples()?;
    let names = model.input_names();
    for (name, _) in &inputs.arrays {
        if !names.contains(name) {
            return Err(EngineError::Input {
                what: name.clone(),
                message: format!(
                    "is not a model input; the inputs are {}",
                    names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
                ),
            });
        }
    }
    for (name, sample) in names.iter().zip(model.input_shapes()) {
        let t = inputs.get(name).ok_or_else(|| EngineError::Input {
            what: name.clone(),
            message: "the model needs this input but none was given".into(),
        })?;
        if t.shape.len() != sample.len() + 1 || t.shape[1..] != sample[..] {
            return Err(EngineError::Input {
                what: name.clone(),
                message: format!(
                    "expected shape (samples, {}), got {}",
                    sample.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
                    fmt_shape(&t.shape)
                ),
            });
        }
    }
    Ok(n)
}

/// The forward pass of `model` (inputs already checked) in batches of `batch_size`, with
/// parameters from `state`. The last, smaller batch gets a program of its own; `programs`
/// keeps the programs by batch size for later calls.
pub(crate) fn run_batches(
    device: &Arc<Device>,
    state: &Arc<DeviceState>,
    model: &Model,
    inputs: &NamedArrays,
    batch_size: usize,
    programs: &mut HashMap<usize, Program>,
) -> Result<Vec<(String, Tensor)>> {
    let n = inputs.samples()?;
    let batch = batch_size.min(n).max(1);
    let out_names = model.output_names();
    let out_shapes = model.output_shapes();
    let mut outs: Vec<Vec<f32>> = out_shapes
        .iter()
        .map(|s| Vec::with_capacity(n * s.iter().product::<usize>()))
        .collect();
    let mut start = 0;
    while start < n {
        let take = batch.min(n - start);
        let program = match programs.entry(take) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(Program::compile_with_state(device, model.graph(take)?, state)?)
            }
        };
        let feeds: Vec<&[f32]> = program
            .input_names()
            .iter()
            .map(|name| {
                let t = inputs.get(name).ok_or_else(|| EngineError::Input {
                    what: name.clone(),
                    message: "the program reads this input but none was given".into(),
                })?;
                let per: usize = t.shape[1..].iter().product();
                Ok(&t.data[start * per..(start + take) * per])
            })
            .collect::<Result<_>>()?;
        let ys = program.run(&feeds)?;
        for (o, y) in outs.iter_mut().zip(ys) {
            o.extend_from_slice(&y);
        }
        start += take;
    }
    out_names
        .into_iter()
        .zip(out_shapes)
        .zip(outs)
        .map(|((name, s), data)| {
            let mut shape = vec![n];
            shape.extend(s);
            Ok((name, Tensor::new(shape, data, "predictions")?))
        })
        .collect()
}
