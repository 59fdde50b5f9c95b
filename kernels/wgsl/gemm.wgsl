// gemm.wgsl: the one GEMM core behind matmul, implicit-GEMM convolution and transposed
// convolution.
//
// Computes, for every group g (workgroup_id.z), C[m, n] = sum_k A[m, k] * B[k, n] with
// m < M, n < N, k < K. The core never touches a buffer itself: it reads A and B through
//   fn load_a(g: u32, m: u32, k: u32) -> f32
//   fn load_b(g: u32, k: u32, n: u32) -> f32
// and writes C through
//   fn store_c(g: u32, m: u32, n: u32, v: f32)
// which the caller substitutes for LOADERS together with the bindings they use (a plain or
// transposed matrix for matmul, an on-the-fly im2col view of an NHWC activation for conv, the
// transposed-conv view, ...). The core only calls the loaders with m < M, k < K, n < N (it clamps
// rows and columns and zeroes the K tail itself) and store_c only with m < M, n < N.
//
// Tiling: workgroup (x, y) computes the BM x BN tile of C at rows y*BM, columns x*BN; it has
// TX x TY invocations (TX = BN / TN, TY = BM / TM), each accumulating a TM x TN register block:
// rows ly*TM + i (i < TM, contiguous), columns lx + j*TX (j < TN, strided so that neighbouring
// invocations read neighbouring columns of B).
// Two entry points, chosen by the adapter class (see gemm.rs for the tile table):
//   gemm_global  reads A and B straight from global memory, no barriers; invocations whose whole
//                block lies outside C return at once. For CPU adapters (lavapipe), where
//                workgroupBarrier is expensive and "shared" memory is ordinary memory.
//   gemm_tiled   stages BM x BK of A and BK x BN of B through workgroup memory per step of BK,
//                with two barriers per step. For GPUs.

const M: u32 = {{M}}u;
const N: u32 = {{N}}u;
const K: u32 = {{K}}u;
const BM: u32 = {{BM}}u;
const BN: u32 = {{BN}}u;
const BK: u32 = {{BK}}u;
const TM: u32 = {{TM}}u;
const TN: u32 = {{TN}}u;
const TX: u32 = {{TX}}u;
const TY: u32 = {{TY}}u;

// ---- loaders and bindings (substituted) ----
{{LOADERS}}
// ---- end of loaders ----

@compute @workgroup_size({{TX}}, {{TY}}, 1)
fn gemm_global(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let g = wid.z;
    let m_first = wid.y * BM + lid.y * TM;
    let n_first = wid.x * BN + lid.x;
    if (m_first >= M || n_first >= N) {
        return;
    }
    // Clamped rows and columns: out-of-range ones compute a duplicate that is never stored.
    var rows: array<u32, {{TM}}>;
    var cols: array<u32, {{TN}}>;
    for (var i = 0u; i < TM; i++) {
        rows[i] = min(m_first + i, M - 1u);
    }
    for (var j = 0u; j < TN; j++) {
        cols[j] = min(n_first + j * TX, N - 1u);
    }
    var acc: array<f32, {{TM_TN}}>;
    for (var k = 0u; k < K; k++) {
        var a_reg: array<f32, {{TM}}>;
        var b_reg: array<f32, {{TN}}>;
        for (var i = 0u; i < TM; i++) {
            a_reg[i] = load_a(g, rows[i], k);
        }
        for (var j = 0u; j < TN; j++) {
            b_reg[j] = load_b(g, k, cols[j]);
        }
        for (var i = 0u; i < TM; i++) {
            for (var j = 0u; j < TN; j++) {
                acc[i * TN + j] = acc[i * TN + j] + a_reg[i] * b_reg[j];
            }
        }
    }
    for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) {
            let m = m_first + i;
            let n = n_first + j * TX;
            if (m < M && n < N) {
                store_c(g, m, n, acc[i * TN + j]);
            }
        }
    }
}

// tile_a[kk * BM + mm] = A[m0 + mm, k0 + kk]; tile_b[kk * BN + nn] = B[k0 + kk, n0 + nn].
var<workgroup> tile_a: array<f32, {{BM_BK}}>;
var<workgroup> tile_b: array<f32, {{BK_BN}}>;

@compute @workgroup_size({{TX}}, {{TY}}, 1)
fn gemm_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let g = wid.z;
    let m0 = wid.y * BM;
    let n0 = wid.x * BN;
    let tid = lid.y * TX + lid.x;
    var acc: array<f32, {{TM_TN}}>;
    for (var k0 = 0u; k0 < K; k0 += BK) {
        // Neighbouring invocations load neighbouring k of A and neighbouring n of B.
        for (var e = tid; e < BM * BK; e += TX * TY) {
            let mm = e / BK;
            let kk = e % BK;
            let k = k0 + kk;
            tile_a[kk * BM + mm] = select(0.0, load_a(g, min(m0 + mm, M - 1u), min(k, K - 1u)), k < K);
        }
        for (var e = tid; e < BK * BN; e += TX * TY) {
            let kk = e / BN;
            let nn = e % BN;
            let k = k0 + kk;
            tile_b[kk * BN + nn] = select(0.0, load_b(g, min(k, K - 1u), min(n0 + nn, N - 1u)), k < K);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            var a_reg: array<f32, {{TM}}>;
            var b_reg: array<f32, {{TN}}>;
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
