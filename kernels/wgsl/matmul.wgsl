// matmul.wgsl: loaders that make the GEMM core (gemm.wgsl) a plain 2-D matrix product
// C = op(A) @ op(B), one group.
//
// Bindings: 0 mat_a, 1 mat_b (read), 2 mat_c (read_write), all row-major f32.
// mat_a is (M, K), or (K, M) when transposed; mat_b is (K, N), or (N, K) when transposed;
// mat_c is (M, N). A_INDEX and B_INDEX are the substituted element offsets.

@group(0) @binding(0) var<storage, read> mat_a: array<f32>;
@group(0) @binding(1) var<storage, read> mat_b: array<f32>;
@group(0) @binding(2) var<storage, read_write> mat_c: array<f32>;

fn load_a(g: u32, m: u32, k: u32) -> f32 {
    return mat_a[{{A_INDEX}}];
}

fn load_b(g: u32, k: u32, n: u32) -> f32 {
    return mat_b[{{B_INDEX}}];
}

fn store_c(g: u32, m: u32, n: u32, v: f32) {
    mat_c[m * N + n] = v;
}
