//! Generated elementwise kernels (`wgsl/elementwise.wgsl` is the shell): an expression tree
//! over any number of broadcast inputs, evaluated once per output element. A single Unary or
//! Binary node lowers to a one-op expression; the fusion pass hands over whole chains.

use crate::index::{merge_axes, offset_expr, strides};
use crate::lower::{NodeCx, storage_root};
use crate::template::{Template, f32_lit};
use crate::{BindingRef, KernelError, KernelInstance, Target};
use fovea_graph::ir::{BinaryOp, UnaryOp};
use fovea_graph::{DType, Graph, NodeId};
use std::fmt::Write;

const ELEMENTWISE_WGSL: &str = include_str!("../wgsl/elementwise.wgsl");

/// The most storage buffers one shader stage may bind in WebGPU's default limits
/// (`maxStorageBuffersPerShaderStage`); an elementwise kernel takes at most one less inputs.
pub const MAX_STORAGE_BUFFERS: usize = 8;

/// The expression tree of an elementwise kernel: the IR's own (`Input(k)` is the kernel's
/// `k`-th input, broadcast); [`EmitWgsl`] prints it as WGSL.
pub use fovea_graph::ir::ElemExpr;

/// WGSL for an elementwise expression.
pub(crate) trait EmitWgsl {
    /// Emits `let tN = ...;` lines computing the expression over `x{k}` (input `k`'s value);
    /// returns the name (or literal) holding its value.
    fn emit(&self, code: &mut String, next: &mut usize) -> String;
}

impl EmitWgsl for ElemExpr {
    fn emit(&self, code: &mut String, next: &mut usize) -> String {
        let value = match self {
            ElemExpr::Input(i) => return format!("x{i}"),
            ElemExpr::Const(c) => return format!("({})", f32_lit(*c)),
            ElemExpr::Unary(op, a) => unary_wgsl(*op, &a.emit(code, next)),
            ElemExpr::Binary(op, a, b) => {
                let (a, b) = (a.emit(code, next), b.emit(code, next));
                binary_wgsl(*op, &a, &b)
            }
            ElemExpr::UnaryGrad(op, x, dy) => {
                let (x, dy) = (x.emit(code, next), dy.emit(code, next));
                format!("{dy} * ({})", derivative_wgsl(*op, &x))
            }
            // Both branches are evaluated (they are plain values). The condition is tested on its
            // bits, so that NaN selects `a` and -0 selects `b` whatever the compiler assumes
            // about NaN.
            ElemExpr::Select(c, a, b) => {
                let (c, a, b) = (c.emit(code, next), a.emit(code, next), b.emit(code, next));
                format!("select({b}, {a}, (bitcast<u32>({c}) & 0x7fffffffu) != 0u)")
            }
        };
        let name = format!("t{next}");
        *next += 1;
        let _ = writeln!(code, "    let {name} = {value};");
        name
    }
}

/// WGSL for `f'(x)` of a unary op, `x` being a plain identifier. At the kinks it takes the
/// one-sided value the reference interpreter does: relu' is 0 at 0, relu6' is 0 at 0 and 6,
/// leaky relu' is 1 at 0 (the forward tests `x >= 0`), abs' is 0 at 0, clip' is 1 at both
/// bounds, hard swish' is 0 at -3 and 1 at 3, elu' is `alpha` at 0.
fn derivative_wgsl(op: UnaryOp, x: &str) -> String {
    match op {
        UnaryOp::Relu => format!("select(0.0, 1.0, {x} > 0.0)"),
        UnaryOp::Relu6 => format!("select(0.0, 1.0, {x} > 0.0 && {x} < 6.0)"),
        UnaryOp::LeakyRelu(alpha) => format!("select({}, 1.0, {x} >= 0.0)", f32_lit(alpha)),
        UnaryOp::Sigmoid => format!("(1.0 / (1.0 + exp(-{x}))) * (1.0 - 1.0 / (1.0 + exp(-{x})))"),
        UnaryOp::Tanh => format!("1.0 - tanh(clamp({x}, -15.0, 15.0)) * tanh(clamp({x}, -15.0, 15.0))"),
        UnaryOp::Exp => format!("exp({x})"),
        UnaryOp::Log => format!("1.0 / {x}"),
        UnaryOp::Neg => "-1.0".to_string(),
        UnaryOp::Sqrt => format!("0.5 / sqrt({x})"),
        UnaryOp::Square => format!("2.0 * {x}"),
        UnaryOp::Abs => format!("sign({x})"),
        UnaryOp::Scale(c) => f32_lit(c),
        UnaryOp::AddScalar(_) => "1.0".to_string(),
        UnaryOp::Clip(lo, hi) => format!("select(0.0, 1.0, {x} >= ({}) && {x} <= ({}))", f32_lit(lo), f32_lit(hi)),
        UnaryOp::Softplus => format!("1.0 / (1.0 + exp(-{x}))"),
        // (2x + 3) / 6 inside (-3, 3); written with selects so that NaN stays NaN.
        UnaryOp::HardSwish => format!("select(select((2.0 * {x} + 3.0) / 6.0, 1.0, {x} >= 3.0), 0.0, {x} <= -3.0)"),
        UnaryOp::Elu(alpha) => format!("select(({}) * exp({x}), 1.0, {x} > 0.0)", f32_lit(alpha)),
    }
}

/// WGSL for `op(a)`, `a` being a plain identifier.
fn unary_wgsl(op: UnaryOp, a: &str) -> String {
    match op {
        UnaryOp::Relu => format!("max({a}, 0.0)"),
        UnaryOp::Relu6 => format!("clamp({a}, 0.0, 6.0)"),
        UnaryOp::LeakyRelu(alpha) => format!("select({a} * ({}), {a}, {a} >= 0.0)", f32_lit(alpha)),
        // exp(-a) overflows to inf for a < -88, which gives the right limit 0.
        UnaryOp::Sigmoid => format!("1.0 / (1.0 + exp(-{a}))"),
        // Clamped: some backends compute tanh from exponentials that overflow to inf/inf; f32
        // tanh is exactly +-1 beyond |x| = 9.1 anyway.
        UnaryOp::Tanh => format!("tanh(clamp({a}, -15.0, 15.0))"),
        UnaryOp::Exp => format!("exp({a})"),
        UnaryOp::Log => format!("log({a})"),
        UnaryOp::Neg => format!("-{a}"),
        UnaryOp::Sqrt => format!("sqrt({a})"),
        UnaryOp::Square => format!("{a} * {a}"),
        UnaryOp::Abs => format!("abs({a})"),
        UnaryOp::Scale(c) => format!("{a} * ({})", f32_lit(c)),
        UnaryOp::AddScalar(c) => format!("{a} + ({})", f32_lit(c)),
        // NaN kept explicitly (`clamp` of NaN is unspecified in WGSL), tested on the bits:
        // compilers that assume no NaN fold `a != a` to false (lavapipe does).
        UnaryOp::Clip(lo, hi) => format!(
            "select(clamp({a}, {}, {}), {a}, (bitcast<u32>({a}) & 0x7fffffffu) > 0x7f800000u)",
            f32_lit(lo),
            f32_lit(hi)
        ),
        // max(a, 0) + log1p(exp(-|a|)); log(1 + e) loses e below f32's epsilon, so small e
        // take the series e - e^2 / 2 (relative error below e^2 / 3).
        UnaryOp::Softplus => format!(
            "max({a}, 0.0) + select(log(1.0 + exp(-abs({a}))), exp(-abs({a})) * (1.0 - 0.5 * exp(-abs({a}))), \
             exp(-abs({a})) < 1e-4)"
        ),
        UnaryOp::HardSwish => format!("{a} * clamp({a} + 3.0, 0.0, 6.0) / 6.0"),
        // exp(a) - 1 cancels for small |a|: the cubic series below |a| < 1e-3.
        UnaryOp::Elu(alpha) => format!(
            "select(({al}) * select(exp({a}) - 1.0, {a} * (1.0 + {a} * (0.5 + {a} / 6.0)), {a} > -1e-3), {a}, {a} > 0.0)",
            al = f32_lit(alpha)
        ),
    }
}

/// WGSL for `op(a, b)`, both plain identifiers.
fn binary_wgsl(op: BinaryOp, a: &str, b: &str) -> String {
    match op {
        BinaryOp::Add => format!("{a} + {b}"),
        BinaryOp::Sub => format!("{a} - {b}"),
        BinaryOp::Mul => format!("{a} * {b}"),
        BinaryOp::Div => format!("{a} / {b}"),
        BinaryOp::Max => format!("max({a}, {b})"),
        BinaryOp::Min => format!("min({a}, {b})"),
        BinaryOp::Ge => format!("select(0.0, 1.0, {a} >= {b})"),
        BinaryOp::Eq => format!("select(0.0, 1.0, {a} == {b})"),
        BinaryOp::PRelu => format!("select({b} * {a}, {a}, {a} >= 0.0)"),
    }
}

/// How a four-output invocation reads an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// Its four elements are contiguous and 16-byte aligned: one `vec4` load.
    Vec4,
    /// All four are the same element (broadcast along the innermost axis): one load.
    Splat,
}

/// How outputs `4j .. 4j + 3` read an input of broadcast `axes` (merged, outermost first), if
/// one load serves them: the innermost axis's length is a multiple of 4, so the four lie in
/// one run of it, either contiguous (stride 1; every outer stride of a dense tensor is a
/// multiple of that run, so the offset of `4j` is a multiple of 4) or all at one place (stride
/// 0).
fn read_of(axes: &[(usize, usize)]) -> Option<Read> {
    match axes.last() {
        None => Some(Read::Splat),
        Some(&(len, _)) if !len.is_multiple_of(4) => None,
        Some(&(_, 0)) => Some(Read::Splat),
        Some(&(_, 1)) => Some(Read::Vec4),
        Some(_) => None,
    }
}

/// The `(output length, input stride)` axes of `input` broadcast to `out` (numpy rules, aligned
/// at the last axis; stride 0 on broadcast axes), merged; `None` if the shapes do not broadcast.
pub fn broadcast_axes(input: &[usize], out: &[usize]) -> Option<Vec<(usize, usize)>> {
    if input.len() > out.len() {
        return None;
    }
    let st = strides(input);
    let lead = out.len() - input.len();
    let mut axes = Vec::with_capacity(out.len());
    for (d, &len) in out.iter().enumerate() {
        let stride = if d < lead {
            0
        } else {
            let k = d - lead;
            match input[k] {
                l if l == len => st[k],
                1 => 0,
                _ => return None,
            }
        };
        axes.push((len, stride));
    }
    Some(merge_axes(&axes))
}

/// Builds the kernel computing `expr` for every element of node `node`'s output, where
/// `ElemExpr::Input(k)` reads `inputs[k]` (any node whose shape broadcasts to the output's; its
/// storage root is bound). Identical inputs share one binding. Used for single Unary/Binary
/// nodes and, by the fusion pass, for whole elementwise chains ending at `node`.
pub fn elementwise_kernel(
    graph: &Graph,
    node: NodeId,
    inputs: &[NodeId],
    expr: &ElemExpr,
    target: &Target,
) -> Result<KernelInstance, KernelError> {
    elementwise_kernel_in_place(graph, node, inputs, expr, target, None)
}

/// [`elementwise_kernel`], optionally computed in place: with `in_place = Some(r)` the output
/// is stored over the storage root `r` of one of the inputs (which must be read at the
/// output's own index: same shape), bound once, read-write, and no output binding is made.
pub fn elementwise_kernel_in_place(
    graph: &Graph,
    node: NodeId,
    inputs: &[NodeId],
    expr: &ElemExpr,
    target: &Target,
    in_place: Option<NodeId>,
) -> Result<KernelInstance, KernelError> {
    let cx = NodeCx {
        graph,
        id: node,
        node: graph.node(node),
        target,
        in_place,
        tiles: None,
    };
    let out = cx.out_shape();
    // Deduplicate inputs (same buffer, same shape) and check that every one is read: an unused
    // binding would vanish from the pipeline's derived layout.
    let mut unique: Vec<(NodeId, &[usize])> = Vec::new();
    let mut map = Vec::with_capacity(inputs.len());
    for &i in inputs {
        let key = (storage_root(graph, i), graph.shape(i));
        let k = unique.iter().position(|u| *u == key).unwrap_or_else(|| {
            unique.push(key);
            unique.len() - 1
        });
        map.push(k);
    }
    let mut used = vec![false; inputs.len()];
    let mut bad = None;
    expr.visit_inputs(&mut |i| match used.get_mut(i) {
        Some(u) => *u = true,
        None => bad = Some(i),
    });
    if let Some(i) = bad {
        return Err(cx.unsupported(format!("elementwise expression reads input {i} of {}", inputs.len())));
    }
    if let Some(i) = used.iter().position(|u| !u) {
        return Err(cx.unsupported(format!("elementwise input {i} is never read by the expression")));
    }
    if unique.len() >= MAX_STORAGE_BUFFERS {
        return Err(cx.unsupported(format!(
            "{} elementwise inputs exceed the {} storage buffers a kernel may bind",
            unique.len(),
            MAX_STORAGE_BUFFERS
        )));
    }
    let expr = expr.remap(&map);

    // In place: the input bound to the output's bytes, read at the output's own index.
    let over = match in_place {
        None => None,
        Some(r) => Some(
            unique
                .iter()
                .position(|&(root, shape)| root == r && shape == out)
                .ok_or_else(|| {
                    cx.unsupported(format!(
                        "cannot run in place over {r}: no input reads it at the output's shape"
                    ))
                })?,
        ),
    };
    if let Some(k) = over
        && unique.iter().filter(|(root, _)| *root == unique[k].0).count() > 1
    {
        return Err(cx.unsupported("cannot run in place over an input also read broadcast"));
    }
    let mut axes_of = Vec::with_capacity(unique.len());
    for &(_, shape) in &unique {
        axes_of.push(broadcast_axes(shape, out).ok_or_else(|| {
            cx.unsupported(format!(
                "input shape {shape:?} does not broadcast to the output shape {out:?}"
            ))
        })?);
    }
    let total = cx.out_numel();
    // Four neighbouring outputs per invocation when every input reads them as one vec4 or as
    // one value: a vec4 load costs lavapipe about what a scalar one does.
    let reads: Option<Vec<Read>> = (total.is_multiple_of(4))
        .then(|| {
            unique
                .iter()
                .zip(&axes_of)
                .map(|(&(root, _), axes)| (graph.ty(root).dtype == DType::F32).then(|| read_of(axes)).flatten())
                .collect()
        })
        .flatten();
    let mut bindings_code = String::new();
    let mut body = String::new();
    let mut bindings = Vec::new();
    for (k, (&(root, _), axes)) in unique.iter().zip(&axes_of).enumerate() {
        let access = if over == Some(k) { "read_write" } else { "read" };
        let offset = offset_expr(if reads.is_some() { "e" } else { "i" }, axes);
        // An i32 input (a select's condition) is read as its value in f32.
        let (elem, load) = match (graph.ty(root).dtype, reads.as_ref().map(|r| r[k])) {
            (_, Some(Read::Vec4)) => ("vec4<f32>", format!("let v{k} = ew_in{k}[({offset}) / 4u];")),
            (_, Some(Read::Splat)) => ("f32", format!("let x{k} = ew_in{k}[{offset}];")),
            (DType::I32, None) => ("i32", format!("let x{k} = f32(ew_in{k}[{offset}]);")),
            (DType::F32, None) => ("f32", format!("let x{k} = ew_in{k}[{offset}];")),
        };
        let _ = writeln!(
            bindings_code,
            "@group(0) @binding({k}) var<storage, {access}> ew_in{k}: array<{elem}>;"
        );
        let _ = writeln!(body, "    {load}");
        bindings.push(if over == Some(k) {
            BindingRef::write(root)
        } else {
            BindingRef::read(root)
        });
    }
    let out_elem = if reads.is_some() { "vec4<f32>" } else { "f32" };
    let store = match over {
        Some(k) => format!("ew_in{k}"),
        None => {
            let n = unique.len();
            let _ = writeln!(
                bindings_code,
                "@group(0) @binding({n}) var<storage, read_write> ew_out: array<{out_elem}>;"
            );
            bindings.push(BindingRef::write(node));
            "ew_out".to_string()
        }
    };
    let mut next = 0;
    match &reads {
        None => {
            let result = expr.emit(&mut body, &mut next);
            let _ = write!(body, "    {store}[i] = {result};");
        }
        Some(reads) => {
            // The expression once per lane, over that lane's component of each vec4 input.
            body = format!("    let e = 4u * i;\n{body}    var r: vec4<f32>;\n");
            for c in 0..4 {
                let mut lane = String::new();
                for (k, read) in reads.iter().enumerate() {
                    if *read == Read::Vec4 {
                        let _ = writeln!(lane, "    let x{k} = v{k}[{c}];");
                    }
                }
                let result = expr.emit(&mut lane, &mut next);
                let _ = writeln!(body, "    {{\n{lane}    r[{c}] = {result};\n    }}");
            }
            let _ = write!(body, "    {store}[i] = r;");
        }
    }

    let mut ops = Vec::new();
    expr.op_names(&mut ops);
    let what = match ops.is_empty() {
        true if unique.is_empty() => "fill".to_string(),
        true => "copy".to_string(),
        false => ops.join("_"),
    };
    let mut name = format!("elementwise_{what}");
    if name.len() > 64 {
        name = format!("elementwise_fused_{}ops", ops.len());
    }
    if over.is_some() {
        name.push_str("_inplace");
    }
    let invocations = if reads.is_some() { total / 4 } else { total };
    let grid = cx.linear_grid(invocations)?;
    let source = Template::new(ELEMENTWISE_WGSL)
        .set("TOTAL", invocations)
        .set("BINDINGS", bindings_code)
        .set("BODY", body)
        .set("WG", grid.workgroup_size)
        .set("INDEX", grid.index_expr("gid"))
        .render(&name)?;
    let in_bytes: usize = unique.iter().map(|(_, s)| s.iter().product::<usize>() * 4).sum();
    Ok(KernelInstance {
        name,
        family: "elementwise",
        node,
        source,
        entry_point: "main",
        bindings,
        workgroups: grid.workgroups,
        workgroup_size: [grid.workgroup_size, 1, 1],
        flops: total * expr.op_count() as u64,
        bytes: in_bytes as u64 + cx.node.ty.size_bytes() as u64,
        scratch_bytes: 0,
    })
}

/// Lowers `Fill { value }`: an elementwise kernel with no inputs.
pub(crate) fn lower_fill(cx: &NodeCx, value: f32) -> Result<KernelInstance, KernelError> {
    elementwise_kernel_in_place(cx.graph, cx.id, &[], &ElemExpr::Const(value), cx.target, None)
}

/// Lowers an elementwise node: a single `Unary`, `Binary`, `UnaryGrad` or `Select`, or a fused
/// `Elementwise` chain (made by the fusion pass), to one generated kernel.
pub(crate) fn lower_elementwise_node(cx: &NodeCx) -> Result<KernelInstance, KernelError> {
    let expr = cx
        .node
        .op
        .elementwise_expr()
        .ok_or_else(|| cx.unsupported(format!("{} is not elementwise", cx.node.op.name())))?;
    elementwise_kernel_in_place(cx.graph, cx.id, &cx.node.inputs, &expr, cx.target, cx.in_place)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::offset_of;

    #[test]
    fn broadcast_offsets_follow_numpy() {
        let out = [2, 3, 4];
        let ost = strides(&out);
        for input in [
            vec![4],
            vec![3, 1],
            vec![2, 1, 4],
            vec![1],
            vec![2, 3, 4],
            vec![1, 3, 1],
        ] {
            let axes = broadcast_axes(&input, &out).unwrap();
            let ist = strides(&input);
            let lead = out.len() - input.len();
            for i in 0..24 {
                let mut expect = 0;
                for (k, &len) in input.iter().enumerate() {
                    let c = i / ost[k + lead] % out[k + lead];
                    expect += if len == 1 { 0 } else { c * ist[k] };
                }
                assert_eq!(offset_of(i, &axes), expect, "input {input:?}");
            }
        }
        assert_eq!(broadcast_axes(&[3], &[2, 4]), None);
        assert_eq!(offset_expr("i", &broadcast_axes(&[4], &[2, 3, 4]).unwrap()), "(i % 4u)");
        assert_eq!(offset_expr("i", &broadcast_axes(&[2, 3, 4], &[2, 3, 4]).unwrap()), "i");
    }
}
