// gemm_cpu.wgsl: the register-blocked entry point of the GEMM core (gemm.wgsl), for CPU adapters.

@compute @workgroup_size(TX, 1, 1)
fn gemm_global(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let g = wid.z;
    let m0 = wid.y * BM;
    let n_first = wid.x * BN + lid.x;
    let my_m = min(m0 + lid.x, M - 1u);
    var cols: array<u32, TN>;
    for (var j = 0u; j < TN; j++) {
        cols[j] = min(n_first + j * TX, N - 1u);
    }
    var acc: array<f32, TM * TN>;
    for (var ko = 0u; ko < KO; ko++) {
        let ar = a_row(g, my_m, ko);
        var bc: array<u32, TN>;
        for (var j = 0u; j < TN; j++) {
            bc[j] = b_col(g, ko, cols[j]);
        }
        for (var ki = 0u; ki < KI; ki++) {
            let a = a_elem(ar, ki);
            var b_reg: array<f32, TN>;
            for (var j = 0u; j < TN; j++) {
                b_reg[j] = b_at(bc[j] + ki * B_KSTRIDE);
            }
            var a_reg: array<f32, TM>;
{{BROADCASTS}}
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
