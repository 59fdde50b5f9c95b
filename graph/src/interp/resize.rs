//! Spatial resize of NHWC tensors in every [`ResizeMode`] (nearest or bilinear, with TFLite's
//! corner conventions), and its gradient.

use super::Arg;
use crate::ir::ResizeMode;

/// The two source positions and the weight of the second for one output position.
#[derive(Debug, Clone, Copy)]
struct Lerp {
    lo: usize,
    hi: usize,
    frac: f64,
}

/// Bilinear source positions: `src` as [`ResizeMode::source`] computes it (clamped below at 0);
/// `lo = min(floor(src), in - 1)`, `hi = min(lo + 1, in - 1)`, `frac = src - lo`.
fn bilinear(mode: ResizeMode, dst: usize, len_in: usize, len_out: usize) -> Lerp {
    let src = f64::from(mode.source(dst, mode.scale(len_in, len_out)));
    let lo = (src.floor() as usize).min(len_in - 1);
    Lerp {
        lo,
        hi: (lo + 1).min(len_in - 1),
        frac: src - lo as f64,
    }
}

/// `Resize` of NHWC `x` to the output's height and width.
pub(super) fn resize(mode: ResizeMode, x: Arg, out_shape: &[usize]) -> Vec<f64> {
    let (xs, xd) = x;
    let (n, h, w, c) = (xs[0], xs[1], xs[2], xs[3]);
    let (oh, ow) = (out_shape[1], out_shape[2]);
    let at = |b: usize, y: usize, x: usize, ch: usize| xd[((b * h + y) * w + x) * c + ch];
    let mut out = Vec::with_capacity(n * oh * ow * c);
    let lerp = |a: f64, b: f64, t: f64| a + (b - a) * t;
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                if mode.is_bilinear() {
                    let (y, x) = (bilinear(mode, oy, h, oh), bilinear(mode, ox, w, ow));
                    out.extend((0..c).map(|ch| {
                        let top = lerp(at(b, y.lo, x.lo, ch), at(b, y.lo, x.hi, ch), x.frac);
                        let bottom = lerp(at(b, y.hi, x.lo, ch), at(b, y.hi, x.hi, ch), x.frac);
                        lerp(top, bottom, y.frac)
                    }));
                } else {
                    let (y, x) = (mode.nearest_index(oy, h, oh), mode.nearest_index(ox, w, ow));
                    out.extend((0..c).map(|ch| at(b, y, x, ch)));
                }
            }
        }
    }
    out
}

/// `ResizeBackprop`: `dy` `(N, OH, OW, C)` to `out_shape` `(N, H, W, C)`. Each output
/// gradient goes back to the input pixels the forward `Resize` read: nearest, the one source
/// pixel; bilinear, the four corners with weights `(1 - fy)(1 - fx)`, `(1 - fy) fx`,
/// `fy (1 - fx)` and `fy fx` (where clamping makes two corners the same pixel, it gets both).
pub(super) fn resize_backprop(mode: ResizeMode, dy: Arg, out_shape: &[usize]) -> Vec<f64> {
    let (ys, dyd) = dy;
    let (n, oh, ow, c) = (ys[0], ys[1], ys[2], ys[3]);
    let (h, w) = (out_shape[1], out_shape[2]);
    let mut dx = vec![0.0; n * h * w * c];
    let at = |b: usize, y: usize, x: usize| ((b * h + y) * w + x) * c;
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                let g = &dyd[((b * oh + oy) * ow + ox) * c..][..c];
                let mut send = |y: usize, x: usize, weight: f64| {
                    let base = at(b, y, x);
                    for (ch, &v) in g.iter().enumerate() {
                        dx[base + ch] += weight * v;
                    }
                };
                if mode.is_bilinear() {
                    let (y, x) = (bilinear(mode, oy, h, oh), bilinear(mode, ox, w, ow));
                    send(y.lo, x.lo, (1.0 - y.frac) * (1.0 - x.frac));
                    send(y.lo, x.hi, (1.0 - y.frac) * x.frac);
                    send(y.hi, x.lo, y.frac * (1.0 - x.frac));
                    send(y.hi, x.hi, y.frac * x.frac);
                } else {
                    send(mode.nearest_index(oy, h, oh), mode.nearest_index(ox, w, ow), 1.0);
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
    use crate::ir::{Op, ResizeMode};

    fn resize(mode: ResizeMode, height: usize, width: usize) -> Op {
        Op::Resize { mode, height, width }
    }

    #[test]
    fn nearest_upsampling_by_an_integer_factor_repeats_pixels() {
        let mut rng = Rng::new(6);
        let (n, h, w, c) = (2, 2, 3, 3);
        let x = random(&mut rng, n * h * w * c);
        let (shape, y) = run_op(resize(ResizeMode::Nearest, 2 * h, 3 * w), &[(&[n, h, w, c], &x)]);
        assert_eq!(shape, [n, 2 * h, 3 * w, c]);
        for b in 0..n {
            for oy in 0..2 * h {
                for ox in 0..3 * w {
                    for ch in 0..c {
                        let got = y[((b * 2 * h + oy) * 3 * w + ox) * c + ch];
                        let want = x[((b * h + oy / 2) * w + ox / 3) * c + ch];
                        assert_eq!(got, want, "({b}, {oy}, {ox}, {ch})");
                    }
                }
            }
        }
    }

    #[test]
    fn nearest_downsampling_picks_the_top_left_of_each_block() {
        // floor(dst * 4 / 2) = 2 dst: rows and columns 0 and 2 of x[r,c] = 4r + c.
        let x: Vec<f64> = (0..16).map(f64::from).collect();
        let (_, y) = run_op(resize(ResizeMode::Nearest, 2, 2), &[(&[1, 4, 4, 1], &x)]);
        assert_eq!(y, [0.0, 2.0, 8.0, 10.0]);
    }

    #[test]
    fn bilinear_upsampling_of_a_linear_image_by_hand() {
        // 2 -> 4 with half-pixel centres: src = (d + 0.5) / 2 - 0.5 = [-0.25, 0.25, 0.75, 1.25],
        // clamped to [0, 0.25, 0.75, 1] (the last by hi = min(lo + 1, 1)). The image
        // [[0,4],[8,12]] is 8y + 4x, and bilinear interpolation of a linear function is exact:
        // out = 8 sy + 4 sx = rows [0,2,6,8] + columns [0,1,3,4] (TensorFlow gives the same).
        let (shape, y) = run_op(
            resize(ResizeMode::Bilinear, 4, 4),
            &[(&[1, 2, 2, 1], &[0.0, 4.0, 8.0, 12.0])],
        );
        assert_eq!(shape, [1, 4, 4, 1]);
        #[rustfmt::skip]
        let want = [
            0.0, 1.0, 3.0, 4.0,
            2.0, 3.0, 5.0, 6.0,
            6.0, 7.0, 9.0, 10.0,
            8.0, 9.0, 11.0, 12.0,
        ];
        assert_close(&y, &want, 1e-15);
    }

    #[test]
    fn bilinear_upsampling_of_a_single_pixel_by_hand() {
        // [[1,0],[0,0]]: the weight of pixel (0,0) is (1 - sy)(1 - sx) with
        // 1 - s = [1, 0.75, 0.25, 0] per axis.
        let (_, y) = run_op(
            resize(ResizeMode::Bilinear, 4, 4),
            &[(&[1, 2, 2, 1], &[1.0, 0.0, 0.0, 0.0])],
        );
        #[rustfmt::skip]
        let want = [
            1.0, 0.75, 0.25, 0.0,
            0.75, 0.5625, 0.1875, 0.0,
            0.25, 0.1875, 0.0625, 0.0,
            0.0, 0.0, 0.0, 0.0,
        ];
        assert_close(&y, &want, 1e-15);
    }

    #[test]
    fn bilinear_downsampling_by_hand() {
        // 4 -> 2: src = (d + 0.5) * 2 - 0.5 = [0.5, 2.5], the midpoints of pixel pairs. On
        // x[r,c] = 4r + c that is 4 * [0.5, 2.5] + [0.5, 2.5].
        let x: Vec<f64> = (0..16).map(f64::from).collect();
        let (_, y) = run_op(resize(ResizeMode::Bilinear, 2, 2), &[(&[1, 4, 4, 1], &x)]);
        assert_close(&y, &[2.5, 4.5, 10.5, 12.5], 1e-15);
    }

    #[test]
    fn the_tflite_conventions_by_hand() {
        // On the linear image 8y + 4x of [[0,4],[8,12]], bilinear modes give 8 sy + 4 sx with
        // the clamped source positions. 2 -> 4 aligning corners: s = d / 3.
        let x = [0.0, 4.0, 8.0, 12.0];
        let linear = |s: [f64; 4]| -> Vec<f64> {
            s.iter()
                .flat_map(|&sy| s.iter().map(move |&sx| 8.0 * sy + 4.0 * sx))
                .collect()
        };
        let (_, y) = run_op(resize(ResizeMode::BilinearAlignCorners, 4, 4), &[(&[1, 2, 2, 1], &x)]);
        assert_close(&y, &linear([0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0]), 1e-6);
        // Asymmetric: s = d / 2 = [0, 0.5, 1, 1.5], the last past the edge reading pixel 1.
        let (_, y) = run_op(resize(ResizeMode::BilinearAsymmetric, 4, 4), &[(&[1, 2, 2, 1], &x)]);
        assert_close(&y, &linear([0.0, 0.5, 1.0, 1.0]), 1e-15);
        // Nearest, half-pixel, 2 -> 5 along x: floor((d + 0.5) * 0.4) = floor([0.2, 0.6, 1.0,
        // 1.4, 1.8]) = [0, 0, 1, 1, 1] (1.0 in f32 too: 2.5 * 0.4f32 rounds to 1).
        let (_, y) = run_op(
            resize(ResizeMode::NearestHalfPixel, 1, 5),
            &[(&[1, 1, 2, 1], &[3.0, 7.0])],
        );
        assert_eq!(y, [3.0, 3.0, 7.0, 7.0, 7.0]);
        // ... and 3 -> 2: floor([0.75, 2.25]) = [0, 2], where plain nearest takes [0, 1].
        let (_, y) = run_op(
            resize(ResizeMode::NearestHalfPixel, 1, 2),
            &[(&[1, 1, 3, 1], &[3.0, 5.0, 7.0])],
        );
        assert_eq!(y, [3.0, 7.0]);
        let (_, y) = run_op(resize(ResizeMode::Nearest, 1, 2), &[(&[1, 1, 3, 1], &[3.0, 5.0, 7.0])]);
        assert_eq!(y, [3.0, 5.0]);
        // Nearest aligning corners, 3 -> 5: round(d * 0.5) half away from zero = [0, 1, 1, 2, 2].
        let (_, y) = run_op(
            resize(ResizeMode::NearestAlignCorners, 1, 5),
            &[(&[1, 1, 3, 1], &[3.0, 5.0, 7.0])],
        );
        assert_eq!(y, [3.0, 5.0, 5.0, 7.0, 7.0]);
        // Aligning corners from one pixel (scale 0) and to one (scale in / out, s = 0).
        let (_, y) = run_op(
            resize(ResizeMode::BilinearAlignCorners, 1, 3),
            &[(&[1, 1, 1, 1], &[2.0])],
        );
        assert_eq!(y, [2.0; 3]);
        let (_, y) = run_op(
            resize(ResizeMode::NearestAlignCorners, 1, 1),
            &[(&[1, 1, 3, 1], &[3.0, 5.0, 7.0])],
        );
        assert_eq!(y, [3.0]);
    }

    #[test]
    fn resizing_to_the_same_size_is_the_identity() {
        let mut rng = Rng::new(7);
        let x = random(&mut rng, 2 * 3 * 5 * 2);
        for mode in ResizeMode::ALL {
            let (_, y) = run_op(resize(mode, 3, 5), &[(&[2, 3, 5, 2], &x)]);
            assert_close(&y, &x, 1e-15);
        }
    }

    fn backprop(mode: ResizeMode, height: usize, width: usize) -> Op {
        Op::ResizeBackprop {
            mode,
            input_hw: (height, width),
        }
    }

    #[test]
    fn nearest_backprop_sums_the_copies_by_hand() {
        // 2x2 -> 4x4 repeats each pixel in a 2x2 block: the gradient sums the blocks.
        let dy: Vec<f64> = (0..16).map(f64::from).collect();
        let (shape, dx) = run_op(backprop(ResizeMode::Nearest, 2, 2), &[(&[1, 4, 4, 1], &dy)]);
        assert_eq!(shape, [1, 2, 2, 1]);
        // Blocks: 0+1+4+5, 2+3+6+7, 8+9+12+13, 10+11+14+15.
        assert_eq!(dx, [10.0, 18.0, 42.0, 50.0]);
        // 4x4 -> 2x2 reads rows and columns 0 and 2: the others get nothing.
        let (_, dx) = run_op(
            backprop(ResizeMode::Nearest, 4, 4),
            &[(&[1, 2, 2, 1], &[1.0, 2.0, 3.0, 4.0])],
        );
        #[rustfmt::skip]
        let want = [
            1.0, 0.0, 2.0, 0.0,
            0.0, 0.0, 0.0, 0.0,
            3.0, 0.0, 4.0, 0.0,
            0.0, 0.0, 0.0, 0.0,
        ];
        assert_eq!(dx, want);
    }

    #[test]
    fn bilinear_backprop_by_hand() {
        // 2 -> 4 per axis: the weights of pixel 0 are [1, 0.75, 0.25, 0] (see the forward test)
        // and of pixel 1 [0, 0.25, 0.75, 1]. A dy of ones gives each pixel (sum of its
        // weights)^2 = 2^2; a dy that is 1 at output (0,1) only gives its four weights:
        // rows [1, 0] times columns [0.75, 0.25].
        let (_, dx) = run_op(backprop(ResizeMode::Bilinear, 2, 2), &[(&[1, 4, 4, 1], &[1.0; 16])]);
        assert_close(&dx, &[4.0; 4], 1e-15);
        let mut dy = [0.0; 16];
        dy[1] = 1.0;
        let (_, dx) = run_op(backprop(ResizeMode::Bilinear, 2, 2), &[(&[1, 4, 4, 1], &dy)]);
        assert_close(&dx, &[0.75, 0.25, 0.0, 0.0], 1e-15);
    }

    #[test]
    fn resize_backprop_is_the_adjoint_of_resize() {
        let mut rng = Rng::new(31);
        for mode in ResizeMode::ALL {
            for (x_shape, oh, ow) in [
                ([2, 3, 4, 2], 6, 8),
                ([1, 5, 7, 3], 3, 2),
                ([2, 4, 3, 1], 7, 5),
                ([1, 6, 5, 2], 4, 9),
                ([1, 1, 3, 1], 3, 3),
            ] {
                let x = random(&mut rng, x_shape.iter().product());
                let (y_shape, y) = run_op(
                    Op::Resize {
                        mode,
                        height: oh,
                        width: ow,
                    },
                    &[(&x_shape, &x)],
                );
                let dy = random(&mut rng, y.len());
                let (dx_shape, dx) = run_op(backprop(mode, x_shape[1], x_shape[2]), &[(&y_shape, &dy)]);
                assert_eq!(dx_shape, x_shape);
                let (lhs, rhs) = (dot(&y, &dy), dot(&x, &dx));
                assert!(
                    (lhs - rhs).abs() <= 1e-12 * lhs.abs().max(1.0),
                    "{mode:?} {x_shape:?} -> {oh}x{ow}: {lhs} vs {rhs}"
                );
            }
        }
    }
}
