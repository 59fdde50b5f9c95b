//! Normalisations: softmax and log-softmax over the last axis, the softmax cross-entropy and its
//! gradient, inference-mode batch norm.

use super::Arg;

/// Length of the last axis (the softmax row); a rank-0 tensor is one row of one element.
fn row_len(shape: &[usize]) -> usize {
    shape.last().copied().unwrap_or(1)
}

/// `Softmax` over the last axis: `exp(x - max) / sum(exp(x - max))` per row.
pub(super) fn softmax(x: Arg) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.1.len());
    for row in x.1.chunks(row_len(x.0)) {
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let exps: Vec<f64> = row.iter().map(|&v| (v - max).exp()).collect();
        let sum: f64 = exps.iter().sum();
        out.extend(exps.iter().map(|e| e / sum));
    }
    out
}

/// `LogSoftmax` over the last axis: `x - max - ln(sum(exp(x - max)))` per row.
pub(super) fn log_softmax(x: Arg) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.1.len());
    for row in x.1.chunks(row_len(x.0)) {
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let log_sum = row.iter().map(|&v| (v - max).exp()).sum::<f64>().ln();
        out.extend(row.iter().map(|&v| v - max - log_sum));
    }
    out
}

/// The stable `(max, ln(sum(exp(v - max))))` of a row: `max + log_sum` is its log-sum-exp.
fn row_log_sum_exp(row: &[f64]) -> (f64, f64) {
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (max, row.iter().map(|&v| (v - max).exp()).sum::<f64>().ln())
}

/// `SoftmaxCrossEntropy` of `logits` and `labels` (same shape): per row
/// `-sum_c labels[c] * (logits[c] - max - log_sum)`, one value per row.
pub(super) fn softmax_cross_entropy(logits: Arg, labels: Arg) -> Vec<f64> {
    let len = row_len(logits.0);
    logits
        .1
        .chunks(len)
        .zip(labels.1.chunks(len))
        .map(|(x, t)| {
            let (max, log_sum) = row_log_sum_exp(x);
            -x.iter().zip(t).map(|(&v, &l)| l * (v - max - log_sum)).sum::<f64>()
        })
        .collect()
}

/// `SoftmaxCrossEntropyGrad` of `logits`, `labels` and `dloss` (one value per row): per row
/// `(softmax(logits)[c] * sum_k labels[k] - labels[c]) * dloss`.
pub(super) fn softmax_cross_entropy_grad(logits: Arg, labels: Arg, dloss: Arg) -> Vec<f64> {
    let len = row_len(logits.0);
    let mut out = Vec::with_capacity(logits.1.len());
    for ((x, t), &d) in logits.1.chunks(len).zip(labels.1.chunks(len)).zip(dloss.1) {
        let (max, log_sum) = row_log_sum_exp(x);
        let total: f64 = t.iter().sum();
        out.extend(
            x.iter()
                .zip(t)
                .map(|(&v, &l)| ((v - max - log_sum).exp() * total - l) * d),
        );
    }
    out
}

/// `BatchNormInference`: inputs `x, gamma, beta, mean, variance`, the last four of shape `(C,)`
/// with `C` the last axis of `x`; `(x - mean) / sqrt(variance + epsilon) * gamma + beta`.
pub(super) fn batch_norm(epsilon: f32, inputs: &[Arg]) -> Vec<f64> {
    let (x, gamma, beta, mean, var) = (inputs[0].1, inputs[1].1, inputs[2].1, inputs[3].1, inputs[4].1);
    let c = gamma.len();
    let eps = f64::from(epsilon);
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let ch = i % c;
            (v - mean[ch]) / (var[ch] + eps).sqrt() * gamma[ch] + beta[ch]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_close, random, run_op};
    use super::super::{Feeds, evaluate};
    use crate::init::Rng;
    use crate::ir::{BinaryOp, Graph, Op, ReduceOp, TensorType, UnaryOp};
    use proptest::prelude::*;

    #[test]
    fn softmax_by_hand() {
        // exp of [0, ln 2, ln 3] is [1, 2, 3]: softmax [1/6, 2/6, 3/6]; a second row of equal
        // values is uniform.
        let x = [0.0, 2f64.ln(), 3f64.ln(), 5.0, 5.0, 5.0];
        let (shape, y) = run_op(Op::Softmax, &[(&[2, 3], &x)]);
        assert_eq!(shape, [2, 3]);
        let third = 1.0 / 3.0;
        assert_close(&y, &[1.0 / 6.0, third, 0.5, third, third, third], 1e-15);
        let (_, y) = run_op(Op::LogSoftmax, &[(&[2, 3], &x)]);
        let ln = |v: f64| v.ln();
        assert_close(
            &y,
            &[ln(1.0 / 6.0), ln(third), ln(0.5), ln(third), ln(third), ln(third)],
            1e-14,
        );
    }

    #[test]
    fn softmax_rows_sum_to_one_and_log_softmax_is_its_log() {
        let mut rng = Rng::new(4);
        let shape = [3, 2, 7];
        let x: Vec<f64> = random(&mut rng, 42).iter().map(|v| v * 20.0).collect();
        let (_, p) = run_op(Op::Softmax, &[(&shape, &x)]);
        for row in p.chunks(7) {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-14, "{row:?}");
            assert!(row.iter().all(|&v| v > 0.0));
        }
        let (_, lp) = run_op(Op::LogSoftmax, &[(&shape, &x)]);
        let log_p: Vec<f64> = p.iter().map(|v| v.ln()).collect();
        assert_close(&lp, &log_p, 1e-12);
    }

    #[test]
    fn softmax_is_stable_for_large_inputs() {
        // Shifting a row by a constant leaves its softmax unchanged, even when exp overflows.
        let mut rng = Rng::new(5);
        let x = random(&mut rng, 8);
        let shifted: Vec<f64> = x.iter().map(|v| v + 1000.0).collect();
        let (_, p) = run_op(Op::Softmax, &[(&[2, 4], &x)]);
        let (_, q) = run_op(Op::Softmax, &[(&[2, 4], &shifted)]);
        assert_close(&q, &p, 1e-12);
        let (_, lp) = run_op(Op::LogSoftmax, &[(&[2, 4], &x)]);
        let (_, lq) = run_op(Op::LogSoftmax, &[(&[2, 4], &shifted)]);
        assert_close(&lq, &lp, 1e-12);
        assert!(lq.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn softmax_cross_entropy_by_hand() {
        // Row 0: logits [0, ln 2, ln 3] (softmax [1/6, 1/3, 1/2]) against the one-hot class 2:
        // -ln(1/2). Row 1: equal logits against the distribution [0.5, 0.25, 0.25]: ln 3.
        let x = [0.0, 2f64.ln(), 3f64.ln(), 5.0, 5.0, 5.0];
        let t = [0.0, 0.0, 1.0, 0.5, 0.25, 0.25];
        let (shape, loss) = run_op(Op::SoftmaxCrossEntropy, &[(&[2, 3], &x), (&[2, 3], &t)]);
        assert_eq!(shape, [2]);
        assert_close(&loss, &[2f64.ln(), 3f64.ln()], 1e-14);
        // Gradient: (softmax * sum(labels) - labels) * dloss.
        let (shape, dx) = run_op(
            Op::SoftmaxCrossEntropyGrad,
            &[(&[2, 3], &x), (&[2, 3], &t), (&[2], &[2.0, -1.0])],
        );
        assert_eq!(shape, [2, 3]);
        let third = 1.0 / 3.0;
        assert_close(
            &dx,
            &[
                2.0 / 6.0,
                2.0 * third,
                2.0 * -0.5,
                -(third - 0.5),
                -(third - 0.25),
                -(third - 0.25),
            ],
            1e-14,
        );
        // A 1-D row gives a (1,) loss; a single class is always predicted with certainty.
        let (shape, loss) = run_op(Op::SoftmaxCrossEntropy, &[(&[1], &[80.0]), (&[1], &[1.0])]);
        assert_eq!((shape, loss), (vec![1], vec![0.0]));
    }

    /// The loss the trainer built before `SoftmaxCrossEntropy` existed:
    /// `-Reduce Sum(labels * LogSoftmax(logits))` over the last axis.
    fn composed_cross_entropy(shape: &[usize], logits: &[f64], labels: &[f64]) -> Vec<f64> {
        let mut g = Graph::new();
        let x = g.input("x", TensorType::f32(shape.to_vec())).unwrap();
        let t = g.input("t", TensorType::f32(shape.to_vec())).unwrap();
        let lp = g.push(Op::LogSoftmax, &[x], "loss").unwrap();
        let m = g.push(Op::Binary(BinaryOp::Mul), &[t, lp], "loss").unwrap();
        let axes = vec![shape.len() - 1];
        let reduce = Op::Reduce {
            op: ReduceOp::Sum,
            axes,
            keep_dims: false,
        };
        let s = g.push(reduce, &[m], "loss").unwrap();
        let y = g.push(Op::Unary(UnaryOp::Neg), &[s], "loss").unwrap();
        g.outputs.push(y);
        let feeds: Feeds = [("x".to_string(), logits.to_vec()), ("t".to_string(), labels.to_vec())].into();
        evaluate(&g, &feeds).unwrap().remove(0)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

        /// The fused op equals the composed graph it replaces, on ranks 1 to 4, a single class and
        /// prime class counts, with logits up to +-80 and labels both one-hot and spread.
        #[test]
        fn softmax_cross_entropy_equals_the_composed_log_softmax_graph(
            lead in prop::collection::vec(1usize..5, 0..4),
            classes in prop_oneof![Just(1usize), Just(2usize), Just(7usize), Just(13usize), 3usize..40, Just(1000usize)],
            one_hot in any::<bool>(),
            seed in any::<u64>(),
        ) {
            let mut shape = lead;
            shape.push(classes);
            let n: usize = shape.iter().product();
            let mut rng = Rng::new(seed);
            let logits: Vec<f64> = random(&mut rng, n).iter().map(|v| v * 80.0).collect();
            let labels: Vec<f64> = if one_hot {
                let mut t = vec![0.0; n];
                for row in t.chunks_mut(classes) {
                    row[rng.below(classes)] = 1.0;
                }
                t
            } else {
                random(&mut rng, n).iter().map(|v| (v + 1.0) / 2.0).collect()
            };
            let (out_shape, fused) = run_op(Op::SoftmaxCrossEntropy, &[(&shape, &logits), (&shape, &labels)]);
            let want_shape = if shape.len() == 1 { vec![1] } else { shape[..shape.len() - 1].to_vec() };
            prop_assert_eq!(&out_shape, &want_shape);
            let composed = composed_cross_entropy(&shape, &logits, &labels);
            prop_assert_eq!(fused.len(), composed.len());
            for (f, c) in fused.iter().zip(&composed) {
                prop_assert!(f.is_finite() && (f - c).abs() <= 1e-9 * c.abs().max(1.0), "fused {} composed {}", f, c);
            }
            // Stable: shifting every row by 1000 (exp overflows f64 beyond ~709) changes nothing.
            let shifted: Vec<f64> = logits.iter().map(|v| v + 1000.0).collect();
            let (_, again) = run_op(Op::SoftmaxCrossEntropy, &[(&shape, &shifted), (&shape, &labels)]);
            for (a, f) in again.iter().zip(&fused) {
                prop_assert!(a.is_finite() && (a - f).abs() <= 1e-9 * f.abs().max(1.0), "shifted {} vs {}", a, f);
            }
            let dloss = random(&mut rng, composed.len());
            let (_, d1) = run_op(Op::SoftmaxCrossEntropyGrad, &[(&shape, &logits), (&shape, &labels), (&out_shape, &dloss)]);
            let (_, d2) = run_op(Op::SoftmaxCrossEntropyGrad, &[(&shape, &shifted), (&shape, &labels), (&out_shape, &dloss)]);
            prop_assert!(d1.iter().zip(&d2).all(|(a, b)| a.is_finite() && (a - b).abs() <= 1e-9));
        }
    }

    #[test]
    fn batch_norm_by_hand() {
        // x = [[1,2],[3,4]], channel 0: gamma 4, beta 1, mean 1, var 3; channel 1: gamma 0.5,
        // beta -1, mean 2, var 15; epsilon 1 makes the deviations 2 and 4.
        // channel 0: (x - 1) / 2 * 4 + 1 = 2x - 1 -> 1, 5;
        // channel 1: (x - 2) / 4 * 0.5 - 1 -> -1 (x = 2), -0.75 (x = 4).
        let (shape, y) = run_op(
            Op::BatchNormInference { epsilon: 1.0 },
            &[
                (&[2, 2], &[1.0, 2.0, 3.0, 4.0]),
                (&[2], &[4.0, 0.5]),
                (&[2], &[1.0, -1.0]),
                (&[2], &[1.0, 2.0]),
                (&[2], &[3.0, 15.0]),
            ],
        );
        assert_eq!(shape, [2, 2]);
        assert_eq!(y, [1.0, -1.0, 5.0, -0.75]);
    }
}
