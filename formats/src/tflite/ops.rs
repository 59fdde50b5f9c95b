//! The operator mapping: a table from TFLite builtin codes (and custom operator names) to the
//! function that resolves one operator into an imported layer ([`Kind`] and its operands).
//!
//! To support another operator, add a row to [`BUILTINS`] (code and name from the schema's
//! `BuiltinOperator`) with a function `fn(&OpCtx) -> Result<Mapped>`.

use super::layer::{Activation, Kind};
use super::layout::{self, Array};
use super::reader::{ElementType, OpCode, OperatorDesc, Options, TfliteFile};
use crate::error::{FormatError, Result};
use fovea_graph::ir::{BinaryOp, ConvGeometry, Pad2d, PoolGeometry, PoolKind, ReduceOp, ResizeMode, UnaryOp};
use fovea_graph::layers::Padding;
use std::collections::HashMap;

/// One operand of a mapped operator.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// An activation tensor of the file (by index).
    Tensor(usize),
    /// A constant, in Fovea's layout, that becomes the parameter `<layer>/<variable>`.
    Param(&'static str, Array),
}

/// What an operator becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    /// A layer computing `kind` of `args`.
    Layer(Kind, Vec<Arg>),
    /// A constant (DEQUANTIZE of float16 weights): its output tensor's value.
    Constant(Array),
}

/// A mapping function: resolves one operator.
pub type MapFn = fn(&OpCtx<'_>) -> Result<Mapped>;

/// A row of the mapping table.
pub struct OpEntry {
    /// `BuiltinOperator` code.
    pub code: i32,
    /// The schema's name (`CONV_2D`).
    pub name: &'static str,
    /// Resolves one operator.
    pub map: MapFn,
}

/// The builtin operators Fovea imports.
pub const BUILTINS: &[OpEntry] = &[
    OpEntry {
        code: 0,
        name: "ADD",
        map: |c| binary(c, BinaryOp::Add),
    },
    OpEntry {
        code: 1,
        name: "AVERAGE_POOL_2D",
        map: |c| pool(c, PoolKind::Avg),
    },
    OpEntry {
        code: 2,
        name: "CONCATENATION",
        map: concatenation,
    },
    OpEntry {
        code: 3,
        name: "CONV_2D",
        map: conv2d,
    },
    OpEntry {
        code: 4,
        name: "DEPTHWISE_CONV_2D",
        map: depthwise,
    },
    OpEntry {
        code: 6,
        name: "DEQUANTIZE",
        map: dequantize,
    },
    OpEntry {
        code: 9,
        name: "FULLY_CONNECTED",
        map: fully_connected,
    },
    OpEntry {
        code: 14,
        name: "LOGISTIC",
        map: |c| unary(c, UnaryOp::Sigmoid),
    },
    OpEntry {
        code: 17,
        name: "MAX_POOL_2D",
        map: |c| pool(c, PoolKind::Max),
    },
    OpEntry {
        code: 18,
        name: "MUL",
        map: |c| binary(c, BinaryOp::Mul),
    },
    OpEntry {
        code: 19,
        name: "RELU",
        map: |c| unary(c, UnaryOp::Relu),
    },
    OpEntry {
        code: 20,
        name: "RELU_N1_TO_1",
        map: |c| Ok(Mapped::Layer(Kind::Clip { lo: -1.0, hi: 1.0 }, vec![c.arg(0)?])),
    },
    OpEntry {
        code: 21,
        name: "RELU6",
        map: |c| unary(c, UnaryOp::Relu6),
    },
    OpEntry {
        code: 22,
        name: "RESHAPE",
        map: |c| Ok(Mapped::Layer(Kind::Reshape, vec![c.arg(0)?])),
    },
    OpEntry {
        code: 23,
        name: "RESIZE_BILINEAR",
        map: |c| resize(c, true),
    },
    OpEntry {
        code: 25,
        name: "SOFTMAX",
        map: softmax,
    },
    OpEntry {
        code: 28,
        name: "TANH",
        map: |c| unary(c, UnaryOp::Tanh),
    },
    OpEntry {
        code: 34,
        name: "PAD",
        map: pad,
    },
    OpEntry {
        code: 40,
        name: "MEAN",
        map: |c| reduce(c, ReduceOp::Mean),
    },
    OpEntry {
        code: 41,
        name: "SUB",
        map: |c| binary(c, BinaryOp::Sub),
    },
    OpEntry {
        code: 42,
        name: "DIV",
        map: |c| binary(c, BinaryOp::Div),
    },
    OpEntry {
        code: 43,
        name: "SQUEEZE",
        map: |c| Ok(Mapped::Layer(Kind::Reshape, vec![c.arg(0)?])),
    },
    OpEntry {
        code: 45,
        name: "STRIDED_SLICE",
        map: strided_slice,
    },
    OpEntry {
        code: 54,
        name: "PRELU",
        map: |c| Ok(Mapped::Layer(Kind::PRelu, vec![c.arg(0)?, c.param_arg(1, "alpha")?])),
    },
    OpEntry {
        code: 55,
        name: "MAXIMUM",
        map: |c| binary(c, BinaryOp::Max),
    },
    OpEntry {
        code: 57,
        name: "MINIMUM",
        map: |c| binary(c, BinaryOp::Min),
    },
    OpEntry {
        code: 60,
        name: "PADV2",
        map: pad,
    },
    OpEntry {
        code: 65,
        name: "SLICE",
        map: slice,
    },
    OpEntry {
        code: 67,
        name: "TRANSPOSE_CONV",
        map: transpose_conv,
    },
    OpEntry {
        code: 74,
        name: "SUM",
        map: |c| reduce(c, ReduceOp::Sum),
    },
    OpEntry {
        code: 97,
        name: "RESIZE_NEAREST_NEIGHBOR",
        map: |c| resize(c, false),
    },
    OpEntry {
        code: 98,
        name: "LEAKY_RELU",
        map: leaky_relu,
    },
    OpEntry {
        code: 117,
        name: "HARD_SWISH",
        map: |c| Ok(Mapped::Layer(Kind::HardSwish, vec![c.arg(0)?])),
    },
];

/// The custom operators Fovea imports, by `custom_code`.
pub const CUSTOM: &[(&str, MapFn)] = &[("Convolution2DTransposeBias", conv_transpose_bias)];

/// The operator's display name: `CONV_2D`, `CUSTOM:Name`, or `builtin operator 123`.
pub fn op_name(code: &OpCode) -> String {
    match code {
        OpCode::Builtin(c) => BUILTINS
            .iter()
            .find(|e| e.code == *c)
            .map(|e| e.name.to_string())
            .unwrap_or_else(|| format!("builtin operator {c}")),
        OpCode::Custom(n) => format!("CUSTOM:{n}"),
    }
}

/// The class name shown for a layer of this operator (a `'static` name from the table).
pub fn class_name(code: &OpCode) -> &'static str {
    match code {
        OpCode::Builtin(c) => BUILTINS.iter().find(|e| e.code == *c).map_or("TFLITE_OP", |e| e.name),
        OpCode::Custom(n) => CUSTOM.iter().find(|e| e.0 == n).map_or("CUSTOM", |e| e.0),
    }
}

/// The mapping function for an operator code, if Fovea has one.
pub fn mapper(code: &OpCode) -> Option<MapFn> {
    match code {
        OpCode::Builtin(c) => BUILTINS.iter().find(|e| e.code == *c).map(|e| e.map),
        OpCode::Custom(n) => CUSTOM.iter().find(|e| e.0 == n).map(|e| e.1),
    }
}

/// What a mapping function sees: the file, the operator, and the constants known so far.
pub struct OpCtx<'a> {
    /// The decoded file.
    pub file: &'a TfliteFile,
    /// The file's path, for errors.
    pub source: &'a str,
    /// The operator's index.
    pub index: usize,
    /// The operator.
    pub op: &'a OperatorDesc,
    /// Float constants folded so far (outputs of DEQUANTIZE), by tensor index.
    pub folded: &'a HashMap<usize, Array>,
}

impl OpCtx<'_> {
    /// An error about this operator, naming its first output tensor.
    pub fn err(&self, message: impl Into<String>) -> FormatError {
        let out = self.op.outputs.first().copied().unwrap_or(-1);
        self.err_tensor(out, message)
    }

    /// An error about this operator and tensor `t`.
    pub fn err_tensor(&self, t: i32, message: impl Into<String>) -> FormatError {
        FormatError::Operator {
            file: self.source.to_string(),
            index: self.index,
            operator: op_name(&self.file.opcodes[self.op.opcode]),
            tensor: usize::try_from(t)
                .ok()
                .and_then(|t| self.file.tensors.get(t))
                .map_or_else(|| "(none)".to_string(), |d| d.name.clone()),
            message: message.into(),
        }
    }

    /// The tensor index of input `k` (an error if absent or left out).
    pub fn input(&self, k: usize) -> Result<usize> {
        match self.op.inputs.get(k) {
            Some(&t) if t >= 0 => Ok(t as usize),
            _ => Err(self.err(format!("expected at least {} input(s), input {k} is missing", k + 1))),
        }
    }

    /// The tensor index of optional input `k`.
    pub fn opt_input(&self, k: usize) -> Option<usize> {
        self.op.inputs.get(k).and_then(|&t| usize::try_from(t).ok())
    }

    /// The static shape of tensor `t`, every dimension positive.
    pub fn shape(&self, t: usize) -> Result<Vec<usize>> {
        static_shape(&self.file.tensors[t].shape).ok_or_else(|| {
            self.err_tensor(
                t as i32,
                format!(
                    "shape {:?} has an unknown or zero dimension or more than 2^31 elements; Fovea needs static shapes",
                    self.file.tensors[t].shape
                ),
            )
        })
    }

    /// The static shape of output 0.
    pub fn out_shape(&self) -> Result<Vec<usize>> {
        match self.op.outputs.first() {
            Some(&t) if t >= 0 => self.shape(t as usize),
            _ => Err(self.err("the operator has no output")),
        }
    }

    /// Whether tensor `t` is a constant (a buffer in the file or a folded DEQUANTIZE).
    pub fn is_const(&self, t: usize) -> bool {
        self.folded.contains_key(&t) || self.file.tensors[t].data.is_some()
    }

    /// The float value of constant tensor `t` (FLOAT32, or FLOAT16 widened).
    pub fn const_f32(&self, t: usize) -> Result<Array> {
        if let Some(a) = self.folded.get(&t) {
            return Ok(a.clone());
        }
        let d = &self.file.tensors[t];
        let data = d
            .data
            .as_ref()
            .ok_or_else(|| self.err_tensor(t as i32, "expected a constant tensor (weights), got an activation"))?;
        let shape = self
            .shape(t)
            .or_else(|e| if d.shape.is_empty() { Ok(vec![]) } else { Err(e) })?;
        let n: usize = shape.iter().product();
        let size = match d.dtype {
            ElementType::F32 => 4,
            ElementType::F16 => 2,
            other => {
                return Err(self.err_tensor(
                    t as i32,
                    format!("expected FLOAT32 or FLOAT16 values, got {}", other.name()),
                ));
            }
        };
        self.check_len(t, data.len(), n, size)?;
        let values = match d.dtype {
            ElementType::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            _ => data
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
        };
        Ok(Array {
            shape: if shape.is_empty() { vec![1] } else { shape },
            data: values,
        })
    }

    /// The integer values of constant tensor `t` (INT32 or INT64: shapes, axes, paddings).
    pub fn const_ints(&self, t: usize) -> Result<Vec<i64>> {
        let d = &self.file.tensors[t];
        let data = d
            .data
            .as_ref()
            .ok_or_else(|| self.err_tensor(t as i32, "expected a constant integer tensor, got an activation"))?;
        let n: usize = if d.shape.is_empty() {
            1
        } else {
            self.shape(t)?.iter().product()
        };
        match d.dtype {
            ElementType::I32 => {
                self.check_len(t, data.len(), n, 4)?;
                Ok(data
                    .chunks_exact(4)
                    .map(|b| i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                    .collect())
            }
            ElementType::I64 => {
                self.check_len(t, data.len(), n, 8)?;
                Ok(data
                    .chunks_exact(8)
                    .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                    .collect())
            }
            other => Err(self.err_tensor(
                t as i32,
                format!("expected INT32 or INT64 values, got {}", other.name()),
            )),
        }
    }

    fn check_len(&self, t: usize, have: usize, n: usize, size: usize) -> Result<()> {
        let want = n.checked_mul(size);
        if want != Some(have) {
            let d = &self.file.tensors[t];
            return Err(FormatError::tensor(
                self.source,
                t,
                &d.name,
                format!(
                    "its buffer holds {have} bytes, the shape {:?} of {} needs {}",
                    d.shape,
                    d.dtype.name(),
                    want.map_or_else(|| "more than usize::MAX".to_string(), |w| w.to_string())
                ),
            ));
        }
        Ok(())
    }

    /// Input `k` as an operand: an activation, or a constant parameter named `in{k}`.
    pub fn arg(&self, k: usize) -> Result<Arg> {
        let t = self.input(k)?;
        if self.is_const(t) {
            const NAMES: [&str; 8] = ["in0", "in1", "in2", "in3", "in4", "in5", "in6", "in7"];
            let name = NAMES.get(k).ok_or_else(|| self.err("more than 8 constant inputs"))?;
            Ok(Arg::Param(name, self.const_f32(t)?))
        } else {
            Ok(Arg::Tensor(t))
        }
    }

    /// Input `k`, which must be a constant, as the parameter `<layer>/<variable>`.
    pub fn param_arg(&self, k: usize, variable: &'static str) -> Result<Arg> {
        Ok(Arg::Param(variable, self.const_f32(self.input(k)?)?))
    }

    /// The fused activation `a` (an error for SIGN_BIT and unknown codes).
    pub fn activation(&self, a: i8) -> Result<Activation> {
        Ok(match a {
            0 => Activation::None,
            1 => Activation::Relu,
            2 => Activation::ReluN1To1,
            3 => Activation::Relu6,
            4 => Activation::Tanh,
            _ => return Err(self.err(format!("fused activation {a} (SIGN_BIT or unknown) is not supported"))),
        })
    }

    fn bad_options(&self, want: &str) -> FormatError {
        self.err(format!("expected {want}, the file gives {:?}", self.op.options))
    }

    /// A positive integer attribute.
    fn positive(&self, v: i32, what: &str) -> Result<usize> {
        usize::try_from(v)
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(|| self.err(format!("{what} must be positive, got {v}")))
    }

    /// A `Padding` attribute (0 = SAME, 1 = VALID).
    fn padding(&self, p: i8) -> Result<Padding> {
        match p {
            0 => Ok(Padding::Same),
            1 => Ok(Padding::Valid),
            _ => Err(self.err(format!("unknown padding {p}"))),
        }
    }

    /// An axis in `-rank..rank` as an index.
    fn axis(&self, a: i64, rank: usize) -> Result<usize> {
        let r = rank as i64;
        if a < -r || a >= r {
            return Err(self.err(format!("axis {a} is out of range for rank {rank}")));
        }
        Ok(((a + r) % r) as usize)
    }
}

/// The most elements a tensor of a file may have (2^31): a shape claiming more is refused
/// before anything is sized by it.
pub const MAX_ELEMENTS: usize = 1 << 31;

/// A shape whose dimensions are all positive, with at most [`MAX_ELEMENTS`] elements.
pub fn static_shape(s: &[i32]) -> Option<Vec<usize>> {
    let shape: Vec<usize> = s
        .iter()
        .map(|&d| usize::try_from(d).ok().filter(|&d| d > 0))
        .collect::<Option<_>>()?;
    let n = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))?;
    (n <= MAX_ELEMENTS).then_some(shape)
}

fn unary(c: &OpCtx<'_>, u: UnaryOp) -> Result<Mapped> {
    Ok(Mapped::Layer(Kind::Unary(u), vec![c.arg(0)?]))
}

fn leaky_relu(c: &OpCtx<'_>) -> Result<Mapped> {
    let alpha = match c.op.options {
        Options::LeakyRelu { alpha } => alpha,
        _ => return Err(c.bad_options("LeakyReluOptions")),
    };
    unary(c, UnaryOp::LeakyRelu(alpha))
}

fn binary(c: &OpCtx<'_>, op: BinaryOp) -> Result<Mapped> {
    let act = match c.op.options {
        Options::Activation { act } => c.activation(act)?,
        Options::None => Activation::None,
        _ => return Err(c.bad_options("AddOptions/SubOptions/MulOptions/DivOptions")),
    };
    Ok(Mapped::Layer(Kind::Binary { op, act }, vec![c.arg(0)?, c.arg(1)?]))
}

fn softmax(c: &OpCtx<'_>) -> Result<Mapped> {
    let beta = match c.op.options {
        Options::Softmax { beta } => beta,
        _ => return Err(c.bad_options("SoftmaxOptions")),
    };
    Ok(Mapped::Layer(Kind::Softmax { beta }, vec![c.arg(0)?]))
}

fn dequantize(c: &OpCtx<'_>) -> Result<Mapped> {
    let t = c.input(0)?;
    if !c.is_const(t) {
        return Err(c.err_tensor(
            t as i32,
            "DEQUANTIZE of an activation (a quantised model); Fovea imports float models, whose only DEQUANTIZE ops widen float16 weights",
        ));
    }
    Ok(Mapped::Constant(c.const_f32(t)?))
}

/// The optional bias operand `k` (absent, or a constant `(O,)`).
fn bias(c: &OpCtx<'_>, k: usize, out_channels: usize) -> Result<Option<Arg>> {
    let Some(t) = c.opt_input(k) else {
        return Ok(None);
    };
    let b = c.const_f32(t)?;
    if b.data.len() != out_channels {
        return Err(c.err_tensor(
            t as i32,
            format!(
                "bias has {} values, the operator has {out_channels} output channels",
                b.data.len()
            ),
        ));
    }
    Ok(Some(Arg::Param(
        "bias",
        Array {
            shape: vec![out_channels],
            data: b.data,
        },
    )))
}

/// A constant 4-D filter operand.
fn filter(c: &OpCtx<'_>, k: usize) -> Result<Array> {
    let t = c.input(k)?;
    let w = c.const_f32(t)?;
    if w.shape.len() != 4 {
        return Err(c.err_tensor(t as i32, format!("expected a 4-D filter, got shape {:?}", w.shape)));
    }
    Ok(w)
}

/// The activation input `k` and its NHWC shape.
fn image(c: &OpCtx<'_>, k: usize) -> Result<(Arg, [usize; 4])> {
    let t = c.input(k)?;
    match c.shape(t)?.as_slice() {
        &[n, h, w, ch] => Ok((c.arg(k)?, [n, h, w, ch])),
        s => Err(c.err_tensor(t as i32, format!("expected a 4-D NHWC tensor, got shape {s:?}"))),
    }
}

fn pad2d(p: Padding, h: usize, w: usize, k: (usize, usize), s: (usize, usize), d: (usize, usize)) -> Pad2d {
    p.pad2d(h, w, k.into(), s.into(), d.into())
}

fn conv2d(c: &OpCtx<'_>) -> Result<Mapped> {
    let Options::Conv2d {
        padding,
        stride,
        dilation,
        act,
    } = c.op.options
    else {
        return Err(c.bad_options("Conv2DOptions"));
    };
    let (x, [_, h, w, ch]) = image(c, 0)?;
    let f = filter(c, 1)?;
    let (o, kh, kw, i) = (f.shape[0], f.shape[1], f.shape[2], f.shape[3]);
    if ch % i != 0 {
        return Err(c.err(format!("the filter reads {i} channels, the input has {ch}")));
    }
    let stride = (c.positive(stride.0, "stride_h")?, c.positive(stride.1, "stride_w")?);
    let dilation = (
        c.positive(dilation.0, "dilation_h")?,
        c.positive(dilation.1, "dilation_w")?,
    );
    let geom = ConvGeometry {
        stride,
        dilation,
        pad: pad2d(c.padding(padding)?, h, w, (kh, kw), stride, dilation),
        groups: ch / i,
    };
    let mut args = vec![x, Arg::Param("kernel", layout::conv_filter(&f))];
    args.extend(bias(c, 2, o)?);
    Ok(Mapped::Layer(
        Kind::Conv {
            geom,
            act: c.activation(act)?,
        },
        args,
    ))
}

fn depthwise(c: &OpCtx<'_>) -> Result<Mapped> {
    let Options::Depthwise {
        padding,
        stride,
        dilation,
        multiplier,
        act,
    } = c.op.options
    else {
        return Err(c.bad_options("DepthwiseConv2DOptions"));
    };
    let (x, [_, h, w, ch]) = image(c, 0)?;
    let f = filter(c, 1)?;
    let (kh, kw, o) = (f.shape[1], f.shape[2], f.shape[3]);
    if f.shape[0] != 1 || o % ch != 0 || (multiplier > 0 && o != ch * multiplier as usize) {
        return Err(c.err(format!(
            "depthwise filter {:?} does not fit {ch} input channels with depth multiplier {multiplier}",
            f.shape
        )));
    }
    let stride = (c.positive(stride.0, "stride_h")?, c.positive(stride.1, "stride_w")?);
    let dilation = (
        c.positive(dilation.0, "dilation_h")?,
        c.positive(dilation.1, "dilation_w")?,
    );
    let geom = ConvGeometry {
        stride,
        dilation,
        pad: pad2d(c.padding(padding)?, h, w, (kh, kw), stride, dilation),
        groups: ch,
    };
    let mut args = vec![x, Arg::Param("kernel", layout::depthwise_filter(&f))];
    args.extend(bias(c, 2, o)?);
    Ok(Mapped::Layer(
        Kind::Conv {
            geom,
            act: c.activation(act)?,
        },
        args,
    ))
}

/// The geometry of a transposed convolution from `input` to `output` along one axis, as TFLite
/// computes its padding (that of the forward convolution from `output` to `input`).
fn tconv_axis(input: usize, output: usize, k: usize, s: usize, p: Padding) -> Option<((usize, usize), usize)> {
    let (before, _) = p.amounts(output, k, s, 1);
    let full = (input - 1) * s + k;
    let need = output + before;
    let (after, extra) = if full >= need {
        (full - need, 0)
    } else {
        (0, need - full)
    };
    (extra < s).then_some(((before, after), extra))
}

fn tconv(
    c: &OpCtx<'_>,
    x: Arg,
    xs: [usize; 4],
    f: &Array,
    p: Padding,
    stride: (usize, usize),
    act: Activation,
) -> Result<Kind> {
    let out = c.out_shape()?;
    let (o, kh, kw, i) = (f.shape[0], f.shape[1], f.shape[2], f.shape[3]);
    if out.len() != 4 || out[3] != o || i != xs[3] {
        return Err(c.err(format!(
            "filter {:?} does not map input {:?} to output {out:?}",
            f.shape, xs
        )));
    }
    let _ = x;
    let (Some((ph, eh)), Some((pw, ew))) = (
        tconv_axis(xs[1], out[1], kh, stride.0, p),
        tconv_axis(xs[2], out[2], kw, stride.1, p),
    ) else {
        return Err(c.err(format!(
            "output {out:?} is not reachable from input {xs:?} with stride {stride:?}"
        )));
    };
    Ok(Kind::ConvTranspose {
        geom: ConvGeometry {
            stride,
            dilation: (1, 1),
            pad: Pad2d {
                top: ph.0,
                bottom: ph.1,
                left: pw.0,
                right: pw.1,
            },
            groups: 1,
        },
        out_pad: (eh, ew),
        act,
    })
}

fn transpose_conv(c: &OpCtx<'_>) -> Result<Mapped> {
    let Options::TransposeConv { padding, stride, act } = c.op.options else {
        return Err(c.bad_options("TransposeConvOptions"));
    };
    // Inputs: output_shape, filter, x, optional bias.
    let (x, xs) = image(c, 2)?;
    let f = filter(c, 1)?;
    let stride = (c.positive(stride.0, "stride_h")?, c.positive(stride.1, "stride_w")?);
    let kind = tconv(c, x.clone(), xs, &f, c.padding(padding)?, stride, c.activation(act)?)?;
    let mut args = vec![x, Arg::Param("kernel", layout::transpose_conv_filter(&f))];
    args.extend(bias(c, 3, f.shape[0])?);
    Ok(Mapped::Layer(kind, args))
}

/// MediaPipe's `Convolution2DTransposeBias`: inputs `x`, OHWI filter, bias; custom options are
/// the raw C struct `{ padding, stride_width, stride_height }` (three little-endian `i32`,
/// padding 1 = SAME, 2 = VALID as `TfLitePadding`).
fn conv_transpose_bias(c: &OpCtx<'_>) -> Result<Mapped> {
    let o = &c.op.custom_options;
    if o.len() < 12 {
        return Err(c.err(format!(
            "custom options hold {} bytes, expected 12 (padding, stride_w, stride_h)",
            o.len()
        )));
    }
    let word = |i: usize| i32::from_le_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]]);
    let padding = match word(0) {
        1 => Padding::Same,
        2 => Padding::Valid,
        p => return Err(c.err(format!("custom option padding {p}: expected 1 (SAME) or 2 (VALID)"))),
    };
    let stride = (
        c.positive(word(2), "stride_height")?,
        c.positive(word(1), "stride_width")?,
    );
    let (x, xs) = image(c, 0)?;
    let f = filter(c, 1)?;
    let kind = tconv(c, x.clone(), xs, &f, padding, stride, Activation::None)?;
    let mut args = vec![x, Arg::Param("kernel", layout::transpose_conv_filter(&f))];
    args.extend(bias(c, 2, f.shape[0])?);
    Ok(Mapped::Layer(kind, args))
}

fn fully_connected(c: &OpCtx<'_>) -> Result<Mapped> {
    let (act, keep_dims) = match c.op.options {
        Options::FullyConnected {
            act,
            weights_format: 0,
            keep_num_dims,
        } => (act, keep_num_dims),
        Options::FullyConnected { weights_format, .. } => {
            return Err(c.err(format!("weights format {weights_format} (shuffled) is not supported")));
        }
        Options::None => (0, false),
        _ => return Err(c.bad_options("FullyConnectedOptions")),
    };
    let wt = c.input(1)?;
    let w = c.const_f32(wt)?;
    if w.shape.len() != 2 {
        return Err(c.err_tensor(
            wt as i32,
            format!("expected (units, features) weights, got {:?}", w.shape),
        ));
    }
    let mut args = vec![c.arg(0)?, Arg::Param("kernel", layout::dense_kernel(&w))];
    args.extend(bias(c, 2, w.shape[0])?);
    Ok(Mapped::Layer(
        Kind::Dense {
            keep_dims,
            act: c.activation(act)?,
        },
        args,
    ))
}

fn pool(c: &OpCtx<'_>, kind: PoolKind) -> Result<Mapped> {
    let Options::Pool2d {
        padding,
        stride,
        filter,
        act,
    } = c.op.options
    else {
        return Err(c.bad_options("Pool2DOptions"));
    };
    let (x, [_, h, w, _]) = image(c, 0)?;
    let size = (
        c.positive(filter.0, "filter_height")?,
        c.positive(filter.1, "filter_width")?,
    );
    let stride = (c.positive(stride.0, "stride_h")?, c.positive(stride.1, "stride_w")?);
    let geom = PoolGeometry {
        kind,
        size,
        stride,
        pad: pad2d(c.padding(padding)?, h, w, size, stride, (1, 1)),
    };
    Ok(Mapped::Layer(
        Kind::Pool {
            geom,
            act: c.activation(act)?,
        },
        vec![x],
    ))
}

fn concatenation(c: &OpCtx<'_>) -> Result<Mapped> {
    let Options::Concatenation { axis, act } = c.op.options else {
        return Err(c.bad_options("ConcatenationOptions"));
    };
    let rank = c.out_shape()?.len();
    let args = (0..c.op.inputs.len()).map(|k| c.arg(k)).collect::<Result<Vec<_>>>()?;
    Ok(Mapped::Layer(
        Kind::Concat {
            axis: c.axis(i64::from(axis), rank)?,
            act: c.activation(act)?,
        },
        args,
    ))
}

fn reduce(c: &OpCtx<'_>, op: ReduceOp) -> Result<Mapped> {
    let keep_dims = match c.op.options {
        Options::Reducer { keep_dims } => keep_dims,
        Options::None => false,
        _ => return Err(c.bad_options("ReducerOptions")),
    };
    let rank = c.shape(c.input(0)?)?.len();
    let mut axes = c
        .const_ints(c.input(1)?)?
        .into_iter()
        .map(|a| c.axis(a, rank))
        .collect::<Result<Vec<_>>>()?;
    axes.sort_unstable();
    axes.dedup();
    Ok(Mapped::Layer(Kind::Reduce { op, axes, keep_dims }, vec![c.arg(0)?]))
}

fn pad(c: &OpCtx<'_>) -> Result<Mapped> {
    let rank = c.shape(c.input(0)?)?.len();
    let p = c.const_ints(c.input(1)?)?;
    if p.len() != 2 * rank || p.iter().any(|&v| v < 0) {
        return Err(c.err(format!(
            "paddings {p:?} are not {rank} non-negative (before, after) pairs"
        )));
    }
    let pads = p.chunks(2).map(|w| (w[0] as usize, w[1] as usize)).collect();
    let value = match c.opt_input(2) {
        Some(t) => {
            let v = c.const_f32(t)?;
            *v.data.first().ok_or_else(|| c.err("the constant value is empty"))?
        }
        None => 0.0,
    };
    Ok(Mapped::Layer(Kind::Pad { pads, value }, vec![c.arg(0)?]))
}

fn resize(c: &OpCtx<'_>, bilinear: bool) -> Result<Mapped> {
    let Options::Resize {
        align_corners,
        half_pixel_centers,
    } = c.op.options
    else {
        return Err(c.bad_options("ResizeBilinearOptions/ResizeNearestNeighborOptions"));
    };
    let mode = match (bilinear, align_corners, half_pixel_centers) {
        (_, true, true) => {
            return Err(c.err("align_corners and half_pixel_centers are both set (TensorFlow refuses that too)"));
        }
        (true, false, true) => ResizeMode::Bilinear,
        (true, true, false) => ResizeMode::BilinearAlignCorners,
        (true, false, false) => ResizeMode::BilinearAsymmetric,
        (false, false, false) => ResizeMode::Nearest,
        (false, false, true) => ResizeMode::NearestHalfPixel,
        (false, true, false) => ResizeMode::NearestAlignCorners,
    };
    let out = c.out_shape()?;
    if out.len() != 4 {
        return Err(c.err(format!("expected a 4-D output, got {out:?}")));
    }
    Ok(Mapped::Layer(
        Kind::Resize {
            mode,
            size: (out[1], out[2]),
        },
        vec![c.arg(0)?],
    ))
}

fn slice(c: &OpCtx<'_>) -> Result<Mapped> {
    let dims = c.shape(c.input(0)?)?;
    let begin = c.const_ints(c.input(1)?)?;
    let size = c.const_ints(c.input(2)?)?;
    if begin.len() != dims.len() || size.len() != dims.len() {
        return Err(c.err(format!(
            "begin {begin:?} and size {size:?} do not fit an input of rank {}",
            dims.len()
        )));
    }
    let (mut starts, mut sizes) = (Vec::new(), Vec::new());
    for (i, &d) in dims.iter().enumerate() {
        let (b, d) = (begin[i], d as i64);
        let n = if size[i] == -1 { d - b } else { size[i] };
        if b < 0 || n <= 0 || b + n > d {
            return Err(c.err(format!("axis {i}: begin {b}, size {} do not fit {d} elements", size[i])));
        }
        starts.push(b as usize);
        sizes.push(n as usize);
    }
    if starts[0] != 0 || sizes[0] != dims[0] {
        return Err(c.err("slicing the batch axis is not supported"));
    }
    let steps = vec![1; starts.len()];
    Ok(Mapped::Layer(Kind::Slice { starts, sizes, steps }, vec![c.arg(0)?]))
}

fn strided_slice(c: &OpCtx<'_>) -> Result<Mapped> {
    let Options::StridedSlice {
        begin_mask,
        end_mask,
        ellipsis_mask,
        new_axis_mask,
        shrink_axis_mask,
        offset,
    } = c.op.options
    else {
        return Err(c.bad_options("StridedSliceOptions"));
    };
    if ellipsis_mask != 0 || new_axis_mask != 0 {
        return Err(c.err("ellipsis_mask and new_axis_mask are not supported"));
    }
    let dims = c.shape(c.input(0)?)?;
    let begin = c.const_ints(c.input(1)?)?;
    let end = c.const_ints(c.input(2)?)?;
    let strides = c.const_ints(c.input(3)?)?;
    if begin.len() > dims.len() || end.len() != begin.len() || strides.len() != begin.len() {
        return Err(c.err(format!(
            "begin {begin:?}, end {end:?} and strides {strides:?} do not fit an input of rank {}",
            dims.len()
        )));
    }
    let (mut starts, mut sizes, mut steps) = (Vec::new(), Vec::new(), Vec::new());
    for (i, &d) in dims.iter().enumerate() {
        let di = d as i64;
        let bit = |m: i32| i < 32 && (m >> i) & 1 == 1;
        if i >= begin.len() {
            starts.push(0);
            sizes.push(d);
            steps.push(1);
            continue;
        }
        if strides[i] <= 0 {
            return Err(c.err(format!(
                "stride {} on axis {i}: only positive strides are supported (not reversal)",
                strides[i]
            )));
        }
        let norm = |v: i64| (if v < 0 { v + di } else { v }).clamp(0, di);
        let b = if bit(begin_mask) { 0 } else { norm(begin[i]) };
        let e = if bit(shrink_axis_mask) {
            b + 1
        } else if bit(end_mask) {
            di
        } else if offset {
            norm(b + end[i])
        } else {
            norm(end[i])
        };
        if e <= b || e > di {
            return Err(c.err(format!("axis {i}: the slice [{b}, {e}) of {d} elements is empty")));
        }
        // A shrunk axis keeps one element whatever its stride.
        let step = if bit(shrink_axis_mask) { 1 } else { strides[i] };
        starts.push(b as usize);
        sizes.push(((e - b) as u64).div_ceil(step as u64) as usize);
        steps.push(step as usize);
    }
    if starts[0] != 0 || sizes[0] != dims[0] || steps[0] != 1 {
        return Err(c.err("slicing the batch axis is not supported"));
    }
    Ok(Mapped::Layer(Kind::Slice { starts, sizes, steps }, vec![c.arg(0)?]))
}
