//! Reductions over axes (`wgsl/reduce.wgsl`): one invocation per output element; sums and
//! means with few outputs over long reductions in two dispatches (`wgsl/reduce_split.wgsl`
//! partials, then the split-K reduction), so that they fill the adapter. A `ReducePrologue`
//! reduces an elementwise expression of its inputs, evaluated as each element is loaded.

use crate::elementwise::{EmitWgsl, broadcast_axes};
use crate::index::{Axis, merge_axes, offset_expr, strides};
use crate::lower::NodeCx;
use crate::template::{Template, f32_lit};
use crate::{BindingRef, BufferRef, KernelError, KernelInstance};
use fovea_graph::ir::{ElemExpr, ReduceOp, broadcast_shapes};
use std::fmt::Write;

/// What a reduction reads: the reduced tensor's shape, the WGSL of its input bindings and of
/// the load of element `q` as `v`, and the input bindings.
struct Source {
    shape: Vec<usize>,
    decls: String,
    load: String,
    bindings: Vec<BindingRef>,
    /// Its kernel's name after `reduce_<op>`: empty, or `_of_<ops>` for a prologue.
    suffix: String,
    /// Operations per reduced element: 1, plus the prologue's.
    flops_per: u64,
}

impl Source {
    /// The input bindings' WGSL and, after them, the read-write f32 array `name`.
    fn with_output(&self, name: &str) -> String {
        let out = self.bindings.len();
        format!(
            "{}\n@group(0) @binding({out}) var<storage, read_write> {name}: array<f32>;",
            self.decls.trim_end()
        )
    }

    /// The kernel's operations: every reduced element's.
    fn flops(&self) -> u64 {
        self.shape.iter().product::<usize>() as u64 * self.flops_per
    }
}

/// The input of a plain reduction, or with `prologue` the expression over the node's inputs
/// (each read at its broadcast offset of `q`).
fn source(cx: &NodeCx, prologue: Option<&ElemExpr>) -> Result<Source, KernelError> {
    let Some(expr) = prologue else {
        return Ok(Source {
            shape: cx.in_shape(0).to_vec(),
            decls: "@group(0) @binding(0) var<storage, read> red_x: array<f32>;".into(),
            load: "        let v = red_x[q];".into(),
            bindings: vec![BindingRef::read(cx.input(0))],
            suffix: String::new(),
            flops_per: 1,
        });
    };
    let n = cx.node.inputs.len();
    let shape = (0..n)
        .try_fold(Vec::new(), |acc: Vec<usize>, k| broadcast_shapes(&acc, cx.in_shape(k)))
        .ok_or_else(|| cx.unsupported("the prologue's inputs do not broadcast"))?;
    let (mut decls, mut load) = (String::new(), String::new());
    for k in 0..n {
        let axes = broadcast_axes(cx.in_shape(k), &shape)
            .ok_or_else(|| cx.unsupported(format!("prologue input {k} does not broadcast")))?;
        let _ = writeln!(
            decls,
            "@group(0) @binding({k}) var<storage, read> red_in{k}: array<f32>;"
        );
        let _ = writeln!(load, "    let x{k} = red_in{k}[{}];", offset_expr("q", &axes));
    }
    let mut next = 0;
    let v = expr.emit(&mut load, &mut next);
    let _ = write!(load, "    let v = {v};");
    let mut ops = Vec::new();
    expr.op_names(&mut ops);
    let mut suffix = format!("_of_{}", ops.join("_"));
    if suffix.len() > 40 {
        suffix = format!("_of_{}ops", ops.len());
    }
    Ok(Source {
        shape,
        decls,
        load,
        bindings: (0..n).map(|k| BindingRef::read(cx.input(k))).collect(),
        suffix,
        flops_per: 1 + expr.op_count() as u64,
    })
}

const REDUCE_WGSL: &str = include_str!("../wgsl/reduce.wgsl");
const REDUCE_SPLIT_WGSL: &str = include_str!("../wgsl/reduce_split.wgsl");

/// A sum or mean is split when each output reduces at least this many elements...
pub const REDUCE_SPLIT_MIN_COUNT: usize = 512;

/// ... and there are fewer outputs than this: enough invocations to fill a GPU's compute units
/// or lavapipe's cores (batch-norm statistics of 24-96 channels otherwise run as one or two
/// workgroups, one thread on lavapipe, a sliver of a GPU).
pub const REDUCE_SPLIT_INVOCATIONS: usize = 4096;

/// Each split reduces at least this many elements (its partial costs a store and a load).
const REDUCE_SPLIT_MIN_CHUNK: usize = 64;

/// The number of splits of a sum or mean of `count` elements into each of `total` outputs: 1
/// (one dispatch) unless the reduction is long and the outputs few; never an empty split.
pub fn reduce_splits(total: usize, count: usize) -> usize {
    if count < REDUCE_SPLIT_MIN_COUNT || total >= REDUCE_SPLIT_INVOCATIONS {
        return 1;
    }
    let splits = REDUCE_SPLIT_INVOCATIONS
        .div_ceil(total.max(1))
        .min(count / REDUCE_SPLIT_MIN_CHUNK)
        .clamp(1, 1024);
    count.div_ceil(count.div_ceil(splits))
}

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

/// Lowers `Reduce { op, axes, keep_dims }`, or with `prologue` a `ReducePrologue` of that
/// expression: one kernel, or for a long sum or mean into few outputs ([`reduce_splits`] > 1)
/// the partials and their reduction.
pub(crate) fn lower_reduce(
    cx: &NodeCx,
    op: ReduceOp,
    axes: &[usize],
    prologue: Option<&ElemExpr>,
) -> Result<Vec<KernelInstance>, KernelError> {
    let src = source(cx, prologue)?;
    let (kept, reduced) = split_axes(&src.shape, axes);
    let count: usize = reduced.iter().map(|a| a.0).product();
    let total = cx.out_numel() as usize;
    let splits = reduce_splits(total, count);
    if splits > 1 && matches!(op, ReduceOp::Sum | ReduceOp::Mean) {
        return lower_split(cx, op, src, (&kept, &reduced), (total, count), splits);
    }
    let (init, combine, finish) = match op {
        ReduceOp::Sum => (f32_lit(0.0), "acc + v", "acc"),
        ReduceOp::Mean => (f32_lit(0.0), "acc + v", "acc / f32(COUNT)"),
        ReduceOp::Max => (f32_lit(f32::NEG_INFINITY), "max(acc, v)", "acc"),
        ReduceOp::Min => (f32_lit(f32::INFINITY), "min(acc, v)", "acc"),
    };
    let name = format!("reduce_{}{}", op.name(), src.suffix);
    let total = cx.out_numel();
    let grid = cx.linear_grid(total)?;
    let (decls, flops) = (src.with_output("red_y"), src.flops());
    let mut bindings = src.bindings;
    bindings.push(BindingRef::write(cx.id));
    let source = Template::new(REDUCE_WGSL)
        .set("TOTAL", total)
        .set("COUNT", count)
        .set("BINDINGS", decls)
        .set("LOAD", src.load)
        .set("BASE", offset_expr("o", &kept))
        .set("OFFSET", offset_expr("r", &reduced))
        .set("INIT", init)
        .set("COMBINE", combine)
        .set("FINISH", finish)
        .set("WG", grid.workgroup_size)
        .set("INDEX", grid.index_expr("gid"))
        .render(&name)?;
    Ok(vec![cx.linear_instance(name, "reduce", source, bindings, &grid, flops)])
}

/// The two dispatches of a split sum or mean of `count` elements into each of `total`
/// outputs: `reduce_split_<op>_<splits>` writes `splits x total` partials into the scratch buffer, the split-K reduction adds them up.
fn lower_split(
    cx: &NodeCx,
    op: ReduceOp,
    src: Source,
    (kept, reduced): (&[Axis], &[Axis]),
    (total, count): (usize, usize),
    splits: usize,
) -> Result<Vec<KernelInstance>, KernelError> {
    let chunk = count.div_ceil(splits);
    let parts = splits * total;
    let scale = if op == ReduceOp::Mean { 1.0 / count as f32 } else { 1.0 };
    let name = format!("reduce_split_{}{}_{splits}", op.name(), src.suffix);
    let grid = cx.linear_grid(parts as u64)?;
    let (decls, flops) = (src.with_output("red_partials"), src.flops());
    let mut bindings = src.bindings;
    bindings.push(BindingRef {
        buffer: BufferRef::Scratch(cx.id),
        writable: true,
    });
    let source = Template::new(REDUCE_SPLIT_WGSL)
        .set("TOTAL", total)
        .set("BINDINGS", decls)
        .set("LOAD", src.load)
        .set("COUNT", count)
        .set("CHUNK", chunk)
        .set("PARTS", parts)
        .set("BASE", offset_expr("o", kept))
        .set("OFFSET", offset_expr("r", reduced))
        .set("SCALE", f32_lit(scale))
        .set("WG", grid.workgroup_size)
        .set("INDEX", grid.index_expr("gid"))
        .render(&name)?;
    let mut partials = cx.linear_instance(name, "reduce_split", source, bindings, &grid, flops);
    partials.scratch_bytes = (parts * 4) as u64;
    let in_bytes: usize = cx.node.inputs.iter().map(|&i| cx.graph.ty(i).size_bytes()).sum();
    partials.bytes = in_bytes as u64 + partials.scratch_bytes;
    let what = format!("reduce_{}", op.name());
    let reduce = crate::gemm::split_k_reduce(&what, cx.id, None, total, splits, cx.target)?
        .ok_or_else(|| cx.too_large("reduction"))?;
    Ok(vec![partials, reduce])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::offset_of;

    /// The kernel's index arithmetic, mirrored on the CPU, visits every input element exactly
    /// once and groups them as a direct loop over the kept and reduced coordinates does.
    #[test]
    fn splits_only_long_reductions_into_few_outputs_and_never_leave_one_empty() {
        assert_eq!(reduce_splits(48, 100), 1);
        assert_eq!(reduce_splits(REDUCE_SPLIT_INVOCATIONS, 1 << 20), 1);
        for (total, count) in [
            (48usize, 16384usize),
            (1, 512),
            (3, 1000),
            (96, 4096),
            (7, 100_003),
            (4000, 600),
        ] {
            let s = reduce_splits(total, count);
            assert!(s > 1, "{total} x {count}");
            let chunk = count.div_ceil(s);
            assert!(
                chunk >= REDUCE_SPLIT_MIN_CHUNK / 2 && (s - 1) * chunk < count,
                "{total} x {count}: {s}"
            );
        }
    }

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
