// matmul.wgsl: loaders that make the GEMM core (gemm.wgsl) a matrix product C = op(A) @ op(B),
// K in one run (KO = 1, KI = K): one group for 2-D operands, one group g (workgroup_id.z) per
// matrix of a batch for 3-D ones (batched matmul: Gram matrices, pairwise distances).
//
// Bindings: 0 mat_a, 1 mat_b (read), 2 mat_c (read_write), all row-major f32.
// mat_a is (G, M, K), or (G, K, M) when transposed: row m of group g starts at A_ROW, steps
// A_KSTRIDE along k; mat_b is (G, K, N), or (G, N, K) when transposed: column n starts at B_COL,
// steps B_KSTRIDE along k; mat_c is (G, M, N) (G = 1 for 2-D operands). A_ROW, A_KSTRIDE,
// B_COL, B_KSTRIDE are substituted (A_ROW and B_COL add g * M * K and g * K * N when G > 1);
// mat_b is read as vec4 (B_TYPE, B_AT, B_AT4, see gemm.rs b_view) when not transposed and
// N % 4 == 0. Element (m, n) of group g is stored at C_INDEX: (g * M + m) * N + n, or for a
// pixel-shuffled product (matmul.rs) at its place in the shuffled output.

@group(0) @binding(0) var<storage, read> mat_a: array<f32>;
@group(0) @binding(1) var<storage, read> mat_b: array<{{B_TYPE}}>;
@group(0) @binding(2) var<storage, read_write> mat_c: array<f32>;

const A_KSTRIDE: u32 = {{A_KSTRIDE}};
const A_CHECKED: bool = false;
const B_KSTRIDE: u32 = {{B_KSTRIDE}};

struct ARow {
    base: u32,
    lo: u32,
    hi: u32,
}

fn a_row(g: u32, m: u32, ko: u32) -> ARow {
    return ARow({{A_ROW}}, 0u, KI);
}

fn a_at(i: u32) -> f32 {
    return mat_a[i];
}

fn b_col(g: u32, ko: u32, n: u32) -> u32 {
    return {{B_COL}};
}

fn b_at(i: u32) -> f32 {
    return {{B_AT}};
}

fn b_at4(i: u32) -> vec4<f32> {
    return {{B_AT4}};
}

fn store_c(g: u32, m: u32, n: u32, v: f32) {
    let i = {{C_INDEX}};
    mat_c[i] = epilogue(i, v);
}
