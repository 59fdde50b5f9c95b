//! Concatenation (`wgsl/concat.wgsl`): one dispatch per input, each copying into its slice of
//! the shared output buffer.

use crate::lower::NodeCx;
use crate::template::Template;
use crate::{BindingRef, KernelError, KernelInstance};
use fovea_graph::DType;

const CONCAT_WGSL: &str = include_str!("../wgsl/concat.wgsl");

/// The WGSL element type for `dtype`.
pub(crate) fn wgsl_type(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "f32",
        DType::I32 => "i32",
    }
}

/// Lowers `Concat { axis }` to one copy per input.
pub(crate) fn lower_concat(cx: &NodeCx, axis: usize) -> Result<Vec<KernelInstance>, KernelError> {
    let out = cx.out_shape();
    let inner: usize = out[axis + 1..].iter().product();
    let mut offset = 0;
    let mut kernels = Vec::new();
    for i in 0..cx.node.inputs.len() {
        let shape = cx.in_shape(i);
        let total = cx.graph.ty(cx.node.inputs[i]).numel() as u64;
        let grid = cx.linear_grid(total)?;
        let name = format!("concat_{i}");
        let source = Template::new(CONCAT_WGSL)
            .set("TOTAL", total)
            .set("SLICE", shape[axis] * inner)
            .set("OUT_SLICE", out[axis] * inner)
            .set("OFFSET", offset * inner)
            .set("T", wgsl_type(cx.node.ty.dtype))
            .set("WG", grid.workgroup_size)
            .set("INDEX", grid.index_expr("gid"))
            .render(&name)?;
        offset += shape[axis];
        kernels.push(KernelInstance {
            name,
            family: "concat",
            node: cx.id,
            source,
            entry_point: "main",
            bindings: vec![BindingRef::read(cx.input(i)), BindingRef::write(cx.id)],
            workgroups: grid.workgroups,
            workgroup_size: [grid.workgroup_size, 1, 1],
            flops: 0,
            bytes: 8 * total,
            scratch_bytes: 0,
        });
    }
    Ok(kernels)
}
