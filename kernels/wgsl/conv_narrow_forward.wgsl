// conv_narrow_forward.wgsl: a convolution with few output channels (groups == 1, CO <= 4: an
// image-producing last layer, e.g. the style transform net's 9x9 conv to RGB), where the GEMM
// core's N = CO would leave most of a tile's columns empty.
//
//   y[n, oy, ox, co] = sum_{ky, kx, ci} x[n, oy*SH - PT + ky*DH, ox*SW - PL + kx*DW, ci]
//                                       * w[ky, kx, ci, co]        (0 outside the input)
// Bindings: 0 cnf_x (N, H, W, CI) as array<vec4<f32>> (CI % 4 == 0: four input channels per
// element), 1 cnf_w (KH, KW, CI, CO) f32, then the epilogue's extra inputs (EPILOGUE, fused.rs),
// then cnf_y (N, OH, OW, CO) f32 (read_write) last.
//
// Threading: one invocation per (n, oy, block of OXB output columns), the block fastest, so the
// kernel reads depend only on loop counters: the same in every lane (a broadcast load on
// lavapipe). For each kernel row and four input channels, ROW (row_taps.rs) loads each input
// column the block's taps read once and adds CO dot products per tap. The linear index is
// folded into a 2-D grid (INDEX), guarded by i < TOTAL.

alias T = vec4<f32>; // an x element (row_taps.rs loads columns as T)

const TOTAL: u32 = {{TOTAL}}u;
const H: i32 = {{H}};
const W: i32 = {{W}};
const OH: u32 = {{OH}}u;
const OW: u32 = {{OW}}u;
const CI: u32 = {{CI}}u;
const CI4: u32 = {{CI4}}u; // CI / 4: x's pixel stride in vec4 elements
const CO: u32 = {{CO}}u;
const KH: u32 = {{KH}}u;
const KW: u32 = {{KW}}u;
const SH: i32 = {{SH}};
const SW: i32 = {{SW}};
const DH: i32 = {{DH}};
const PT: i32 = {{PT}};
const PL: i32 = {{PL}};
const OXB: u32 = {{OXB}}u; // output columns per invocation
const OXBLK: u32 = {{OXBLK}}u; // ceil(OW / OXB)

@group(0) @binding(0) var<storage, read> cnf_x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> cnf_w: array<f32>;

// ---- epilogue and its bindings (substituted) ----
{{EPILOGUE}}
// ---- end of epilogue ----

@group(0) @binding({{OUT_BINDING}}) var<storage, read_write> cnf_y: array<f32>;

// Kernel entries (ky, kx, 4q..4q+3, co) as one vec4 (uniform: the same in every lane).
fn w4(tap: u32, q: u32, co: u32) -> vec4<f32> {
    let i = (tap * CI + 4u * q) * CO + co;
    return vec4<f32>(cnf_w[i], cnf_w[i + CO], cnf_w[i + 2u * CO], cnf_w[i + 3u * CO]);
}

@compute @workgroup_size({{WG}}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = {{INDEX}};
    if (i >= TOTAL) {
        return;
    }
    let oxb = i % OXBLK;
    var r = i / OXBLK;
    let oy = r % OH;
    let n = r / OH;
    let ox0 = oxb * OXB;
    let ixb = i32(ox0) * SW - PL;
{{ACC}}
    for (var ky = 0u; ky < KH; ky++) {
        let iy = i32(oy) * SH - PT + i32(ky) * DH;
        // No `continue`: the loop stays uniform, so the kernel reads below do too.
        if (iy >= 0 && iy < H) {
            let row = (n * u32(H) + u32(iy)) * u32(W);
            for (var q = 0u; q < CI4; q++) {
{{ROW}}
            }
        }
    }
    let out = ((n * OH + oy) * OW + ox0) * CO;
{{STORE}}
}
