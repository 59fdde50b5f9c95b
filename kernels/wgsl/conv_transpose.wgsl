// conv_transpose.wgsl: loaders that make the GEMM core (gemm.wgsl) a transposed 2-D convolution:
// the ConvTranspose2d op and the input gradient of Conv2d (Conv2dBackpropInput), grouped or not.
//
// Bindings: 0 convt_x (N, H, W, CIN) NHWC, 1 convt_w (the kernel, read), 2 convt_y
// (N, OH, OW, COUT) NHWC (read_write). Channels are split into G groups of CING and COUTG.
// The GEMM per group g: M = N*OH*OW output pixels, K = KH*KW*CING, N = COUTG, with K split into
// KO = KH*KW taps of KI = CING channels:
//   A[m, k] = x[n, iy, ix, g*CING + ci] where iy = (oy + PT - ky*DH) / SH when that division is
//            exact and 0 <= iy < H (likewise ix with PL, DW, SW, W), else 0 (for the whole tap);
//            m = (n*OH + oy)*OW + ox,  k = tap*CING + ci,  tap = ky*KW + kx
//   B[k, co] = w[B_COL + ci * B_KSTRIDE] (both substituted, B_COL of tap, co and g):
//            ConvTranspose2d, w (KH, KW, COUT, CIN), G = 1:  (tap*COUT + co)*CIN + ci, stride 1
//            Conv2dBackpropInput, w HWIO (KH, KW, COUTG, CIN): (tap*COUTG + co)*CIN + g*CING + ci,
//              stride 1
//            Conv2dBackpropInput, w transposed (KH, KW, CIN, COUTG):
//              (tap*CIN + g*CING)*COUTG + co, stride COUTG: columns contiguous, so w may be
//              bound as array<vec4<f32>> (B_TYPE) and read 4 columns at a time (b_at4)
//   y[m*COUT + g*COUTG + co] = C[m, co].
// Output padding needs no code: its rows and columns find no input and come out 0.

const CONVT_H: i32 = {{H}};
const CONVT_W: i32 = {{W}};
const CONVT_CIN: u32 = {{CIN}}u;
const CONVT_CING: u32 = {{CING}}u;
const CONVT_OH: u32 = {{OH}}u;
const CONVT_OW: u32 = {{OW}}u;
const CONVT_COUT: u32 = {{COUT}}u;
const CONVT_COUTG: u32 = {{COUTG}}u;
const CONVT_KW: u32 = {{KW}}u;
const CONVT_SH: i32 = {{SH}};
const CONVT_SW: i32 = {{SW}};
const CONVT_DH: i32 = {{DH}};
const CONVT_DW: i32 = {{DW}};
const CONVT_PT: i32 = {{PT}};
const CONVT_PL: i32 = {{PL}};

const A_KSTRIDE: u32 = 1u;
const A_CHECKED: bool = true;
const B_KSTRIDE: u32 = {{B_KSTRIDE}};

@group(0) @binding(0) var<storage, read> convt_x: array<f32>;
@group(0) @binding(1) var<storage, read> convt_w: array<{{B_TYPE}}>;
@group(0) @binding(2) var<storage, read_write> convt_y: array<f32>;

struct ARow {
    base: u32,
    lo: u32,
    hi: u32,
}

fn a_row(g: u32, m: u32, tap: u32) -> ARow {
    let ox = m % CONVT_OW;
    let oy = (m / CONVT_OW) % CONVT_OH;
    let n = m / (CONVT_OW * CONVT_OH);
    let ky = tap / CONVT_KW;
    let kx = tap % CONVT_KW;
    let ty = i32(oy) + CONVT_PT - i32(ky) * CONVT_DH;
    let tx = i32(ox) + CONVT_PL - i32(kx) * CONVT_DW;
    if (ty < 0 || tx < 0 || ty % CONVT_SH != 0 || tx % CONVT_SW != 0) {
        return ARow(0u, 0u, 0u);
    }
    let iy = ty / CONVT_SH;
    let ix = tx / CONVT_SW;
    if (iy >= CONVT_H || ix >= CONVT_W) {
        return ARow(0u, 0u, 0u);
    }
    return ARow(((n * u32(CONVT_H) + u32(iy)) * u32(CONVT_W) + u32(ix)) * CONVT_CIN + g * CONVT_CING, 0u, KI);
}

fn a_at(i: u32) -> f32 {
    return convt_x[i];
}

fn b_col(g: u32, tap: u32, co: u32) -> u32 {
    return {{B_COL}};
}

fn b_at(i: u32) -> f32 {
    return {{B_AT}};
}

fn b_at4(i: u32) -> vec4<f32> {
    return {{B_AT4}};
}

fn store_c(g: u32, m: u32, n: u32, v: f32) {
    let i = m * CONVT_COUT + g * CONVT_COUTG + n;
    convt_y[i] = epilogue(i, v);
}
