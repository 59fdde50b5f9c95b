//! Kernel rows slid along x, generated unrolled: the direct convolution kernels (depthwise and
//! its gradients, the narrow input gradient) let an invocation own a block of neighbouring
//! columns and load each column of the other tensor that the block's taps read once per kernel
//! row. Which tap of which column reads which loaded column follows from the geometry alone,
//! so the kernels' row bodies are generated from these lists.

use std::fmt::Write;

/// One tap of a kernel row: accumulator `acc` gets loaded column `col` (an offset from the
/// block's base column) times kernel column `kx` (forward, input gradient) or times output
/// column `t` (filter gradient).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tap {
    pub t: usize,
    pub kx: usize,
    pub col: i64,
}

/// The taps of `block` output columns with kernel width `kw`, stride `sw`, dilation `dw`:
/// output `t` reads column `t*sw + kx*dw` from the block's first input column.
pub(crate) fn forward_taps(block: usize, kw: usize, sw: usize, dw: usize) -> Vec<Tap> {
    let mut taps = Vec::new();
    for t in 0..block {
        for kx in 0..kw {
            taps.push(Tap {
                t,
                kx,
                col: (t * sw + kx * dw) as i64,
            });
        }
    }
    taps
}

/// The taps of the input gradient for `block` input columns (a multiple of `sw`), left padding
/// `pl`: input column `t` gets output column `(t + pl - kx*dw) / sw` (from the block's `oxq`)
/// where that divides exactly.
pub(crate) fn input_grad_taps(block: usize, kw: usize, sw: usize, dw: usize, pl: usize) -> Vec<Tap> {
    let mut taps = Vec::new();
    for t in 0..block {
        for kx in 0..kw {
            let num = t as i64 + pl as i64 - (kx * dw) as i64;
            if num.rem_euclid(sw as i64) == 0 {
                taps.push(Tap {
                    t,
                    kx,
                    col: num.div_euclid(sw as i64),
                });
            }
        }
    }
    taps
}

/// The distinct columns `taps` read, in order.
pub(crate) fn columns(taps: &[Tap]) -> Vec<i64> {
    let mut cols: Vec<i64> = taps.iter().map(|t| t.col).collect();
    cols.sort_unstable();
    cols.dedup();
    cols
}

/// WGSL loading each of `cols` into `v<j>`: `T(0)` where `base + col` is outside `[0, limit)`,
/// else `buf[(row + u32(base + col)) * stride + chan]`.
pub(crate) fn load_columns(
    out: &mut String,
    cols: &[i64],
    buf: &str,
    base: &str,
    limit: &str,
    stride: &str,
    chan: &str,
) {
    for (j, c) in cols.iter().enumerate() {
        let _ = writeln!(
            out,
            "            var v{j} = T(0.0);\n            {{ let p = {base} + ({c}); \
             if (p >= 0 && p < {limit}) {{ v{j} = {buf}[(row + u32(p)) * {stride} + {chan}]; }} }}"
        );
    }
}

pub(crate) fn col_index(cols: &[i64], c: i64) -> usize {
    cols.binary_search(&c)
        .expect("a tap's column is among the loaded columns")
}

pub(crate) fn acc_decl(n: usize) -> String {
    (0..n).map(|a| format!("    var acc{a} = T(0.0);\n")).collect()
}

/// Columns per block: `want` rounded up to a multiple of `stride`, no more than the row needs.
pub(crate) fn block(want: usize, stride: usize, row: usize) -> usize {
    want.min(row.max(1)).div_ceil(stride).max(1) * stride
}
