//! The rendering of fused elementwise epilogues (`Op::GemmEpilogue`) that the GEMM core, the
//! split-K reduction and the pooling gradient apply as they store. (Fused `Op::Elementwise`
//! nodes lower like single elementwise ops, in `elementwise.rs`.)

use crate::BindingRef;
use crate::elementwise::EmitWgsl;
use crate::gemm::GemmEpilogue;
use std::fmt::Write;

/// An elementwise epilogue rendered for a kernel's store hook: `fn epilogue(i: u32, v: f32) -> f32`
/// giving the stored value of output element `i` whose computed value is `v`, with the
/// declarations of the extra inputs it reads (`epi_in1`, `epi_in2`, ...).
pub(crate) struct EpilogueSource {
    /// The WGSL: `EPI_C`, the extra inputs' bindings and `fn epilogue` (the identity when there
    /// is no epilogue).
    pub code: String,
    /// The extra inputs' bindings, in binding order (they go before the kernel's output).
    pub bindings: Vec<BindingRef>,
    /// The names of the epilogue's operations (empty when there is none).
    pub ops: Vec<String>,
}

/// Renders epilogue `e` (or the identity) for a kernel whose extra inputs bind from
/// `first_binding` on. Shared by every kernel that stores through an epilogue: the GEMM core
/// (`gemm.rs`) and the pooling gradient (`pool_grad.rs`). An extra input of the output's shape
/// is read at `i`, a per-channel `(C,)` vector at `i % C` (NHWC and row-major matrices keep the
/// channel innermost).
pub(crate) fn epilogue_source(e: Option<&GemmEpilogue>, first_binding: usize) -> EpilogueSource {
    let Some(e) = e else {
        return EpilogueSource {
            code: "fn epilogue(i: u32, v: f32) -> f32 {\n    return v;\n}\n".to_string(),
            bindings: Vec::new(),
            ops: Vec::new(),
        };
    };
    let mut code = format!("const EPI_C: u32 = {}u;\n", e.channels);
    let mut body = "    let x0 = v;\n".to_string();
    for (k, &(_, per_channel)) in e.extras.iter().enumerate() {
        let k = k + 1;
        let b = first_binding + k - 1;
        let _ = writeln!(
            code,
            "@group(0) @binding({b}) var<storage, read> epi_in{k}: array<f32>;"
        );
        let at = if per_channel { "i % EPI_C" } else { "i" };
        let _ = writeln!(body, "    let x{k} = epi_in{k}[{at}];");
    }
    let mut next = 0;
    let result = e.expr.emit(&mut body, &mut next);
    let _ = write!(
        code,
        "\nfn epilogue(i: u32, v: f32) -> f32 {{\n{body}    return {result};\n}}\n"
    );
    let mut ops = Vec::new();
    e.expr.op_names(&mut ops);
    let bindings = e.extras.iter().map(|&(id, _)| BindingRef::read(id)).collect();
    EpilogueSource { code, bindings, ops }
}

/// A kernel name `what` extended by the epilogue's operations: `what_add_relu`, or
/// `what_epilogue<n>ops` beyond four operations; `what` itself without an epilogue.
pub(crate) fn epilogue_name(what: &str, ops: &[String]) -> String {
    match ops.len() {
        0 => what.to_string(),
        n if n > 4 => format!("{what}_epilogue{n}ops"),
        _ => format!("{what}_{}", ops.join("_")),
    }
}
