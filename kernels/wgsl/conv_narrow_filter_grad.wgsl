// conv_narrow_filter_grad.wgsl: the kernel gradient of a convolution with few output channels
// (groups == 1, CO <= 4, CI % 4 == 0), a GEMM of N = CO columns and a long reduction (every
// output pixel of the batch) that the GEMM core would spread over a few mostly empty tiles.
//
//   dw[ky, kx, ci, co] = sum_{n, oy, ox} x[n, oy*SH - PT + ky*DH, ox*SW - PL + kx*DW, ci]
//                                        * dy[n, oy, ox, co]      (0 outside the input)
// Bindings: 0 cng_x (N, H, W, CI) as array<vec4<f32>>, 1 cng_dy (N, OH, OW, CO) f32 (read),
// 2 cng_out (read_write) f32: with SLABS == 1 dw itself; otherwise the scratch buffer,
// [SLABS][KH*KW*CI*CO] partial sums that split_k.wgsl adds up in slab order.
//
// Threading: one invocation per (tap, four input channels) along x, workgroup row y = the slab
// (output rows [slab*RPS, min((slab+1)*RPS, N*OH))), so the dy reads depend only on the slab
// and loop counters: the same in every lane (a broadcast load on lavapipe). Each step loads one
// vec4 of x and CO values of dy and adds CO vec4 products.

const PAIRS: u32 = {{PAIRS}}u; // KH * KW * CI4 invocations per slab
const ROWS: u32 = {{ROWS}}u; // N * OH
const RPS: u32 = {{RPS}}u; // rows per slab
const H: i32 = {{H}};
const W: i32 = {{W}};
const OH: u32 = {{OH}}u;
const OW: u32 = {{OW}}u;
const CI: u32 = {{CI}}u;
const CI4: u32 = {{CI4}}u;
const CO: u32 = {{CO}}u;
const KW: u32 = {{KW}}u;
const SH: i32 = {{SH}};
const SW: i32 = {{SW}};
const DH: i32 = {{DH}};
const DW: i32 = {{DW}};
const PT: i32 = {{PT}};
const PL: i32 = {{PL}};
const OUT: u32 = {{OUT}}u; // KH * KW * CI * CO: one slab's partial sums

@group(0) @binding(0) var<storage, read> cng_x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> cng_dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> cng_out: array<f32>;

@compute @workgroup_size({{WG}}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let p = gid.x;
    let slab = wid.y;
    let valid = p < PAIRS;
    let pc = min(p, PAIRS - 1u);
    let q = pc % CI4;
    let tap = pc / CI4;
    let ky = tap / KW;
    let kx = tap % KW;
    let r0 = slab * RPS;
    let r1 = min(r0 + RPS, ROWS);
{{ACC}}
    for (var r = r0; r < r1; r++) {
        let n = r / OH;
        let oy = r % OH;
        let iy = i32(oy) * SH - PT + i32(ky) * DH;
        let row_ok = iy >= 0 && iy < H;
        let row = (n * u32(H) + u32(max(iy, 0))) * u32(W);
        for (var ox = 0u; ox < OW; ox++) {
            let ix = i32(ox) * SW - PL + i32(kx) * DW;
            var xv = vec4<f32>(0.0);
            if (row_ok && ix >= 0 && ix < W) {
                xv = cng_x[(row + u32(ix)) * CI4 + q];
            }
            let g = (r * OW + ox) * CO;
{{STEP}}
        }
    }
    if (valid) {
        let out = slab * OUT + (tap * CI + 4u * q) * CO;
{{STORE}}
    }
}
