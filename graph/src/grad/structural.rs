//! VJPs of the structural ops. `TopK`, `ArgSort` and `ArgMax` give integer tensors, which carry
//! no gradient (the driver never differentiates them; values picked by their indices are
//! differentiable through `Gather`).
//!
//! | op | input gradients |
//! | --- | --- |
//! | `Gather { axis, batch_dims }` of `x, idx` | `x`: `ScatterAdd { axis, batch_dims, len: x.shape[axis] }(dy, idx)` |
//! | `ScatterAdd { axis, batch_dims, .. }` of `u, idx` | `u`: `Gather { axis, batch_dims }(dy, idx)` |
//! | `InstanceNorm { eps }` of `x, gamma, beta` | composed of plain ops, below |
//!
//! Instance norm, with `M(t)` the mean over the spatial axes 1 and 2 (kept), `sd =
//! sqrt(M((x - M(x))^2) + eps)`, `xhat = (x - M(x)) / sd` and `g = dy * gamma`:
//! `dx = (g - M(g) - xhat * M(g * xhat)) / sd`, `dgamma = Σ dy * xhat`, `dbeta = Σ dy` (sums over
//! N, H, W). A composition rather than a backward kernel: it recomputes the statistics with two
//! reductions and fuses into a few elementwise kernels, which is enough for the style-transfer
//! transform net's sizes; a dedicated kernel is the upgrade if profiles ask for it.

use super::{Grads, Vjp};
use crate::error::Result;
use crate::ir::{BinaryOp, NodeId, Op, ReduceOp, UnaryOp};

/// `Gather { axis, batch_dims }` of `x, indices`.
pub(super) fn gather(v: &mut Vjp, axis: usize, batch_dims: usize) -> Result<Grads> {
    let (x, idx, dy) = (v.x(0), v.x(1), v.dy);
    let len = v.shape(x)[axis];
    let dx = v.when(0, |v| v.push(Op::ScatterAdd { axis, batch_dims, len }, &[dy, idx]))?;
    Ok(vec![dx, None])
}

/// `ScatterAdd { axis, batch_dims, .. }` of `updates, indices`.
pub(super) fn scatter_add(v: &mut Vjp, axis: usize, batch_dims: usize) -> Result<Grads> {
    let (idx, dy) = (v.x(1), v.dy);
    let du = v.when(0, |v| v.push(Op::Gather { axis, batch_dims }, &[dy, idx]))?;
    Ok(vec![du, None])
}

/// The mean over the spatial axes (1, 2) of an NHWC tensor, kept.
fn spatial_mean(v: &mut Vjp, t: NodeId) -> Result<NodeId> {
    v.push(
        Op::Reduce {
            op: ReduceOp::Mean,
            axes: vec![1, 2],
            keep_dims: true,
        },
        &[t],
    )
}

/// `InstanceNorm { epsilon }` of `x, gamma, beta`.
pub(super) fn instance_norm(v: &mut Vjp, epsilon: f32) -> Result<Grads> {
    let (x, gamma, dy) = (v.x(0), v.x(1), v.dy);
    let c = v.shape(gamma);
    let dbeta = v.when(2, |v| v.sum_to(dy, &c))?;
    if !v.needs[0] && !v.needs[1] {
        return Ok(vec![None, None, dbeta]);
    }
    let mu = spatial_mean(v, x)?;
    let xc = v.binary(BinaryOp::Sub, x, mu)?;
    let sq = v.unary(UnaryOp::Square, xc)?;
    let var = spatial_mean(v, sq)?;
    let var_eps = v.unary(UnaryOp::AddScalar(epsilon), var)?;
    let sd = v.unary(UnaryOp::Sqrt, var_eps)?;
    let xhat = v.binary(BinaryOp::Div, xc, sd)?;
    let dgamma = v.when(1, |v| {
        let p = v.binary(BinaryOp::Mul, dy, xhat)?;
        v.sum_to(p, &c)
    })?;
    let dx = v.when(0, |v| {
        let g = v.binary(BinaryOp::Mul, dy, gamma)?;
        let mg = spatial_mean(v, g)?;
        let gx = v.binary(BinaryOp::Mul, g, xhat)?;
        let mgx = spatial_mean(v, gx)?;
        let t = v.binary(BinaryOp::Mul, xhat, mgx)?;
        let d = v.binary(BinaryOp::Sub, g, mg)?;
        let d = v.binary(BinaryOp::Sub, d, t)?;
        v.binary(BinaryOp::Div, d, sd)
    })?;
    Ok(vec![dx, dgamma, dbeta])
}

#[cfg(test)]
mod tests {
    use super::super::testing::Check;
    use crate::init::Rng;
    use crate::ir::Op;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn gather_and_scatter_add_match_finite_differences(
            outer in 1usize..3, len in 1usize..5, inner in 1usize..3, count in 1usize..6,
            batched in any::<bool>(), seed in any::<u64>(),
        ) {
            let mut c = Check::new(Rng::new(seed));
            // Indices with repeats and out-of-range entries (-1 and len).
            let (batch, bd) = if batched { (outer, 1) } else { (1, 0) };
            let idx_values: Vec<f64> = (0..batch * count).map(|_| c.rng.below(len + 2) as f64 - 1.0).collect();
            let idx_shape = if batched { vec![outer, count] } else { vec![count] };
            let idx = c.input_indices("idx", &idx_shape, idx_values);
            let x = c.input("x", &[outer, len, inner], -1.0, 1.0);
            let y = c.push(Op::Gather { axis: 1, batch_dims: bd }, &[x, idx]);
            c.check(y, &[x])?;

            let mut c = Check::new(Rng::new(seed ^ 1));
            let idx_values: Vec<f64> = (0..batch * count).map(|_| c.rng.below(len + 2) as f64 - 1.0).collect();
            let idx = c.input_indices("idx", &idx_shape, idx_values);
            let u = c.input("u", &[outer, count, inner], -1.0, 1.0);
            let y = c.push(Op::ScatterAdd { axis: 1, batch_dims: bd, len }, &[u, idx]);
            c.check(y, &[u])?;
        }

        #[test]
        fn instance_norm_matches_finite_differences(
            n in 1usize..3, h in 1usize..4, w in 1usize..4, ch in 1usize..4, seed in any::<u64>(),
        ) {
            // A plane of one pixel has zero variance: the gradient is then sd-limited but exact.
            let mut c = Check::new(Rng::new(seed));
            let x = c.input("x", &[n, h, w, ch], -1.0, 1.0);
            let gamma = c.param("in/gamma", &[ch], 0.5, 1.5);
            let beta = c.param("in/beta", &[ch], -0.5, 0.5);
            let y = c.push(Op::InstanceNorm { epsilon: 1e-2 }, &[x, gamma, beta]);
            c.check(y, &[x, gamma, beta])?;
        }

        #[test]
        fn batched_matmul_matches_finite_differences(
            b in 1usize..4, m in 1usize..4, k in 1usize..4, n in 1usize..4, seed in any::<u64>(),
        ) {
            for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
                let mut c = Check::new(Rng::new(seed));
                let a = c.input("a", &if trans_a { [b, k, m] } else { [b, m, k] }, -1.0, 1.0);
                let w = c.param("w", &if trans_b { [b, n, k] } else { [b, k, n] }, -1.0, 1.0);
                let y = c.push(Op::MatMul { trans_a, trans_b }, &[a, w]);
                c.check(y, &[a, w])?;
            }
        }
    }

    /// Gram matrices `F^T F` (style transfer) take the gradient through both operands, the
    /// same node: the two contributions add up.
    #[test]
    fn a_gram_matrix_of_one_node_matches_finite_differences() {
        let mut c = Check::new(Rng::new(3));
        let f = c.input("f", &[2, 5, 3], -1.0, 1.0);
        let gram = c.push(
            Op::MatMul {
                trans_a: true,
                trans_b: false,
            },
            &[f, f],
        );
        let g = c.check(gram, &[f]).unwrap();
        assert!(g[0].iter().any(|v| v.abs() > 1e-3));
    }
}
