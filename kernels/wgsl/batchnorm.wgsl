// batchnorm.wgsl: batch normalisation in inference mode, over the last axis (C channels).
//
//   y[i] = (x[i] - mean[c]) * gamma[c] / sqrt(var[c] + EPS) + beta[c],   c = i % C
// Bindings: 0 bn_x, 1 bn_gamma, 2 bn_beta, 3 bn_mean, 4 bn_var (read; the last four of shape
// (C,)), 5 bn_y (read_write).
// Threading: one invocation per element, linear index folded into a 2-D grid of WG-wide
// workgroups (INDEX), guarded by i < TOTAL.

const TOTAL: u32 = {{TOTAL}}u;
const C: u32 = {{C}}u;
const EPS: f32 = {{EPS}};

@group(0) @binding(0) var<storage, read> bn_x: array<f32>;
@group(0) @binding(1) var<storage, read> bn_gamma: array<f32>;
@group(0) @binding(2) var<storage, read> bn_beta: array<f32>;
@group(0) @binding(3) var<storage, read> bn_mean: array<f32>;
@group(0) @binding(4) var<storage, read> bn_var: array<f32>;
@group(0) @binding(5) var<storage, read_write> bn_y: array<f32>;

@compute @workgroup_size({{WG}}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = {{INDEX}};
    if (i >= TOTAL) {
        return;
    }
    let c = i % C;
    let scale = bn_gamma[c] / sqrt(bn_var[c] + EPS);
    bn_y[i] = (bn_x[i] - bn_mean[c]) * scale + bn_beta[c];
}
