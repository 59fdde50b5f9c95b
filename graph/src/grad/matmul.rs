//! VJP of `MatMul { trans_a, trans_b }`: `C = op(A) op(B)`, so `d op(A) = dC op(B)^T` and
//! `d op(B) = op(A)^T dC`, each one more `MatMul` with transpose flags instead of transposes:
//!
//! | `trans_a, trans_b` | gradient of `A` | gradient of `B` |
//! | --- | --- | --- |
//! | `false, false` | `dC B^T` | `A^T dC` |
//! | `true, false` | `B dC^T` | `A dC` |
//! | `false, true` | `dC B` | `dC^T A` |
//! | `true, true` | `B^T dC^T` | `dC^T A^T` |

use super::{Grads, Vjp};
use crate::error::Result;
use crate::ir::{NodeId, Op};

/// `MatMul { trans_a, trans_b }` of `a` and `b`.
pub(super) fn matmul(v: &mut Vjp, trans_a: bool, trans_b: bool) -> Result<Grads> {
    let (a, b, dc) = (v.x(0), v.x(1), v.dy);
    let mm = |v: &mut Vjp, lhs: NodeId, trans_a: bool, rhs: NodeId, trans_b: bool| {
        v.push(Op::MatMul { trans_a, trans_b }, &[lhs, rhs])
    };
    let da = v.when(0, |v| match (trans_a, trans_b) {
        (false, false) => mm(v, dc, false, b, true),
        (true, false) => mm(v, b, false, dc, true),
        (false, true) => mm(v, dc, false, b, false),
        (true, true) => mm(v, b, true, dc, true),
    })?;
    let db = v.when(1, |v| match (trans_a, trans_b) {
        (false, false) => mm(v, a, true, dc, false),
        (true, false) => mm(v, a, false, dc, false),
        (false, true) => mm(v, dc, true, a, false),
        (true, true) => mm(v, dc, true, a, true),
    })?;
    Ok(vec![da, db])
}

#[cfg(test)]
mod tests {
    use super::super::testing::Check;
    use crate::init::Rng;
    use crate::ir::Op;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn matmul_matches_finite_differences(
            m in 1usize..5, k in 1usize..5, n in 1usize..5, seed in any::<u64>(),
        ) {
            for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
                let mut c = Check::new(Rng::new(seed));
                let a = c.input("a", &if trans_a { [k, m] } else { [m, k] }, -1.0, 1.0);
                let b = c.param("dense/kernel", &if trans_b { [n, k] } else { [k, n] }, -1.0, 1.0);
                let y = c.push(Op::MatMul { trans_a, trans_b }, &[a, b]);
                c.check(y, &[a, b])?;
            }
        }
    }
}
