// depthwise_filter_grad.wgsl: the kernel gradient of a depthwise convolution
// (Conv2dBackpropFilter with groups == C), CO = C * MULT.
//
//   dw[ky, kx, 0, co] = sum_{n, oy, ox} x[n, oy*SH - PT + ky*DH, ox*SW - PL + kx*DW, co / MULT]
//                                       * dy[n, oy, ox, co]     (0 outside the input)
// Bindings: 0 dwf_x (N, H, W, C), 1 dwf_dy (N, OH, OW, CO) (read), 2 dwf_out (read_write), as
// array<T> (vec4<f32> when MULT == 1 and C % 4 == 0, else f32). With SLABS == 1 dwf_out is dw
// itself; otherwise the scratch buffer, [SLABS][KH*KW*CO] partial sums that split_k.wgsl adds
// up in slab order (so the result does not depend on scheduling).
//
// Threading: one invocation per (slab, channel slot), the slot fastest. Slab s reduces the
// output rows (n, oy) in [s*RPS, min((s+1)*RPS, N*OH)), OXB output columns at a time: their
// dy values are loaded once, each input column they need once per kernel row (ROW, generated
// by depthwise.rs), and all KH*KW taps accumulate in registers (ACC).

alias T = {{T}};

const TOTAL: u32 = {{TOTAL}}u;
const ROWS: u32 = {{ROWS}}u; // N * OH
const RPS: u32 = {{RPS}}u; // rows per slab
const H: i32 = {{H}};
const W: i32 = {{W}};
const OH: u32 = {{OH}}u;
const OW: u32 = {{OW}}u;
const XS: u32 = {{XS}}u; // x's pixel stride in T elements
const YS: u32 = {{YS}}u; // dy's pixel stride in T elements: the channel slots
const MULT: u32 = {{MULT}}u;
const SH: i32 = {{SH}};
const SW: i32 = {{SW}};
const DH: i32 = {{DH}};
const PT: i32 = {{PT}};
const PL: i32 = {{PL}};
const OXB: u32 = {{OXB}}u; // output columns per step
const OXBLK: u32 = {{OXBLK}}u; // ceil(OW / OXB)
const TAPS: u32 = {{TAPS}}u; // KH * KW

@group(0) @binding(0) var<storage, read> dwf_x: array<T>;
@group(0) @binding(1) var<storage, read> dwf_dy: array<T>;
@group(0) @binding(2) var<storage, read_write> dwf_out: array<T>;

@compute @workgroup_size({{WG}}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = {{INDEX}};
    if (i >= TOTAL) {
        return;
    }
    let co = i % YS;
    let xc = co / MULT;
    let slab = i / YS;
    let r0 = slab * RPS;
    let r1 = min(r0 + RPS, ROWS);
{{ACC}}
    for (var r = r0; r < r1; r++) {
        let n = r / OH;
        let oy = r % OH;
        for (var oxb = 0u; oxb < OXBLK; oxb++) {
            let ox0 = oxb * OXB;
            let ixb = i32(ox0) * SW - PL;
            let g_at = (r * OW + ox0) * YS + co;
{{ROW}}
        }
    }
    let out = slab * TAPS * YS + co;
{{STORE}}
}
