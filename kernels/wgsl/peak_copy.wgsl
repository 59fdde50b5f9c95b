// peak_copy.wgsl: measures the adapter's memory bandwidth (for "percent of peak" reports).
//
// y[i] = x[i] over vec4<f32> elements; bytes moved = 2 * 16 * elements.
// Bindings: 0 peak_x (read), 1 peak_y (read_write), arrays of vec4<f32>.
// Threading: one invocation per vec4, 256 per workgroup, 2-D grid of X_GROUPS columns.

const TOTAL: u32 = {{TOTAL}}u;
const ROW: u32 = {{ROW}}u;

@group(0) @binding(0) var<storage, read> peak_x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> peak_y: array<vec4<f32>>;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.y * ROW + gid.x;
    if (i < TOTAL) {
        peak_y[i] = peak_x[i];
    }
}
