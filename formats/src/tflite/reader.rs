//! Reads a verified TFLite flatbuffer into plain Rust values: operator codes, tensors (shape,
//! type, name, constant bytes), and operators with their decoded options. Every index read from
//! the file is checked here, so the op mapping works on values it can trust.

use super::schema::{self, options_key as key};
use crate::error::{FormatError, Result};

/// The TFLite element types Fovea distinguishes (`TensorType` in the schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementType {
    /// `FLOAT32`.
    F32,
    /// `FLOAT16` (constant weights behind DEQUANTIZE).
    F16,
    /// `INT32` (shapes, axes, paddings).
    I32,
    /// `INT64`.
    I64,
    /// Any other type, by its schema number (integer-quantised types among them).
    Other(i8),
}

impl ElementType {
    fn from_schema(t: i8) -> Self {
        match t {
            0 => ElementType::F32,
            1 => ElementType::F16,
            2 => ElementType::I32,
            4 => ElementType::I64,
            t => ElementType::Other(t),
        }
    }

    /// The schema's name of the type (`FLOAT32`, `INT8`, ...).
    pub fn name(self) -> String {
        let names = [
            "FLOAT32",
            "FLOAT16",
            "INT32",
            "UINT8",
            "INT64",
            "STRING",
            "BOOL",
            "INT16",
            "COMPLEX64",
            "INT8",
            "FLOAT64",
        ];
        match self {
            ElementType::F32 => "FLOAT32".into(),
            ElementType::F16 => "FLOAT16".into(),
            ElementType::I32 => "INT32".into(),
            ElementType::I64 => "INT64".into(),
            ElementType::Other(t) => names
                .get(t as usize)
                .map(|s| s.to_string())
                .unwrap_or_else(|| format!("type {t}")),
        }
    }

    /// Bytes per element, where Fovea reads the type.
    pub fn size_bytes(self) -> Option<usize> {
        match self {
            ElementType::F32 | ElementType::I32 => Some(4),
            ElementType::F16 => Some(2),
            ElementType::I64 => Some(8),
            ElementType::Other(_) => None,
        }
    }
}

/// One tensor of the subgraph.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorDesc {
    /// The tensor's name (`input`, `regressors`, ...).
    pub name: String,
    /// Its static shape as the file gives it (`-1` marks an unknown dimension).
    pub shape: Vec<i32>,
    /// Element type.
    pub dtype: ElementType,
    /// The constant bytes, for tensors backed by a non-empty buffer.
    pub data: Option<Vec<u8>>,
    /// Whether the tensor carries quantisation scales (integer quantisation).
    pub quantized: bool,
    /// Whether the tensor is stored sparse.
    pub sparse: bool,
}

/// An operator code: a builtin operator number or a custom operator's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpCode {
    /// `BuiltinOperator` of the schema.
    Builtin(i32),
    /// `CUSTOM` with its `custom_code`.
    Custom(String),
}

/// Fused activation of an operator (`ActivationFunctionType`): the schema number.
pub type FusedActivation = i8;

/// Decoded `builtin_options` of the operators Fovea maps.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum Options {
    /// No options table.
    None,
    Conv2d {
        padding: i8,
        stride: (i32, i32),
        dilation: (i32, i32),
        act: FusedActivation,
    },
    Depthwise {
        padding: i8,
        stride: (i32, i32),
        dilation: (i32, i32),
        multiplier: i32,
        act: FusedActivation,
    },
    Pool2d {
        padding: i8,
        stride: (i32, i32),
        filter: (i32, i32),
        act: FusedActivation,
    },
    FullyConnected {
        act: FusedActivation,
        weights_format: i8,
        keep_num_dims: bool,
    },
    Softmax {
        beta: f32,
    },
    Concatenation {
        axis: i32,
        act: FusedActivation,
    },
    /// ADD, SUB, MUL, DIV.
    Activation {
        act: FusedActivation,
    },
    Resize {
        align_corners: bool,
        half_pixel_centers: bool,
    },
    Reshape {
        new_shape: Option<Vec<i32>>,
    },
    Reducer {
        keep_dims: bool,
    },
    Squeeze {
        dims: Vec<i32>,
    },
    StridedSlice {
        begin_mask: i32,
        end_mask: i32,
        ellipsis_mask: i32,
        new_axis_mask: i32,
        shrink_axis_mask: i32,
        offset: bool,
    },
    TransposeConv {
        padding: i8,
        stride: (i32, i32),
        act: FusedActivation,
    },
    LeakyRelu {
        alpha: f32,
    },
    /// Options of a type Fovea does not read, by union key.
    Other(u8),
}

/// One operator: its code index, tensor indices (`-1` = optional input left out) and options.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorDesc {
    /// Index into [`TfliteFile::opcodes`].
    pub opcode: usize,
    /// Input tensor indices.
    pub inputs: Vec<i32>,
    /// Output tensor indices.
    pub outputs: Vec<i32>,
    /// Decoded builtin options.
    pub options: Options,
    /// Raw custom options (custom operators).
    pub custom_options: Vec<u8>,
}

/// The first subgraph of a TFLite file, decoded and index-checked.
#[derive(Debug, Clone, PartialEq)]
pub struct TfliteFile {
    /// The schema version the file declares.
    pub version: u32,
    /// Operator codes.
    pub opcodes: Vec<OpCode>,
    /// Tensors.
    pub tensors: Vec<TensorDesc>,
    /// Model input tensor indices, in order.
    pub inputs: Vec<usize>,
    /// Model output tensor indices, in order.
    pub outputs: Vec<usize>,
    /// Operators in execution order.
    pub operators: Vec<OperatorDesc>,
}

/// Decodes `bytes` (the whole file); `file` names it in errors.
pub fn read(bytes: &[u8], file: &str) -> Result<TfliteFile> {
    let bad = |m: String| FormatError::invalid(file, m);
    if bytes.len() < 8 {
        return Err(bad(format!("{} bytes is too short for a TFLite model", bytes.len())));
    }
    if &bytes[4..8] != b"TFL3" {
        return Err(bad("not a TFLite model: the file identifier is not \"TFL3\"".into()));
    }
    let model = schema::root(bytes).map_err(|e| bad(format!("not a valid TFLite flatbuffer: {e}")))?;
    let subgraphs = model
        .subgraphs()
        .ok_or_else(|| bad("the model has no subgraphs".into()))?;
    if subgraphs.is_empty() {
        return Err(bad("the model has no subgraphs".into()));
    }
    if subgraphs.len() > 1 {
        return Err(bad(format!(
            "the model has {} subgraphs; Fovea imports single-subgraph models (no control flow)",
            subgraphs.len()
        )));
    }
    let g = subgraphs.get(0);
    let buffers = model.buffers();
    let opcodes: Vec<OpCode> = model
        .operator_codes()
        .map(|v| {
            v.iter()
                .map(|c| {
                    let code = i32::from(c.deprecated_builtin_code().unwrap_or(0)).max(c.builtin_code().unwrap_or(0));
                    if code == 32 {
                        OpCode::Custom(c.custom_code().unwrap_or("").to_string())
                    } else {
                        OpCode::Builtin(code)
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let mut tensors = Vec::new();
    for (i, t) in g.tensors().into_iter().flatten().enumerate() {
        let name = t.name().unwrap_or("").to_string();
        let name_or_index = if name.is_empty() { format!("#{i}") } else { name.clone() };
        let buffer = t.buffer().unwrap_or(0) as usize;
        let data = match buffers {
            _ if buffer == 0 => None,
            None => {
                return Err(FormatError::tensor(
                    file,
                    i,
                    &name_or_index,
                    "refers to a buffer, the model has none",
                ));
            }
            Some(b) if buffer >= b.len() => {
                return Err(FormatError::tensor(
                    file,
                    i,
                    &name_or_index,
                    format!("refers to buffer {buffer}, the model has {}", b.len()),
                ));
            }
            Some(b) => buffer_bytes(b.get(buffer), bytes, file, i, &name_or_index)?,
        };
        tensors.push(TensorDesc {
            name,
            shape: t.shape().map(|s| s.iter().collect()).unwrap_or_default(),
            dtype: ElementType::from_schema(t.type_().unwrap_or(0)),
            data,
            quantized: t.quantization().and_then(|q| q.scale()).is_some_and(|s| !s.is_empty()),
            sparse: t.sparsity().is_some(),
        });
    }
    let n = tensors.len();
    let check = |what: &str, v: Option<flatbuffers::Vector<'_, i32>>| -> Result<Vec<usize>> {
        v.into_iter()
            .flatten()
            .map(|t| {
                usize::try_from(t)
                    .ok()
                    .filter(|&t| t < n)
                    .ok_or_else(|| bad(format!("{what} names tensor {t}, the subgraph has {n}")))
            })
            .collect()
    };
    let inputs = check("the subgraph's input list", g.inputs())?;
    let outputs = check("the subgraph's output list", g.outputs())?;
    let mut operators = Vec::new();
    for (i, op) in g.operators().into_iter().flatten().enumerate() {
        let opcode = op.opcode_index().unwrap_or(0) as usize;
        if opcode >= opcodes.len() {
            return Err(bad(format!(
                "operator {i} uses operator code {opcode}, the model has {}",
                opcodes.len()
            )));
        }
        let ids = |what: &str, v: Option<flatbuffers::Vector<'_, i32>>| -> Result<Vec<i32>> {
            v.into_iter()
                .flatten()
                .map(|t| {
                    if t == -1 || (t >= 0 && (t as usize) < n) {
                        Ok(t)
                    } else {
                        Err(bad(format!(
                            "operator {i}: {what} names tensor {t}, the subgraph has {n}"
                        )))
                    }
                })
                .collect()
        };
        operators.push(OperatorDesc {
            opcode,
            inputs: ids("an input", op.inputs())?,
            outputs: ids("an output", op.outputs())?,
            options: options(&op),
            custom_options: op.custom_options().map(|v| v.bytes().to_vec()).unwrap_or_default(),
        });
    }
    Ok(TfliteFile {
        version: model.version().unwrap_or(0),
        opcodes,
        tensors,
        inputs,
        outputs,
        operators,
    })
}

/// The bytes of a buffer: inline data, or an `offset`/`size` range of the file (checked).
fn buffer_bytes(b: schema::Buffer<'_>, file_bytes: &[u8], file: &str, i: usize, name: &str) -> Result<Option<Vec<u8>>> {
    if let Some(d) = b.data() {
        return Ok((!d.is_empty()).then(|| d.bytes().to_vec()));
    }
    match (b.offset().unwrap_or(0), b.size().unwrap_or(0)) {
        (_, 0) => Ok(None),
        (off, size) => {
            let end = off
                .checked_add(size)
                .filter(|&e| e <= file_bytes.len() as u64)
                .ok_or_else(|| {
                    FormatError::tensor(
                        file,
                        i,
                        name,
                        format!(
                            "its buffer lies at bytes {off}..{} of the file, which has {} bytes",
                            off.saturating_add(size),
                            file_bytes.len()
                        ),
                    )
                })?;
            Ok(Some(file_bytes[off as usize..end as usize].to_vec()))
        }
    }
}

/// Decodes the options of the types Fovea maps; others become `Options::Other(key)`.
fn options(op: &schema::Operator<'_>) -> Options {
    use schema::options_as as cast;
    let Some(t) = op.builtin_options() else {
        return Options::None;
    };
    let k = op.builtin_options_type().unwrap_or(0);
    let act = |a: Option<i8>| a.unwrap_or(0);
    match k {
        key::CONV2D => {
            let o: schema::Conv2DOptions = cast(t);
            Options::Conv2d {
                padding: o.padding().unwrap_or(0),
                stride: (o.stride_h().unwrap_or(0), o.stride_w().unwrap_or(0)),
                dilation: (o.dilation_h_factor().unwrap_or(1), o.dilation_w_factor().unwrap_or(1)),
                act: act(o.fused_activation_function()),
            }
        }
        key::DEPTHWISE => {
            let o: schema::DepthwiseConv2DOptions = cast(t);
            Options::Depthwise {
                padding: o.padding().unwrap_or(0),
                stride: (o.stride_h().unwrap_or(0), o.stride_w().unwrap_or(0)),
                dilation: (o.dilation_h_factor().unwrap_or(1), o.dilation_w_factor().unwrap_or(1)),
                multiplier: o.depth_multiplier().unwrap_or(0),
                act: act(o.fused_activation_function()),
            }
        }
        key::POOL2D => {
            let o: schema::Pool2DOptions = cast(t);
            Options::Pool2d {
                padding: o.padding().unwrap_or(0),
                stride: (o.stride_h().unwrap_or(0), o.stride_w().unwrap_or(0)),
                filter: (o.filter_height().unwrap_or(0), o.filter_width().unwrap_or(0)),
                act: act(o.fused_activation_function()),
            }
        }
        key::FULLY_CONNECTED => {
            let o: schema::FullyConnectedOptions = cast(t);
            Options::FullyConnected {
                act: act(o.fused_activation_function()),
                weights_format: o.weights_format().unwrap_or(0),
                keep_num_dims: o.keep_num_dims().unwrap_or(false),
            }
        }
        key::SOFTMAX => Options::Softmax {
            beta: cast::<schema::SoftmaxOptions>(t).beta().unwrap_or(0.0),
        },
        key::CONCATENATION => {
            let o: schema::ConcatenationOptions = cast(t);
            Options::Concatenation {
                axis: o.axis().unwrap_or(0),
                act: act(o.fused_activation_function()),
            }
        }
        k if key::ACTIVATION.contains(&k) => Options::Activation {
            act: act(cast::<schema::ActivationOptions>(t).fused_activation_function()),
        },
        key::RESIZE_BILINEAR => {
            let o: schema::ResizeBilinearOptions = cast(t);
            Options::Resize {
                align_corners: o.align_corners().unwrap_or(false),
                half_pixel_centers: o.half_pixel_centers().unwrap_or(false),
            }
        }
        key::RESIZE_NEAREST => {
            let o: schema::ResizeNearestOptions = cast(t);
            Options::Resize {
                align_corners: o.align_corners().unwrap_or(false),
                half_pixel_centers: o.half_pixel_centers().unwrap_or(false),
            }
        }
        key::RESHAPE => Options::Reshape {
            new_shape: cast::<schema::ReshapeOptions>(t)
                .new_shape()
                .map(|v| v.iter().collect()),
        },
        key::REDUCER => Options::Reducer {
            keep_dims: cast::<schema::ReducerOptions>(t).keep_dims().unwrap_or(false),
        },
        key::SQUEEZE => Options::Squeeze {
            dims: cast::<schema::SqueezeOptions>(t)
                .squeeze_dims()
                .map(|v| v.iter().collect())
                .unwrap_or_default(),
        },
        key::STRIDED_SLICE => {
            let o: schema::StridedSliceOptions = cast(t);
            Options::StridedSlice {
                begin_mask: o.begin_mask().unwrap_or(0),
                end_mask: o.end_mask().unwrap_or(0),
                ellipsis_mask: o.ellipsis_mask().unwrap_or(0),
                new_axis_mask: o.new_axis_mask().unwrap_or(0),
                shrink_axis_mask: o.shrink_axis_mask().unwrap_or(0),
                offset: o.offset().unwrap_or(false),
            }
        }
        key::TRANSPOSE_CONV => {
            let o: schema::TransposeConvOptions = cast(t);
            Options::TransposeConv {
                padding: o.padding().unwrap_or(0),
                stride: (o.stride_h().unwrap_or(0), o.stride_w().unwrap_or(0)),
                act: act(o.fused_activation_function()),
            }
        }
        key::LEAKY_RELU => Options::LeakyRelu {
            alpha: cast::<schema::LeakyReluOptions>(t).alpha().unwrap_or(0.0),
        },
        k => Options::Other(k),
    }
}
