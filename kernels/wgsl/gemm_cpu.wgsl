// gemm_cpu.wgsl: the register-blocked entry point of the GEMM core (gemm.wgsl), for CPU adapters.
//
// Bindings: none of its own; the loaders substituted into gemm.wgsl declare them.
//
// Workgroup (x, y, g) computes the BM x BN tile of C at rows y*BM, columns x*BN of group g (row
// tiles past the grid limit fold into z: gemm.wgsl) with TX x TY invocations (BN = TX*TN,
// BM = TY*TM). Invocation (lx, ly) accumulates TM rows (ly*TM + i) and TN columns of the tile in
// registers: columns x*BN + lx*BV + j*TX*BV + c (j < TN/BV, c < BV), where BV is 4 when B is
// read as vec4 (its columns contiguous and N % 4 == 0) and 1 otherwise. The wide tiles have
// TY = 1 (every invocation owns all TM rows); the narrow ones (N <= 16) TY > 1, so that no lane
// computes clamped duplicates of a few columns.
// Why (lavapipe, Mesa 25.0, PLATFORM.md): a workgroup runs on one CPU thread as SIMD lanes over
// consecutive invocations, and every storage-buffer load costs a loop over the lanes, whatever
// its addresses, while arithmetic is one vector instruction. So the kernel minimises loads per
// FMA: one load (vec4 where it can) of B feeds TM FMAs, and A is loaded cooperatively when the
// adapter has subgroups of TX lanes and TY = 1: lane l loads row r*TX + l of A and
// subgroupBroadcast hands row i to every lane (A_REGS), one load per TX rows instead of one per
// row. The wide tiles have TM = 16 or 32 rows, so most accumulators live on the stack: a
// spilled accumulator costs a plain load and store, far less than a lane loop per load of B
// (twice the speed of 8 rows on the quiet Zen 5 host, BENCHMARKS.md 2026-12-04). No barriers, no
// workgroup memory (both are expensive there). Out-of-range rows and columns are clamped and
// compute duplicates that are never stored. An outer step (a convolution tap) that no row of the
// tile reads (A_CHECKED loaders, every row's [lo, hi) empty: the tap lies in the padding, as at
// the borders of an input gradient) is skipped: its FMAs would add exact zeros. With subgroup
// broadcasts the lanes agree through subgroupAny (LIVE_ANY), so the branch stays uniform.
// Measured on lavapipe, interleaved (the seed CIFAR-10 step's shapes): the input gradient
// 4x4x64 -> 6x6x64 5.8 -> 8.8 GFLOP/s (5 of 9 taps are padding for a 6x6 pixel), 13x13x64 ->
// 15x15x32 5.4 -> 7.6; even the "valid" forward conv 15x15x32 -> 64, which skips nothing, went
// 6.4 -> 7.6 (the branch changes LLVM's code for the loop); matmul unchanged.

alias BVec = {{BVEC}};
const BV: u32 = {{BV}}u;
const TNV: u32 = TN / BV;
// Rows of A each invocation loads per k step: TM / TX with subgroup broadcasts, else TM.
const AR: u32 = {{AR}}u;
// Steps of k per trip of the inner K loop (the tile's BK; KI_MAIN of the KI steps, the rest
// one by one). lavapipe keeps the values a loop carries in registers it writes under the loop's
// execution mask: every trip blends each accumulator (and the loads' lane loops dominate
// anyway); the KU steps within a trip chain in plain values. With 8-row tiles two steps paid
// (matmul 1024^3 34 -> 39 GFLOP/s); with the 16- and 32-row tiles of the table it lost
// (BENCHMARKS.md, 2026-12-04), so every table tile has BK = 1: tile_sweep can force more.
const KU: u32 = BK;
const KI_MAIN: u32 = KI / KU * KU;

fn bvec_get(v: BVec, c: u32) -> f32 {
    return {{BVEC_GET}};
}

// One step of k: B's TNV columns and A's rows at ki, TM x TNV fused multiply-adds.
fn k_step(
    acc: ptr<function, array<BVec, TM * TNV>>,
    ar: ptr<function, array<ARow, AR>>,
    bc: ptr<function, array<u32, TNV>>,
    ki: u32,
) {
    var b_reg: array<BVec, TNV>;
    for (var j = 0u; j < TNV; j++) {
        b_reg[j] = {{B_LOAD}}((*bc)[j] + ki * B_KSTRIDE);
    }
    var a: array<f32, AR>;
    for (var r = 0u; r < AR; r++) {
        a[r] = a_elem((*ar)[r], ki);
    }
    var a_reg: array<f32, TM>;
{{A_REGS}}
    for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TNV; j++) {
            (*acc)[i * TNV + j] = fma(BVec(a_reg[i]), b_reg[j], (*acc)[i * TNV + j]);
        }
    }
}

@compute @workgroup_size(TX, TY, 1)
fn gemm_global(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let tile_m0 = row_tile(wid) * BM;
    if (tile_m0 >= M) {
        return;
    }
    // This invocation's first row: the tile's TY rows of invocations own TM rows each.
    let m0 = tile_m0 + lid.y * TM;
    let g = wid.z % ZG;
    let n_first = wid.x * BN + lid.x * BV;
    var cols: array<u32, TNV>;
    for (var j = 0u; j < TNV; j++) {
        cols[j] = min(n_first + j * TX * BV, N - BV);
    }
    var acc: array<BVec, TM * TNV>;
    // {{K_BOUND_NOTE}}
    let k_hidden = {{K_HIDDEN}};
    for (var ko = 0u; ko < KO + k_hidden; ko++) {
        var ar: array<ARow, AR>;
        // Whether some row of the tile reads A in this outer step. When none does (a
        // convolution tap that falls in the padding for the whole tile: the borders of an input
        // gradient, "same" padding) every FMA of the step would add an exact zero: skip it.
        var live = !A_CHECKED;
        for (var r = 0u; r < AR; r++) {
            ar[r] = a_row(g, min({{A_ROW_M}}, M - 1u), ko);
            live = live || ar[r].hi > ar[r].lo;
        }
{{LIVE_ANY}}
        if (!live) {
            continue;
        }
        var bc: array<u32, TNV>;
        for (var j = 0u; j < TNV; j++) {
            bc[j] = b_col(g, ko, cols[j]);
        }
        // KU steps of k per trip of the loop, then the rest one by one (see KU).
        for (var kq = 0u; kq < KI_MAIN + k_hidden; kq += KU) {
            for (var u = 0u; u < KU; u++) {
                k_step(&acc, &ar, &bc, kq + u);
            }
        }
        for (var ki = KI_MAIN; ki < KI + k_hidden; ki++) {
            k_step(&acc, &ar, &bc, ki);
        }
    }
    for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TNV; j++) {
            for (var c = 0u; c < BV; c++) {
                let m = m0 + i;
                let n = n_first + j * TX * BV + c;
                if (m < M && n < N) {
                    store_c(g, m, n, bvec_get(acc[i * TNV + j], c));
                }
            }
        }
    }
}
