//! The structural ops: `Gather`, `ScatterAdd`, `TopK`, `ArgSort`, `ArgMax` and
//! `InstanceNorm`. Integer tensors (indices) are held as `f64` like every other value.

use super::Arg;
use crate::ir::{GatherDims, numel, sort_order};
use std::cmp::Ordering;

/// The index value `v` as a position in `0..len`, or `None` outside it (or not an integer).
fn position(v: f64, len: usize) -> Option<usize> {
    (v >= 0.0 && v < len as f64 && v.fract() == 0.0).then_some(v as usize)
}

/// `Gather { axis, batch_dims }`: `out[b, o, t, i] = x[b, o, idx[b, t], i]`, 0 out of range.
pub(super) fn gather(axis: usize, batch_dims: usize, x: Arg, idx: Arg) -> Vec<f64> {
    let d = GatherDims::new(x.0, idx.0, axis, batch_dims);
    let mut out = Vec::with_capacity(d.batch * d.outer * d.count * d.inner);
    for b in 0..d.batch {
        for o in 0..d.outer {
            for t in 0..d.count {
                let row = position(idx.1[b * d.count + t], d.len);
                for i in 0..d.inner {
                    out.push(row.map_or(0.0, |j| x.1[((b * d.outer + o) * d.len + j) * d.inner + i]));
                }
            }
        }
    }
    out
}

/// `ScatterAdd { axis, batch_dims, len }`: the adjoint of [`gather`].
pub(super) fn scatter_add(axis: usize, batch_dims: usize, upd: Arg, idx: Arg, out_shape: &[usize]) -> Vec<f64> {
    let d = GatherDims::new(out_shape, idx.0, axis, batch_dims);
    let mut out = vec![0.0; numel(out_shape)];
    for b in 0..d.batch {
        for o in 0..d.outer {
            for t in 0..d.count {
                let Some(j) = position(idx.1[b * d.count + t], d.len) else {
                    continue;
                };
                for i in 0..d.inner {
                    out[((b * d.outer + o) * d.len + j) * d.inner + i] +=
                        upd.1[((b * d.outer + o) * d.count + t) * d.inner + i];
                }
            }
        }
    }
    out
}

/// `(outer, len, inner)` of `shape` around `axis`.
fn around(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (numel(&shape[..axis]), shape[axis], numel(&shape[axis + 1..]))
}

/// The positions `0..len` of one line (`at(j)` its values) sorted by [`sort_order`], stable.
fn sorted_line(len: usize, descending: bool, at: impl Fn(usize) -> f64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    // `sort_by` is stable: equal values keep their index order either way.
    order.sort_by(|&a, &b| {
        let o = sort_order(at(a), at(b));
        if descending { o.reverse() } else { o }
    });
    order
}

/// `ArgSort { axis, descending }`.
pub(super) fn argsort(axis: usize, descending: bool, x: Arg) -> Vec<f64> {
    let (outer, len, inner) = around(x.0, axis);
    let mut out = vec![0.0; x.1.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| x.1[(o * len + j) * inner + i];
            for (r, j) in sorted_line(len, descending, at).into_iter().enumerate() {
                out[(o * len + r) * inner + i] = j as f64;
            }
        }
    }
    out
}

/// `TopK { k }` along the last axis.
pub(super) fn top_k(k: usize, x: Arg) -> Vec<f64> {
    let len = *x.0.last().unwrap_or(&1);
    let mut out = Vec::with_capacity(x.1.len() / len.max(1) * k);
    for row in x.1.chunks(len.max(1)) {
        let order = sorted_line(len, true, |j| row[j]);
        out.extend(order[..k].iter().map(|&j| j as f64));
    }
    out
}

/// `ArgMax { axis }`: the first position whose value no other exceeds in [`sort_order`].
pub(super) fn argmax(axis: usize, x: Arg) -> Vec<f64> {
    let (outer, len, inner) = around(x.0, axis);
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| x.1[(o * len + j) * inner + i];
            let mut best = 0;
            for j in 1..len {
                if sort_order(at(j), at(best)) == Ordering::Greater {
                    best = j;
                }
            }
            out.push(best as f64);
        }
    }
    out
}

/// `InstanceNorm { epsilon }` of `x` `(N, H, W, C)`, `gamma`, `beta`: per `(n, c)` plane,
/// `(x - mean) / sqrt(var + eps) * gamma + beta` with the biased variance.
pub(super) fn instance_norm(epsilon: f32, inputs: &[Arg]) -> Vec<f64> {
    let (x, gamma, beta) = (inputs[0], inputs[1].1, inputs[2].1);
    let (n, hw, c) = (x.0[0], x.0[1] * x.0[2], x.0[3]);
    let mut out = vec![0.0; x.1.len()];
    for b in 0..n {
        for ch in 0..c {
            let at = |p: usize| (b * hw + p) * c + ch;
            let mean = (0..hw).map(|p| x.1[at(p)]).sum::<f64>() / hw as f64;
            let var = (0..hw).map(|p| (x.1[at(p)] - mean).powi(2)).sum::<f64>() / hw as f64;
            let sd = (var + f64::from(epsilon)).sqrt();
            for p in 0..hw {
                out[at(p)] = (x.1[at(p)] - mean) / sd * gamma[ch] + beta[ch];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::interp::eval_op;
    use crate::ir::Op;

    fn eval(op: Op, inputs: &[(&[usize], &[f64])], out: &[usize]) -> Vec<f64> {
        eval_op(&op, inputs, out, "t").unwrap()
    }

    #[test]
    fn gather_selects_rows_and_zeroes_out_of_range_indices() {
        // x (2, 3): rows [1 2 3], [4 5 6]; gather columns [2, -1, 0, 3] along axis 1.
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let y = eval(
            Op::Gather { axis: 1, batch_dims: 0 },
            &[(&[2, 3], &x), (&[4], &[2.0, -1.0, 0.0, 3.0])],
            &[2, 4],
        );
        assert_eq!(y, [3.0, 0.0, 1.0, 0.0, 6.0, 0.0, 4.0, 0.0]);
        // Along axis 0 by a 2-D index tensor: output (2, 2, 3).
        let y = eval(
            Op::Gather { axis: 0, batch_dims: 0 },
            &[(&[2, 3], &x), (&[2, 2], &[1.0, 1.0, 0.0, 1.0])],
            &[2, 2, 3],
        );
        assert_eq!(y, [4.0, 5.0, 6.0, 4.0, 5.0, 6.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        // One index row per row (batch_dims 1).
        let y = eval(
            Op::Gather { axis: 1, batch_dims: 1 },
            &[(&[2, 3], &x), (&[2, 2], &[2.0, 0.0, 1.0, 1.0])],
            &[2, 2],
        );
        assert_eq!(y, [3.0, 1.0, 5.0, 5.0]);
    }

    #[test]
    fn scatter_add_accumulates_collisions_and_drops_out_of_range() {
        let upd = [1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0];
        let y = eval(
            Op::ScatterAdd {
                axis: 1,
                batch_dims: 0,
                len: 3,
            },
            &[(&[2, 4], &upd), (&[4], &[2.0, 2.0, 5.0, 0.0])],
            &[2, 3],
        );
        assert_eq!(y, [4.0, 0.0, 3.0, 40.0, 0.0, 30.0]);
    }

    #[test]
    fn sorting_is_stable_with_nan_on_top() {
        let x = [3.0, 1.0, 3.0, f64::NAN, -0.0, 0.0];
        let asc = eval(
            Op::ArgSort {
                axis: 0,
                descending: false,
            },
            &[(&[6], &x)],
            &[6],
        );
        assert_eq!(asc, [4.0, 5.0, 1.0, 0.0, 2.0, 3.0]);
        let desc = eval(
            Op::ArgSort {
                axis: 0,
                descending: true,
            },
            &[(&[6], &x)],
            &[6],
        );
        assert_eq!(desc, [3.0, 0.0, 2.0, 1.0, 4.0, 5.0]);
        let top = eval(Op::TopK { k: 3 }, &[(&[2, 3], &x)], &[2, 3]);
        assert_eq!(top, [0.0, 2.0, 1.0, 0.0, 1.0, 2.0]);
        // Along axis 0 of a (3, 2) tensor: columns [5 1 5] and [2 2 -1].
        let x = [5.0, 2.0, 1.0, 2.0, 5.0, -1.0];
        assert_eq!(
            eval(
                Op::ArgSort {
                    axis: 0,
                    descending: false
                },
                &[(&[3, 2], &x)],
                &[3, 2]
            ),
            [1.0, 2.0, 0.0, 0.0, 2.0, 1.0]
        );
        assert_eq!(eval(Op::ArgMax { axis: 0 }, &[(&[3, 2], &x)], &[2]), [0.0, 0.0]);
        assert_eq!(eval(Op::ArgMax { axis: 1 }, &[(&[3, 2], &x)], &[3]), [0.0, 1.0, 0.0]);
        let x = [1.0, f64::NAN, 7.0, f64::NAN];
        assert_eq!(eval(Op::ArgMax { axis: 0 }, &[(&[4], &x)], &[1]), [1.0]);
    }

    #[test]
    fn instance_norm_normalises_each_plane() {
        // (1, 2, 1, 2): channel 0 holds [1, 3], channel 1 [5, 5].
        let x = [1.0, 5.0, 3.0, 5.0];
        let y = eval(
            Op::InstanceNorm { epsilon: 0.0 },
            &[(&[1, 2, 1, 2], &x), (&[2], &[2.0, 1.0]), (&[2], &[0.5, -1.0])],
            &[1, 2, 1, 2],
        );
        // Channel 0: mean 2, sd 1 -> [-1, 1] * 2 + 0.5; channel 1 is constant: 0 / 0 without eps.
        assert_eq!(y[0], -1.5);
        assert_eq!(y[2], 2.5);
        assert!(y[1].is_nan());
    }
}
