// conv_transpose.wgsl: loaders that make the GEMM core (gemm.wgsl) a transposed 2-D convolution
// (the input gradient of a convolution), one group.
//
// Bindings: 0 convt_x (N, H, W, C) NHWC, 1 convt_w (KH, KW, CO, C) (read),
// 2 convt_y (N, OH, OW, CO) NHWC (read_write).
// The GEMM: M = N*OH*OW output pixels, K = KH*KW*C taps, N = CO, with
//   A[m, k] = x[n, iy, ix, ci] where iy = (oy + PT - ky*DH) / SH when that division is exact and
//            0 <= iy < H (likewise ix with PL, DW, SW, W), else 0;
//            m = (n*OH + oy)*OW + ox,  k = (ky*KW + kx)*C + ci
//   B[k, co] = w[((ky*KW + kx)*CO + co)*C + ci]
//   y[m*CO + co] = C[m, co].
// Output padding needs no code: its rows and columns find no input and come out 0.

const CONVT_H: i32 = {{H}};
const CONVT_W: i32 = {{W}};
const CONVT_C: u32 = {{C}}u;
const CONVT_OH: u32 = {{OH}}u;
const CONVT_OW: u32 = {{OW}}u;
const CONVT_CO: u32 = {{CO}}u;
const CONVT_KW: u32 = {{KW}}u;
const CONVT_SH: i32 = {{SH}};
const CONVT_SW: i32 = {{SW}};
const CONVT_DH: i32 = {{DH}};
const CONVT_DW: i32 = {{DW}};
const CONVT_PT: i32 = {{PT}};
const CONVT_PL: i32 = {{PL}};

@group(0) @binding(0) var<storage, read> convt_x: array<f32>;
@group(0) @binding(1) var<storage, read> convt_w: array<f32>;
@group(0) @binding(2) var<storage, read_write> convt_y: array<f32>;

fn load_a(g: u32, m: u32, k: u32) -> f32 {
    let ox = m % CONVT_OW;
    let oy = (m / CONVT_OW) % CONVT_OH;
    let n = m / (CONVT_OW * CONVT_OH);
    let ci = k % CONVT_C;
    let kx = (k / CONVT_C) % CONVT_KW;
    let ky = k / (CONVT_C * CONVT_KW);
    let ty = i32(oy) + CONVT_PT - i32(ky) * CONVT_DH;
    let tx = i32(ox) + CONVT_PL - i32(kx) * CONVT_DW;
    if (ty < 0 || tx < 0 || ty % CONVT_SH != 0 || tx % CONVT_SW != 0) {
        return 0.0;
    }
    let iy = ty / CONVT_SH;
    let ix = tx / CONVT_SW;
    if (iy >= CONVT_H || ix >= CONVT_W) {
        return 0.0;
    }
    return convt_x[((n * u32(CONVT_H) + u32(iy)) * u32(CONVT_W) + u32(ix)) * CONVT_C + ci];
}

fn load_b(g: u32, k: u32, n: u32) -> f32 {
    return convt_w[((k / CONVT_C) * CONVT_CO + n) * CONVT_C + k % CONVT_C];
}

fn store_c(g: u32, m: u32, n: u32, v: f32) {
    convt_y[m * CONVT_CO + n] = v;
}
