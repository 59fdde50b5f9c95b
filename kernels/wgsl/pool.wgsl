// pool.wgsl: 2-D max or average pooling of an NHWC tensor.
//
//   y[n, oy, ox, c] = max / mean over the in-range window positions
//                     x[n, oy*SH - PT + ky, ox*SW - PL + kx, c], ky < KH, kx < KW.
// Padding positions never take part: max ignores them, the average divides by the number of
// in-range positions; an empty window gives 0.
// Bindings: 0 pool_x (N, H, W, C) (read), 1 pool_y (N, OH, OW, C) (read_write), arrays of T.
// Vectorisation: T is vec4<f32> when C % 4 == 0 (4 channels per invocation, CL = C / 4 vectors
// per pixel), else f32 (CL = C). On lavapipe a vec4 load per lane costs about what an f32 load
// does, so the vec4 form moves ~4x the bytes per instruction.
// Threading: one invocation per output pixel and channel group, linear index
// ((n*OH + oy)*OW + ox)*CL + cg, folded into a 2-D grid of WG-wide workgroups (INDEX), guarded by
// i < TOTAL; neighbouring invocations read neighbouring channel groups.
// INIT, COMBINE (of acc and v) and FINISH (of acc and count) choose max or average.

const TOTAL: u32 = {{TOTAL}}u;
const H: i32 = {{H}};
const W: i32 = {{W}};
const C: u32 = {{C}}u;
const CL: u32 = {{CL}}u;
const OH: u32 = {{OH}}u;
const OW: u32 = {{OW}}u;
const KH: i32 = {{KH}};
const KW: i32 = {{KW}};
const SH: i32 = {{SH}};
const SW: i32 = {{SW}};
const PT: i32 = {{PT}};
const PL: i32 = {{PL}};

alias T = {{T}};

@group(0) @binding(0) var<storage, read> pool_x: array<T>;
@group(0) @binding(1) var<storage, read_write> pool_y: array<T>;

@compute @workgroup_size({{WG}}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = {{INDEX}};
    if (i >= TOTAL) {
        return;
    }
    let c = i % CL;
    let ox = (i / CL) % OW;
    let oy = (i / (CL * OW)) % OH;
    let n = i / (CL * OW * OH);
    // The window clipped to the input.
    let y0 = i32(oy) * SH - PT;
    let x0 = i32(ox) * SW - PL;
    let y_lo = max(y0, 0);
    let y_hi = min(y0 + KH, H);
    let x_lo = max(x0, 0);
    let x_hi = min(x0 + KW, W);
    var acc = T({{INIT}});
    var count = 0u;
    for (var iy = y_lo; iy < y_hi; iy++) {
        for (var ix = x_lo; ix < x_hi; ix++) {
            let v = pool_x[((n * u32(H) + u32(iy)) * u32(W) + u32(ix)) * CL + c];
            acc = {{COMBINE}};
            count = count + 1u;
        }
    }
    if (count == 0u) {
        pool_y[i] = T(0.0);
    } else {
        pool_y[i] = {{FINISH}};
    }
}
