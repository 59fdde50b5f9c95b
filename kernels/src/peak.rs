//! Peak microbenchmarks (`wgsl/peak_fma.wgsl`, `wgsl/peak_copy.wgsl`): the adapter's f32 FMA
//! throughput and copy bandwidth, against which `fovea bench` reports kernels as a percent of
//! peak. Their sources are specialised here; the engine launches them.

/// The FMA kernel with `iters` iterations per invocation (16 FLOPs each).
pub fn fma_source(iters: u32) -> String {
    include_str!("../wgsl/peak_fma.wgsl").replace("{{ITERS}}", &iters.to_string())
}

/// The copy kernel over `vec4s` elements in rows of `row` invocations.
pub fn copy_source(vec4s: u32, row: u32) -> String {
    include_str!("../wgsl/peak_copy.wgsl")
        .replace("{{TOTAL}}", &vec4s.to_string())
        .replace("{{ROW}}", &row.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_kernels_validate() {
        crate::validate_wgsl("peak_fma", &fma_source(512)).unwrap();
        crate::validate_wgsl("peak_copy", &copy_source(1 << 20, 65535 * 256)).unwrap();
    }
}
