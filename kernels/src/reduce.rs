//! Reductions over axes (`wgsl/reduce.wgsl`): one invocation per output element.

use crate::index::{Axis, merge_axes, offset_expr, strides};
use crate::lower::NodeCx;
use crate::template::{Template, f32_lit};
use crate::{BindingRef, KernelError, KernelInstance};
use fovea_graph::ir::ReduceOp;

const REDUCE_WGSL: &str = include_str!("../wgsl/reduce.wgsl");

/// The kept and reduced axes of `shape` as merged `(length, stride)` lists, outermost first.
pub(crate) fn split_axes(shape: &[usize], axes: &[usize]) -> (Vec<Axis>, Vec<Axis>) {
    let st = strides(shape);
    let (mut kept, mut reduced) = (Vec::new(), Vec::new());
    for (i, (&len, &s)) in shape.iter().zip(&st).enumerate() {
        if axes.contains(&i) {
            reduced.push((len, s))
        } else {
            kept.push((len, s))
        }
    }
    (merge_axes(&kept), merge_axes(&reduced))
}

/// Lowers `Reduce { op, axes, keep_dims }`.
pub(crate) fn lower_reduce(cx: &NodeCx, op: ReduceOp, axes: &[usize]) -> Result<KernelInstance, KernelError> {
    let x = cx.in_shape(0);
    let (kept, reduced) = split_axes(x, axes);
    let count: usize = reduced.iter().map(|a| a.0).product();
    let (init, combine, finish) = match op {
        ReduceOp::Sum => (f32_lit(0.0), "acc + v", "acc"),
        ReduceOp::Mean => (f32_lit(0.0), "acc + v", "acc / f32(COUNT)"),
        ReduceOp::Max => (f32_lit(f32::NEG_INFINITY), "max(acc, v)", "acc"),
        ReduceOp::Min => (f32_lit(f32::INFINITY), "min(acc, v)", "acc"),
    };
    let name = format!("reduce_{}", op.name());
    let total = cx.out_numel();
    let grid = cx.linear_grid(total)?;
    let source = Template::new(REDUCE_WGSL)
        .set("TOTAL", total)
        .set("COUNT", count)
        .set("BASE", offset_expr("o", &kept))
        .set("OFFSET", offset_expr("r", &reduced))
        .set("INIT", init)
        .set("COMBINE", combine)
        .set("FINISH", finish)
        .set("WG", grid.workgroup_size)
        .set("INDEX", grid.index_expr("gid"))
        .render(&name)?;
    Ok(cx.linear_instance(
        name,
        "reduce",
        source,
        vec![BindingRef::read(cx.input(0)), BindingRef::write(cx.id)],
        &grid,
        cx.graph.ty(cx.node.inputs[0]).numel() as u64,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::offset_of;

    /// The kernel's index arithmetic, mirrored on the CPU, visits every input element exactly
    /// once and groups them as a direct loop over the kept and reduced coordinates does.
    #[test]
    fn split_axes_partitions_the_input() {
        let shape = [2, 3, 4, 5];
        for axes in [vec![0], vec![1, 2], vec![0, 3], vec![3], vec![0, 1, 2, 3], vec![0, 2]] {
            let (kept, reduced) = split_axes(&shape, &axes);
            let total: usize = kept.iter().map(|a| a.0).product();
            let count: usize = reduced.iter().map(|a| a.0).product();
            assert_eq!(total * count, 120);
            let mut seen = vec![0; 120];
            for o in 0..total {
                for r in 0..count {
                    let idx = offset_of(o, &kept) + offset_of(r, &reduced);
                    seen[idx] += 1;
                    // The output index of an element is its kept coordinates in row-major order.
                    let st = strides(&shape);
                    let coords: Vec<usize> = (0..4).map(|d| idx / st[d] % shape[d]).collect();
                    let mut expect = 0;
                    for d in (0..4).filter(|d| !axes.contains(d)) {
                        expect = expect * shape[d] + coords[d];
                    }
                    assert_eq!(expect, o, "axes {axes:?}");
                }
            }
            assert!(seen.iter().all(|&s| s == 1), "axes {axes:?}");
        }
    }
}
