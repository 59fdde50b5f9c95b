//! The structural ops' shared definitions: the index geometry of `Gather` and `ScatterAdd`,
//! the total order of `TopK`, `ArgSort` and `ArgMax`, which inputs are integer, and the shape
//! rules of all of them and of `InstanceNorm`.

use super::op::{DType, Op};
use super::{TensorType, fmt_shape, numel};
use crate::error::{GraphError, Result};
use std::cmp::Ordering;

/// The element type input `k` of `op` must have: `I32` for the indices of `Gather` and
/// `ScatterAdd` (input 1), `F32` for every other input of every op (layout ops also take `I32`).
pub fn input_dtype(op: &Op, k: usize) -> DType {
    match op {
        Op::Gather { .. } | Op::ScatterAdd { .. } if k == 1 => DType::I32,
        _ => DType::F32,
    }
}

/// The order `TopK`, `ArgSort` and `ArgMax` use: the numeric order of the values, with
/// `-0.0 == 0.0` and every NaN equal to every other and above `+inf`. (The kernels compare the
/// same order as `u32` keys of the f32 bits.)
pub fn sort_order(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// The index geometry of a `Gather` (and of the `ScatterAdd` that is its adjoint), flattened
/// to five extents: the gathered tensor is `(batch, outer, len, inner)` and the indices
/// `(batch, count)`, so the gathered result is `(batch, outer, count, inner)`, row-major.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatherDims {
    /// Product of the shared leading (batch) axes.
    pub batch: usize,
    /// Product of the axes between the batch axes and the gathered axis.
    pub outer: usize,
    /// Length of the gathered (or scattered-into) axis.
    pub len: usize,
    /// Indices per batch element (product of the index tensor's non-batch axes).
    pub count: usize,
    /// Product of the axes after the gathered axis.
    pub inner: usize,
}

impl GatherDims {
    /// The geometry of `Gather { axis, batch_dims }` of `x` by `indices` (shapes), or an error
    /// naming `layer`.
    pub fn of_gather(x: &[usize], indices: &[usize], axis: usize, batch_dims: usize, layer: &str) -> Result<Self> {
        check_axes(x, indices, axis, batch_dims, "x", layer)?;
        Ok(GatherDims::new(x, indices, axis, batch_dims))
    }

    /// The geometry for shapes shape inference accepted (`x` is the gathered tensor, or a
    /// `ScatterAdd`'s output): `batch_dims <= axis < rank(x)`, `batch_dims <= rank(indices)`.
    pub fn new(x: &[usize], indices: &[usize], axis: usize, batch_dims: usize) -> Self {
        GatherDims {
            batch: numel(&x[..batch_dims]),
            outer: numel(&x[batch_dims..axis]),
            len: x[axis],
            count: numel(&indices[batch_dims..]),
            inner: numel(&x[axis + 1..]),
        }
    }

    /// The output shape of a `Gather` of `x` by `indices` along `axis`.
    pub fn gather_shape(x: &[usize], indices: &[usize], axis: usize, batch_dims: usize) -> Vec<usize> {
        let mut s = x[..axis].to_vec();
        s.extend_from_slice(&indices[batch_dims..]);
        s.extend_from_slice(&x[axis + 1..]);
        s
    }
}

fn check_axes(x: &[usize], indices: &[usize], axis: usize, batch_dims: usize, what: &str, layer: &str) -> Result<()> {
    if axis >= x.len() || batch_dims > axis || batch_dims > indices.len() {
        return Err(GraphError::arg(
            layer,
            "axis",
            format!(
                "axis {axis} with batch_dims {batch_dims} does not fit {what} {} and indices {}; expected \
                 batch_dims <= axis < rank and batch_dims <= the indices' rank",
                fmt_shape(x),
                fmt_shape(indices)
            ),
        ));
    }
    if x[..batch_dims] != indices[..batch_dims] {
        return Err(GraphError::shape(
            layer,
            format!(
                "the first {batch_dims} (batch) axes of {what} {} and of the indices {} differ",
                fmt_shape(x),
                fmt_shape(indices)
            ),
        ));
    }
    Ok(())
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

fn axis_in(op: &Op, axis: usize, x: &TensorType, layer: &str) -> Result<()> {
    if axis >= x.rank() {
        return Err(GraphError::arg(
            layer,
            "axis",
            format!("{}: axis {axis} is out of range for {}", op.name(), fmt_shape(&x.shape)),
        ));
    }
    Ok(())
}

fn i32_type(shape: Vec<usize>) -> TensorType {
    TensorType {
        shape,
        dtype: DType::I32,
    }
}

/// The output type of a structural op (`Gather`, `ScatterAdd`, `TopK`, `ArgSort`, `ArgMax`,
/// `InstanceNorm`) from its input types (dtypes already checked against [`input_dtype`]);
/// `None` for any other op.
pub(crate) fn infer_structural(op: &Op, inputs: &[&TensorType], layer: &str) -> Option<Result<TensorType>> {
    let run = || -> Result<TensorType> {
        match op {
            Op::Gather { axis, batch_dims } => {
                arity(op, inputs, 2, layer)?;
                let (x, idx) = (&inputs[0].shape, &inputs[1].shape);
                GatherDims::of_gather(x, idx, *axis, *batch_dims, layer)?;
                Ok(TensorType::f32(GatherDims::gather_shape(x, idx, *axis, *batch_dims)))
            }
            Op::ScatterAdd { axis, batch_dims, len } => {
                arity(op, inputs, 2, layer)?;
                let (upd, idx) = (&inputs[0].shape, &inputs[1].shape);
                let t = idx.len() - (*batch_dims).min(idx.len());
                if *len == 0 {
                    return Err(GraphError::arg(layer, "len", "the output length must be positive"));
                }
                let fits = *batch_dims <= *axis && *batch_dims <= idx.len() && axis + t <= upd.len();
                if !fits || upd[*axis..axis + t] != idx[*batch_dims..] {
                    return Err(GraphError::shape(
                        layer,
                        format!(
                            "scatter_add: updates {} do not hold the index axes {} at axis {axis} (batch_dims \
                             {batch_dims}); expected the shape of a gather's output",
                            fmt_shape(upd),
                            fmt_shape(idx)
                        ),
                    ));
                }
                let mut out = upd[..*axis].to_vec();
                out.push(*len);
                out.extend_from_slice(&upd[axis + t..]);
                check_axes(&out, idx, *axis, *batch_dims, "the output", layer)?;
                Ok(TensorType::f32(out))
            }
            Op::TopK { k } => {
                arity(op, inputs, 1, layer)?;
                let x = inputs[0];
                let len = x.shape.last().copied().unwrap_or(0);
                if *k == 0 || *k > len {
                    return Err(GraphError::arg(
                        layer,
                        "k",
                        format!(
                            "top_k: k = {k} must be in 1..={len} for the input {}",
                            fmt_shape(&x.shape)
                        ),
                    ));
                }
                let mut s = x.shape.clone();
                if let Some(last) = s.last_mut() {
                    *last = *k;
                }
                Ok(i32_type(s))
            }
            Op::ArgSort { axis, .. } => {
                arity(op, inputs, 1, layer)?;
                axis_in(op, *axis, inputs[0], layer)?;
                Ok(i32_type(inputs[0].shape.clone()))
            }
            Op::ArgMax { axis } => {
                arity(op, inputs, 1, layer)?;
                axis_in(op, *axis, inputs[0], layer)?;
                let mut s = inputs[0].shape.clone();
                s.remove(*axis);
                if s.is_empty() {
                    s.push(1);
                }
                Ok(i32_type(s))
            }
            Op::InstanceNorm { epsilon } => {
                arity(op, inputs, 3, layer)?;
                if epsilon.is_nan() || *epsilon < 0.0 {
                    return Err(GraphError::arg(layer, "epsilon", "must be a non-negative number"));
                }
                let x = inputs[0];
                if x.rank() != 4 {
                    return Err(GraphError::shape(
                        layer,
                        format!(
                            "instance_norm: expected a 4-D NHWC input, got shape {}",
                            fmt_shape(&x.shape)
                        ),
                    ));
                }
                let c = x.shape[3];
                for (t, name) in inputs[1..].iter().zip(["gamma", "beta"]) {
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
            Op::Nms {
                iou_threshold,
                score_threshold,
                max_detections,
            } => {
                arity(op, inputs, 2, layer)?;
                if !(0.0..=1.0).contains(iou_threshold) {
                    return Err(GraphError::arg(
                        layer,
                        "iou_threshold",
                        format!("must be in [0, 1], got {iou_threshold}"),
                    ));
                }
                if !score_threshold.is_finite() {
                    return Err(GraphError::arg(layer, "score_threshold", "must be a finite number"));
                }
                if *max_detections == 0 {
                    return Err(GraphError::arg(layer, "max_detections", "must be at least 1"));
                }
                let (s, b) = (&inputs[0].shape, &inputs[1].shape);
                if s.len() != 3 || s.contains(&0) || b.len() != 4 || b[..3] != s[..] || b[3] != 4 {
                    return Err(GraphError::shape(
                        layer,
                        format!(
                            "nms: expected scores (B, C, K) and boxes (B, C, K, 4), got {} and {}",
                            fmt_shape(s),
                            fmt_shape(b)
                        ),
                    ));
                }
                Ok(TensorType::f32(vec![s[0], *max_detections, 6]))
            }
            _ => unreachable!("only structural ops get here"),
        }
    };
    matches!(
        op,
        Op::Gather { .. }
            | Op::ScatterAdd { .. }
            | Op::TopK { .. }
            | Op::ArgSort { .. }
            | Op::ArgMax { .. }
            | Op::InstanceNorm { .. }
            | Op::Nms { .. }
    )
    .then(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Graph;

    fn push(op: Op, shapes: &[(&[usize], DType)]) -> Result<TensorType> {
        let mut g = Graph::new();
        let ids: Vec<_> = shapes
            .iter()
            .enumerate()
            .map(|(i, (s, d))| {
                g.input(
                    &format!("in{i}"),
                    TensorType {
                        shape: s.to_vec(),
                        dtype: *d,
                    },
                )
                .unwrap()
            })
            .collect();
        let id = g.push(op, &ids, "layer_x")?;
        Ok(g.ty(id).clone())
    }

    const F: DType = DType::F32;
    const I: DType = DType::I32;

    #[test]
    fn gather_and_scatter_shapes_follow_tf_gather() {
        let g = |axis, batch_dims| Op::Gather { axis, batch_dims };
        assert_eq!(
            push(g(1, 0), &[(&[2, 5, 3], F), (&[4, 6], I)]).unwrap().shape,
            [2, 4, 6, 3]
        );
        assert_eq!(push(g(0, 0), &[(&[5], F), (&[7], I)]).unwrap().shape, [7]);
        // take_along_axis: one index row per row.
        assert_eq!(push(g(1, 1), &[(&[3, 9], F), (&[3, 4], I)]).unwrap().shape, [3, 4]);
        assert_eq!(
            push(g(2, 1), &[(&[3, 2, 9], F), (&[3, 4], I)]).unwrap().shape,
            [3, 2, 4]
        );
        let s = |axis, batch_dims, len| Op::ScatterAdd { axis, batch_dims, len };
        assert_eq!(
            push(s(1, 0, 5), &[(&[2, 4, 6, 3], F), (&[4, 6], I)]).unwrap().shape,
            [2, 5, 3]
        );
        assert_eq!(push(s(1, 1, 9), &[(&[3, 4], F), (&[3, 4], I)]).unwrap().shape, [3, 9]);
        // Errors name the layer and what was expected.
        let e = push(g(1, 0), &[(&[2, 5], F), (&[4], F)]).unwrap_err().to_string();
        assert!(e.contains("layer_x") && e.contains("i32"), "{e}");
        let e = push(g(2, 0), &[(&[2, 5], F), (&[4], I)]).unwrap_err().to_string();
        assert!(e.contains("layer_x") && e.contains("axis 2"), "{e}");
        let e = push(g(1, 1), &[(&[2, 5], F), (&[3, 4], I)]).unwrap_err().to_string();
        assert!(e.contains("batch"), "{e}");
        let e = push(s(1, 0, 5), &[(&[2, 4, 7, 3], F), (&[4, 6], I)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("layer_x") && e.contains("(4, 6)"), "{e}");
        assert!(push(s(1, 0, 0), &[(&[2, 4], F), (&[4], I)]).is_err());
    }

    #[test]
    fn sorting_ops_give_i32_and_check_their_arguments() {
        let t = push(Op::TopK { k: 3 }, &[(&[2, 7], F)]).unwrap();
        assert_eq!((t.shape, t.dtype), (vec![2, 3], I));
        assert!(
            push(Op::TopK { k: 8 }, &[(&[2, 7], F)])
                .unwrap_err()
                .to_string()
                .contains("1..=7")
        );
        assert!(push(Op::TopK { k: 0 }, &[(&[2, 7], F)]).is_err());
        let t = push(
            Op::ArgSort {
                axis: 0,
                descending: true,
            },
            &[(&[4, 3], F)],
        )
        .unwrap();
        assert_eq!((t.shape, t.dtype), (vec![4, 3], I));
        assert!(
            push(
                Op::ArgSort {
                    axis: 2,
                    descending: false
                },
                &[(&[4, 3], F)]
            )
            .is_err()
        );
        assert_eq!(push(Op::ArgMax { axis: 1 }, &[(&[4, 3, 2], F)]).unwrap().shape, [4, 2]);
        assert_eq!(push(Op::ArgMax { axis: 0 }, &[(&[5], F)]).unwrap().shape, [1]);
        // Sorting indices is not defined: they are not f32.
        assert!(push(Op::ArgMax { axis: 0 }, &[(&[5], I)]).is_err());
    }

    #[test]
    fn instance_norm_checks_its_parameters() {
        let op = Op::InstanceNorm { epsilon: 1e-3 };
        assert_eq!(
            push(op.clone(), &[(&[2, 3, 3, 4], F), (&[4], F), (&[4], F)])
                .unwrap()
                .shape,
            [2, 3, 3, 4]
        );
        let e = push(op.clone(), &[(&[2, 3, 3, 4], F), (&[3], F), (&[4], F)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("gamma") && e.contains("(4,)"), "{e}");
        assert!(push(op, &[(&[2, 3, 4], F), (&[4], F), (&[4], F)]).is_err());
        assert!(
            push(
                Op::InstanceNorm { epsilon: -1.0 },
                &[(&[1, 1, 1, 1], F), (&[1], F), (&[1], F)]
            )
            .is_err()
        );
    }

    #[test]
    fn the_sort_order_puts_nan_on_top_and_equates_zeros() {
        assert_eq!(sort_order(f64::NAN, f64::INFINITY), Ordering::Greater);
        assert_eq!(sort_order(-0.0, 0.0), Ordering::Equal);
        assert_eq!(sort_order(-1.0, 2.0), Ordering::Less);
        assert_eq!(sort_order(f64::NAN, f64::NAN), Ordering::Equal);
    }
}
