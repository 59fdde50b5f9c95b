//! `predict`: a model's forward pass over many samples, batch by batch.

use crate::device::Device;
use crate::error::{EngineError, Result};
use crate::program::Program;
use fovea_graph::ir::fmt_shape;
use fovea_graph::{Model, Tensor};
use std::sync::Arc;

/// Runs `model` (one input, one output) on `x` (`(samples, ...)`) in batches of `batch_size`
/// and returns the stacked outputs. The last, partial batch is padded and its padding dropped,
/// so one program serves the whole call.
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
    let n = x.shape[0];
    let batch = batch_size.min(n.max(1));
    let program = Program::compile(device, model.graph(batch)?)?;
    program.load_params(&model.params)?;
    let per_in: usize = sample.iter().product();
    let per_out: usize = out_shapes[0].iter().product();
    let mut out = Vec::with_capacity(n * per_out);
    let mut buf = vec![0f32; batch * per_in];
    let mut start = 0;
    while start < n {
        let take = batch.min(n - start);
        buf[..take * per_in].copy_from_slice(&x.data[start * per_in..(start + take) * per_in]);
        buf[take * per_in..].fill(0.0);
        let y = program.run(&[&buf])?;
        out.extend_from_slice(&y[0][..take * per_out]);
        start += take;
    }
    let mut shape = vec![n];
    shape.extend_from_slice(&out_shapes[0]);
    Ok(Tensor::new(shape, out, "predictions")?)
}
