//! The membrane loss: class-weighted binary cross-entropy from the one-logit output plus a soft
//! Dice loss on the membrane class, as two weighted [`LossTerm`]s (the total is their sum).
//!
//! The mask target is 1 = cell, 0 = membrane. Membrane pixels are about 22% of the slices, so
//! the cross-entropy weighs each pixel `membrane_weight` or `cell_weight` by its true class;
//! the Dice term (on `sigmoid(-logit)`, the membrane probability, against `1 - mask`) rewards
//! the overlap of the thin membrane class directly.

use fovea_graph::ir::{BinaryOp, Op, ReduceOp, UnaryOp};
use fovea_graph::train::{GraphFn, LossTerm, bce_logits_elems, dice_per_sample};

use crate::zoo::segmentation::OUTPUT;

/// The weights of the loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossWeights {
    /// Weight of the cross-entropy term.
    pub bce: f32,
    /// Weight of the membrane Dice term (0 drops it).
    pub dice: f32,
    /// Per-pixel cross-entropy weight of membrane pixels.
    pub membrane_weight: f32,
    /// Per-pixel cross-entropy weight of cell pixels.
    pub cell_weight: f32,
}

impl Default for LossWeights {
    /// Cross-entropy 1 with membrane pixels weighted 2 and cells 1 (between no balancing and the
    /// full inverse frequency, 0.78 / 0.22), plus Dice 1.
    fn default() -> Self {
        LossWeights {
            bce: 1.0,
            dice: 1.0,
            membrane_weight: 2.0,
            cell_weight: 1.0,
        }
    }
}

/// The loss terms on output [`OUTPUT`] against the target of the same name (`(h, w, 1)`, 1 = cell).
pub fn loss_terms(w: LossWeights) -> Vec<LossTerm> {
    let (mw, cw) = (w.membrane_weight, w.cell_weight);
    let bce = GraphFn::new(move |ctx| {
        let x = ctx.output(OUTPUT)?;
        let shape = ctx.graph.shape(x)[1..].to_vec();
        let z = ctx.target(OUTPUT, &shape)?;
        let e = bce_logits_elems(ctx.graph, x, z)?;
        // weight = mw + (cw - mw) z: mw on membrane (z = 0), cw on cells (z = 1).
        let wz = ctx
            .graph
            .push(Op::Unary(UnaryOp::Scale(cw - mw)), &[z], "weighted_bce")?;
        let wz = ctx
            .graph
            .push(Op::Unary(UnaryOp::AddScalar(mw)), &[wz], "weighted_bce")?;
        let e = ctx.graph.push(Op::Binary(BinaryOp::Mul), &[e, wz], "weighted_bce")?;
        ctx.graph.push(
            Op::Reduce {
                op: ReduceOp::Mean,
                axes: (1..=shape.len()).collect(),
                keep_dims: false,
            },
            &[e],
            "weighted_bce",
        )
    });
    let mut terms = vec![LossTerm::custom("weighted_bce", w.bce, bce)];
    if w.dice > 0.0 {
        let dice = GraphFn::new(|ctx| {
            let x = ctx.output(OUTPUT)?;
            let shape = ctx.graph.shape(x)[1..].to_vec();
            let z = ctx.target(OUTPUT, &shape)?;
            let neg_x = ctx.graph.push(Op::Unary(UnaryOp::Neg), &[x], "membrane_dice")?;
            let nz = ctx.graph.push(Op::Unary(UnaryOp::Neg), &[z], "membrane_dice")?;
            let membrane = ctx
                .graph
                .push(Op::Unary(UnaryOp::AddScalar(1.0)), &[nz], "membrane_dice")?;
            dice_per_sample(ctx.graph, neg_x, membrane, 1.0, true)
        });
        terms.push(LossTerm::custom("membrane_dice", w.dice, dice));
    }
    terms
}
