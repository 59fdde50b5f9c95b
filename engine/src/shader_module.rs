//! Shader modules for Fovea's kernels, with the runtime checks they need and no more.
//!
//! wgpu's default (`ShaderRuntimeChecks::checked`) also wraps every loop in a hidden iteration
//! counter ("loop bounding"), so a driver can never assume a loop ends. On lavapipe that counter
//! keeps LLVM from fully unrolling the GEMM core's constant-count loops over its register tile,
//! and matmul 1024³ runs at about two thirds of the speed (BENCHMARKS.md, 2026-12-03 evening:
//! 11.4 against 16.4 GFLOP/s, alternating). The guarantee loop bounding stands in for is one
//! Fovea's kernels give by construction: every loop of a kernel without a `loop` or `while`
//! statement is a `for` that counts a local variable by a nonzero constant step towards a bound
//! fixed before the loop starts. So such kernels are created without loop bounding
//! ([`counted_loops_only`] decides), and everything else (buffer bounds checks above all) stays
//! as wgpu sets it. Kernels with `loop` or `while` (NMS) keep the full checks.
//! `FOVEA_LOOP_BOUNDING=1` keeps it on everywhere, for measuring the difference.

/// Whether `source` has no `loop` or `while` statement outside comments: then every loop in
/// it is a counted `for` (see the module docs) and needs no runtime loop bounding.
pub fn counted_loops_only(source: &str) -> bool {
    let code = strip_comments(source);
    !code
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|word| word == "loop" || word == "while")
}

/// `source` with `// ...` line comments and `/* ... */` block comments (which nest in WGSL)
/// replaced by spaces.
fn strip_comments(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    let mut depth = 0usize;
    while let Some(c) = chars.next() {
        match (c, chars.peek().copied()) {
            ('/', Some('*')) => {
                chars.next();
                depth += 1;
                out.push(' ');
            }
            ('*', Some('/')) if depth > 0 => {
                chars.next();
                depth -= 1;
                out.push(' ');
            }
            ('/', Some('/')) if depth == 0 => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            (c, _) if depth > 0 => out.push(if c == '\n' { '\n' } else { ' ' }),
            (c, _) => out.push(c),
        }
    }
    out
}

/// `FOVEA_LOOP_BOUNDING=1`, read once per process.
fn loop_bounding_forced() -> bool {
    static FORCED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FORCED.get_or_init(|| std::env::var("FOVEA_LOOP_BOUNDING").is_ok_and(|v| v == "1"))
}

/// The shader module for a kernel's WGSL `source` (see the module docs for its checks).
pub(crate) fn create(device: &wgpu::Device, label: &str, source: &str) -> wgpu::ShaderModule {
    let desc = wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    };
    if loop_bounding_forced() || !counted_loops_only(source) {
        return device.create_shader_module(desc);
    }
    let mut checks = wgpu::ShaderRuntimeChecks::checked();
    checks.force_loop_bounding = false;
    // SAFETY: the only check turned off is loop bounding, whose contract is that the shader
    // has no infinite loop; `counted_loops_only` admits only sources whose loops are `for`
    // loops counting towards a fixed bound (the module docs). Buffer bounds checks stay on.
    unsafe { device.create_shader_module_trusted(desc, checks) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_for_loops_pass() {
        let src = "fn f() { for (var i = 0u; i < 4u; i++) { let loop_count = i; } }";
        assert!(counted_loops_only(src));
    }

    #[test]
    fn loop_and_while_statements_are_found() {
        assert!(!counted_loops_only(
            "fn f() { var i = 0u; loop { if (i > 3u) { break; } i++; } }"
        ));
        assert!(!counted_loops_only("fn f() { var i = 0u; while(i < 3u) { i++; } }"));
        assert!(!counted_loops_only("fn f() {\n// a comment\nwhile (true) {}\n}"));
    }

    #[test]
    fn words_in_comments_do_not_count() {
        let src = "// runs while the loop is hot\n/* a loop /* nested while */ still */ fn f() {}";
        assert!(counted_loops_only(src));
        assert_eq!(strip_comments("a // b\nc").trim_end(), "a \nc");
    }

    #[test]
    fn every_shipped_kernel_source_is_classified() {
        // The NMS kernel has `loop` and `while` statements; the GEMM core's entry point only
        // mentions "while" in a comment.
        let nms = include_str!("../../kernels/wgsl/nms.wgsl");
        assert!(!counted_loops_only(nms));
        let gemm = include_str!("../../kernels/wgsl/gemm_cpu.wgsl");
        assert!(gemm.contains("while") && counted_loops_only(gemm));
    }
}
