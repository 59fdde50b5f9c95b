// pad.wgsl: constant padding of a row-major tensor.
//
//   y[c_0, ..., c_r] = x[c_0 - before_0, ..., c_r - before_r] when every coordinate lies inside
//                      the input, else VALUE.
// COORDS is generated per axis (axes without padding merged with their neighbours): it takes
// output coordinate d of i, clears `inside` when d is in the padding, and adds
// (d - before) * input_stride to src (u32 wrap-around there is harmless: src is then unused).
// Bindings: 0 pad_x (read), 1 pad_y (read_write).
// Threading: one invocation per output element, linear index folded into a 2-D grid of
// WG-wide workgroups (INDEX), guarded by i < TOTAL.

const TOTAL: u32 = {{TOTAL}}u;

@group(0) @binding(0) var<storage, read> pad_x: array<f32>;
@group(0) @binding(1) var<storage, read_write> pad_y: array<f32>;

@compute @workgroup_size({{WG}}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = {{INDEX}};
    if (i >= TOTAL) {
        return;
    }
    var inside = true;
    var src = 0u;
{{COORDS}}
    var v: f32 = {{VALUE}};
    if (inside) {
        v = pad_x[src];
    }
    pad_y[i] = v;
}
