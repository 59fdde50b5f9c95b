//! Axis permutation (`wgsl/transpose.wgsl`): one invocation per output element.

use crate::concat::wgsl_type;
use crate::index::{merge_axes, offset_expr, strides};
use crate::lower::NodeCx;
use crate::template::Template;
use crate::{BindingRef, KernelError, KernelInstance};

const TRANSPOSE_WGSL: &str = include_str!("../wgsl/transpose.wgsl");

/// The output's axes as `(length, input stride)`, merged where they stay contiguous.
pub(crate) fn transpose_axes(shape: &[usize], perm: &[usize]) -> Vec<(usize, usize)> {
    let st = strides(shape);
    merge_axes(&perm.iter().map(|&p| (shape[p], st[p])).collect::<Vec<_>>())
}

/// Lowers `Transpose { perm }`.
pub(crate) fn lower_transpose(cx: &NodeCx, perm: &[usize]) -> Result<KernelInstance, KernelError> {
    let axes = transpose_axes(cx.in_shape(0), perm);
    let total = cx.out_numel();
    let grid = cx.linear_grid(total)?;
    let name = "transpose";
    let source = Template::new(TRANSPOSE_WGSL)
        .set("TOTAL", total)
        .set("SRC", offset_expr("i", &axes))
        .set("T", wgsl_type(cx.node.ty.dtype))
        .set("WG", grid.workgroup_size)
        .set("INDEX", grid.index_expr("gid"))
        .render(name)?;
    Ok(KernelInstance {
        name: name.to_string(),
        family: "transpose",
        node: cx.id,
        source,
        entry_point: "main",
        bindings: vec![BindingRef::read(cx.input(0)), BindingRef::write(cx.id)],
        workgroups: grid.workgroups,
        workgroup_size: [grid.workgroup_size, 1, 1],
        flops: 0,
        bytes: cx.io_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::offset_of;

    #[test]
    fn source_offsets_follow_the_permutation() {
        let shape = [2, 3, 4, 5];
        let ist = strides(&shape);
        for perm in [[0, 3, 1, 2], [0, 1, 2, 3], [3, 2, 1, 0], [1, 2, 0, 3], [0, 2, 3, 1]] {
            let out: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
            let ost = strides(&out);
            let axes = transpose_axes(&shape, &perm);
            for i in 0..120 {
                let expect: usize = (0..4).map(|a| (i / ost[a] % out[a]) * ist[perm[a]]).sum();
                assert_eq!(offset_of(i, &axes), expect, "perm {perm:?}");
            }
        }
        assert_eq!(transpose_axes(&shape, &[0, 1, 2, 3]), vec![(120, 1)]);
    }
}
