//! Non-maximum suppression (`wgsl/nms.wgsl`): one 64-invocation workgroup per image runs the
//! per-class greedy suppression over its sorted candidates and merges the classes' kept boxes
//! into the image's best `max_detections`, so only the final rows leave the device.

use crate::dispatch::LinearGrid;
use crate::lower::NodeCx;
use crate::template::{Template, f32_lit};
use crate::{BindingRef, KernelError, KernelInstance};

const NMS_WGSL: &str = include_str!("../wgsl/nms.wgsl");

/// Invocations per workgroup (fixed in the WGSL).
pub const NMS_WORKGROUP_SIZE: u32 = 64;

/// Workgroup memory the kernel needs for `classes` classes of `candidates` each: one
/// suppression bit per candidate (whole 32-bit words per class), each class's end and a flag.
pub fn nms_workgroup_bytes(classes: usize, candidates: usize) -> u64 {
    4 * (classes * candidates.div_ceil(32) + classes + 1) as u64
}

/// Lowers `Nms { iou_threshold, score_threshold, max_detections }` (inputs scores `(B, C, K)`,
/// boxes `(B, C, K, 4)`).
pub(crate) fn lower_nms(
    cx: &NodeCx,
    iou_threshold: f32,
    score_threshold: f32,
    max_detections: usize,
) -> Result<KernelInstance, KernelError> {
    let s = cx.in_shape(0);
    let (b, c, k) = (s[0], s[1], s[2]);
    let need = nms_workgroup_bytes(c, k);
    if need > cx.target.max_workgroup_storage_bytes as u64 {
        return Err(cx.unsupported(format!(
            "{c} classes x {k} candidates per class need {need} bytes of workgroup memory, more than \
             the adapter's {} (fewer classes or candidates)",
            cx.target.max_workgroup_storage_bytes
        )));
    }
    let grid = LinearGrid::new(b as u64, 1, cx.target).ok_or_else(|| cx.too_large("nms"))?;
    let name = "nms";
    let source = Template::new(NMS_WGSL)
        .set("B", b)
        .set("C", c)
        .set("K", k)
        .set("M", max_detections)
        .set("WORDS", k.div_ceil(32))
        .set("MASK_WORDS", c * k.div_ceil(32))
        .set("IOU", f32_lit(iou_threshold))
        .set("SCORE", f32_lit(score_threshold))
        .set("GRID_X", grid.row)
        .render(name)?;
    Ok(KernelInstance {
        name: name.into(),
        family: "nms",
        node: cx.id,
        source,
        entry_point: "main",
        bindings: vec![
            BindingRef::read(cx.input(0)),
            BindingRef::read(cx.input(1)),
            BindingRef::write(cx.id),
        ],
        workgroups: grid.workgroups,
        workgroup_size: [NMS_WORKGROUP_SIZE, 1, 1],
        // Each kept box is tested against the later candidates of its class (about 20 flops each).
        flops: 20 * (b * c * k.min(max_detections) * k) as u64,
        bytes: cx.io_bytes(),
        scratch_bytes: 0,
    })
}
