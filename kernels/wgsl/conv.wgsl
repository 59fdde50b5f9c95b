// conv.wgsl: loaders that make the GEMM core (gemm.wgsl) an implicit-GEMM 2-D convolution
// (forward), grouped or not.
//
// Bindings: 0 conv_x (N, H, W, C) NHWC, 1 conv_w (KH, KW, C/G, CO) HWIO (read),
// 2 conv_y (N, OH, OW, CO) NHWC (read_write).
// The GEMM per group g: M = N*OH*OW output pixels, K = KH*KW*CG taps, N = COG filters, with
//   A[m, k] = x[n, oy*SH - PT + ky*DH, ox*SW - PL + kx*DW, g*CG + ci]  (0 outside the input),
//            m = (n*OH + oy)*OW + ox,  k = (ky*KW + kx)*CG + ci   (an on-the-fly im2col view)
//   B[k, co] = w[k*CO + g*COG + co]   (the HWIO kernel is already the (KH*KW*CG, CO) matrix)
//   y[m*CO + g*COG + co] = C[m, co].
// K is split in one of two ways (CONV_ROWS):
//   true  (groups = 1, DW = 1): KO = KH kernel rows, KI = KW*C. For one kernel row, the taps
//         kx and channels ci of a pixel are contiguous in x: A[m, ky*KI + ki] = x[base + ki],
//         valid for the kx in [max(0, -ix0), min(KW, W - ix0)) (ix0 = ox*SW - PL).
//   false (otherwise): KO = KH*KW taps, KI = CG channels; a tap is valid or not for a whole row.

const CONV_H: i32 = {{H}};
const CONV_W: i32 = {{W}};
const CONV_C: u32 = {{C}}u;
const CONV_OH: u32 = {{OH}}u;
const CONV_OW: u32 = {{OW}}u;
const CONV_CO: u32 = {{CO}}u;
const CONV_CG: u32 = {{CG}}u;
const CONV_COG: u32 = {{COG}}u;
const CONV_KW: u32 = {{KW}}u;
const CONV_SH: i32 = {{SH}};
const CONV_SW: i32 = {{SW}};
const CONV_DH: i32 = {{DH}};
const CONV_DW: i32 = {{DW}};
const CONV_PT: i32 = {{PT}};
const CONV_PL: i32 = {{PL}};
const CONV_ROWS: bool = {{ROWS}};

const A_KSTRIDE: u32 = 1u;
const A_CHECKED: bool = true;
const B_KSTRIDE: u32 = CONV_CO;

@group(0) @binding(0) var<storage, read> conv_x: array<f32>;
@group(0) @binding(1) var<storage, read> conv_w: array<{{B_TYPE}}>;
@group(0) @binding(2) var<storage, read_write> conv_y: array<f32>;

struct ARow {
    base: u32,
    lo: u32,
    hi: u32,
}

fn a_row(g: u32, m: u32, ko: u32) -> ARow {
    let ox = m % CONV_OW;
    let oy = (m / CONV_OW) % CONV_OH;
    let n = m / (CONV_OW * CONV_OH);
    var ky = ko;
    var kx = 0u;
    if (!CONV_ROWS) {
        ky = ko / CONV_KW;
        kx = ko % CONV_KW;
    }
    let iy = i32(oy) * CONV_SH - CONV_PT + i32(ky) * CONV_DH;
    let ix = i32(ox) * CONV_SW - CONV_PL + i32(kx) * CONV_DW;
    let base = u32((i32(n) * CONV_H + iy) * CONV_W + ix) * CONV_C + g * CONV_CG;
    if (iy < 0 || iy >= CONV_H) {
        return ARow(0u, 0u, 0u);
    }
    if (CONV_ROWS) {
        let lo = u32(clamp(-ix, 0, i32(CONV_KW))) * CONV_C;
        let hi = u32(clamp(CONV_W - ix, 0, i32(CONV_KW))) * CONV_C;
        return ARow(base, lo, hi);
    }
    if (ix < 0 || ix >= CONV_W) {
        return ARow(0u, 0u, 0u);
    }
    return ARow(base, 0u, KI);
}

fn a_at(i: u32) -> f32 {
    return conv_x[i];
}

fn b_col(g: u32, ko: u32, n: u32) -> u32 {
    return ko * KI * CONV_CO + g * CONV_COG + n;
}

fn b_at(i: u32) -> f32 {
    return {{B_AT}};
}

fn b_at4(i: u32) -> vec4<f32> {
    return {{B_AT4}};
}

fn store_c(g: u32, m: u32, n: u32, v: f32) {
    let i = m * CONV_CO + g * CONV_COG + n;
    conv_y[i] = epilogue(i, v);
}
