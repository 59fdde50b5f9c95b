//! Instance normalisation (`wgsl/instance_norm.wgsl`): one 64-invocation workgroup per
//! `(n, c)` plane, reducing its `H * W` elements in workgroup memory.

use crate::dispatch::LinearGrid;
use crate::lower::NodeCx;
use crate::template::{Template, f32_lit};
use crate::{BindingRef, KernelError, KernelInstance};

const INSTANCE_NORM_WGSL: &str = include_str!("../wgsl/instance_norm.wgsl");

/// Invocations per workgroup (fixed in the WGSL, within every WebGPU adapter's limits).
pub const INSTANCE_NORM_WORKGROUP_SIZE: u32 = 64;

/// Lowers `InstanceNorm { epsilon }` (inputs x `(N, H, W, C)`, gamma, beta).
pub(crate) fn lower_instance_norm(cx: &NodeCx, epsilon: f32) -> Result<KernelInstance, KernelError> {
    let s = cx.out_shape();
    let (hw, c) = (s[1] * s[2], s[3]);
    let planes = (s[0] * c) as u64;
    let grid = LinearGrid::new(planes, 1, cx.target).ok_or_else(|| cx.too_large("instance norm"))?;
    let name = "instance_norm";
    let source = Template::new(INSTANCE_NORM_WGSL)
        .set("PLANES", planes)
        .set("HW", hw)
        .set("C", c)
        .set("EPS", f32_lit(epsilon))
        .set("GRID_X", grid.row)
        .render(name)?;
    let mut bindings: Vec<BindingRef> = (0..3).map(|i| BindingRef::read(cx.input(i))).collect();
    bindings.push(BindingRef::write(cx.id));
    Ok(KernelInstance {
        name: name.into(),
        family: "instance_norm",
        node: cx.id,
        source,
        entry_point: "main",
        bindings,
        workgroups: grid.workgroups,
        workgroup_size: [INSTANCE_NORM_WORKGROUP_SIZE, 1, 1],
        flops: 7 * cx.out_numel(),
        bytes: cx.io_bytes(),
        scratch_bytes: 0,
    })
}
