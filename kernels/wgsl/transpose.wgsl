// transpose.wgsl: axis permutation of a row-major tensor (output axis i = input axis perm[i]).
//
//   y[i] = x[SRC(i)],  SRC = sum over output axes of (coordinate of i) * (input stride of that
//   axis), generated with all lengths and strides substituted (axes that stay neighbours are
//   merged, length-1 axes dropped).
// Bindings: 0 tr_x (read), 1 tr_y (read_write); elements of type T (f32 or i32).
// Threading: one invocation per output element (contiguous writes), linear index folded into
// a 2-D grid of WG-wide workgroups (INDEX), guarded by i < TOTAL.

const TOTAL: u32 = {{TOTAL}}u;

@group(0) @binding(0) var<storage, read> tr_x: array<{{T}}>;
@group(0) @binding(1) var<storage, read_write> tr_y: array<{{T}}>;

@compute @workgroup_size({{WG}}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = {{INDEX}};
    if (i >= TOTAL) {
        return;
    }
    tr_y[i] = tr_x[{{SRC}}];
}
