// conv_narrow_input_grad.wgsl: the input gradient of a convolution with few input channels
// (groups == 1, C <= 4: an image's first layer, whose input gradient style transfer needs every
// step), where the GEMM core's N = C would leave most of a tile's columns empty.
//
//   dx[n, iy, ix, c] = sum_{ky, kx, co} dy[n, oy, ox, co] * w[ky, kx, c, co]
//     over the taps with oy*SH - PT + ky*DH = iy and ox*SW - PL + kx*DW = ix, (oy, ox) in range.
// Bindings: 0 cin_dy (N, OH, OW, CO) and 1 cin_w (KH, KW, C, CO) as array<vec4<f32>>
// (CO % 4 == 0: four output channels per element), then the epilogue's extra inputs
// (EPILOGUE, fused.rs), then cin_dx (N, H, W, C) f32 (read_write) last.
//
// Threading: one invocation per (n, iy, block of IXB input columns), the block fastest, so the
// kernel reads depend only on loop counters: the same in every lane (a broadcast load on
// lavapipe). IXB is a multiple of SW; which taps reach which column of the block, and from which
// dy column (oxq + offset), is fixed when the kernel is generated (ROW, row_taps.rs). For each
// kernel row and four output channels, ROW loads each dy column once and adds dot products into
// IXB x C accumulators. The linear index is folded into a 2-D grid (INDEX), guarded by i < TOTAL.

alias T = vec4<f32>; // a dy element (row_taps.rs loads columns as T)

const TOTAL: u32 = {{TOTAL}}u;
const H: u32 = {{H}}u;
const W: u32 = {{W}}u;
const OH: i32 = {{OH}};
const OW: i32 = {{OW}};
const C: u32 = {{C}}u;
const CO4: u32 = {{CO4}}u; // CO / 4: dy's pixel stride in vec4 elements
const KH: u32 = {{KH}}u;
const KW: u32 = {{KW}}u;
const SH: i32 = {{SH}};
const SW: u32 = {{SW}}u;
const DH: i32 = {{DH}};
const PT: i32 = {{PT}};
const IXB: u32 = {{IXB}}u; // input columns per invocation (a multiple of SW)
const IXBLK: u32 = {{IXBLK}}u; // ceil(W / IXB)

@group(0) @binding(0) var<storage, read> cin_dy: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> cin_w: array<vec4<f32>>;

// ---- epilogue and its bindings (substituted) ----
{{EPILOGUE}}
// ---- end of epilogue ----

@group(0) @binding({{OUT_BINDING}}) var<storage, read_write> cin_dx: array<f32>;

@compute @workgroup_size({{WG}}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = {{INDEX}};
    if (i >= TOTAL) {
        return;
    }
    let ixb = i % IXBLK;
    var r = i / IXBLK;
    let iy = r % H;
    let n = r / H;
    let ix0 = ixb * IXB;
    let oxq = i32(ix0 / SW);
{{ACC}}
    for (var ky = 0u; ky < KH; ky++) {
        let num = i32(iy) + PT - i32(ky) * DH;
        // No `continue`: the loop stays uniform, so the kernel reads below do too.
        if (num >= 0 && num % SH == 0 && num / SH < OH) {
            let row = (n * u32(OH) + u32(num / SH)) * u32(OW);
            for (var q = 0u; q < CO4; q++) {
                let wrow = ky * KW * C * CO4 + q;
{{ROW}}
            }
        }
    }
    let out = ((n * H + iy) * W + ix0) * C;
{{STORE}}
}
