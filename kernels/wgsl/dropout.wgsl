// dropout.wgsl: training-mode dropout (also its own gradient, applied to dy with the same seed).
//
//   u = dropout_uniform(u32(seed[0]), i)   (the PCG-style integer hash of graph/src/ir/op.rs,
//                                           bit for bit: u32 arithmetic wraps in WGSL too)
//   y[i] = x[i] * SCALE if u >= RATE, else 0;   SCALE = 1 / (1 - RATE)
// Bindings: 0 do_x (read), 1 do_seed (read; one f32 holding a small integer), 2 do_y
// (read_write).
// Threading: one invocation per element, linear index folded into a 2-D grid of WG-wide
// workgroups (INDEX), guarded by i < TOTAL.

const TOTAL: u32 = {{TOTAL}}u;
const RATE: f32 = {{RATE}};
const SCALE: f32 = {{SCALE}};

@group(0) @binding(0) var<storage, read> do_x: array<f32>;
@group(0) @binding(1) var<storage, read> do_seed: array<f32>;
@group(0) @binding(2) var<storage, read_write> do_y: array<f32>;

fn dropout_uniform(seed: u32, index: u32) -> f32 {
    var h = index * 747796405u + (seed * 2891336453u + 1u);
    h = ((h >> ((h >> 28u) + 4u)) ^ h) * 277803737u;
    h = (h >> 22u) ^ h;
    return f32(h >> 8u) / 16777216.0;
}

@compute @workgroup_size({{WG}}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = {{INDEX}};
    if (i >= TOTAL) {
        return;
    }
    let keep = dropout_uniform(u32(do_seed[0]), i) >= RATE;
    do_y[i] = select(0.0, do_x[i] * SCALE, keep);
}
