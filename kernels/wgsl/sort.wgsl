// sort.wgsl: the order-based ops ArgSort, TopK (rank_sort) and ArgMax (argmax), i32 results.
//
// Order: order_key maps an f32 to a u32 whose unsigned order is the numeric order, with -0.0
// equal to 0.0 and every NaN equal to every other and above +inf (graph sort_order). Descending
// sorts compare the complemented key. Ties go to the lower index, so sorts are stable.
//
// The input is seen as lines of LEN elements along the sorted axis: line l = o * INNER + i holds
// elements so_x[(o * LEN + j) * INNER + i], j < LEN (TopK: the last axis, INNER = 1).
//   rank_sort  the rank of element j in its line, r = #{t : key[t] < key[j] or (key[t] == key[j]
//              and t < j)}, is its position in the sorted line: so_out[(o * KOUT + r) * INNER + i]
//              = j when r < KOUT (KOUT = LEN for ArgSort, k for TopK). Every r < KOUT is written
//              exactly once, since the ranks of a line are a permutation of 0..LEN.
//              Threading: workgroups of WG invocations, CHUNKS per line (workgroup w handles
//              line w / CHUNKS, elements (w % CHUNKS) * WG + lid; w = wid.x + wid.y * GRID_X,
//              surplus workgroups of the 2-D grid compute the last line without storing, so
//              every barrier is in uniform control flow). The line's keys stream through
//              workgroup memory WG at a time; each invocation compares its key with all LEN.
//              O(LEN^2) comparisons per line but any length in one dispatch, no scratch and no
//              atomics: for SSD's hard-negative mining (8732 anchors, k = 200) 35 workgroups per
//              image, each 8732 x 256 comparisons out of workgroup memory.
//   argmax     one invocation per output element (TOTAL = lines), a scan of its line keeping the
//              first maximum key (a NaN is a maximum: the first NaN wins); the linear index is
//              folded into a 2-D grid of WG_LINEAR-wide workgroups (INDEX).
// Bindings: 0 so_x (read, f32), 1 so_out (read_write, i32).

const LINES: u32 = {{LINES}}u;
const LEN: u32 = {{LEN}}u;
const INNER: u32 = {{INNER}}u;
const KOUT: u32 = {{KOUT}}u;
const CHUNKS: u32 = {{CHUNKS}}u;
const WG: u32 = {{WG}}u;
const DESCENDING: bool = {{DESCENDING}};

@group(0) @binding(0) var<storage, read> so_x: array<f32>;
@group(0) @binding(1) var<storage, read_write> so_out: array<i32>;

var<workgroup> so_keys: array<u32, WG>;

fn order_key(v: f32) -> u32 {
    let b = bitcast<u32>(v);
    let mag = b & 0x7fffffffu;
    if (mag > 0x7f800000u) {
        return 0xffffffffu;
    }
    if (mag == 0u) {
        return 0x80000000u;
    }
    if ((b & 0x80000000u) != 0u) {
        return ~b;
    }
    return b | 0x80000000u;
}

fn sort_key(v: f32) -> u32 {
    let k = order_key(v);
    return select(k, ~k, DESCENDING);
}

@compute @workgroup_size(WG, 1, 1)
fn rank_sort(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let w = wid.x + wid.y * {{GRID_X}}u;
    let live = w < LINES * CHUNKS;
    let line = min(w / CHUNKS, LINES - 1u);
    let o = line / INNER;
    let i = line % INNER;
    let base = o * LEN * INNER + i;
    let j = (w % CHUNKS) * WG + lid.x;
    let mine = sort_key(so_x[base + min(j, LEN - 1u) * INNER]);
    var rank = 0u;
    for (var t0 = 0u; t0 < LEN; t0 += WG) {
        so_keys[lid.x] = sort_key(so_x[base + min(t0 + lid.x, LEN - 1u) * INNER]);
        workgroupBarrier();
        let n = min(WG, LEN - t0);
        for (var s = 0u; s < n; s++) {
            let k = so_keys[s];
            rank += u32(k < mine || (k == mine && t0 + s < j));
        }
        workgroupBarrier();
    }
    if (live && j < LEN && rank < KOUT) {
        so_out[(o * KOUT + rank) * INNER + i] = i32(j);
    }
}

@compute @workgroup_size({{WG_LINEAR}}, 1, 1)
fn argmax(@builtin(global_invocation_id) gid: vec3<u32>) {
    let line = {{INDEX}};
    if (line >= LINES) {
        return;
    }
    let base = (line / INNER) * LEN * INNER + line % INNER;
    var best = 0u;
    var best_key = order_key(so_x[base]);
    for (var j = 1u; j < LEN; j++) {
        let k = order_key(so_x[base + j * INNER]);
        if (k > best_key) {
            best = j;
            best_key = k;
        }
    }
    so_out[line] = i32(best);
}
