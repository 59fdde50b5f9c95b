//! Elementwise ops: unary functions, their derivatives, broadcasting binary functions and
//! training-mode dropout.

use super::{Arg, unravel};
use crate::ir::{BinaryOp, ElemExpr, UnaryOp, dropout_uniform, numel};

/// `Unary`: applies `u` to every element.
pub(super) fn unary(u: UnaryOp, x: &[f64]) -> Vec<f64> {
    x.iter().map(|&v| apply_unary(u, v)).collect()
}

fn apply_unary(u: UnaryOp, x: f64) -> f64 {
    match u {
        UnaryOp::Relu => x.max(0.0),
        UnaryOp::Relu6 => x.clamp(0.0, 6.0),
        UnaryOp::LeakyRelu(alpha) => {
            if x >= 0.0 {
                x
            } else {
                f64::from(alpha) * x
            }
        }
        UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Neg => -x,
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Square => x * x,
        UnaryOp::Abs => x.abs(),
        UnaryOp::Scale(c) => x * f64::from(c),
        UnaryOp::AddScalar(c) => x + f64::from(c),
        UnaryOp::Clip(lo, hi) => {
            if x.is_nan() {
                x
            } else {
                x.max(f64::from(lo)).min(f64::from(hi))
            }
        }
        UnaryOp::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
        UnaryOp::HardSwish => x * (x + 3.0).clamp(0.0, 6.0) / 6.0,
        UnaryOp::Elu(alpha) => {
            if x > 0.0 {
                x
            } else {
                f64::from(alpha) * x.exp_m1()
            }
        }
    }
}

/// `UnaryGrad`: `dy * f'(x)` for every element.
pub(super) fn unary_grad(u: UnaryOp, x: &[f64], dy: &[f64]) -> Vec<f64> {
    x.iter().zip(dy).map(|(&x, &d)| d * derivative(u, x)).collect()
}

/// `f'(x)` of a unary op. At the kinks of the piecewise ops it takes the one-sided value the
/// forward's comparison picks: relu' is 0 at 0, relu6' is 0 at 0 and 6, leaky relu' is 1 at 0
/// (the forward tests `x >= 0`), abs' is 0 at 0, clip' is 1 at both bounds, hard swish' is 0
/// at -3 and 1 at 3, elu' is `alpha` at 0.
fn derivative(u: UnaryOp, x: f64) -> f64 {
    let step = |on: bool| if on { 1.0 } else { 0.0 };
    match u {
        UnaryOp::Relu => step(x > 0.0),
        UnaryOp::Relu6 => step(x > 0.0 && x < 6.0),
        UnaryOp::LeakyRelu(alpha) => {
            if x >= 0.0 {
                1.0
            } else {
                f64::from(alpha)
            }
        }
        UnaryOp::Sigmoid => {
            let s = 1.0 / (1.0 + (-x).exp());
            s * (1.0 - s)
        }
        UnaryOp::Tanh => 1.0 - x.tanh().powi(2),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => 1.0 / x,
        UnaryOp::Neg => -1.0,
        UnaryOp::Sqrt => 0.5 / x.sqrt(),
        UnaryOp::Square => 2.0 * x,
        UnaryOp::Abs => step(x > 0.0) - step(x < 0.0),
        UnaryOp::Scale(c) => f64::from(c),
        UnaryOp::AddScalar(_) => 1.0,
        UnaryOp::Clip(lo, hi) => step(f64::from(lo) <= x && x <= f64::from(hi)),
        UnaryOp::Softplus => 1.0 / (1.0 + (-x).exp()),
        UnaryOp::HardSwish => (x + 3.0).clamp(0.0, 6.0) / 6.0 + x * step(x > -3.0 && x < 3.0) / 6.0,
        UnaryOp::Elu(alpha) => {
            if x > 0.0 {
                1.0
            } else {
                f64::from(alpha) * x.exp()
            }
        }
    }
}

/// Training-mode `Dropout` of `x` with the integer `seed` (given as an f64): element `i` is
/// kept, scaled by `1 / (1 - rate)`, when `dropout_uniform(seed, i) >= rate`, else zeroed.
pub(super) fn dropout(rate: f32, x: &[f64], seed: f64) -> Vec<f64> {
    let seed = seed as u32;
    let scale = 1.0 / (1.0 - f64::from(rate));
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            if dropout_uniform(seed, i as u32) >= rate {
                v * scale
            } else {
                0.0
            }
        })
        .collect()
}

fn apply_binary(op: BinaryOp, a: f64, b: f64) -> f64 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Max => a.max(b),
        BinaryOp::Min => a.min(b),
        BinaryOp::Ge => f64::from(u8::from(a >= b)),
        BinaryOp::Eq => f64::from(u8::from(a == b)),
        BinaryOp::PRelu => {
            if a >= 0.0 {
                a
            } else {
                b * a
            }
        }
    }
}

/// `Binary` with numpy broadcasting: shapes are aligned at the last axis, and an axis of length
/// 1 (or a missing leading axis) repeats along the output's axis.
pub(super) fn binary(op: BinaryOp, a: Arg, b: Arg, out_shape: &[usize]) -> Vec<f64> {
    let (a_strides, b_strides) = (broadcast_strides(a.0, out_shape), broadcast_strides(b.0, out_shape));
    let mut index = vec![0; out_shape.len()];
    (0..numel(out_shape))
        .map(|i| {
            unravel(i, out_shape, &mut index);
            let ia: usize = index.iter().zip(&a_strides).map(|(i, s)| i * s).sum();
            let ib: usize = index.iter().zip(&b_strides).map(|(i, s)| i * s).sum();
            apply_binary(op, a.1[ia], b.1[ib])
        })
        .collect()
}

/// A fused elementwise expression over broadcast inputs.
pub(super) fn elementwise(expr: &ElemExpr, inputs: &[Arg], out_shape: &[usize]) -> Vec<f64> {
    let strides: Vec<Vec<usize>> = inputs.iter().map(|a| broadcast_strides(a.0, out_shape)).collect();
    let mut index = vec![0; out_shape.len()];
    let mut values = vec![0.0; inputs.len()];
    (0..numel(out_shape))
        .map(|i| {
            unravel(i, out_shape, &mut index);
            for (k, (a, s)) in inputs.iter().zip(&strides).enumerate() {
                values[k] = a.1[index.iter().zip(s).map(|(i, s)| i * s).sum::<usize>()];
            }
            eval_expr(expr, &values)
        })
        .collect()
}

fn eval_expr(e: &ElemExpr, v: &[f64]) -> f64 {
    match e {
        ElemExpr::Input(i) => v[*i],
        ElemExpr::Const(c) => f64::from(*c),
        ElemExpr::Unary(u, a) => apply_unary(*u, eval_expr(a, v)),
        ElemExpr::Binary(b, x, y) => apply_binary(*b, eval_expr(x, v), eval_expr(y, v)),
        ElemExpr::UnaryGrad(u, x, dy) => eval_expr(dy, v) * derivative(*u, eval_expr(x, v)),
        ElemExpr::Select(c, a, b) => {
            if eval_expr(c, v) != 0.0 {
                eval_expr(a, v)
            } else {
                eval_expr(b, v)
            }
        }
    }
}

/// Strides of `shape` read as an array of the (broadcast) `out_shape`: 0 along axes where
/// `shape` has length 1 or no axis at all, the row-major stride otherwise.
pub(super) fn broadcast_strides(shape: &[usize], out_shape: &[usize]) -> Vec<usize> {
    let offset = out_shape.len() - shape.len();
    let mut s = vec![0; out_shape.len()];
    let mut stride = 1;
    for (axis, &d) in shape.iter().enumerate().rev() {
        if d != 1 {
            s[offset + axis] = stride;
        }
        stride *= d;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_close, run_op};
    use crate::ir::{BinaryOp, Op, UnaryOp};

    fn un(u: UnaryOp, x: &[f64]) -> Vec<f64> {
        run_op(Op::Unary(u), &[(&[x.len()], x)]).1
    }

    #[test]
    fn piecewise_unary_ops_by_hand() {
        let x = [-2.0, -0.5, 0.0, 0.5, 7.0];
        assert_eq!(un(UnaryOp::Relu, &x), [0.0, 0.0, 0.0, 0.5, 7.0]);
        assert_eq!(un(UnaryOp::Relu6, &x), [0.0, 0.0, 0.0, 0.5, 6.0]);
        assert_eq!(un(UnaryOp::LeakyRelu(0.25), &x), [-0.5, -0.125, 0.0, 0.5, 7.0]);
        assert_eq!(un(UnaryOp::Neg, &x), [2.0, 0.5, 0.0, -0.5, -7.0]);
        assert_eq!(un(UnaryOp::Square, &x), [4.0, 0.25, 0.0, 0.25, 49.0]);
        assert_eq!(un(UnaryOp::Abs, &x), [2.0, 0.5, 0.0, 0.5, 7.0]);
        assert_eq!(un(UnaryOp::Scale(2.5), &x), [-5.0, -1.25, 0.0, 1.25, 17.5]);
        assert_eq!(un(UnaryOp::AddScalar(1.5), &x), [-0.5, 1.0, 1.5, 2.0, 8.5]);
    }

    #[test]
    fn transcendental_unary_ops_at_known_points() {
        let (ln2, ln3, ln5) = (2f64.ln(), 3f64.ln(), 5f64.ln());
        // sigmoid(ln 3) = 1 / (1 + 1/3) = 3/4; sigmoid(-ln 3) = 1/4; sigmoid(0) = 1/2.
        assert_close(&un(UnaryOp::Sigmoid, &[ln3, -ln3, 0.0]), &[0.75, 0.25, 0.5], 1e-15);
        // tanh(ln 2) = (2 - 1/2) / (2 + 1/2) = 3/5.
        assert_close(&un(UnaryOp::Tanh, &[ln2, -ln2, 0.0]), &[0.6, -0.6, 0.0], 1e-15);
        assert_close(&un(UnaryOp::Exp, &[ln5, 0.0, -ln2]), &[5.0, 1.0, 0.5], 1e-15);
        assert_close(&un(UnaryOp::Log, &[5.0, 1.0, 0.5]), &[ln5, 0.0, -ln2], 1e-15);
        assert_eq!(un(UnaryOp::Sqrt, &[4.0, 0.25, 0.0]), [2.0, 0.5, 0.0]);
    }

    fn grad(u: UnaryOp, x: &[f64], dy: &[f64]) -> Vec<f64> {
        run_op(Op::UnaryGrad(u), &[(&[x.len()], x), (&[dy.len()], dy)]).1
    }

    #[test]
    fn unary_gradients_by_hand() {
        // dy = 2 everywhere, so every result is twice the derivative.
        let x = [-2.0, 0.0, 0.5, 6.0, 7.0];
        let dy = [2.0; 5];
        assert_eq!(grad(UnaryOp::Relu, &x, &dy), [0.0, 0.0, 2.0, 2.0, 2.0]);
        assert_eq!(grad(UnaryOp::Relu6, &x, &dy), [0.0, 0.0, 2.0, 0.0, 0.0]);
        assert_eq!(grad(UnaryOp::LeakyRelu(0.25), &x, &dy), [0.5, 2.0, 2.0, 2.0, 2.0]);
        assert_eq!(grad(UnaryOp::Neg, &x, &dy), [-2.0; 5]);
        assert_eq!(grad(UnaryOp::Square, &x, &dy), [-8.0, 0.0, 2.0, 24.0, 28.0]);
        assert_eq!(grad(UnaryOp::Abs, &x, &dy), [-2.0, 0.0, 2.0, 2.0, 2.0]);
        assert_eq!(grad(UnaryOp::Scale(-1.5), &x, &dy), [-3.0; 5]);
        assert_eq!(grad(UnaryOp::AddScalar(4.0), &x, &dy), [2.0; 5]);
        // dy is multiplied in elementwise.
        assert_eq!(
            grad(UnaryOp::Square, &[1.0, 2.0, 3.0], &[1.0, -1.0, 0.5]),
            [2.0, -4.0, 3.0]
        );
        // sigmoid(ln 3) = 3/4: s(1 - s) = 3/16; tanh(ln 2) = 3/5: 1 - t^2 = 16/25.
        let (ln2, ln3) = (2f64.ln(), 3f64.ln());
        assert_close(&grad(UnaryOp::Sigmoid, &[ln3, 0.0], &[2.0, 2.0]), &[0.375, 0.5], 1e-15);
        assert_close(&grad(UnaryOp::Tanh, &[ln2, 0.0], &[2.0, 2.0]), &[1.28, 2.0], 1e-15);
        assert_close(&grad(UnaryOp::Exp, &[ln3, 0.0], &[2.0, 2.0]), &[6.0, 2.0], 1e-15);
        assert_close(&grad(UnaryOp::Log, &[4.0, 0.5], &[2.0, 2.0]), &[0.5, 4.0], 1e-15);
        assert_close(&grad(UnaryOp::Sqrt, &[4.0, 0.25], &[2.0, 2.0]), &[0.5, 2.0], 1e-15);
    }

    fn bin(op: BinaryOp, a: (&[usize], &[f64]), b: (&[usize], &[f64])) -> (Vec<usize>, Vec<f64>) {
        run_op(Op::Binary(op), &[a, b])
    }

    #[test]
    fn binary_ops_on_equal_shapes_by_hand() {
        let a: (&[usize], &[f64]) = (&[4], &[1.0, -2.0, 3.0, 8.0]);
        let b: (&[usize], &[f64]) = (&[4], &[4.0, 2.0, -3.0, 2.0]);
        assert_eq!(bin(BinaryOp::Add, a, b).1, [5.0, 0.0, 0.0, 10.0]);
        assert_eq!(bin(BinaryOp::Sub, a, b).1, [-3.0, -4.0, 6.0, 6.0]);
        assert_eq!(bin(BinaryOp::Mul, a, b).1, [4.0, -4.0, -9.0, 16.0]);
        assert_eq!(bin(BinaryOp::Div, a, b).1, [0.25, -1.0, -1.0, 4.0]);
        assert_eq!(bin(BinaryOp::Max, a, b).1, [4.0, 2.0, 3.0, 8.0]);
        assert_eq!(bin(BinaryOp::Min, a, b).1, [1.0, -2.0, -3.0, 2.0]);
    }

    #[test]
    fn broadcasting_by_hand() {
        // a = [[1,2,3],[4,5,6]].
        let a: (&[usize], &[f64]) = (&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        // A row vector repeats down the rows, on either side.
        let row: (&[usize], &[f64]) = (&[3], &[10.0, 20.0, 30.0]);
        assert_eq!(
            bin(BinaryOp::Add, a, row),
            (vec![2, 3], vec![11.0, 22.0, 33.0, 14.0, 25.0, 36.0])
        );
        assert_eq!(
            bin(BinaryOp::Sub, row, a),
            (vec![2, 3], vec![9.0, 18.0, 27.0, 6.0, 15.0, 24.0])
        );
        // A column repeats along the columns.
        let col: (&[usize], &[f64]) = (&[2, 1], &[10.0, 100.0]);
        assert_eq!(
            bin(BinaryOp::Mul, a, col),
            (vec![2, 3], vec![10.0, 20.0, 30.0, 400.0, 500.0, 600.0])
        );
        // (3,1) against (1,4): the outer product.
        let (shape, y) = bin(
            BinaryOp::Mul,
            (&[3, 1], &[1.0, 2.0, 3.0]),
            (&[1, 4], &[1.0, 10.0, 100.0, 1000.0]),
        );
        assert_eq!(shape, [3, 4]);
        assert_eq!(
            y,
            [
                1.0, 10.0, 100.0, 1000.0, 2.0, 20.0, 200.0, 2000.0, 3.0, 30.0, 300.0, 3000.0
            ]
        );
        // (2,1,3) against (2,1) gives (2,2,3): out[i,j,k] = a[i,0,k] - c[j,0].
        let (shape, y) = bin(BinaryOp::Sub, (&[2, 1, 3], a.1), (&[2, 1], &[0.0, 10.0]));
        assert_eq!(shape, [2, 2, 3]);
        #[rustfmt::skip]
        let want = [
            1.0, 2.0, 3.0, -9.0, -8.0, -7.0,
            4.0, 5.0, 6.0, -6.0, -5.0, -4.0,
        ];
        assert_eq!(y, want);
        // A one-element tensor against a 4-D one.
        let (shape, y) = bin(BinaryOp::Div, (&[1, 2, 1, 3], a.1), (&[1], &[2.0]));
        assert_eq!(shape, [1, 2, 1, 3]);
        assert_eq!(y, [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]);
    }

    #[test]
    fn clip_softplus_hard_swish_and_elu_by_hand() {
        let x = [-4.0, -3.0, -0.5, 0.0, 1.0, 3.0, 7.0];
        assert_eq!(un(UnaryOp::Clip(-1.0, 2.0), &x), [-1.0, -1.0, -0.5, 0.0, 1.0, 2.0, 2.0]);
        assert_eq!(
            un(UnaryOp::Clip(f32::NEG_INFINITY, 0.5), &x),
            [-4.0, -3.0, -0.5, 0.0, 0.5, 0.5, 0.5]
        );
        // x * clamp(x + 3, 0, 6) / 6: 0 below -3, x beyond 3, 1 * 4 / 6 at 1, -0.5 * 2.5 / 6.
        assert_close(
            &un(UnaryOp::HardSwish, &x),
            &[0.0, 0.0, -0.5 * 2.5 / 6.0, 0.0, 4.0 / 6.0, 3.0, 7.0],
            1e-15,
        );
        // elu(-ln 2) = alpha * (1/2 - 1).
        let ln2 = 2f64.ln();
        assert_close(&un(UnaryOp::Elu(0.5), &[-ln2, 0.0, 2.0]), &[-0.25, 0.0, 2.0], 1e-15);
        // softplus(ln 3) = ln 4, softplus(-ln 3) = ln(4/3), softplus(0) = ln 2; far out it is x
        // (no overflow) and exp(x) (no cancellation to 0).
        let ln3 = 3f64.ln();
        assert_close(
            &un(UnaryOp::Softplus, &[ln3, -ln3, 0.0]),
            &[4f64.ln(), (4.0f64 / 3.0).ln(), ln2],
            1e-15,
        );
        assert_eq!(un(UnaryOp::Softplus, &[800.0])[0], 800.0);
        let tiny = un(UnaryOp::Softplus, &[-50.0])[0];
        assert!((tiny / (-50f64).exp() - 1.0).abs() < 1e-12, "{tiny}");
    }

    #[test]
    fn nan_stays_nan_through_the_new_unary_ops() {
        for u in [
            UnaryOp::Clip(-1.0, 1.0),
            UnaryOp::Softplus,
            UnaryOp::HardSwish,
            UnaryOp::Elu(1.0),
        ] {
            assert!(un(u, &[f64::NAN])[0].is_nan(), "{}", u.name());
        }
        // The gradient of clip at NaN is 0 (NaN is not inside the bounds).
        assert_eq!(grad(UnaryOp::Clip(-1.0, 1.0), &[f64::NAN], &[1.0]), [0.0]);
    }

    #[test]
    fn prelu_and_select_by_hand() {
        // PRelu: slope per column; 0 is on the identity side.
        let (_, y) = bin(
            BinaryOp::PRelu,
            (&[2, 2], &[-2.0, 3.0, 0.0, -4.0]),
            (&[2], &[0.5, 0.25]),
        );
        assert_eq!(y, [-1.0, 3.0, 0.0, -1.0]);
        // Select with a column condition, a row a and a scalar b.
        let (shape, y) = run_op(
            Op::Select,
            &[(&[2, 1], &[1.0, 0.0]), (&[3], &[1.0, 2.0, 3.0]), (&[1], &[-7.0])],
        );
        assert_eq!(shape, [2, 3]);
        assert_eq!(y, [1.0, 2.0, 3.0, -7.0, -7.0, -7.0]);
    }
}
