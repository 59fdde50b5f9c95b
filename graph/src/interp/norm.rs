//! Normalisations: softmax and log-softmax over the last axis, inference-mode batch norm.

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
    use crate::init::Rng;
    use crate::ir::Op;

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
