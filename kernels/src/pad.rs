//! Padding (`wgsl/pad.wgsl`): constant, reflect or replicate, one invocation per output
//! element. Its gradient for the last two modes is in `pad_grad.rs`.

use crate::index::strides;
use crate::lower::NodeCx;
use crate::template::{Template, f32_lit};
use crate::{BindingRef, KernelError, KernelInstance};
use fovea_graph::ir::PadMode;
use std::fmt::Write;

const PAD_WGSL: &str = include_str!("../wgsl/pad.wgsl");

/// One axis of the padded view: output length, padding before, input length, input stride.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PadAxis {
    pub out: usize,
    pub before: usize,
    pub len: usize,
    pub stride: usize,
}

impl PadAxis {
    /// Whether the axis has any padding.
    pub fn padded(&self) -> bool {
        self.before > 0 || self.out != self.len
    }
}

/// The axes of `shape` padded by `pads`, with unpadded axes merged into their inner neighbour
/// (contiguous in both input and output) and length-1 unpadded axes dropped.
pub(crate) fn pad_axes(shape: &[usize], pads: &[(usize, usize)]) -> Vec<PadAxis> {
    let st = strides(shape);
    let mut axes: Vec<PadAxis> = Vec::new();
    for d in (0..shape.len()).rev() {
        let (b, a) = pads[d];
        let ax = PadAxis {
            out: shape[d] + b + a,
            before: b,
            len: shape[d],
            stride: st[d],
        };
        match axes.last_mut() {
            // An unpadded axis outside an axis that covers its whole input merges with it.
            Some(inner) if b == 0 && a == 0 && inner.before == 0 && inner.out == inner.len => {
                inner.out *= shape[d];
                inner.len *= shape[d];
            }
            _ if b == 0 && a == 0 && shape[d] == 1 => {}
            _ => axes.push(ax),
        }
    }
    axes.reverse();
    axes
}

/// The WGSL computing `inside` and `src` for output element `i`: a constant pad clears
/// `inside` in the border; reflect and replicate map the coordinate back inside (in i32, so
/// the border's negative coordinates are plain numbers).
fn coords_code(axes: &[PadAxis], mode: PadMode) -> String {
    let outs: Vec<usize> = axes.iter().map(|a| a.out).collect();
    let ost = strides(&outs);
    let mut code = String::new();
    for (k, a) in axes.iter().enumerate() {
        let mut d = if ost[k] == 1 {
            "i".to_string()
        } else {
            format!("(i / {}u)", ost[k])
        };
        if k > 0 {
            d = format!("({d} % {}u)", a.out);
        }
        let _ = writeln!(code, "    let d{k} = {d};");
        match mode {
            _ if !a.padded() => {
                let _ = writeln!(code, "    src = src + d{k} * {}u;", a.stride);
            }
            PadMode::Constant => {
                let _ = writeln!(
                    code,
                    "    inside = inside && d{k} >= {}u && d{k} < {}u;",
                    a.before,
                    a.before + a.len
                );
                let _ = writeln!(code, "    src = src + (d{k} - {}u) * {}u;", a.before, a.stride);
            }
            PadMode::Reflect | PadMode::Replicate => {
                let last = a.len - 1;
                let _ = writeln!(code, "    let r{k} = i32(d{k}) - {}i;", a.before);
                let map = if mode == PadMode::Reflect {
                    // |r| mirrors the part before; beyond the last element, 2 * last - r.
                    format!("select(abs(r{k}), {}i - abs(r{k}), abs(r{k}) > {last}i)", 2 * last)
                } else {
                    format!("clamp(r{k}, 0i, {last}i)")
                };
                let _ = writeln!(code, "    src = src + u32({map}) * {}u;", a.stride);
            }
        }
    }
    code
}

/// Lowers `Pad { pads, value, mode }`.
pub(crate) fn lower_pad(
    cx: &NodeCx,
    pads: &[(usize, usize)],
    value: f32,
    mode: PadMode,
) -> Result<KernelInstance, KernelError> {
    let axes = pad_axes(cx.in_shape(0), pads);
    let total = cx.out_numel();
    let grid = cx.linear_grid(total)?;
    let name = match mode {
        PadMode::Constant => "pad".to_string(),
        m => format!("pad_{}", m.name()),
    };
    let source = Template::new(PAD_WGSL)
        .set("TOTAL", total)
        .set("COORDS", coords_code(&axes, mode))
        .set("VALUE", f32_lit(value))
        .set("WG", grid.workgroup_size)
        .set("INDEX", grid.index_expr("gid"))
        .render(&name)?;
    Ok(cx.linear_instance(
        name,
        "pad",
        source,
        vec![BindingRef::read(cx.input(0)), BindingRef::write(cx.id)],
        &grid,
        0,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CPU mirror of the generated code: `Some(src)` or `None` for padding.
    fn mirror(i: usize, axes: &[PadAxis], mode: PadMode) -> Option<usize> {
        let outs: Vec<usize> = axes.iter().map(|a| a.out).collect();
        let ost = strides(&outs);
        let mut src = 0;
        for (k, a) in axes.iter().enumerate() {
            let d = i / ost[k] % a.out;
            let r = d as i64 - a.before as i64;
            let last = a.len as i64 - 1;
            let s = match mode {
                PadMode::Constant if d < a.before || d >= a.before + a.len => return None,
                PadMode::Constant => r,
                PadMode::Reflect if r.abs() > last => 2 * last - r.abs(),
                PadMode::Reflect => r.abs(),
                PadMode::Replicate => r.clamp(0, last),
            };
            src += s as usize * a.stride;
        }
        Some(src)
    }

    #[test]
    fn merged_axes_index_like_the_full_shape() {
        let shape = [2, 3, 1, 4];
        for pads in [
            vec![(0, 0), (1, 2), (0, 0), (0, 0)],
            vec![(0, 0); 4],
            vec![(1, 0), (0, 0), (0, 0), (0, 3)],
            vec![(1, 0), (2, 1), (0, 0), (3, 2)],
        ] {
            let axes = pad_axes(&shape, &pads);
            let out: Vec<usize> = shape.iter().zip(&pads).map(|(d, (a, b))| d + a + b).collect();
            let ost = strides(&out);
            let ist = strides(&shape);
            for mode in [PadMode::Constant, PadMode::Reflect, PadMode::Replicate] {
                // Reflect needs pads shorter than the axis.
                if mode == PadMode::Reflect && shape.iter().zip(&pads).any(|(&d, &(a, b))| a.max(b) >= d) {
                    continue;
                }
                for i in 0..out.iter().product() {
                    let mut expect = Some(0);
                    for d in 0..4 {
                        let c = i / ost[d] % out[d];
                        let src = mode.source(c as i64 - pads[d].0 as i64, shape[d]);
                        expect = expect.zip(src).map(|(s, c)| s + c * ist[d]);
                    }
                    assert_eq!(mirror(i, &axes, mode), expect, "{mode:?} pads {pads:?} i {i}");
                }
            }
        }
        assert_eq!(pad_axes(&shape, &[(0, 0); 4]).len(), 1);
    }
}
