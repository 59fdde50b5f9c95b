//! 2-D max and average pooling and their gradient.

use super::{Arg, tap};
use crate::ir::{PoolGeometry, PoolKind};

/// `Pool2d` of NHWC `x`: window rows `oy*sh - pad.top ..` of `size.0` rows (columns alike);
/// positions outside the input are ignored. Max takes the maximum of the in-range elements, Avg
/// their mean (the divisor counts in-range positions only, as Keras's "same" padding does). A
/// window with no in-range element gives 0.
pub(super) fn pool2d(geom: &PoolGeometry, x: Arg, out_shape: &[usize]) -> Vec<f64> {
    let (xs, xd) = x;
    let (n, h, w, c) = (xs[0], xs[1], xs[2], xs[3]);
    let (oh, ow) = (out_shape[1], out_shape[2]);
    let mut out = vec![0.0; n * oh * ow * c];
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for ch in 0..c {
                    let (mut max, mut sum, mut count) = (f64::NEG_INFINITY, 0.0, 0usize);
                    for ky in 0..geom.size.0 {
                        let Some(iy) = tap(oy, geom.stride.0, ky, 1, geom.pad.top, h) else {
                            continue;
                        };
                        for kx in 0..geom.size.1 {
                            let Some(ix) = tap(ox, geom.stride.1, kx, 1, geom.pad.left, w) else {
                                continue;
                            };
                            let v = xd[((b * h + iy) * w + ix) * c + ch];
                            max = max.max(v);
                            sum += v;
                            count += 1;
                        }
                    }
                    out[((b * oh + oy) * ow + ox) * c + ch] = match (count, geom.kind) {
                        (0, _) => 0.0,
                        (_, PoolKind::Max) => max,
                        (_, PoolKind::Avg) => sum / count as f64,
                    };
                }
            }
        }
    }
    out
}

/// `Pool2dBackprop` of NHWC `x` (the forward input) and `dy` (the forward output's gradient):
/// max pooling sends each `dy` to the first in-range maximum of its window in row-major window
/// order (rows outer, columns inner), so ties go to the first; average pooling sends
/// `dy / count` to each of the window's `count` in-range positions. Windows entirely in the
/// padding send nothing. The result has `x`'s shape.
pub(super) fn pool2d_backprop(geom: &PoolGeometry, x: Arg, dy: Arg) -> Vec<f64> {
    let ((xs, xd), (ys, dyd)) = (x, dy);
    let (n, h, w, c) = (xs[0], xs[1], xs[2], xs[3]);
    let (oh, ow) = (ys[1], ys[2]);
    let mut dx = vec![0.0; xd.len()];
    let mut window = Vec::with_capacity(geom.size.0 * geom.size.1);
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for ch in 0..c {
                    window.clear();
                    for ky in 0..geom.size.0 {
                        let Some(iy) = tap(oy, geom.stride.0, ky, 1, geom.pad.top, h) else {
                            continue;
                        };
                        for kx in 0..geom.size.1 {
                            if let Some(ix) = tap(ox, geom.stride.1, kx, 1, geom.pad.left, w) {
                                window.push(((b * h + iy) * w + ix) * c + ch);
                            }
                        }
                    }
                    let g = dyd[((b * oh + oy) * ow + ox) * c + ch];
                    match geom.kind {
                        PoolKind::Max => {
                            // Strictly greater: a later equal value does not take over.
                            let first_max = window
                                .iter()
                                .copied()
                                .reduce(|best, i| if xd[i] > xd[best] { i } else { best });
                            if let Some(i) = first_max {
                                dx[i] += g;
                            }
                        }
                        PoolKind::Avg => {
                            let share = g / window.len() as f64;
                            window.iter().for_each(|&i| dx[i] += share);
                        }
                    }
                }
            }
        }
    }
    dx
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_close, dot, random, run_op};
    use crate::init::Rng;
    use crate::ir::{Op, Pad2d, PoolGeometry, PoolKind, ReduceOp};

    fn backprop(op: &Op) -> Op {
        match op {
            Op::Pool2d(g) => Op::Pool2dBackprop(*g),
            _ => unreachable!("a pool op"),
        }
    }

    fn pool(kind: PoolKind, size: usize, stride: usize, pad: usize) -> Op {
        let pad = Pad2d {
            top: pad,
            bottom: pad,
            left: pad,
            right: pad,
        };
        Op::Pool2d(PoolGeometry {
            kind,
            size: (size, size),
            stride: (stride, stride),
            pad,
        })
    }

    #[test]
    fn max_pool_2x2_stride_2_by_hand() {
        // 4x4 image, maxima of the four 2x2 blocks.
        #[rustfmt::skip]
        let x = [
            1.0, 5.0, -1.0, -2.0,
            3.0, 2.0, -3.0, -4.0,
            0.0, 0.0, 7.0, 8.0,
            0.0, 9.0, 6.0, 5.0,
        ];
        let (shape, y) = run_op(pool(PoolKind::Max, 2, 2, 0), &[(&[1, 4, 4, 1], &x)]);
        assert_eq!(shape, [1, 2, 2, 1]);
        assert_eq!(y, [5.0, -1.0, 9.0, 8.0]);
    }

    #[test]
    fn avg_pool_same_padding_counts_only_in_range_elements_by_hand() {
        // 3x3 image 1..9, 3x3 window, stride 1, padding 1: corner windows hold 4 elements,
        // edge windows 6, the centre 9.
        // (1+2+4+5)/4 = 3, (1+..+6)/6 = 3.5, (2+3+5+6)/4 = 4,
        // (1+2+4+5+7+8)/6 = 4.5, 45/9 = 5, (2+3+5+6+8+9)/6 = 5.5,
        // (4+5+7+8)/4 = 6, (4+..+9)/6 = 6.5, (5+6+8+9)/4 = 7.
        let x: Vec<f64> = (1..=9).map(f64::from).collect();
        let (shape, y) = run_op(pool(PoolKind::Avg, 3, 1, 1), &[(&[1, 3, 3, 1], &x)]);
        assert_eq!(shape, [1, 3, 3, 1]);
        assert_eq!(y, [3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0]);
    }

    #[test]
    fn max_pool_padding_never_wins() {
        // All negative values: a zero from the padding must not appear.
        let x = [-4.0, -3.0, -2.0, -1.0];
        let (_, y) = run_op(pool(PoolKind::Max, 2, 1, 1), &[(&[1, 2, 2, 1], &x)]);
        // 3x3 output; window (oy, ox) covers rows oy-1..oy, cols ox-1..ox.
        assert_eq!(y, [-4.0, -3.0, -3.0, -2.0, -1.0, -1.0, -2.0, -1.0, -1.0]);
    }

    #[test]
    fn every_window_holds_a_pixel_when_the_padding_is_smaller_than_the_window() {
        // 3x3 windows with padding 2 and stride 1 on a 1x1 image: all nine windows of the 3x3
        // output reach the pixel, so none is empty (shape inference rejects padding as large as
        // the window, which would make empty windows).
        for kind in [PoolKind::Max, PoolKind::Avg] {
            let (shape, y) = run_op(pool(kind, 3, 1, 2), &[(&[1, 1, 1, 1], &[-7.0])]);
            assert_eq!(shape, [1, 3, 3, 1]);
            assert_eq!(y, vec![-7.0; 9]);
            let op = backprop(&pool(kind, 3, 1, 2));
            let (_, dx) = run_op(op, &[(&[1, 1, 1, 1], &[-7.0]), (&[1, 3, 3, 1], &[1.0; 9])]);
            assert_eq!(dx, [9.0]);
        }
    }

    #[test]
    fn pools_channels_and_batch_independently() {
        // Two images of two channels; channel 1 is channel 0 negated.
        let x: Vec<f64> = (0..16)
            .map(|i| if i % 2 == 0 { f64::from(i) } else { -f64::from(i - 1) })
            .collect();
        let (shape, y) = run_op(pool(PoolKind::Max, 2, 2, 0), &[(&[2, 2, 2, 2], &x)]);
        assert_eq!(shape, [2, 1, 1, 2]);
        // Image 0 channel 0 holds 0,2,4,6 (max 6), channel 1 holds 0,-2,-4,-6 (max 0);
        // image 1 channel 0 holds 8..14 (max 14), channel 1 -8..-14 (max -8).
        assert_eq!(y, [6.0, 0.0, 14.0, -8.0]);
    }

    #[test]
    fn a_window_over_the_whole_image_equals_a_reduction() {
        let mut rng = Rng::new(3);
        let (n, h, w, c) = (2, 4, 5, 3);
        let x = random(&mut rng, n * h * w * c);
        for (kind, red) in [(PoolKind::Avg, ReduceOp::Mean), (PoolKind::Max, ReduceOp::Max)] {
            let op = Op::Pool2d(PoolGeometry {
                kind,
                size: (h, w),
                stride: (1, 1),
                pad: Pad2d::default(),
            });
            let (shape, pooled) = run_op(op, &[(&[n, h, w, c], &x)]);
            let (rshape, reduced) = run_op(
                Op::Reduce {
                    op: red,
                    axes: vec![1, 2],
                    keep_dims: true,
                },
                &[(&[n, h, w, c], &x)],
            );
            assert_eq!(shape, rshape);
            assert_close(&pooled, &reduced, 1e-12);
        }
    }

    #[test]
    fn max_pool_backprop_sends_each_gradient_to_the_first_maximum_by_hand() {
        // The 2x2 blocks of the max-pool test above, with ties: block (0,0) holds 5 twice (the
        // first, at (0,1), wins over (1,0)); block (0,1) holds -1 once; block (1,0) is all 0
        // (the first, (2,0), wins); block (1,1) holds 8 at (2,3).
        #[rustfmt::skip]
        let x = [
            1.0, 5.0, -1.0, -2.0,
            5.0, 2.0, -3.0, -4.0,
            0.0, 0.0, 7.0, 8.0,
            0.0, 0.0, 6.0, 5.0,
        ];
        let op = backprop(&pool(PoolKind::Max, 2, 2, 0));
        let (shape, dx) = run_op(op, &[(&[1, 4, 4, 1], &x), (&[1, 2, 2, 1], &[10.0, 20.0, 30.0, 40.0])]);
        assert_eq!(shape, [1, 4, 4, 1]);
        #[rustfmt::skip]
        let want = [
            0.0, 10.0, 20.0, 0.0,
            0.0, 0.0, 0.0, 0.0,
            30.0, 0.0, 0.0, 40.0,
            0.0, 0.0, 0.0, 0.0,
        ];
        assert_eq!(dx, want);
    }

    #[test]
    fn overlapping_max_windows_accumulate_by_hand() {
        // 1x3 row [1, 3, 2], 1x2 windows with stride 1: both windows pick the 3.
        let op = Op::Pool2dBackprop(PoolGeometry {
            kind: PoolKind::Max,
            size: (1, 2),
            stride: (1, 1),
            pad: Pad2d::default(),
        });
        let (_, dx) = run_op(op, &[(&[1, 1, 3, 1], &[1.0, 3.0, 2.0]), (&[1, 1, 2, 1], &[1.0, 2.0])]);
        assert_eq!(dx, [0.0, 3.0, 0.0]);
    }

    #[test]
    fn max_pool_backprop_ignores_the_padding() {
        // All negative values under padding 1: the padding never wins, so every gradient lands
        // on a real pixel and the total is kept.
        let x = [-4.0, -3.0, -2.0, -1.0];
        let op = backprop(&pool(PoolKind::Max, 2, 1, 1));
        let (_, dx) = run_op(op, &[(&[1, 2, 2, 1], &x), (&[1, 3, 3, 1], &[1.0; 9])]);
        // Maxima of the 3x3 windows (see max_pool_padding_never_wins): -4 once, -3 twice,
        // -2 twice, -1 four times.
        assert_eq!(dx, [1.0, 2.0, 2.0, 4.0]);
    }

    #[test]
    fn avg_pool_backprop_divides_by_the_in_range_count_by_hand() {
        // 3x3 window, stride 1, padding 1 on a 2x2 image: every window covers all 4 pixels.
        // dy = 1..4 spreads dy/4 to each pixel: (1+2+3+4)/4 = 2.5 everywhere.
        let op = backprop(&pool(PoolKind::Avg, 3, 1, 1));
        let (_, dx) = run_op(
            op,
            &[(&[1, 2, 2, 1], &[0.0; 4]), (&[1, 2, 2, 1], &[1.0, 2.0, 3.0, 4.0])],
        );
        assert_eq!(dx, [2.5; 4]);
        // 2x2 windows, stride 1, padding 1 on a 2x2 image: the 3x3 output's corner windows
        // see one pixel, edges two, the centre four. Pixel (0,0) gets dy[0,0]/1 + dy[0,1]/2 +
        // dy[1,0]/2 + dy[1,1]/4 = 1 + 1 + 2 + 1.25.
        let dy: Vec<f64> = (1..=9).map(f64::from).collect();
        let op = backprop(&pool(PoolKind::Avg, 2, 1, 1));
        let (_, dx) = run_op(op, &[(&[1, 2, 2, 1], &[0.0; 4]), (&[1, 3, 3, 1], &dy)]);
        // (0,1): dy[0,1]/2 + dy[0,2]/1 + dy[1,1]/4 + dy[1,2]/2 = 1 + 3 + 1.25 + 3.
        // (1,0): dy[1,0]/2 + dy[1,1]/4 + dy[2,0]/1 + dy[2,1]/2 = 2 + 1.25 + 7 + 4.
        // (1,1): dy[1,1]/4 + dy[1,2]/2 + dy[2,1]/2 + dy[2,2]/1 = 1.25 + 3 + 4 + 9.
        assert_eq!(dx, [5.25, 8.25, 14.25, 17.25]);
    }

    #[test]
    fn avg_pool_backprop_is_the_adjoint_of_avg_pool() {
        let mut rng = Rng::new(30);
        for (shape, size, stride, pad) in [
            ([2, 5, 6, 3], (2, 2), (2, 2), [0, 0, 0, 0]),
            ([1, 7, 7, 2], (3, 3), (2, 2), [1, 1, 1, 1]),
            ([2, 6, 5, 1], (3, 2), (1, 2), [2, 0, 1, 1]),
            ([1, 9, 4, 2], (2, 3), (3, 1), [0, 1, 2, 0]),
        ] {
            let [top, bottom, left, right] = pad;
            let geom = PoolGeometry {
                kind: PoolKind::Avg,
                size,
                stride,
                pad: Pad2d {
                    top,
                    bottom,
                    left,
                    right,
                },
            };
            let x = random(&mut rng, shape.iter().product());
            let (y_shape, y) = run_op(Op::Pool2d(geom), &[(&shape, &x)]);
            let dy = random(&mut rng, y.len());
            let (_, dx) = run_op(Op::Pool2dBackprop(geom), &[(&shape, &x), (&y_shape, &dy)]);
            let (lhs, rhs) = (dot(&y, &dy), dot(&x, &dx));
            assert!(
                (lhs - rhs).abs() <= 1e-12 * lhs.abs().max(1.0),
                "{geom:?}: {lhs} vs {rhs}"
            );
        }
    }
}
