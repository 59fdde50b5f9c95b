//! The wgpu device: adapter choice (`FOVEA_BACKEND` or the best available), real limits,
//! error capture, and the facts `fovea info` prints.

use crate::error::{EngineError, Result};
use crate::pipelines::PipelineCache;
use fovea_kernels::{AdapterClass, Target};
use std::sync::{Arc, Mutex};

/// The adapter facts shown by `fovea info` and recorded with every benchmark.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceInfo {
    /// Adapter name (`llvmpipe (LLVM 19.1.7, 256 bits)`, `NVIDIA H100 ...`).
    pub name: String,
    /// `vulkan`, `metal`, `dx12` or `gl`.
    pub backend: String,
    /// `Cpu`, `DiscreteGpu`, `IntegratedGpu`, `VirtualGpu` or `Other`.
    pub device_type: String,
    /// Driver name and version.
    pub driver: String,
    /// Driver details.
    pub driver_info: String,
    /// Whether the default search found no Vulkan/Metal/DX12 adapter and fell back to GL.
    pub fell_back_to_gl: bool,
    /// Key limits, by wgpu's names.
    pub limits: Vec<(String, u64)>,
    /// Enabled optional features, by wgpu's names.
    pub features: Vec<String>,
}

/// An open device with its queue, pipeline cache and kernel target.
pub struct Device {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) pipelines: PipelineCache,
    pub(crate) tuner: crate::tuning::Tuner,
    info: DeviceInfo,
    target: Target,
    errors: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device").field("info", &self.info).finish()
    }
}

fn class_from_env() -> Result<Option<AdapterClass>> {
    match std::env::var("FOVEA_KERNELS") {
        Err(_) => Ok(None),
        Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
            "" => Ok(None),
            "cpu" => Ok(Some(AdapterClass::Cpu)),
            "gpu" => Ok(Some(AdapterClass::Gpu)),
            _ => Err(EngineError::Input {
                what: "FOVEA_KERNELS".into(),
                message: format!("\"{v}\": expected cpu or gpu"),
            }),
        },
    }
}

fn backend_from_env() -> Result<Option<wgpu::Backends>> {
    match std::env::var("FOVEA_BACKEND") {
        Err(_) => Ok(None),
        Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
            "" => Ok(None),
            "vulkan" | "vk" => Ok(Some(wgpu::Backends::VULKAN)),
            "metal" => Ok(Some(wgpu::Backends::METAL)),
            "dx12" | "d3d12" => Ok(Some(wgpu::Backends::DX12)),
            "gl" | "gles" | "opengl" => Ok(Some(wgpu::Backends::GL)),
            _ => Err(EngineError::BadBackend { value: v }),
        },
    }
}

fn rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

fn pick(instance: &wgpu::Instance, backends: wgpu::Backends) -> Option<wgpu::Adapter> {
    let adapters = pollster::block_on(instance.enumerate_adapters(backends));
    adapters.into_iter().min_by_key(|a| rank(a.get_info().device_type))
}

impl Device {
    /// Opens the adapter named by `FOVEA_BACKEND` (vulkan, metal, dx12, gl), or the best of
    /// Vulkan/Metal/DX12 (discrete before integrated before software), falling back to GL only
    /// when none exists (and saying so in [`DeviceInfo::fell_back_to_gl`]).
    pub fn new() -> Result<Device> {
        Self::with_cache_dir(crate::pipelines::default_cache_dir())
    }

    /// Like [`Device::new`], with the on-disk pipeline cache in `cache_dir` (`None`: none).
    pub fn with_cache_dir(cache_dir: Option<std::path::PathBuf>) -> Result<Device> {
        Self::choose(cache_dir, class_from_env()?, None)
    }

    /// Like [`Device::with_cache_dir`], with a GEMM tuning budget of `tune_budget` for this
    /// device instead of `FOVEA_TUNE_BUDGET_MS` (zero: no tuning; cached choices still apply).
    pub fn with_tuning(cache_dir: Option<std::path::PathBuf>, tune_budget: std::time::Duration) -> Result<Device> {
        Self::choose(cache_dir, class_from_env()?, Some(tune_budget))
    }

    /// Like [`Device::new`], choosing kernels for `class` whatever the adapter is: GPU-class
    /// kernels (workgroup-memory tiles) run on lavapipe in tests, CPU-class ones on a GPU for
    /// comparison. `FOVEA_KERNELS=cpu|gpu` does the same for any run.
    pub fn with_kernel_class(class: AdapterClass) -> Result<Device> {
        Self::choose(crate::pipelines::default_cache_dir(), Some(class), None)
    }

    fn choose(
        cache_dir: Option<std::path::PathBuf>,
        class: Option<AdapterClass>,
        tune_budget: Option<std::time::Duration>,
    ) -> Result<Device> {
        let choice = backend_from_env()?;
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = wgpu::Backends::all();
        desc.flags = wgpu::InstanceFlags::empty().with_env();
        let instance = wgpu::Instance::new(desc);
        let primary = wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12;
        let (adapter, fell_back) = match choice {
            Some(b) => (pick(&instance, b), false),
            None => match pick(&instance, primary) {
                Some(a) => (Some(a), false),
                None => (pick(&instance, wgpu::Backends::GL), true),
            },
        };
        let tried = match choice {
            Some(b) => format!("{b:?} (from FOVEA_BACKEND)"),
            None => "Vulkan, Metal, DX12, then GL".to_string(),
        };
        let adapter = adapter.ok_or(EngineError::NoAdapter { tried })?;
        Self::open(adapter, fell_back, cache_dir, class, tune_budget)
    }

    fn open(
        adapter: wgpu::Adapter,
        fell_back_to_gl: bool,
        cache_dir: Option<std::path::PathBuf>,
        class_override: Option<AdapterClass>,
        tune_budget: Option<std::time::Duration>,
    ) -> Result<Device> {
        let ainfo = adapter.get_info();
        let wanted = wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES
            | wgpu::Features::PIPELINE_CACHE
            | wgpu::Features::SHADER_F16
            | wgpu::Features::SUBGROUP;
        let features = adapter.features() & wanted;
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("fovea"),
            required_features: features,
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| EngineError::RequestDevice {
            adapter: ainfo.name.clone(),
            message: e.to_string(),
        })?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        let lost = errors.clone();
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut v) = lost.lock() {
                v.push(format!("device lost ({reason:?}): {msg}"));
            }
        });
        let class = class_override.unwrap_or(if ainfo.device_type == wgpu::DeviceType::Cpu {
            AdapterClass::Cpu
        } else {
            AdapterClass::Gpu
        });
        let mut target = match class {
            AdapterClass::Cpu => Target::cpu(),
            AdapterClass::Gpu => Target::gpu(),
        };
        target.max_workgroups_per_dim = limits.max_compute_workgroups_per_dimension;
        target.max_invocations_per_workgroup = limits.max_compute_invocations_per_workgroup;
        target.max_workgroup_storage_bytes = limits.max_compute_workgroup_storage_size;
        // A fixed subgroup size lets the CPU-class GEMM broadcast A across lanes.
        if features.contains(wgpu::Features::SUBGROUP)
            && ainfo.subgroup_min_size == ainfo.subgroup_max_size
            && ainfo.subgroup_min_size > 0
            && std::env::var("FOVEA_SUBGROUPS").map_or(true, |v| v != "0")
        {
            target.subgroup_size = Some(ainfo.subgroup_min_size);
        }
        let info = DeviceInfo {
            name: ainfo.name.clone(),
            backend: ainfo.backend.to_str().to_string(),
            device_type: format!("{:?}", ainfo.device_type),
            driver: ainfo.driver.clone(),
            driver_info: ainfo.driver_info.clone(),
            fell_back_to_gl,
            limits: vec![
                ("max_buffer_size".into(), limits.max_buffer_size),
                (
                    "max_storage_buffer_binding_size".into(),
                    limits.max_storage_buffer_binding_size,
                ),
                (
                    "max_storage_buffers_per_shader_stage".into(),
                    limits.max_storage_buffers_per_shader_stage as u64,
                ),
                (
                    "max_compute_workgroup_storage_size".into(),
                    limits.max_compute_workgroup_storage_size as u64,
                ),
                (
                    "max_compute_invocations_per_workgroup".into(),
                    limits.max_compute_invocations_per_workgroup as u64,
                ),
                (
                    "max_compute_workgroup_size_x".into(),
                    limits.max_compute_workgroup_size_x as u64,
                ),
                (
                    "max_compute_workgroups_per_dimension".into(),
                    limits.max_compute_workgroups_per_dimension as u64,
                ),
                (
                    "min_storage_buffer_offset_alignment".into(),
                    limits.min_storage_buffer_offset_alignment as u64,
                ),
            ],
            features: features.iter_names().map(|(n, _)| n.to_string()).collect(),
        };
        let tuner = crate::tuning::Tuner::new(cache_dir.as_deref(), &info, &target, tune_budget);
        let disk = if features.contains(wgpu::Features::PIPELINE_CACHE) {
            cache_dir.zip(wgpu::util::pipeline_cache_key(&ainfo))
        } else {
            None
        };
        Ok(Device {
            pipelines: PipelineCache::new(device.clone(), disk),
            tuner,
            device,
            queue,
            info,
            target,
            errors,
        })
    }

    /// How many compute pipelines this device has compiled so far (cache hits not counted).
    pub fn pipelines_created(&self) -> usize {
        self.pipelines.created()
    }

    /// What adapter this is.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// The GEMM tile tuner and its cache ([`crate::tuning`]).
    pub fn tuner(&self) -> &crate::tuning::Tuner {
        &self.tuner
    }

    /// The kernel target (adapter class and limits) lowering uses.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Destroys the device, as a lost GPU would be (a driver reset, an unplugged eGPU): every
    /// later run, upload or readback fails with an error naming the loss. Tests use it to check
    /// that a lost device ends a command with a clear error rather than a hang or a panic.
    pub fn destroy(&self) {
        self.device.destroy();
    }

    /// Waits for all submitted work and returns the first device error since the last check.
    pub fn check(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| self.failure("waiting for the device", e))?;
        self.take_error()
    }

    /// The error for an operation `what` that failed with `e`: when the device reported its
    /// loss, that is the cause and the message says so (with what to do), else `what: e`.
    pub(crate) fn failure(&self, what: &str, e: impl std::fmt::Display) -> EngineError {
        let lost = self
            .errors
            .lock()
            .ok()
            .and_then(|v| v.iter().find(|m| m.starts_with("device lost")).cloned());
        match lost {
            Some(m) => EngineError::Device(format!(
                "{m} ({what} failed). Work since the last checkpoint is lost; with --checkpoint-dir, rerun with \
                 --resume once the adapter works again"
            )),
            None => EngineError::Device(format!("{what}: {e}")),
        }
    }

    /// Returns (and clears) any error the device reported asynchronously.
    pub(crate) fn take_error(&self) -> Result<()> {
        let mut v = self
            .errors
            .lock()
            .map_err(|_| EngineError::Device("error log poisoned".into()))?;
        if v.is_empty() {
            Ok(())
        } else {
            let msg = v.join("; ");
            v.clear();
            Err(EngineError::Device(msg))
        }
    }

    /// A one-line description: `llvmpipe (LLVM 19.1.7, 256 bits) [vulkan, Cpu]`.
    pub fn describe(&self) -> String {
        format!("{} [{}, {}]", self.info.name, self.info.backend, self.info.device_type)
    }
}

/// Records what `record` encodes between two GPU timestamps, submits it, waits and returns the
/// device time between them; `None` (nothing recorded or submitted) when the adapter has no
/// timestamp queries inside encoders.
pub(crate) fn gpu_time(
    device: &Device,
    record: impl FnOnce(&mut wgpu::CommandEncoder),
) -> Result<Option<std::time::Duration>> {
    let dev = &device.device;
    let needed = wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS;
    if !dev.features().contains(needed) {
        return Ok(None);
    }
    let queries = dev.create_query_set(&wgpu::QuerySetDescriptor {
        label: Some("timestamps"),
        ty: wgpu::QueryType::Timestamp,
        count: 2,
    });
    let resolve = dev.create_buffer(&wgpu::BufferDescriptor {
        label: Some("timestamps"),
        size: 16,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let staging = dev.create_buffer(&wgpu::BufferDescriptor {
        label: Some("timestamps readback"),
        size: 16,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("timed") });
    enc.write_timestamp(&queries, 0);
    record(&mut enc);
    enc.write_timestamp(&queries, 1);
    enc.resolve_query_set(&queries, 0..2, &resolve, 0);
    enc.copy_buffer_to_buffer(&resolve, 0, &staging, 0, 16);
    device.queue.submit([enc.finish()]);
    let words = crate::readback::map_read(device, &staging, 4)?;
    let ticks = |i: usize| u64::from(words[2 * i].to_bits()) | (u64::from(words[2 * i + 1].to_bits()) << 32);
    let ns = ticks(1).saturating_sub(ticks(0)) as f64 * f64::from(device.queue.get_timestamp_period());
    Ok(Some(std::time::Duration::from_nanos(ns as u64)))
}
