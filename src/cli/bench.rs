//! `fovea bench kernels` and `fovea bench step MODEL`: kernel throughput against the adapter's
//! measured peaks, and training-step throughput with cold and warm compile times.

use anyhow::Context;
use fovea_engine::bench::{bench_step, measure_peak, time_program};
use fovea_engine::{Device, DeviceState, Program};
use fovea_graph::ir::*;
use fovea_graph::train::{CompileConfig, Loss, Metric, Optimizer};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;

fn single(op: Op, shapes: &[Vec<usize>]) -> anyhow::Result<Graph> {
    let mut g = Graph::new();
    let mut ids = vec![g.input("x", TensorType::f32(shapes[0].clone()))?];
    for (i, s) in shapes[1..].iter().enumerate() {
        ids.push(g.param(&format!("p{i}"), s, true, "bench")?);
    }
    let y = g.push(op, &ids, "bench")?;
    g.outputs.push(y);
    Ok(g)
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

/// The kernel cases: (name, shape description, graph).
fn cases(large: bool) -> anyhow::Result<Vec<(String, String, Graph)>> {
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
    // The seed CIFAR-10 CNN's convolutions at batch 32 and 128: forward, data and filter gradients.
    for batch in [32usize, 128] {
        for (name, h, c, o) in [
            ("conv1", 32usize, 3usize, 32usize),
            ("conv2", 15, 32, 64),
            ("conv3", 6, 64, 64),
        ] {
            let oh = h - 2;
            let shape = format!("b{batch} {h}x{h}x{c}->{o}");
            v.push((
                format!("conv2d {name}"),
                shape.clone(),
                single(Op::Conv2d(conv(1, 0, 1)), &[vec![batch, h, h, c], vec![3, 3, c, o]])?,
            ));
            v.push((
                format!("conv2d_backprop_input {name}"),
                shape.clone(),
                single(
                    Op::Conv2dBackpropInput {
                        geom: conv(1, 0, 1),
                        input_hw: (h, h),
                    },
                    &[vec![batch, oh, oh, o], vec![3, 3, c, o]],
                )?,
            ));
            v.push((
                format!("conv2d_backprop_filter {name}"),
                shape,
                single(
                    Op::Conv2dBackpropFilter {
                        geom: conv(1, 0, 1),
                        kernel_hw: (3, 3),
                    },
                    &[vec![batch, h, h, c], vec![batch, oh, oh, o]],
                )?,
            ));
        }
    }
    v.push((
        "depthwise conv2d".into(),
        "b32 32x32x64 3x3".into(),
        single(Op::Conv2d(conv(1, 1, 64)), &[vec![32, 32, 32, 64], vec![3, 3, 1, 64]])?,
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
    v.push((
        "relu".into(),
        "4M".into(),
        single(Op::Unary(UnaryOp::Relu), &[vec![1 << 22]])?,
    ));
    v.push((
        "add (broadcast bias)".into(),
        "b32 30x30x32 + 32".into(),
        single(Op::Binary(BinaryOp::Add), &[vec![32, 30, 30, 32], vec![32]])?,
    ));
    // The fused Adam update of the seed CIFAR model's largest weight (65,536 values).
    let mut g = Graph::new();
    let p = g.input("p", TensorType::f32(vec![65536]))?;
    let gr = g.param("g", &[65536], true, "bench")?;
    let m = g.param("m", &[65536], false, "bench")?;
    let vv = g.param("v", &[65536], false, "bench")?;
    let lr = g.param("lr", &[1], false, "bench")?;
    let (np, ns) = Optimizer::adam(0.001).update(&mut g, p, gr, &[m, vv], lr, lr)?;
    g.outputs = vec![np, ns[0], ns[1]];
    v.push((
        "adam update (fused)".into(),
        "65536".into(),
        fovea_graph::passes::optimize(g)?.0,
    ));
    Ok(v)
}

/// `fovea bench kernels`.
pub fn kernels(json_out: Option<PathBuf>, large: bool) -> anyhow::Result<()> {
    let device = Arc::new(Device::new()?);
    eprintln!("measuring peaks on {} ...", device.describe());
    let peak = measure_peak(&device)?;
    println!(
        "adapter: {} ({}, {})",
        device.info().name,
        device.info().backend,
        device.info().driver_info
    );
    println!(
        "peak: {:.1} GFLOP/s f32 FMA, {:.1} GB/s copy",
        peak.gflops, peak.gbytes_per_second
    );
    println!(
        "{:<36} {:<22} {:>10} {:>14} {:>8}  kernels",
        "kernel", "shape", "time", "throughput", "% peak"
    );
    let mut rows = Vec::new();
    for (name, shape, g) in cases(large)? {
        let state = DeviceState::new(&device);
        let p = Program::compile_exact(&device, g, &state)?;
        let flops: u64 = p.kernels().iter().map(|k| k.flops).sum();
        let bytes: u64 = p.kernels().iter().map(|k| k.bytes).sum();
        let t = time_program(&p, 3, 5)?;
        let secs = t.as_secs_f64();
        let (tp, unit, pct) = if flops > 0 {
            (
                flops as f64 / secs / 1e9,
                "GFLOP/s",
                100.0 * flops as f64 / secs / 1e9 / peak.gflops,
            )
        } else {
            (
                bytes as f64 / secs / 1e9,
                "GB/s",
                100.0 * bytes as f64 / secs / 1e9 / peak.gbytes_per_second,
            )
        };
        let names: Vec<String> = p.kernels().iter().map(|k| k.name.clone()).collect();
        println!(
            "{name:<36} {shape:<22} {:>8.3}ms {tp:>8.2} {unit:<7} {pct:>7.1}%  {}",
            secs * 1e3,
            names.join(",")
        );
        rows.push(json!({"kernel": name, "shape": shape, "ms": secs * 1e3, "throughput": tp, "unit": unit, "percent_of_peak": pct, "flops": flops, "bytes": bytes, "instances": names}));
    }
    if let Some(path) = json_out {
        let j = json!({"adapter": device.info().name, "backend": device.info().backend, "driver": device.info().driver_info,
            "peak_gflops": peak.gflops, "peak_gbytes_per_second": peak.gbytes_per_second, "kernels": rows});
        write_json(&path, &j)?;
    }
    Ok(())
}

fn write_json(path: &std::path::Path, v: &serde_json::Value) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(v)?).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// `fovea bench step MODEL`.
pub fn step(model: &str, batch_size: usize, steps: usize, json_out: Option<PathBuf>) -> anyhow::Result<()> {
    anyhow::ensure!(batch_size > 0, "--batch-size must be positive");
    let m = super::graph::load_model(model)?;
    let cfg = CompileConfig {
        loss: Loss::SparseCategoricalCrossentropy { from_logits: true },
        optimizer: Optimizer::adam(0.001),
        metrics: vec![Metric::Accuracy],
    };
    eprintln!("benchmarking the {model} training step at batch {batch_size} ({steps} steps) ...");
    let r = bench_step(&m, batch_size, &cfg, steps)?;
    println!("adapter: {} ({}, {})", r.adapter, r.backend, r.driver);
    println!(
        "{model} training step, batch {batch_size}: {:.1} ms/step median, {:.0} images/s, {} dispatches",
        r.median_ms_per_step, r.images_per_second, r.dispatches
    );
    println!(
        "first step (compile + run): {:.2} s; compile cold {:.2} s, warm (disk pipeline cache) {:.2} s",
        r.first_step_seconds, r.compile_seconds_cold, r.compile_seconds_warm
    );
    if let Some(path) = json_out {
        let mut v = serde_json::to_value(&r)?;
        v["model"] = json!(model);
        write_json(&path, &v)?;
    }
    Ok(())
}
