//! TFLite models on the command line: `fovea info M.tflite` and
//! `fovea predict --model M.tflite --input x.npy --output y.npz`.
//! (`fovea graph M.tflite` goes through [`super::graph::load_model`].)

use anyhow::{Context, ensure};
use fovea_engine::{Device, NamedArrays, checkpoint, npy, npz, predict_arrays};
use fovea_formats::tflite;
use fovea_graph::Tensor;
use fovea_graph::ir::fmt_shape;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Whether the model argument names a TFLite file.
pub fn is_tflite(path: &Path) -> bool {
    tflite::is_tflite_path(path)
}

fn shape_text(s: &[usize]) -> String {
    let mut full = vec![1];
    full.extend_from_slice(s);
    format!("{} (batch axis first)", fmt_shape(&full))
}

/// `fovea info M.tflite`: inputs, outputs, operators with counts, parameter count.
pub fn info(path: &Path, json: bool) -> anyhow::Result<()> {
    let m = tflite::import(path)?;
    let (ins, outs) = (m.model.input_shapes(), m.model.output_shapes());
    let params = m.model.params.count(None);
    if json {
        let v = serde_json::json!({
            "model": path.display().to_string(),
            "inputs": m.inputs.iter().zip(&ins).map(|(n, s)| serde_json::json!({"name": n, "shape": s})).collect::<Vec<_>>(),
            "outputs": m.outputs.iter().zip(&outs).map(|(n, s)| serde_json::json!({"name": n, "shape": s})).collect::<Vec<_>>(),
            "operators": m.operators.iter().map(|(n, c)| serde_json::json!({"operator": n, "count": c})).collect::<Vec<_>>(),
            "layers": m.model.layers().len(),
            "parameters": params,
            "parameter_tensors": m.model.params.len(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("model:      {}", path.display());
    println!("inputs:");
    for (n, s) in m.inputs.iter().zip(&ins) {
        println!("  {n:<32} {}", shape_text(s));
    }
    println!("outputs:");
    for (n, s) in m.outputs.iter().zip(&outs) {
        println!("  {n:<32} {}", shape_text(s));
    }
    println!(
        "operators:  {} in the file",
        m.operators.iter().map(|o| o.1).sum::<usize>()
    );
    for (n, c) in &m.operators {
        println!("  {n:<32} {c}");
    }
    println!(
        "parameters: {params} in {} tensors (the file's weights, float32; DEQUANTIZE folded into them)",
        m.model.params.len()
    );
    Ok(())
}

/// Arguments of `fovea predict --model M.tflite`.
pub struct PredictArgs {
    pub model: PathBuf,
    pub weights: Option<PathBuf>,
    pub input: Option<PathBuf>,
    pub output: Option<PathBuf>,
    pub batch_size: usize,
}

/// Runs a TFLite model on an `.npy` array and writes every output into one `.npz`, keyed by the
/// output tensor names, in output order.
pub fn predict(a: PredictArgs) -> anyhow::Result<()> {
    let input = a.input.context("--input x.npy is required with --model")?;
    let output = a.output.context("--output y.npz is required with --model")?;
    ensure!(a.batch_size > 0, "--batch-size must be positive");
    ensure!(
        output.extension().is_some_and(|e| e == "npz"),
        "--output {}: a TFLite model's outputs go into one .npz file (one array per output)",
        output.display()
    );
    let dir = output
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    ensure!(
        dir.is_dir(),
        "--output {}: the folder {} does not exist",
        output.display(),
        dir.display()
    );
    let mut m = tflite::import(&a.model)?;
    if let Some(w) = &a.weights {
        checkpoint::load_params(w, &mut m.model.params)
            .with_context(|| format!("loading --weights {} into {}", w.display(), a.model.display()))?;
    }
    let model = &m.model;
    let ins = model.input_shapes();
    ensure!(
        ins.len() == 1,
        "{}: the model has {} inputs; fovea predict feeds one",
        a.model.display(),
        ins.len()
    );
    let x = npy::read_f32(&input).with_context(|| format!("reading --input {}", input.display()))?;
    ensure!(
        x.shape.len() == ins[0].len() + 1 && x.shape[1..] == ins[0][..] && x.shape[0] > 0,
        "--input {}: the model's input '{}' takes float32 arrays shaped (samples, {}), this one is {}",
        input.display(),
        m.inputs[0],
        ins[0].iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
        fmt_shape(&x.shape)
    );
    let device = Arc::new(Device::new()?);
    eprintln!("device: {}", device.describe());
    let start = Instant::now();
    let inputs = NamedArrays::new().with(&model.input_names()[0], x.clone());
    let ys = predict_arrays(&device, model, &inputs, a.batch_size)?;
    let secs = start.elapsed().as_secs_f64();
    // Keyed by the file's tensor names (the model's output layers carry them, made unique).
    let named: Vec<(String, &Tensor)> = m.outputs.iter().cloned().zip(ys.iter().map(|(_, t)| t)).collect();
    npz::write_f32(&output, &named).with_context(|| format!("writing --output {}", output.display()))?;
    for (n, y) in &named {
        println!("{n}: {}", fmt_shape(&y.shape));
    }
    println!(
        "wrote {} ({} samples in {secs:.3} s, including compilation)",
        output.display(),
        x.shape[0]
    );
    Ok(())
}
