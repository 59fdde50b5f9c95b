//! WGSL validation with naga: the same front end and validator wgpu runs at pipeline creation,
//! so a kernel that passes here compiles on every backend.

use crate::KernelError;
use naga::valid::{Capabilities, ValidationFlags, Validator};

/// Parses and validates WGSL with naga (WebGPU's baseline capabilities); the error names the
/// kernel and carries naga's rendered message (with the offending source line).
pub fn validate_wgsl(kernel_name: &str, source: &str) -> Result<naga::Module, KernelError> {
    validate_with_info(kernel_name, source).map(|(module, _)| module)
}

/// [`validate_wgsl`], also returning naga's analysis (which globals each entry point uses).
pub fn validate_with_info(
    kernel_name: &str,
    source: &str,
) -> Result<(naga::Module, naga::valid::ModuleInfo), KernelError> {
    let module = naga::front::wgsl::parse_str(source)
        .map_err(|e| KernelError::invalid(kernel_name, e.emit_to_string(source)))?;
    let info = Validator::new(ValidationFlags::all(), Capabilities::default() | Capabilities::SUBGROUP)
        .validate(&module)
        .map_err(|e| KernelError::invalid(kernel_name, e.emit_to_string(source)))?;
    Ok((module, info))
}
