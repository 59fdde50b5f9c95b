// concat.wgsl: copies one input of a concatenation into its slice of the output. A Concat node
// runs one dispatch per input, all writing the same output buffer.
//
// With the concatenation axis of length A in this input and AOUT in the output, and INNER the
// product of the axes after it, input element i goes to
//   out[(i / SLICE) * OUT_SLICE + OFFSET + i % SLICE],
// SLICE = A * INNER, OUT_SLICE = AOUT * INNER, OFFSET = (sum of the earlier inputs' A) * INNER.
// Bindings: 0 cat_x (read), 1 cat_y (read_write); elements of type T (f32 or i32).
// Threading: one invocation per input element, linear index folded into a 2-D grid of
// WG-wide workgroups (INDEX), guarded by i < TOTAL.

const TOTAL: u32 = {{TOTAL}}u;
const SLICE: u32 = {{SLICE}}u;
const OUT_SLICE: u32 = {{OUT_SLICE}}u;
const OFFSET: u32 = {{OFFSET}}u;

@group(0) @binding(0) var<storage, read> cat_x: array<{{T}}>;
@group(0) @binding(1) var<storage, read_write> cat_y: array<{{T}}>;

@compute @workgroup_size({{WG}}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = {{INDEX}};
    if (i >= TOTAL) {
        return;
    }
    cat_y[(i / SLICE) * OUT_SLICE + OFFSET + i % SLICE] = cat_x[i];
}
