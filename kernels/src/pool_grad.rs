//! The gradient of 2-D pooling, storing through an optional fused elementwise epilogue
//! (`Op::GemmEpilogue` with a `Pool2dBackprop` base). Two kernels:
//! - non-overlapping windows (stride >= window in both dimensions, the usual 2x2 stride 2):
//!   `wgsl/pool_grad_window.wgsl`, one invocation per stride cell (and 4 channels when
//!   `C % 4 == 0`) reading its window once and writing the whole cell (the gradient at the first
//!   maximum, 0 elsewhere, the epilogue of 0 for elements no window covers). Each byte of x, dy,
//!   the epilogue's inputs and dx moves once. On lavapipe (2 cores) the seed CIFAR-10 step's
//!   relu-fused 2x2/2 gradient on 32x30x30x32 went from ~12 ms (1 GB/s) to ~2 ms (6 GB/s, the
//!   plain copy reaching ~8 GB/s in the same run).
//! - overlapping windows: `wgsl/pool_grad.wgsl`, one invocation per input element, gathering
//!   from (and rescanning) every output window that contains it.

use crate::elementwise::MAX_STORAGE_BUFFERS;
use crate::fused::{EpilogueSource, epilogue_name, epilogue_source};
use crate::gemm::epilogue_of;
use crate::lower::NodeCx;
use crate::template::{Template, f32_lit};
use crate::{BindingRef, KernelError, KernelInstance};
use fovea_graph::ir::{PoolGeometry, PoolKind};

const POOL_GRAD_WGSL: &str = include_str!("../wgsl/pool_grad.wgsl");
const POOL_GRAD_WINDOW_WGSL: &str = include_str!("../wgsl/pool_grad_window.wgsl");

/// Whether `p`'s windows never overlap (stride at least the window in both dimensions), so the
/// scatter-per-window kernel applies.
pub(crate) fn windows_disjoint(p: &PoolGeometry) -> bool {
    p.stride.0 >= p.size.0 && p.stride.1 >= p.size.1
}

/// The window kernel's max selection: the first strict maximum per lane, as a window position.
const WINDOW_MAX_SELECT: &str = "var best = pg_x[at(n, y_lo, x_lo, cg)];
        bk = K(u32((y_lo - y0) * KW + (x_lo - x0)));
        for (var y = y_lo; y < wy_hi; y++) {
            for (var x = x_lo; x < wx_hi; x++) {
                let v = pg_x[at(n, y, x, cg)];
                let gt = v > best;
                best = select(best, v, gt);
                bk = select(bk, K(u32((y - y0) * KW + (x - x0))), gt);
            }
        }";

/// The window kernel's x binding (max only), in T units.
const WINDOW_X_DECL: &str = "@group(0) @binding(0) var<storage, read> pg_x: array<T>;\n";

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
    let epilogue_flops = epilogue.as_ref().map_or(0, |e| e.expr.op_count() as u64) * cx.out_numel();
    let flops = (dy.iter().product::<usize>() * p.size.0 * p.size.1) as u64 + epilogue_flops;
    if windows_disjoint(p) {
        let lanes = if x[3].is_multiple_of(4) { 4 } else { 1 };
        let (ncy, ncx) = (
            (x[1] + p.pad.top).div_ceil(p.stride.0),
            (x[2] + p.pad.left).div_ceil(p.stride.1),
        );
        let total = (x[0] * ncy * ncx * x[3] / lanes) as u64;
        let grid = cx.linear_grid(total)?;
        let (select, value, x_decl) = match p.kind {
            PoolKind::Max => (
                WINDOW_MAX_SELECT,
                "select(T(0.0), g, (bk == k) & B(in_win))",
                WINDOW_X_DECL,
            ),
            PoolKind::Avg => (
                "g = g / f32((wy_hi - y_lo) * (wx_hi - x_lo));",
                "select(T(0.0), g, B(in_win))",
                "",
            ),
        };
        let (t, k, b, store) = if lanes == 4 {
            (
                "vec4<f32>",
                "vec4<u32>",
                "vec4<bool>",
                "store(e, v.x);\n            store(e + 1u, v.y);\n            store(e + 2u, v.z);\n            store(e + 3u, v.w);",
            )
        } else {
            ("f32", "u32", "bool", "store(e, v);")
        };
        let source = crate::pool::pool_constants(Template::new(POOL_GRAD_WINDOW_WGSL), p, x, dy)
            .set("TOTAL", total)
            .set("CL", x[3] / lanes)
            .set("L", lanes)
            .set("NCY", ncy)
            .set("NCX", ncx)
            .set("T", t)
            .set("K", k)
            .set("B", b)
            .set("X_DECL", x_decl)
            .set("DY_BINDING", dy_binding)
            .set("DX_BINDING", dx_binding)
            .set("EPILOGUE", code)
            .set("SELECT", select)
            .set("VALUE", value)
            .set("STORE_LANES", store)
            .set("WG", grid.workgroup_size)
            .set("INDEX", grid.index_expr("gid"))
            .render(&name)?;
        return Ok(cx.linear_instance(name, "pool_grad", source, bindings, &grid, flops));
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
    Ok(cx.linear_instance(name, "pool_grad", source, bindings, &grid, flops))
}
