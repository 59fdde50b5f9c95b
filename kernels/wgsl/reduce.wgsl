// reduce.wgsl: sum, mean, max or min over some axes of a tensor.
//
// The input's axes are split into kept and reduced ones (neighbours merged where contiguous).
// Output element o (row-major over the kept axes, which is also the output's layout whether or
// not the reduced axes are kept with length 1) reduces the elements
//   q = BASE(o) + OFFSET(r) for r < COUNT
// of the reduced tensor, BASE and OFFSET being substituted index expressions over the kept and
// reduced axes. LOAD (generated, reduce.rs) gives element q's value v: red_x[q], or with a
// prologue (ReducePrologue) an elementwise expression of the inputs red_in0.. at q.
// Bindings (generated, BINDINGS): the input(s) (read), then red_y (read_write).
// Threading: one invocation per output element, looping over its COUNT reduced elements; the
// linear index is folded into a 2-D grid of WG-wide workgroups (INDEX), guarded by o < TOTAL.
// INIT, COMBINE (of acc and v) and FINISH (of acc) choose the reduction.

const TOTAL: u32 = {{TOTAL}}u;
const COUNT: u32 = {{COUNT}}u;

{{BINDINGS}}

@compute @workgroup_size({{WG}}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let o = {{INDEX}};
    if (o >= TOTAL) {
        return;
    }
    let base = {{BASE}};
    var acc: f32 = {{INIT}};
    for (var r = 0u; r < COUNT; r++) {
        let q = base + {{OFFSET}};
{{LOAD}}
        acc = {{COMBINE}};
    }
    red_y[o] = {{FINISH}};
}
