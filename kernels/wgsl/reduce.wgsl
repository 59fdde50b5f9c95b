// reduce.wgsl: sum, mean, max or min over some axes of a tensor.
//
// The input's axes are split into kept and reduced ones (neighbours merged where contiguous).
// Output element o (row-major over the kept axes, which is also the output's layout whether or
// not the reduced axes are kept with length 1) reads
//   red_x[BASE(o) + OFFSET(r)] for r < COUNT,
// BASE and OFFSET being substituted index expressions over the kept and reduced axes.
// Bindings: 0 red_x (read), 1 red_y (read_write).
// Threading: one invocation per output element, looping over its COUNT reduced elements; the
// linear index is folded into a 2-D grid of WG-wide workgroups (INDEX), guarded by o < TOTAL.
// INIT, COMBINE (of acc and v) and FINISH (of acc) choose the reduction.

const TOTAL: u32 = {{TOTAL}}u;
const COUNT: u32 = {{COUNT}}u;

@group(0) @binding(0) var<storage, read> red_x: array<f32>;
@group(0) @binding(1) var<storage, read_write> red_y: array<f32>;

@compute @workgroup_size({{WG}}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let o = {{INDEX}};
    if (o >= TOTAL) {
        return;
    }
    let base = {{BASE}};
    var acc: f32 = {{INIT}};
    for (var r = 0u; r < COUNT; r++) {
        let v = red_x[base + {{OFFSET}}];
        acc = {{COMBINE}};
    }
    red_y[o] = {{FINISH}};
}
