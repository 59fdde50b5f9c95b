// instance_norm.wgsl: instance normalisation of an NHWC tensor (N, H, W, C), PLANES = N * C
// planes of HW = H * W elements each.
//
//   mean = sum_q x[q] / HW,  var = sum_q (x[q] - mean)^2 / HW   (biased, two passes)
//   y[q] = (x[q] - mean) / sqrt(var + EPS) * gamma[c] + beta[c]
// over the plane's elements x[q] = in_x[(n * HW + q) * C + c], plane p = n * C + c.
// Bindings: 0 in_x, 1 in_gamma, 2 in_beta (read; the last two of shape (C,)), 3 in_y
// (read_write).
// Threading: one 64-invocation workgroup per plane (workgroup (x, y) handles plane
// x + y * GRID_X; surplus workgroups of the 2-D grid redo the last plane without storing, so
// every barrier stays in uniform control flow). Each invocation strides over the plane (q = lid,
// lid + 64, ...), a tree reduction in workgroup memory gives the sum, then the centred sum of
// squares; the third pass writes. The strided reads of one invocation are C apart; neighbouring
// planes (channels) are neighbouring workgroups, so a wave of workgroups reads whole rows.

const PLANES: u32 = {{PLANES}}u;
const HW: u32 = {{HW}}u;
const C: u32 = {{C}}u;
const EPS: f32 = {{EPS}};

@group(0) @binding(0) var<storage, read> in_x: array<f32>;
@group(0) @binding(1) var<storage, read> in_gamma: array<f32>;
@group(0) @binding(2) var<storage, read> in_beta: array<f32>;
@group(0) @binding(3) var<storage, read_write> in_y: array<f32>;

var<workgroup> in_red: array<f32, 64>;

fn plane_sum(t: u32, part: f32) -> f32 {
    in_red[t] = part;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s = s / 2u) {
        if (t < s) {
            in_red[t] = in_red[t] + in_red[t + s];
        }
        workgroupBarrier();
    }
    let total = in_red[0];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let p_id = wid.x + wid.y * {{GRID_X}}u;
    let p = min(p_id, PLANES - 1u);
    let c = p % C;
    let base = (p / C) * HW * C + c;
    let t = lid.x;
    var part = 0.0;
    for (var q = t; q < HW; q += 64u) {
        part = part + in_x[base + q * C];
    }
    let mean = plane_sum(t, part) / f32(HW);
    part = 0.0;
    for (var q = t; q < HW; q += 64u) {
        let d = in_x[base + q * C] - mean;
        part = part + d * d;
    }
    let variance = plane_sum(t, part) / f32(HW);
    let scale = in_gamma[c] / sqrt(variance + EPS);
    let shift = in_beta[c];
    if (p_id < PLANES) {
        for (var q = t; q < HW; q += 64u) {
            in_y[base + q * C] = (in_x[base + q * C] - mean) * scale + shift;
        }
    }
}
