//! The gradient of reflect and replicate padding (`wgsl/pad_grad.wgsl`): one invocation per
//! input element, gathering the cotangents of every padded position that copied it (a
//! constant pad's gradient is a plain slice).

use crate::index::strides;
use crate::lower::NodeCx;
use crate::pad::{PadAxis, pad_axes};
use crate::template::Template;
use crate::{BindingRef, KernelError, KernelInstance};
use fovea_graph::ir::PadMode;
use std::fmt::Write;

const PAD_GRAD_WGSL: &str = include_str!("../wgsl/pad_grad.wgsl");

/// The nested loops summing `dy` over the positions that read input element `i`.
fn loops_code(axes: &[PadAxis], mode: PadMode) -> String {
    let lens: Vec<usize> = axes.iter().map(|a| a.len).collect();
    let outs: Vec<usize> = axes.iter().map(|a| a.out).collect();
    let (ist, ost) = (strides(&lens), strides(&outs));
    let mut code = String::new();
    let mut close = 0;
    let mut prev = "0u".to_string();
    for (k, a) in axes.iter().enumerate() {
        let ind = "    ".repeat(close + 1);
        let mut j = if ist[k] == 1 {
            "i".to_string()
        } else {
            format!("(i / {}u)", ist[k])
        };
        if k > 0 {
            j = format!("({j} % {}u)", a.len);
        }
        let _ = writeln!(code, "{ind}let j{k} = {j};");
        let (before, len, out, last) = (a.before, a.len, a.out, a.len - 1);
        if !a.padded() {
            let _ = writeln!(code, "{ind}let o{k} = {prev} + j{k} * {}u;", ost[k]);
        } else if mode == PadMode::Replicate {
            let _ = writeln!(code, "{ind}let lo{k} = select({before}u + j{k}, 0u, j{k} == 0u);");
            let _ = writeln!(
                code,
                "{ind}let hi{k} = select({before}u + j{k} + 1u, {out}u, j{k} == {last}u);"
            );
            let _ = writeln!(code, "{ind}for (var c{k} = lo{k}; c{k} < hi{k}; c{k}++) {{");
            let _ = writeln!(code, "{ind}    let o{k} = {prev} + c{k} * {}u;", ost[k]);
            close += 1;
        } else {
            let after = out - len - before;
            let _ = writeln!(code, "{ind}for (var t{k} = 0u; t{k} < 3u; t{k}++) {{");
            let _ = writeln!(code, "{ind}    var c{k} = {before}u + j{k};");
            let _ = writeln!(code, "{ind}    if (t{k} == 1u) {{");
            let _ = writeln!(code, "{ind}        if (j{k} < 1u || j{k} > {before}u) {{ continue; }}");
            let _ = writeln!(code, "{ind}        c{k} = {before}u - j{k};");
            let _ = writeln!(code, "{ind}    }} else if (t{k} == 2u) {{");
            let _ = writeln!(
                code,
                "{ind}        if (j{k} + {after}u < {last}u || j{k} + 2u > {len}u) {{ continue; }}"
            );
            let _ = writeln!(code, "{ind}        c{k} = {}u - j{k};", before + 2 * last);
            let _ = writeln!(code, "{ind}    }}");
            let _ = writeln!(code, "{ind}    let o{k} = {prev} + c{k} * {}u;", ost[k]);
            close += 1;
        }
        prev = format!("o{k}");
    }
    let ind = "    ".repeat(close + 1);
    let _ = writeln!(code, "{ind}acc = acc + pg_dy[{prev}];");
    for c in (0..close).rev() {
        let _ = writeln!(code, "{}}}", "    ".repeat(c + 1));
    }
    code
}

/// Lowers `PadBackprop { pads, mode }` (reflect or replicate).
pub(crate) fn lower_pad_backprop(
    cx: &NodeCx,
    pads: &[(usize, usize)],
    mode: PadMode,
) -> Result<KernelInstance, KernelError> {
    if mode == PadMode::Constant {
        return Err(cx.unsupported("a constant pad's gradient is a slice"));
    }
    let axes = pad_axes(cx.out_shape(), pads);
    let total = cx.out_numel();
    let grid = cx.linear_grid(total)?;
    let name = format!("pad_{}_backprop", mode.name());
    let source = Template::new(PAD_GRAD_WGSL)
        .set("TOTAL", total)
        .set("LOOPS", loops_code(&axes, mode))
        .set("WG", grid.workgroup_size)
        .set("INDEX", grid.index_expr("gid"))
        .render(&name)?;
    let dy_numel = cx.graph.ty(cx.node.inputs[0]).numel() as u64;
    Ok(cx.linear_instance(
        name,
        "pad_grad",
        source,
        vec![BindingRef::read(cx.input(0)), BindingRef::write(cx.id)],
        &grid,
        dy_numel,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The loops' candidate rule, on the CPU, visits exactly the positions whose forward
    /// source ([`PadMode::source`]) is `j`, each once.
    #[test]
    fn candidates_are_exactly_the_positions_reading_each_element() {
        for mode in [PadMode::Reflect, PadMode::Replicate] {
            for len in 1..6usize {
                for before in 0..len.max(4) {
                    for after in 0..len.max(4) {
                        if mode == PadMode::Reflect && before.max(after) >= len {
                            continue;
                        }
                        let out = before + len + after;
                        let last = len - 1;
                        for j in 0..len {
                            let got: Vec<usize> = match mode {
                                PadMode::Replicate => {
                                    let lo = if j == 0 { 0 } else { before + j };
                                    let hi = if j == last { out } else { before + j + 1 };
                                    (lo..hi).collect()
                                }
                                _ => {
                                    let mut c = vec![before + j];
                                    if j >= 1 && j <= before {
                                        c.push(before - j);
                                    }
                                    if j + after >= last && j + 2 <= len {
                                        c.push(before + 2 * last - j);
                                    }
                                    c
                                }
                            };
                            let mut got = got;
                            got.sort_unstable();
                            let want: Vec<usize> = (0..out)
                                .filter(|&d| mode.source(d as i64 - before as i64, len) == Some(j))
                                .collect();
                            assert_eq!(got, want, "{mode:?} len {len} pads ({before}, {after}) j {j}");
                        }
                    }
                }
            }
        }
    }
}
