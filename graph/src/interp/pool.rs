//! 2-D max and average pooling.

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

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_close, random, run_op};
    use crate::init::Rng;
    use crate::ir::{Op, Pad2d, PoolGeometry, PoolKind, ReduceOp};

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
    fn a_window_entirely_in_the_padding_gives_zero() {
        // 1x1 windows with padding 2 and stride 1 on a 1x1 image: only the centre of the 5x5
        // output sees the pixel.
        for kind in [PoolKind::Max, PoolKind::Avg] {
            let (shape, y) = run_op(pool(kind, 1, 1, 2), &[(&[1, 1, 1, 1], &[-7.0])]);
            assert_eq!(shape, [1, 5, 5, 1]);
            let mut want = vec![0.0; 25];
            want[12] = -7.0;
            assert_eq!(y, want);
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
}
