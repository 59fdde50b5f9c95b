// gather.wgsl: Gather along an axis by i32 indices, and its adjoint ScatterAdd.
//
// Both see the gathered tensor as (BATCH, OUTER, LEN, INNER) and the indices as (BATCH, COUNT)
// (graph GatherDims: BATCH the shared leading axes, OUTER the axes before the gathered one,
// INNER those after it), so the gathered result is (BATCH, OUTER, COUNT, INNER), row-major.
//   gather       out[b, o, t, i] = src[b, o, idx[b, t], i], 0.0 where idx[b, t] is outside
//                0..LEN (never a clamp, never an out-of-bounds read)
//   scatter_add  out[b, o, j, i] = sum over t with idx[b, t] == j of src[b, o, t, i]; indices
//                outside 0..LEN are dropped, colliding ones accumulate
// Bindings: 0 ga_src (read, f32), 1 ga_idx (read, i32), 2 ga_out (read_write, f32).
// Threading: one invocation per output element (TOTAL of them), the linear index folded into a
// 2-D grid of WG-wide workgroups (INDEX). The scatter has no float atomics: each output element
// scans the COUNT indices of its batch element in order and sums its own updates, so the result
// is deterministic (the same summation order on every run and adapter).

const TOTAL: u32 = {{TOTAL}}u;
const OUTER: u32 = {{OUTER}}u;
const LEN: u32 = {{LEN}}u;
const COUNT: u32 = {{COUNT}}u;
const INNER: u32 = {{INNER}}u;

@group(0) @binding(0) var<storage, read> ga_src: array<f32>;
@group(0) @binding(1) var<storage, read> ga_idx: array<i32>;
@group(0) @binding(2) var<storage, read_write> ga_out: array<f32>;

@compute @workgroup_size({{WG}}, 1, 1)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = {{INDEX}};
    if (e >= TOTAL) {
        return;
    }
    let i = e % INNER;
    let t = (e / INNER) % COUNT;
    let bo = e / (INNER * COUNT);
    let j = ga_idx[(bo / OUTER) * COUNT + t];
    var v = 0.0;
    if (j >= 0 && u32(j) < LEN) {
        v = ga_src[(bo * LEN + u32(j)) * INNER + i];
    }
    ga_out[e] = v;
}

@compute @workgroup_size({{WG}}, 1, 1)
fn scatter_add(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = {{INDEX}};
    if (e >= TOTAL) {
        return;
    }
    let i = e % INNER;
    let j = i32((e / INNER) % LEN);
    let bo = e / (INNER * LEN);
    let idx_base = (bo / OUTER) * COUNT;
    var acc = 0.0;
    for (var t = 0u; t < COUNT; t++) {
        if (ga_idx[idx_base + t] == j) {
            acc = acc + ga_src[(bo * COUNT + t) * INNER + i];
        }
    }
    ga_out[e] = acc;
}
