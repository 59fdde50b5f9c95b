//! Layout ops: concatenation, constant padding and axis permutation.

use super::{Arg, strides, unravel};
use crate::ir::numel;

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

/// `Pad`: the output is filled with `value`, and `x[i]` goes to `out[i + before]` per axis.
pub(super) fn pad(pads: &[(usize, usize)], value: f32, x: Arg, out_shape: &[usize]) -> Vec<f64> {
    let (shape, data) = x;
    let out_strides = strides(out_shape);
    let mut out = vec![f64::from(value); numel(out_shape)];
    let mut index = vec![0; shape.len()];
    for (i, &v) in data.iter().enumerate() {
        unravel(i, shape, &mut index);
        let o: usize = (0..shape.len()).map(|a| (index[a] + pads[a].0) * out_strides[a]).sum();
        out[o] = v;
    }
    out
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

#[cfg(test)]
mod tests {
    use super::super::testing::{random, run_op};
    use super::super::{Feeds, evaluate};
    use crate::init::Rng;
    use crate::ir::{Graph, Op, TensorType};

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
        };
        let (shape, y) = run_op(op, &[(&[1, 1, 2, 2], &[1.0, 2.0, 3.0, 4.0])]);
        assert_eq!(shape, [1, 1, 3, 3]);
        assert_eq!(y, [0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 3.0, 4.0, 0.0]);
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
}
