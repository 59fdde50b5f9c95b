// gemm_cpu.wgsl: the register-blocked entry point of the GEMM core (gemm.wgsl), for CPU adapters.
//
// Workgroup (x, y, g) computes the TM x BN tile of C at rows y*TM, columns x*BN (BN = TX*TN) of
// group g, with TX x 1 invocations. Invocation lx accumulates TM rows x TN columns in registers:
// rows y*TM + i (the same for every invocation of the workgroup), columns x*BN + lx + j*TX.
// Why this shape (lavapipe, PLATFORM.md): a workgroup runs on one CPU thread as SIMD lanes over
// consecutive invocations. Rows depend only on workgroup_id, so A's addresses and all the
// im2col index arithmetic are uniform: scalar code and one scalar load per element, broadcast.
// B's columns differ per lane (one gather per element, consecutive lanes on consecutive columns).
// So each k step costs TM scalar loads and TN gathers for TM*TN vector FMAs. No barriers, no
// workgroup memory (both are expensive there). Out-of-range rows and columns are clamped and
// compute duplicates that are never stored.

@compute @workgroup_size(TX, 1, 1)
fn gemm_global(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let g = wid.z;
    let m0 = wid.y * BM;
    let n_first = wid.x * BN + lid.x;
    var cols: array<u32, TN>;
    for (var j = 0u; j < TN; j++) {
        cols[j] = min(n_first + j * TX, N - 1u);
    }
    var acc: array<f32, TM * TN>;
    for (var ko = 0u; ko < KO; ko++) {
        var ar: array<ARow, TM>;
        for (var i = 0u; i < TM; i++) {
            ar[i] = a_row(g, min(m0 + i, M - 1u), ko);
        }
        var bc: array<u32, TN>;
        for (var j = 0u; j < TN; j++) {
            bc[j] = b_col(g, ko, cols[j]);
        }
        for (var ki = 0u; ki < KI; ki++) {
            var a_reg: array<f32, TM>;
            var b_reg: array<f32, TN>;
            for (var i = 0u; i < TM; i++) {
                a_reg[i] = a_elem(ar[i], ki);
            }
            for (var j = 0u; j < TN; j++) {
                b_reg[j] = b_at(bc[j] + ki * B_KSTRIDE);
            }
            for (var i = 0u; i < TM; i++) {
                for (var j = 0u; j < TN; j++) {
                    acc[i * TN + j] = fma(a_reg[i], b_reg[j], acc[i * TN + j]);
                }
            }
        }
    }
    for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) {
            let m = m0 + i;
            let n = n_first + j * TX;
            if (m < M && n < N) {
                store_c(g, m, n, acc[i * TN + j]);
            }
        }
    }
}
