// elementwise.wgsl: the shell of the generated elementwise kernels (elementwise.rs): one
// expression over N inputs with numpy broadcasting, a single Unary/Binary node or a fused chain.
//
// Bindings (generated, BINDINGS): ew_in0 .. ew_in{N-1} (read), then ew_out (read_write), f32
// or, in the four-element form below, vec4<f32> for the vec4-read inputs and the output.
// BODY (generated) loads each input once at its broadcast offset (a sum of
// ((i / out_stride) % len) * in_stride over the output's axes, stride 0 on broadcast axes,
// neighbouring axes merged, so a same-shape input reads [i] and a per-channel one [i % C]),
// evaluates the expression as a sequence of lets, and stores the last one to ew_out[i].
// Four-element form (when the output's length is a multiple of 4 and every input's innermost
// broadcast axis is a multiple of 4 long): invocation i computes outputs e = 4i .. 4i + 3;
// each input is one vec4 load (its four elements contiguous) or one scalar load (the same
// element for all four, broadcast along the innermost axis); the expression runs once per
// lane over that lane's components and the four results are stored as one vec4. On lavapipe
// a vec4 load costs about what a scalar one does, so this moves 2-3x the bytes per second.
// Threading: one invocation per output element (or per four), linear index folded into a 2-D
// grid of WG-wide workgroups (INDEX), guarded by i < TOTAL (TOTAL counts invocations).

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
