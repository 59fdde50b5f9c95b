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

@group(0) @binding(0) var<storage, read> cfg_x: array<f32>;
@group(0) @binding(1) var<storage, read> cfg_dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> cfg_dw: array<f32>;

fn load_a(g: u32, m: u32, k: u32) -> f32 {
    let ci = m % CFG_CG;
    let kx = (m / CFG_CG) % CFG_KW;
    let ky = m / (CFG_CG * CFG_KW);
    let ox = k % CFG_OW;
    let oy = (k / CFG_OW) % CFG_OH;
    let n = k / (CFG_OW * CFG_OH);
    let iy = i32(oy) * CFG_SH - CFG_PT + i32(ky) * CFG_DH;
    let ix = i32(ox) * CFG_SW - CFG_PL + i32(kx) * CFG_DW;
    if (iy < 0 || iy >= CFG_H || ix < 0 || ix >= CFG_W) {
        return 0.0;
    }
    return cfg_x[((n * u32(CFG_H) + u32(iy)) * u32(CFG_W) + u32(ix)) * CFG_C + g * CFG_CG + ci];
}

fn load_b(g: u32, k: u32, n: u32) -> f32 {
    return cfg_dy[k * CFG_CO + g * CFG_COG + n];
}

fn store_c(g: u32, m: u32, n: u32, v: f32) {
    cfg_dw[m * CFG_CO + g * CFG_COG + n] = v;
}
