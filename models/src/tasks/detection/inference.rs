//! The detector's inference program: the model's forward pass, then sigmoid scores, the anchor
//! decoding of the boxes and [`batched_nms`] as graph nodes, so the program ends with the final
//! `(batch, max_detections, 6)` rows and only those are read back.

use std::sync::Arc;

use fovea_engine::{Device, Program};
use fovea_graph::ir::{BinaryOp, Graph, NodeId, Op, UnaryOp};
use fovea_graph::ops::{NmsParams, batched_nms};
use fovea_graph::{Model, Tensor};

use super::decode::DecodeRule;
use super::targets::{Anchor, BoxCoder};
use crate::vision::BBox;
use crate::{DataError, Result};

/// Candidates per class taken before suppression.
pub const CANDIDATES_PER_CLASS: usize = 400;

fn slice(g: &mut Graph, x: NodeId, start: usize, len: usize, l: &str) -> Result<NodeId> {
    let s = g.shape(x).to_vec();
    let mut starts = vec![0; s.len()];
    let mut sizes = s.clone();
    starts[s.len() - 1] = start;
    sizes[s.len() - 1] = len;
    Ok(g.push(Op::Slice { starts, sizes }, &[x], l)?)
}

fn constant(g: &mut Graph, shape: Vec<usize>, data: Vec<f32>, l: &str) -> Result<NodeId> {
    Ok(g.constant(Tensor { shape, data }, l)?)
}

/// Adds the decoding of `offsets` `(B, A, 4)` over `anchors` to corner boxes `(B, A, 4)`:
/// centre `a_c + t_c v_c a_wh`, size `a_wh exp(clamp(t_wh v_wh, -10, 4))` (as
/// [`BoxCoder::decode`]).
pub fn decode_boxes(g: &mut Graph, offsets: NodeId, anchors: &[Anchor], coder: &BoxCoder) -> Result<NodeId> {
    let l = "decode";
    let a = anchors.len();
    let centres: Vec<f32> = anchors.iter().flat_map(|x| [x.cx, x.cy]).collect();
    let sizes: Vec<f32> = anchors.iter().flat_map(|x| [x.w, x.h]).collect();
    let v = coder.variances;
    let scaled_sizes: Vec<f32> = anchors.iter().flat_map(|x| [x.w * v[0], x.h * v[1]]).collect();
    let ac = constant(g, vec![a, 2], centres, l)?;
    let aw = constant(g, vec![a, 2], sizes, l)?;
    let aws = constant(g, vec![a, 2], scaled_sizes, l)?;
    let tc = slice(g, offsets, 0, 2, l)?;
    let tw = slice(g, offsets, 2, 2, l)?;
    let d = g.push(Op::Binary(BinaryOp::Mul), &[tc, aws], l)?;
    let centre = g.push(Op::Binary(BinaryOp::Add), &[d, ac], l)?;
    let tw = g.push(Op::Unary(UnaryOp::Scale(v[2])), &[tw], l)?;
    let tw = g.push(Op::Unary(UnaryOp::Clip(-10.0, 4.0)), &[tw], l)?;
    let e = g.push(Op::Unary(UnaryOp::Exp), &[tw], l)?;
    let size = g.push(Op::Binary(BinaryOp::Mul), &[e, aw], l)?;
    let half = g.push(Op::Unary(UnaryOp::Scale(0.5)), &[size], l)?;
    let lo = g.push(Op::Binary(BinaryOp::Sub), &[centre, half], l)?;
    let hi = g.push(Op::Binary(BinaryOp::Add), &[centre, half], l)?;
    let axis = g.shape(lo).len() - 1;
    Ok(g.push(Op::Concat { axis }, &[lo, hi], l)?)
}

/// A compiled inference program of a detector at one batch size.
pub struct InferenceProgram {
    program: Program,
    batch: usize,
    side: usize,
    rule: DecodeRule,
}

impl InferenceProgram {
    /// Compiles `model` (outputs `classes`, `boxes`) with decoding and NMS for `batch` images.
    /// The variances must be `coder`'s of training; scores use the classes' sigmoid (no
    /// background class, the variances' y and h entries equal x and w).
    pub fn new(
        device: &Arc<Device>,
        model: &Model,
        anchors: &[Anchor],
        coder: &BoxCoder,
        rule: DecodeRule,
        batch: usize,
    ) -> Result<InferenceProgram> {
        let mut g = model.graph(batch)?;
        let (logits, offsets) = match g.outputs[..] {
            [c, b] => (c, b),
            _ => {
                return Err(DataError::value(
                    "model",
                    "a detector has two outputs, classes and boxes",
                ));
            }
        };
        let side = model.input_shapes()[0][0];
        let scores = g.push(Op::Unary(UnaryOp::Sigmoid), &[logits], "scores")?;
        let boxes = decode_boxes(&mut g, offsets, anchors, coder)?;
        let params = NmsParams {
            iou_threshold: rule.iou_threshold,
            score_threshold: rule.score_threshold,
            max_detections: rule.max_detections,
            candidates: CANDIDATES_PER_CLASS,
        };
        let out = batched_nms(&mut g, boxes, scores, params, "nms")?;
        g.outputs = vec![out];
        let program = Program::compile(device, g)?;
        for p in model.params.iter() {
            program.set_param(&p.name, &p.value.data)?;
        }
        Ok(InferenceProgram {
            program,
            batch,
            side,
            rule,
        })
    }

    /// The batch size it was compiled for.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Runs `images` `(batch, side, side, 3)` (normalised) and returns each image's detections
    /// in relative corners, best first.
    pub fn run(&self, images: &[f32]) -> Result<Vec<Vec<(BBox, f32)>>> {
        let want = self.batch * self.side * self.side * 3;
        if images.len() != want {
            return Err(DataError::value(
                "images",
                format!(
                    "{} values, expected {want} ({} images of {}x{}x3)",
                    images.len(),
                    self.batch,
                    self.side,
                    self.side
                ),
            ));
        }
        let rows = self.program.run(&[images])?.remove(0);
        let m = self.rule.max_detections;
        Ok(rows
            .chunks_exact(m * 6)
            .map(|img| {
                img.chunks_exact(6)
                    .filter(|r| r[5] >= 0.0)
                    .map(|r| (BBox::new(r[0], r[1], r[2], r[3], r[5] as u32), r[4]))
                    .collect()
            })
            .collect())
    }
}
