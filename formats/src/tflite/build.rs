//! Assembles a [`Model`] from a decoded file: one [`ImportedOp`] layer per operator (DEQUANTIZE
//! of float16 weights folds into a constant), file constants as trainable parameters, inputs and
//! outputs named by their tensor names.

use super::layer::{ImportedOp, Slot};
use super::layout::Array;
use super::ops::{self, Arg, Mapped, OpCtx};
use super::reader::{ElementType, TfliteFile};
use crate::error::{FormatError, Result};
use fovea_graph::Tensor;
use fovea_graph::layers::Input;
use fovea_graph::model::{Functional, Model, SymbolicTensor};
use std::collections::{HashMap, HashSet};

/// An imported model with what the file says about it.
#[derive(Debug)]
pub struct Imported {
    /// The model (its parameters hold the file's weights).
    pub model: Model,
    /// Input tensor names, in order.
    pub inputs: Vec<String>,
    /// Output tensor names, in order (the model's outputs in the same order).
    pub outputs: Vec<String>,
    /// Operators by schema name with their counts, in order of first appearance.
    pub operators: Vec<(String, usize)>,
}

/// Checks the tensors an operator touches: float activations, no integer quantisation.
fn check_tensors(c: &OpCtx<'_>) -> Result<()> {
    for &t in c.op.inputs.iter().chain(&c.op.outputs) {
        let Ok(i) = usize::try_from(t) else { continue };
        let d = &c.file.tensors[i];
        if d.quantized {
            return Err(c.err_tensor(
                t,
                format!(
                    "tensor '{}' is integer-quantised ({}); Fovea imports float models",
                    d.name,
                    d.dtype.name()
                ),
            ));
        }
        if d.sparse {
            return Err(c.err_tensor(
                t,
                format!("tensor '{}' is stored sparse, which Fovea does not read", d.name),
            ));
        }
        let ok = match d.dtype {
            ElementType::F32 => true,
            ElementType::F16 | ElementType::I32 | ElementType::I64 => d.data.is_some(),
            ElementType::Other(_) => false,
        };
        if !ok && !c.folded.contains_key(&i) {
            return Err(c.err_tensor(
                t,
                format!(
                    "tensor '{}' is a {} {}; Fovea imports float32 models (float16 only as constant weights)",
                    d.name,
                    d.dtype.name(),
                    if d.data.is_some() { "constant" } else { "activation" }
                ),
            ));
        }
    }
    Ok(())
}

/// A unique, non-empty layer name for tensor `t`.
fn layer_name(file: &TfliteFile, t: usize, taken: &mut HashSet<String>) -> String {
    let base = match file.tensors[t].name.as_str() {
        "" => format!("tensor_{t}"),
        n => n.to_string(),
    };
    let mut name = base.clone();
    let mut k = 0;
    while !taken.insert(name.clone()) {
        k += 1;
        name = format!("{base}_{k}");
    }
    name
}

/// Builds the model of `file` (read from `source`).
pub fn build(file: &TfliteFile, source: &str, model_name: &str) -> Result<Imported> {
    let graph_err = |e| FormatError::Graph {
        file: source.to_string(),
        source: e,
    };
    let mut f = Functional::new(model_name);
    let mut taken = HashSet::new();
    let mut sym: HashMap<usize, SymbolicTensor> = HashMap::new();
    let mut inputs = Vec::new();
    for &t in &file.inputs {
        let d = &file.tensors[t];
        let shape = ops::static_shape(&d.shape)
            .filter(|s| s.first() == Some(&1))
            .ok_or_else(|| {
                FormatError::tensor(
                    source,
                    t,
                    &d.name,
                    format!(
                        "model input of shape {:?}: expected a static shape with batch axis 1 first",
                        d.shape
                    ),
                )
            })?;
        if d.dtype != ElementType::F32 || d.quantized {
            let what = if d.quantized { "integer-quantised " } else { "" };
            return Err(FormatError::tensor(
                source,
                t,
                &d.name,
                format!("model input is {what}{}: Fovea imports float32 models", d.dtype.name()),
            ));
        }
        let name = layer_name(file, t, &mut taken);
        inputs.push(name.clone());
        sym.insert(t, f.input(Input::new(&shape[1..]).name(name)));
    }
    let mut folded: HashMap<usize, Array> = HashMap::new();
    let mut weights: Vec<(String, Array)> = Vec::new();
    let mut counts: Vec<(String, usize)> = Vec::new();
    for (index, op) in file.operators.iter().enumerate() {
        let code = &file.opcodes[op.opcode];
        let name = ops::op_name(code);
        match counts.iter_mut().find(|c| c.0 == name) {
            Some(c) => c.1 += 1,
            None => counts.push((name.clone(), 1)),
        }
        let c = OpCtx {
            file,
            source,
            index,
            op,
            folded: &folded,
        };
        let map = ops::mapper(code).ok_or_else(|| {
            c.err(match code {
                ops_code @ super::reader::OpCode::Custom(_) => format!(
                    "unknown custom operator ({}); Fovea imports the custom operator Convolution2DTransposeBias only",
                    ops::op_name(ops_code)
                ),
                _ => "unknown operator; Fovea cannot import it".to_string(),
            })
        })?;
        check_tensors(&c)?;
        let out = match op.outputs.as_slice() {
            [t] if *t >= 0 => *t as usize,
            _ => return Err(c.err(format!("expected one output tensor, got {}", op.outputs.len()))),
        };
        match map(&c)? {
            Mapped::Constant(a) => {
                folded.insert(out, a);
            }
            Mapped::Layer(kind, args) => {
                let layer = layer_name(file, out, &mut taken);
                let mut slots = Vec::with_capacity(args.len());
                let mut ins = Vec::new();
                for a in args {
                    slots.push(match a {
                        Arg::Tensor(t) => {
                            let s = *sym.get(&t).ok_or_else(|| {
                                c.err_tensor(t as i32, "reads a tensor no earlier operator or input produces")
                            })?;
                            ins.push(s);
                            Slot::Input(ins.len() - 1)
                        }
                        Arg::Param(var, value) => {
                            weights.push((format!("{layer}/{var}"), value.clone()));
                            Slot::Param(var.to_string(), value.shape)
                        }
                    });
                }
                if ins.is_empty() {
                    return Err(c.err("every input is a constant; Fovea expects the converter to have folded it"));
                }
                let imported = ImportedOp {
                    name: layer.clone(),
                    class: ops::class_name(code),
                    label: format!("operator {index} ({name})"),
                    kind,
                    slots,
                    out_shape: c.out_shape()?,
                };
                sym.insert(out, f.call(imported, &ins));
            }
        }
    }
    let mut outs = Vec::new();
    let mut out_names = Vec::new();
    for &t in &file.outputs {
        let d = &file.tensors[t];
        let s = *sym.get(&t).ok_or_else(|| {
            FormatError::tensor(
                source,
                t,
                &d.name,
                "model output is a constant or produced by no operator",
            )
        })?;
        outs.push(s);
        out_names.push(d.name.clone());
    }
    let mut model = f.build(&outs, 0).map_err(graph_err)?;
    for (name, a) in weights {
        let t = Tensor::new(a.shape, a.data, &name).map_err(graph_err)?;
        model.set_weight(&name, t).map_err(graph_err)?;
    }
    Ok(Imported {
        model,
        inputs,
        outputs: out_names,
        operators: counts,
    })
}
