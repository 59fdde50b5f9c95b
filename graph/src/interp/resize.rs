//! Spatial resize of NHWC tensors: nearest neighbour and bilinear with half-pixel centres.

use super::Arg;
use crate::ir::ResizeMode;

/// The two source positions and the weight of the second for one output position.
#[derive(Debug, Clone, Copy)]
struct Lerp {
    lo: usize,
    hi: usize,
    frac: f64,
}

/// Nearest source position: `floor(dst * in / out)`, clamped to `in - 1`.
fn nearest(dst: usize, len_in: usize, len_out: usize) -> usize {
    (dst * len_in / len_out).min(len_in - 1)
}

/// Bilinear source positions with half-pixel centres (TensorFlow's `resize`):
/// `src = (dst + 0.5) * in / out - 0.5`, clamped below at 0; `lo = floor(src)`,
/// `hi = min(lo + 1, in - 1)`, `frac = src - lo`.
fn bilinear(dst: usize, len_in: usize, len_out: usize) -> Lerp {
    let src = ((dst as f64 + 0.5) * len_in as f64 / len_out as f64 - 0.5).max(0.0);
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
    match mode {
        ResizeMode::Nearest => {
            for b in 0..n {
                for oy in 0..oh {
                    let y = nearest(oy, h, oh);
                    for ox in 0..ow {
                        let x = nearest(ox, w, ow);
                        out.extend((0..c).map(|ch| at(b, y, x, ch)));
                    }
                }
            }
        }
        ResizeMode::Bilinear => {
            let lerp = |a: f64, b: f64, t: f64| a + (b - a) * t;
            for b in 0..n {
                for oy in 0..oh {
                    let y = bilinear(oy, h, oh);
                    for ox in 0..ow {
                        let x = bilinear(ox, w, ow);
                        out.extend((0..c).map(|ch| {
                            let top = lerp(at(b, y.lo, x.lo, ch), at(b, y.lo, x.hi, ch), x.frac);
                            let bottom = lerp(at(b, y.hi, x.lo, ch), at(b, y.hi, x.hi, ch), x.frac);
                            lerp(top, bottom, y.frac)
                        }));
                    }
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
    fn resizing_to_the_same_size_is_the_identity() {
        let mut rng = Rng::new(7);
        let x = random(&mut rng, 2 * 3 * 5 * 2);
        for mode in [ResizeMode::Nearest, ResizeMode::Bilinear] {
            let (_, y) = run_op(resize(mode, 3, 5), &[(&[2, 3, 5, 2], &x)]);
            assert_close(&y, &x, 1e-15);
        }
    }
}
