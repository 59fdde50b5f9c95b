//! The op set of the IR: what each node computes, with its attributes.
//!
//! Coarse ops where a hand-written kernel exists (convolutions, matmul, pooling, softmax,
//! batch norm, resize), fine ops where generated code is enough (unary, broadcasting binary,
//! reductions, layout ops). Layouts are Keras's: NHWC activations, HWIO conv kernels,
//! `(kh, kw, out, in)` transposed-conv kernels and `(in, out)` dense kernels.

/// The host data of an [`Op::Constant`]: shared, compared by value, and printed as its shape
/// and a fingerprint (never the data itself: dumps and errors stay small).
#[derive(Clone)]
pub struct ConstantData(pub std::sync::Arc<crate::tensor::Tensor>);

impl ConstantData {
    /// The tensor.
    pub fn tensor(&self) -> &crate::tensor::Tensor {
        &self.0
    }

    /// A 64-bit FNV-1a hash of the shape and the elements' bits.
    pub fn fingerprint(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |w: u64| {
            for b in w.to_le_bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        };
        self.0.shape.iter().for_each(|&d| eat(d as u64));
        self.0.data.iter().for_each(|v| eat(u64::from(v.to_bits())));
        h
    }

    /// `shape=(2, 3) hash=0123456789abcdef first=[1, 2, 3, 4]` (at most four values).
    pub fn describe(&self) -> String {
        let first: Vec<String> = self.0.data.iter().take(4).map(|v| v.to_string()).collect();
        let more = if self.0.data.len() > 4 { ", .." } else { "" };
        format!(
            "shape={} hash={:016x} first=[{}{more}]",
            super::fmt_shape(&self.0.shape),
            self.fingerprint(),
            first.join(", ")
        )
    }
}

impl PartialEq for ConstantData {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
            || (self.0.shape == other.0.shape
                && self
                    .0
                    .data
                    .iter()
                    .zip(&other.0.data)
                    .all(|(a, b)| a.to_bits() == b.to_bits()))
    }
}

impl std::fmt::Debug for ConstantData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Constant({})", self.describe())
    }
}

/// Element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float: every op supports it.
    F32,
    /// 32-bit signed integer (labels, indices).
    I32,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size_bytes(self) -> usize {
        4
    }

    /// The lower-case name used in dumps (`f32`, `i32`).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::I32 => "i32",
        }
    }
}

/// Elementwise functions of one argument.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnaryOp {
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// `x` if `x >= 0`, else `alpha * x` (Keras's default alpha is 0.2 for the layer, 0.3 for
    /// the activation string in Keras 2; Fovea uses 0.2 as Keras 3 does).
    LeakyRelu(f32),
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// `exp(x)`.
    Exp,
    /// Natural logarithm.
    Log,
    /// `-x`.
    Neg,
    /// Square root.
    Sqrt,
    /// `x * x`.
    Square,
    /// `|x|`.
    Abs,
    /// `x * c`.
    Scale(f32),
    /// `x + c`.
    AddScalar(f32),
    /// `min(max(x, lo), hi)` with `lo <= hi` (either may be infinite); NaN stays NaN. The
    /// gradient passes where `lo <= x <= hi`, boundaries included (as TensorFlow's
    /// `clip_by_value`), and is 0 outside and at NaN.
    Clip(f32, f32),
    /// `log(1 + exp(x))`, computed stably as `max(x, 0) + log1p(exp(-|x|))`; its derivative is
    /// `sigmoid(x)`. NaN stays NaN.
    Softplus,
    /// `x * relu6(x + 3) / 6` (TFLite's and Keras's hard swish). Derivative
    /// `relu6(x + 3) / 6 + x * [-3 < x < 3] / 6`, the one-sided value at the kinks: 0 at
    /// `x = -3`, 1 at `x = 3`. NaN stays NaN.
    HardSwish,
    /// `x` if `x > 0`, else `alpha * (exp(x) - 1)` (Keras's ELU). Derivative 1 for `x > 0`, else
    /// `alpha * exp(x)` (so `alpha` at 0). NaN stays NaN.
    Elu(f32),
}

impl UnaryOp {
    /// A short lower-case name for dumps and kernel names.
    pub fn name(&self) -> &'static str {
        match self {
            UnaryOp::Relu => "relu",
            UnaryOp::Relu6 => "relu6",
            UnaryOp::LeakyRelu(_) => "leaky_relu",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Neg => "neg",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Square => "square",
            UnaryOp::Abs => "abs",
            UnaryOp::Scale(_) => "scale",
            UnaryOp::AddScalar(_) => "add_scalar",
            UnaryOp::Clip(..) => "clip",
            UnaryOp::Softplus => "softplus",
            UnaryOp::HardSwish => "hard_swish",
            UnaryOp::Elu(_) => "elu",
        }
    }
}

/// Elementwise functions of two arguments, with numpy broadcasting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`.
    Div,
    /// `max(a, b)`.
    Max,
    /// `min(a, b)`.
    Min,
    /// `1.0` where `a >= b`, else `0.0` (no gradient; masks for max and min gradients).
    Ge,
    /// `1.0` where `a == b`, else `0.0` (no gradient; masks for reduce-max gradients).
    Eq,
    /// Parametric ReLU: `a` where `a >= 0`, else `b * a`, with `b` the (broadcast) slope, per
    /// channel as Keras's `PReLU` holds it. Gradients: `a` gets `dy` where `a >= 0`, else
    /// `dy * b` (so 1 at 0, as `LeakyRelu`); `b` gets `dy * a` where `a < 0`, else 0. NaN in
    /// `a` gives `b * NaN` = NaN.
    PRelu,
}

impl BinaryOp {
    /// A short lower-case name for dumps and kernel names.
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Max => "max",
            BinaryOp::Min => "min",
            BinaryOp::Ge => "ge",
            BinaryOp::Eq => "eq",
            BinaryOp::PRelu => "prelu",
        }
    }
}

/// An expression of a fused elementwise node, over the node's inputs (broadcast to the
/// node's shape). Made by the fusion pass from chains of `Unary`, `Binary`, `UnaryGrad` and
/// `Fill` nodes.
#[derive(Debug, Clone, PartialEq)]
pub enum ElemExpr {
    /// The node's input `i` at the current element.
    Input(usize),
    /// A constant.
    Const(f32),
    /// A function of one argument.
    Unary(UnaryOp, Box<ElemExpr>),
    /// A function of two arguments.
    Binary(BinaryOp, Box<ElemExpr>, Box<ElemExpr>),
    /// `dy * f'(x)` of `(x, dy)`.
    UnaryGrad(UnaryOp, Box<ElemExpr>, Box<ElemExpr>),
    /// `cond != 0 ? a : b` of `(cond, a, b)` (see [`Op::Select`]).
    Select(Box<ElemExpr>, Box<ElemExpr>, Box<ElemExpr>),
}

impl ElemExpr {
    /// `op(arg)`.
    pub fn unary(op: UnaryOp, arg: ElemExpr) -> Self {
        ElemExpr::Unary(op, Box::new(arg))
    }

    /// `op(a, b)`.
    pub fn binary(op: BinaryOp, a: ElemExpr, b: ElemExpr) -> Self {
        ElemExpr::Binary(op, Box::new(a), Box::new(b))
    }

    /// `dy * f'(x)` for the unary op `op`.
    pub fn unary_grad(op: UnaryOp, x: ElemExpr, dy: ElemExpr) -> Self {
        ElemExpr::UnaryGrad(op, Box::new(x), Box::new(dy))
    }

    /// `cond != 0 ? a : b`.
    pub fn select(cond: ElemExpr, a: ElemExpr, b: ElemExpr) -> Self {
        ElemExpr::Select(Box::new(cond), Box::new(a), Box::new(b))
    }

    /// The sub-expressions, in evaluation order.
    pub fn children(&self) -> Vec<&ElemExpr> {
        match self {
            ElemExpr::Input(_) | ElemExpr::Const(_) => vec![],
            ElemExpr::Unary(_, a) => vec![a],
            ElemExpr::Binary(_, a, b) | ElemExpr::UnaryGrad(_, a, b) => vec![a, b],
            ElemExpr::Select(c, a, b) => vec![c, a, b],
        }
    }

    /// Number of operations per element (a gradient counts as one).
    pub fn op_count(&self) -> usize {
        let own = usize::from(!matches!(self, ElemExpr::Input(_) | ElemExpr::Const(_)));
        own + self.children().iter().map(|c| c.op_count()).sum::<usize>()
    }

    /// The operation names in evaluation order (`add`, `relu`, `relu_grad`), for kernel names.
    pub fn op_names(&self, out: &mut Vec<String>) {
        self.children().iter().for_each(|c| c.op_names(out));
        match self {
            ElemExpr::Input(_) | ElemExpr::Const(_) => {}
            ElemExpr::Unary(op, _) => out.push(op.name().to_string()),
            ElemExpr::Binary(op, ..) => out.push(op.name().to_string()),
            ElemExpr::UnaryGrad(op, ..) => out.push(format!("{}_grad", op.name())),
            ElemExpr::Select(..) => out.push("select".to_string()),
        }
    }

    /// Calls `f` on every input index the expression reads.
    pub fn visit_inputs(&self, f: &mut impl FnMut(usize)) {
        if let ElemExpr::Input(i) = self {
            f(*i);
        }
        self.children().iter().for_each(|c| c.visit_inputs(f));
    }

    /// The same expression with input `i` renumbered to `map[i]`.
    pub fn remap(&self, map: &[usize]) -> ElemExpr {
        match self {
            ElemExpr::Input(i) => ElemExpr::Input(map[*i]),
            ElemExpr::Const(c) => ElemExpr::Const(*c),
            ElemExpr::Unary(op, a) => ElemExpr::unary(*op, a.remap(map)),
            ElemExpr::Binary(op, a, b) => ElemExpr::binary(*op, a.remap(map), b.remap(map)),
            ElemExpr::UnaryGrad(op, a, b) => ElemExpr::unary_grad(*op, a.remap(map), b.remap(map)),
            ElemExpr::Select(c, a, b) => ElemExpr::select(c.remap(map), a.remap(map), b.remap(map)),
        }
    }

    /// A readable form: `relu(add(in0, in1))`.
    pub fn describe(&self) -> String {
        match self {
            ElemExpr::Input(i) => format!("in{i}"),
            ElemExpr::Const(c) => format!("{c}"),
            ElemExpr::Unary(u, a) => format!("{}({})", u.name(), a.describe()),
            ElemExpr::Binary(b, x, y) => format!("{}({}, {})", b.name(), x.describe(), y.describe()),
            ElemExpr::UnaryGrad(u, x, dy) => format!("{}_grad({}, {})", u.name(), x.describe(), dy.describe()),
            ElemExpr::Select(c, a, b) => format!("select({}, {}, {})", c.describe(), a.describe(), b.describe()),
        }
    }
}

/// Padding of the two spatial dimensions, in elements, before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Pad2d {
    /// Rows added above.
    pub top: usize,
    /// Rows added below.
    pub bottom: usize,
    /// Columns added on the left.
    pub left: usize,
    /// Columns added on the right.
    pub right: usize,
}

/// Geometry of a 2-D convolution (also used by its transpose and its gradients).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConvGeometry {
    /// Vertical and horizontal stride.
    pub stride: (usize, usize),
    /// Vertical and horizontal dilation.
    pub dilation: (usize, usize),
    /// Zero padding of the input.
    pub pad: Pad2d,
    /// Number of groups: input and output channels are split into this many independent parts.
    pub groups: usize,
}

impl ConvGeometry {
    /// Output size along one spatial axis of a forward convolution:
    /// `floor((in + pads - dilation * (k - 1) - 1) / stride) + 1`, or `None` if the kernel does
    /// not fit.
    pub fn out_len(input: usize, pad: usize, k: usize, stride: usize, dilation: usize) -> Option<usize> {
        if k == 0 || stride == 0 || dilation == 0 {
            return None;
        }
        let span = dilation * (k - 1) + 1;
        let padded = input + pad;
        if padded < span {
            None
        } else {
            Some((padded - span) / stride + 1)
        }
    }
}

/// The uniform number in `[0, 1)` that decides whether training-mode dropout keeps element
/// `index` for a given integer `seed` (a PCG-style integer hash; the GPU kernel computes the
/// same bits).
pub fn dropout_uniform(seed: u32, index: u32) -> f32 {
    let mut h = index
        .wrapping_mul(747_796_405)
        .wrapping_add(seed.wrapping_mul(2_891_336_453).wrapping_add(1));
    h = ((h >> ((h >> 28).wrapping_add(4))) ^ h).wrapping_mul(277_803_737);
    h = (h >> 22) ^ h;
    (h >> 8) as f32 / 16_777_216.0
}

/// Max or average pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoolKind {
    /// Maximum over the window (padding never wins).
    Max,
    /// Mean over the window's elements inside the input (padding is not counted, as in Keras).
    Avg,
}

/// Geometry of a 2-D pooling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PoolGeometry {
    /// Max or average.
    pub kind: PoolKind,
    /// Window height and width.
    pub size: (usize, usize),
    /// Vertical and horizontal stride.
    pub stride: (usize, usize),
    /// Implicit padding (never part of a max or an average).
    pub pad: Pad2d,
}

/// Reductions over some axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    /// Sum.
    Sum,
    /// Arithmetic mean.
    Mean,
    /// Maximum.
    Max,
    /// Minimum (its gradient splits `dy` evenly among tied minima, as `Max` does).
    Min,
}

impl ReduceOp {
    /// A short lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Mean => "mean",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
        }
    }
}

/// How `Pad` fills the border of each padded axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PadMode {
    /// Every added element is the op's `value`.
    #[default]
    Constant,
    /// A mirror image without the edge (numpy's and TensorFlow's `REFLECT`): `[1, 2, 3]` padded
    /// by 2 on both sides is `[3, 2, 1, 2, 3, 2, 1]`. Each pad must be shorter than its axis.
    Reflect,
    /// The edge repeated (numpy's `edge`, PyTorch's `replicate`): `[1, 2, 3]` padded by 2 is
    /// `[1, 1, 1, 2, 3, 3, 3]`.
    Replicate,
}

impl PadMode {
    /// A short lower-case name (`constant`, `reflect`, `replicate`).
    pub fn name(self) -> &'static str {
        match self {
            PadMode::Constant => "constant",
            PadMode::Reflect => "reflect",
            PadMode::Replicate => "replicate",
        }
    }

    /// The input coordinate read by the padded coordinate `r` (the output coordinate minus the
    /// padding before it) along an axis of length `len`: `r` itself inside `0..len`; outside,
    /// `None` for a constant pad, else the mirrored or clamped coordinate.
    pub fn source(self, r: i64, len: usize) -> Option<usize> {
        let n = len as i64;
        if (0..n).contains(&r) {
            return Some(r as usize);
        }
        let s = match self {
            PadMode::Constant => return None,
            PadMode::Reflect if r < 0 => -r,
            PadMode::Reflect => 2 * (n - 1) - r,
            PadMode::Replicate => r.clamp(0, n - 1),
        };
        (0..n).contains(&s).then_some(s as usize)
    }
}

/// Interpolation of a resize: how an output position `dst` (of `out`) maps to a source
/// position (of `in`). Beside the two modes Keras uses, TFLite's flag combinations
/// (`align_corners`, `half_pixel_centers`) each have one. Except for [`ResizeMode::Nearest`]
/// (integer arithmetic), the source position is computed in f32 with the scale
/// [`ResizeMode::scale`] rounded once, as TFLite does, so the reference interpreter and the
/// kernels pick the same pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResizeMode {
    /// Nearest neighbour, `floor(dst * in / out)` (Keras's `UpSampling2D`, TFLite without flags).
    Nearest,
    /// Bilinear with half-pixel centres, `src = (dst + 0.5) * in / out - 0.5` (TensorFlow 2's
    /// `resize` and Keras's `UpSampling2D`).
    Bilinear,
    /// Bilinear with aligned corners, `src = dst * (in - 1) / (out - 1)` (TFLite
    /// `align_corners`).
    BilinearAlignCorners,
    /// Bilinear, TensorFlow 1's legacy mapping `src = dst * in / out` (TFLite with neither flag).
    BilinearAsymmetric,
    /// Nearest with half-pixel centres, `floor((dst + 0.5) * in / out)` (TFLite
    /// `half_pixel_centers`).
    NearestHalfPixel,
    /// Nearest with aligned corners, `floor(dst * (in - 1) / (out - 1) + 0.5)` (TFLite
    /// `align_corners`).
    NearestAlignCorners,
}

impl ResizeMode {
    /// Every mode.
    pub const ALL: [ResizeMode; 6] = [
        ResizeMode::Nearest,
        ResizeMode::Bilinear,
        ResizeMode::BilinearAlignCorners,
        ResizeMode::BilinearAsymmetric,
        ResizeMode::NearestHalfPixel,
        ResizeMode::NearestAlignCorners,
    ];

    /// The mode's name in kernel and op names (`nearest`, `bilinear_align_corners`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ResizeMode::Nearest => "nearest",
            ResizeMode::Bilinear => "bilinear",
            ResizeMode::BilinearAlignCorners => "bilinear_align_corners",
            ResizeMode::BilinearAsymmetric => "bilinear_asymmetric",
            ResizeMode::NearestHalfPixel => "nearest_half_pixel",
            ResizeMode::NearestAlignCorners => "nearest_align_corners",
        }
    }

    /// Whether the mode interpolates between two source positions per axis.
    pub fn is_bilinear(self) -> bool {
        matches!(
            self,
            ResizeMode::Bilinear | ResizeMode::BilinearAlignCorners | ResizeMode::BilinearAsymmetric
        )
    }

    /// Whether the mode aligns the corner pixels (scale `(in - 1) / (out - 1)`).
    pub fn aligns_corners(self) -> bool {
        matches!(self, ResizeMode::BilinearAlignCorners | ResizeMode::NearestAlignCorners)
    }

    /// The f32 scale from output to source positions along an axis of `len_in` resized to
    /// `len_out`: `(in - 1) / (out - 1)` when aligning corners (and `out > 1`), else `in / out`.
    pub fn scale(self, len_in: usize, len_out: usize) -> f32 {
        if self.aligns_corners() && len_out > 1 {
            (len_in - 1) as f32 / (len_out - 1) as f32
        } else {
            len_in as f32 / len_out as f32
        }
    }

    /// The offset of the half-pixel mappings, `src = (dst + offset_in) * scale - offset_out`:
    /// `(offset_in, offset_out)`.
    pub fn offsets(self) -> (f32, f32) {
        match self {
            ResizeMode::Bilinear => (0.5, 0.5),
            ResizeMode::NearestHalfPixel => (0.5, 0.0),
            ResizeMode::NearestAlignCorners => (0.0, -0.5),
            _ => (0.0, 0.0),
        }
    }

    /// The source position of output position `dst`, in f32 as the kernels compute it:
    /// `(dst + offset_in) * scale - offset_out`, clamped below at 0 (the nearest modes floor
    /// it; the bilinear ones interpolate at it).
    pub fn source(self, dst: usize, scale: f32) -> f32 {
        let (a, b) = self.offsets();
        ((dst as f32 + a) * scale - b).max(0.0)
    }

    /// The source pixel a nearest mode reads for output position `dst`.
    pub fn nearest_index(self, dst: usize, len_in: usize, len_out: usize) -> usize {
        match self {
            ResizeMode::Nearest => (dst * len_in / len_out).min(len_in - 1),
            _ => (self.source(dst, self.scale(len_in, len_out)).floor() as usize).min(len_in - 1),
        }
    }
}

/// What a node computes. Inputs are given by the node, in the order each variant documents.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// A model input fed at run time.
    Input {
        /// The input's name.
        name: String,
    },
    /// A parameter (weight) held by the runtime, named `<layer>/<variable>` as Keras does.
    Param {
        /// `conv2d/kernel`, `batch_normalization/moving_mean`, ...
        name: String,
        /// Whether an optimizer updates it.
        trainable: bool,
    },
    /// 2-D convolution. Inputs: `x` NHWC, `w` HWIO with `I = C / groups`.
    Conv2d(ConvGeometry),
    /// Transposed 2-D convolution (the gradient of `Conv2d` with respect to its input).
    /// Inputs: `x` NHWC with `C` channels, `w` `(kh, kw, out, C)`.
    /// `pad` removes rows/columns from the full output; `out_pad` adds rows/columns at the end.
    ConvTranspose2d {
        /// Stride, dilation and cropping of the full output. Groups must be 1.
        geom: ConvGeometry,
        /// Extra rows and columns at the bottom and right of the output.
        out_pad: (usize, usize),
    },
    /// Matrix product of two 2-D tensors, `op(a) @ op(b)` with optional transposes.
    MatMul {
        /// Use `a` transposed.
        trans_a: bool,
        /// Use `b` transposed.
        trans_b: bool,
    },
    /// A matrix product stored pixel-shuffled (made by `passes::subpixel` from a transposed
    /// convolution whose kernel equals its stride). Inputs: `x` NHWC `(N, H, W, C)` and `k`
    /// `(C, bh * bw * O)`; output `(N, H * bh, W * bw, O)` with
    /// `y[n, i*bh + a, j*bw + b, o] = sum_c x[n, i, j, c] * k[c, (a*bw + b)*O + o]`: the
    /// matrix product of the pixels `(N*H*W, C)` with `k`, each row's `bh x bw x O` outputs
    /// written to its block of output pixels (a depth-to-space of the product, done by the
    /// store). Made after autodiff: it has no gradient rule.
    PixelShuffleMatMul {
        /// The block `(bh, bw)` of output pixels each input pixel fills.
        block: (usize, usize),
    },
    /// 2-D max or average pooling of an NHWC tensor.
    Pool2d(PoolGeometry),
    /// Reduce over `axes` (sorted, unique); the reduced axes are removed unless `keep_dims`.
    Reduce {
        /// Sum, mean or max.
        op: ReduceOp,
        /// The axes to reduce.
        axes: Vec<usize>,
        /// Keep reduced axes with length 1.
        keep_dims: bool,
    },
    /// Elementwise function of one input.
    Unary(UnaryOp),
    /// Elementwise function of two inputs with numpy broadcasting.
    Binary(BinaryOp),
    /// Softmax over the last axis.
    Softmax,
    /// Log-softmax over the last axis.
    LogSoftmax,
    /// Softmax cross-entropy over the last axis, computed stably (max-subtracted log-sum-exp).
    /// Inputs: `logits` `(.., C)` and `labels` of the same shape (a label distribution per row;
    /// sparse labels are fed one-hot). Output: the per-row loss
    /// `-sum_c labels[c] * log_softmax(logits)[c]`, shaped like `logits` without its last axis
    /// (`(1,)` for a 1-D `logits`, as a `Reduce` without `keep_dims` gives).
    SoftmaxCrossEntropy,
    /// Gradient of `SoftmaxCrossEntropy` with respect to its logits. Inputs: `logits`,
    /// `labels` (same shape) and `dloss` (the forward output's shape). Output, shaped like
    /// `logits`: `(softmax(logits)[c] * sum_k labels[k] - labels[c]) * dloss` per row.
    SoftmaxCrossEntropyGrad,
    /// Batch normalisation with given statistics (inference mode), over the last axis.
    /// Inputs: `x`, `gamma`, `beta`, `mean`, `variance`, each of the last four of shape `(C,)`.
    BatchNormInference {
        /// Added to the variance.
        epsilon: f32,
    },
    /// Spatial resize of an NHWC tensor to `(height, width)`.
    Resize {
        /// Nearest or bilinear.
        mode: ResizeMode,
        /// Output height.
        height: usize,
        /// Output width.
        width: usize,
    },
    /// Concatenation of all inputs along `axis`.
    Concat {
        /// The axis to join along.
        axis: usize,
    },
    /// Padding of every axis (channels included): `pads[i] = (before, after)`, the border
    /// filled as `mode` says ([`PadMode::source`] gives the element each position reads).
    Pad {
        /// Elements added before and after, per axis.
        pads: Vec<(usize, usize)>,
        /// The fill value of a constant pad (unused by the other modes).
        value: f32,
        /// Constant, reflect or replicate.
        mode: PadMode,
    },
    /// Same data, new shape (the node's output type holds the shape).
    Reshape,
    /// Axis permutation: output axis `i` is input axis `perm[i]`.
    Transpose {
        /// The permutation.
        perm: Vec<usize>,
    },
    /// Dropout. With `training == false` it is the identity (input: `x`). In training (inputs:
    /// `x` and a `(1,)` seed holding a small integer) element `i` is kept when
    /// `dropout_uniform(seed, i) >= rate` and then scaled by `1 / (1 - rate)`, else zeroed; the
    /// same seed applied to the output gradient gives the input gradient.
    Dropout {
        /// The fraction of units dropped in training.
        rate: f32,
        /// Whether this node drops units.
        training: bool,
    },
    /// Gradient of a unary op: inputs `x` (the op's input) and `dy`; output `dy * f'(x)`.
    UnaryGrad(UnaryOp),
    /// Gradient of `Conv2d` with respect to its input. Inputs: `dy` `(N, OH, OW, CO)` and the
    /// forward kernel `w` in the layout `filter` says: HWIO `(KH, KW, I, CO)` as the forward
    /// convolution holds it, or `(KH, KW, CO, I)` (see [`BackpropFilter`]).
    /// Output: `dx` `(N, H, W, C)` with `(H, W) = input_hw` and `C = I * groups`.
    Conv2dBackpropInput {
        /// The forward convolution's geometry.
        geom: ConvGeometry,
        /// The forward input's height and width.
        input_hw: (usize, usize),
        /// How input 1 holds the forward kernel.
        filter: BackpropFilter,
    },
    /// Gradient of `Conv2d` with respect to its kernel. Inputs: `x` `(N, H, W, C)`, `dy`
    /// `(N, OH, OW, CO)`. Output: `dw` `(KH, KW, C / groups, CO)` with `(KH, KW) = kernel_hw`.
    Conv2dBackpropFilter {
        /// The forward convolution's geometry.
        geom: ConvGeometry,
        /// The kernel's height and width.
        kernel_hw: (usize, usize),
    },
    /// Gradient of `Pool2d`. Inputs: `x` (the forward input) and `dy`. Max pooling sends each
    /// output's gradient to the first (row-major) in-range maximum of its window; average
    /// pooling spreads it evenly over the window's in-range positions. Output: `x`'s shape.
    Pool2dBackprop(PoolGeometry),
    /// Gradient of `Resize`. Input: `dy` `(N, OH, OW, C)`; output `(N, H, W, C)` with
    /// `(H, W) = input_hw`: each output gradient goes back to the input pixels it read, with
    /// the interpolation weights.
    ResizeBackprop {
        /// Nearest or bilinear.
        mode: ResizeMode,
        /// The forward input's height and width.
        input_hw: (usize, usize),
    },
    /// Numpy broadcast of the input to `shape`.
    Broadcast {
        /// The output shape; the input must broadcast to it.
        shape: Vec<usize>,
    },
    /// A fused chain of elementwise ops: `expr` over the inputs, broadcast to the output shape.
    Elementwise {
        /// What each element computes.
        expr: ElemExpr,
    },
    /// A GEMM-based op or a pooling gradient with a fused elementwise epilogue (made by the
    /// epilogue-fusion pass; the name is historical). `base` is `Conv2d` (not depthwise),
    /// `MatMul`, `PixelShuffleMatMul`, `ConvTranspose2d`, `Conv2dBackpropInput`, `Conv2dBackpropFilter` (run on the
    /// GEMM core) or `Pool2dBackprop` (max or average; its own kernel, which stores through the
    /// same epilogue). Inputs: the base op's two inputs, then the epilogue's extra
    /// inputs, each either of the output's full shape or a per-channel `(C,)` vector with `C` the
    /// output's last axis. `expr` computes each output element: `Input(0)` is the base result at
    /// that element, `Input(k)` (k >= 1) the k-th extra input there (broadcast). Output type:
    /// the base op's.
    GemmEpilogue {
        /// The GEMM-based op producing `Input(0)`.
        base: Box<Op>,
        /// The epilogue over the base result and the extra inputs.
        expr: ElemExpr,
    },
    /// A reduction of an elementwise expression (made by the reduce-prologue fusion pass):
    /// `Reduce { op, axes, keep_dims }` of `Elementwise { expr }` over the inputs, whose
    /// shapes broadcast to the reduced tensor's shape, so that the expression's result (a
    /// square, a product) is never stored. Output type: the reduction's.
    ReducePrologue {
        /// Sum, mean, max or min.
        op: ReduceOp,
        /// The axes to reduce (sorted, unique).
        axes: Vec<usize>,
        /// Keep reduced axes with length 1.
        keep_dims: bool,
        /// The expression over the inputs whose values are reduced.
        expr: ElemExpr,
    },
    /// A tensor of the node's type filled with `value` (no inputs; made by `Graph::fill`).
    Fill {
        /// Every element's value.
        value: f32,
    },
    /// A box of the input: `sizes[i]` elements from `starts[i]` along every axis `i`.
    Slice {
        /// First element per axis.
        starts: Vec<usize>,
        /// Length per axis.
        sizes: Vec<usize>,
    },
    /// Gradient of a reflect or replicate `Pad` (a constant pad's is a `Slice`). Input: `dy`
    /// of the padded shape; output: the unpadded shape, each element the sum of `dy` over every
    /// padded position that reads it (the mirrored or repeated copies folded back).
    PadBackprop {
        /// The forward pad's `(before, after)` per axis.
        pads: Vec<(usize, usize)>,
        /// The forward pad's mode (reflect or replicate).
        mode: PadMode,
    },
    /// A tensor of host data (anchors, masks, coordinate grids; no inputs; made by
    /// `Graph::constant`). The engine uploads it once, when the program is compiled, into a
    /// buffer of its own that no other tensor reuses.
    Constant {
        /// The values (`f32`, the node's shape).
        value: ConstantData,
    },
    /// `cond ? a : b` elementwise, all three broadcast together (numpy rules). Inputs: `cond`
    /// (an `f32` 0/1 mask as `Ge` makes, or an `i32` tensor; any non-zero value, NaN included,
    /// selects `a`), `a`, `b` (`f32`). Gradients: `a` gets `dy` where `cond` holds, `b` where it
    /// does not; `cond` gets none.
    Select,
    // ---- structural ops (detection, faces, style transfer): see `structural.rs` ----
    /// `tf.gather(x, indices, axis, batch_dims)`. Inputs: `x` f32 and `indices` i32, where the
    /// first `batch_dims` axes of both match. With `x = B ++ P ++ [len] ++ I` (`B` the batch
    /// axes, `axis = rank(B ++ P)`) and `indices = B ++ T`, the output is `B ++ P ++ T ++ I`:
    /// `out[b, p, t, i] = x[b, p, indices[b, t], i]`, and 0 where the index is outside
    /// `0..len` (negative or too large: zero, never a clamp or an out-of-bounds read).
    Gather {
        /// The axis of `x` the indices select along.
        axis: usize,
        /// Leading axes shared by `x` and `indices` (0: plain `tf.gather`; `rank - 1` with
        /// `axis = rank - 1`: one index row per row, as `take_along_axis`).
        batch_dims: usize,
    },
    /// The adjoint of `Gather`: inputs `updates` f32 (a `Gather` output's shape,
    /// `B ++ P ++ T ++ I`) and `indices` i32 (`B ++ T`); output `B ++ P ++ [len] ++ I` with
    /// `out[b, p, j, i] = sum over t with indices[b, t] == j of updates[b, p, t, i]`. Colliding
    /// indices accumulate; indices outside `0..len` are dropped.
    ScatterAdd {
        /// The axis of the output the indices address.
        axis: usize,
        /// Leading axes shared by `updates` and `indices`.
        batch_dims: usize,
        /// The output's length along `axis`.
        len: usize,
    },
    /// Indices (i32) of the `k` largest elements of each row of the last axis, largest first,
    /// ties broken by the lower index first; NaN orders above `+inf`, `-0.0` equals `0.0`
    /// (see [`sort_order`]). Output: the input's shape with its last axis `k`. Values are a
    /// `Gather { axis: rank - 1, batch_dims: rank - 1 }` of the indices (differentiable).
    TopK {
        /// How many indices per row (`1..=row length`).
        k: usize,
    },
    /// The permutation (i32) that sorts along `axis`, stable (equal elements keep their order),
    /// ascending or descending, in the order of [`sort_order`]. Output: the input's shape.
    ArgSort {
        /// The axis to sort along.
        axis: usize,
        /// Largest first.
        descending: bool,
    },
    /// The index (i32) of the first maximum along `axis` (a NaN is a maximum, so the first NaN
    /// wins, as numpy's `argmax`). Output: the input's shape without `axis`, `(1,)` for 1-D.
    ArgMax {
        /// The axis to search.
        axis: usize,
    },
    /// Instance normalisation of an NHWC tensor: each `(n, c)` plane of `H * W` elements is
    /// normalised by its own mean and (biased) variance, then scaled and shifted:
    /// `y = (x - mean) / sqrt(var + epsilon) * gamma[c] + beta[c]`. Inputs: `x` `(N, H, W, C)`,
    /// `gamma` `(C,)`, `beta` `(C,)`. The same computation in training and inference (as
    /// Keras's `GroupNormalization(groups=-1)`).
    InstanceNorm {
        /// Added to the variance.
        epsilon: f32,
    },
    /// Non-maximum suppression of detection candidates, per class, batched. Inputs: `scores`
    /// `(B, C, K)`, each class's `K` candidates sorted best first (as `TopK` and `Gather` give
    /// them), and their `boxes` `(B, C, K, 4)`, corners `(xmin, ymin, xmax, ymax)` (a box with
    /// `xmax < xmin` or `ymax < ymin` has zero area; IoU is 0 when the union is empty). Per image
    /// and class, the candidates are visited in order until the first whose score is not above
    /// `score_threshold` (or until `max_detections` are kept); one is kept unless a kept box
    /// overlaps it with IoU above `iou_threshold`. The classes' kept boxes are then merged, best
    /// score first (the lower class on ties, a class's own order within it). Output
    /// `(B, max_detections, 6)`: rows `(xmin, ymin, xmax, ymax, score, class)`, unused rows all
    /// -1. No gradient. See `ops::batched_nms` for the whole decode-side pipeline.
    Nms {
        /// Suppress a candidate overlapping a kept box of its class by more than this.
        iou_threshold: f32,
        /// Stop at the first candidate scoring at or below this.
        score_threshold: f32,
        /// Rows per image (and most boxes kept per class).
        max_detections: usize,
    },
}

/// The layout of the forward kernel `Conv2dBackpropInput` reads. Both hold the same numbers;
/// they differ in which channel axis is contiguous.
///
/// The op is one GEMM per group with K = (taps, output channels) and N = input channels. In HWIO
/// the input channels are strided by `CO`, so the GEMM core reads B one scalar at a time;
/// in `Hwoi` they are contiguous and it reads four columns per `vec4` load, as the forward
/// convolution does (on lavapipe every storage load is a loop over the SIMD lanes, so that is
/// 4x fewer B loads per FMA). The `transpose_backprop_filters` pass picks `Hwoi` and inserts the
/// transpose; autodiff emits `Hwio`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BackpropFilter {
    /// The forward kernel itself: `(KH, KW, C / groups, CO)`.
    #[default]
    Hwio,
    /// Each tap's matrix transposed: `(KH, KW, CO, C / groups)`, the HWIO kernel through
    /// `Transpose { perm: [0, 1, 3, 2] }`.
    Hwoi,
}

impl BackpropFilter {
    /// The HWIO kernel shape of a kernel of this layout with shape `w` (4 axes).
    pub fn hwio_shape(self, w: &[usize]) -> Vec<usize> {
        match self {
            BackpropFilter::Hwio => w.to_vec(),
            BackpropFilter::Hwoi => vec![w[0], w[1], w[3], w[2]],
        }
    }
}

impl Op {
    /// The op's short name for dumps and errors (`conv2d`, `matmul`, `relu`, ...).
    pub fn name(&self) -> String {
        match self {
            Op::Input { .. } => "input".into(),
            Op::Param { .. } => "param".into(),
            Op::Conv2d(_) => "conv2d".into(),
            Op::ConvTranspose2d { .. } => "conv_transpose2d".into(),
            Op::MatMul { .. } => "matmul".into(),
            Op::PixelShuffleMatMul { .. } => "pixel_shuffle_matmul".into(),
            Op::Pool2d(g) => match g.kind {
                PoolKind::Max => "max_pool2d".into(),
                PoolKind::Avg => "avg_pool2d".into(),
            },
            Op::Reduce { op, .. } => format!("reduce_{}", op.name()),
            Op::Unary(u) => u.name().into(),
            Op::Binary(b) => b.name().into(),
            Op::Softmax => "softmax".into(),
            Op::LogSoftmax => "log_softmax".into(),
            Op::SoftmaxCrossEntropy => "softmax_cross_entropy".into(),
            Op::SoftmaxCrossEntropyGrad => "softmax_cross_entropy_grad".into(),
            Op::BatchNormInference { .. } => "batch_norm".into(),
            Op::Resize { mode, .. } => format!("resize_{}", mode.name()),
            Op::Concat { .. } => "concat".into(),
            Op::Pad { mode, .. } => match mode {
                PadMode::Constant => "pad".into(),
                m => format!("pad_{}", m.name()),
            },
            Op::Reshape => "reshape".into(),
            Op::Transpose { .. } => "transpose".into(),
            Op::Dropout { .. } => "dropout".into(),
            Op::UnaryGrad(u) => format!("{}_grad", u.name()),
            Op::Conv2dBackpropInput { filter, .. } => match filter {
                BackpropFilter::Hwio => "conv2d_backprop_input".into(),
                BackpropFilter::Hwoi => "conv2d_backprop_input_hwoi".into(),
            },
            Op::Conv2dBackpropFilter { .. } => "conv2d_backprop_filter".into(),
            Op::Pool2dBackprop(g) => match g.kind {
                PoolKind::Max => "max_pool2d_backprop".into(),
                PoolKind::Avg => "avg_pool2d_backprop".into(),
            },
            Op::ResizeBackprop { .. } => "resize_backprop".into(),
            Op::Broadcast { .. } => "broadcast".into(),
            Op::Slice { .. } => "slice".into(),
            Op::Fill { .. } => "fill".into(),
            Op::Elementwise { .. } => "fused_elementwise".into(),
            Op::GemmEpilogue { base, .. } => format!("{}_epilogue", base.name()),
            Op::ReducePrologue { op, .. } => format!("reduce_{}_prologue", op.name()),
            Op::Select => "select".into(),
            Op::PadBackprop { mode, .. } => format!("pad_{}_backprop", mode.name()),
            Op::Constant { .. } => "constant".into(),
            Op::Gather { .. } => "gather".into(),
            Op::ScatterAdd { .. } => "scatter_add".into(),
            Op::TopK { .. } => "top_k".into(),
            Op::ArgSort { descending: false, .. } => "argsort".into(),
            Op::ArgSort { descending: true, .. } => "argsort_descending".into(),
            Op::ArgMax { .. } => "argmax".into(),
            Op::InstanceNorm { .. } => "instance_norm".into(),
            Op::Nms { .. } => "nms".into(),
        }
    }

    /// Whether the op computes each output element from the inputs' elements at the same
    /// (broadcast) index: `Elementwise`, `Unary`, `Binary`, `UnaryGrad` and `Select`.
    pub fn is_elementwise(&self) -> bool {
        matches!(
            self,
            Op::Elementwise { .. } | Op::Unary(_) | Op::Binary(_) | Op::UnaryGrad(_) | Op::Select
        )
    }

    /// The per-element expression of an elementwise op over `Input(k)` = its `k`-th input;
    /// `None` for other ops.
    pub fn elementwise_expr(&self) -> Option<ElemExpr> {
        Some(match self {
            Op::Elementwise { expr } => expr.clone(),
            Op::Unary(u) => ElemExpr::unary(*u, ElemExpr::Input(0)),
            Op::Binary(b) => ElemExpr::binary(*b, ElemExpr::Input(0), ElemExpr::Input(1)),
            Op::UnaryGrad(u) => ElemExpr::unary_grad(*u, ElemExpr::Input(0), ElemExpr::Input(1)),
            Op::Select => ElemExpr::select(ElemExpr::Input(0), ElemExpr::Input(1), ElemExpr::Input(2)),
            _ => return None,
        })
    }

    /// Whether the op only reinterprets its input's buffer (no kernel runs for it).
    pub fn is_view(&self) -> bool {
        matches!(self, Op::Reshape | Op::Dropout { training: false, .. })
    }
}
