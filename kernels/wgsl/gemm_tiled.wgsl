// gemm_tiled.wgsl: the workgroup-memory entry point of the GEMM core (gemm.wgsl), for GPUs.
//
// Bindings: none of its own; the loaders substituted into gemm.wgsl declare them.
//
// Workgroup (x, y, g) computes the BM x BN tile of C at rows y*BM, columns x*BN of group g (row
// tiles past the grid limit fold into z: gemm.wgsl) with
// TX x TY invocations (TX = BN / TN, TY = BM / TM), each accumulating a TM x TN register block:
// rows ly*TM + i (contiguous), columns lx + j*TX (strided so that neighbouring invocations read
// neighbouring columns). Per step of BK, BM x BK of A and BK x BN of B are staged through
// workgroup memory (loaded through load_a / load_b, clamped, the K tail zeroed), between two
// barriers. With split-K (SPLITS > 1, see gemm.wgsl) workgroup (x, y, g * SPLITS + s) reduces
// only split s's range of K, and split_base (read by the rewritten store_c) is s * SPLIT_STRIDE.

// tile_a[kk * BM + mm] = A[m0 + mm, k0 + kk]; tile_b[kk * BN + nn] = B[k0 + kk, n0 + nn].
var<workgroup> tile_a: array<f32, BM * BK>;
var<workgroup> tile_b: array<f32, BK * BN>;
// Where this workgroup's split stores its partial tile in the scratch buffer (split-K only).
var<private> split_base: u32;

@compute @workgroup_size(TX, TY, 1)
fn gemm_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let m0 = row_tile(wid) * BM;
    if (m0 >= M) {
        return;
    }
    let z = wid.z % ZG;
    let g = z / SPLITS;
    let s = z % SPLITS;
    split_base = s * SPLIT_STRIDE;
    let k_begin = s * KSPLIT;
    let k_end = min(K, k_begin + KSPLIT);
    let n0 = wid.x * BN;
    let tid = lid.y * TX + lid.x;
    var acc: array<f32, TM * TN>;
    for (var k0 = k_begin; k0 < k_end; k0 += BK) {
        // Neighbouring invocations load neighbouring k of A and neighbouring n of B.
        for (var e = tid; e < BM * BK; e += TX * TY) {
            let mm = e / BK;
            let kk = e % BK;
            let k = k0 + kk;
            tile_a[kk * BM + mm] = select(0.0, load_a(g, min(m0 + mm, M - 1u), min(k, K - 1u)), k < k_end);
        }
        for (var e = tid; e < BK * BN; e += TX * TY) {
            let kk = e / BN;
            let nn = e % BN;
            let k = k0 + kk;
            tile_b[kk * BN + nn] = select(0.0, load_b(g, min(k, K - 1u), min(n0 + nn, N - 1u)), k < K);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            var a_reg: array<f32, TM>;
            var b_reg: array<f32, TN>;
            for (var i = 0u; i < TM; i++) {
                a_reg[i] = tile_a[kk * BM + lid.y * TM + i];
            }
            for (var j = 0u; j < TN; j++) {
                b_reg[j] = tile_b[kk * BN + lid.x + j * TX];
            }
            for (var i = 0u; i < TM; i++) {
                for (var j = 0u; j < TN; j++) {
                    acc[i * TN + j] = acc[i * TN + j] + a_reg[i] * b_reg[j];
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) {
            let m = m0 + lid.y * TM + i;
            let n = n0 + lid.x + j * TX;
            if (m < M && n < N) {
                store_c(g, m, n, acc[i * TN + j]);
            }
        }
    }
}
