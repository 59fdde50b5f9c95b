//! Measurements behind `fovea bench`: the adapter's peak FMA throughput and copy bandwidth,
//! kernel timings, and training-step throughput with cold and warm compile times.

use crate::device::Device;
use crate::error::{EngineError, Result};
use crate::program::Program;
use crate::state::DeviceState;
use fovea_graph::Model;
use fovea_graph::train::{CompileConfig, LEARNING_RATE, STEP_SIZE, target_input, train_step};
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
    // The same runtime checks as every kernel, so the peak is what a kernel could reach.
    let module = crate::shader_module::create(dev, "peak", source);
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

use fovea_graph::ir::*;
use fovea_graph::train::Optimizer;

fn single(op: Op, shapes: &[Vec<usize>]) -> Result<Graph> {
    let mut g = Graph::new();
    let mut ids = vec![g.input("x", TensorType::f32(shapes[0].clone()))?];
    for (i, s) in shapes[1..].iter().enumerate() {
        ids.push(g.param(&format!("p{i}"), s, true, "bench")?);
    }
    let y = g.push(op, &ids, "bench")?;
    g.outputs.push(y);
    Ok(g)
}

/// The three convolution cases of one 3x3 stride-1 layer (`h x h x c -> o`, padding `pad`, at
/// `batch`) as a training step runs them: the forward, the data gradient (with the filter
/// transposed once for vec4 loads when that pays; the transpose is one more, small, dispatch)
/// and the filter gradient.
fn conv3x3_cases(
    v: &mut Vec<(String, String, Graph)>,
    name: &str,
    batch: usize,
    h: usize,
    c: usize,
    o: usize,
    pad: usize,
) -> Result<()> {
    let oh = h + 2 * pad - 2;
    let shape = format!("b{batch} {h}x{h}x{c}->{o}");
    v.push((
        format!("conv2d {name}"),
        shape.clone(),
        single(Op::Conv2d(conv(1, pad, 1)), &[vec![batch, h, h, c], vec![3, 3, c, o]])?,
    ));
    let backprop = single(
        Op::Conv2dBackpropInput {
            geom: conv(1, pad, 1),
            input_hw: (h, h),
            filter: BackpropFilter::Hwio,
        },
        &[vec![batch, oh, oh, o], vec![3, 3, c, o]],
    )?;
    v.push((
        format!("conv2d_backprop_input {name}"),
        shape.clone(),
        fovea_graph::passes::transpose_backprop_filters(backprop)?.0,
    ));
    v.push((
        format!("conv2d_backprop_filter {name}"),
        shape,
        single(
            Op::Conv2dBackpropFilter {
                geom: conv(1, pad, 1),
                kernel_hw: (3, 3),
            },
            &[vec![batch, h, h, c], vec![batch, oh, oh, o]],
        )?,
    ));
    Ok(())
}

fn conv(stride: usize, pad: usize, groups: usize) -> ConvGeometry {
    ConvGeometry {
        stride: (stride, stride),
        dilation: (1, 1),
        pad: Pad2d {
            top: pad,
            bottom: pad,
            left: pad,
            right: pad,
        },
        groups,
    }
}

/// The kernel cases of `fovea bench kernels` and `cargo bench`: (kernel family, shape, graph):
/// square and odd matmuls, the seed CIFAR-10 CNN's convolutions (forward, data and filter
/// gradients) at batch 32 and 128, depthwise, pooling forward and backward, softmax,
/// batch norm, elementwise, the multi-tensor Adam update, and the structural ops (Gram-matrix
/// batched matmul, SSD-sized top-k and gather, instance norm).
pub fn bench_cases(large: bool) -> Result<Vec<(String, String, Graph)>> {
    let mut v = Vec::new();
    let mut sizes = vec![128usize, 256, 512, 1024];
    if large {
        sizes.push(2048);
    }
    for n in sizes {
        v.push((
            "matmul".into(),
            format!("{n}x{n}x{n}"),
            single(
                Op::MatMul {
                    trans_a: false,
                    trans_b: false,
                },
                &[vec![n, n], vec![n, n]],
            )?,
        ));
    }
    v.push((
        "matmul".into(),
        "odd 97x61x131".into(),
        single(
            Op::MatMul {
                trans_a: false,
                trans_b: false,
            },
            &[vec![97, 61], vec![61, 131]],
        )?,
    ));
    // ---- structural ops ----
    // Style transfer's Gram matrix F^T F of a 128x128x64 feature map (K = H * W), on the GEMM
    // core's batch (group) axis; and four of a 64x64 map at once.
    for (b, hw) in [(1usize, 128usize * 128), (4, 64 * 64)] {
        v.push((
            "batched_matmul (Gram F^T F)".into(),
            format!("b{b} 64x{hw}x64"),
            single(
                Op::MatMul {
                    trans_a: true,
                    trans_b: false,
                },
                &[vec![b, hw, 64], vec![b, hw, 64]],
            )?,
        ));
    }
    // SSD's hard-negative mining: the top 200 of 8732 anchor losses per image, then their values.
    let mut g = Graph::new();
    let x = g.input("x", TensorType::f32(vec![32, 8732]))?;
    let idx = g.push(Op::TopK { k: 200 }, &[x], "bench")?;
    g.outputs.push(idx);
    v.push(("top_k".into(), "32x8732 k=200".into(), g.clone()));
    let picked = g.push(Op::Gather { axis: 1, batch_dims: 1 }, &[x, idx], "bench")?;
    g.outputs = vec![picked];
    v.push(("top_k + gather".into(), "32x8732 k=200".into(), g));
    // Detection's final step: 10,000 candidate boxes of one class, the best 1,000 by TopK, their
    // boxes gathered, then NMS to 100.
    let mut g = Graph::new();
    let boxes = g.input("boxes", TensorType::f32(vec![1, 10_000, 4]))?;
    let scores = g.input("scores", TensorType::f32(vec![1, 10_000, 1]))?;
    let params = fovea_graph::ops::NmsParams {
        iou_threshold: 0.5,
        score_threshold: 0.05,
        max_detections: 100,
        candidates: 1000,
    };
    let out = fovea_graph::ops::batched_nms(&mut g, boxes, scores, params, "bench")?;
    g.outputs.push(out);
    v.push(("top_k + nms".into(), "10000 boxes, top 1000 -> 100".into(), g));
    // The same without the preselection: all 10,000 candidates sorted and suppressed.
    let mut g = Graph::new();
    let boxes = g.input("boxes", TensorType::f32(vec![1, 10_000, 4]))?;
    let scores = g.input("scores", TensorType::f32(vec![1, 10_000, 1]))?;
    let all = fovea_graph::ops::NmsParams {
        candidates: 10_000,
        ..params
    };
    let out = fovea_graph::ops::batched_nms(&mut g, boxes, scores, all, "bench")?;
    g.outputs.push(out);
    v.push(("top_k + nms".into(), "10000 boxes, all -> 100".into(), g));
    v.push((
        "instance_norm".into(),
        "b4 64x64x32".into(),
        single(
            Op::InstanceNorm { epsilon: 1e-3 },
            &[vec![4, 64, 64, 32], vec![32], vec![32]],
        )?,
    ));
    // The seed CIFAR-10 CNN's convolutions at batch 32 and 128: forward, data and filter gradients.
    for batch in [32usize, 128] {
        for (name, h, c, o) in [
            ("conv1", 32usize, 3usize, 32usize),
            ("conv2", 15, 32, 64),
            ("conv3", 6, 64, 64),
        ] {
            conv3x3_cases(&mut v, name, batch, h, c, o, 0)?;
        }
    }
    // The U-Net's narrow full-resolution convolutions (`fovea segment train`: 128-pixel tiles,
    // batch 4, base width 8 or 16, "same" padding): few output channels per GEMM column tile.
    for (name, h, c, o) in [
        ("unet w8 l1", 128usize, 8usize, 8usize),
        ("unet w8 l1 decoder", 128, 16, 8),
        ("unet w16 l1", 128, 16, 16),
        ("unet w8 l2 decoder", 64, 32, 16),
    ] {
        conv3x3_cases(&mut v, name, 4, h, c, o, 1)?;
    }
    v.push((
        "depthwise conv2d".into(),
        "b32 32x32x64 3x3".into(),
        single(Op::Conv2d(conv(1, 1, 64)), &[vec![32, 32, 32, 64], vec![3, 3, 1, 64]])?,
    ));
    // The SSD-lite detector's depthwise 3x3 layers at 256 px, batch 16 (zoo::detection): the
    // first block (stride 2 on the stem's 64x64x24), a stride-1 block and a head level; forward
    // and both gradients.
    for (h, c, s) in [(64usize, 24usize, 2usize), (32, 48, 1), (16, 96, 1)] {
        let oh = (h + 2 - 3) / s + 1;
        let shape = format!("b16 {h}x{h}x{c} s{s}");
        let dw = conv(s, 1, c);
        v.push((
            "depthwise conv2d".into(),
            shape.clone(),
            single(Op::Conv2d(dw), &[vec![16, h, h, c], vec![3, 3, 1, c]])?,
        ));
        v.push((
            "depthwise backprop_input".into(),
            shape.clone(),
            single(
                Op::Conv2dBackpropInput {
                    geom: dw,
                    input_hw: (h, h),
                    filter: BackpropFilter::Hwio,
                },
                &[vec![16, oh, oh, c], vec![3, 3, 1, c]],
            )?,
        ));
        v.push((
            "depthwise backprop_filter".into(),
            shape,
            single(
                Op::Conv2dBackpropFilter {
                    geom: dw,
                    kernel_hw: (3, 3),
                },
                &[vec![16, h, h, c], vec![16, oh, oh, c]],
            )?,
        ));
    }
    // The U-Net's up-sampling: a 2x2 stride-2 transposed convolution (32x32x64 -> 64x64x32 at
    // batch 4, a 128-pixel tile's third level), beside the forward convolution it mirrors
    // (2x2 stride 2, 64x64x32 -> 32x32x64), which does the same FLOPs.
    // As every program runs it: a matmul and a pixel shuffle (`passes::subpixel`).
    v.push((
        "conv_transpose2d (U-Net up)".into(),
        "b4 32x32x64->64x64x32 2x2 s2".into(),
        fovea_graph::passes::subpixel_transposed_convs(single(
            Op::ConvTranspose2d {
                geom: conv(2, 0, 1),
                out_pad: (0, 0),
            },
            &[vec![4, 32, 32, 64], vec![2, 2, 32, 64]],
        )?)?
        .0,
    ));
    v.push((
        "conv2d (its mirror, equal FLOPs)".into(),
        "b4 64x64x32->32x32x64 2x2 s2".into(),
        single(Op::Conv2d(conv(2, 0, 1)), &[vec![4, 64, 64, 32], vec![2, 2, 32, 64]])?,
    ));
    let pool = PoolGeometry {
        kind: PoolKind::Max,
        size: (2, 2),
        stride: (2, 2),
        pad: Pad2d::default(),
    };
    v.push((
        "max_pool2d".into(),
        "b32 30x30x32".into(),
        single(Op::Pool2d(pool), &[vec![32, 30, 30, 32]])?,
    ));
    v.push((
        "max_pool2d_backprop".into(),
        "b32 30x30x32".into(),
        single(Op::Pool2dBackprop(pool), &[vec![32, 30, 30, 32], vec![32, 15, 15, 32]])?,
    ));
    v.push((
        "log_softmax".into(),
        "32x10".into(),
        single(Op::LogSoftmax, &[vec![32, 10]])?,
    ));
    v.push((
        "softmax".into(),
        "256x1000".into(),
        single(Op::Softmax, &[vec![256, 1000]])?,
    ));
    v.push((
        "batch_norm".into(),
        "b32 16x16x64".into(),
        single(
            Op::BatchNormInference { epsilon: 1e-3 },
            &[vec![32, 16, 16, 64], vec![64], vec![64], vec![64], vec![64]],
        )?,
    ));
    // Batch-norm training statistics: a channel mean over N, H and W at the SSD-lite
    // detector's shapes (batch 16, 256 px): 24 channels at 64x64, 48 at 32x32.
    for (h, c) in [(64usize, 24usize), (32, 48)] {
        v.push((
            "reduce_mean (batch-norm statistics)".into(),
            format!("b16 {h}x{h}x{c} -> {c}"),
            single(
                Op::Reduce {
                    op: fovea_graph::ir::ReduceOp::Mean,
                    axes: vec![0, 1, 2],
                    keep_dims: false,
                },
                &[vec![16, h, h, c]],
            )?,
        ));
    }
    v.push((
        "relu".into(),
        "4M".into(),
        single(Op::Unary(UnaryOp::Relu), &[vec![1 << 22]])?,
    ));
    // Softmax cross-entropy of the seed models' logits and its gradient (fused kernels).
    let mut g = Graph::new();
    let logits = g.input("x", TensorType::f32(vec![128, 10]))?;
    let labels = g.param("labels", &[128, 10], false, "bench")?;
    let dloss = g.param("dloss", &[128], false, "bench")?;
    let loss = g.push(Op::SoftmaxCrossEntropy, &[logits, labels], "bench")?;
    let grad = g.push(Op::SoftmaxCrossEntropyGrad, &[logits, labels, dloss], "bench")?;
    g.outputs = vec![loss, grad];
    v.push(("softmax cross-entropy + grad".into(), "128x10".into(), g));
    v.push((
        "add (broadcast bias)".into(),
        "b32 30x30x32 + 32".into(),
        single(Op::Binary(BinaryOp::Add), &[vec![32, 30, 30, 32], vec![32]])?,
    ));
    // The Adam update of all ten tensors of the seed CIFAR model (122,570 values): one
    // multi-tensor dispatch writing weights and moments in place.
    let mut g = Graph::new();
    let lr = g.input("lr", TensorType::f32(vec![1]))?;
    let sizes: [&[usize]; 10] = [
        &[3, 3, 3, 32],
        &[32],
        &[3, 3, 32, 64],
        &[64],
        &[3, 3, 64, 64],
        &[64],
        &[1024, 64],
        &[64],
        &[64, 10],
        &[10],
    ];
    for (i, shape) in sizes.iter().enumerate() {
        // (The gradients live in the state too: one buffer, as the arena holds them in a step.)
        let gr = g.param(&format!("g{i}"), shape, false, "bench")?;
        let p = g.param(&format!("p{i}"), shape, true, "bench")?;
        let m = g.param(&format!("m{i}"), shape, false, "bench")?;
        let vv = g.param(&format!("v{i}"), shape, false, "bench")?;
        let (np, ns) = Optimizer::adam(0.001).update(&mut g, p, gr, &[m, vv], lr, lr)?;
        g.updates.extend([(p, np), (m, ns[0]), (vv, ns[1])]);
    }
    v.push((
        "adam update (multi-tensor)".into(),
        "10 tensors, 122570 values".into(),
        fovea_graph::passes::optimize(g)?.0,
    ));
    Ok(v)
}

/// Seeded inputs for a bench graph, by input name: `boxes` (the NMS cases) as boxes
/// `(xmin, ymin, xmax, ymax)` of 2-30% of a unit image's side, so that neighbours overlap and
/// suppress each other as a detector's candidates do; every other input uniform in [0, 1)
/// (scores spread across the NMS score threshold).
pub fn bench_inputs(graph: &Graph, seed: u64) -> Vec<(String, Vec<f32>)> {
    let mut rng = fovea_graph::init::Rng::new(seed);
    graph
        .inputs
        .iter()
        .filter_map(|&i| match &graph.node(i).op {
            Op::Input { name } => Some((name.clone(), graph.shape(i).iter().product::<usize>())),
            _ => None,
        })
        .map(|(name, n)| {
            let data: Vec<f32> = if name == "boxes" {
                (0..n / 4)
                    .flat_map(|_| {
                        let (w, h) = (rng.uniform_in(0.02, 0.3), rng.uniform_in(0.02, 0.3));
                        let (x, y) = (rng.uniform_in(0.0, 1.0 - w), rng.uniform_in(0.0, 1.0 - h));
                        [x, y, x + w, y + h].map(|v| v as f32)
                    })
                    .collect()
            } else {
                (0..n).map(|_| rng.uniform() as f32).collect()
            };
            (name, data)
        })
        .collect()
}

/// Wall time of the CPU reference interpreter (f64) on `graph` with `inputs`: the median of
/// `samples` runs.
pub fn reference_time(graph: &Graph, inputs: &[(String, Vec<f32>)], samples: usize) -> Result<Duration> {
    let feeds: fovea_graph::interp::Feeds = inputs
        .iter()
        .map(|(n, d)| (n.clone(), d.iter().map(|&v| v as f64).collect()))
        .collect();
    let mut times = Vec::new();
    for _ in 0..samples.max(1) {
        let t = Instant::now();
        fovea_graph::interp::evaluate(graph, &feeds).map_err(EngineError::from)?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// Median time of one run of `program`, recording `per` runs per submit, over `samples` submits
/// after one warm-up submit: device time between GPU timestamps where the adapter has
/// timestamp queries, else wall time around the submit and a full device wait.
pub fn time_program(program: &Program, per: usize, samples: usize) -> Result<Duration> {
    program.time_runs(1)?;
    let mut times: Vec<Duration> = (0..samples.max(1))
        .map(|_| {
            let t = match program.gpu_time_runs(per)? {
                Some(t) => t,
                None => program.time_runs(per)?,
            };
            Ok(t / per as u32)
        })
        .collect::<Result<_>>()?;
    times.sort();
    Ok(times[times.len() / 2])
}

/// How [`time_program`] times on `device`: `"GPU timestamps"` or `"wall clock"`.
pub fn timing_method(device: &Device) -> &'static str {
    if device
        .info()
        .features
        .iter()
        .any(|f| f == "TIMESTAMP_QUERY_INSIDE_ENCODERS")
    {
        "GPU timestamps"
    } else {
        "wall clock (submit to device idle)"
    }
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
    /// With profiling: each kernel's time per step, largest first.
    pub profile: Vec<KernelShare>,
    /// With profiling: each kernel's share of the first step, run one dispatch at a time,
    /// largest first (on lavapipe mostly the driver's compile at a pipeline's first dispatch).
    pub first_run: Vec<KernelShare>,
    /// Seconds the cold compile spent tuning GEMM tiles (within the device's budget).
    pub tuning_seconds: f64,
    /// What the cold compile tuned: per problem, the table's tile, the winner and all timings.
    pub tuned: std::collections::BTreeMap<String, crate::tuning::TunedGemm>,
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
    bench_step_with(model, batch, cfg, steps, false)
}

/// [`bench_step`], and with `profile` also each kernel's share of the step
/// ([`StepBench::profile`], every dispatch timed on its own).
pub fn bench_step_with(
    model: &Model,
    batch: usize,
    cfg: &CompileConfig,
    steps: usize,
    profile: bool,
) -> Result<StepBench> {
    let dir = std::env::temp_dir().join(format!("fovea-bench-cache-{}-{}", std::process::id(), batch));
    let _ = std::fs::remove_dir_all(&dir);
    let cold_device = Arc::new(Device::with_cache_dir(Some(dir.clone()))?);
    let start = Instant::now();
    let (program, cold) = step_program(&cold_device, model, batch, cfg)?;
    feed_random(&program, model)?;
    let (lr, alpha) = cfg.optimizer.hyper(0);
    program.set_input(LEARNING_RATE, &[lr])?;
    program.set_input(STEP_SIZE, &[alpha])?;
    for name in program.input_names().iter().filter(|n| n.ends_with("/seed")) {
        program.set_input(name, &[1.0])?;
    }
    // Profiling runs the first step one dispatch at a time, to see which kernels the driver's
    // first-dispatch compile (lavapipe's LLVM JIT) spends the first step on.
    let first_run = if profile {
        shares(&program, &program.first_run_each()?)
    } else {
        program.time_runs(1)?;
        Vec::new()
    };
    let first = start.elapsed();
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps.max(1) {
        times.push(program.time_runs(1)?);
    }
    times.sort();
    let median = times[times.len() / 2];
    let dispatches = program.dispatch_count();
    let profile = if profile {
        shares(&program, &program.profile(3)?)
    } else {
        Vec::new()
    };
    let tuning_seconds = cold_device.tuner().spent().as_secs_f64();
    let tuned = cold_device.tuner().entries();
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
        profile,
        first_run,
        tuning_seconds,
        tuned,
    })
}

/// Uniform random values in every input of a training step: the model's inputs and the loss
/// targets (a one-hot class per sample for a single-output classifier), leaving the
/// learning-rate, step-size and seed inputs to the caller.
fn feed_random(program: &Program, model: &Model) -> Result<()> {
    let mut rng = fovea_graph::init::Rng::new(1);
    let outputs = model.output_names();
    let classifier_target = (outputs.len() == 1).then(|| target_input(&outputs[0]));
    let graph = program.graph();
    for (&id, name) in graph.inputs.iter().zip(program.input_names()) {
        if name == LEARNING_RATE || name == STEP_SIZE || name.ends_with("/seed") {
            continue;
        }
        let shape = graph.shape(id);
        let n: usize = shape.iter().product();
        let data: Vec<f32> = if Some(&name) == classifier_target.as_ref() && shape.len() == 2 {
            let classes = shape[1].max(1);
            let mut y = vec![0f32; n];
            for row in 0..shape[0] {
                y[row * classes + rng.below(classes)] = 1.0;
            }
            y
        } else {
            (0..n).map(|_| rng.uniform() as f32).collect()
        };
        if graph.ty(id).dtype == fovea_graph::ir::DType::I32 {
            let ints: Vec<f32> = data.iter().map(|v| (v * 2.0).floor()).collect();
            program.set_input_i32(&name, &ints.iter().map(|v| *v as i32).collect::<Vec<_>>())?;
        } else {
            program.set_input(&name, &data)?;
        }
    }
    Ok(())
}

/// One kernel's share of a step: its dispatches' total time.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KernelShare {
    /// The kernel's name and its node's layer and output shape (one row for each).
    pub kernel: String,
    /// Dispatches of it per step.
    pub dispatches: usize,
    /// Their total time per step, in milliseconds (each dispatch timed on its own).
    pub ms: f64,
    /// FLOPs of those dispatches.
    pub flops: u64,
}

/// Per-dispatch `times` of `program` (in dispatch order) summed per kernel and layer, largest
/// first.
fn shares(program: &Program, times: &[(String, Duration)]) -> Vec<KernelShare> {
    let mut rows: Vec<KernelShare> = Vec::new();
    for ((name, t), k) in times.iter().zip(program.kernels()) {
        let layer = program.graph().node(k.node).layer.clone();
        let shape = program.graph().shape(k.node).to_vec();
        let name = &format!("{name} [{layer} {shape:?}]");
        match rows.iter_mut().find(|r| &r.kernel == name) {
            Some(r) => {
                r.dispatches += 1;
                r.ms += t.as_secs_f64() * 1e3;
                r.flops += k.flops;
            }
            None => rows.push(KernelShare {
                kernel: name.clone(),
                dispatches: 1,
                ms: t.as_secs_f64() * 1e3,
                flops: k.flops,
            }),
        }
    }
    rows.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    rows
}
