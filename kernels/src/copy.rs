//! Strided copies (`wgsl/copy.wgsl`): transpose, slice and broadcast, one invocation per
//! output element.

use crate::concat::wgsl_type;
use crate::elementwise::broadcast_axes;
use crate::index::{Axis, merge_axes, offset_expr, strides};
use crate::lower::NodeCx;
use crate::template::Template;
use crate::{BindingRef, KernelError, KernelInstance};

const COPY_WGSL: &str = include_str!("../wgsl/copy.wgsl");

/// The output's axes of a transpose as `(length, input stride)`, merged where they stay
/// contiguous.
pub(crate) fn transpose_axes(shape: &[usize], perm: &[usize]) -> Vec<Axis> {
    let st = strides(shape);
    merge_axes(&perm.iter().map(|&p| (shape[p], st[p])).collect::<Vec<_>>())
}

/// The output's axes of a slice and the offset of its first element.
pub(crate) fn slice_axes(shape: &[usize], starts: &[usize], sizes: &[usize]) -> (Vec<Axis>, usize) {
    let st = strides(shape);
    let base = starts.iter().zip(&st).map(|(a, s)| a * s).sum();
    (
        merge_axes(&sizes.iter().zip(&st).map(|(&n, &s)| (n, s)).collect::<Vec<_>>()),
        base,
    )
}

/// Lowers `Transpose { perm }`.
pub(crate) fn lower_transpose(cx: &NodeCx, perm: &[usize]) -> Result<KernelInstance, KernelError> {
    copy_kernel(cx, "transpose", &transpose_axes(cx.in_shape(0), perm), 0)
}

/// Lowers `Slice { starts, sizes }`.
pub(crate) fn lower_slice(cx: &NodeCx, starts: &[usize], sizes: &[usize]) -> Result<KernelInstance, KernelError> {
    let (axes, base) = slice_axes(cx.in_shape(0), starts, sizes);
    copy_kernel(cx, "slice", &axes, base)
}

/// Lowers `Broadcast { shape }`.
pub(crate) fn lower_broadcast(cx: &NodeCx) -> Result<KernelInstance, KernelError> {
    let (input, out) = (cx.in_shape(0), cx.out_shape());
    let axes =
        broadcast_axes(input, out).ok_or_else(|| cx.unsupported(format!("{input:?} does not broadcast to {out:?}")))?;
    copy_kernel(cx, "broadcast", &axes, 0)
}

/// The copy `y[i] = x[base + offset(i, axes)]` over the node's output.
fn copy_kernel(cx: &NodeCx, name: &str, axes: &[Axis], base: usize) -> Result<KernelInstance, KernelError> {
    let total = cx.out_numel();
    let grid = cx.linear_grid(total)?;
    let offset = offset_expr("i", axes);
    let src = if base == 0 {
        offset
    } else {
        format!("{base}u + {offset}")
    };
    let source = Template::new(COPY_WGSL)
        .set("TOTAL", total)
        .set("SRC", src)
        .set("T", wgsl_type(cx.node.ty.dtype))
        .set("WG", grid.workgroup_size)
        .set("INDEX", grid.index_expr("gid"))
        .render(name)?;
    Ok(KernelInstance {
        name: name.to_string(),
        family: "copy",
        node: cx.id,
        source,
        entry_point: "main",
        bindings: vec![BindingRef::read(cx.input(0)), BindingRef::write(cx.id)],
        workgroups: grid.workgroups,
        workgroup_size: [grid.workgroup_size, 1, 1],
        flops: 0,
        bytes: 2 * total * cx.node.ty.dtype.size_bytes() as u64,
        scratch_bytes: 0,
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

    #[test]
    fn slice_offsets_pick_the_box() {
        let shape = [3, 4, 5];
        let ist = strides(&shape);
        for (starts, sizes) in [
            ([1, 0, 2], [2, 4, 3]),
            ([0, 0, 0], [3, 4, 5]),
            ([2, 3, 4], [1, 1, 1]),
            ([0, 1, 0], [3, 2, 5]),
        ] {
            let ost = strides(&sizes);
            let (axes, base) = slice_axes(&shape, &starts, &sizes);
            for i in 0..sizes.iter().product() {
                let expect: usize = (0..3).map(|a| (i / ost[a] % sizes[a] + starts[a]) * ist[a]).sum();
                assert_eq!(base + offset_of(i, &axes), expect, "{starts:?} {sizes:?}");
            }
        }
    }
}
