//! Reductions (sum, mean, max, min) over some axes.
//!
//! Max and min use `f64::max`/`f64::min`, which skip NaN: a NaN element never wins (all-NaN
//! gives -inf for max, +inf for min); the GPU kernel's `max`/`min` leave NaN unspecified.

use super::{Arg, strides, unravel};
use crate::ir::{ReduceOp, numel};

/// `Reduce` of `x` over `axes`. The result is in row-major order of the input shape with the
/// reduced axes set to 1, which is the output's order whether or not `keep_dims` is set.
pub(super) fn reduce(op: ReduceOp, axes: &[usize], x: Arg) -> Vec<f64> {
    let (shape, data) = x;
    let kept: Vec<usize> = shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
        .collect();
    let kept_strides = strides(&kept);
    let init = match op {
        ReduceOp::Sum | ReduceOp::Mean => 0.0,
        ReduceOp::Max => f64::NEG_INFINITY,
        ReduceOp::Min => f64::INFINITY,
    };
    let mut out = vec![init; numel(&kept)];
    let mut index = vec![0; shape.len()];
    for (i, &v) in data.iter().enumerate() {
        unravel(i, shape, &mut index);
        let o: usize = (0..shape.len())
            .filter(|a| !axes.contains(a))
            .map(|a| index[a] * kept_strides[a])
            .sum();
        match op {
            ReduceOp::Sum | ReduceOp::Mean => out[o] += v,
            ReduceOp::Max => out[o] = out[o].max(v),
            ReduceOp::Min => out[o] = out[o].min(v),
        }
    }
    if op == ReduceOp::Mean {
        let count: usize = axes.iter().map(|&a| shape[a]).product();
        out.iter_mut().for_each(|v| *v /= count as f64);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::run_op;
    use crate::ir::{Op, ReduceOp};

    fn reduce(op: ReduceOp, axes: &[usize], keep_dims: bool) -> Op {
        Op::Reduce {
            op,
            axes: axes.to_vec(),
            keep_dims,
        }
    }

    #[test]
    fn reductions_of_a_matrix_by_hand() {
        // x = [[1,2,3],[4,5,6]].
        let x: Vec<f64> = (1..=6).map(f64::from).collect();
        let arg: [(&[usize], &[f64]); 1] = [(&[2, 3], &x)];
        assert_eq!(
            run_op(reduce(ReduceOp::Sum, &[0], false), &arg),
            (vec![3], vec![5.0, 7.0, 9.0])
        );
        assert_eq!(
            run_op(reduce(ReduceOp::Sum, &[1], false), &arg),
            (vec![2], vec![6.0, 15.0])
        );
        assert_eq!(
            run_op(reduce(ReduceOp::Mean, &[0, 1], false), &arg),
            (vec![1], vec![3.5])
        );
        assert_eq!(
            run_op(reduce(ReduceOp::Mean, &[0, 1], true), &arg),
            (vec![1, 1], vec![3.5])
        );
        assert_eq!(
            run_op(reduce(ReduceOp::Max, &[1], true), &arg),
            (vec![2, 1], vec![3.0, 6.0])
        );
        assert_eq!(
            run_op(reduce(ReduceOp::Mean, &[0], true), &arg),
            (vec![1, 3], vec![2.5, 3.5, 4.5])
        );
    }

    #[test]
    fn reduce_over_non_adjacent_axes_by_hand() {
        // x[i,j,k] = 12i + 4j + k on (2,3,4); summing over i and k:
        // sum_{i<2, k<4} (12i + 4j + k) = 8*4j + 4*12 + 2*(0+1+2+3) = 32j + 60.
        let x: Vec<f64> = (0..24).map(f64::from).collect();
        let (shape, y) = run_op(reduce(ReduceOp::Sum, &[0, 2], false), &[(&[2, 3, 4], &x)]);
        assert_eq!(shape, [3]);
        assert_eq!(y, [60.0, 92.0, 124.0]);
        // The max over the same axes is at i = 1, k = 3: 12 + 4j + 3.
        let (shape, y) = run_op(reduce(ReduceOp::Max, &[0, 2], true), &[(&[2, 3, 4], &x)]);
        assert_eq!(shape, [1, 3, 1]);
        assert_eq!(y, [15.0, 19.0, 23.0]);
        // The mean over j: 12i + 4 + k.
        let (shape, y) = run_op(reduce(ReduceOp::Mean, &[1], false), &[(&[2, 3, 4], &x)]);
        assert_eq!(shape, [2, 4]);
        assert_eq!(y, [4.0, 5.0, 6.0, 7.0, 16.0, 17.0, 18.0, 19.0]);
    }

    #[test]
    fn min_by_hand() {
        // x[i,j,k] = 12i + 4j + k on (2,3,4): the min over i and k is at i = 0, k = 0: 4j.
        let x: Vec<f64> = (0..24).map(f64::from).collect();
        let (shape, y) = run_op(reduce(ReduceOp::Min, &[0, 2], false), &[(&[2, 3, 4], &x)]);
        assert_eq!(shape, [3]);
        assert_eq!(y, [0.0, 4.0, 8.0]);
        let (_, y) = run_op(reduce(ReduceOp::Min, &[0], false), &[(&[3], &[3.0, 1.0, 2.0])]);
        assert_eq!(y, [1.0]);
        // A NaN is skipped, as by max.
        let (_, y) = run_op(reduce(ReduceOp::Min, &[0], false), &[(&[3], &[3.0, f64::NAN, 2.0])]);
        assert_eq!(y, [2.0]);
    }

    #[test]
    fn max_of_negative_values_is_not_zero() {
        let (_, y) = run_op(reduce(ReduceOp::Max, &[0], false), &[(&[3], &[-3.0, -1.0, -2.0])]);
        assert_eq!(y, [-1.0]);
    }
}
