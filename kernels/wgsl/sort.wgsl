// sort.wgsl: the order-based ops ArgSort and TopK (bitonic_top, or rank_sort when the result
// does not fit workgroup memory) and ArgMax (argmax), i32 results.
//
// Order: order_key maps an f32 to a u32 whose unsigned order is the numeric order, with -0.0
// equal to 0.0 and every NaN equal to every other and above +inf (graph sort_order). Descending
// sorts compare the complemented key. Ties go to the lower index, so sorts are stable.
//
// The input is seen as lines of LEN elements along the sorted axis: line l = o * INNER + i holds
// elements so_x[(o * LEN + j) * INNER + i], j < LEN (TopK: the last axis, INNER = 1).
//   bitonic_top  one workgroup of WGB invocations per line (w = wid.x + wid.y * GRID_X, surplus
//              workgroups redo the last line without storing). Workgroup memory holds S = 2 * P
//              (key, index) pairs: the best P so far in the first half (padding at first: key
//              and index 0xffffffff, after every element), the next P elements of the line in
//              the second. A bitonic sort of all S, ascending by (key, index), leaves the best P
//              in the first half; after the last chunk its first KOUT indices are the result.
//              log2(S) * (log2(S) + 1) / 2 barrier-separated stages per chunk of P. For
//              KOUT <= P <= P_MAX (sort.rs: 2 * P pairs of 8 bytes in the target's workgroup
//              memory): top-k with k up to P_MAX over any LEN, argsort of lines up to P_MAX. SSD's
//              mining (8732 anchors, k = 200): P = 256, 35 chunks of 45 stages per image on GPUs;
//              P = 1024 and WGB = 32, 9 chunks of 66 stages, on CPU adapters (sort.rs).
//              Each invocation does P / WGB compare-exchanges per stage.
//   rank_sort  (every other size) the rank of element j in its line, r = #{t : key[t] < key[j] or (key[t] == key[j]
//              and t < j)}, is its position in the sorted line: so_out[(o * KOUT + r) * INNER + i]
//              = j when r < KOUT (KOUT = LEN for ArgSort, k for TopK). Every r < KOUT is written
//              exactly once, since the ranks of a line are a permutation of 0..LEN.
//              Threading: workgroups of WG invocations, CHUNKS per line (workgroup w handles
//              line w / CHUNKS, elements (w % CHUNKS) * WG + lid; w = wid.x + wid.y * GRID_X,
//              surplus workgroups of the 2-D grid compute the last line without storing, so
//              every barrier is in uniform control flow). The line's keys stream through
//              workgroup memory WG at a time; each invocation compares its key with all LEN.
//              O(LEN^2) comparisons per line but any length and any k in one dispatch, no
//              scratch and no atomics.
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

const P: u32 = {{P}}u;
const S: u32 = 2u * P;
const WGB: u32 = {{WGB}}u;
const PAD: u32 = 0xffffffffu;

var<workgroup> bt_key: array<u32, S>;
var<workgroup> bt_idx: array<u32, S>;

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

// Sorts bt_key/bt_idx[0..S) ascending by (key, index); ends with a barrier.
fn bitonic_sort(t: u32) {
    for (var size = 2u; size <= S; size = size * 2u) {
        for (var stride = size / 2u; stride > 0u; stride = stride / 2u) {
            for (var p = t; p < P; p += WGB) {
                let a = (p / stride) * 2u * stride + p % stride;
                let b = a + stride;
                let ka = bt_key[a];
                let kb = bt_key[b];
                let ia = bt_idx[a];
                let ib = bt_idx[b];
                let a_after_b = ka > kb || (ka == kb && ia > ib);
                if (a_after_b == ((a & size) == 0u)) {
                    bt_key[a] = kb;
                    bt_key[b] = ka;
                    bt_idx[a] = ib;
                    bt_idx[b] = ia;
                }
            }
            workgroupBarrier();
        }
    }
}

@compute @workgroup_size(WGB, 1, 1)
fn bitonic_top(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let w = wid.x + wid.y * {{GRID_B}}u;
    let line = min(w, LINES - 1u);
    let o = line / INNER;
    let i = line % INNER;
    let base = o * LEN * INNER + i;
    let t = lid.x;
    for (var e = t; e < P; e += WGB) {
        bt_key[e] = PAD;
        bt_idx[e] = PAD;
    }
    for (var c0 = 0u; c0 < LEN; c0 += P) {
        for (var e = t; e < P; e += WGB) {
            let j = c0 + e;
            var k = PAD;
            var idx = PAD;
            if (j < LEN) {
                k = sort_key(so_x[base + j * INNER]);
                idx = j;
            }
            bt_key[P + e] = k;
            bt_idx[P + e] = idx;
        }
        workgroupBarrier();
        bitonic_sort(t);
    }
    if (w < LINES) {
        for (var r = t; r < KOUT; r += WGB) {
            so_out[(o * KOUT + r) * INNER + i] = i32(bt_idx[r]);
        }
    }
}
