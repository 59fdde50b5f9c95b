//! Graph passes. Each is a function from a graph to a graph with a report; each leaves the
//! reference interpreter's results unchanged (the tests check it on random graphs).
//!
//! [`optimize`] runs them in order: algebraic simplification, batch-norm folding, constant
//! folding, common subexpression elimination, transposed convolutions with kernel == stride as
//! matrix products, broadcasts read in place by elementwise nodes, elementwise fusion, the transposed-kernel layout for convolution input
//! gradients, epilogue fusion into GEMM-based ops, elementwise prologues of reductions, and dead-code
//! elimination.

mod backprop_filter;
mod batchnorm;
mod broadcast;
mod cse;
mod dce;
mod epilogue;
mod fold;
mod fuse;
mod rebuild;
mod reduce_prologue;
mod simplify;
mod subpixel;
#[cfg(test)]
mod tests;

pub use backprop_filter::{NARROW_INPUT_GRAD_MAX_CHANNELS, transpose_backprop_filters};
pub use batchnorm::fold_batchnorm;
pub use broadcast::bypass_broadcasts;
pub use cse::cse;
pub use dce::dce;
pub use epilogue::{MAX_EPILOGUE_INPUTS, fuse_epilogues};
pub use fold::fold_constants;
pub use fuse::{MAX_FUSED_INPUTS, fuse_elementwise, fusion_groups};
pub use reduce_prologue::{MAX_PROLOGUE_INPUTS, fuse_reduce_prologues};
pub use simplify::simplify;
pub use subpixel::subpixel_transposed_convs;

use crate::error::Result;
use crate::ir::Graph;

/// What a pass did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassReport {
    /// The pass's name.
    pub pass: &'static str,
    /// Nodes before the pass.
    pub nodes_before: usize,
    /// Nodes after the pass.
    pub nodes_after: usize,
    /// One line per change (`%12 relu: fused into %14`).
    pub changes: Vec<String>,
}

impl std::fmt::Display for PassReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} -> {} nodes, {} changes",
            self.pass,
            self.nodes_before,
            self.nodes_after,
            self.changes.len()
        )
    }
}

/// Runs every pass in order and returns the optimised graph with one report per pass.
pub fn optimize(graph: Graph) -> Result<(Graph, Vec<PassReport>)> {
    let mut reports = Vec::new();
    let mut g = graph;
    for pass in [
        simplify,
        fold_batchnorm,
        fold_constants,
        cse,
        dce,
        subpixel_transposed_convs,
        bypass_broadcasts,
        fuse_elementwise,
        dce,
        // Before epilogue fusion, which then fuses into the rewritten op.
        transpose_backprop_filters,
        fuse_epilogues,
        fuse_reduce_prologues,
        dce,
    ] {
        let (next, report) = pass(g)?;
        reports.push(report);
        g = next;
    }
    Ok((g, reports))
}
