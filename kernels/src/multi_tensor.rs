//! Generated multi-tensor kernels (`wgsl/multi_tensor.wgsl` is the shell): many small
//! elementwise updates over tensors living at element offsets of a few whole buffers (the
//! optimizer step of every parameter), evaluated by ONE dispatch. The engine decides what goes
//! in and where everything lives and hands over a plain-data [`MultiTensorSpec`];
//! [`multi_tensor_kernel`] turns it into a [`KernelInstance`].
//!
//! Per invocation (one element `j` of one segment), every slot an operand or output names is
//! loaded at most once, on first use, and kept in a local; a member's result replaces the local
//! of the slot it is stored to, so a later member reading that slot sees the new value without
//! reloading it, and all loads of a member happen before its store (in-place updates). Only the
//! last store to a slot is written to memory.

use crate::dispatch::LinearGrid;
use crate::elementwise::{ElemExpr, EmitWgsl, MAX_STORAGE_BUFFERS};
use crate::template::{Template, u32_lit};
use crate::{BindingRef, BufferRef, KernelError, KernelInstance, Target};
use fovea_graph::NodeId;
use std::collections::HashMap;
use std::fmt::Write;

const MULTI_TENSOR_WGSL: &str = include_str!("../wgsl/multi_tensor.wgsl");

/// Where an operand or result lives: binding `binding` of the kernel (a whole buffer, see
/// [`BufferRef::Buffer`]), starting at element `offset` of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slot {
    /// Index into [`MultiTensorSpec::bindings`].
    pub binding: usize,
    /// Element (f32) offset of the tensor's first element in that buffer.
    pub offset: u64,
}

/// An operand of a [`Member`]: `ElemExpr::Input(i)` of its expression is `operands[i]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operand {
    /// Element j of a tensor of the segment's length.
    Tensor(Slot),
    /// Element 0 of a one-element tensor (a learning rate, a step size), same for every j.
    Scalar(Slot),
    /// The value computed by member `k` (< this member's index) of the same segment at j.
    Member(usize),
}

/// One elementwise computation of a segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The expression over `Input(i) = operands[i]`.
    pub expr: ElemExpr,
    /// The operands.
    pub operands: Vec<Operand>,
    /// Where the result is stored at element j (None: only used by later members).
    pub out: Option<Slot>,
}

/// A group of members over the same `len` elements, evaluated in order by one invocation per
/// element j.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Elements (a segment of length 0 does nothing).
    pub len: u64,
    /// The members, in evaluation order.
    pub members: Vec<Member>,
}

/// Everything one multi-tensor dispatch computes.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiTensorSpec {
    /// Graph node the dispatch is attributed to (for names, dumps, errors).
    pub node: NodeId,
    /// One whole-buffer binding each ([`BufferRef::Buffer`]), all declared
    /// `var<storage, read_write>` and [`BindingRef::writable`].
    pub bindings: Vec<BufferRef>,
    /// The segments; different segments, and different elements of one, never touch the same
    /// element of a buffer (except one-element scalars, which are only read).
    pub segments: Vec<Segment>,
}

/// A distinct slot of a segment: read at `offset + j` (tensor) or at `offset` (scalar).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SlotKey {
    scalar: bool,
    binding: usize,
    offset: u64,
}

/// A member operand after numbering a segment's slots in first-use order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arg {
    /// The segment's slot with this number.
    Slot(usize),
    /// An earlier member's value.
    Member(usize),
}

/// A segment with its offsets taken out: segments with equal shapes share one code path.
#[derive(Debug, Clone, PartialEq)]
struct Shape {
    /// `(scalar, binding)` of each numbered slot.
    slots: Vec<(bool, usize)>,
    /// Per member: its expression, its operands (None where the expression does not read one),
    /// and the slot it is stored to.
    members: Vec<(ElemExpr, Vec<Option<Arg>>, Option<usize>)>,
}

/// Code paths: a shape and the segments (indices into the spec) that have it, in spec order.
struct Kind {
    shape: Shape,
    segments: Vec<usize>,
    /// Per segment of the kind, the offset of each numbered slot.
    offsets: Vec<Vec<u64>>,
}

/// An `Unsupported` error about the multi-tensor dispatch of `spec`.
fn unsupported(spec: &MultiTensorSpec, message: impl Into<String>) -> KernelError {
    KernelError::Unsupported {
        node: format!("{} (multi_tensor)", spec.node),
        layer: "multi-tensor update".to_string(),
        message: message.into(),
    }
}

/// The shape of segment `s` and the offsets of its numbered slots, after checking it against
/// `spec`'s bindings.
fn segment_shape(spec: &MultiTensorSpec, s: usize) -> Result<(Shape, Vec<u64>), KernelError> {
    let seg = &spec.segments[s];
    let mut keys: Vec<SlotKey> = Vec::new();
    let mut slot = |key: SlotKey, what: &str| -> Result<usize, KernelError> {
        if key.binding >= spec.bindings.len() {
            return Err(unsupported(
                spec,
                format!(
                    "segment {s}: {what} names binding {} of {}",
                    key.binding,
                    spec.bindings.len()
                ),
            ));
        }
        let end = key.offset + if key.scalar { 1 } else { seg.len };
        if end > 1 << 32 {
            return Err(unsupported(
                spec,
                format!(
                    "segment {s}: {what} reaches element {end} of binding {}, beyond u32 indexing",
                    key.binding
                ),
            ));
        }
        Ok(keys.iter().position(|k| *k == key).unwrap_or_else(|| {
            keys.push(key);
            keys.len() - 1
        }))
    };
    let mut members = Vec::with_capacity(seg.members.len());
    for (m, member) in seg.members.iter().enumerate() {
        let mut read = vec![false; member.operands.len()];
        let mut bad = None;
        member.expr.visit_inputs(&mut |i| match read.get_mut(i) {
            Some(r) => *r = true,
            None => bad = Some(i),
        });
        if let Some(i) = bad {
            return Err(unsupported(
                spec,
                format!(
                    "segment {s} member {m}: the expression reads operand {i} of {}",
                    member.operands.len()
                ),
            ));
        }
        let mut args = Vec::with_capacity(member.operands.len());
        for (i, (op, &read)) in member.operands.iter().zip(&read).enumerate() {
            let what = format!("member {m} operand {i}");
            let arg = match *op {
                Operand::Member(k) if k >= m => {
                    return Err(unsupported(
                        spec,
                        format!("segment {s}: {what} is the value of member {k}, not an earlier member"),
                    ));
                }
                Operand::Member(k) => Arg::Member(k),
                Operand::Tensor(Slot { binding, offset }) | Operand::Scalar(Slot { binding, offset }) => {
                    let scalar = matches!(op, Operand::Scalar(_));
                    Arg::Slot(slot(
                        SlotKey {
                            scalar,
                            binding,
                            offset,
                        },
                        &what,
                    )?)
                }
            };
            args.push(read.then_some(arg));
        }
        let out = match member.out {
            None => None,
            Some(Slot { binding, offset }) => Some(slot(
                SlotKey {
                    scalar: false,
                    binding,
                    offset,
                },
                &format!("member {m} output"),
            )?),
        };
        members.push((member.expr.clone(), args, out));
    }
    let shape = Shape {
        slots: keys.iter().map(|k| (k.scalar, k.binding)).collect(),
        members,
    };
    Ok((shape, keys.iter().map(|k| k.offset).collect()))
}

/// Builds the kernel evaluating every member of every segment of `spec` at every element, in
/// one dispatch (one invocation per element of the concatenated segments). Errors name the
/// problem: too many bindings, a binding that is not a whole buffer or that nothing reads or
/// writes, a binding, operand or member index out of range, no segments or no elements, or
/// indices beyond `u32`.
pub fn multi_tensor_kernel(spec: &MultiTensorSpec, target: &Target) -> Result<KernelInstance, KernelError> {
    let nb = spec.bindings.len();
    if nb > MAX_STORAGE_BUFFERS {
        return Err(unsupported(
            spec,
            format!("{nb} bindings exceed the {MAX_STORAGE_BUFFERS} storage buffers a kernel may bind"),
        ));
    }
    if let Some(i) = spec.bindings.iter().position(|b| !matches!(b, BufferRef::Buffer(_))) {
        return Err(unsupported(
            spec,
            format!("binding {i} is not a whole buffer (BufferRef::Buffer): offsets are from a buffer's first element"),
        ));
    }
    if spec.segments.is_empty() {
        return Err(unsupported(spec, "no segments to update"));
    }

    // Group the non-empty segments into kinds, in order of first appearance.
    let mut kinds: Vec<Kind> = Vec::new();
    for s in 0..spec.segments.len() {
        let (shape, offsets) = segment_shape(spec, s)?;
        if spec.segments[s].len == 0 {
            continue;
        }
        match kinds.iter_mut().find(|k| k.shape == shape) {
            Some(k) => {
                k.segments.push(s);
                k.offsets.push(offsets);
            }
            None => kinds.push(Kind {
                shape,
                segments: vec![s],
                offsets: vec![offsets],
            }),
        }
    }
    let total: u64 = spec.segments.iter().map(|s| s.len).sum();
    if total == 0 {
        return Err(unsupported(spec, "the segments have no elements"));
    }
    if total > u32::MAX as u64 {
        return Err(unsupported(
            spec,
            format!("{total} elements in all exceed u32 indexing"),
        ));
    }
    let mut used = vec![false; nb];
    for k in &kinds {
        for (_, args, out) in &k.shape.members {
            for sid in args.iter().flatten().filter_map(|a| match a {
                Arg::Slot(sid) => Some(*sid),
                Arg::Member(_) => None,
            }) {
                used[k.shape.slots[sid].1] = true;
            }
            if let Some(sid) = out {
                used[k.shape.slots[*sid].1] = true;
            }
        }
    }
    if let Some(i) = used.iter().position(|u| !u) {
        return Err(unsupported(
            spec,
            format!("binding {i} is read or written by no member"),
        ));
    }

    // Global order: kind by kind, segments of a kind in spec order.
    let order: Vec<usize> = kinds.iter().flat_map(|k| k.segments.iter().copied()).collect();
    let mut starts = Vec::with_capacity(order.len());
    let mut at = 0u64;
    for &s in &order {
        starts.push(at);
        at += spec.segments[s].len;
    }

    let mut bindings_code = String::new();
    for i in 0..nb {
        let _ = writeln!(
            bindings_code,
            "@group(0) @binding({i}) var<storage, read_write> mt_b{i}: array<f32>;"
        );
    }
    let nseg = order.len();

    // Member expressions as functions of the operands they read, shared by identical ones; one
    // function per kind taking the element and the kind's varying offsets.
    let mut functions = String::new();
    let mut exprs: Vec<(&ElemExpr, Vec<usize>)> = Vec::new();
    let mut kind_fns = String::new();
    let (mut flops, mut bytes) = (0u64, 0u64);
    // Per kind, the distinct offset columns that vary between its segments (parameter `oN`).
    let mut columns: Vec<Vec<Vec<u64>>> = Vec::with_capacity(kinds.len());
    for (ki, kind) in kinds.iter().enumerate() {
        let shape = &kind.shape;
        let len: u64 = kind.segments.iter().map(|&s| spec.segments[s].len).sum();
        // Each slot's base index: a literal when every segment of the kind has the same offset,
        // else a parameter, shared by slots at the same offsets (m, v and p of one parameter
        // in three state buffers).
        let mut cols: Vec<Vec<u64>> = Vec::new();
        let mut base = Vec::with_capacity(shape.slots.len());
        for sid in 0..shape.slots.len() {
            let offs: Vec<u64> = kind.offsets.iter().map(|o| o[sid]).collect();
            if offs.iter().all(|&o| o == offs[0]) {
                base.push(u32_lit(offs[0]));
            } else {
                let p = cols.iter().position(|c| *c == offs).unwrap_or_else(|| {
                    cols.push(offs);
                    cols.len() - 1
                });
                base.push(format!("o{p}"));
            }
        }
        let index = |sid: usize| -> String {
            let (scalar, _) = shape.slots[sid];
            match (scalar, base[sid].as_str()) {
                (true, b) => b.to_string(),
                (false, "0u") => "j".to_string(),
                (false, b) => format!("{b} + j"),
            }
        };
        let last_write: HashMap<usize, usize> = shape
            .members
            .iter()
            .enumerate()
            .filter_map(|(m, (_, _, out))| out.map(|sid| (sid, m)))
            .collect();
        let mut body = String::new();
        let mut value: HashMap<usize, String> = HashMap::new();
        for (m, (expr, args, out)) in shape.members.iter().enumerate() {
            let reads: Vec<usize> = (0..args.len()).filter(|&i| args[i].is_some()).collect();
            let f = match exprs.iter().position(|(e, r)| *e == expr && *r == reads) {
                Some(f) => f,
                None => {
                    let params: Vec<String> = reads.iter().map(|i| format!("x{i}: f32")).collect();
                    let mut code = String::new();
                    let mut next = 0;
                    let result = expr.emit(&mut code, &mut next);
                    let _ = writeln!(
                        functions,
                        "fn mt_f{}({}) -> f32 {{\n{code}    return {result};\n}}\n",
                        exprs.len(),
                        params.join(", ")
                    );
                    exprs.push((expr, reads.clone()));
                    exprs.len() - 1
                }
            };
            let mut call = Vec::with_capacity(reads.len());
            for arg in args.iter().flatten() {
                call.push(match *arg {
                    Arg::Member(k) => format!("r{k}"),
                    Arg::Slot(sid) => value
                        .entry(sid)
                        .or_insert_with(|| {
                            let (scalar, b) = shape.slots[sid];
                            let _ = writeln!(body, "    let v{sid} = mt_b{b}[{}];", index(sid));
                            bytes += 4 * if scalar { kind.segments.len() as u64 } else { len };
                            format!("v{sid}")
                        })
                        .clone(),
                });
            }
            let _ = writeln!(body, "    let r{m} = mt_f{f}({});", call.join(", "));
            if let Some(sid) = *out {
                value.insert(sid, format!("r{m}"));
                if last_write[&sid] == m {
                    let _ = writeln!(body, "    mt_b{}[{}] = r{m};", shape.slots[sid].1, index(sid));
                    bytes += 4 * len;
                }
            }
            flops += len * expr.op_count() as u64;
        }
        let params: String = (0..cols.len()).map(|p| format!(", o{p}: u32")).collect();
        let _ = writeln!(kind_fns, "fn mt_kind{ki}(j: u32{params}) {{\n{body}}}\n");
        columns.push(cols);
    }
    functions.push_str(&kind_fns);

    // Find the segment with a binary decision tree over the literal starts; its leaves set the
    // kind, the element within the segment and the kind's offset parameters.
    let nparams = columns.iter().map(Vec::len).max().unwrap_or(0);
    let mut leaves = Vec::with_capacity(nseg);
    for (ki, kind) in kinds.iter().enumerate() {
        for li in 0..kind.segments.len() {
            let q = leaves.len();
            let mut leaf = String::new();
            if ki > 0 {
                let _ = write!(leaf, "k = {ki}u; ");
            }
            if starts[q] > 0 {
                let _ = write!(leaf, "j = g - {}u; ", starts[q]);
            }
            for (p, col) in columns[ki].iter().enumerate() {
                let _ = write!(leaf, "o{p} = {}u; ", col[li]);
            }
            leaves.push(leaf.trim_end().to_string());
        }
    }
    let mut dispatch = String::new();
    if kinds.len() > 1 {
        dispatch.push_str("    var k = 0u;\n");
    }
    dispatch.push_str("    var j = g;\n");
    for p in 0..nparams {
        let _ = writeln!(dispatch, "    var o{p} = 0u;");
    }
    decision_tree(&mut dispatch, &starts, &leaves, 0, nseg, 1);
    let call = |ki: usize| -> String {
        let args: String = (0..columns[ki].len()).map(|p| format!(", o{p}")).collect();
        format!("mt_kind{ki}(j{args});")
    };
    if kinds.len() == 1 {
        let _ = write!(dispatch, "    {}", call(0));
    } else {
        dispatch.push_str("    switch k {\n");
        for ki in 0..kinds.len() {
            let label = if ki + 1 == kinds.len() {
                "default".to_string()
            } else {
                format!("case {ki}u")
            };
            let _ = writeln!(dispatch, "        {label}: {{ {} }}", call(ki));
        }
        dispatch.push_str("    }");
    }

    let name = format!("multi_tensor_update_{nseg}seg_{}kind", kinds.len());
    let grid = LinearGrid::new(total, target.linear_workgroup_size(), target).ok_or_else(|| {
        unsupported(
            spec,
            format!(
                "{total} invocations exceed the dispatch limits ({} workgroups per dimension)",
                target.max_workgroups_per_dim
            ),
        )
    })?;
    let source = Template::new(MULTI_TENSOR_WGSL)
        .set("TOTAL", total)
        .set("BINDINGS", bindings_code)
        .set("FUNCTIONS", functions)
        .set("DISPATCH", dispatch)
        .set("WG", grid.workgroup_size)
        .set("INDEX", grid.index_expr("gid"))
        .render(&name)?;
    Ok(KernelInstance {
        name,
        family: "multi_tensor",
        node: spec.node,
        source,
        entry_point: "main",
        bindings: spec
            .bindings
            .iter()
            .map(|&buffer| BindingRef { buffer, writable: true })
            .collect(),
        workgroups: grid.workgroups,
        workgroup_size: [grid.workgroup_size, 1, 1],
        flops,
        bytes,
        scratch_bytes: 0,
    })
}

/// Appends the statements selecting the leaf of the segment holding `g` among segments
/// `lo..hi` (global order; `starts` their first elements): nested `if (g < start)` halving the
/// range, `leaves[q]` at the bottom.
fn decision_tree(code: &mut String, starts: &[u64], leaves: &[String], lo: usize, hi: usize, depth: usize) {
    let pad = "    ".repeat(depth);
    if hi - lo == 1 {
        if !leaves[lo].is_empty() {
            let _ = writeln!(code, "{pad}{}", leaves[lo]);
        }
        return;
    }
    let mid = (lo + hi) / 2;
    let _ = writeln!(code, "{pad}if (g < {}u) {{", starts[mid]);
    decision_tree(code, starts, leaves, lo, mid, depth + 1);
    let _ = writeln!(code, "{pad}}} else {{");
    decision_tree(code, starts, leaves, mid, hi, depth + 1);
    let _ = writeln!(code, "{pad}}}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate_with_info;
    use fovea_graph::ir::{BinaryOp, UnaryOp};
    use naga::{AddressSpace, StorageAccess};

    const B1: f32 = 0.9;
    const B2: f32 = 0.999;
    const EPS: f32 = 1e-7;

    fn x(i: usize) -> ElemExpr {
        ElemExpr::Input(i)
    }
    fn c(v: f32) -> ElemExpr {
        ElemExpr::Const(v)
    }
    fn add(a: ElemExpr, b: ElemExpr) -> ElemExpr {
        ElemExpr::binary(BinaryOp::Add, a, b)
    }
    fn sub(a: ElemExpr, b: ElemExpr) -> ElemExpr {
        ElemExpr::binary(BinaryOp::Sub, a, b)
    }
    fn mul(a: ElemExpr, b: ElemExpr) -> ElemExpr {
        ElemExpr::binary(BinaryOp::Mul, a, b)
    }
    fn div(a: ElemExpr, b: ElemExpr) -> ElemExpr {
        ElemExpr::binary(BinaryOp::Div, a, b)
    }
    fn t(binding: usize, offset: u64) -> Operand {
        Operand::Tensor(Slot { binding, offset })
    }
    fn slot(binding: usize, offset: u64) -> Slot {
        Slot { binding, offset }
    }

    /// Bindings of the test specs: 0 = m, 1 = v, 2 = p, 3 = g, 4 = hyper-parameters (lr at 0).
    const M: usize = 0;
    const V: usize = 1;
    const P: usize = 2;
    const G: usize = 3;
    const H: usize = 4;

    /// Adam in place over the tensors at `off` of m, v, p and `2 * off + 5` of g (lr = Scalar
    /// at H[0]):
    /// m' = b1*m + (1-b1)*g; v' = b2*v + (1-b2)*g^2; p' = p - lr * m'/(sqrt(v')+eps).
    fn adam(len: u64, off: u64) -> Segment {
        let m = Member {
            expr: add(mul(c(B1), x(0)), mul(c(1.0 - B1), x(1))),
            operands: vec![t(M, off), t(G, 2 * off + 5)],
            out: Some(slot(M, off)),
        };
        let v = Member {
            expr: add(
                mul(c(B2), x(0)),
                mul(c(1.0 - B2), ElemExpr::unary(UnaryOp::Square, x(1))),
            ),
            operands: vec![t(V, off), t(G, 2 * off + 5)],
            out: Some(slot(V, off)),
        };
        let p = Member {
            expr: sub(
                x(0),
                mul(
                    x(1),
                    div(
                        x(2),
                        ElemExpr::unary(UnaryOp::AddScalar(EPS), ElemExpr::unary(UnaryOp::Sqrt, x(3))),
                    ),
                ),
            ),
            operands: vec![
                t(P, off),
                Operand::Scalar(slot(H, 0)),
                Operand::Member(0),
                Operand::Member(1),
            ],
            out: Some(slot(P, off)),
        };
        Segment {
            len,
            members: vec![m, v, p],
        }
    }

    /// SGD in place: p' = p - lr * g (lr = Scalar at H[1]).
    fn sgd(len: u64, off: u64) -> Segment {
        Segment {
            len,
            members: vec![Member {
                expr: sub(x(0), mul(x(1), x(2))),
                operands: vec![t(P, off), Operand::Scalar(slot(H, 1)), t(G, 2 * off + 5)],
                out: Some(slot(P, off)),
            }],
        }
    }

    fn spec(segments: Vec<Segment>) -> MultiTensorSpec {
        MultiTensorSpec {
            node: NodeId(7),
            bindings: (0..5).map(|i| BufferRef::Buffer(NodeId(100 + i))).collect(),
            segments,
        }
    }

    /// Segments of the odd lengths 1, 7, 1000, 4097 in turn, laid out back to back.
    fn layout(n: usize, make: impl Fn(usize, u64, u64) -> Segment) -> Vec<Segment> {
        let mut off = 0;
        (0..n)
            .map(|i| {
                let len = [1, 7, 1000, 4097][i % 4];
                let s = make(i, len, off);
                off += len;
                s
            })
            .collect()
    }

    /// Validates the kernel with naga and checks bindings, workgroup size and grid coverage.
    fn check(spec: &MultiTensorSpec, target: &Target) -> KernelInstance {
        let k = multi_tensor_kernel(spec, target).unwrap_or_else(|e| panic!("{e}"));
        let (module, info) = validate_with_info(&k.name, &k.source).unwrap_or_else(|e| panic!("{e}\n{}", k.source));
        let (ep_index, ep) = module
            .entry_points
            .iter()
            .enumerate()
            .find(|(_, e)| e.name == k.entry_point)
            .expect("entry point");
        assert_eq!(ep.workgroup_size, k.workgroup_size);
        let ep_info = info.get_entry_point(ep_index);
        let mut declared = Vec::new();
        for (h, var) in module.global_variables.iter() {
            if let Some(rb) = &var.binding {
                let AddressSpace::Storage { access } = var.space else {
                    panic!("{}: binding {} is not storage", k.name, rb.binding)
                };
                assert!(
                    access.contains(StorageAccess::LOAD | StorageAccess::STORE),
                    "{}",
                    k.name
                );
                assert!(!ep_info[h].is_empty(), "{}: binding {} unused", k.name, rb.binding);
                declared.push(rb.binding);
            }
        }
        declared.sort();
        assert_eq!(
            declared,
            (0..spec.bindings.len() as u32).collect::<Vec<_>>(),
            "{}",
            k.name
        );
        assert_eq!(k.bindings.len(), spec.bindings.len());
        for (b, &r) in k.bindings.iter().zip(&spec.bindings) {
            assert!(b.writable && b.buffer == r, "{}", k.name);
        }
        let total: u64 = spec.segments.iter().map(|s| s.len).sum();
        assert!(k.invocations() >= total, "{}: grid {:?}", k.name, k.workgroups);
        let max = target.max_workgroups_per_dim;
        assert!(k.workgroups.iter().all(|&w| (1..=max).contains(&w)), "{}", k.name);
        assert_eq!((k.family, k.entry_point, k.node), ("multi_tensor", "main", spec.node));
        assert!(k.source.starts_with("// multi_tensor.wgsl: "));
        k
    }

    /// The entry point's text.
    fn main_fn(k: &KernelInstance) -> &str {
        &k.source[k.source.find("fn main").unwrap()..]
    }

    fn targets() -> Vec<Target> {
        vec![
            Target::cpu(),
            Target::gpu(),
            // A small grid limit: the linear index folds into two dimensions.
            Target {
                max_workgroups_per_dim: 64,
                ..Target::gpu()
            },
        ]
    }

    #[test]
    fn shell_has_a_header_comment() {
        assert!(MULTI_TENSOR_WGSL.starts_with("// multi_tensor.wgsl: "));
        assert!(MULTI_TENSOR_WGSL.contains("Bindings"));
    }

    #[test]
    fn adam_over_1_3_and_40_segments() {
        for t in targets() {
            for n in [1, 3, 40] {
                let s = spec(layout(n, |_, len, off| adam(len, off)));
                let k = check(&s, &t);
                let total: u64 = s.segments.iter().map(|s| s.len).sum();
                assert_eq!(k.name, format!("multi_tensor_update_{n}seg_1kind"));
                // 3 + 4 + 5 operations per element.
                assert_eq!(k.flops, total * 12);
                // m, v, p, g read, m, v, p written: 7 tensors; one lr per segment.
                assert_eq!(k.bytes, total * 28 + 4 * n as u64);
                // One code path; every operand slot loaded once, each output stored once.
                assert_eq!(k.source.matches("fn mt_kind").count(), 1);
                assert_eq!(k.source.matches("= mt_b").count(), 5, "{}", k.source);
                assert_eq!(k.source.matches("] = r").count(), 3, "{}", k.source);
                // The learning rate sits at the same place for every segment: a literal.
                assert!(k.source.contains("let v4 = mt_b4[0u];"), "{}", k.source);
                // m, v and p share one offset parameter, g has its own.
                let params = if n > 1 { "j: u32, o0: u32, o1: u32" } else { "j: u32" };
                assert!(k.source.contains(&format!("fn mt_kind0({params})")), "{}", k.source);
                assert_eq!(main_fn(&k).matches("if (g < ").count(), n - 1, "{}", k.source);
                assert!(!main_fn(&k).contains("switch"), "{}", k.source);
            }
        }
    }

    #[test]
    fn sgd_and_adam_segments_form_two_kinds() {
        for t in targets() {
            // Interleaved: the kernel groups them, five SGD segments and three Adam ones.
            let s = spec(layout(
                8,
                |i, len, off| if i % 3 == 1 { adam(len, off) } else { sgd(len, off) },
            ));
            let k = check(&s, &t);
            assert_eq!(k.name, "multi_tensor_update_8seg_2kind");
            assert!(k.source.contains("switch k {"), "{}", k.source);
            assert!(k.source.contains("case 0u: { mt_kind0(j, o0, o1); }"), "{}", k.source);
            assert!(k.source.contains("default: { mt_kind1(j, o0, o1); }"), "{}", k.source);
            let sgd_total: u64 = s.segments.iter().filter(|s| s.members.len() == 1).map(|s| s.len).sum();
            let adam_total: u64 = s.segments.iter().filter(|s| s.members.len() == 3).map(|s| s.len).sum();
            assert_eq!(k.flops, sgd_total * 2 + adam_total * 12);
        }
    }

    #[test]
    fn one_segment_needs_no_search() {
        let s = spec(vec![adam(4097, 123)]);
        let k = check(&s, &Target::cpu());
        assert!(!main_fn(&k).contains("if (g < "), "{}", k.source);
        assert!(k.source.contains("    mt_kind0(j);"), "{}", k.source);
        assert!(k.source.contains("mt_b2[123u + j] = r2;"), "{}", k.source);
        // A segment of length 0 is dropped.
        let s = spec(vec![sgd(0, 0), adam(5, 0)]);
        let k = check(&s, &Target::cpu());
        assert_eq!(k.name, "multi_tensor_update_1seg_1kind");
    }

    #[test]
    fn later_members_see_stored_values_and_dead_stores_are_dropped() {
        // p' = p * 2 stored; then p'' = p' + lr (reading the *slot* p, not Member(0)) stored
        // again; a third member reads p and stores nothing.
        let seg = |len, off| Segment {
            len,
            members: vec![
                Member {
                    expr: mul(x(0), c(2.0)),
                    operands: vec![t(P, off)],
                    out: Some(slot(P, off)),
                },
                Member {
                    expr: add(x(0), x(1)),
                    operands: vec![t(P, off), Operand::Scalar(slot(H, 0))],
                    out: Some(slot(P, off)),
                },
                Member {
                    expr: sub(x(0), x(1)),
                    operands: vec![t(P, off), t(G, off)],
                    out: Some(slot(M, off)),
                },
            ],
        };
        let s = MultiTensorSpec {
            bindings: vec![
                BufferRef::Buffer(NodeId(1)),
                BufferRef::Buffer(NodeId(2)),
                BufferRef::Buffer(NodeId(3)),
                BufferRef::Buffer(NodeId(4)),
                BufferRef::Buffer(NodeId(5)),
            ],
            ..spec(vec![seg(3, 0), seg(9, 3)])
        };
        // Binding 1 (v) is unused: an error naming it.
        let err = multi_tensor_kernel(&s, &Target::cpu()).unwrap_err().to_string();
        assert!(err.contains("binding 1 is read or written by no member"), "{err}");
        let mut s = s;
        s.bindings.truncate(5);
        s.segments[0].members[0].operands.push(t(V, 0));
        s.segments[1].members[0].operands.push(t(V, 3));
        s.segments[0].members[0].expr = add(mul(x(0), c(2.0)), x(1));
        s.segments[1].members[0].expr = add(mul(x(0), c(2.0)), x(1));
        let k = check(&s, &Target::cpu());
        assert_eq!(k.source.matches("let v0 = mt_b2[").count(), 1, "{}", k.source);
        assert!(k.source.contains("let r1 = mt_f1(r0, v"), "{}", k.source);
        assert!(k.source.contains("let r2 = mt_f2(r1, v"), "{}", k.source);
        // Only the last store to p is written.
        assert_eq!(k.source.matches("mt_b2[o0 + j] = ").count(), 1, "{}", k.source);
        assert!(k.source.contains("mt_b2[o0 + j] = r1;"), "{}", k.source);
    }

    #[test]
    fn const_tables_are_accepted_by_naga_too() {
        // The shell uses no tables (see its header), but naga does accept dynamically indexed
        // module-scope const arrays, which the header's choice was made against.
        let src = "const T = array<u32, 3>(1u, 5u, 9u);\n\
                   @group(0) @binding(0) var<storage, read_write> b: array<u32>;\n\
                   @compute @workgroup_size(64)\nfn main(@builtin(global_invocation_id) g: vec3<u32>) {\n    \
                   b[g.x] = T[g.x % 3u];\n}\n";
        validate_with_info("const_table", src).unwrap();
    }

    #[test]
    fn errors_name_the_problem() {
        let cpu = Target::cpu();
        let err = |s: &MultiTensorSpec| multi_tensor_kernel(s, &cpu).unwrap_err().to_string();

        let mut s = spec(vec![adam(10, 0)]);
        s.bindings = (0..9).map(|i| BufferRef::Buffer(NodeId(i))).collect();
        assert!(
            err(&s).contains("9 bindings exceed the 8 storage buffers"),
            "{}",
            err(&s)
        );

        let mut s = spec(vec![adam(10, 0)]);
        s.bindings[3] = BufferRef::Node(NodeId(3));
        assert!(err(&s).contains("binding 3 is not a whole buffer"), "{}", err(&s));

        let s = spec(vec![]);
        assert!(err(&s).contains("no segments"), "{}", err(&s));

        let s = spec(vec![adam(0, 0)]);
        assert!(err(&s).contains("no elements"), "{}", err(&s));

        let mut s = spec(vec![adam(10, 0)]);
        s.segments[0].members[2].operands[3] = Operand::Member(2);
        let e = err(&s);
        assert!(
            e.contains("member 2 operand 3 is the value of member 2, not an earlier member"),
            "{e}"
        );
        assert!(e.contains("%7 (multi_tensor)"), "{e}");

        let mut s = spec(vec![adam(10, 0)]);
        s.segments[0].members[1].operands[0] = t(5, 0);
        assert!(
            err(&s).contains("member 1 operand 0 names binding 5 of 5"),
            "{}",
            err(&s)
        );

        let mut s = spec(vec![adam(10, 0)]);
        s.segments[0].members[0].out = Some(slot(6, 0));
        assert!(err(&s).contains("member 0 output names binding 6 of 5"), "{}", err(&s));

        let mut s = spec(vec![adam(10, 0)]);
        s.segments[0].members[0].operands.pop();
        assert!(
            err(&s).contains("member 0: the expression reads operand 1 of 1"),
            "{}",
            err(&s)
        );

        let s = spec(vec![adam(1 << 31, 0), adam(1 << 31, 0)]);
        assert!(
            err(&s).contains("4294967296 elements in all exceed u32 indexing"),
            "{}",
            err(&s)
        );

        let s = spec(vec![adam(10, u32::MAX as u64 - 5)]);
        assert!(err(&s).contains("beyond u32 indexing"), "{}", err(&s));

        // Every error is Unsupported.
        assert!(matches!(
            multi_tensor_kernel(&spec(vec![]), &cpu),
            Err(KernelError::Unsupported { .. })
        ));
    }
}
