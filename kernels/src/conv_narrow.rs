//! Convolutions with few channels on one side, which the GEMM core would run with most of a
//! tile's columns empty (its N is the narrow side; on lavapipe it spreads N over 8 lanes of 4
//! columns, so for 3 channels 29 of 32 columns compute nothing). Direct kernels instead, whose
//! lanes run along image columns, so that every read of the narrow side is the same in all
//! lanes (a broadcast load on lavapipe) and one `vec4` load of the wide side feeds a dot
//! product per narrow channel and tap:
//! - the input gradient with `C <=` [`NARROW_INPUT_GRAD_MAX_CHANNELS`] input channels and
//!   `CO % 4 == 0` (an image's first layer: style transfer optimises the image;
//!   `wgsl/conv_narrow_input_grad.wgsl`);
//! - the forward pass and the filter gradient with `CO <=` [`NARROW_OUTPUT_MAX_CHANNELS`]
//!   output channels and `CI % 4 == 0` (a layer producing an image: the style transform net's
//!   last conv; `wgsl/conv_narrow_forward.wgsl`, `wgsl/conv_narrow_filter_grad.wgsl`, the
//!   latter's long reduction split into slabs added up by the split-K reduction).

use crate::elementwise::MAX_STORAGE_BUFFERS;
use crate::fused::{EpilogueSource, epilogue_name, epilogue_source};
use crate::gemm::epilogue_of;
use crate::lower::NodeCx;
use crate::row_taps::{block, col_index, columns, input_grad_taps, load_columns};
use crate::template::Template;
use crate::{BindingRef, KernelError, KernelInstance};
use fovea_graph::ir::{BackpropFilter, ConvGeometry};
pub use fovea_graph::passes::NARROW_INPUT_GRAD_MAX_CHANNELS;
use std::fmt::Write;

const NARROW_WGSL: &str = include_str!("../wgsl/conv_narrow_input_grad.wgsl");

/// Input columns per invocation (before rounding up to a multiple of the stride).
const BLOCK: usize = 8;

/// Whether the input gradient of `cx` (inputs dy and the kernel) takes the narrow kernel.
pub(crate) fn input_grad_applies(cx: &NodeCx, g: &ConvGeometry, filter: BackpropFilter) -> bool {
    let (c, co) = (cx.out_shape()[3], cx.in_shape(0)[3]);
    g.groups == 1 && filter == BackpropFilter::Hwio && c <= NARROW_INPUT_GRAD_MAX_CHANNELS && co.is_multiple_of(4)
}

/// The generated accumulators of a block of `block` pixels x `channels` channels
/// (`acc{t}_{ch}`, declared 0) and their guarded store through the epilogue into `buffer` at
/// `out + t * channels + ch`, skipping pixels with `first + t >= limit`.
fn accumulators(block: usize, channels: usize, first: &str, limit: &str, buffer: &str) -> (String, String) {
    let mut acc = String::new();
    let mut store = String::new();
    for t in 0..block {
        for ch in 0..channels {
            let _ = writeln!(acc, "    var acc{t}_{ch} = 0.0;");
        }
        let _ = writeln!(store, "    if ({first} + {t}u < {limit}) {{");
        for ch in 0..channels {
            let at = t * channels + ch;
            let _ = writeln!(
                store,
                "        {buffer}[out + {at}u] = epilogue(out + {at}u, acc{t}_{ch});"
            );
        }
        store.push_str("    }\n");
    }
    (acc, store)
}

/// Lowers a narrow `Conv2dBackpropInput` (or an epilogue over it): bindings dy, w, the
/// epilogue's extra inputs, dx.
pub(crate) fn lower_input_grad(cx: &NodeCx, g: &ConvGeometry) -> Result<KernelInstance, KernelError> {
    let dy = cx.in_shape(0);
    let w = cx.in_shape(1);
    let dx = cx.out_shape();
    let (c, co) = (dx[3], dy[3]);
    let (kh, kw) = (w[0], w[1]);
    let (sw, width) = (g.stride.1, dx[2]);
    let ixb = block(BLOCK, sw, width);
    let ixblk = width.div_ceil(ixb);
    let total = (dx[0] * dx[1] * ixblk) as u64;
    let taps = input_grad_taps(ixb, kw, sw, g.dilation.1, g.pad.left);
    let cols = columns(&taps);
    let mut row = String::new();
    load_columns(&mut row, &cols, "cin_dy", "oxq", "OW", "CO4", "q");
    for kx in (0..kw).filter(|&kx| taps.iter().any(|t| t.kx == kx)) {
        for ch in 0..c {
            let _ = writeln!(
                row,
                "                let w{kx}_{ch} = cin_w[wrow + ({kx}u * C + {ch}u) * CO4];"
            );
        }
    }
    for tap in &taps {
        let (t, j, kx) = (tap.t, col_index(&cols, tap.col), tap.kx);
        for ch in 0..c {
            let _ = writeln!(
                row,
                "                acc{t}_{ch} = acc{t}_{ch} + dot(v{j}, w{kx}_{ch});"
            );
        }
    }
    let (acc, store) = accumulators(ixb, c, "ix0", "W", "cin_dx");
    let (code, bindings, out_binding, name, epilogue_flops) = with_epilogue(
        cx,
        vec![BindingRef::read(cx.input(0)), BindingRef::read(cx.input(1))],
        "conv2d_backprop_input_narrow",
    )?;
    let grid = cx.linear_grid(total)?;
    let source = Template::new(NARROW_WGSL)
        .set("TOTAL", total)
        .set("H", dx[1])
        .set("W", width)
        .set("OH", dy[1])
        .set("OW", dy[2])
        .set("C", c)
        .set("CO4", co / 4)
        .set("KH", kh)
        .set("KW", kw)
        .set("SH", g.stride.0)
        .set("SW", sw)
        .set("DH", g.dilation.0)
        .set("PT", g.pad.top)
        .set("IXB", ixb)
        .set("IXBLK", ixblk)
        .set("ACC", acc)
        .set("ROW", row)
        .set("STORE", store)
        .set("EPILOGUE", code)
        .set("OUT_BINDING", out_binding)
        .set("WG", grid.workgroup_size)
        .set("INDEX", grid.index_expr("gid"))
        .render(&name)?;
    let flops = 2 * (dy.iter().product::<usize>() * kh * kw * c) as u64 + epilogue_flops;
    Ok(cx.linear_instance(name, "conv_narrow", source, bindings, &grid, flops))
}

/// Output channels up to which a convolution's forward pass and filter gradient take the
/// narrow kernels (with `CI % 4 == 0`, one group).
pub const NARROW_OUTPUT_MAX_CHANNELS: usize = 4;

const FORWARD_WGSL: &str = include_str!("../wgsl/conv_narrow_forward.wgsl");
const FILTER_GRAD_WGSL: &str = include_str!("../wgsl/conv_narrow_filter_grad.wgsl");

/// The filter gradient aims at about this many invocations (slabs x taps x channel quads).
const FILTER_GRAD_INVOCATIONS: usize = 4096;

/// Whether a convolution with `ci` input and `co` output channels in `groups` groups takes the
/// narrow forward and filter-gradient kernels.
pub(crate) fn output_applies(g: &ConvGeometry, ci: usize, co: usize) -> bool {
    g.groups == 1 && co <= NARROW_OUTPUT_MAX_CHANNELS && ci.is_multiple_of(4)
}

/// The epilogue plumbing of a narrow kernel: the rendered epilogue, the bindings (`inputs`,
/// the epilogue's extra inputs, the output), the output's binding index, the kernel's name
/// (`what` plus the epilogue's operations) and the epilogue's FLOPs.
fn with_epilogue(
    cx: &NodeCx,
    inputs: Vec<BindingRef>,
    what: &str,
) -> Result<(String, Vec<BindingRef>, usize, String, u64), KernelError> {
    let epilogue = epilogue_of(cx);
    let EpilogueSource {
        code,
        bindings: extras,
        ops,
    } = epilogue_source(epilogue.as_ref(), inputs.len());
    let name = epilogue_name(what, &ops);
    let mut bindings = inputs;
    let out_binding = bindings.len() + extras.len();
    bindings.extend(extras);
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
    let flops = epilogue.as_ref().map_or(0, |e| e.expr.op_count() as u64) * cx.out_numel();
    Ok((code, bindings, out_binding, name, flops))
}

/// Lowers a narrow `Conv2d` (or an epilogue over it): bindings x, w, the epilogue's extra
/// inputs, y.
pub(crate) fn lower_forward(cx: &NodeCx, g: &ConvGeometry) -> Result<KernelInstance, KernelError> {
    let x = cx.in_shape(0);
    let w = cx.in_shape(1);
    let y = cx.out_shape();
    let (ci, co) = (x[3], y[3]);
    let (kh, kw) = (w[0], w[1]);
    let oxb = BLOCK.min(y[2]).max(1);
    let oxblk = y[2].div_ceil(oxb);
    let total = (y[0] * y[1] * oxblk) as u64;
    let taps = crate::row_taps::forward_taps(oxb, kw, g.stride.1, g.dilation.1);
    let cols = columns(&taps);
    let mut row = String::new();
    load_columns(&mut row, &cols, "cnf_x", "ixb", "W", "CI4", "q");
    for kx in 0..kw {
        for ch in 0..co {
            let _ = writeln!(row, "                let w{kx}_{ch} = w4(ky * KW + {kx}u, q, {ch}u);");
        }
    }
    for tap in &taps {
        let (t, j, kx) = (tap.t, col_index(&cols, tap.col), tap.kx);
        for ch in 0..co {
            let _ = writeln!(
                row,
                "                acc{t}_{ch} = acc{t}_{ch} + dot(v{j}, w{kx}_{ch});"
            );
        }
    }
    let (acc, store) = accumulators(oxb, co, "ox0", "OW", "cnf_y");
    let (code, bindings, out_binding, name, epilogue_flops) = with_epilogue(
        cx,
        vec![BindingRef::read(cx.input(0)), BindingRef::read(cx.input(1))],
        "conv2d_narrow",
    )?;
    let grid = cx.linear_grid(total)?;
    let source = Template::new(FORWARD_WGSL)
        .set("TOTAL", total)
        .set("H", x[1])
        .set("W", x[2])
        .set("OH", y[1])
        .set("OW", y[2])
        .set("CI", ci)
        .set("CI4", ci / 4)
        .set("CO", co)
        .set("KH", kh)
        .set("KW", kw)
        .set("SH", g.stride.0)
        .set("SW", g.stride.1)
        .set("DH", g.dilation.0)
        .set("PT", g.pad.top)
        .set("PL", g.pad.left)
        .set("OXB", oxb)
        .set("OXBLK", oxblk)
        .set("ACC", acc)
        .set("ROW", row)
        .set("STORE", store)
        .set("EPILOGUE", code)
        .set("OUT_BINDING", out_binding)
        .set("WG", grid.workgroup_size)
        .set("INDEX", grid.index_expr("gid"))
        .render(&name)?;
    let flops = 2 * cx.out_numel() * (kh * kw * ci) as u64 + epilogue_flops;
    Ok(cx.linear_instance(name, "conv_narrow", source, bindings, &grid, flops))
}

/// Lowers a narrow `Conv2dBackpropFilter` (inputs x, dy; output the HWIO kernel gradient): the
/// slab kernel writing partial sums (bindings x, dy, scratch) and the split-K reduction (which
/// applies an epilogue, if any), or with one slab and no epilogue the kernel alone writing dw.
pub(crate) fn lower_filter_grad(cx: &NodeCx, g: &ConvGeometry) -> Result<Vec<KernelInstance>, KernelError> {
    let x = cx.in_shape(0);
    let dy = cx.in_shape(1);
    let dw = cx.out_shape();
    let (ci, co) = (x[3], dy[3]);
    let (kh, kw) = (dw[0], dw[1]);
    let pairs = kh * kw * ci / 4;
    let rows = dy[0] * dy[1];
    let epilogue = epilogue_of(cx);
    let slabs = FILTER_GRAD_INVOCATIONS.div_ceil(pairs).clamp(1, rows.max(1));
    let rps = rows.div_ceil(slabs).max(1);
    let mut slabs = rows.div_ceil(rps).max(1);
    let mut rps = rps;
    if slabs == 1 && epilogue.is_some() {
        // The epilogue runs in the reduction: two slabs (or one of no rows).
        rps = rows.div_ceil(2).max(1);
        slabs = 2;
    }
    let wg = cx.target.linear_workgroup_size().min(64) as usize;
    let gx = pairs.div_ceil(wg);
    let max = cx.target.max_workgroups_per_dim as usize;
    if gx > max || slabs > max {
        return Err(cx.too_large("narrow filter-gradient"));
    }
    let acc: String = (0..co).map(|c| format!("    var acc{c} = vec4<f32>(0.0);\n")).collect();
    let step: String = (0..co)
        .map(|c| format!("            acc{c} = fma(xv, vec4<f32>(cng_dy[g + {c}u]), acc{c});\n"))
        .collect();
    let mut store = String::new();
    for l in 0..4 {
        for c in 0..co {
            let _ = writeln!(store, "        cng_out[out + {}u] = acc{c}[{l}];", l * co + c);
        }
    }
    let name = if slabs > 1 {
        format!("conv2d_backprop_filter_narrow_slabs{slabs}")
    } else {
        "conv2d_backprop_filter_narrow".to_string()
    };
    let out_numel = kh * kw * ci * co;
    let source = Template::new(FILTER_GRAD_WGSL)
        .set("PAIRS", pairs)
        .set("ROWS", rows)
        .set("RPS", rps)
        .set("H", x[1])
        .set("W", x[2])
        .set("OH", dy[1])
        .set("OW", dy[2])
        .set("CI", ci)
        .set("CI4", ci / 4)
        .set("CO", co)
        .set("KW", kw)
        .set("SH", g.stride.0)
        .set("SW", g.stride.1)
        .set("DH", g.dilation.0)
        .set("DW", g.dilation.1)
        .set("PT", g.pad.top)
        .set("PL", g.pad.left)
        .set("OUT", out_numel)
        .set("ACC", acc)
        .set("STEP", step)
        .set("STORE", store)
        .set("WG", wg)
        .render(&name)?;
    let out = if slabs > 1 {
        BindingRef {
            buffer: crate::BufferRef::Scratch(cx.id),
            writable: true,
        }
    } else {
        BindingRef::write(cx.id)
    };
    let scratch_bytes = if slabs > 1 { (slabs * out_numel * 4) as u64 } else { 0 };
    let k = KernelInstance {
        name,
        family: "conv_narrow",
        node: cx.id,
        source,
        entry_point: "main",
        bindings: vec![BindingRef::read(cx.input(0)), BindingRef::read(cx.input(1)), out],
        workgroups: [gx as u32, slabs as u32, 1],
        workgroup_size: [wg as u32, 1, 1],
        flops: 2 * (dy.iter().product::<usize>() * kh * kw * ci) as u64,
        bytes: cx.io_bytes() + scratch_bytes,
        scratch_bytes,
    };
    if slabs == 1 {
        return Ok(vec![k]);
    }
    let reduce = crate::gemm::split_k_reduce(
        "conv2d_backprop_filter_narrow",
        cx.id,
        epilogue.as_ref(),
        out_numel,
        slabs,
        cx.target,
    )?
    .ok_or_else(|| cx.too_large("narrow filter-gradient reduction"))?;
    Ok(vec![k, reduce])
}
