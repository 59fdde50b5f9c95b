//! The text dump: one line per node, stable and diffable.

use super::{NodeAnnotation, bytes_moved, flops};
use crate::ir::{Graph, NodeId, Op, PadMode};
use std::fmt::Write;

fn attrs(op: &Op) -> String {
    match op {
        Op::Input { name } | Op::Param { name, .. } => name.clone(),
        Op::Conv2d(g) | Op::Conv2dBackpropInput { geom: g, .. } | Op::Conv2dBackpropFilter { geom: g, .. } => format!(
            "stride={}x{} dilation={}x{} pad=({},{},{},{}) groups={}",
            g.stride.0,
            g.stride.1,
            g.dilation.0,
            g.dilation.1,
            g.pad.top,
            g.pad.bottom,
            g.pad.left,
            g.pad.right,
            g.groups
        ),
        Op::ConvTranspose2d { geom: g, out_pad } => format!(
            "stride={}x{} dilation={}x{} crop=({},{},{},{}) out_pad={}x{}",
            g.stride.0,
            g.stride.1,
            g.dilation.0,
            g.dilation.1,
            g.pad.top,
            g.pad.bottom,
            g.pad.left,
            g.pad.right,
            out_pad.0,
            out_pad.1
        ),
        Op::Pool2d(p) | Op::Pool2dBackprop(p) => format!(
            "size={}x{} stride={}x{} pad=({},{},{},{})",
            p.size.0, p.size.1, p.stride.0, p.stride.1, p.pad.top, p.pad.bottom, p.pad.left, p.pad.right
        ),
        Op::MatMul { trans_a, trans_b } => format!("trans_a={trans_a} trans_b={trans_b}"),
        Op::PixelShuffleMatMul { block } => format!("block={}x{}", block.0, block.1),
        Op::Reduce { axes, keep_dims, .. } => format!("axes={axes:?} keep_dims={keep_dims}"),
        Op::Elementwise { expr } => expr.describe(),
        Op::GemmEpilogue { base, expr } => format!("{} epilogue={}", attrs(base), expr.describe()),
        Op::ReducePrologue {
            axes, keep_dims, expr, ..
        } => format!("axes={axes:?} keep_dims={keep_dims} prologue={}", expr.describe()),
        Op::Fill { value } => format!("value={value}"),
        Op::Constant { value } => value.describe(),
        Op::Concat { axis } => format!("axis={axis}"),
        Op::Transpose { perm } => format!("perm={perm:?}"),
        Op::Slice { starts, .. } => format!("starts={starts:?}"),
        Op::Dropout { rate, training } => format!("rate={rate} training={training}"),
        Op::BatchNormInference { epsilon } => format!("epsilon={epsilon}"),
        Op::Pad {
            pads,
            value,
            mode: PadMode::Constant,
        } => format!("pads={pads:?} value={value}"),
        Op::Pad { pads, .. } | Op::PadBackprop { pads, .. } => format!("pads={pads:?}"),
        Op::Gather { axis, batch_dims } => format!("axis={axis} batch_dims={batch_dims}"),
        Op::ScatterAdd { axis, batch_dims, len } => format!("axis={axis} batch_dims={batch_dims} len={len}"),
        Op::TopK { k } => format!("k={k}"),
        Op::ArgSort { axis, descending } => format!("axis={axis} descending={descending}"),
        Op::ArgMax { axis } => format!("axis={axis}"),
        Op::InstanceNorm { epsilon } => format!("epsilon={epsilon}"),
        Op::Nms {
            iou_threshold,
            score_threshold,
            max_detections,
        } => format!("iou={iou_threshold} score={score_threshold} max_detections={max_detections}"),
        _ => String::new(),
    }
}

/// One line per node: id, op, output type, inputs, layer, FLOPs, bytes; then the annotation
/// (fusion group, kernels and workgroups, buffer and offset) when given.
pub fn to_text(g: &Graph, notes: Option<&[NodeAnnotation]>) -> String {
    let mut out = String::new();
    for (i, n) in g.nodes.iter().enumerate() {
        let id = NodeId(i as u32);
        let ins: Vec<String> = n.inputs.iter().map(|x| x.to_string()).collect();
        let _ = write!(
            out,
            "{id:<6} {:<24} {:<22} ({})",
            n.op.name(),
            n.ty.to_string(),
            ins.join(", ")
        );
        let a = attrs(&n.op);
        if !a.is_empty() {
            let _ = write!(out, " [{a}]");
        }
        let _ = write!(out, "  layer={}", n.layer);
        let (f, b) = (flops(g, id), bytes_moved(g, id));
        if f > 0 {
            let _ = write!(out, " flops={f}");
        }
        if b > 0 {
            let _ = write!(out, " bytes={b}");
        }
        if let Some(note) = notes.and_then(|n| n.get(i)) {
            if let Some(grp) = note.group {
                let _ = write!(out, " group={grp}");
            }
            for k in &note.kernels {
                let w = k.workgroups;
                let s = k.workgroup_size;
                let _ = write!(
                    out,
                    " kernel={}<{}x{}x{} of {}x{}x{}>",
                    k.name, w[0], w[1], w[2], s[0], s[1], s[2]
                );
            }
            if let Some(buf) = &note.buffer {
                let _ = write!(out, " buffer={buf}+{}", note.offset);
            }
        }
        out.push('\n');
    }
    let outs: Vec<String> = g.outputs.iter().map(|x| x.to_string()).collect();
    let _ = writeln!(out, "outputs: {}", outs.join(", "));
    if !g.updates.is_empty() {
        let ups: Vec<String> = g.updates.iter().map(|(p, v)| format!("{p} <- {v}")).collect();
        let _ = writeln!(out, "updates: {}", ups.join(", "));
    }
    out
}
