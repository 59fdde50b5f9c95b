//! Inference-mode batch normalisation (`wgsl/batchnorm.wgsl`): one invocation per element.

use crate::lower::NodeCx;
use crate::template::{Template, f32_lit};
use crate::{BindingRef, KernelError, KernelInstance};

const BATCHNORM_WGSL: &str = include_str!("../wgsl/batchnorm.wgsl");

/// Lowers `BatchNormInference { epsilon }` (inputs x, gamma, beta, mean, variance).
pub(crate) fn lower_batchnorm(cx: &NodeCx, epsilon: f32) -> Result<KernelInstance, KernelError> {
    let c = *cx.out_shape().last().unwrap_or(&1);
    let total = cx.out_numel();
    let grid = cx.linear_grid(total)?;
    let name = "batchnorm_inference";
    let source = Template::new(BATCHNORM_WGSL)
        .set("TOTAL", total)
        .set("C", c)
        .set("EPS", f32_lit(epsilon))
        .set("WG", grid.workgroup_size)
        .set("INDEX", grid.index_expr("gid"))
        .render(name)?;
    let mut bindings: Vec<BindingRef> = (0..5).map(|i| BindingRef::read(cx.input(i))).collect();
    bindings.push(BindingRef::write(cx.id));
    Ok(cx.linear_instance(name, "batchnorm", source, bindings, &grid, 4 * total))
}
