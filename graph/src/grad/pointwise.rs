//! VJPs of elementwise ops.
//!
//! | op | gradient of `a` | gradient of `b` |
//! | --- | --- | --- |
//! | `Unary(Neg)`, `Unary(Scale(c))` | the same op of `dy` | |
//! | `Unary(AddScalar(c))` | `dy` | |
//! | `Unary(Relu)`, `Relu6`, `LeakyRelu(a > 0)` | `UnaryGrad(u)(y, dy)` (same value, reads the output) | |
//! | any other `Unary(u)` | `UnaryGrad(u)(x, dy)` | |
//! | `Add` | `sum_to(dy)` | `sum_to(dy)` |
//! | `Sub` | `sum_to(dy)` | `Neg(sum_to(dy))` |
//! | `Mul` | `sum_to(dy * b)` | `sum_to(dy * a)` |
//! | `Div` | `sum_to(dy / b)` | `Neg(sum_to(dy * y / b))` |
//! | `Max` | `sum_to(dy * m)`, `m = Ge(a, b)` | `sum_to(dy - dy * m)` |
//! | `Min` | `sum_to(dy * m)`, `m = Ge(b, a)` | `sum_to(dy - dy * m)` |
//! | `Ge`, `Eq` | none (zero) | none (zero) |
//! | `PRelu` | `sum_to(Select(m, dy, dy * b))`, `m = Ge(a, 0)` | `sum_to(Select(m, 0, dy * a))` |
//! | `Select(c, a, b)` | `a`: `sum_to(Select(c, dy, 0))` | `b`: `sum_to(Select(c, 0, dy))`; `c` none |
//!
//! `sum_to` sums over the axes an input was broadcast along ([`super::sum_to_shape`]). At a tie
//! of `Max` or `Min` the whole gradient goes to `a`.

use super::{Grads, Vjp};
use crate::error::Result;
use crate::ir::{BinaryOp, Op, UnaryOp};

/// `Unary(u)` of `x`.
pub(super) fn unary(v: &mut Vjp, u: UnaryOp) -> Result<Grads> {
    let (x, y, dy) = (v.x(0), v.id, v.dy);
    // The piecewise-linear activations have the same derivative at their output as at their
    // input (`y > 0` exactly when `x > 0`, and so on), so their gradient reads `y`: then the
    // forward pass needs only `y`, and a convolution's result feeds nothing but its
    // activation, which the epilogue fusion moves into the convolution's store.
    let from_output = match u {
        UnaryOp::Relu | UnaryOp::Relu6 => true,
        UnaryOp::LeakyRelu(alpha) => alpha > 0.0,
        _ => false,
    };
    let dx = v.when(0, |v| match u {
        UnaryOp::Neg | UnaryOp::Scale(_) => v.unary(u, dy),
        UnaryOp::AddScalar(_) => Ok(dy),
        _ if from_output => v.push(Op::UnaryGrad(u), &[y, dy]),
        _ => v.push(Op::UnaryGrad(u), &[x, dy]),
    })?;
    Ok(vec![dx])
}

/// `Binary(op)` of `a` and `b`, with broadcasting.
pub(super) fn binary(v: &mut Vjp, op: BinaryOp) -> Result<Grads> {
    let (a, b, y, dy) = (v.x(0), v.x(1), v.id, v.dy);
    let (a_shape, b_shape) = (v.shape(a), v.shape(b));
    let (da, db) = match op {
        BinaryOp::Add => (
            v.when(0, |v| v.sum_to(dy, &a_shape))?,
            v.when(1, |v| v.sum_to(dy, &b_shape))?,
        ),
        BinaryOp::Sub => (
            v.when(0, |v| v.sum_to(dy, &a_shape))?,
            v.when(1, |v| {
                let s = v.sum_to(dy, &b_shape)?;
                v.unary(UnaryOp::Neg, s)
            })?,
        ),
        BinaryOp::Mul => (
            v.when(0, |v| {
                let p = v.binary(BinaryOp::Mul, dy, b)?;
                v.sum_to(p, &a_shape)
            })?,
            v.when(1, |v| {
                let p = v.binary(BinaryOp::Mul, dy, a)?;
                v.sum_to(p, &b_shape)
            })?,
        ),
        BinaryOp::Div => (
            v.when(0, |v| {
                let q = v.binary(BinaryOp::Div, dy, b)?;
                v.sum_to(q, &a_shape)
            })?,
            // d(a / b)/db = -a / b^2 = -y / b.
            v.when(1, |v| {
                let p = v.binary(BinaryOp::Mul, dy, y)?;
                let q = v.binary(BinaryOp::Div, p, b)?;
                let s = v.sum_to(q, &b_shape)?;
                v.unary(UnaryOp::Neg, s)
            })?,
        ),
        BinaryOp::Max | BinaryOp::Min => {
            // `m` is 1 where `a` is the result (ties included), 0 where `b` is.
            let (lhs, rhs) = if op == BinaryOp::Max { (a, b) } else { (b, a) };
            let mask = v.binary(BinaryOp::Ge, lhs, rhs)?;
            let to_a = v.binary(BinaryOp::Mul, dy, mask)?;
            (
                v.when(0, |v| v.sum_to(to_a, &a_shape))?,
                v.when(1, |v| {
                    let to_b = v.binary(BinaryOp::Sub, dy, to_a)?;
                    v.sum_to(to_b, &b_shape)
                })?,
            )
        }
        BinaryOp::Ge | BinaryOp::Eq => (None, None),
        BinaryOp::PRelu => {
            // `m` is 1 where `a >= 0` (the identity side), 0 where the slope applies.
            let zero = v.fill(&[1], 0.0)?;
            let mask = v.binary(BinaryOp::Ge, a, zero)?;
            (
                v.when(0, |v| {
                    let sloped = v.binary(BinaryOp::Mul, dy, b)?;
                    let s = v.push(Op::Select, &[mask, dy, sloped])?;
                    v.sum_to(s, &a_shape)
                })?,
                v.when(1, |v| {
                    let p = v.binary(BinaryOp::Mul, dy, a)?;
                    let s = v.push(Op::Select, &[mask, zero, p])?;
                    v.sum_to(s, &b_shape)
                })?,
            )
        }
    };
    Ok(vec![da, db])
}

/// `Select` of `(cond, a, b)`, with broadcasting: `dy` goes to `a` where `cond` holds, to `b`
/// elsewhere; the condition gets no gradient.
pub(super) fn select(v: &mut Vjp) -> Result<Grads> {
    let (cond, a, b, dy) = (v.x(0), v.x(1), v.x(2), v.dy);
    let (a_shape, b_shape) = (v.shape(a), v.shape(b));
    let da = v.when(1, |v| {
        let zero = v.fill(&[1], 0.0)?;
        let s = v.push(Op::Select, &[cond, dy, zero])?;
        v.sum_to(s, &a_shape)
    })?;
    let db = v.when(2, |v| {
        let zero = v.fill(&[1], 0.0)?;
        let s = v.push(Op::Select, &[cond, zero, dy])?;
        v.sum_to(s, &b_shape)
    })?;
    Ok(vec![None, da, db])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Check, fed};
    use crate::init::Rng;
    use crate::interp::evaluate_all;
    use crate::ir::{BinaryOp, Graph, Op, TensorType, UnaryOp};
    use proptest::prelude::*;

    /// Every unary op with an input domain that keeps it smooth within a finite-difference
    /// step: positive for log and sqrt, away from the kinks of the piecewise ones.
    fn unaries() -> Vec<(UnaryOp, f64, f64)> {
        vec![
            (UnaryOp::Relu, -2.0, 2.0),
            (UnaryOp::Relu6, -2.0, 8.0),
            (UnaryOp::LeakyRelu(0.2), -2.0, 2.0),
            (UnaryOp::Sigmoid, -3.0, 3.0),
            (UnaryOp::Tanh, -2.0, 2.0),
            (UnaryOp::Exp, -2.0, 2.0),
            (UnaryOp::Log, 0.2, 3.0),
            (UnaryOp::Neg, -2.0, 2.0),
            (UnaryOp::Sqrt, 0.2, 3.0),
            (UnaryOp::Square, -2.0, 2.0),
            (UnaryOp::Abs, -2.0, 2.0),
            (UnaryOp::Scale(-1.75), -2.0, 2.0),
            (UnaryOp::AddScalar(0.5), -2.0, 2.0),
            (UnaryOp::Clip(-0.5, 0.75), -2.0, 2.0),
            (UnaryOp::Softplus, -30.0, 30.0),
            (UnaryOp::HardSwish, -5.0, 5.0),
            (UnaryOp::Elu(1.0), -3.0, 2.0),
            (UnaryOp::Elu(0.3), -3.0, 2.0),
        ]
    }

    /// Where `u`'s derivative jumps.
    fn kinks(u: UnaryOp) -> Vec<f64> {
        match u {
            UnaryOp::Clip(lo, hi) => vec![f64::from(lo), f64::from(hi)],
            UnaryOp::HardSwish => vec![-3.0, 3.0],
            _ => vec![0.0, 6.0],
        }
    }

    /// Values uniform in `[lo, hi)` at least 0.01 away from `kinks`.
    fn away_from_kinks(rng: &mut Rng, n: usize, lo: f64, hi: f64, kinks: &[f64]) -> Vec<f64> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let v = rng.uniform_in(lo, hi);
            if kinks.iter().all(|k| (v - k).abs() > 0.01) {
                out.push(v);
            }
        }
        out
    }

    #[test]
    fn every_unary_matches_finite_differences() {
        for (i, (u, lo, hi)) in unaries().into_iter().enumerate() {
            let mut c = Check::new(Rng::new(100 + i as u64));
            let values = away_from_kinks(&mut c.rng, 24, lo, hi, &kinks(u));
            let x = c.input_values("x", &[2, 3, 4], values);
            let y = c.push(Op::Unary(u), &[x]);
            c.check(y, &[x]).unwrap_or_else(|e| panic!("{}: {e}", u.name()));
        }
    }

    /// Pairs of shapes that broadcast together.
    fn shape_pairs() -> Vec<(Vec<usize>, Vec<usize>)> {
        vec![
            (vec![2, 3], vec![2, 3]),
            (vec![2, 3], vec![3]),
            (vec![3], vec![2, 3]),
            (vec![2, 1, 3], vec![4, 1]),
            (vec![3, 1], vec![1, 4]),
            (vec![1], vec![2, 2]),
            (vec![2, 3, 2], vec![1, 3, 1]),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 8, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn every_binary_with_broadcasting_matches_finite_differences(seed in any::<u64>()) {
            let ops = [
                BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div,
                BinaryOp::Max, BinaryOp::Min, BinaryOp::Ge, BinaryOp::Eq, BinaryOp::PRelu,
            ];
            for (i, op) in ops.into_iter().enumerate() {
                for (j, (sa, sb)) in shape_pairs().into_iter().enumerate() {
                    let mut c = Check::new(Rng::new(seed ^ (i * 16 + j) as u64));
                    let a = c.input_distinct("a", &sa);
                    let b = if op == BinaryOp::Div {
                        // Away from zero: |b| in [0.5, 2).
                        let values = (0..sb.iter().product())
                            .map(|_| {
                                let m = c.rng.uniform_in(0.5, 2.0);
                                if c.rng.uniform() < 0.5 { -m } else { m }
                            })
                            .collect();
                        c.input_values("b", &sb, values)
                    } else {
                        c.input_distinct("b", &sb)
                    };
                    let y = c.push(Op::Binary(op), &[a, b]);
                    let grads = c.check(y, &[a, b]).map_err(|e| TestCaseError::fail(format!("{op:?} {sa:?} {sb:?}: {e}")))?;
                    if matches!(op, BinaryOp::Ge | BinaryOp::Eq) {
                        prop_assert!(grads.iter().flatten().all(|&g| g == 0.0));
                    }
                }
            }
        }
    }

    #[test]
    fn ties_of_max_and_min_send_the_gradient_to_the_first_input() {
        for op in [BinaryOp::Max, BinaryOp::Min] {
            let mut g = Graph::new();
            let a = g.input("a", TensorType::f32(vec![3])).unwrap();
            let b = g.input("b", TensorType::f32(vec![3])).unwrap();
            let y = g.push(Op::Binary(op), &[a, b], "m").unwrap();
            let d = super::super::grad(&mut g, y, &[a, b]).unwrap();
            let f = fed(&[("a", vec![1.0, 2.0, 3.0]), ("b", vec![1.0, 1.0, 4.0])]);
            let values = evaluate_all(&g, &f).unwrap();
            let (da, db) = (&values[d[0].index()], &values[d[1].index()]);
            let want_a = if op == BinaryOp::Max {
                [1.0, 1.0, 0.0]
            } else {
                [1.0, 0.0, 1.0]
            };
            assert_eq!(da, &want_a, "{op:?}");
            let want_b: Vec<f64> = want_a.iter().map(|m| 1.0 - m).collect();
            assert_eq!(db, &want_b, "{op:?}");
        }
    }

    #[test]
    fn clip_hard_swish_and_elu_gradients_at_their_kinks() {
        // The boundary values the doc comments promise, through autodiff (UnaryGrad).
        let at = |u: UnaryOp, x: Vec<f64>| {
            let mut g = Graph::new();
            let xi = g.input("x", TensorType::f32(vec![x.len()])).unwrap();
            let y = g.push(Op::Unary(u), &[xi], "u").unwrap();
            let d = super::super::grad(&mut g, y, &[xi]).unwrap()[0];
            evaluate_all(&g, &fed(&[("x", x)])).unwrap()[d.index()].clone()
        };
        assert_eq!(
            at(UnaryOp::Clip(-1.0, 2.0), vec![-1.5, -1.0, 0.0, 2.0, 2.5]),
            [0.0, 1.0, 1.0, 1.0, 0.0]
        );
        assert_eq!(at(UnaryOp::Clip(1.0, 1.0), vec![0.5, 1.0, 1.5]), [0.0, 1.0, 0.0]);
        assert_eq!(
            at(UnaryOp::HardSwish, vec![-4.0, -3.0, 0.0, 3.0, 4.0]),
            [0.0, 0.0, 0.5, 1.0, 1.0]
        );
        assert_eq!(at(UnaryOp::Elu(0.25), vec![0.0, 1.0]), [0.25, 1.0]);
    }

    #[test]
    fn prelu_gradients_by_hand_with_a_per_channel_slope() {
        // a (2, 2) = [[-1, 2], [0, -3]], slope b (2,) = [0.5, 0.25]; dy = 1.
        // da = [[0.5, 1], [1, 0.25]] (1 at a = 0, the identity side), db = sum over rows of
        // a where a < 0: [-1 + 0, 0 + -3] = [-1, -3].
        let mut g = Graph::new();
        let a = g.input("a", TensorType::f32(vec![2, 2])).unwrap();
        let b = g.input("b", TensorType::f32(vec![2])).unwrap();
        let y = g.push(Op::Binary(BinaryOp::PRelu), &[a, b], "prelu").unwrap();
        let d = super::super::grad(&mut g, y, &[a, b]).unwrap();
        let f = fed(&[("a", vec![-1.0, 2.0, 0.0, -3.0]), ("b", vec![0.5, 0.25])]);
        let values = evaluate_all(&g, &f).unwrap();
        assert_eq!(values[y.index()], [-0.5, 2.0, 0.0, -0.75]);
        assert_eq!(values[d[0].index()], [0.5, 1.0, 1.0, 0.25]);
        assert_eq!(values[d[1].index()], [-1.0, -3.0]);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 8, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn select_with_broadcasting_matches_finite_differences(seed in any::<u64>(), int_cond in any::<bool>()) {
            let cases: [(&[usize], &[usize], &[usize]); 5] = [
                (&[2, 3], &[2, 3], &[2, 3]),
                (&[2, 1], &[3], &[2, 3]),
                (&[3], &[2, 1], &[1]),
                (&[2, 1, 3], &[4, 1], &[3]),
                (&[1], &[2, 2], &[2, 2]),
            ];
            for (j, (sc, sa, sb)) in cases.into_iter().enumerate() {
                let mut c = Check::new(Rng::new(seed ^ j as u64));
                let mask: Vec<f64> = (0..sc.iter().product()).map(|_| f64::from(u8::from(c.rng.uniform() < 0.5))).collect();
                let cond = if int_cond {
                    c.feeds.insert("cond".into(), mask);
                    c.graph.input("cond", TensorType { shape: sc.to_vec(), dtype: crate::ir::DType::I32 }).unwrap()
                } else {
                    c.input_values("cond", sc, mask)
                };
                let a = c.input("a", sa, -1.0, 1.0);
                let b = c.input("b", sb, -1.0, 1.0);
                let y = c.push(Op::Select, &[cond, a, b]);
                c.check(y, &[a, b]).map_err(|e| TestCaseError::fail(format!("{sc:?} {sa:?} {sb:?}: {e}")))?;
            }
        }
    }

    #[test]
    fn select_sends_the_gradient_to_the_chosen_side_only() {
        // cond = [1, 0, 2, NaN]: a is chosen where cond is non-zero, NaN included.
        let mut g = Graph::new();
        let c = g.input("c", TensorType::f32(vec![4])).unwrap();
        let a = g.input("a", TensorType::f32(vec![4])).unwrap();
        let b = g.input("b", TensorType::f32(vec![1])).unwrap();
        let y = g.push(Op::Select, &[c, a, b], "where").unwrap();
        let d = super::super::grad(&mut g, y, &[c, a, b]).unwrap();
        let f = fed(&[
            ("c", vec![1.0, 0.0, 2.0, f64::NAN]),
            ("a", vec![10.0, 20.0, 30.0, 40.0]),
            ("b", vec![-1.0]),
        ]);
        let values = evaluate_all(&g, &f).unwrap();
        assert_eq!(values[y.index()], [10.0, -1.0, 30.0, 40.0]);
        assert_eq!(values[d[0].index()], [0.0; 4]);
        assert_eq!(values[d[1].index()], [1.0, 0.0, 1.0, 1.0]);
        assert_eq!(values[d[2].index()], [1.0]);
    }
}
