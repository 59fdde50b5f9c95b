// copy.wgsl: strided copies of a row-major tensor: transpose, slice and broadcast.
//
//   y[i] = x[SRC(i)],  SRC = BASE + sum over the output's axes of (coordinate of i along the
//   axis) * (input stride of that axis), generated with every length and stride substituted:
//     transpose  output axis a has the input stride of axis perm[a];
//     slice      output axis a has the input stride of axis a, BASE = sum starts[a] * stride[a];
//     broadcast  axes the input broadcasts along have stride 0.
//   Neighbouring axes that stay contiguous are merged and length-1 axes dropped, so a plain
//   copy reads x[i].
// Bindings: 0 cp_x (read), 1 cp_y (read_write); elements of type T (f32 or i32, copied bit for
// bit).
// Threading: one invocation per output element (contiguous writes), linear index folded into
// a 2-D grid of WG-wide workgroups (INDEX), guarded by i < TOTAL.

const TOTAL: u32 = {{TOTAL}}u;

@group(0) @binding(0) var<storage, read> cp_x: array<{{T}}>;
@group(0) @binding(1) var<storage, read_write> cp_y: array<{{T}}>;

@compute @workgroup_size({{WG}}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = {{INDEX}};
    if (i >= TOTAL) {
        return;
    }
    cp_y[i] = cp_x[{{SRC}}];
}
