// softmax.wgsl: softmax or log-softmax over the last axis of a row-major tensor seen as
// ROWS rows of L elements.
//
//   row_max = max_j x[j];  row_sum = sum_j exp(x[j] - row_max)
//   softmax:      y[j] = exp(x[j] - row_max) / row_sum
//   log-softmax:  y[j] = x[j] - row_max - log(row_sum)
// (OUT is the substituted expression of v = x[j], row_max and row_sum.)
// Bindings: 0 sm_x (read), 1 sm_y (read_write).
// Two entry points, chosen by row length and adapter class (softmax.rs):
//   softmax_workgroup  one 64-invocation workgroup per row: each invocation strides over the
//                      row (j = lid, lid + 64, ...; any L, larger or smaller than 64), then a tree
//                      reduction in workgroup memory gives the max, then the sum. Workgroup
//                      (x, y) handles row x + y * GRID_X; surplus workgroups of the 2-D grid redo
//                      the last row without storing, so every barrier stays in uniform control flow.
//   softmax_thread     one invocation per row, three passes over it; the row index is folded into
//                      a 2-D grid of WG-wide workgroups (INDEX). For short rows, and on CPU
//                      adapters where barriers are expensive.

const ROWS: u32 = {{ROWS}}u;
const L: u32 = {{L}}u;

@group(0) @binding(0) var<storage, read> sm_x: array<f32>;
@group(0) @binding(1) var<storage, read_write> sm_y: array<f32>;

var<workgroup> sm_red: array<f32, 64>;

@compute @workgroup_size(64, 1, 1)
fn softmax_workgroup(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row_id = wid.x + wid.y * {{GRID_X}}u;
    let base = min(row_id, ROWS - 1u) * L;
    let t = lid.x;
    var part_max: f32 = {{NEG_INF}};
    for (var j = t; j < L; j += 64u) {
        part_max = max(part_max, sm_x[base + j]);
    }
    sm_red[t] = part_max;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s = s / 2u) {
        if (t < s) {
            sm_red[t] = max(sm_red[t], sm_red[t + s]);
        }
        workgroupBarrier();
    }
    let row_max = sm_red[0];
    workgroupBarrier();
    var part_sum = 0.0;
    for (var j = t; j < L; j += 64u) {
        part_sum = part_sum + exp(sm_x[base + j] - row_max);
    }
    sm_red[t] = part_sum;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s = s / 2u) {
        if (t < s) {
            sm_red[t] = sm_red[t] + sm_red[t + s];
        }
        workgroupBarrier();
    }
    let row_sum = sm_red[0];
    if (row_id < ROWS) {
        for (var j = t; j < L; j += 64u) {
            let v = sm_x[base + j];
            sm_y[base + j] = {{OUT}};
        }
    }
}

@compute @workgroup_size({{WG}}, 1, 1)
fn softmax_thread(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = {{INDEX}};
    if (row >= ROWS) {
        return;
    }
    let base = row * L;
    var row_max: f32 = {{NEG_INF}};
    for (var j = 0u; j < L; j++) {
        row_max = max(row_max, sm_x[base + j]);
    }
    var row_sum = 0.0;
    for (var j = 0u; j < L; j++) {
        row_sum = row_sum + exp(sm_x[base + j] - row_max);
    }
    for (var j = 0u; j < L; j++) {
        let v = sm_x[base + j];
        sm_y[base + j] = {{OUT}};
    }
}
