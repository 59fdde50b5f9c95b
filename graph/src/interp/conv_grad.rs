//! The two gradients of `Conv2d`: with respect to its input (`Conv2dBackpropInput`) and its
//! kernel (`Conv2dBackpropFilter`). Both walk the forward convolution's loops and scatter
//! instead of gather, so they are its exact adjoints by construction: every product
//! `x[..] * w[..]` the forward adds into `y[..]` sends `dy[..] * w[..]` back to `x` and
//! `dy[..] * x[..]` back to `w`, and input positions the forward never reads get 0.

use super::{Arg, tap};
use crate::ir::{BackpropFilter, ConvGeometry};

/// Calls `f(x_index, w_index, y_index)` for every product of the forward `Conv2d` of an
/// `x_shape` input with a `w_shape` HWIO kernel giving `y_shape`.
fn for_each_tap(
    geom: &ConvGeometry,
    x_shape: &[usize],
    w_shape: &[usize],
    y_shape: &[usize],
    mut f: impl FnMut(usize, usize, usize),
) {
    let (n, h, wi, c) = (x_shape[0], x_shape[1], x_shape[2], x_shape[3]);
    let (kh, kw, cg, co) = (w_shape[0], w_shape[1], w_shape[2], w_shape[3]);
    let (oh, ow) = (y_shape[1], y_shape[2]);
    let co_per_group = co / geom.groups;
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for o in 0..co {
                    let group = o / co_per_group;
                    let y_index = ((b * oh + oy) * ow + ox) * co + o;
                    for ky in 0..kh {
                        let Some(iy) = tap(oy, geom.stride.0, ky, geom.dilation.0, geom.pad.top, h) else {
                            continue;
                        };
                        for kx in 0..kw {
                            let Some(ix) = tap(ox, geom.stride.1, kx, geom.dilation.1, geom.pad.left, wi) else {
                                continue;
                            };
                            for ci in 0..cg {
                                let x_index = ((b * h + iy) * wi + ix) * c + group * cg + ci;
                                let w_index = ((ky * kw + kx) * cg + ci) * co + o;
                                f(x_index, w_index, y_index);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `Conv2dBackpropInput`: `dy` `(N, OH, OW, CO)`, `w` the forward kernel in layout `filter`;
/// `out_shape` is the forward input's `(N, H, W, C)`. `dx[x_i] = sum dy[y_i] * w[w_i]` over the
/// forward's products (a `Hwoi` kernel is read at the same element's transposed index, so both
/// layouts add the same products in the same order).
pub(super) fn backprop_input(
    geom: &ConvGeometry,
    filter: BackpropFilter,
    dy: Arg,
    w: Arg,
    out_shape: &[usize],
) -> Vec<f64> {
    let mut dx = vec![0.0; out_shape.iter().product()];
    let hwio = filter.hwio_shape(w.0);
    let (cg, co) = (hwio[2], hwio[3]);
    let w_at = |wi: usize| match filter {
        BackpropFilter::Hwio => wi,
        // HWIO index ((tap * CG + ci) * CO + o) -> ((tap * CO + o) * CG + ci).
        BackpropFilter::Hwoi => {
            let (tap, ci, o) = (wi / (cg * co), wi / co % cg, wi % co);
            (tap * co + o) * cg + ci
        }
    };
    for_each_tap(geom, out_shape, &hwio, dy.0, |xi, wi, yi| {
        dx[xi] += dy.1[yi] * w.1[w_at(wi)]
    });
    dx
}

/// `Conv2dBackpropFilter`: `x` NHWC, `dy` `(N, OH, OW, CO)`; `out_shape` is the kernel's
/// `(KH, KW, C / groups, CO)`. `dw[w_i] = sum dy[y_i] * x[x_i]` over the forward's products.
pub(super) fn backprop_filter(geom: &ConvGeometry, x: Arg, dy: Arg, out_shape: &[usize]) -> Vec<f64> {
    let mut dw = vec![0.0; out_shape.iter().product()];
    for_each_tap(geom, x.0, out_shape, dy.0, |xi, wi, yi| dw[wi] += dy.1[yi] * x.1[xi]);
    dw
}

#[cfg(test)]
mod tests {
    use super::super::eval_op;
    use super::super::testing::{dot, random, run_op};
    use crate::init::Rng;
    use crate::ir::{BackpropFilter, ConvGeometry, Graph, Op, Pad2d, TensorType};

    fn geom(stride: (usize, usize), dilation: (usize, usize), pad: [usize; 4], groups: usize) -> ConvGeometry {
        let [top, bottom, left, right] = pad;
        ConvGeometry {
            stride,
            dilation,
            pad: Pad2d {
                top,
                bottom,
                left,
                right,
            },
            groups,
        }
    }

    #[test]
    fn backprop_input_by_hand() {
        // Forward: 3x3 x, 2x2 w = [[1,2],[3,4]], out[i,j] = sum w[a,b] x[i+a, j+b]. With
        // dy = [[1,0],[0,0]] only out[0,0] is differentiated: dx = w in the top-left corner.
        // With dy = ones, dx[r,c] = sum of the w taps that cover (r,c):
        // corners 1,2,3,4; edges 1+2, 1+3, 2+4, 3+4; centre 10.
        let op = Op::Conv2dBackpropInput {
            geom: geom((1, 1), (1, 1), [0; 4], 1),
            input_hw: (3, 3),
            filter: BackpropFilter::Hwio,
        };
        let w = [1.0, 2.0, 3.0, 4.0];
        let (shape, dx) = run_op(
            op.clone(),
            &[(&[1, 2, 2, 1], &[1.0, 0.0, 0.0, 0.0]), (&[2, 2, 1, 1], &w)],
        );
        assert_eq!(shape, [1, 3, 3, 1]);
        assert_eq!(dx, [1.0, 2.0, 0.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0]);
        let (_, dx) = run_op(op, &[(&[1, 2, 2, 1], &[1.0; 4]), (&[2, 2, 1, 1], &w)]);
        assert_eq!(dx, [1.0, 3.0, 2.0, 4.0, 10.0, 6.0, 3.0, 7.0, 4.0]);
    }

    #[test]
    fn backprop_filter_by_hand() {
        // x = 1..9 on 3x3, dy = ones (2x2): dw[a,b] = sum of the 2x2 block of x at (a,b):
        // 1+2+4+5, 2+3+5+6, 4+5+7+8, 5+6+8+9.
        let op = Op::Conv2dBackpropFilter {
            geom: geom((1, 1), (1, 1), [0; 4], 1),
            kernel_hw: (2, 2),
        };
        let x: Vec<f64> = (1..=9).map(f64::from).collect();
        let (shape, dw) = run_op(op, &[(&[1, 3, 3, 1], &x), (&[1, 2, 2, 1], &[1.0; 4])]);
        assert_eq!(shape, [2, 2, 1, 1]);
        assert_eq!(dw, [12.0, 16.0, 24.0, 28.0]);
    }

    #[test]
    fn rows_the_forward_never_reads_get_zero_gradient() {
        // A 1x1 kernel with stride 2 on 4 rows reads rows 0 and 2 only; the fourth column is
        // dropped as well (width 4, stride 2 reads columns 0 and 2).
        let op = Op::Conv2dBackpropInput {
            geom: geom((2, 2), (1, 1), [0; 4], 1),
            input_hw: (4, 4),
            filter: BackpropFilter::Hwio,
        };
        let (_, dx) = run_op(op, &[(&[1, 2, 2, 1], &[1.0, 2.0, 3.0, 4.0]), (&[1, 1, 1, 1], &[10.0])]);
        #[rustfmt::skip]
        let want = [
            10.0, 0.0, 20.0, 0.0,
            0.0, 0.0, 0.0, 0.0,
            30.0, 0.0, 40.0, 0.0,
            0.0, 0.0, 0.0, 0.0,
        ];
        assert_eq!(dx, want);
    }

    #[test]
    fn grouped_backprop_keeps_groups_apart_by_hand() {
        // One pixel, channels [1,2,3,4], 1x1 kernel (1,1,2,2) = [[1,10],[2,20]], groups 2 (filter
        // 0 reads channels 0,1 with weights 1,2; filter 1 reads channels 2,3 with 10,20).
        let g = geom((1, 1), (1, 1), [0; 4], 2);
        let w = [1.0, 10.0, 2.0, 20.0];
        let dx = eval_op(
            &Op::Conv2dBackpropInput {
                geom: g,
                input_hw: (1, 1),
                filter: BackpropFilter::Hwio,
            },
            &[(&[1, 1, 1, 2], &[1.0, 100.0]), (&[1, 1, 2, 2], &w)],
            &[1, 1, 1, 4],
            "l",
        )
        .unwrap();
        assert_eq!(dx, [1.0, 2.0, 1000.0, 2000.0]);
        let dw = eval_op(
            &Op::Conv2dBackpropFilter {
                geom: g,
                kernel_hw: (1, 1),
            },
            &[(&[1, 1, 1, 4], &[1.0, 2.0, 3.0, 4.0]), (&[1, 1, 1, 2], &[1.0, 100.0])],
            &[1, 1, 2, 2],
            "l",
        )
        .unwrap();
        // dw[ci, o] = x[group(o) * 2 + ci] * dy[o].
        assert_eq!(dw, [1.0, 300.0, 2.0, 400.0]);
    }

    /// `<conv(x, w), dy> == <x, backprop_input(dy, w)> == <w, backprop_filter(x, dy)>`.
    fn check_adjoints(seed: u64, x_shape: [usize; 4], k: (usize, usize), co: usize, g: ConvGeometry) {
        let mut rng = Rng::new(seed);
        let [n, h, w, c] = x_shape;
        let w_shape = [k.0, k.1, c / g.groups, co];
        let xv = random(&mut rng, x_shape.iter().product());
        let wv = random(&mut rng, w_shape.iter().product());
        let (y_shape, y) = run_op(Op::Conv2d(g), &[(&x_shape, &xv), (&w_shape, &wv)]);
        let dy = random(&mut rng, y.len());
        let (dx_shape, dx) = run_op(
            Op::Conv2dBackpropInput {
                geom: g,
                input_hw: (h, w),
                filter: BackpropFilter::Hwio,
            },
            &[(&y_shape, &dy), (&w_shape, &wv)],
        );
        assert_eq!(dx_shape, [n, h, w, c]);
        let (dw_shape, dw) = run_op(
            Op::Conv2dBackpropFilter { geom: g, kernel_hw: k },
            &[(&x_shape, &xv), (&y_shape, &dy)],
        );
        assert_eq!(dw_shape, w_shape);
        let lhs = dot(&y, &dy);
        let tol = 1e-12 * lhs.abs().max(1.0);
        assert!(
            (lhs - dot(&xv, &dx)).abs() <= tol,
            "seed {seed}: input adjoint {lhs} vs {}",
            dot(&xv, &dx)
        );
        assert!(
            (lhs - dot(&wv, &dw)).abs() <= tol,
            "seed {seed}: filter adjoint {lhs} vs {}",
            dot(&wv, &dw)
        );
        assert!(lhs.abs() > 1e-6, "vacuous check");
    }

    /// The `Hwoi` layout (the HWIO kernel transposed per tap) gives exactly the `Hwio` result.
    #[test]
    fn both_filter_layouts_give_the_same_gradient() {
        let mut rng = Rng::new(31);
        for case in 0..40 {
            let groups = 1 + rng.below(3);
            let (cg, cog) = (1 + rng.below(5), 1 + rng.below(5));
            let (kh, kw) = (1 + rng.below(3), 1 + rng.below(3));
            let g = geom(
                (1 + rng.below(3), 1 + rng.below(3)),
                (1 + rng.below(2), 1 + rng.below(2)),
                [rng.below(3), rng.below(3), rng.below(3), rng.below(3)],
                groups,
            );
            let x_shape = [1 + rng.below(3), 4 + rng.below(6), 4 + rng.below(6), cg * groups];
            let w_shape = [kh, kw, cg, cog * groups];
            let wv = random(&mut rng, w_shape.iter().product());
            // The forward output's shape (skipping geometries with an empty output).
            let mut fwd = Graph::new();
            let x = fwd.input("x", TensorType::f32(x_shape.to_vec())).unwrap();
            let k = fwd.param("k", &w_shape, true, "conv").unwrap();
            let Ok(y) = fwd.push(Op::Conv2d(g), &[x, k], "conv") else {
                continue;
            };
            let y_shape = fwd.shape(y).to_vec();
            let dy = random(&mut rng, y_shape.iter().product());
            // wt[ky, kx, o, ci] = w[ky, kx, ci, o].
            let co = w_shape[3];
            let mut wt = vec![0.0; wv.len()];
            for (i, &v) in wv.iter().enumerate() {
                let (tap, ci, o) = (i / (cg * co), i / co % cg, i % co);
                wt[(tap * co + o) * cg + ci] = v;
            }
            let t_shape = [kh, kw, co, cg];
            let run = |filter, w_shape: &[usize], w: &[f64]| {
                let op = Op::Conv2dBackpropInput {
                    geom: g,
                    input_hw: (x_shape[1], x_shape[2]),
                    filter,
                };
                run_op(op, &[(&y_shape, &dy), (w_shape, w)])
            };
            let (s0, dx0) = run(BackpropFilter::Hwio, &w_shape, &wv);
            let (s1, dx1) = run(BackpropFilter::Hwoi, &t_shape, &wt);
            assert_eq!(s0, x_shape, "case {case}");
            assert_eq!((s0, &dx0), (s1, &dx1), "case {case}: {g:?}");
            assert!(dx0.iter().any(|&v| v != 0.0) || dy.is_empty(), "case {case}: vacuous");
        }
    }

    #[test]
    fn backprops_are_the_adjoints_of_conv() {
        check_adjoints(20, [2, 5, 5, 3], (3, 3), 4, geom((1, 1), (1, 1), [0; 4], 1));
        check_adjoints(21, [1, 7, 6, 2], (3, 3), 3, geom((2, 2), (1, 1), [1, 1, 1, 1], 1));
        check_adjoints(22, [2, 8, 7, 4], (3, 2), 6, geom((2, 3), (1, 1), [0, 1, 1, 0], 2));
        check_adjoints(23, [1, 9, 9, 3], (3, 3), 3, geom((1, 1), (2, 2), [2, 2, 2, 2], 3));
        check_adjoints(24, [2, 10, 8, 6], (2, 3), 4, geom((3, 2), (2, 1), [1, 2, 0, 1], 2));
        // Stride larger than the kernel: some rows are never read.
        check_adjoints(25, [1, 9, 8, 2], (2, 2), 2, geom((4, 3), (1, 1), [0; 4], 1));
    }
}
