//! What the lowering needs to know about the adapter: its class (which decides tile shapes) and
//! the few limits that bound dispatch geometry.

/// The kind of adapter a program is compiled for. Kernel variants are chosen per class because
/// what is fast on a software rasteriser is slow on a real GPU and vice versa (see PLATFORM.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdapterClass {
    /// A CPU implementation of the API (lavapipe/llvmpipe, SwiftShader, WARP): barriers and
    /// workgroup memory are expensive, register blocking straight from global memory pays.
    Cpu,
    /// A discrete or integrated GPU: stage tiles through workgroup memory.
    Gpu,
}

impl AdapterClass {
    /// `cpu` or `gpu`, as used in kernel names.
    pub fn name(self) -> &'static str {
        match self {
            AdapterClass::Cpu => "cpu",
            AdapterClass::Gpu => "gpu",
        }
    }
}

/// The adapter facts the lowering depends on. The engine fills it from the adapter's real limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target {
    /// Which tile table applies.
    pub class: AdapterClass,
    /// `maxComputeWorkgroupsPerDimension` (65535 in WebGPU's defaults).
    pub max_workgroups_per_dim: u32,
    /// `maxComputeInvocationsPerWorkgroup` (256 in WebGPU's defaults).
    pub max_invocations_per_workgroup: u32,
    /// `maxComputeWorkgroupStorageSize` in bytes (16384 in WebGPU's defaults).
    pub max_workgroup_storage_bytes: u32,
    /// The subgroup size, when the device has `Features::SUBGROUP` enabled and its subgroups
    /// always have this size (`subgroup_min_size == subgroup_max_size`; 8 on lavapipe with AVX2).
    /// Kernels use subgroup operations only when it is known (`None` in WebGPU's defaults).
    pub subgroup_size: Option<u32>,
}

impl Target {
    /// A CPU adapter (lavapipe) with WebGPU's default limits.
    pub fn cpu() -> Self {
        Target {
            class: AdapterClass::Cpu,
            ..Self::gpu()
        }
    }

    /// A GPU adapter with WebGPU's default limits.
    pub fn gpu() -> Self {
        Target {
            class: AdapterClass::Gpu,
            max_workgroups_per_dim: 65535,
            max_invocations_per_workgroup: 256,
            max_workgroup_storage_bytes: 16384,
            subgroup_size: None,
        }
    }

    /// Workgroup size of the one-invocation-per-element kernels: 256 (or the adapter's limit
    /// if lower). On GPUs 256 fills several waves; on lavapipe a workgroup is one loop over its
    /// invocations on one thread, so larger workgroups amortise its per-workgroup cost.
    pub fn linear_workgroup_size(&self) -> u32 {
        self.max_invocations_per_workgroup.clamp(1, 256)
    }
}
