// pool_grad.wgsl: the gradient of 2-D max or average pooling (Pool2dBackprop), gathered per
// input element so that no two invocations write the same place.
//
//   dx[n, iy, ix, c] = sum over the output windows (oy, ox) that contain (iy, ix) of
//     max: dy[n, oy, ox, c] if (iy, ix) is the window's first in-range maximum in row-major
//          window order (strictly greater wins, so ties go to the first), else 0;
//     avg: dy[n, oy, ox, c] / (number of in-range positions of the window).
// The windows containing row iy are oy in [ceil((iy + PT - KH + 1) / SH), (iy + PT) / SH],
// clipped to [0, OH); likewise columns. SHARE (of oy, ox, y_lo, y_hi, x_lo, x_hi: the window
// clipped to the input) is the substituted per-window contribution for the pooling kind.
// Store hook: pg_dx[i] = epilogue(i, acc). EPILOGUE defines it: the identity, or a fused
// elementwise epilogue (Op::GemmEpilogue with a Pool2dBackprop base, e.g. the relu gradient of
// the layer before the pooling) reading its extra inputs epi_in1.. at i (tensors of dx's shape)
// or at i % C (per-channel (C,) vectors), so the plain gradient never reaches memory.
// Bindings: max: 0 pg_x (N, H, W, C) the forward input, 1 pg_dy (N, OH, OW, C) (read), then the
// epilogue's extra inputs (read), last pg_dx (N, H, W, C) (read_write); avg needs no x: 0 pg_dy,
// then the extras, last pg_dx (X_DECL, DY_BINDING and DX_BINDING are substituted).
// Threading: one invocation per input element, linear index ((n*H + iy)*W + ix)*C + c folded
// into a 2-D grid of WG-wide workgroups (INDEX), guarded by i < TOTAL.

const TOTAL: u32 = {{TOTAL}}u;
const H: i32 = {{H}};
const W: i32 = {{W}};
const C: u32 = {{C}}u;
const OH: i32 = {{OH}};
const OW: i32 = {{OW}};
const KH: i32 = {{KH}};
const KW: i32 = {{KW}};
const SH: i32 = {{SH}};
const SW: i32 = {{SW}};
const PT: i32 = {{PT}};
const PL: i32 = {{PL}};

{{X_DECL}}
@group(0) @binding({{DY_BINDING}}) var<storage, read> pg_dy: array<f32>;
@group(0) @binding({{DX_BINDING}}) var<storage, read_write> pg_dx: array<f32>;

{{EPILOGUE}}

@compute @workgroup_size({{WG}}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = {{INDEX}};
    if (i >= TOTAL) {
        return;
    }
    let c = i % C;
    let ix = i32((i / C) % u32(W));
    let iy = i32((i / (C * u32(W))) % u32(H));
    let n = i / (C * u32(W) * u32(H));
    let ty = iy + PT;
    let tx = ix + PL;
    let oy_first = max(0, (ty - KH + SH) / SH);
    let oy_last = min(OH - 1, ty / SH);
    let ox_first = max(0, (tx - KW + SW) / SW);
    let ox_last = min(OW - 1, tx / SW);
    var acc = 0.0;
    for (var oy = oy_first; oy <= oy_last; oy++) {
        let y0 = oy * SH - PT;
        let y_lo = max(y0, 0);
        let y_hi = min(y0 + KH, H);
        for (var ox = ox_first; ox <= ox_last; ox++) {
            let x0 = ox * SW - PL;
            let x_lo = max(x0, 0);
            let x_hi = min(x0 + KW, W);
            let g = pg_dy[((n * u32(OH) + u32(oy)) * u32(OW) + u32(ox)) * C + c];
            {{SHARE}}
        }
    }
    pg_dx[i] = epilogue(i, acc);
}
