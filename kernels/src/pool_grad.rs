//! The gradient of 2-D pooling (`wgsl/pool_grad.wgsl`): one invocation per input element,
//! gathering from the output windows that contain it, and storing through an optional fused
//! elementwise epilogue (`Op::GemmEpilogue` with a `Pool2dBackprop` base).

use crate::elementwise::MAX_STORAGE_BUFFERS;
use crate::fused::{EpilogueSource, epilogue_name, epilogue_source};
use crate::gemm::epilogue_of;
use crate::lower::NodeCx;
use crate::template::{Template, f32_lit};
use crate::{BindingRef, KernelError, KernelInstance};
use fovea_graph::ir::{PoolGeometry, PoolKind};

const POOL_GRAD_WGSL: &str = include_str!("../wgsl/pool_grad.wgsl");

/// Max: rescan the window for its first strict maximum; the gradient goes there.
fn max_share() -> String {
    format!(
        "var best: f32 = {};
            var by = -1;
            var bx = -1;
            for (var y = y_lo; y < y_hi; y++) {{
                for (var x = x_lo; x < x_hi; x++) {{
                    let v = x_at(n, y, x, c);
                    if (v > best || by < 0) {{
                        best = v;
                        by = y;
                        bx = x;
                    }}
                }}
            }}
            if (by == iy && bx == ix) {{
                acc = acc + g;
            }}",
        f32_lit(f32::NEG_INFINITY)
    )
}

/// The forward input's binding and reader, for max pooling only.
const X_DECL: &str = "@group(0) @binding(0) var<storage, read> pg_x: array<f32>;

fn x_at(n: u32, y: i32, x: i32, c: u32) -> f32 {
    return pg_x[((n * u32(H) + u32(y)) * u32(W) + u32(x)) * C + c];
}
";

/// Average: an equal share for every in-range position of the window.
const AVG_SHARE: &str = "acc = acc + g / f32((y_hi - y_lo) * (x_hi - x_lo));";

/// Lowers `Pool2dBackprop` (inputs `x`, `dy`; output `dx` of `x`'s shape), or an
/// `Op::GemmEpilogue` over it (inputs `x`, `dy`, then the epilogue's extra inputs): bindings
/// `x` (max only), `dy`, the extras, `dx`.
pub(crate) fn lower_pool2d_backprop(cx: &NodeCx, p: &PoolGeometry) -> Result<KernelInstance, KernelError> {
    let x = cx.in_shape(0);
    let dy = cx.in_shape(1);
    // Average pooling's gradient does not read x: leave it unbound (an unused binding would
    // vanish from the pipeline's derived layout).
    let (kind, share, x_decl, mut bindings) = match p.kind {
        PoolKind::Max => (
            "pool_grad_max",
            max_share(),
            X_DECL,
            vec![BindingRef::read(cx.input(0))],
        ),
        PoolKind::Avg => ("pool_grad_avg", AVG_SHARE.to_string(), "", vec![]),
    };
    bindings.push(BindingRef::read(cx.input(1)));
    let dy_binding = bindings.len() - 1;
    let epilogue = epilogue_of(cx);
    let EpilogueSource {
        code,
        bindings: extras,
        ops,
    } = epilogue_source(epilogue.as_ref(), dy_binding + 1);
    let name = epilogue_name(kind, &ops);
    bindings.extend(extras);
    let dx_binding = bindings.len();
    bindings.push(BindingRef::write(cx.id));
    if bindings.len() > MAX_STORAGE_BUFFERS {
        return Err(KernelError::invalid(
            &name,
            format!(
                "{} bindings exceed the {MAX_STORAGE_BUFFERS} storage buffers a kernel may bind",
                bindings.len()
            ),
        ));
    }
    let total = cx.out_numel();
    let grid = cx.linear_grid(total)?;
    let source = crate::pool::pool_constants(Template::new(POOL_GRAD_WGSL), p, x, dy)
        .set("TOTAL", total)
        .set("SHARE", share)
        .set("X_DECL", x_decl)
        .set("DY_BINDING", dy_binding)
        .set("DX_BINDING", dx_binding)
        .set("EPILOGUE", code)
        .set("WG", grid.workgroup_size)
        .set("INDEX", grid.index_expr("gid"))
        .render(&name)?;
    let epilogue_flops = epilogue.map_or(0, |e| e.expr.op_count() as u64) * total;
    Ok(cx.linear_instance(
        name,
        "pool_grad",
        source,
        bindings,
        &grid,
        (dy.iter().product::<usize>() * p.size.0 * p.size.1) as u64 + epilogue_flops,
    ))
}
