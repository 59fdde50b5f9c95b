//! Training-mode dropout (`wgsl/dropout.wgsl`): one invocation per element, the keep decision
//! hashed from the seed and the element index exactly as `fovea_graph::ir::dropout_uniform`.

use crate::lower::NodeCx;
use crate::template::{Template, f32_lit};
use crate::{BindingRef, KernelError, KernelInstance};

const DROPOUT_WGSL: &str = include_str!("../wgsl/dropout.wgsl");

/// Lowers `Dropout { rate, training: true }` (inputs `x` and a `(1,)` seed).
pub(crate) fn lower_dropout(cx: &NodeCx, rate: f32) -> Result<KernelInstance, KernelError> {
    if !(0.0..1.0).contains(&rate) {
        return Err(cx.unsupported(format!("dropout rate {rate} is outside [0, 1)")));
    }
    let total = cx.out_numel();
    let grid = cx.linear_grid(total)?;
    let name = "dropout";
    let source = Template::new(DROPOUT_WGSL)
        .set("TOTAL", total)
        .set("RATE", f32_lit(rate))
        .set("SCALE", f32_lit(1.0 / (1.0 - rate)))
        .set("WG", grid.workgroup_size)
        .set("INDEX", grid.index_expr("gid"))
        .render(name)?;
    Ok(cx.linear_instance(
        name,
        "dropout",
        source,
        vec![
            BindingRef::read(cx.input(0)),
            BindingRef::read(cx.input(1)),
            BindingRef::write(cx.id),
        ],
        &grid,
        total,
    ))
}
