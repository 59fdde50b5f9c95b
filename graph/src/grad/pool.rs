//! VJP of pooling: `Pool2d(geom)` of `x` has input gradient `Pool2dBackprop(geom)(x, dy)`
//! (max: to the first in-range maximum of each window; average: spread over the window's
//! in-range positions).

use super::{Grads, Vjp};
use crate::error::Result;
use crate::ir::{Op, PoolGeometry};

/// `Pool2d(geom)` of `x`.
pub(super) fn pool2d(v: &mut Vjp, geom: PoolGeometry) -> Result<Grads> {
    let (x, dy) = (v.x(0), v.dy);
    Ok(vec![v.when(0, |v| v.push(Op::Pool2dBackprop(geom), &[x, dy]))?])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Check, fed};
    use crate::init::Rng;
    use crate::interp::evaluate_all;
    use crate::ir::{Graph, Op, Pad2d, PoolGeometry, PoolKind, TensorType};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn pooling_matches_finite_differences(
            n in 1usize..3, h in 1usize..7, w in 1usize..7, c in 1usize..3,
            size in (1usize..4, 1usize..4), stride in (1usize..4, 1usize..4),
            pads in (0usize..3, 0usize..3, 0usize..3, 0usize..3), seed in any::<u64>(),
        ) {
            for kind in [PoolKind::Max, PoolKind::Avg] {
                let geom = PoolGeometry {
                    kind,
                    size,
                    stride,
                    pad: Pad2d { top: pads.0, bottom: pads.1, left: pads.2, right: pads.3 },
                };
                let mut ck = Check::new(Rng::new(seed));
                // Distinct values: no ties within a finite-difference step.
                let x = ck.input_distinct("x", &[n, h, w, c]);
                let y = ck.graph.push(Op::Pool2d(geom), &[x], "test");
                prop_assume!(y.is_ok());
                ck.check(y.unwrap(), &[x])?;
            }
        }
    }

    #[test]
    fn max_pool_ties_send_the_gradient_to_the_first_maximum() {
        // One 2x2 window over [[1, 4], [4, 4]]: the first 4 in row-major order gets it all.
        let mut g = Graph::new();
        let x = g.input("x", TensorType::f32(vec![1, 2, 2, 1])).unwrap();
        let geom = PoolGeometry {
            kind: PoolKind::Max,
            size: (2, 2),
            stride: (2, 2),
            pad: Pad2d::default(),
        };
        let y = g.push(Op::Pool2d(geom), &[x], "pool").unwrap();
        let dx = super::super::grad(&mut g, y, &[x]).unwrap()[0];
        let values = evaluate_all(&g, &fed(&[("x", vec![1.0, 4.0, 4.0, 4.0])])).unwrap();
        assert_eq!(values[dx.index()], [0.0, 1.0, 0.0, 0.0]);
    }
}
