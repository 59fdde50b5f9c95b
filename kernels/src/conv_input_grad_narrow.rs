//! The input gradient of a convolution with few input channels (`groups == 1`, `C <=`
//! [`NARROW_INPUT_GRAD_MAX_CHANNELS`], `CO % 4 == 0`, the HWIO kernel): a direct kernel
//! (`wgsl/conv_input_grad_narrow.wgsl`) instead of the GEMM core, whose N would be `C`.
//!
//! On lavapipe the GEMM core spreads N over 8 lanes of 4 columns, so for an image's 3 channels
//! 29 of 32 columns compute nothing; here the lanes run along dx's columns instead, every
//! kernel read is the same in all lanes, and one `vec4` load of dy feeds `C` dot products per
//! tap that reads it.

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

const NARROW_WGSL: &str = include_str!("../wgsl/conv_input_grad_narrow.wgsl");

/// Input columns per invocation (before rounding up to a multiple of the stride).
const BLOCK: usize = 8;

/// Whether the input gradient of `cx` (inputs dy and the kernel) takes the narrow kernel.
pub(crate) fn applies(cx: &NodeCx, g: &ConvGeometry, filter: BackpropFilter) -> bool {
    let (c, co) = (cx.out_shape()[3], cx.in_shape(0)[3]);
    g.groups == 1 && filter == BackpropFilter::Hwio && c <= NARROW_INPUT_GRAD_MAX_CHANNELS && co.is_multiple_of(4)
}

/// Lowers a narrow `Conv2dBackpropInput` (or an epilogue over it): bindings dy, w, the
/// epilogue's extra inputs, dx.
pub(crate) fn lower(cx: &NodeCx, g: &ConvGeometry) -> Result<KernelInstance, KernelError> {
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
    let mut acc = String::new();
    let mut store = String::new();
    for t in 0..ixb {
        for ch in 0..c {
            let _ = writeln!(acc, "    var acc{t}_{ch} = 0.0;");
        }
        let _ = writeln!(store, "    if (ix0 + {t}u < W) {{");
        for ch in 0..c {
            let at = t * c + ch;
            let _ = writeln!(
                store,
                "        cin_dx[out + {at}u] = epilogue(out + {at}u, acc{t}_{ch});"
            );
        }
        store.push_str("    }\n");
    }
    let epilogue = epilogue_of(cx);
    let EpilogueSource {
        code,
        bindings: extras,
        ops,
    } = epilogue_source(epilogue.as_ref(), 2);
    let name = epilogue_name("conv2d_backprop_input_narrow", &ops);
    let mut bindings = vec![BindingRef::read(cx.input(0)), BindingRef::read(cx.input(1))];
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
    let epilogue_flops = epilogue.as_ref().map_or(0, |e| e.expr.op_count() as u64) * cx.out_numel();
    let flops = 2 * (dy.iter().product::<usize>() * kh * kw * c) as u64 + epilogue_flops;
    Ok(cx.linear_instance(name, "conv_input_grad_narrow", source, bindings, &grid, flops))
}
