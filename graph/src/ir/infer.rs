//! Shape inference: the output type of every op from its input types, or an error naming the
//! layer and saying what was expected.

use super::op::*;
use super::structural::{infer_structural, input_dtype};
use super::{TensorType, fmt_shape};
use crate::error::{GraphError, Result};

/// Numpy broadcasting of two shapes (aligned at the last axis), or `None` if they do not fit.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank { a[i + a.len() - rank] } else { 1 };
        let db = if i + b.len() >= rank { b[i + b.len() - rank] } else { 1 };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

fn arity(op: &Op, inputs: &[&TensorType], want: usize, layer: &str) -> Result<()> {
    if inputs.len() != want {
        return Err(GraphError::shape(
            layer,
            format!("{} takes {want} inputs, got {}", op.name(), inputs.len()),
        ));
    }
    Ok(())
}

fn rank(t: &TensorType, want: usize, what: &str, layer: &str) -> Result<()> {
    if t.rank() != want {
        return Err(GraphError::shape(
            layer,
            format!("expected a {want}-D {what}, got shape {}", fmt_shape(&t.shape)),
        ));
    }
    Ok(())
}

fn float(t: &TensorType, layer: &str) -> Result<()> {
    if t.dtype != DType::F32 {
        return Err(GraphError::shape(layer, format!("expected an f32 tensor, got {t}")));
    }
    Ok(())
}

/// Infers the output type of `op` applied to `inputs`.
pub(crate) fn infer(op: &Op, inputs: &[&TensorType], layer: &str) -> Result<TensorType> {
    for (k, t) in inputs.iter().enumerate() {
        if input_dtype(op, k) == DType::I32 {
            if t.dtype != DType::I32 {
                return Err(GraphError::shape(
                    layer,
                    format!("{}: expected i32 indices as input {k}, got {t}", op.name()),
                ));
            }
            continue;
        }
        // Layout ops move any type; a select's condition may be i32, and so may the inputs of
        // a fused expression holding one (its kernel reads them as numbers).
        let any_type = matches!(
            op,
            Op::Reshape | Op::Concat { .. } | Op::Transpose { .. } | Op::Slice { .. } | Op::Broadcast { .. }
        ) || (k == 0 && matches!(op, Op::Select))
            || matches!(op, Op::Elementwise { .. });
        if !any_type {
            float(t, layer)?;
        }
    }
    if let Some(ty) = infer_structural(op, inputs, layer) {
        return ty;
    }
    match op {
        Op::Input { .. } | Op::Param { .. } | Op::Fill { .. } | Op::Constant { .. } => Err(GraphError::shape(
            layer,
            "inputs, parameters, fills and constants are added with Graph::input/param/fill/constant",
        )),
        Op::Conv2d(g) => {
            arity(op, inputs, 2, layer)?;
            let (x, w) = (inputs[0], inputs[1]);
            rank(x, 4, "NHWC input", layer)?;
            rank(w, 4, "HWIO kernel", layer)?;
            let (n, h, wd, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
            let (kh, kw, ki, ko) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3]);
            check_geom(g, layer)?;
            if c % g.groups != 0 || ko % g.groups != 0 {
                return Err(GraphError::shape(
                    layer,
                    format!(
                        "groups={} must divide the input channels ({c}) and the filters ({ko})",
                        g.groups
                    ),
                ));
            }
            if ki * g.groups != c {
                return Err(GraphError::shape(
                    layer,
                    format!(
                        "kernel {} expects {} input channels per group, the input {} has {c} channels in {} groups",
                        fmt_shape(&w.shape),
                        ki,
                        fmt_shape(&x.shape),
                        g.groups
                    ),
                ));
            }
            let oh = ConvGeometry::out_len(h, g.pad.top + g.pad.bottom, kh, g.stride.0, g.dilation.0);
            let ow = ConvGeometry::out_len(wd, g.pad.left + g.pad.right, kw, g.stride.1, g.dilation.1);
            match (oh, ow) {
                (Some(oh), Some(ow)) => Ok(TensorType::f32(vec![n, oh, ow, ko])),
                _ => Err(GraphError::shape(
                    layer,
                    format!(
                        "a {kh}x{kw} kernel (dilation {}x{}) does not fit the {h}x{wd} input {} with padding {:?}; \
                         use padding=\"same\" or a larger input",
                        g.dilation.0,
                        g.dilation.1,
                        fmt_shape(&x.shape),
                        (g.pad.top, g.pad.bottom, g.pad.left, g.pad.right)
                    ),
                )),
            }
        }
        Op::ConvTranspose2d { geom: g, out_pad } => {
            arity(op, inputs, 2, layer)?;
            let (x, w) = (inputs[0], inputs[1]);
            rank(x, 4, "NHWC input", layer)?;
            rank(w, 4, "(kh, kw, out, in) kernel", layer)?;
            check_geom(g, layer)?;
            if g.groups != 1 {
                return Err(GraphError::arg(
                    layer,
                    "groups",
                    "transposed convolution supports groups=1 only",
                ));
            }
            if out_pad.0 >= g.stride.0.max(g.dilation.0) || out_pad.1 >= g.stride.1.max(g.dilation.1) {
                return Err(GraphError::arg(
                    layer,
                    "output_padding",
                    format!(
                        "{out_pad:?} must be smaller than the strides {:?} (or the dilation)",
                        g.stride
                    ),
                ));
            }
            let (n, h, wd, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
            let (kh, kw, ko, ki) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3]);
            if ki != c {
                return Err(GraphError::shape(
                    layer,
                    format!(
                        "kernel {} expects {ki} input channels, the input {} has {c}",
                        fmt_shape(&w.shape),
                        fmt_shape(&x.shape)
                    ),
                ));
            }
            let full_h = (h - 1) * g.stride.0 + g.dilation.0 * (kh - 1) + 1 + out_pad.0;
            let full_w = (wd - 1) * g.stride.1 + g.dilation.1 * (kw - 1) + 1 + out_pad.1;
            let crop_h = g.pad.top + g.pad.bottom;
            let crop_w = g.pad.left + g.pad.right;
            if full_h <= crop_h || full_w <= crop_w {
                return Err(GraphError::shape(layer, "padding crops the whole output"));
            }
            Ok(TensorType::f32(vec![n, full_h - crop_h, full_w - crop_w, ko]))
        }
        Op::MatMul { trans_a, trans_b } => {
            arity(op, inputs, 2, layer)?;
            let (a, b) = (inputs[0], inputs[1]);
            if a.rank() != 2 && a.rank() != 3 {
                return Err(GraphError::shape(
                    layer,
                    format!(
                        "expected a 2-D input (batch, features) or a 3-D batch of matrices, got shape {}; \
                         add a Flatten layer before it",
                        fmt_shape(&a.shape)
                    ),
                ));
            }
            rank(b, a.rank(), "matrix (the rank of the other operand)", layer)?;
            // Batched (rank 3): (B, M, K) x (B, K, N), the flags applying to the last two axes.
            let batch = a.shape[..a.rank() - 2].to_vec();
            if b.shape[..b.rank() - 2] != batch[..] {
                return Err(GraphError::shape(
                    layer,
                    format!(
                        "batched matmul: the batch sizes of {} and {} differ",
                        fmt_shape(&a.shape),
                        fmt_shape(&b.shape)
                    ),
                ));
            }
            let (a0, a1) = (a.shape[a.rank() - 2], a.shape[a.rank() - 1]);
            let (b0, b1) = (b.shape[b.rank() - 2], b.shape[b.rank() - 1]);
            let (m, ka) = if *trans_a { (a1, a0) } else { (a0, a1) };
            let (kb, n) = if *trans_b { (b1, b0) } else { (b0, b1) };
            if ka != kb {
                return Err(GraphError::shape(
                    layer,
                    format!(
                        "matmul inner sizes differ: {} x {} ({ka} vs {kb})",
                        fmt_shape(&a.shape),
                        fmt_shape(&b.shape)
                    ),
                ));
            }
            let mut out = batch;
            out.extend([m, n]);
            Ok(TensorType::f32(out))
        }
        Op::PixelShuffleMatMul { block: (bh, bw) } => {
            arity(op, inputs, 2, layer)?;
            let (x, k) = (inputs[0], inputs[1]);
            rank(x, 4, "NHWC input", layer)?;
            rank(k, 2, "matrix (channels, block pixels x outputs)", layer)?;
            let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
            let cells = bh * bw;
            if cells == 0 || k.shape[0] != c || !k.shape[1].is_multiple_of(cells) || k.shape[1] == 0 {
                return Err(GraphError::shape(
                    layer,
                    format!(
                        "pixel-shuffled matmul of {} by {}: expected a ({c}, {bh} x {bw} x outputs) matrix",
                        fmt_shape(&x.shape),
                        fmt_shape(&k.shape)
                    ),
                ));
            }
            Ok(TensorType::f32(vec![n, h * bh, w * bw, k.shape[1] / cells]))
        }
        Op::Pool2d(p) => {
            arity(op, inputs, 1, layer)?;
            let x = inputs[0];
            rank(x, 4, "NHWC input", layer)?;
            if p.size.0 == 0 || p.size.1 == 0 || p.stride.0 == 0 || p.stride.1 == 0 {
                return Err(GraphError::arg(
                    layer,
                    "pool_size",
                    "pool size and strides must be positive",
                ));
            }
            if p.pad.top.max(p.pad.bottom) >= p.size.0 || p.pad.left.max(p.pad.right) >= p.size.1 {
                return Err(GraphError::shape(
                    layer,
                    format!("pool padding {:?} must be smaller than the window", p.pad),
                ));
            }
            let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
            let oh = ConvGeometry::out_len(h, p.pad.top + p.pad.bottom, p.size.0, p.stride.0, 1);
            let ow = ConvGeometry::out_len(w, p.pad.left + p.pad.right, p.size.1, p.stride.1, 1);
            match (oh, ow) {
                (Some(oh), Some(ow)) => Ok(TensorType::f32(vec![n, oh, ow, c])),
                _ => Err(GraphError::shape(
                    layer,
                    format!(
                        "a {}x{} pool window does not fit the {h}x{w} input {}",
                        p.size.0,
                        p.size.1,
                        fmt_shape(&x.shape)
                    ),
                )),
            }
        }
        Op::Reduce { axes, keep_dims, .. } => {
            arity(op, inputs, 1, layer)?;
            let x = inputs[0];
            if axes.is_empty() || axes.windows(2).any(|w| w[0] >= w[1]) || axes.iter().any(|&a| a >= x.rank()) {
                return Err(GraphError::shape(
                    layer,
                    format!(
                        "reduce axes {axes:?} must be sorted, unique and below the rank of {}",
                        fmt_shape(&x.shape)
                    ),
                ));
            }
            let mut shape = Vec::new();
            for (i, &d) in x.shape.iter().enumerate() {
                if axes.contains(&i) {
                    if *keep_dims {
                        shape.push(1);
                    }
                } else {
                    shape.push(d);
                }
            }
            if shape.is_empty() {
                shape.push(1);
            }
            Ok(TensorType::f32(shape))
        }
        Op::Unary(u) => {
            arity(op, inputs, 1, layer)?;
            check_unary(*u, layer)?;
            Ok(inputs[0].clone())
        }
        Op::Softmax | Op::LogSoftmax | Op::Dropout { training: false, .. } => {
            arity(op, inputs, 1, layer)?;
            Ok(inputs[0].clone())
        }
        Op::SoftmaxCrossEntropy => {
            arity(op, inputs, 2, layer)?;
            let rows = cross_entropy_rows(op, inputs[0], inputs[1], layer)?;
            Ok(TensorType::f32(rows))
        }
        Op::SoftmaxCrossEntropyGrad => {
            arity(op, inputs, 3, layer)?;
            let rows = cross_entropy_rows(op, inputs[0], inputs[1], layer)?;
            if inputs[2].shape != rows {
                return Err(GraphError::shape(
                    layer,
                    format!(
                        "{}: the loss gradient has shape {}, expected {} (the per-row loss of the logits {})",
                        op.name(),
                        fmt_shape(&inputs[2].shape),
                        fmt_shape(&rows),
                        fmt_shape(&inputs[0].shape)
                    ),
                ));
            }
            Ok(inputs[0].clone())
        }
        Op::Dropout { rate, training: true } => {
            arity(op, inputs, 2, layer)?;
            if !(0.0..1.0).contains(rate) {
                return Err(GraphError::arg(layer, "rate", format!("must be in [0, 1), got {rate}")));
            }
            if inputs[1].shape != [1] {
                return Err(GraphError::shape(
                    layer,
                    format!("the dropout seed must have shape (1,), got {}", inputs[1]),
                ));
            }
            Ok(inputs[0].clone())
        }
        Op::UnaryGrad(u) => {
            arity(op, inputs, 2, layer)?;
            check_unary(*u, layer)?;
            same(inputs[0], inputs[1], layer)?;
            Ok(inputs[0].clone())
        }
        Op::Conv2dBackpropInput {
            geom: g,
            input_hw,
            filter,
        } => {
            arity(op, inputs, 2, layer)?;
            let (dy, w) = (inputs[0], inputs[1]);
            rank(dy, 4, "NHWC gradient", layer)?;
            rank(w, 4, "convolution kernel", layer)?;
            check_geom(g, layer)?;
            // Checked as the forward convolution it is the gradient of, with its HWIO kernel.
            let w = &TensorType::f32(filter.hwio_shape(&w.shape));
            let x = TensorType::f32(vec![dy.shape[0], input_hw.0, input_hw.1, w.shape[2] * g.groups]);
            let fwd = infer(&Op::Conv2d(*g), &[&x, w], layer)?;
            same(&fwd, dy, layer)?;
            Ok(x)
        }
        Op::Conv2dBackpropFilter { geom: g, kernel_hw } => {
            arity(op, inputs, 2, layer)?;
            let (x, dy) = (inputs[0], inputs[1]);
            rank(x, 4, "NHWC input", layer)?;
            rank(dy, 4, "NHWC gradient", layer)?;
            check_geom(g, layer)?;
            if g.groups == 0 || !x.shape[3].is_multiple_of(g.groups) {
                return Err(GraphError::arg(
                    layer,
                    "groups",
                    format!("groups={} must divide {} channels", g.groups, x.shape[3]),
                ));
            }
            let w = TensorType::f32(vec![kernel_hw.0, kernel_hw.1, x.shape[3] / g.groups, dy.shape[3]]);
            let fwd = infer(&Op::Conv2d(*g), &[x, &w], layer)?;
            same(&fwd, dy, layer)?;
            Ok(w)
        }
        Op::Pool2dBackprop(p) => {
            arity(op, inputs, 2, layer)?;
            let fwd = infer(&Op::Pool2d(*p), &[inputs[0]], layer)?;
            same(&fwd, inputs[1], layer)?;
            Ok(inputs[0].clone())
        }
        Op::ResizeBackprop { mode, input_hw } => {
            arity(op, inputs, 1, layer)?;
            let dy = inputs[0];
            rank(dy, 4, "NHWC gradient", layer)?;
            if input_hw.0 == 0 || input_hw.1 == 0 {
                return Err(GraphError::arg(layer, "size", "input size must be positive"));
            }
            let _ = mode;
            Ok(TensorType::f32(vec![dy.shape[0], input_hw.0, input_hw.1, dy.shape[3]]))
        }
        Op::Elementwise { .. } => {
            if inputs.is_empty() {
                return Err(GraphError::shape(layer, "a fused elementwise node needs inputs"));
            }
            let mut shape = inputs[0].shape.clone();
            for t in &inputs[1..] {
                shape = broadcast_shapes(&shape, &t.shape).ok_or_else(|| {
                    GraphError::shape(
                        layer,
                        format!("fused inputs {} and {} do not broadcast", fmt_shape(&shape), t),
                    )
                })?;
            }
            Ok(TensorType::f32(shape))
        }
        Op::ReducePrologue {
            op: r, axes, keep_dims, ..
        } => {
            let x = infer(
                &Op::Elementwise {
                    expr: ElemExpr::Input(0),
                },
                inputs,
                layer,
            )?;
            let reduce = Op::Reduce {
                op: *r,
                axes: axes.clone(),
                keep_dims: *keep_dims,
            };
            infer(&reduce, &[&x], layer)
        }
        Op::GemmEpilogue { base, expr } => {
            if !matches!(
                **base,
                Op::Conv2d(_)
                    | Op::MatMul { .. }
                    | Op::PixelShuffleMatMul { .. }
                    | Op::ConvTranspose2d { .. }
                    | Op::Conv2dBackpropInput { .. }
                    | Op::Conv2dBackpropFilter { .. }
                    | Op::Pool2dBackprop(_)
            ) {
                return Err(GraphError::shape(
                    layer,
                    format!(
                        "{} is neither a GEMM-based op nor a pooling gradient and takes no epilogue",
                        base.name()
                    ),
                ));
            }
            if inputs.len() < 2 {
                return Err(GraphError::shape(
                    layer,
                    format!("{} takes at least 2 inputs, got {}", op.name(), inputs.len()),
                ));
            }
            let out = infer(base, &inputs[..2], layer)?;
            let c = *out.shape.last().unwrap_or(&1);
            for t in &inputs[2..] {
                if t.shape != out.shape && t.shape != [c] {
                    return Err(GraphError::shape(
                        layer,
                        format!(
                            "an epilogue input must have the output's shape {} or be a ({c},) vector, got {}",
                            fmt_shape(&out.shape),
                            t
                        ),
                    ));
                }
            }
            let extras = inputs.len() - 2;
            let mut read = vec![false; extras + 1];
            let mut bad = None;
            epilogue_inputs(expr, &mut |i| match read.get_mut(i) {
                Some(r) => *r = true,
                None => bad = Some(i),
            });
            if let Some(i) = bad {
                return Err(GraphError::shape(
                    layer,
                    format!("the epilogue reads input {i}, but there are {extras} extra inputs"),
                ));
            }
            if let Some(k) = read[1..].iter().position(|r| !r) {
                return Err(GraphError::shape(
                    layer,
                    format!("the epilogue never reads its extra input {}", k + 1),
                ));
            }
            Ok(out)
        }
        Op::Broadcast { shape } => {
            arity(op, inputs, 1, layer)?;
            match broadcast_shapes(&inputs[0].shape, shape) {
                Some(s) if &s == shape => Ok(TensorType {
                    shape: shape.clone(),
                    dtype: inputs[0].dtype,
                }),
                _ => Err(GraphError::shape(
                    layer,
                    format!(
                        "{} does not broadcast to {}",
                        fmt_shape(&inputs[0].shape),
                        fmt_shape(shape)
                    ),
                )),
            }
        }
        Op::Slice { starts, sizes } => {
            arity(op, inputs, 1, layer)?;
            let x = inputs[0];
            let ok = starts.len() == x.rank()
                && sizes.len() == x.rank()
                && sizes.iter().all(|&s| s > 0)
                && starts.iter().zip(sizes).zip(&x.shape).all(|((&a, &s), &d)| a + s <= d);
            if !ok {
                return Err(GraphError::shape(
                    layer,
                    format!(
                        "slice starts {starts:?} sizes {sizes:?} do not fit inside {}",
                        fmt_shape(&x.shape)
                    ),
                ));
            }
            Ok(TensorType {
                shape: sizes.clone(),
                dtype: x.dtype,
            })
        }
        Op::Binary(_) => {
            arity(op, inputs, 2, layer)?;
            match broadcast_shapes(&inputs[0].shape, &inputs[1].shape) {
                Some(s) => Ok(TensorType::f32(s)),
                None => Err(GraphError::shape(
                    layer,
                    format!(
                        "shapes {} and {} cannot be broadcast together; expected equal shapes (or axes of length 1)",
                        fmt_shape(&inputs[0].shape),
                        fmt_shape(&inputs[1].shape)
                    ),
                )),
            }
        }
        Op::BatchNormInference { epsilon } => {
            arity(op, inputs, 5, layer)?;
            if epsilon.is_nan() || *epsilon < 0.0 {
                return Err(GraphError::arg(layer, "epsilon", "must be a non-negative number"));
            }
            let x = inputs[0];
            let c = *x.shape.last().unwrap_or(&0);
            for (t, name) in inputs[1..]
                .iter()
                .zip(["gamma", "beta", "moving_mean", "moving_variance"])
            {
                if t.shape != [c] {
                    return Err(GraphError::shape(
                        layer,
                        format!(
                            "{name} has shape {}, expected ({c},) for the input {}",
                            fmt_shape(&t.shape),
                            fmt_shape(&x.shape)
                        ),
                    ));
                }
            }
            Ok(x.clone())
        }
        Op::Resize { height, width, .. } => {
            arity(op, inputs, 1, layer)?;
            let x = inputs[0];
            rank(x, 4, "NHWC input", layer)?;
            if *height == 0 || *width == 0 {
                return Err(GraphError::arg(layer, "size", "output size must be positive"));
            }
            Ok(TensorType::f32(vec![x.shape[0], *height, *width, x.shape[3]]))
        }
        Op::Concat { axis } => {
            if inputs.is_empty() {
                return Err(GraphError::shape(layer, "concatenation needs at least one input"));
            }
            let first = inputs[0];
            if *axis >= first.rank() {
                return Err(GraphError::arg(
                    layer,
                    "axis",
                    format!("axis {axis} is out of range for {}", fmt_shape(&first.shape)),
                ));
            }
            let mut shape = first.shape.clone();
            shape[*axis] = 0;
            for t in inputs {
                let ok = t.rank() == first.rank()
                    && t.dtype == first.dtype
                    && t.shape
                        .iter()
                        .zip(&first.shape)
                        .enumerate()
                        .all(|(i, (a, b))| i == *axis || a == b);
                if !ok {
                    return Err(GraphError::shape(
                        layer,
                        format!(
                            "cannot concatenate {} and {} along axis {axis}: all other axes must match",
                            fmt_shape(&first.shape),
                            fmt_shape(&t.shape)
                        ),
                    ));
                }
                shape[*axis] += t.shape[*axis];
            }
            Ok(TensorType {
                shape,
                dtype: first.dtype,
            })
        }
        Op::Pad { pads, mode, .. } => {
            arity(op, inputs, 1, layer)?;
            let x = inputs[0];
            check_pads(&x.shape, pads, *mode, layer)?;
            Ok(TensorType::f32(
                x.shape
                    .iter()
                    .zip(pads)
                    .map(|(d, (a, b))| d + a + b)
                    .collect::<Vec<_>>(),
            ))
        }
        Op::PadBackprop { pads, mode } => {
            arity(op, inputs, 1, layer)?;
            let dy = inputs[0];
            if *mode == PadMode::Constant {
                return Err(GraphError::arg(
                    layer,
                    "mode",
                    "a constant pad's gradient is a slice, not a pad_backprop",
                ));
            }
            if pads.len() != dy.rank() || dy.shape.iter().zip(pads).any(|(&d, &(a, b))| d <= a + b) {
                return Err(GraphError::shape(
                    layer,
                    format!(
                        "pads {pads:?} do not leave a non-empty input inside the gradient {}",
                        fmt_shape(&dy.shape)
                    ),
                ));
            }
            let x: Vec<usize> = dy.shape.iter().zip(pads).map(|(d, (a, b))| d - a - b).collect();
            check_pads(&x, pads, *mode, layer)?;
            Ok(TensorType::f32(x))
        }
        Op::Reshape => Err(GraphError::shape(layer, "reshapes are added with Graph::reshape")),
        Op::Select => {
            arity(op, inputs, 3, layer)?;
            let mut shape = inputs[0].shape.clone();
            for t in &inputs[1..] {
                shape = broadcast_shapes(&shape, &t.shape).ok_or_else(|| {
                    GraphError::shape(
                        layer,
                        format!(
                            "select: the condition {}, a {} and b {} cannot be broadcast together",
                            fmt_shape(&inputs[0].shape),
                            fmt_shape(&inputs[1].shape),
                            fmt_shape(&inputs[2].shape)
                        ),
                    )
                })?;
            }
            Ok(TensorType::f32(shape))
        }
        Op::Gather { .. }
        | Op::ScatterAdd { .. }
        | Op::TopK { .. }
        | Op::ArgSort { .. }
        | Op::ArgMax { .. }
        | Op::InstanceNorm { .. }
        | Op::Nms { .. } => unreachable!("inferred by infer_structural above"),
        Op::Transpose { perm } => {
            arity(op, inputs, 1, layer)?;
            let x = inputs[0];
            let mut seen = vec![false; x.rank()];
            let ok = perm.len() == x.rank()
                && perm
                    .iter()
                    .all(|&p| p < x.rank() && !std::mem::replace(&mut seen[p], true));
            if !ok {
                return Err(GraphError::arg(
                    layer,
                    "perm",
                    format!("{perm:?} is not a permutation of the axes of {}", fmt_shape(&x.shape)),
                ));
            }
            Ok(TensorType {
                shape: perm.iter().map(|&p| x.shape[p]).collect(),
                dtype: x.dtype,
            })
        }
    }
}

/// Calls `f` with every input index `e` reads.
fn epilogue_inputs(e: &ElemExpr, f: &mut impl FnMut(usize)) {
    match e {
        ElemExpr::Input(i) => f(*i),
        ElemExpr::Const(_) => {}
        ElemExpr::Unary(_, a) => epilogue_inputs(a, f),
        ElemExpr::Binary(_, a, b) | ElemExpr::UnaryGrad(_, a, b) => {
            epilogue_inputs(a, f);
            epilogue_inputs(b, f);
        }
        ElemExpr::Select(c, a, b) => {
            epilogue_inputs(c, f);
            epilogue_inputs(a, f);
            epilogue_inputs(b, f);
        }
    }
}

/// Checks `pads` against the input shape `x`: one pair per axis, and for a reflect pad each
/// side shorter than its axis (the mirror does not repeat the edge).
fn check_pads(x: &[usize], pads: &[(usize, usize)], mode: PadMode, layer: &str) -> Result<()> {
    if pads.len() != x.len() {
        return Err(GraphError::shape(
            layer,
            format!("{} pad pairs given for the rank-{} input", pads.len(), x.len()),
        ));
    }
    if mode == PadMode::Reflect
        && let Some(axis) = (0..x.len()).find(|&a| pads[a].0.max(pads[a].1) >= x[a])
    {
        return Err(GraphError::shape(
            layer,
            format!(
                "reflect padding {:?} on axis {axis} of {} must be smaller than the axis ({})",
                pads[axis],
                fmt_shape(x),
                x[axis]
            ),
        ));
    }
    Ok(())
}

/// Checks the constants of a unary op: `Clip`'s bounds are ordered and not NaN, `Elu`'s
/// `alpha` is finite.
fn check_unary(u: UnaryOp, layer: &str) -> Result<()> {
    match u {
        UnaryOp::Clip(lo, hi) if lo.is_nan() || hi.is_nan() || lo > hi => Err(GraphError::arg(
            layer,
            "clip",
            format!("bounds ({lo}, {hi}) must be numbers with min <= max"),
        )),
        UnaryOp::Elu(alpha) if !alpha.is_finite() => Err(GraphError::arg(
            layer,
            "alpha",
            format!("must be a finite number, got {alpha}"),
        )),
        _ => Ok(()),
    }
}

/// The per-row loss shape of a softmax cross-entropy of `logits` against `labels`: the logits'
/// shape without its last (class) axis, `(1,)` for 1-D logits (as `Reduce` without `keep_dims`).
fn cross_entropy_rows(op: &Op, logits: &TensorType, labels: &TensorType, layer: &str) -> Result<Vec<usize>> {
    let Some((&classes, lead)) = logits.shape.split_last() else {
        return Err(GraphError::shape(
            layer,
            format!(
                "{}: expected logits with a class axis (rank >= 1), got shape {}",
                op.name(),
                fmt_shape(&logits.shape)
            ),
        ));
    };
    if classes == 0 {
        return Err(GraphError::shape(
            layer,
            format!(
                "{}: expected at least one class on the last axis, got logits {}",
                op.name(),
                fmt_shape(&logits.shape)
            ),
        ));
    }
    if labels.shape != logits.shape {
        return Err(GraphError::shape(
            layer,
            format!(
                "{}: labels {} do not match the logits {}; expected the same shape (one-hot or a \
                 distribution over the last axis)",
                op.name(),
                fmt_shape(&labels.shape),
                fmt_shape(&logits.shape)
            ),
        ));
    }
    Ok(if lead.is_empty() { vec![1] } else { lead.to_vec() })
}

fn same(a: &TensorType, b: &TensorType, layer: &str) -> Result<()> {
    if a.shape != b.shape {
        return Err(GraphError::shape(
            layer,
            format!("expected shape {}, got {}", fmt_shape(&a.shape), fmt_shape(&b.shape)),
        ));
    }
    Ok(())
}

fn check_geom(g: &ConvGeometry, layer: &str) -> Result<()> {
    if g.stride.0 == 0 || g.stride.1 == 0 {
        return Err(GraphError::arg(layer, "strides", "strides must be positive"));
    }
    if g.dilation.0 == 0 || g.dilation.1 == 0 {
        return Err(GraphError::arg(layer, "dilation_rate", "dilation must be positive"));
    }
    if g.groups == 0 {
        return Err(GraphError::arg(layer, "groups", "groups must be positive"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast_shapes(&[2, 3, 4], &[4]), Some(vec![2, 3, 4]));
        assert_eq!(broadcast_shapes(&[2, 1, 4], &[3, 1]), Some(vec![2, 3, 4]));
        assert_eq!(broadcast_shapes(&[2, 3], &[4]), None);
    }

    #[test]
    fn softmax_cross_entropy_shapes_and_errors() {
        let t = |s: &[usize]| TensorType::f32(s.to_vec());
        let ce = Op::SoftmaxCrossEntropy;
        let grad = Op::SoftmaxCrossEntropyGrad;
        assert_eq!(infer(&ce, &[&t(&[4, 10]), &t(&[4, 10])], "loss").unwrap().shape, [4]);
        assert_eq!(
            infer(&ce, &[&t(&[2, 3, 5, 7]), &t(&[2, 3, 5, 7])], "loss")
                .unwrap()
                .shape,
            [2, 3, 5]
        );
        assert_eq!(infer(&ce, &[&t(&[10]), &t(&[10])], "loss").unwrap().shape, [1]);
        assert_eq!(
            infer(&grad, &[&t(&[4, 10]), &t(&[4, 10]), &t(&[4])], "loss")
                .unwrap()
                .shape,
            [4, 10]
        );
        assert_eq!(
            infer(&grad, &[&t(&[10]), &t(&[10]), &t(&[1])], "loss").unwrap().shape,
            [10]
        );
        let err = |op: &Op, ins: &[&TensorType]| infer(op, ins, "xent").unwrap_err().to_string();
        let e = err(&ce, &[&t(&[4, 10]), &t(&[4, 9])]);
        assert!(
            e.contains("xent") && e.contains("(4, 9)") && e.contains("(4, 10)"),
            "{e}"
        );
        let e = err(&ce, &[&t(&[]), &t(&[])]);
        assert!(e.contains("xent") && e.contains("rank >= 1"), "{e}");
        let e = err(&ce, &[&t(&[4, 0]), &t(&[4, 0])]);
        assert!(e.contains("at least one class"), "{e}");
        let e = err(&ce, &[&t(&[4, 10])]);
        assert!(e.contains("takes 2 inputs"), "{e}");
        let e = err(&grad, &[&t(&[4, 10]), &t(&[4, 10]), &t(&[4, 1])]);
        assert!(
            e.contains("xent") && e.contains("(4, 1)") && e.contains("expected (4,)"),
            "{e}"
        );
        let e = err(&grad, &[&t(&[4, 10]), &t(&[4, 10])]);
        assert!(e.contains("takes 3 inputs"), "{e}");
    }

    #[test]
    fn bad_unary_constants_and_select_shapes_are_errors_naming_the_layer() {
        let t = |s: &[usize]| TensorType::f32(s.to_vec());
        let err = |op: Op, ins: &[&TensorType]| infer(&op, ins, "act_7").unwrap_err().to_string();
        let e = err(Op::Unary(UnaryOp::Clip(2.0, 1.0)), &[&t(&[3])]);
        assert!(e.contains("act_7") && e.contains("min <= max"), "{e}");
        assert!(err(Op::Unary(UnaryOp::Clip(f32::NAN, 1.0)), &[&t(&[3])]).contains("act_7"));
        assert!(err(Op::UnaryGrad(UnaryOp::Clip(1.0, 0.0)), &[&t(&[3]), &t(&[3])]).contains("act_7"));
        let e = err(Op::Unary(UnaryOp::Elu(f32::INFINITY)), &[&t(&[3])]);
        assert!(e.contains("act_7") && e.contains("alpha"), "{e}");
        assert!(infer(&Op::Unary(UnaryOp::Clip(f32::NEG_INFINITY, 0.0)), &[&t(&[3])], "l").is_ok());
        // Select: all three broadcast; the condition may be i32, the values may not.
        let i = TensorType {
            shape: vec![2, 1],
            dtype: DType::I32,
        };
        assert_eq!(
            infer(&Op::Select, &[&i, &t(&[3]), &t(&[1])], "w").unwrap().shape,
            [2, 3]
        );
        let e = err(Op::Select, &[&t(&[2]), &t(&[3]), &t(&[1])]);
        assert!(e.contains("act_7") && e.contains("(2,)") && e.contains("(3,)"), "{e}");
        assert!(err(Op::Select, &[&t(&[1]), &i, &t(&[1])]).contains("f32"));
        assert!(err(Op::Select, &[&t(&[1]), &t(&[1])]).contains("takes 3 inputs"));
    }

    #[test]
    fn conv_output_length() {
        assert_eq!(ConvGeometry::out_len(32, 0, 3, 1, 1), Some(30));
        assert_eq!(ConvGeometry::out_len(5, 2, 3, 2, 1), Some(3));
        assert_eq!(ConvGeometry::out_len(2, 0, 3, 1, 1), None);
        assert_eq!(ConvGeometry::out_len(7, 0, 3, 1, 3), Some(1));
    }
}
