// pad_grad.wgsl: the gradient of a reflect or replicate pad, gathered.
//
//   dx[j_0, ..., j_r] = sum of dy[c_0, ..., c_r] over every padded position c that reads x[j]
// Per axis the positions reading coordinate j are few: the direct one (before + j), and for a
// reflect pad its mirror images before (before - j, when 1 <= j <= before) and after
// (before + 2 * (len - 1) - j, when len - 1 - after <= j <= len - 2); for a replicate pad a
// contiguous run (all of the border before for j = 0, all after for j = len - 1). LOOPS is
// generated: one loop per padded axis (axes without padding merged with their neighbours,
// their coordinate read once) nested around `acc += pg_dy[o]`, o accumulating c_k * dy_stride_k.
// Bindings: 0 pg_dy (read), 1 pg_dx (read_write).
// Threading: one invocation per input (dx) element, linear index folded into a 2-D grid of
// WG-wide workgroups (INDEX), guarded by i < TOTAL.

const TOTAL: u32 = {{TOTAL}}u;

@group(0) @binding(0) var<storage, read> pg_dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> pg_dx: array<f32>;

@compute @workgroup_size({{WG}}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = {{INDEX}};
    if (i >= TOTAL) {
        return;
    }
    var acc = 0.0;
{{LOOPS}}
    pg_dx[i] = acc;
}
