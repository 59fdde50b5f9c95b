//! Layout ops: concatenation, padding (constant, reflect, replicate) and its gradient, axis permutation, broadcasting and slicing.

use super::pointwise::broadcast_strides;
use super::{Arg, strides, unravel};
use crate::ir::{PadMode, numel};

/// `Concat` of all `inputs` along `axis`: for every index of the axes before `axis`, the
/// inputs' blocks one after the other.
pub(super) fn concat(axis: usize, inputs: &[Arg], out_shape: &[usize]) -> Vec<f64> {
    let outer: usize = out_shape[..axis].iter().product();
    let mut out = Vec::with_capacity(numel(out_shape));
    for o in 0..outer {
        for (shape, data) in inputs {
            let block: usize = shape[axis..].iter().product();
            out.extend_from_slice(&data[o * block..(o + 1) * block]);
        }
    }
    out
}

/// `Pad`: output position `d` along axis `a` reads input coordinate
/// `mode.source(d - before_a, len_a)` ([`PadMode::source`]); a constant pad's border is
/// `value`.
pub(super) fn pad(pads: &[(usize, usize)], value: f32, mode: PadMode, x: Arg, out_shape: &[usize]) -> Vec<f64> {
    let (shape, data) = x;
    let in_strides = strides(shape);
    let mut index = vec![0; out_shape.len()];
    (0..numel(out_shape))
        .map(|i| {
            unravel(i, out_shape, &mut index);
            pad_source(pads, mode, shape, &in_strides, &index).map_or(f64::from(value), |s| data[s])
        })
        .collect()
}

/// `PadBackprop`: every element of `dy` is added to the input element its position read.
pub(super) fn pad_backprop(pads: &[(usize, usize)], mode: PadMode, dy: Arg, out_shape: &[usize]) -> Vec<f64> {
    let (shape, data) = dy;
    let x_strides = strides(out_shape);
    let mut dx = vec![0.0; numel(out_shape)];
    let mut index = vec![0; shape.len()];
    for (i, &g) in data.iter().enumerate() {
        unravel(i, shape, &mut index);
        if let Some(s) = pad_source(pads, mode, out_shape, &x_strides, &index) {
            dx[s] += g;
        }
    }
    dx
}

/// The flat input index that padded position `index` reads, or `None` for a constant border.
fn pad_source(
    pads: &[(usize, usize)],
    mode: PadMode,
    shape: &[usize],
    in_strides: &[usize],
    index: &[usize],
) -> Option<usize> {
    let mut src = 0;
    for a in 0..shape.len() {
        let r = index[a] as i64 - pads[a].0 as i64;
        src += mode.source(r, shape[a])? * in_strides[a];
    }
    Some(src)
}

/// `Transpose`: output axis `i` is input axis `perm[i]`, i.e.
/// `out[j_0, .., j_r] = x[k]` with `k[perm[i]] = j_i`.
pub(super) fn transpose(perm: &[usize], x: Arg, out_shape: &[usize]) -> Vec<f64> {
    let (shape, data) = x;
    let in_strides = strides(shape);
    let mut index = vec![0; out_shape.len()];
    (0..numel(out_shape))
        .map(|i| {
            unravel(i, out_shape, &mut index);
            let src: usize = perm
                .iter()
                .enumerate()
                .map(|(axis, &p)| index[axis] * in_strides[p])
                .sum();
            data[src]
        })
        .collect()
}

/// `Broadcast` of `x` to `out_shape` (numpy rules: `x` aligned at the last axis, its length-1
/// and missing axes repeated).
pub(super) fn broadcast(x: Arg, out_shape: &[usize]) -> Vec<f64> {
    let (shape, data) = x;
    let src_strides = broadcast_strides(shape, out_shape);
    let mut index = vec![0; out_shape.len()];
    (0..numel(out_shape))
        .map(|i| {
            unravel(i, out_shape, &mut index);
            data[index.iter().zip(&src_strides).map(|(i, s)| i * s).sum::<usize>()]
        })
        .collect()
}

/// `Slice`: the box of `x` of the output's shape starting at `starts`,
/// `out[j] = x[j + starts]` per axis.
pub(super) fn slice(starts: &[usize], x: Arg, out_shape: &[usize]) -> Vec<f64> {
    let (shape, data) = x;
    let in_strides = strides(shape);
    let mut index = vec![0; out_shape.len()];
    (0..numel(out_shape))
        .map(|i| {
            unravel(i, out_shape, &mut index);
            let src: usize = (0..shape.len()).map(|a| (index[a] + starts[a]) * in_strides[a]).sum();
            data[src]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testing::{dot, random, run_op};
    use super::super::{Feeds, evaluate};
    use crate::init::Rng;
    use crate::ir::{Graph, Op, PadMode, ReduceOp, TensorType, numel};

    #[test]
    fn concat_by_hand() {
        // [[1,2],[3,4]] and [[5,6]] along axis 0; [[1,2],[3,4]] and [[7],[8]] along axis 1.
        let mut g = Graph::new();
        let a = g.input("a", TensorType::f32(vec![2, 2])).unwrap();
        let b = g.input("b", TensorType::f32(vec![1, 2])).unwrap();
        let c = g.input("c", TensorType::f32(vec![2, 1])).unwrap();
        let rows = g.push(Op::Concat { axis: 0 }, &[a, b], "rows").unwrap();
        let cols = g.push(Op::Concat { axis: 1 }, &[a, c], "cols").unwrap();
        g.outputs = vec![rows, cols];
        let feeds: Feeds = [
            ("a".to_string(), vec![1.0, 2.0, 3.0, 4.0]),
            ("b".to_string(), vec![5.0, 6.0]),
            ("c".to_string(), vec![7.0, 8.0]),
        ]
        .into();
        let out = evaluate(&g, &feeds).unwrap();
        assert_eq!(g.shape(rows), [3, 2]);
        assert_eq!(out[0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(g.shape(cols), [2, 3]);
        assert_eq!(out[1], [1.0, 2.0, 7.0, 3.0, 4.0, 8.0]);
    }

    #[test]
    fn concat_slices_are_the_inputs() {
        // Three (2, k, 3) tensors along axis 1: out[i, off + j, l] = input[i, j, l].
        let mut rng = Rng::new(8);
        let widths = [2, 1, 3];
        let mut g = Graph::new();
        let mut feeds = Feeds::new();
        let mut ids = Vec::new();
        let mut data = Vec::new();
        for (n, &k) in widths.iter().enumerate() {
            let name = format!("x{n}");
            ids.push(g.input(&name, TensorType::f32(vec![2, k, 3])).unwrap());
            let v = random(&mut rng, 2 * k * 3);
            feeds.insert(name, v.clone());
            data.push(v);
        }
        let cat = g.push(Op::Concat { axis: 1 }, &ids, "cat").unwrap();
        g.outputs.push(cat);
        let out = evaluate(&g, &feeds).unwrap().remove(0);
        assert_eq!(g.shape(cat), [2, 6, 3]);
        let mut off = 0;
        for (n, &k) in widths.iter().enumerate() {
            for i in 0..2 {
                for j in 0..k {
                    for l in 0..3 {
                        assert_eq!(out[(i * 6 + off + j) * 3 + l], data[n][(i * k + j) * 3 + l]);
                    }
                }
            }
            off += k;
        }
    }

    #[test]
    fn pad_by_hand() {
        // [[1,2],[3,4]] with one row of 9 above and two columns of 9 on the right.
        let op = Op::Pad {
            pads: vec![(1, 0), (0, 2)],
            value: 9.0,
            mode: PadMode::Constant,
        };
        let (shape, y) = run_op(op, &[(&[2, 2], &[1.0, 2.0, 3.0, 4.0])]);
        assert_eq!(shape, [3, 4]);
        #[rustfmt::skip]
        let want = [
            9.0, 9.0, 9.0, 9.0,
            1.0, 2.0, 9.0, 9.0,
            3.0, 4.0, 9.0, 9.0,
        ];
        assert_eq!(y, want);
    }

    #[test]
    fn pad_of_an_nhwc_image_by_hand() {
        // (1, 1, 2, 2): pixels [1,2] and [3,4]; pad one column on the left of zeros and one
        // channel after: (1, 1, 3, 3).
        let op = Op::Pad {
            pads: vec![(0, 0), (0, 0), (1, 0), (0, 1)],
            value: 0.0,
            mode: PadMode::Constant,
        };
        let (shape, y) = run_op(op, &[(&[1, 1, 2, 2], &[1.0, 2.0, 3.0, 4.0])]);
        assert_eq!(shape, [1, 1, 3, 3]);
        assert_eq!(y, [0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 3.0, 4.0, 0.0]);
    }

    #[test]
    fn reflect_and_replicate_pads_by_hand() {
        let row = |mode, pads: (usize, usize), x: &[f64]| {
            run_op(
                Op::Pad {
                    pads: vec![pads],
                    value: 9.0,
                    mode,
                },
                &[(&[x.len()], x)],
            )
            .1
        };
        let x = [1.0, 2.0, 3.0];
        assert_eq!(row(PadMode::Reflect, (2, 2), &x), [3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0]);
        assert_eq!(row(PadMode::Reflect, (1, 0), &x), [2.0, 1.0, 2.0, 3.0]);
        assert_eq!(
            row(PadMode::Replicate, (2, 3), &x),
            [1.0, 1.0, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0]
        );
        assert_eq!(row(PadMode::Replicate, (2, 1), &[5.0]), [5.0; 4]);
        // Two axes at once: [[1,2],[3,4]] reflected by (1, 1) rows and (1, 0) columns.
        let (shape, y) = run_op(
            Op::Pad {
                pads: vec![(1, 1), (1, 0)],
                value: 0.0,
                mode: PadMode::Reflect,
            },
            &[(&[2, 2], &[1.0, 2.0, 3.0, 4.0])],
        );
        assert_eq!(shape, [4, 3]);
        #[rustfmt::skip]
        let want = [
            4.0, 3.0, 4.0,
            2.0, 1.0, 2.0,
            4.0, 3.0, 4.0,
            2.0, 1.0, 2.0,
        ];
        assert_eq!(y, want);
        // Reflect padding as long as the axis is an error naming the layer.
        let err = crate::interp::eval_op(
            &Op::Pad {
                pads: vec![(3, 0)],
                value: 0.0,
                mode: PadMode::Reflect,
            },
            &[(&[3], &x)],
            &[6],
            "mirror",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("mirror") && err.to_string().contains("smaller"),
            "{err}"
        );
    }

    #[test]
    fn pad_backprop_folds_the_copies_back_by_hand() {
        let back = |mode, pads: (usize, usize), dy: &[f64]| {
            run_op(Op::PadBackprop { pads: vec![pads], mode }, &[(&[dy.len()], dy)]).1
        };
        // Reflect [1 2 3] by (2, 2) reads x[2] x[1] | x[0] x[1] x[2] | x[1] x[0].
        let dy = [1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0, 1000000.0];
        assert_eq!(
            back(PadMode::Reflect, (2, 2), &dy),
            [1_000_100.0, 100_010.0 + 1000.0, 10001.0]
        );
        // Replicate by (2, 1) reads x[0] x[0] | x[0] x[1] x[2] | x[2].
        let dy = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0];
        assert_eq!(back(PadMode::Replicate, (2, 1), &dy), [7.0, 8.0, 48.0]);
    }

    #[test]
    fn transpose_by_hand() {
        // [[1,2,3],[4,5,6]] transposed.
        let (shape, y) = run_op(
            Op::Transpose { perm: vec![1, 0] },
            &[(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])],
        );
        assert_eq!(shape, [3, 2]);
        assert_eq!(y, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        // x[i,j,k] = 100i + 10j + k on (2,3,4), perm [2,0,1]: out[k,i,j] = x[i,j,k].
        let x: Vec<f64> = (0..2)
            .flat_map(|i| (0..3).flat_map(move |j| (0..4).map(move |k| f64::from(100 * i + 10 * j + k))))
            .collect();
        let (shape, y) = run_op(Op::Transpose { perm: vec![2, 0, 1] }, &[(&[2, 3, 4], &x)]);
        assert_eq!(shape, [4, 2, 3]);
        for k in 0..4 {
            for i in 0..2 {
                for j in 0..3 {
                    assert_eq!(y[(k * 2 + i) * 3 + j], (100 * i + 10 * j + k) as f64);
                }
            }
        }
    }

    #[test]
    fn transposing_with_inverse_permutations_is_the_identity() {
        let mut rng = Rng::new(9);
        let shape = vec![2, 3, 4, 5];
        let mut g = Graph::new();
        let x = g.input("x", TensorType::f32(shape.clone())).unwrap();
        // [0,3,1,2] (NHWC -> NCHW) and its inverse [0,2,3,1].
        let t = g
            .push(Op::Transpose { perm: vec![0, 3, 1, 2] }, &[x], "to_nchw")
            .unwrap();
        let back = g
            .push(Op::Transpose { perm: vec![0, 2, 3, 1] }, &[t], "to_nhwc")
            .unwrap();
        g.outputs = vec![t, back];
        let xv = random(&mut rng, 120);
        let out = evaluate(&g, &[("x".to_string(), xv.clone())].into()).unwrap();
        assert_eq!(g.shape(t), [2, 5, 3, 4]);
        assert_ne!(out[0], xv);
        assert_eq!(out[1], xv);
    }

    #[test]
    fn broadcast_by_hand() {
        // A row to (2, 3), a column (2, 1) to (2, 3), and a (3,) vector to (2, 2, 3).
        let (shape, y) = run_op(Op::Broadcast { shape: vec![2, 3] }, &[(&[3], &[1.0, 2.0, 3.0])]);
        assert_eq!(shape, [2, 3]);
        assert_eq!(y, [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
        let (_, y) = run_op(Op::Broadcast { shape: vec![2, 3] }, &[(&[2, 1], &[1.0, 2.0])]);
        assert_eq!(y, [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
        let (shape, y) = run_op(Op::Broadcast { shape: vec![2, 2, 3] }, &[(&[1, 3], &[1.0, 2.0, 3.0])]);
        assert_eq!(shape, [2, 2, 3]);
        assert_eq!(y, [1.0, 2.0, 3.0].repeat(4));
    }

    #[test]
    fn broadcast_is_the_adjoint_of_reduce_sum() {
        // <broadcast(x), y> = <x, sum of y over the broadcast axes>.
        let mut rng = Rng::new(32);
        for (from, to, axes) in [
            (vec![3], vec![2, 4, 3], vec![0, 1]),
            (vec![2, 1, 3], vec![2, 5, 3], vec![1]),
            (vec![1, 4, 1], vec![3, 4, 2], vec![0, 2]),
            (vec![1], vec![2, 3], vec![0, 1]),
        ] {
            let x = random(&mut rng, numel(&from));
            let (_, bx) = run_op(Op::Broadcast { shape: to.clone() }, &[(&from, &x)]);
            let y = random(&mut rng, numel(&to));
            let (_, sy) = run_op(
                Op::Reduce {
                    op: ReduceOp::Sum,
                    axes: axes.clone(),
                    keep_dims: true,
                },
                &[(&to, &y)],
            );
            // The kept-dims sum has `from`'s elements in `from`'s order.
            let (lhs, rhs) = (dot(&bx, &y), dot(&x, &sy));
            assert!(
                (lhs - rhs).abs() <= 1e-12 * lhs.abs().max(1.0),
                "{from:?} -> {to:?}: {lhs} vs {rhs}"
            );
        }
    }

    #[test]
    fn slice_by_hand() {
        // Rows 1..3 and columns 1..3 of x[r,c] = 4r + c on 3x4.
        let x: Vec<f64> = (0..12).map(f64::from).collect();
        let op = Op::Slice {
            starts: vec![1, 1],
            sizes: vec![2, 2],
        };
        let (shape, y) = run_op(op, &[(&[3, 4], &x)]);
        assert_eq!(shape, [2, 2]);
        assert_eq!(y, [5.0, 6.0, 9.0, 10.0]);
    }

    #[test]
    fn slice_is_the_adjoint_of_zero_padding() {
        // <slice(x), y> = <x, pad(y)> when the padding puts y back where the slice took it.
        let mut rng = Rng::new(33);
        for (shape, starts, sizes) in [
            (vec![4, 5], vec![1, 2], vec![2, 3]),
            (vec![2, 3, 4, 5], vec![0, 1, 1, 2], vec![2, 2, 3, 1]),
            (vec![6], vec![0], vec![6]),
        ] {
            let x = random(&mut rng, numel(&shape));
            let pads: Vec<(usize, usize)> = (0..shape.len())
                .map(|a| (starts[a], shape[a] - starts[a] - sizes[a]))
                .collect();
            let (_, sx) = run_op(
                Op::Slice {
                    starts,
                    sizes: sizes.clone(),
                },
                &[(&shape, &x)],
            );
            let y = random(&mut rng, numel(&sizes));
            let (_, py) = run_op(
                Op::Pad {
                    pads,
                    value: 0.0,
                    mode: PadMode::Constant,
                },
                &[(&sizes, &y)],
            );
            let (lhs, rhs) = (dot(&sx, &y), dot(&x, &py));
            assert!(
                (lhs - rhs).abs() <= 1e-12 * lhs.abs().max(1.0),
                "{shape:?}: {lhs} vs {rhs}"
            );
        }
    }
}
