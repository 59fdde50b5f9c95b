//! VJPs of the layout ops, each the adjoint data movement:
//!
//! | op | input gradient |
//! | --- | --- |
//! | `Reshape` | `dy` reshaped to the input's shape |
//! | `Transpose { perm }` | `Transpose { inverse of perm }(dy)` |
//! | `Concat { axis }` | input `k`: `Slice(dy)` of its block along `axis` |
//! | `Pad { pads }`, constant | `Slice(dy)` at the `before` offsets, of the input's size |
//! | `Pad { pads }`, reflect or replicate | `PadBackprop(dy)`: the mirrored or repeated cotangents summed back |
//! | `Slice { starts, sizes }` | `Pad(dy)` with zeros back to the input's size |
//! | `Broadcast` | `sum_to(dy)` (`Reduce Sum` over the broadcast axes, then a reshape) |
//! | `Resize { mode }` | `ResizeBackprop { mode, input_hw }(dy)` |
//! | `Dropout`, training | `Dropout(dy, seed)` with the same seed (the same mask and scale); the seed gets none |
//! | `Dropout`, inference | `dy` |

use super::{Grads, Vjp};
use crate::error::Result;
use crate::ir::{Op, PadMode, ResizeMode};

/// `Reshape` of `x`.
pub(super) fn reshape(v: &mut Vjp) -> Result<Grads> {
    let x_shape = v.shape(v.x(0));
    let dy = v.dy;
    Ok(vec![v.when(0, |v| v.reshape(dy, &x_shape))?])
}

/// `Transpose { perm }` of `x`: output axis `i` is input axis `perm[i]`, so the gradient's
/// axis `perm[i]` is `dy`'s axis `i`.
pub(super) fn transpose(v: &mut Vjp, perm: &[usize]) -> Result<Grads> {
    let mut inverse = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inverse[p] = i;
    }
    let dy = v.dy;
    Ok(vec![v.when(0, |v| v.push(Op::Transpose { perm: inverse }, &[dy]))?])
}

/// `Concat { axis }` of all inputs.
pub(super) fn concat(v: &mut Vjp, axis: usize) -> Result<Grads> {
    let dy = v.dy;
    let y_shape = v.shape(v.id);
    let mut offset = 0;
    let mut grads = Vec::with_capacity(v.node.inputs.len());
    for k in 0..v.node.inputs.len() {
        let sizes = v.shape(v.x(k));
        let mut starts = vec![0; sizes.len()];
        starts[axis] = offset;
        offset += sizes[axis];
        grads.push(v.when(k, |v| {
            if sizes == y_shape {
                Ok(dy)
            } else {
                v.push(Op::Slice { starts, sizes }, &[dy])
            }
        })?);
    }
    Ok(grads)
}

/// `Pad { pads, mode }` of `x`.
pub(super) fn pad(v: &mut Vjp, pads: &[(usize, usize)], mode: PadMode) -> Result<Grads> {
    let sizes = v.shape(v.x(0));
    let starts: Vec<usize> = pads.iter().map(|p| p.0).collect();
    let dy = v.dy;
    let op = match mode {
        PadMode::Constant => Op::Slice { starts, sizes },
        _ => Op::PadBackprop {
            pads: pads.to_vec(),
            mode,
        },
    };
    Ok(vec![v.when(0, |v| v.push(op, &[dy]))?])
}

/// `Slice { starts, sizes }` of `x`.
pub(super) fn slice(v: &mut Vjp, starts: &[usize]) -> Result<Grads> {
    let x_shape = v.shape(v.x(0));
    let y_shape = v.shape(v.id);
    let pads = (0..x_shape.len())
        .map(|a| (starts[a], x_shape[a] - starts[a] - y_shape[a]))
        .collect();
    let dy = v.dy;
    let op = Op::Pad {
        pads,
        value: 0.0,
        mode: PadMode::Constant,
    };
    Ok(vec![v.when(0, |v| v.push(op, &[dy]))?])
}

/// `Broadcast` of `x`.
pub(super) fn broadcast(v: &mut Vjp) -> Result<Grads> {
    let x_shape = v.shape(v.x(0));
    let dy = v.dy;
    Ok(vec![v.when(0, |v| v.sum_to(dy, &x_shape))?])
}

/// `Resize { mode }` of `x`.
pub(super) fn resize(v: &mut Vjp, mode: ResizeMode) -> Result<Grads> {
    let x_shape = v.shape(v.x(0));
    let dy = v.dy;
    let op = Op::ResizeBackprop {
        mode,
        input_hw: (x_shape[1], x_shape[2]),
    };
    Ok(vec![v.when(0, |v| v.push(op, &[dy]))?])
}

/// `Dropout { rate, training }` of `x` (and, in training, its seed).
pub(super) fn dropout(v: &mut Vjp, rate: f32, training: bool) -> Result<Grads> {
    let dy = v.dy;
    if training {
        let seed = v.x(1);
        let dx = v.when(0, |v| v.push(Op::Dropout { rate, training }, &[dy, seed]))?;
        Ok(vec![dx, None])
    } else {
        Ok(vec![v.when(0, |_| Ok(dy))?])
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::Check;
    use crate::init::Rng;
    use crate::ir::{Op, PadMode, ResizeMode, dropout_uniform, numel};
    use proptest::prelude::*;

    fn shape() -> impl Strategy<Value = Vec<usize>> {
        prop::collection::vec(1usize..4, 1..5)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn reshape_matches_finite_differences(shape in shape(), seed in any::<u64>()) {
            let mut c = Check::new(Rng::new(seed));
            let x = c.input("x", &shape, -1.0, 1.0);
            let n = numel(&shape);
            // Two reshapes in a row: (shape) -> (n,) -> (1, n).
            let y = c.graph.reshape(x, &[n], "test").unwrap();
            let t = c.graph.reshape(y, &[1, n], "test").unwrap();
            c.check(t, &[x])?;
        }

        #[test]
        fn transpose_matches_finite_differences(shape in shape(), keys in prop::collection::vec(any::<u32>(), 4), seed in any::<u64>()) {
            // A random permutation: the axes sorted by random keys.
            let mut perm: Vec<usize> = (0..shape.len()).collect();
            perm.sort_by_key(|&a| keys[a]);
            let mut c = Check::new(Rng::new(seed));
            let x = c.input("x", &shape, -1.0, 1.0);
            let y = c.push(Op::Transpose { perm }, &[x]);
            c.check(y, &[x])?;
        }

        #[test]
        fn concat_matches_finite_differences(
            shape in shape(), widths in prop::collection::vec(1usize..4, 1..4), axis in 0usize..4, seed in any::<u64>(),
        ) {
            let axis = axis % shape.len();
            let mut c = Check::new(Rng::new(seed));
            let inputs: Vec<_> = widths.iter().enumerate().map(|(k, &w)| {
                let mut s = shape.clone();
                s[axis] = w;
                c.input(&format!("x{k}"), &s, -1.0, 1.0)
            }).collect();
            let y = c.push(Op::Concat { axis }, &inputs);
            c.check(y, &inputs)?;
        }

        #[test]
        fn pad_and_slice_match_finite_differences(
            shape in shape(), cuts in prop::collection::vec((0usize..3, 0usize..3), 4), seed in any::<u64>(),
        ) {
            let rank = shape.len();
            let mut c = Check::new(Rng::new(seed));
            let x = c.input("x", &shape, -1.0, 1.0);
            let pads: Vec<(usize, usize)> = cuts[..rank].to_vec();
            let y = c.push(Op::Pad { pads, value: 0.5, mode: PadMode::Constant }, &[x]);
            c.check(y, &[x])?;
            // A slice of a random box of x.
            let mut c = Check::new(Rng::new(seed ^ 1));
            let x = c.input("x", &shape, -1.0, 1.0);
            let starts: Vec<usize> = (0..rank).map(|a| cuts[a].0 % shape[a]).collect();
            let sizes: Vec<usize> = (0..rank).map(|a| 1 + cuts[a].1 % (shape[a] - starts[a])).collect();
            let y = c.push(Op::Slice { starts, sizes }, &[x]);
            c.check(y, &[x])?;
        }

        #[test]
        fn reflect_and_replicate_pads_match_finite_differences(
            shape in prop::collection::vec(1usize..5, 1..4), cuts in prop::collection::vec((0usize..4, 0usize..4), 3),
            seed in any::<u64>(),
        ) {
            for mode in [PadMode::Reflect, PadMode::Replicate] {
                // Reflect pads must be shorter than their axis.
                let pads: Vec<(usize, usize)> = shape
                    .iter()
                    .zip(&cuts)
                    .map(|(&d, &(a, b))| if mode == PadMode::Reflect { (a % d, b % d) } else { (a, b) })
                    .collect();
                let mut c = Check::new(Rng::new(seed));
                let x = c.input("x", &shape, -1.0, 1.0);
                let y = c.push(Op::Pad { pads: pads.clone(), value: 0.0, mode }, &[x]);
                c.check(y, &[x]).map_err(|e| TestCaseError::fail(format!("{mode:?} {shape:?} {pads:?}: {e}")))?;
            }
        }

        #[test]
        fn broadcast_matches_finite_differences(
            shape in shape(), ones in 0u32..16, lead in prop::collection::vec(1usize..3, 0..2), seed in any::<u64>(),
        ) {
            // x has length 1 on some axes; the output adds leading axes too.
            let from: Vec<usize> = shape.iter().enumerate().map(|(a, &d)| if ones & (1 << a) != 0 { 1 } else { d }).collect();
            let to: Vec<usize> = lead.iter().chain(&shape).copied().collect();
            let mut c = Check::new(Rng::new(seed));
            let x = c.input("x", &from, -1.0, 1.0);
            let y = c.push(Op::Broadcast { shape: to }, &[x]);
            c.check(y, &[x])?;
        }

        #[test]
        fn resize_matches_finite_differences(
            n in 1usize..3, h in 1usize..5, w in 1usize..5, ch in 1usize..3, oh in 1usize..8, ow in 1usize..8,
            seed in any::<u64>(),
        ) {
            for mode in ResizeMode::ALL {
                let mut c = Check::new(Rng::new(seed));
                let x = c.input("x", &[n, h, w, ch], -1.0, 1.0);
                let y = c.push(Op::Resize { mode, height: oh, width: ow }, &[x]);
                c.check(y, &[x])?;
            }
        }
    }

    #[test]
    fn training_dropout_gradient_is_the_mask_over_the_keep_rate() {
        let (rate, seed) = (0.3f32, 17u32);
        let mut c = Check::new(Rng::new(3));
        let x = c.input("x", &[4, 6], -1.0, 1.0);
        let s = c.input_values("seed", &[1], vec![f64::from(seed)]);
        let y = c.push(Op::Dropout { rate, training: true }, &[x, s]);
        let r = c.push(Op::Unary(crate::ir::UnaryOp::Square), &[y]);
        // With loss = sum(y) the gradient would be exactly the mask / (1 - rate); check it via
        // d/dx sum(R * y^2) = R * 2 y * mask / (1 - rate) against finite differences and
        // that the dropped elements get exactly zero.
        let grads = c.check(r, &[x]).unwrap();
        let mut dropped = 0;
        for (i, g) in grads[0].iter().enumerate() {
            if dropout_uniform(seed, i as u32) < rate {
                assert_eq!(*g, 0.0, "element {i} is dropped");
                dropped += 1;
            } else {
                assert_ne!(*g, 0.0, "element {i} is kept");
            }
        }
        assert!(dropped > 0 && dropped < 24, "{dropped} dropped");
    }

    #[test]
    fn training_dropout_gradient_of_the_sum_is_the_scaled_mask() {
        let (rate, seed) = (0.5f32, 4u32);
        let mut g = crate::ir::Graph::new();
        let x = g.input("x", crate::ir::TensorType::f32(vec![16])).unwrap();
        let s = g.input("seed", crate::ir::TensorType::f32(vec![1])).unwrap();
        let y = g.push(Op::Dropout { rate, training: true }, &[x, s], "drop").unwrap();
        let d = super::super::grad(&mut g, y, &[x, s]).unwrap();
        let feeds = super::super::testing::fed(&[("x", vec![0.25; 16]), ("seed", vec![f64::from(seed)])]);
        let values = crate::interp::evaluate_all(&g, &feeds).unwrap();
        let want: Vec<f64> = (0..16)
            .map(|i| if dropout_uniform(seed, i) >= rate { 2.0 } else { 0.0 })
            .collect();
        assert_eq!(values[d[0].index()], want);
        // The seed carries no gradient.
        assert_eq!(values[d[1].index()], [0.0]);
    }

    #[test]
    fn inference_dropout_passes_the_gradient_through() {
        let mut c = Check::new(Rng::new(5));
        let x = c.input("x", &[3, 2], -1.0, 1.0);
        let y = c.push(
            Op::Dropout {
                rate: 0.5,
                training: false,
            },
            &[x],
        );
        c.check(y, &[x]).unwrap();
    }
}
