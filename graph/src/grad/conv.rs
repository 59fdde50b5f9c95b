//! VJPs of the convolutions.
//!
//! | op | gradient of `x` | gradient of the kernel |
//! | --- | --- | --- |
//! | `Conv2d(geom)` | `Conv2dBackpropInput { geom, input_hw, filter: Hwio }(dy, w)` | `Conv2dBackpropFilter { geom, kernel_hw }(x, dy)` |
//! | `ConvTranspose2d { geom, out_pad }` | `Conv2d(geom')(dy', w)` | `Conv2dBackpropFilter { geom', kernel_hw }(dy', x)` |
//!
//! A transposed convolution computes `y[oy] = sum x[iy] w[ky]` over `iy * s + ky * d = oy + top`,
//! so its input gradient `dx[iy] = sum dy[iy * s + ky * d - top] w[ky]` is a forward convolution
//! of `dy` whose HWIO kernel is the same array: `(KH, KW, CO, C)` maps `CO` channels to `C`. Its
//! geometry `geom'` keeps the stride, dilation and `top`/`left` padding; `bottom'/right'` are
//! chosen so that the result has the input's size: `bottom - out_pad` rows. When `out_pad`
//! exceeds `bottom` (possible with dilation larger than the stride), `dy'` drops the last
//! `out_pad - bottom` rows of `dy` first: they are `out_pad` rows, which no input reaches.
//! The kernel gradient is the same sum with the roles of `x` and `dy` swapped:
//! `dw[ky, kx, co, ci] = sum x[iy, ci] dy'[iy * s + ky * d - top, co]`, a backprop-filter of a
//! convolution of `dy'` (input) with `x` as its output gradient.

use super::{Grads, Vjp};
use crate::error::Result;
use crate::ir::{BackpropFilter, ConvGeometry, Op, Pad2d};

/// `Conv2d(geom)` of `x` and `w`.
pub(super) fn conv2d(v: &mut Vjp, geom: ConvGeometry) -> Result<Grads> {
    let (x, w, dy) = (v.x(0), v.x(1), v.dy);
    let (x_shape, w_shape) = (v.shape(x), v.shape(w));
    let dx = v.when(0, |v| {
        let op = Op::Conv2dBackpropInput {
            geom,
            input_hw: (x_shape[1], x_shape[2]),
            // The forward kernel as it is; `passes::transpose_backprop_filters` picks the layout.
            filter: BackpropFilter::Hwio,
        };
        v.push(op, &[dy, w])
    })?;
    let dw = v.when(1, |v| {
        let op = Op::Conv2dBackpropFilter {
            geom,
            kernel_hw: (w_shape[0], w_shape[1]),
        };
        v.push(op, &[x, dy])
    })?;
    Ok(vec![dx, dw])
}

/// `ConvTranspose2d { geom, out_pad }` of `x` and `w`.
pub(super) fn conv_transpose2d(v: &mut Vjp, geom: ConvGeometry, out_pad: (usize, usize)) -> Result<Grads> {
    let (x, w, dy) = (v.x(0), v.x(1), v.dy);
    let (x_shape, w_shape, y_shape) = (v.shape(x), v.shape(w), v.shape(v.id));
    // Rows (columns) of dy that some input reaches: all but the out_pad rows the bottom
    // (right) crop left in the output.
    let keep_h = y_shape[1].checked_sub(out_pad.0.saturating_sub(geom.pad.bottom));
    let keep_w = y_shape[2].checked_sub(out_pad.1.saturating_sub(geom.pad.right));
    let (keep_h, keep_w) = match (keep_h, keep_w) {
        (Some(h), Some(w)) if h > 0 && w > 0 => (h, w),
        // The crop removed every row (column) any input reaches: the output is constant.
        _ => {
            let dx = v.when(0, |v| v.fill(&x_shape, 0.0))?;
            let dw = v.when(1, |v| v.fill(&w_shape, 0.0))?;
            return Ok(vec![dx, dw]);
        }
    };
    let dy_kept = if (keep_h, keep_w) == (y_shape[1], y_shape[2]) {
        dy
    } else {
        let op = Op::Slice {
            starts: vec![0; 4],
            sizes: vec![y_shape[0], keep_h, keep_w, y_shape[3]],
        };
        v.push(op, &[dy])?
    };
    let back = ConvGeometry {
        pad: Pad2d {
            bottom: geom.pad.bottom.saturating_sub(out_pad.0),
            right: geom.pad.right.saturating_sub(out_pad.1),
            ..geom.pad
        },
        ..geom
    };
    let dx = v.when(0, |v| v.push(Op::Conv2d(back), &[dy_kept, w]))?;
    let dw = v.when(1, |v| {
        let op = Op::Conv2dBackpropFilter {
            geom: back,
            kernel_hw: (w_shape[0], w_shape[1]),
        };
        v.push(op, &[dy_kept, x])
    })?;
    Ok(vec![dx, dw])
}

#[cfg(test)]
mod tests {
    use super::super::testing::Check;
    use crate::init::Rng;
    use crate::ir::{ConvGeometry, Op, Pad2d};
    use proptest::prelude::*;

    fn pad((top, bottom, left, right): (usize, usize, usize, usize)) -> Pad2d {
        Pad2d {
            top,
            bottom,
            left,
            right,
        }
    }

    /// Checks the gradients of `x` and the kernel of `op` (rejecting geometries shape
    /// inference refuses).
    fn check_conv(op: Op, x_shape: &[usize], w_shape: &[usize], seed: u64) -> Result<(), TestCaseError> {
        let mut c = Check::new(Rng::new(seed));
        let x = c.input("x", x_shape, -1.0, 1.0);
        let w = c.param("conv/kernel", w_shape, -1.0, 1.0);
        let y = c.graph.push(op, &[x, w], "test");
        prop_assume!(y.is_ok());
        c.check(y.unwrap(), &[x, w])?;
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn conv2d_matches_finite_differences(
            n in 1usize..3, h in 1usize..7, w in 1usize..7, cg in 1usize..3, og in 1usize..3, groups in 1usize..4,
            kh in 1usize..4, kw in 1usize..4, stride in (1usize..4, 1usize..4), dilation in (1usize..3, 1usize..3),
            pads in (0usize..3, 0usize..3, 0usize..3, 0usize..3), seed in any::<u64>(),
        ) {
            let geom = ConvGeometry { stride, dilation, pad: pad(pads), groups };
            check_conv(Op::Conv2d(geom), &[n, h, w, cg * groups], &[kh, kw, cg, og * groups], seed)?;
        }

        #[test]
        fn depthwise_conv2d_matches_finite_differences(
            h in 2usize..7, w in 2usize..7, c in 1usize..5, multiplier in 1usize..3, k in 1usize..4,
            stride in 1usize..3, same in any::<bool>(), seed in any::<u64>(),
        ) {
            let p = if same { (k - 1) / 2 } else { 0 };
            let geom = ConvGeometry { stride: (stride, stride), dilation: (1, 1), pad: pad((p, k - 1 - p, p, k - 1 - p)), groups: c };
            check_conv(Op::Conv2d(geom), &[2, h, w, c], &[k, k, 1, c * multiplier], seed)?;
        }

        #[test]
        fn conv_transpose2d_matches_finite_differences(
            n in 1usize..3, h in 1usize..5, w in 1usize..5, c in 1usize..3, co in 1usize..3,
            kh in 1usize..4, kw in 1usize..4, stride in (1usize..4, 1usize..4), dilation in (1usize..3, 1usize..3),
            pads in (0usize..3, 0usize..3, 0usize..3, 0usize..3), out_pad in (0usize..3, 0usize..3), seed in any::<u64>(),
        ) {
            let geom = ConvGeometry { stride, dilation, pad: pad(pads), groups: 1 };
            check_conv(Op::ConvTranspose2d { geom, out_pad }, &[n, h, w, c], &[kh, kw, co, c], seed)?;
        }
    }

    #[test]
    fn conv_transpose2d_with_out_pad_beyond_the_crop_matches_finite_differences() {
        // Dilation 3 > stride 1 allows out_pad 2 > bottom 0: the output keeps two rows and
        // columns no input reaches, which the gradient must skip.
        let geom = ConvGeometry {
            stride: (1, 2),
            dilation: (3, 3),
            pad: pad((1, 0, 0, 1)),
            groups: 1,
        };
        check_conv(
            Op::ConvTranspose2d { geom, out_pad: (2, 2) },
            &[2, 3, 4, 2],
            &[2, 3, 3, 2],
            7,
        )
        .unwrap();
    }

    #[test]
    fn conv_transpose2d_whose_crop_removes_every_reached_row_has_zero_gradients() {
        // One input row, a 1-row kernel, stride 2, out_pad 1 and top 1: the single output row
        // is the out_pad row.
        let geom = ConvGeometry {
            stride: (2, 1),
            dilation: (1, 1),
            pad: pad((1, 0, 0, 0)),
            groups: 1,
        };
        let grads = {
            let mut c = Check::new(Rng::new(8));
            let x = c.input("x", &[1, 1, 2, 1], -1.0, 1.0);
            let w = c.param("conv/kernel", &[1, 1, 1, 1], -1.0, 1.0);
            let y = c.push(Op::ConvTranspose2d { geom, out_pad: (1, 0) }, &[x, w]);
            assert_eq!(c.graph.shape(y), [1, 1, 2, 1]);
            c.check(y, &[x, w]).unwrap()
        };
        assert!(grads.iter().flatten().all(|&g| g == 0.0));
    }
}
