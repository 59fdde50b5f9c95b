//! Convolutions and matrix products: `Conv2d`, `ConvTranspose2d` and `MatMul`.

use super::{Arg, tap};
use crate::ir::ConvGeometry;

/// `Conv2d`: `x` NHWC, `w` `(KH, KW, C / groups, CO)`;
/// `out[n, oy, ox, co] = sum_{ky, kx, ci} x[n, oy*sh - top + ky*dh, ox*sw - left + kx*dw, g*Cg + ci]
/// * w[ky, kx, ci, co]` with `g = co / (CO / groups)`; positions in the padding contribute 0.
pub(super) fn conv2d(geom: &ConvGeometry, x: Arg, w: Arg, out_shape: &[usize]) -> Vec<f64> {
    let ((xs, xd), (ws, wd)) = (x, w);
    let (n, h, wi, c) = (xs[0], xs[1], xs[2], xs[3]);
    let (kh, kw, cg, co) = (ws[0], ws[1], ws[2], ws[3]);
    let (oh, ow) = (out_shape[1], out_shape[2]);
    let co_per_group = co / geom.groups;
    let mut out = vec![0.0; n * oh * ow * co];
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for o in 0..co {
                    let group = o / co_per_group;
                    let mut acc = 0.0;
                    for ky in 0..kh {
                        let Some(iy) = tap(oy, geom.stride.0, ky, geom.dilation.0, geom.pad.top, h) else {
                            continue;
                        };
                        for kx in 0..kw {
                            let Some(ix) = tap(ox, geom.stride.1, kx, geom.dilation.1, geom.pad.left, wi) else {
                                continue;
                            };
                            for ci in 0..cg {
                                let xv = xd[((b * h + iy) * wi + ix) * c + group * cg + ci];
                                let wv = wd[((ky * kw + kx) * cg + ci) * co + o];
                                acc += xv * wv;
                            }
                        }
                    }
                    out[((b * oh + oy) * ow + ox) * co + o] = acc;
                }
            }
        }
    }
    out
}

/// `ConvTranspose2d`: `x` NHWC with `C` channels, `w` `(KH, KW, CO, C)`. Scatters
/// `x[n, iy, ix, ci] * w[ky, kx, co, ci]` into `full[n, iy*sh + ky*dh, ix*sw + kx*dw, co]`
/// (full size `(H-1)*sh + dh*(KH-1) + 1 + out_pad`), then crops `pad.top` rows and `pad.left`
/// columns off the front, keeping the output's size.
pub(super) fn conv_transpose2d(
    geom: &ConvGeometry,
    out_pad: (usize, usize),
    x: Arg,
    w: Arg,
    out_shape: &[usize],
) -> Vec<f64> {
    let ((xs, xd), (ws, wd)) = (x, w);
    let (n, h, wi, c) = (xs[0], xs[1], xs[2], xs[3]);
    let (kh, kw, co) = (ws[0], ws[1], ws[2]);
    let (sh, sw) = geom.stride;
    let (dh, dw) = geom.dilation;
    let full_h = (h - 1) * sh + dh * (kh - 1) + 1 + out_pad.0;
    let full_w = (wi - 1) * sw + dw * (kw - 1) + 1 + out_pad.1;
    let mut full = vec![0.0; n * full_h * full_w * co];
    for b in 0..n {
        for iy in 0..h {
            for ix in 0..wi {
                for ky in 0..kh {
                    for kx in 0..kw {
                        let (fy, fx) = (iy * sh + ky * dh, ix * sw + kx * dw);
                        for o in 0..co {
                            let mut acc = 0.0;
                            for ci in 0..c {
                                acc += xd[((b * h + iy) * wi + ix) * c + ci] * wd[((ky * kw + kx) * co + o) * c + ci];
                            }
                            full[((b * full_h + fy) * full_w + fx) * co + o] += acc;
                        }
                    }
                }
            }
        }
    }
    let (oh, ow) = (out_shape[1], out_shape[2]);
    let mut out = vec![0.0; n * oh * ow * co];
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                let src = ((b * full_h + oy + geom.pad.top) * full_w + ox + geom.pad.left) * co;
                let dst = ((b * oh + oy) * ow + ox) * co;
                out[dst..dst + co].copy_from_slice(&full[src..src + co]);
            }
        }
    }
    out
}

/// `MatMul`: `op(a) @ op(b)` for 2-D `a` and `b`, or for each matrix of a batch of them (3-D,
/// the flags transposing the last two axes), where `op` transposes when its flag is set.
pub(super) fn matmul(trans_a: bool, trans_b: bool, a: Arg, b: Arg, out_shape: &[usize]) -> Vec<f64> {
    let r = out_shape.len();
    let (batch, m, n) = (
        out_shape[..r - 2].iter().product::<usize>(),
        out_shape[r - 2],
        out_shape[r - 1],
    );
    let k = if trans_a { a.0[r - 2] } else { a.0[r - 1] };
    let mut out = vec![0.0; batch * m * n];
    for g in 0..batch {
        let (a, b) = (&a.1[g * m * k..(g + 1) * m * k], &b.1[g * k * n..(g + 1) * k * n]);
        let a_at = |i: usize, p: usize| if trans_a { a[p * m + i] } else { a[i * k + p] };
        let b_at = |p: usize, j: usize| if trans_b { b[j * k + p] } else { b[p * n + j] };
        for i in 0..m {
            for j in 0..n {
                out[(g * m + i) * n + j] = (0..k).map(|p| a_at(i, p) * b_at(p, j)).sum();
            }
        }
    }
    out
}

/// `PixelShuffleMatMul { block }`: output pixel `(i*bh + a, j*bw + b)`, channel `o`, is the dot
/// product of input pixel `(i, j)` with column `(a*bw + b)*O + o` of `k`.
pub(super) fn pixel_shuffle_matmul((bh, bw): (usize, usize), x: Arg, k: Arg, out_shape: &[usize]) -> Vec<f64> {
    let (n, h, w, c) = (x.0[0], x.0[1], x.0[2], x.0[3]);
    let o = out_shape[3];
    let cols = k.0[1];
    let (oh, ow) = (h * bh, w * bw);
    let mut out = vec![0.0; n * oh * ow * o];
    for b in 0..n {
        for i in 0..h {
            for j in 0..w {
                let px = &x.1[((b * h + i) * w + j) * c..][..c];
                for a in 0..bh {
                    for bb in 0..bw {
                        for oc in 0..o {
                            let col = (a * bw + bb) * o + oc;
                            let at = ((b * oh + i * bh + a) * ow + j * bw + bb) * o + oc;
                            out[at] = (0..c).map(|p| px[p] * k.1[p * cols + col]).sum();
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_close, dot, random, run_op};
    use super::super::{Feeds, evaluate};
    use crate::init::Rng;
    use crate::ir::{ConvGeometry, Graph, Op, Pad2d, TensorType};

    fn geom(stride: usize, dilation: usize, pad: Pad2d, groups: usize) -> Op {
        Op::Conv2d(ConvGeometry {
            stride: (stride, stride),
            dilation: (dilation, dilation),
            pad,
            groups,
        })
    }

    fn pad(top: usize, bottom: usize, left: usize, right: usize) -> Pad2d {
        Pad2d {
            top,
            bottom,
            left,
            right,
        }
    }

    /// `1..=n` as f64.
    fn iota(n: usize) -> Vec<f64> {
        (1..=n).map(|v| v as f64).collect()
    }

    #[test]
    fn conv_3x3_input_2x2_kernel_by_hand() {
        // x = [[1,2,3],[4,5,6],[7,8,9]], w = [[1,2],[3,4]] (no flip: correlation).
        // out[0,0] = 1*1 + 2*2 + 4*3 + 5*4 = 37    out[0,1] = 2*1 + 3*2 + 5*3 + 6*4 = 47
        // out[1,0] = 4*1 + 5*2 + 7*3 + 8*4 = 67    out[1,1] = 5*1 + 6*2 + 8*3 + 9*4 = 77
        let (shape, y) = run_op(
            geom(1, 1, Pad2d::default(), 1),
            &[(&[1, 3, 3, 1], &iota(9)), (&[2, 2, 1, 1], &iota(4))],
        );
        assert_eq!(shape, [1, 2, 2, 1]);
        assert_eq!(y, [37.0, 47.0, 67.0, 77.0]);
    }

    #[test]
    fn conv_stride_2_with_asymmetric_padding_by_hand() {
        // x[r,c] = 4r + c + 1 on a 4x4 image, w = [[1,2],[3,4]], stride 2, one row of padding on
        // top and one column on the left: out = (4 + 1 - 2) / 2 + 1 = 2 per axis.
        // out[0,0]: rows -1..0, cols -1..0: only x[0,0]=1 under w[1,1]=4                -> 4
        // out[0,1]: rows -1..0, cols 1..2: x[0,1]=2 under w[1,0]=3, x[0,2]=3 under 4    -> 18
        // out[1,0]: rows 1..2, cols -1..0: x[1,0]=5 under w[0,1]=2, x[2,0]=9 under 4    -> 46
        // out[1,1]: rows 1..2, cols 1..2: 6*1 + 7*2 + 10*3 + 11*4                        -> 94
        let (shape, y) = run_op(
            geom(2, 1, pad(1, 0, 1, 0), 1),
            &[(&[1, 4, 4, 1], &iota(16)), (&[2, 2, 1, 1], &iota(4))],
        );
        assert_eq!(shape, [1, 2, 2, 1]);
        assert_eq!(y, [4.0, 18.0, 46.0, 94.0]);
    }

    #[test]
    fn conv_same_padding_stride_2_by_hand() {
        // 3x3 input 1..9, 3x3 kernel of ones, padding 1 all round, stride 2: window sums of
        // the in-range 2x2 corners: 1+2+4+5, 2+3+5+6, 4+5+7+8, 5+6+8+9.
        let (shape, y) = run_op(
            geom(2, 1, pad(1, 1, 1, 1), 1),
            &[(&[1, 3, 3, 1], &iota(9)), (&[3, 3, 1, 1], &[1.0; 9])],
        );
        assert_eq!(shape, [1, 2, 2, 1]);
        assert_eq!(y, [12.0, 16.0, 24.0, 28.0]);
    }

    #[test]
    fn conv_dilation_2_by_hand() {
        // x[i,j] = 5i + j + 1 on 5x5, w = [[1,2],[3,4]] dilated by 2 (span 3): out is 3x3 with
        // out[i,j] = x[i,j] + 2 x[i,j+2] + 3 x[i+2,j] + 4 x[i+2,j+2] = 10 v + 82, v = x[i,j]
        // (x[i,j+2] = v + 2, x[i+2,j] = v + 10, x[i+2,j+2] = v + 12).
        let (shape, y) = run_op(
            geom(1, 2, Pad2d::default(), 1),
            &[(&[1, 5, 5, 1], &iota(25)), (&[2, 2, 1, 1], &iota(4))],
        );
        assert_eq!(shape, [1, 3, 3, 1]);
        assert_eq!(y, [92.0, 102.0, 112.0, 142.0, 152.0, 162.0, 192.0, 202.0, 212.0]);
    }

    #[test]
    fn conv_groups_2_by_hand() {
        // One pixel with channels [1,2,3,4], 1x1 kernel (1,1,2,2) = [[1,10],[2,20]], groups 2:
        // filter 0 sees channels 0,1: 1*1 + 2*2 = 5; filter 1 sees channels 2,3: 3*10 + 4*20 = 110.
        let (shape, y) = run_op(
            geom(1, 1, Pad2d::default(), 2),
            &[(&[1, 1, 1, 4], &iota(4)), (&[1, 1, 2, 2], &[1.0, 10.0, 2.0, 20.0])],
        );
        assert_eq!(shape, [1, 1, 1, 2]);
        assert_eq!(y, [5.0, 110.0]);
    }

    #[test]
    fn conv_sums_over_channels_and_keeps_filters_apart_by_hand() {
        // One pixel with channels [1,2], a 1x1 kernel (1,1,2,3) with w[ci][co] = [[1,2,3],[4,5,6]]:
        // out[co] = 1*w[0][co] + 2*w[1][co] = [9, 12, 15].
        let (_, y) = run_op(
            geom(1, 1, Pad2d::default(), 1),
            &[(&[1, 1, 1, 2], &[1.0, 2.0]), (&[1, 1, 2, 3], &iota(6))],
        );
        assert_eq!(y, [9.0, 12.0, 15.0]);
    }

    #[test]
    fn matmul_with_and_without_transposes_by_hand() {
        // [[1,2,3],[4,5,6]] @ [[7,8],[9,10],[11,12]] = [[58,64],[139,154]].
        let a = iota(6);
        let b: Vec<f64> = (7..=12).map(f64::from).collect();
        let a_t = [1.0, 4.0, 2.0, 5.0, 3.0, 6.0];
        let b_t = [7.0, 9.0, 11.0, 8.0, 10.0, 12.0];
        let want = [58.0, 64.0, 139.0, 154.0];
        let mm = |trans_a, trans_b| Op::MatMul { trans_a, trans_b };
        assert_eq!(
            run_op(mm(false, false), &[(&[2, 3], &a), (&[3, 2], &b)]),
            (vec![2, 2], want.to_vec())
        );
        assert_eq!(run_op(mm(true, false), &[(&[3, 2], &a_t), (&[3, 2], &b)]).1, want);
        assert_eq!(run_op(mm(false, true), &[(&[2, 3], &a), (&[2, 3], &b_t)]).1, want);
        assert_eq!(run_op(mm(true, true), &[(&[3, 2], &a_t), (&[2, 3], &b_t)]).1, want);
        // A batch of two matrices: the product above, then iota(6) as (2, 3) times as (3, 2).
        let a2: Vec<f64> = a.iter().copied().chain(iota(6)).collect();
        let b2: Vec<f64> = b.iter().copied().chain(iota(6)).collect();
        let (shape, y) = run_op(mm(false, false), &[(&[2, 2, 3], &a2), (&[2, 3, 2], &b2)]);
        assert_eq!(shape, [2, 2, 2]);
        assert_eq!(y[..4], want);
        // Second batch: [[1,2,3],[4,5,6]] @ [[1,2],[3,4],[5,6]] = [[22,28],[49,64]].
        assert_eq!(y[4..], [22.0, 28.0, 49.0, 64.0]);
        let (shape, y) = run_op(mm(true, false), &[(&[2, 3, 2], &b2), (&[2, 3, 2], &b2)]);
        assert_eq!(shape, [2, 2, 2]);
        // Gram matrices b^T b: [[7,8],[9,10],[11,12]] gives [[251,278],[278,308]], and
        // [[1,2],[3,4],[5,6]] gives [[35,44],[44,56]].
        assert_eq!(y, [251.0, 278.0, 278.0, 308.0, 35.0, 44.0, 44.0, 56.0]);
    }

    #[test]
    fn conv_transpose_stride_2_by_hand() {
        // x = [[1,2],[3,4]], w = [[1,2],[3,4]], stride 2: each input pixel stamps x * w into its
        // own 2x2 block of the 4x4 output.
        let op = |pad, out_pad| Op::ConvTranspose2d {
            geom: ConvGeometry {
                stride: (2, 2),
                dilation: (1, 1),
                pad,
                groups: 1,
            },
            out_pad,
        };
        let args: [(&[usize], &[f64]); 2] = [
            (&[1, 2, 2, 1], &[1.0, 2.0, 3.0, 4.0]),
            (&[2, 2, 1, 1], &[1.0, 2.0, 3.0, 4.0]),
        ];
        let (shape, y) = run_op(op(Pad2d::default(), (0, 0)), &args);
        assert_eq!(shape, [1, 4, 4, 1]);
        #[rustfmt::skip]
        let full = [
            1.0, 2.0, 2.0, 4.0,
            3.0, 4.0, 6.0, 8.0,
            3.0, 6.0, 4.0, 8.0,
            9.0, 12.0, 12.0, 16.0,
        ];
        assert_eq!(y, full);
        // Padding 1 all round crops the border: the centre 2x2.
        let (shape, y) = run_op(op(pad(1, 1, 1, 1), (0, 0)), &args);
        assert_eq!(shape, [1, 2, 2, 1]);
        assert_eq!(y, [4.0, 6.0, 6.0, 4.0]);
        // out_pad adds a zero row and column at the end.
        let (shape, y) = run_op(op(Pad2d::default(), (1, 1)), &args);
        assert_eq!(shape, [1, 5, 5, 1]);
        for r in 0..5 {
            for c in 0..5 {
                let want = if r < 4 && c < 4 { full[r * 4 + c] } else { 0.0 };
                assert_eq!(y[r * 5 + c], want, "row {r} column {c}");
            }
        }
    }

    #[test]
    fn conv_transpose_stride_1_overlaps_add_by_hand() {
        // out[a,b] = sum_{i,j} x[i,j] w[a-i, b-j] with x = w = [[1,2],[3,4]]:
        // [[1, 2+2, 4], [3+3, 4+6+6+4, 8+8], [9, 12+12, 16]].
        let op = Op::ConvTranspose2d {
            geom: ConvGeometry {
                stride: (1, 1),
                dilation: (1, 1),
                pad: Pad2d::default(),
                groups: 1,
            },
            out_pad: (0, 0),
        };
        let (shape, y) = run_op(op, &[(&[1, 2, 2, 1], &iota(4)), (&[2, 2, 1, 1], &iota(4))]);
        assert_eq!(shape, [1, 3, 3, 1]);
        assert_eq!(y, [1.0, 4.0, 4.0, 6.0, 20.0, 16.0, 9.0, 24.0, 16.0]);
    }

    #[test]
    fn conv_with_a_1x1_kernel_is_a_matmul_of_the_reshaped_input() {
        let mut rng = Rng::new(1);
        let (n, h, w, c, co) = (2, 3, 5, 3, 4);
        let mut g = Graph::new();
        let x = g.input("x", TensorType::f32(vec![n, h, w, c])).unwrap();
        let k = g.param("conv/kernel", &[1, 1, c, co], true, "conv").unwrap();
        let conv = g.push(geom(1, 1, Pad2d::default(), 1), &[x, k], "conv").unwrap();
        let x2 = g.reshape(x, &[n * h * w, c], "mm").unwrap();
        let k2 = g.reshape(k, &[c, co], "mm").unwrap();
        let mm = g
            .push(
                Op::MatMul {
                    trans_a: false,
                    trans_b: false,
                },
                &[x2, k2],
                "mm",
            )
            .unwrap();
        g.outputs = vec![conv, mm];
        let feeds: Feeds = [
            ("x".to_string(), random(&mut rng, n * h * w * c)),
            ("conv/kernel".to_string(), random(&mut rng, c * co)),
        ]
        .into_iter()
        .collect();
        let out = evaluate(&g, &feeds).unwrap();
        assert_close(&out[0], &out[1], 1e-12);
    }

    #[test]
    fn grouped_conv_is_the_concat_of_per_group_convs() {
        let mut rng = Rng::new(2);
        let (n, h, w, c, co, groups, kh, kw) = (2, 6, 5, 6, 4, 2, 3, 2);
        let (cg, cog) = (c / groups, co / groups);
        let g_full = ConvGeometry {
            stride: (2, 1),
            dilation: (1, 2),
            pad: pad(1, 1, 0, 2),
            groups,
        };
        let g_one = ConvGeometry { groups: 1, ..g_full };
        let xv = random(&mut rng, n * h * w * c);
        let wv = random(&mut rng, kh * kw * cg * co);
        let mut g = Graph::new();
        let x = g.input("x", TensorType::f32(vec![n, h, w, c])).unwrap();
        let k = g.param("conv/kernel", &[kh, kw, cg, co], true, "conv").unwrap();
        let whole = g.push(Op::Conv2d(g_full), &[x, k], "conv").unwrap();
        let mut feeds: Feeds = [("x".to_string(), xv.clone()), ("conv/kernel".to_string(), wv.clone())].into();
        let mut parts = Vec::new();
        for grp in 0..groups {
            // Channels grp*cg.. of x and filters grp*cog.. of w, sliced on the host.
            let xg: Vec<f64> = xv
                .chunks(c)
                .flat_map(|px| px[grp * cg..(grp + 1) * cg].to_vec())
                .collect();
            let wg: Vec<f64> = wv
                .chunks(co)
                .flat_map(|row| row[grp * cog..(grp + 1) * cog].to_vec())
                .collect();
            let xi = g.input(&format!("x{grp}"), TensorType::f32(vec![n, h, w, cg])).unwrap();
            let ki = g.param(&format!("k{grp}"), &[kh, kw, cg, cog], true, "part").unwrap();
            feeds.insert(format!("x{grp}"), xg);
            feeds.insert(format!("k{grp}"), wg);
            parts.push(g.push(Op::Conv2d(g_one), &[xi, ki], "part").unwrap());
        }
        let joined = g.push(Op::Concat { axis: 3 }, &parts, "join").unwrap();
        g.outputs = vec![whole, joined];
        let out = evaluate(&g, &feeds).unwrap();
        assert_eq!(g.shape(whole), g.shape(joined));
        assert_close(&out[0], &out[1], 1e-12);
    }

    /// `<conv(x, w), y> == <x, conv_transpose(y, w)>` for one geometry, with `out_pad` chosen so
    /// that the transpose's output has the shape of `x`.
    fn check_adjoint(seed: u64, x_shape: [usize; 4], k: (usize, usize), co: usize, geom: ConvGeometry) {
        let mut rng = Rng::new(seed);
        let [n, h, w, c] = x_shape;
        let mut g = Graph::new();
        let x = g.input("x", TensorType::f32(x_shape.to_vec())).unwrap();
        let kern = g.param("conv/kernel", &[k.0, k.1, c, co], true, "conv").unwrap();
        let y = g.push(Op::Conv2d(geom), &[x, kern], "conv").unwrap();
        let y_shape = g.shape(y).to_vec();
        let (oh, ow) = (y_shape[1], y_shape[2]);
        let full_h = (oh - 1) * geom.stride.0 + geom.dilation.0 * (k.0 - 1) + 1;
        let full_w = (ow - 1) * geom.stride.1 + geom.dilation.1 * (k.1 - 1) + 1;
        let out_pad = (
            h + geom.pad.top + geom.pad.bottom - full_h,
            w + geom.pad.left + geom.pad.right - full_w,
        );
        let dy = g.input("dy", TensorType::f32(y_shape.clone())).unwrap();
        // The same kernel array: (KH, KW, C, CO) is (kh, kw, out, in) for the transpose.
        let dx = g
            .push(Op::ConvTranspose2d { geom, out_pad }, &[dy, kern], "convT")
            .unwrap();
        assert_eq!(g.shape(dx), [n, h, w, c]);
        g.outputs = vec![y, dx];
        let xv = random(&mut rng, n * h * w * c);
        let dyv = random(&mut rng, y_shape.iter().product());
        let feeds: Feeds = [
            ("x".to_string(), xv.clone()),
            ("dy".to_string(), dyv.clone()),
            ("conv/kernel".to_string(), random(&mut rng, k.0 * k.1 * c * co)),
        ]
        .into();
        let out = evaluate(&g, &feeds).unwrap();
        let (lhs, rhs) = (dot(&out[0], &dyv), dot(&xv, &out[1]));
        assert!(
            (lhs - rhs).abs() <= 1e-10 * lhs.abs().max(1.0),
            "seed {seed}: <conv x, y> = {lhs}, <x, convT y> = {rhs}"
        );
        // And the check is not vacuous.
        assert!(lhs.abs() > 1e-6);
    }

    #[test]
    fn conv_transpose_is_the_adjoint_of_conv() {
        let g = |stride: (usize, usize), dilation: (usize, usize), pad: Pad2d| ConvGeometry {
            stride,
            dilation,
            pad,
            groups: 1,
        };
        check_adjoint(10, [2, 5, 5, 3], (3, 3), 4, g((1, 1), (1, 1), Pad2d::default()));
        check_adjoint(11, [1, 7, 6, 2], (3, 3), 3, g((2, 2), (1, 1), pad(1, 1, 1, 1)));
        check_adjoint(12, [2, 8, 7, 3], (3, 2), 2, g((2, 3), (1, 1), pad(0, 1, 1, 0)));
        check_adjoint(13, [1, 9, 9, 2], (3, 3), 2, g((1, 1), (2, 2), pad(2, 2, 2, 2)));
        check_adjoint(14, [1, 10, 8, 1], (2, 3), 3, g((3, 2), (2, 1), pad(1, 2, 0, 1)));
    }
}
