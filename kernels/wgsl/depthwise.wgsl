// depthwise.wgsl: direct depthwise 2-D convolution (Conv2d with groups == C, one input channel
// per group, CO = C * MULT filters).
//
//   y[n, oy, ox, co] = sum_{ky, kx} x[n, oy*SH - PT + ky*DH, ox*SW - PL + kx*DW, co / MULT]
//                                   * w[ky, kx, 0, co]        (0 outside the input)
// Bindings: 0 dw_x (N, H, W, C) NHWC, 1 dw_w (KH, KW, 1, CO) (read), 2 dw_y (N, OH, OW, CO)
// (read_write).
// Threading: one invocation per output element, linear index i = ((n*OH + oy)*OW + ox)*CO + co
// (neighbouring invocations read neighbouring channels); the linear index is folded into a 2-D
// grid of WG-wide workgroups (INDEX), guarded by i < TOTAL.

const TOTAL: u32 = {{TOTAL}}u;
const H: i32 = {{H}};
const W: i32 = {{W}};
const C: u32 = {{C}}u;
const OH: u32 = {{OH}}u;
const OW: u32 = {{OW}}u;
const CO: u32 = {{CO}}u;
const MULT: u32 = {{MULT}}u;
const KH: u32 = {{KH}}u;
const KW: u32 = {{KW}}u;
const SH: i32 = {{SH}};
const SW: i32 = {{SW}};
const DH: i32 = {{DH}};
const DW: i32 = {{DW}};
const PT: i32 = {{PT}};
const PL: i32 = {{PL}};

@group(0) @binding(0) var<storage, read> dw_x: array<f32>;
@group(0) @binding(1) var<storage, read> dw_w: array<f32>;
@group(0) @binding(2) var<storage, read_write> dw_y: array<f32>;

@compute @workgroup_size({{WG}}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = {{INDEX}};
    if (i >= TOTAL) {
        return;
    }
    let co = i % CO;
    let ox = (i / CO) % OW;
    let oy = (i / (CO * OW)) % OH;
    let n = i / (CO * OW * OH);
    let ci = co / MULT;
    let iy0 = i32(oy) * SH - PT;
    let ix0 = i32(ox) * SW - PL;
    var acc = 0.0;
    for (var ky = 0u; ky < KH; ky++) {
        let iy = iy0 + i32(ky) * DH;
        if (iy < 0 || iy >= H) {
            continue;
        }
        for (var kx = 0u; kx < KW; kx++) {
            let ix = ix0 + i32(kx) * DW;
            if (ix < 0 || ix >= W) {
                continue;
            }
            let xv = dw_x[((n * u32(H) + u32(iy)) * u32(W) + u32(ix)) * C + ci];
            acc = acc + xv * dw_w[(ky * KW + kx) * CO + co];
        }
    }
    dw_y[i] = acc;
}
