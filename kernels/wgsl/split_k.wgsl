// split_k.wgsl: the second dispatch of a split-K GEMM (see gemm.wgsl and gemm.rs
// SPLIT_K_MIN_WORKGROUPS): sums the SPLITS partial results of the GEMM core and stores each output
// element through the node's epilogue.
//
// Bindings: 0 split_partials (the scratch buffer, [SPLITS][TOTAL] f32: split s's partial sum of
// output element i at s * TOTAL + i), then the epilogue's extra inputs (EPILOGUE, from binding 1,
// see fused.rs epilogue_source), then split_out (TOTAL f32, read_write) last.
// One invocation per output element on a linear grid (INDEX, see dispatch.rs); the partials are
// summed in split order, so the result does not depend on scheduling.

const TOTAL: u32 = {{TOTAL}}u;
const SPLITS: u32 = {{SPLITS}}u;

@group(0) @binding(0) var<storage, read> split_partials: array<f32>;

// ---- epilogue and its bindings (substituted) ----
{{EPILOGUE}}
// ---- end of epilogue ----

@group(0) @binding({{OUT_BINDING}}) var<storage, read_write> split_out: array<f32>;

@compute @workgroup_size({{WG}}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = {{INDEX}};
    if (i >= TOTAL) {
        return;
    }
    var v = 0.0;
    for (var s = 0u; s < SPLITS; s++) {
        v += split_partials[s * TOTAL + i];
    }
    split_out[i] = epilogue(i, v);
}
