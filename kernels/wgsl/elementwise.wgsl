// elementwise.wgsl: the shell of the generated elementwise kernels (elementwise.rs): one
// expression over N inputs with numpy broadcasting, a single Unary/Binary node or a fused chain.
//
// Bindings (generated, BINDINGS): ew_in0 .. ew_in{N-1} (read), then ew_out (read_write), all f32.
// BODY (generated) loads each input once at its broadcast offset (a sum of
// ((i / out_stride) % len) * in_stride over the output's axes, stride 0 on broadcast axes,
// neighbouring axes merged, so a same-shape input reads [i] and a per-channel one [i % C]),
// evaluates the expression as a sequence of lets, and stores the last one to ew_out[i].
// Threading: one invocation per output element, linear index folded into a 2-D grid of
// WG-wide workgroups (INDEX), guarded by i < TOTAL.

const TOTAL: u32 = {{TOTAL}}u;

{{BINDINGS}}
@compute @workgroup_size({{WG}}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = {{INDEX}};
    if (i >= TOTAL) {
        return;
    }
{{BODY}}
}
