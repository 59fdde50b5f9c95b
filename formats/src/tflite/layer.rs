//! The layer an imported TFLite operator becomes: its resolved attributes ([`Kind`]), where
//! each operand comes from ([`Slot`]: a layer input or a parameter of its own), and the IR it
//! lowers to at any batch size.
//!
//! TFLite shapes are static with batch 1; the layer treats axis 0 of every activation as the
//! batch and checks after lowering that its output has the file's shape with that axis set to
//! the batch, so a model that mixes the batch into other axes fails with a clear error at
//! batch > 1 instead of computing something else.

use fovea_graph::error::{GraphError, Result};
use fovea_graph::init::Initializer;
use fovea_graph::ir::{
    BinaryOp, ConvGeometry, NodeId, Op, PadMode, PoolGeometry, ReduceOp, ResizeMode, UnaryOp, fmt_shape,
};
use fovea_graph::layers::{Layer, LayerCtx};

/// A fused activation (`ActivationFunctionType`) Fovea implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `NONE`.
    None,
    /// `RELU`.
    Relu,
    /// `RELU_N1_TO_1`: clip to `[-1, 1]`.
    ReluN1To1,
    /// `RELU6`.
    Relu6,
    /// `TANH`.
    Tanh,
}

/// What an imported operator computes, with attributes resolved from the file.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// CONV_2D / DEPTHWISE_CONV_2D. Slots: `x`, HWIO kernel, optional bias.
    Conv {
        /// Stride, dilation, TFLite's (asymmetric) SAME padding, groups.
        geom: ConvGeometry,
        /// Fused activation.
        act: Activation,
    },
    /// TRANSPOSE_CONV / `Convolution2DTransposeBias`. Slots: `x`, `(KH, KW, O, I)` kernel,
    /// optional bias.
    ConvTranspose {
        /// Stride and the cropping of the full output.
        geom: ConvGeometry,
        /// Rows/columns added at the bottom/right.
        out_pad: (usize, usize),
        /// Fused activation.
        act: Activation,
    },
    /// FULLY_CONNECTED. Slots: `x`, `(I, O)` kernel, optional bias.
    Dense {
        /// Keep the input's leading axes (else the output is 2-D).
        keep_dims: bool,
        /// Fused activation.
        act: Activation,
    },
    /// ADD, SUB, MUL, DIV with numpy broadcasting. Slots: `a`, `b`.
    Binary {
        /// The operation.
        op: BinaryOp,
        /// Fused activation.
        act: Activation,
    },
    /// An elementwise function (LOGISTIC, TANH, RELU, RELU6, LEAKY_RELU).
    Unary(UnaryOp),
    /// RELU_N1_TO_1: `min(max(x, lo), hi)`.
    Clip {
        /// Lower bound.
        lo: f32,
        /// Upper bound.
        hi: f32,
    },
    /// PRELU: `x` if `x >= 0`, else `alpha * x`. Slots: `x`, `alpha` (broadcast).
    PRelu,
    /// HARD_SWISH: `x * relu6(x + 3) / 6`.
    HardSwish,
    /// SOFTMAX over the last axis of `beta * x`.
    Softmax {
        /// The logits' scale.
        beta: f32,
    },
    /// MAX_POOL_2D / AVERAGE_POOL_2D.
    Pool {
        /// Window, stride and SAME padding (never counted by the average).
        geom: PoolGeometry,
        /// Fused activation.
        act: Activation,
    },
    /// MEAN / SUM over constant axes.
    Reduce {
        /// Sum or mean.
        op: ReduceOp,
        /// Sorted, unique axes.
        axes: Vec<usize>,
        /// Keep reduced axes with length 1.
        keep_dims: bool,
    },
    /// RESHAPE / SQUEEZE: to the file's output shape (batch axis set to the batch).
    Reshape,
    /// CONCATENATION. Slots: every input.
    Concat {
        /// The axis, non-negative.
        axis: usize,
        /// Fused activation.
        act: Activation,
    },
    /// PAD / PADV2.
    Pad {
        /// Before and after, per axis.
        pads: Vec<(usize, usize)>,
        /// The fill value.
        value: f32,
    },
    /// SLICE / STRIDED_SLICE (positive strides), then a reshape to the file's output shape
    /// (dropping shrunk axes).
    Slice {
        /// First element per axis.
        starts: Vec<usize>,
        /// Elements kept per axis (axis 0: the whole batch).
        sizes: Vec<usize>,
        /// Stride per axis (1 on axis 0).
        steps: Vec<usize>,
    },
    /// RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR to a constant size.
    Resize {
        /// The interpolation.
        mode: ResizeMode,
        /// Output height and width.
        size: (usize, usize),
    },
}

/// Where an operand of the layer comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Slot {
    /// The layer's `k`-th input (an activation of the model).
    Input(usize),
    /// A parameter `<layer>/<variable>` of this shape (a constant of the file, already in
    /// Fovea's layout; its value is set after the model is built).
    Param(String, Vec<usize>),
}

/// One imported operator as a model layer.
#[derive(Debug, Clone)]
pub struct ImportedOp {
    /// The layer's name: the operator's first output tensor name, made unique.
    pub name: String,
    /// The operator's schema name (`CONV_2D`), shown as the layer's class.
    pub class: &'static str,
    /// `operator 12 (CONV_2D)`, prefixed to error messages.
    pub label: String,
    /// What it computes.
    pub kind: Kind,
    /// Its operands, in the order `kind` documents.
    pub slots: Vec<Slot>,
    /// The file's static output shape (batch 1).
    pub out_shape: Vec<usize>,
}

/// `shape` with its batch axis (axis 0, of length 1 in the file) set to `n`. A shape whose
/// first axis is not 1 only fits batch 1.
pub fn with_batch(shape: &[usize], n: usize) -> Option<Vec<usize>> {
    match shape.first() {
        Some(1) => {
            let mut s = shape.to_vec();
            s[0] = n;
            Some(s)
        }
        _ if n == 1 => Some(shape.to_vec()),
        _ => None,
    }
}

impl ImportedOp {
    fn err(&self, message: impl Into<String>) -> GraphError {
        GraphError::shape(&self.name, format!("{}: {}", self.label, message.into()))
    }

    fn act(&self, ctx: &mut LayerCtx<'_>, x: NodeId, act: Activation) -> Result<NodeId> {
        match act {
            Activation::None => Ok(x),
            Activation::Relu => ctx.push(Op::Unary(UnaryOp::Relu), &[x]),
            Activation::Relu6 => ctx.push(Op::Unary(UnaryOp::Relu6), &[x]),
            Activation::Tanh => ctx.push(Op::Unary(UnaryOp::Tanh), &[x]),
            Activation::ReluN1To1 => clip(ctx, x, -1.0, 1.0),
        }
    }

    fn bias_act(&self, ctx: &mut LayerCtx<'_>, y: NodeId, ops: &[NodeId], act: Activation) -> Result<NodeId> {
        let y = match ops.get(2) {
            Some(&b) => ctx.push(Op::Binary(BinaryOp::Add), &[y, b])?,
            None => y,
        };
        self.act(ctx, y, act)
    }
}

/// `min(max(x, lo), hi)` through broadcast `(1,)` constants.
fn clip(ctx: &mut LayerCtx<'_>, x: NodeId, lo: f32, hi: f32) -> Result<NodeId> {
    let lo = ctx.graph.fill(&[1], lo, ctx.name)?;
    let hi = ctx.graph.fill(&[1], hi, ctx.name)?;
    let y = ctx.push(Op::Binary(BinaryOp::Max), &[x, lo])?;
    ctx.push(Op::Binary(BinaryOp::Min), &[y, hi])
}

/// `sizes[i]` elements of `x`, every `steps[i]`-th from `starts[i]`, along each axis (the batch
/// axis, of length `n`, whole). With unit steps it is one `Slice`. Otherwise, out of ops that
/// all have gradients: a `Slice` of whole strides (zero-padded at the end where the input is
/// short), a reshape splitting each strided axis of `m * s` into `(m, s)`, a `Slice` keeping
/// index 0 of every `s`, and a reshape merging the axes back.
fn strided_slice(
    ctx: &mut LayerCtx<'_>,
    x: NodeId,
    n: usize,
    starts: &[usize],
    sizes: &[usize],
    steps: &[usize],
) -> Result<NodeId> {
    let dims = ctx.shape(x);
    let mut whole = sizes.to_vec();
    whole[0] = n;
    if steps.iter().all(|&s| s == 1) {
        return ctx.push(
            Op::Slice {
                starts: starts.to_vec(),
                sizes: whole,
            },
            &[x],
        );
    }
    // Whole strides: m * s elements from the start, as many as the input has.
    let (mut span, mut pads, mut split, mut keep) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, (&m, &s)) in whole.iter().zip(steps).enumerate() {
        let wanted = m * s;
        let have = wanted.min(dims[i] - starts[i]);
        span.push(have);
        pads.push((0, wanted - have));
        if s == 1 {
            split.push(m);
            keep.push(m);
        } else {
            split.extend([m, s]);
            keep.extend([m, 1]);
        }
    }
    let mut y = ctx.push(
        Op::Slice {
            starts: starts.to_vec(),
            sizes: span,
        },
        &[x],
    )?;
    if pads.iter().any(|&(_, after)| after > 0) {
        y = ctx.push(
            Op::Pad {
                pads,
                value: 0.0,
                mode: PadMode::Constant,
            },
            &[y],
        )?;
    }
    let y = ctx.graph.reshape(y, &split, ctx.name)?;
    let y = ctx.push(
        Op::Slice {
            starts: vec![0; keep.len()],
            sizes: keep,
        },
        &[y],
    )?;
    ctx.graph.reshape(y, &whole, ctx.name)
}

impl Layer for ImportedOp {
    fn class_name(&self) -> &'static str {
        self.class
    }
    fn default_prefix(&self) -> &'static str {
        "tflite_op"
    }
    fn name(&self) -> Option<&str> {
        Some(&self.name)
    }

    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<NodeId> {
        let mut ops = Vec::with_capacity(self.slots.len());
        for s in &self.slots {
            ops.push(match s {
                Slot::Input(k) => *inputs
                    .get(*k)
                    .ok_or_else(|| self.err(format!("input {k} is missing")))?,
                Slot::Param(var, shape) => ctx.param(var, shape, Initializer::Zeros, true)?,
            });
        }
        // The batch: axis 0 of the first activation operand.
        let first = self
            .slots
            .iter()
            .zip(&ops)
            .find(|(s, _)| matches!(s, Slot::Input(_)))
            .map(|(_, &id)| id)
            .ok_or_else(|| self.err("the operator reads no activation"))?;
        let n = ctx.shape(first).first().copied().unwrap_or(1);
        let want = with_batch(&self.out_shape, n).ok_or_else(|| {
            self.err(format!(
                "the output shape {} has no batch axis of length 1, so the model runs at batch 1 only (asked for {n})",
                fmt_shape(&self.out_shape)
            ))
        })?;
        let y = match &self.kind {
            Kind::Conv { geom, act } => {
                let y = ctx.push(Op::Conv2d(*geom), &ops[..2])?;
                self.bias_act(ctx, y, &ops, *act)?
            }
            Kind::ConvTranspose { geom, out_pad, act } => {
                let y = ctx.push(
                    Op::ConvTranspose2d {
                        geom: *geom,
                        out_pad: *out_pad,
                    },
                    &ops[..2],
                )?;
                self.bias_act(ctx, y, &ops, *act)?
            }
            Kind::Dense { keep_dims, act } => {
                let xs = ctx.shape(ops[0]);
                let k = ctx.shape(ops[1]);
                let (fan_in, units) = (k[0], k[1]);
                let total: usize = xs.iter().product();
                if !total.is_multiple_of(fan_in) {
                    return Err(self.err(format!(
                        "the input {} does not split into rows of {fan_in} features",
                        fmt_shape(&xs)
                    )));
                }
                let x = ctx.graph.reshape(ops[0], &[total / fan_in, fan_in], ctx.name)?;
                let y = ctx.push(
                    Op::MatMul {
                        trans_a: false,
                        trans_b: false,
                    },
                    &[x, ops[1]],
                )?;
                let y = self.bias_act(ctx, y, &ops, *act)?;
                if *keep_dims {
                    let mut s = xs.clone();
                    if let Some(last) = s.last_mut() {
                        *last = units;
                    }
                    ctx.graph.reshape(y, &s, ctx.name)?
                } else {
                    y
                }
            }
            Kind::Binary { op, act } => {
                let y = ctx.push(Op::Binary(*op), &ops[..2])?;
                self.act(ctx, y, *act)?
            }
            Kind::Unary(u) => ctx.push(Op::Unary(*u), &ops[..1])?,
            Kind::Clip { lo, hi } => clip(ctx, ops[0], *lo, *hi)?,
            Kind::PRelu => {
                // relu(x) - alpha * relu(-x)
                let pos = ctx.push(Op::Unary(UnaryOp::Relu), &[ops[0]])?;
                let neg = ctx.push(Op::Unary(UnaryOp::Neg), &[ops[0]])?;
                let neg = ctx.push(Op::Unary(UnaryOp::Relu), &[neg])?;
                let neg = ctx.push(Op::Binary(BinaryOp::Mul), &[neg, ops[1]])?;
                ctx.push(Op::Binary(BinaryOp::Sub), &[pos, neg])?
            }
            Kind::HardSwish => {
                let t = ctx.push(Op::Unary(UnaryOp::AddScalar(3.0)), &[ops[0]])?;
                let t = ctx.push(Op::Unary(UnaryOp::Relu6), &[t])?;
                let t = ctx.push(Op::Unary(UnaryOp::Scale(1.0 / 6.0)), &[t])?;
                ctx.push(Op::Binary(BinaryOp::Mul), &[ops[0], t])?
            }
            Kind::Softmax { beta } => {
                let x = if *beta == 1.0 {
                    ops[0]
                } else {
                    ctx.push(Op::Unary(UnaryOp::Scale(*beta)), &[ops[0]])?
                };
                ctx.push(Op::Softmax, &[x])?
            }
            Kind::Pool { geom, act } => {
                let y = ctx.push(Op::Pool2d(*geom), &ops[..1])?;
                self.act(ctx, y, *act)?
            }
            Kind::Reduce { op, axes, keep_dims } => ctx.push(
                Op::Reduce {
                    op: *op,
                    axes: axes.clone(),
                    keep_dims: *keep_dims,
                },
                &ops[..1],
            )?,
            Kind::Reshape => ctx.graph.reshape(ops[0], &want, ctx.name)?,
            Kind::Concat { axis, act } => {
                let y = ctx.push(Op::Concat { axis: *axis }, &ops)?;
                self.act(ctx, y, *act)?
            }
            Kind::Pad { pads, value } => ctx.push(
                Op::Pad {
                    pads: pads.clone(),
                    value: *value,
                    mode: PadMode::Constant,
                },
                &ops[..1],
            )?,
            Kind::Slice { starts, sizes, steps } => {
                let y = strided_slice(ctx, ops[0], n, starts, sizes, steps)?;
                if ctx.shape(y) == want {
                    y
                } else {
                    ctx.graph.reshape(y, &want, ctx.name)?
                }
            }
            Kind::Resize { mode, size } => ctx.push(
                Op::Resize {
                    mode: *mode,
                    height: size.0,
                    width: size.1,
                },
                &ops[..1],
            )?,
        };
        let got = ctx.shape(y);
        if got != want {
            return Err(self.err(format!(
                "Fovea computes shape {}, the file says {}",
                fmt_shape(&got),
                fmt_shape(&want)
            )));
        }
        Ok(y)
    }
}
