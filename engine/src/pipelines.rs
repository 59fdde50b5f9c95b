//! The pipeline cache: every kernel instance is compiled once per device, keyed by its WGSL
//! text, inside an error scope so a failing shader names the kernel.

use crate::error::{EngineError, Result};
use fovea_kernels::KernelInstance;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A compiled kernel: its pipeline and the bind-group layout its bindings follow.
#[derive(Debug)]
pub struct CompiledKernel {
    /// The compute pipeline.
    pub pipeline: wgpu::ComputePipeline,
    /// The layout of `@group(0)`: one storage buffer per binding, read-only unless written.
    pub layout: wgpu::BindGroupLayout,
}

/// Compiled pipelines of one device, and (where the backend allows, e.g. Vulkan) wgpu's
/// driver-level pipeline cache persisted on disk, keyed by adapter, so a second start of the
/// same model skips most of the shader compilation.
pub struct PipelineCache {
    device: wgpu::Device,
    map: Mutex<HashMap<u64, Arc<CompiledKernel>>>,
    created: Mutex<usize>,
    disk: Option<(wgpu::PipelineCache, PathBuf)>,
    saved_at: Mutex<usize>,
}

/// Where pipeline caches live: `FOVEA_CACHE_DIR` (empty or `off` disables), else
/// `$XDG_CACHE_HOME/fovea`, else `~/.cache/fovea`.
pub fn default_cache_dir() -> Option<PathBuf> {
    match std::env::var("FOVEA_CACHE_DIR") {
        Ok(v) if v.is_empty() || v == "off" => None,
        Ok(v) => Some(PathBuf::from(v)),
        Err(_) => std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|d| d.join("fovea")),
    }
}

/// Replaces a cache file (this process's own temporary file, then a rename, so concurrent
/// processes never interleave writes); creates its folder. Whether it worked: the caches are an
/// optimisation, so callers ignore failures.
pub(crate) fn replace_cache_file(path: &std::path::Path, bytes: &[u8]) -> bool {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let ok = path.parent().is_some_and(|d| std::fs::create_dir_all(d).is_ok())
        && std::fs::write(&tmp, bytes).is_ok()
        && std::fs::rename(&tmp, path).is_ok();
    if !ok {
        let _ = std::fs::remove_file(&tmp);
    }
    ok
}

fn key(k: &KernelInstance) -> u64 {
    let mut h = DefaultHasher::new();
    k.source.hash(&mut h);
    k.entry_point.hash(&mut h);
    k.bindings.iter().map(|b| b.writable).collect::<Vec<_>>().hash(&mut h);
    h.finish()
}

impl PipelineCache {
    /// A cache for `device`; with `disk = Some((dir, key))` the driver's pipeline cache is
    /// loaded from and saved to `dir/pipelines-key.bin`.
    pub(crate) fn new(device: wgpu::Device, disk: Option<(PathBuf, String)>) -> Self {
        let disk = disk.map(|(dir, key)| {
            let path = dir.join(format!("pipelines-{key}.bin"));
            let data = std::fs::read(&path).ok();
            // SAFETY: the data was written by `PipelineCache::get_data` for an adapter with the
            // same cache key (the file name); wgpu validates its header and falls back to an
            // empty cache when it does not match.
            let cache = unsafe {
                device.create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
                    label: Some("fovea pipelines"),
                    data: data.as_deref(),
                    fallback: true,
                })
            };
            (cache, path)
        });
        PipelineCache {
            device,
            map: Mutex::new(HashMap::new()),
            created: Mutex::new(0),
            disk,
            saved_at: Mutex::new(0),
        }
    }

    /// Writes the driver's pipeline cache to disk if pipelines were compiled since the last
    /// save (temporary file, then rename). Failures are ignored: the cache is an optimisation.
    pub fn save(&self) {
        let Some((cache, path)) = &self.disk else { return };
        let created = self.created();
        let Ok(mut saved) = self.saved_at.lock() else { return };
        if *saved == created {
            return;
        }
        if let Some(data) = cache.get_data()
            && replace_cache_file(path, &data)
        {
            *saved = created;
        }
    }

    /// How many pipelines this cache has compiled (not counting hits).
    pub fn created(&self) -> usize {
        self.created.lock().map(|c| *c).unwrap_or(0)
    }

    /// The compiled pipeline for `k`, compiling it on first use.
    pub fn get(&self, k: &KernelInstance) -> Result<Arc<CompiledKernel>> {
        let key = key(k);
        if let Some(c) = self.map.lock().map_err(|_| poisoned())?.get(&key) {
            return Ok(c.clone());
        }
        let compiled = Arc::new(self.compile(k)?);
        self.map.lock().map_err(|_| poisoned())?.insert(key, compiled.clone());
        if let Ok(mut c) = self.created.lock() {
            *c += 1;
        }
        Ok(compiled)
    }

    fn compile(&self, k: &KernelInstance) -> Result<CompiledKernel> {
        // naga first: its message names the line, and no device error is raised.
        fovea_kernels::validate_wgsl(&k.name, &k.source)?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = crate::shader_module::create(&self.device, &k.name, &k.source);
        let entries: Vec<wgpu::BindGroupLayoutEntry> = k
            .bindings
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only: !b.writable },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let layout = self.device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(&k.name),
            entries: &entries,
        });
        let pl = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(&k.name),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&k.name),
            layout: Some(&pl),
            module: &module,
            entry_point: Some(k.entry_point),
            compilation_options: Default::default(),
            cache: self.disk.as_ref().map(|(c, _)| c),
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(EngineError::ShaderCompile {
                kernel: k.name.clone(),
                message: e.to_string(),
            });
        }
        Ok(CompiledKernel { pipeline, layout })
    }
}

fn poisoned() -> EngineError {
    EngineError::Device("pipeline cache lock poisoned".into())
}
