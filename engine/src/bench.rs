//! Measurements behind `fovea bench`: the adapter's peak FMA throughput and copy bandwidth,
//! kernel timings, and training-step throughput with cold and warm compile times.

use crate::device::Device;
use crate::error::{EngineError, Result};
use crate::program::Program;
use crate::state::DeviceState;
use fovea_graph::Model;
use fovea_graph::train::{CompileConfig, LABELS, LEARNING_RATE, STEP_SIZE, train_step};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The adapter's measured peaks.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Peak {
    /// f32 FMA throughput, GFLOP/s.
    pub gflops: f64,
    /// Copy bandwidth (read + write), GB/s.
    pub gbytes_per_second: f64,
}

fn run_raw(
    device: &Device,
    source: &str,
    buffers: &[&wgpu::Buffer],
    groups: [u32; 3],
    reps: usize,
) -> Result<Duration> {
    let dev = &device.device;
    let module = dev.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("peak"),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let pipeline = dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("peak"),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let entries: Vec<wgpu::BindGroupEntry> = buffers
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: b.as_entire_binding(),
        })
        .collect();
    let bind = dev.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("peak"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &entries,
    });
    let mut best = Duration::MAX;
    for _ in 0..reps {
        let mut enc = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("peak") });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("peak"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        }
        let start = Instant::now();
        device.queue.submit([enc.finish()]);
        device.check()?;
        best = best.min(start.elapsed());
    }
    Ok(best)
}

/// Measures the FMA and copy peaks (best of a few runs each).
pub fn measure_peak(device: &Device) -> Result<Peak> {
    let dev = &device.device;
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
    let groups = 512u32;
    let iters = 2048u32;
    let out = dev.create_buffer(&wgpu::BufferDescriptor {
        label: Some("peak"),
        size: groups as u64 * 256 * 4,
        usage,
        mapped_at_creation: false,
    });
    let t = run_raw(
        device,
        &fovea_kernels::peak::fma_source(iters),
        &[&out],
        [groups, 1, 1],
        3,
    )?;
    let flops = 16.0 * iters as f64 * groups as f64 * 256.0;
    let vec4s: u32 = 4 << 20; // 64 MiB per buffer
    let row = 65535 * 256;
    let bytes = vec4s as u64 * 16;
    let x = dev.create_buffer(&wgpu::BufferDescriptor {
        label: Some("peak x"),
        size: bytes,
        usage,
        mapped_at_creation: false,
    });
    let y = dev.create_buffer(&wgpu::BufferDescriptor {
        label: Some("peak y"),
        size: bytes,
        usage,
        mapped_at_creation: false,
    });
    let wg = vec4s.div_ceil(256);
    let groups2 = [wg.min(65535), wg.div_ceil(65535), 1];
    let tc = run_raw(
        device,
        &fovea_kernels::peak::copy_source(vec4s, row),
        &[&x, &y],
        groups2,
        3,
    )?;
    Ok(Peak {
        gflops: flops / t.as_secs_f64() / 1e9,
        gbytes_per_second: 2.0 * bytes as f64 / tc.as_secs_f64() / 1e9,
    })
}

/// Median time of one run of `program`, recording `per` runs per submit, over `samples` submits
/// after one warm-up submit.
pub fn time_program(program: &Program, per: usize, samples: usize) -> Result<Duration> {
    program.time_runs(1)?;
    let mut times: Vec<Duration> = (0..samples.max(1))
        .map(|_| program.time_runs(per).map(|t| t / per as u32))
        .collect::<Result<_>>()?;
    times.sort();
    Ok(times[times.len() / 2])
}

/// What `fovea bench step` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepBench {
    /// Training images per second in steady state (batch / median step time).
    pub images_per_second: f64,
    /// Median wall time of one training step (submit to device idle).
    pub median_ms_per_step: f64,
    /// Compile (cold) plus the first step, in seconds.
    pub first_step_seconds: f64,
    /// Building the training program with an empty pipeline cache.
    pub compile_seconds_cold: f64,
    /// Building it again in a new device with the on-disk pipeline cache of the first.
    pub compile_seconds_warm: f64,
    /// Dispatches per step.
    pub dispatches: usize,
    /// Steps measured.
    pub steps: usize,
    /// Batch size.
    pub batch_size: usize,
    /// The adapter's name.
    pub adapter: String,
    /// The backend.
    pub backend: String,
    /// The driver.
    pub driver: String,
}

fn step_program(device: &Arc<Device>, model: &Model, batch: usize, cfg: &CompileConfig) -> Result<(Program, Duration)> {
    let step = train_step(model, batch, cfg)?;
    let state = DeviceState::new(device);
    state.upload(&model.params)?;
    state.upload(&step.slots)?;
    let start = Instant::now();
    let p = Program::compile_with_state(device, step.graph, &state)?;
    Ok((p, start.elapsed()))
}

/// Benchmarks the training step of `model` at `batch`: cold and warm compile (pipeline cache in
/// a fresh temporary directory), first step, then `steps` timed steps on random data.
pub fn bench_step(model: &Model, batch: usize, cfg: &CompileConfig, steps: usize) -> Result<StepBench> {
    let dir = std::env::temp_dir().join(format!("fovea-bench-cache-{}-{}", std::process::id(), batch));
    let _ = std::fs::remove_dir_all(&dir);
    let cold_device = Arc::new(Device::with_cache_dir(Some(dir.clone()))?);
    let start = Instant::now();
    let (program, cold) = step_program(&cold_device, model, batch, cfg)?;
    let classes = *model.output_shapes()[0].last().unwrap_or(&1);
    let per: usize = model.input_shapes()[0].iter().product();
    let mut rng = fovea_graph::init::Rng::new(1);
    let x: Vec<f32> = (0..batch * per).map(|_| rng.uniform() as f32).collect();
    let mut y = vec![0f32; batch * classes];
    for i in 0..batch {
        y[i * classes + rng.below(classes)] = 1.0;
    }
    let input = model.layers()[0].name.clone();
    program.set_input(&input, &x)?;
    program.set_input(LABELS, &y)?;
    let (lr, alpha) = cfg.optimizer.hyper(0);
    program.set_input(LEARNING_RATE, &[lr])?;
    program.set_input(STEP_SIZE, &[alpha])?;
    for name in program.input_names().iter().filter(|n| n.ends_with("/seed")) {
        program.set_input(name, &[1.0])?;
    }
    program.time_runs(1)?;
    let first = start.elapsed();
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps.max(1) {
        times.push(program.time_runs(1)?);
    }
    times.sort();
    let median = times[times.len() / 2];
    let dispatches = program.dispatch_count();
    drop(program);
    let warm_device = Arc::new(Device::with_cache_dir(Some(dir.clone()))?);
    let (_, warm) = step_program(&warm_device, model, batch, cfg)?;
    let _ = std::fs::remove_dir_all(&dir);
    let info = cold_device.info();
    if median.is_zero() {
        return Err(EngineError::Device("a step took no measurable time".into()));
    }
    Ok(StepBench {
        images_per_second: batch as f64 / median.as_secs_f64(),
        median_ms_per_step: median.as_secs_f64() * 1e3,
        first_step_seconds: first.as_secs_f64(),
        compile_seconds_cold: cold.as_secs_f64(),
        compile_seconds_warm: warm.as_secs_f64(),
        dispatches,
        steps: times.len(),
        batch_size: batch,
        adapter: info.name.clone(),
        backend: info.backend.clone(),
        driver: info.driver_info.clone(),
    })
}
