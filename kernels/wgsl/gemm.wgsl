// gemm.wgsl: the one GEMM core behind matmul, implicit-GEMM convolution, transposed
// convolution and the convolution gradients.
//
// Computes, for every group g (workgroup_id.z), C[m, n] = sum_k A[m, k] * B[k, n] with
// m < M, n < N, k < K. The core never touches a buffer itself. The K axis is split into KO outer
// steps of KI inner steps (k = ko * KI + ki; a convolution's kernel taps and its channels), and the
// caller substitutes for LOADERS, together with the bindings they use:
//   struct ARow { base: u32, lo: u32, hi: u32 }
//   fn a_row(g: u32, m: u32, ko: u32) -> ARow   row m of A for outer step ko:
//        A[m, ko*KI + ki] = a_at(base + ki * A_KSTRIDE) for lo <= ki < hi, else 0
//        (base may wrap below 0; only indices inside [lo, hi) are ever read)
//   fn a_at(i: u32) -> f32                      one element of A's buffer
//   const A_KSTRIDE: u32, const A_CHECKED: bool (false: lo = 0 and hi = KI for every row)
//   fn b_col(g: u32, ko: u32, n: u32) -> u32    B[ko*KI + ki, n] = b_at(b_col(..) + ki * B_KSTRIDE)
//   fn b_at(i: u32) -> f32, const B_KSTRIDE: u32
//   fn store_c(g: u32, m: u32, n: u32, v: f32)   stores epilogue(i, v) at C's flat index i
// (a plain or transposed matrix for matmul, an on-the-fly im2col view of an NHWC activation for
// conv, the transposed-conv view, ...). The core calls a_row only with m < M, b_col only with
// n < N, and store_c only with m < M, n < N. So the index arithmetic of a convolution (div/mod
// of the output pixel, tap offsets, padding) runs once per row and outer step, not per element.
// load_a(g, m, k) and load_b(g, k, n) below give the plain element view for the staged kernel.
//
// The epilogue (EPILOGUE, substituted by gemm.rs) is `fn epilogue(i: u32, v: f32) -> f32`, the
// value stored for GEMM result v at output index i (the output is row-major with C channels
// last): v itself, or a fused elementwise expression over v and extra inputs bound after the
// loaders' inputs (the output binding comes last): epi_in{k}[i] for a tensor of the output's
// shape, epi_in{k}[i % EPI_C] for a per-channel vector (bias).
//
// One entry point is appended per kernel (see gemm.rs for the tile table):
//   gemm_global (gemm_cpu.wgsl)   register-blocked straight from global memory, no barriers, no
//                workgroup memory. For CPU adapters (lavapipe).
//   gemm_tiled  (gemm_tiled.wgsl) stages BM x BK of A and BK x BN of B through workgroup memory
//                per step of BK, with two barriers per step. For GPUs.
//
// Split-K (gemm_tiled only, see gemm.rs SPLIT_K_MIN_WORKGROUPS): with SPLITS > 1, workgroup_id.z
// is g * SPLITS + s and split s reduces only k in [s*KSPLIT, min((s+1)*KSPLIT, K)) (KSPLIT a
// multiple of BK). gemm.rs then rewrites the loaders' store_c to write the raw partial sum
// (no epilogue) to element split_base + i of a scratch buffer laid out [SPLITS][SPLIT_STRIDE]
// (SPLIT_STRIDE = the output's element count), and a second kernel (split_k.wgsl) sums the
// partials and applies the epilogue. With SPLITS = 1, KSPLIT >= K and split_base is 0.
//
// Row tiles beyond the grid limit (gemm.rs): when ceil(M / BM) exceeds the adapter's
// maxComputeWorkgroupsPerDimension (65535 in WebGPU; a batch-32 convolution over 128x128
// pixels has 524288 rows), the row tiles are dealt over y and the upper part of z: workgroup
// (x, y, z) computes row tile y + (z / ZG) * GRID_Y of group/split z % ZG, where ZG = groups *
// SPLITS is the z extent without folding and GRID_Y the y extent; tiles past the last row tile
// return at once (a uniform branch: it depends on workgroup_id only). Unfolded, z < ZG and
// the row tile is y.

const M: u32 = {{M}}u;
const N: u32 = {{N}}u;
const K: u32 = {{K}}u;
const KO: u32 = {{KO}}u;
const KI: u32 = {{KI}}u;
const BM: u32 = {{BM}}u;
const BN: u32 = {{BN}}u;
const BK: u32 = {{BK}}u;
const TM: u32 = {{TM}}u;
const TN: u32 = {{TN}}u;
const TX: u32 = {{TX}}u;
const TY: u32 = {{TY}}u;
const SPLITS: u32 = {{SPLITS}}u;
const KSPLIT: u32 = {{KSPLIT}}u;
const SPLIT_STRIDE: u32 = {{SPLIT_STRIDE}}u;
const ZG: u32 = {{ZG}}u;
const GRID_Y: u32 = {{GRID_Y}}u;

// The row tile of workgroup `wid` (see "Row tiles beyond the grid limit" above).
fn row_tile(wid: vec3<u32>) -> u32 {
    return wid.y + (wid.z / ZG) * GRID_Y;
}

// ---- epilogue and its bindings (substituted) ----
{{EPILOGUE}}
// ---- loaders and bindings (substituted) ----
{{LOADERS}}
// ---- end of loaders ----

// A[m, ko*KI + ki] through a row descriptor: 0 outside [lo, hi), and never an index outside it.
fn a_elem(r: ARow, ki: u32) -> f32 {
    if (!A_CHECKED) {
        return a_at(r.base + ki * A_KSTRIDE);
    }
    let ok = ki >= r.lo && ki < r.hi;
    return select(0.0, a_at(select(0u, r.base + ki * A_KSTRIDE, ok)), ok);
}

fn load_a(g: u32, m: u32, k: u32) -> f32 {
    return a_elem(a_row(g, m, k / KI), k % KI);
}

fn load_b(g: u32, k: u32, n: u32) -> f32 {
    return b_at(b_col(g, k / KI, n) + (k % KI) * B_KSTRIDE);
}
