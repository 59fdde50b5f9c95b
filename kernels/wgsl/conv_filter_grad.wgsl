// conv_filter_grad.wgsl: loaders that make the GEMM core (gemm.wgsl) the kernel gradient of a
// 2-D convolution (Conv2dBackpropFilter), grouped or not.
//
// Bindings: 0 cfg_x (N, H, W, C) NHWC (the forward input), 1 cfg_dy (N, OH, OW, CO) (read),
// 2 cfg_dw (KH, KW, C/G, CO) HWIO (read_write).
// The GEMM per group g: M = KH*KW*CG kernel rows, N = COG filters, K = N*OH*OW output pixels:
//   A[m, k] = x[n, oy*SH - PT + ky*DH, ox*SW - PL + kx*DW, g*CG + ci]  (0 outside the input),
//            m = (ky*KW + kx)*CG + ci,  k = (n*OH + oy)*OW + ox   (the forward's im2col, transposed)
//   B[k, co] = dy[k*CO + g*COG + co]
//   dw[m*CO + g*COG + co] = C[m, co].
// K is split into KO = N*OH output rows of KI = OW pixels: for one output row, row m of A steps
// SW*C through x, valid for the ox whose ix lies inside the input (a range [lo, hi)).
// K is long and M, N short: few workgroups, each looping over every output pixel.

const CFG_H: i32 = {{H}};
const CFG_W: i32 = {{W}};
const CFG_C: u32 = {{C}}u;
const CFG_OH: u32 = {{OH}}u;
const CFG_OW: u32 = {{OW}}u;
const CFG_CO: u32 = {{CO}}u;
const CFG_CG: u32 = {{CG}}u;
const CFG_COG: u32 = {{COG}}u;
const CFG_KW: u32 = {{KW}}u;
const CFG_SH: i32 = {{SH}};
const CFG_SW: i32 = {{SW}};
const CFG_DH: i32 = {{DH}};
const CFG_DW: i32 = {{DW}};
const CFG_PT: i32 = {{PT}};
const CFG_PL: i32 = {{PL}};

const A_KSTRIDE: u32 = u32(CFG_SW) * CFG_C;
const A_CHECKED: bool = true;
const B_KSTRIDE: u32 = CFG_CO;

@group(0) @binding(0) var<storage, read> cfg_x: array<f32>;
@group(0) @binding(1) var<storage, read> cfg_dy: array<{{B_TYPE}}>;
@group(0) @binding(2) var<storage, read_write> cfg_dw: array<f32>;

struct ARow {
    base: u32,
    lo: u32,
    hi: u32,
}

// The number of ox >= 0 with ox * SW < t (0 when t <= 0).
fn cfg_count(t: i32) -> u32 {
    return u32(max((t + CFG_SW - 1) / CFG_SW, 0));
}

fn a_row(g: u32, m: u32, ko: u32) -> ARow {
    let ci = m % CFG_CG;
    let kx = (m / CFG_CG) % CFG_KW;
    let ky = m / (CFG_CG * CFG_KW);
    let oy = ko % CFG_OH;
    let n = ko / CFG_OH;
    let iy = i32(oy) * CFG_SH - CFG_PT + i32(ky) * CFG_DH;
    if (iy < 0 || iy >= CFG_H) {
        return ARow(0u, 0u, 0u);
    }
    // ix = ox*SW + ix0 lies in [0, W) for ox in [lo, hi).
    let ix0 = i32(kx) * CFG_DW - CFG_PL;
    let lo = cfg_count(-ix0);
    let hi = min(cfg_count(CFG_W - ix0), CFG_OW);
    let base = u32((i32(n) * CFG_H + iy) * CFG_W + ix0) * CFG_C + g * CFG_CG + ci;
    return ARow(base, lo, hi);
}

fn a_at(i: u32) -> f32 {
    return cfg_x[i];
}

fn b_col(g: u32, ko: u32, n: u32) -> u32 {
    return ko * CFG_OW * CFG_CO + g * CFG_COG + n;
}

fn b_at(i: u32) -> f32 {
    return {{B_AT}};
}

fn b_at4(i: u32) -> vec4<f32> {
    return {{B_AT4}};
}

fn store_c(g: u32, m: u32, n: u32, v: f32) {
    let i = m * CFG_CO + g * CFG_COG + n;
    cfg_dw[i] = epilogue(i, v);
}
