// peak_fma.wgsl: measures the adapter's f32 FMA throughput (for "percent of peak" reports).
//
// Each invocation runs 8 independent chains of ITERS fused multiply-adds in registers
// (2 FLOPs each), then writes their sum so nothing is optimised away.
// Bindings: 0 peak_out (one f32 per invocation, read_write).
// Threading: 256 invocations per workgroup, 1-D grid; FLOPs = 16 * ITERS * invocations.

const ITERS: u32 = {{ITERS}}u;

@group(0) @binding(0) var<storage, read_write> peak_out: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let s = f32(gid.x) * 1e-7;
    var a0 = s; var a1 = s + 0.1; var a2 = s + 0.2; var a3 = s + 0.3;
    var a4 = s + 0.4; var a5 = s + 0.5; var a6 = s + 0.6; var a7 = s + 0.7;
    let m = 0.9999;
    let c = 1e-4;
    for (var i = 0u; i < ITERS; i++) {
        a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
        a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
    }
    peak_out[gid.x] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}
