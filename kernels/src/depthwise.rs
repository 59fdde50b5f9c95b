//! Direct depthwise convolution and its two gradients (`wgsl/depthwise*.wgsl`): the convolutions
//! with `groups == C` (one input channel per group, `CO = C * multiplier`), which the GEMM core
//! would run as C tiny GEMMs.
//!
//! All three kernels slide a kernel row along x: an invocation owns a block of neighbouring
//! output (or, for the input gradient, input) columns, loads every column of the other tensor
//! those need once per kernel row, and accumulates the taps with `fma`; the forward kernel's
//! block also spans two output rows, which share the input rows between them. Which tap of which
//! output reads which loaded column is fixed by the geometry, so the row body is generated here,
//! unrolled ([`crate::row_taps`]). Channels are read four at a time (`vec4`) when the multiplier is 1 and
//! `C % 4 == 0`. The filter gradient splits its long reduction (every pixel of the batch) into
//! slabs of rows whose partial sums the split-K reduction adds up in a fixed order.

use crate::gemm::split_k_reduce;
use crate::lower::NodeCx;
use crate::row_taps::{acc_decl, col_index, columns, forward_taps, input_grad_taps, load_columns};
use crate::template::Template;
use crate::{BindingRef, BufferRef, KernelError, KernelInstance};
use fovea_graph::ir::ConvGeometry;
use std::fmt::Write;

const DEPTHWISE_WGSL: &str = include_str!("../wgsl/depthwise.wgsl");
const INPUT_GRAD_WGSL: &str = include_str!("../wgsl/depthwise_input_grad.wgsl");
const FILTER_GRAD_WGSL: &str = include_str!("../wgsl/depthwise_filter_grad.wgsl");

/// Input columns an invocation of the input gradient computes (8 of a 3-wide kernel row take
/// 10 loads of dy for 24 taps).
const INPUT_GRAD_COLS: usize = 8;

/// Output columns an invocation of the forward kernel and of the filter gradient computes.
/// Four, not eight: the kernel body is generated unrolled, and with eight columns (16 `vec4`
/// accumulators for two rows, plus the loaded columns and nine weights) LLVM spends seconds on
/// it at the first dispatch on lavapipe (register pressure far beyond the machine's registers:
/// 1.8-7.1 s per forward kernel, 1.6-3.7 s per filter gradient at the detector's shapes, which
/// made the SSD-lite's cold first step 69 s). Measured on a Zen 5 host (BENCHMARKS.md,
/// 2026-12-04), 8 -> 4 columns: forward compile 1.8-7.1 s -> 0.8-1.6 s at the same speed
/// (three rounds alternating, within noise); filter gradient compile 1.6-3.7 s -> 0.7-1.2 s
/// and 3-4 -> 5-7 GFLOP/s. The input gradient keeps 8 (with 4 it ran 1.5-2x slower).
const COLS: usize = 4;

/// Output rows an invocation of the forward kernel computes: with a 3x3 kernel at stride 1, two
/// output rows read four input rows instead of six (4 x 1 ran 1.5-3x slower than 4 x 2).
const ROWS: usize = 2;

/// The forward kernel's block of output columns and rows for an output of `ow x oh`.
fn forward_block(ow: usize, oh: usize) -> (usize, usize) {
    (COLS.min(ow).max(1), ROWS.min(oh).max(1))
}

/// The filter gradient aims at about this many invocations (slabs x channel slots): enough to
/// fill a GPU's compute units, and on lavapipe every thread, while the partial sums stay small
/// (slabs x KH x KW x CO floats).
const FILTER_GRAD_INVOCATIONS: usize = 4096;

/// Whether `Conv2d`/its gradients with geometry `g` over an input of `c` channels and a kernel
/// of shape `w` (HWIO `(KH, KW, 1, CO)`, or `(KH, KW, CO, 1)` transposed) is depthwise.
pub(crate) fn is_depthwise(g: &ConvGeometry, c: usize, w: &[usize]) -> bool {
    g.groups > 1 && g.groups == c && w.len() == 4 && (w[2] == 1 || w[3] == 1)
}

/// The element type and channel width: `vec4<f32>` and 4 when the multiplier is 1 and the
/// channels come in fours, else `f32` and 1.
fn lanes(c: usize, mult: usize) -> (&'static str, usize) {
    if mult == 1 && c.is_multiple_of(4) {
        ("vec4<f32>", 4)
    } else {
        ("f32", 1)
    }
}

/// Lowers a depthwise `Conv2d`: bindings x, w, y.
pub(crate) fn lower_depthwise(cx: &NodeCx, g: &ConvGeometry) -> Result<KernelInstance, KernelError> {
    let x = cx.in_shape(0);
    let w = cx.in_shape(1);
    let y = cx.out_shape();
    let (c, co) = (x[3], w[3]);
    if g.groups != c || w[2] != 1 || co % c != 0 {
        return Err(cx.unsupported("the depthwise kernel needs groups == input channels"));
    }
    let mult = co / c;
    let (ty, lanes) = lanes(c, mult);
    let (kh, kw) = (w[0], w[1]);
    let (oxb, oyb) = forward_block(y[2], y[1]);
    let oxblk = y[2].div_ceil(oxb);
    let oyblk = y[1].div_ceil(oyb);
    let ys = co / lanes;
    let total = (y[0] * oyblk * oxblk * ys) as u64;
    let taps = forward_taps(oxb, kw, g.stride.1, g.dilation.1);
    let cols = columns(&taps);
    let mut weights = String::new();
    for ky in 0..kh {
        for kx in 0..kw {
            let _ = writeln!(weights, "    let w{ky}_{kx} = dw_w[{}u * YS + co];", ky * kw + kx);
        }
    }
    // Input row `rr` (from the block's first) serves output row `r` through kernel row `ky`
    // where `r * SH + ky * DH == rr`.
    let (sh, dh) = (g.stride.0, g.dilation.0);
    let mut body = String::new();
    for rr in 0..(oyb - 1) * sh + (kh - 1) * dh + 1 {
        let pairs: Vec<(usize, usize)> = (0..oyb)
            .flat_map(|r| (0..kh).map(move |ky| (r, ky)))
            .filter(|&(r, ky)| r * sh + ky * dh == rr)
            .collect();
        if pairs.is_empty() {
            continue;
        }
        let _ = writeln!(
            body,
            "    {{\n        let iy = iyb + {rr};\n        if (iy >= 0 && iy < H) {{\n            let row = (n * u32(H) + u32(iy)) * u32(W);"
        );
        load_columns(&mut body, &cols, "dw_x", "ixb", "W", "XS", "xc");
        for (r, ky) in pairs {
            for tap in &taps {
                let (a, j, kx) = (r * oxb + tap.t, col_index(&cols, tap.col), tap.kx);
                let _ = writeln!(body, "            acc{a} = fma(v{j}, w{ky}_{kx}, acc{a});");
            }
        }
        body.push_str("        }\n    }\n");
    }
    let mut store = String::new();
    for r in 0..oyb {
        let _ = writeln!(store, "    if (oy0 + {r}u < OH) {{");
        for t in 0..oxb {
            let _ = writeln!(
                store,
                "        if (ox0 + {t}u < OW) {{ dw_y[out + ({r}u * OW + {t}u) * YS] = acc{}; }}",
                r * oxb + t
            );
        }
        store.push_str("    }\n");
    }
    let name = if lanes == 4 {
        "depthwise_conv2d_vec4"
    } else {
        "depthwise_conv2d"
    };
    let grid = cx.linear_grid(total)?;
    let source = Template::new(DEPTHWISE_WGSL)
        .set("T", ty)
        .set("TOTAL", total)
        .set("H", x[1])
        .set("W", x[2])
        .set("OH", y[1])
        .set("OW", y[2])
        .set("XS", c / lanes)
        .set("YS", ys)
        .set("MULT", mult)
        .set("SH", g.stride.0)
        .set("SW", g.stride.1)
        .set("PT", g.pad.top)
        .set("PL", g.pad.left)
        .set("OXB", oxb)
        .set("OXBLK", oxblk)
        .set("OYB", oyb)
        .set("OYBLK", oyblk)
        .set("WEIGHTS", weights)
        .set("ACC", acc_decl(oxb * oyb))
        .set("BODY", body)
        .set("STORE", store)
        .set("WG", grid.workgroup_size)
        .set("INDEX", grid.index_expr("gid"))
        .render(name)?;
    Ok(cx.linear_instance(
        name,
        "depthwise",
        source,
        vec![
            BindingRef::read(cx.input(0)),
            BindingRef::read(cx.input(1)),
            BindingRef::write(cx.id),
        ],
        &grid,
        2 * cx.out_numel() * (kh * kw) as u64,
    ))
}

/// Lowers a depthwise `Conv2dBackpropInput` (inputs dy and the kernel, HWIO or transposed, the
/// same memory for one input channel per group; output dx): bindings dy, w, dx.
pub(crate) fn lower_depthwise_input_grad(cx: &NodeCx, g: &ConvGeometry) -> Result<KernelInstance, KernelError> {
    if matches!(cx.node.op, fovea_graph::ir::Op::GemmEpilogue { .. }) {
        return Err(cx.unsupported("a depthwise convolution's input gradient has no GEMM epilogue"));
    }
    let dy = cx.in_shape(0);
    let w = cx.in_shape(1);
    let dx = cx.out_shape();
    let (c, co) = (dx[3], dy[3]);
    if !is_depthwise(g, c, w) || co % c != 0 || w[2] * w[3] != co {
        return Err(cx.unsupported("the depthwise input gradient needs groups == input channels"));
    }
    let mult = co / c;
    let (ty, lanes) = lanes(c, mult);
    let (kh, kw) = (w[0], w[1]);
    let (sw, width) = (g.stride.1, dx[2]);
    let ixb = crate::row_taps::block(INPUT_GRAD_COLS, sw, width);
    let ixblk = width.div_ceil(ixb);
    let cs = c / lanes;
    let total = (dx[0] * dx[1] * ixblk * cs) as u64;
    let taps = input_grad_taps(ixb, kw, sw, g.dilation.1, g.pad.left);
    let cols = columns(&taps);
    let mut row = String::new();
    load_columns(&mut row, &cols, "dwi_dy", "oxq", "OW", "YS", "co");
    for kx in 0..kw {
        if taps.iter().any(|t| t.kx == kx) {
            let _ = writeln!(row, "            let w{kx} = dwi_w[wrow + {kx}u * YS];");
        }
    }
    for tap in &taps {
        let (a, j, kx) = (tap.t, col_index(&cols, tap.col), tap.kx);
        let _ = writeln!(row, "            acc{a} = fma(v{j}, w{kx}, acc{a});");
    }
    let store: String = (0..ixb)
        .map(|t| format!("    if (ix0 + {t}u < W) {{ dwi_dx[out + {t}u * CS] = acc{t}; }}\n"))
        .collect();
    let name = if lanes == 4 {
        "depthwise_input_grad_vec4"
    } else {
        "depthwise_input_grad"
    };
    let grid = cx.linear_grid(total)?;
    let source = Template::new(INPUT_GRAD_WGSL)
        .set("T", ty)
        .set("TOTAL", total)
        .set("H", dx[1])
        .set("W", width)
        .set("OH", dy[1])
        .set("OW", dy[2])
        .set("CS", cs)
        .set("YS", co / lanes)
        .set("MULT", mult)
        .set("KH", kh)
        .set("KW", kw)
        .set("SH", g.stride.0)
        .set("SW", sw)
        .set("DH", g.dilation.0)
        .set("PT", g.pad.top)
        .set("IXB", ixb)
        .set("IXBLK", ixblk)
        .set("ACC", acc_decl(ixb))
        .set("ROW", row)
        .set("STORE", store)
        .set("WG", grid.workgroup_size)
        .set("INDEX", grid.index_expr("gid"))
        .render(name)?;
    Ok(cx.linear_instance(
        name,
        "depthwise",
        source,
        vec![
            BindingRef::read(cx.input(0)),
            BindingRef::read(cx.input(1)),
            BindingRef::write(cx.id),
        ],
        &grid,
        2 * (dy.iter().product::<usize>() * kh * kw) as u64,
    ))
}

/// Lowers a depthwise `Conv2dBackpropFilter` (inputs x, dy; output the `(KH, KW, 1, CO)` kernel
/// gradient): one kernel writing slab partials (bindings x, dy, scratch) and the split-K
/// reduction, or, with one slab, the kernel alone writing dw.
pub(crate) fn lower_depthwise_filter_grad(cx: &NodeCx, g: &ConvGeometry) -> Result<Vec<KernelInstance>, KernelError> {
    if matches!(cx.node.op, fovea_graph::ir::Op::GemmEpilogue { .. }) {
        return Err(cx.unsupported("a depthwise convolution's filter gradient has no GEMM epilogue"));
    }
    let x = cx.in_shape(0);
    let dy = cx.in_shape(1);
    let dw = cx.out_shape();
    let (c, co) = (x[3], dy[3]);
    if !is_depthwise(g, c, dw) || dw[2] != 1 || co % c != 0 {
        return Err(cx.unsupported("the depthwise filter gradient needs groups == input channels"));
    }
    let mult = co / c;
    let (ty, lanes) = lanes(c, mult);
    let (kh, kw) = (dw[0], dw[1]);
    let taps_n = kh * kw;
    let ys = co / lanes;
    let rows = dy[0] * dy[1];
    let slabs = FILTER_GRAD_INVOCATIONS.div_ceil(ys).clamp(1, rows.max(1));
    let rps = rows.div_ceil(slabs).max(1);
    let slabs = rows.div_ceil(rps).max(1);
    let oxb = COLS.min(dy[2]).max(1);
    let oxblk = dy[2].div_ceil(oxb);
    let total = (slabs * ys) as u64;
    let taps = forward_taps(oxb, kw, g.stride.1, g.dilation.1);
    let cols = columns(&taps);
    let mut body = String::new();
    for t in 0..oxb {
        let _ = writeln!(
            body,
            "            var g{t} = T(0.0);\n            if (ox0 + {t}u < OW) {{ g{t} = dwf_dy[g_at + {t}u * YS]; }}"
        );
    }
    for ky in 0..kh {
        let _ = writeln!(
            body,
            "            {{\n            let iy = i32(oy) * SH - PT + {ky} * DH;\n            if (iy >= 0 && iy < H) {{\n            let row = (n * u32(H) + u32(iy)) * u32(W);"
        );
        load_columns(&mut body, &cols, "dwf_x", "ixb", "W", "XS", "xc");
        for tap in &taps {
            let (a, j, t) = (ky * kw + tap.kx, col_index(&cols, tap.col), tap.t);
            let _ = writeln!(body, "            acc{a} = fma(v{j}, g{t}, acc{a});");
        }
        body.push_str("            }\n            }\n");
    }
    let store: String = (0..taps_n)
        .map(|a| format!("    dwf_out[out + {a}u * YS] = acc{a};\n"))
        .collect();
    let name = format!(
        "depthwise_filter_grad{}{}",
        if lanes == 4 { "_vec4" } else { "" },
        if slabs > 1 {
            format!("_slabs{slabs}")
        } else {
            String::new()
        }
    );
    let grid = cx.linear_grid(total)?;
    let source = Template::new(FILTER_GRAD_WGSL)
        .set("T", ty)
        .set("TOTAL", total)
        .set("ROWS", rows)
        .set("RPS", rps)
        .set("H", x[1])
        .set("W", x[2])
        .set("OH", dy[1])
        .set("OW", dy[2])
        .set("XS", c / lanes)
        .set("YS", ys)
        .set("MULT", mult)
        .set("SH", g.stride.0)
        .set("SW", g.stride.1)
        .set("DH", g.dilation.0)
        .set("PT", g.pad.top)
        .set("PL", g.pad.left)
        .set("OXB", oxb)
        .set("OXBLK", oxblk)
        .set("TAPS", taps_n)
        .set("ACC", acc_decl(taps_n))
        .set("ROW", body)
        .set("STORE", store)
        .set("WG", grid.workgroup_size)
        .set("INDEX", grid.index_expr("gid"))
        .render(&name)?;
    let flops = 2 * (dy.iter().product::<usize>() * taps_n) as u64;
    let out = if slabs > 1 {
        BindingRef {
            buffer: BufferRef::Scratch(cx.id),
            writable: true,
        }
    } else {
        BindingRef::write(cx.id)
    };
    let mut k = cx.linear_instance(
        name,
        "depthwise",
        source,
        vec![BindingRef::read(cx.input(0)), BindingRef::read(cx.input(1)), out],
        &grid,
        flops,
    );
    if slabs == 1 {
        return Ok(vec![k]);
    }
    let out_numel = taps_n * co;
    let scratch_bytes = (slabs * out_numel * 4) as u64;
    k.scratch_bytes = scratch_bytes;
    k.bytes += scratch_bytes;
    let reduce = split_k_reduce("depthwise_filter_grad", cx.id, None, out_numel, slabs, cx.target)?
        .ok_or_else(|| cx.too_large("depthwise filter-gradient reduction"))?;
    Ok(vec![k, reduce])
}
