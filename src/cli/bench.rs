//! `fovea bench kernels` and `fovea bench step MODEL`: kernel throughput against the adapter's
//! measured peaks, and training-step throughput with cold and warm compile times.

use anyhow::Context;
use fovea_engine::bench::{
    bench_cases, bench_inputs, bench_step_with, measure_peak, reference_time, time_program, timing_method,
};
use fovea_engine::{Device, DeviceState, Program};
use fovea_graph::train::{CompileConfig, Loss, Metric, Optimizer};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;

/// `fovea bench kernels`.
pub fn kernels(
    json_out: Option<PathBuf>,
    large: bool,
    only: &[String],
    profile: bool,
    tuning: bool,
) -> anyhow::Result<()> {
    let device = Arc::new(if tuning && std::env::var_os("FOVEA_TUNE_BUDGET_MS").is_none() {
        Device::with_tuning(
            fovea_engine::pipelines::default_cache_dir(),
            std::time::Duration::from_secs(120),
        )?
    } else {
        Device::new()?
    });
    eprintln!("measuring peaks on {} ...", device.describe());
    let peak = measure_peak(&device)?;
    println!(
        "adapter: {} ({}, {})",
        device.info().name,
        device.info().backend,
        device.info().driver_info
    );
    println!(
        "peak: {:.1} GFLOP/s f32 FMA, {:.1} GB/s copy; kernels timed with {} (median of 5)",
        peak.gflops,
        peak.gbytes_per_second,
        timing_method(&device)
    );
    println!(
        "{:<36} {:<22} {:>10} {:>14} {:>8}  kernels",
        "kernel", "shape", "time", "throughput", "% peak"
    );
    let mut rows = Vec::new();
    let cases: Vec<_> = bench_cases(large)?
        .into_iter()
        .filter(|(name, shape, _)| {
            only.is_empty()
                || only
                    .iter()
                    .any(|o| name.contains(o.as_str()) || shape.contains(o.as_str()))
        })
        .collect();
    if cases.is_empty() {
        anyhow::bail!(
            "--only {}: no benchmark case matches (see `fovea bench kernels` for the list)",
            only.join(",")
        );
    }
    for (name, shape, g) in cases {
        let state = DeviceState::new(&device);
        let p = Program::compile_exact(&device, g.clone(), &state)?;
        let inputs = bench_inputs(&g, 1);
        for (n, d) in &inputs {
            p.set_input(n, d)?;
        }
        let flops: u64 = p.kernels().iter().map(|k| k.flops).sum();
        let bytes: u64 = p.kernels().iter().map(|k| k.bytes).sum();
        let t = time_program(&p, 3, 5)?;
        let secs = t.as_secs_f64();
        // Compute-bound kernels (at least one FLOP per byte) in GFLOP/s, the others in GB/s.
        let (tp, unit, pct) = if flops >= bytes.max(1) {
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
        if profile && p.kernels().len() > 1 {
            for (k, t) in p.profile(3)? {
                println!("{:<36} {:<22} {:>8.3}ms  {k}", "", "", t.as_secs_f64() * 1e3);
            }
        }
        // NMS beside the CPU reference it is tested against (the interpreter, f64).
        let reference_ms = if name.contains("nms") {
            let r = reference_time(&g, &inputs, 3)?.as_secs_f64() * 1e3;
            println!("{:<36} {shape:<22} {r:>8.3}ms  (CPU reference interpreter, f64)", "");
            Some(r)
        } else {
            None
        };
        rows.push(json!({"kernel": name, "shape": shape, "ms": secs * 1e3, "throughput": tp, "unit": unit, "percent_of_peak": pct, "flops": flops, "bytes": bytes, "instances": names, "reference_ms": reference_ms}));
    }
    if tuning {
        print_tuning(device.tuner());
    }
    if let Some(path) = json_out {
        let j = json!({"adapter": device.info().name, "backend": device.info().backend, "driver": device.info().driver_info,
            "peak_gflops": peak.gflops, "peak_gbytes_per_second": peak.gbytes_per_second, "timing": timing_method(&device), "kernels": rows,
            "tuning": tuning.then(|| device.tuner().entries())});
        write_json(&path, &j)?;
    }
    Ok(())
}

/// The tuning cache as a table: per GEMM, the static tile, the winner, the speedup and every
/// candidate's best time.
fn print_tuning(tuner: &fovea_engine::tuning::Tuner) {
    let entries = tuner.entries();
    println!();
    match tuner.path() {
        Some(p) => println!(
            "tuning cache {} ({} problems; {:.1} s tuned in this run)",
            p.display(),
            entries.len(),
            tuner.spent().as_secs_f64()
        ),
        None => println!("tuning cache: none (FOVEA_TUNE=0 or no cache directory)"),
    }
    if entries.is_empty() {
        return;
    }
    println!(
        "{:<58} {:>8} {:<16} {:<16} {:>7}  candidates (best ms)",
        "GEMM", "MFLOP", "static tile", "chosen", "speedup"
    );
    for (key, e) in &entries {
        let all: Vec<String> = e.timings.iter().map(|(l, ms)| format!("{l}: {ms:.3}")).collect();
        println!(
            "{key:<58} {:>8.1} {:<16} {:<16} {:>6.2}x  {}",
            e.flops as f64 / 1e6,
            e.default,
            e.chosen,
            e.speedup(),
            all.join(" | ")
        );
    }
}

fn write_json(path: &std::path::Path, v: &serde_json::Value) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(v)?).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// `fovea bench step MODEL`.
pub fn step(
    model: &str,
    batch_size: usize,
    steps: usize,
    json_out: Option<PathBuf>,
    augment: Option<&str>,
    workers: usize,
    profile: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(batch_size > 0, "--batch-size must be positive");
    if let Some(spec) = augment {
        fovea_models::data::arrays::parse_array_augment(spec)?;
        anyhow::ensure!(
            matches!(model, "mnist" | "cifar10"),
            "--augment needs a seed model with embedded images (mnist, cifar10), not {model}"
        );
    }
    let (m, cfg) = match fovea_models::tasks::bench::task_model(model)? {
        Some(task) => task,
        None => (
            super::graph::load_model(model)?,
            CompileConfig::new(
                Loss::SparseCategoricalCrossentropy { from_logits: true },
                Optimizer::adam(0.001),
                vec![Metric::Accuracy],
            ),
        ),
    };
    eprintln!("benchmarking the {model} training step at batch {batch_size} ({steps} steps) ...");
    let r = bench_step_with(&m, batch_size, &cfg, steps, profile)?;
    let m = match fovea_models::tasks::bench::task_model(model)? {
        Some((m, _)) => m,
        None => super::graph::load_model(model)?,
    };
    println!("adapter: {} ({}, {})", r.adapter, r.backend, r.driver);
    println!(
        "{model} training step, batch {batch_size}: {:.1} ms/step median, {:.0} images/s, {} dispatches",
        r.median_ms_per_step, r.images_per_second, r.dispatches
    );
    println!(
        "first step (compile + run): {:.2} s; compile cold {:.2} s, warm (disk pipeline cache) {:.2} s",
        r.first_step_seconds, r.compile_seconds_cold, r.compile_seconds_warm
    );
    let changed: Vec<String> = r
        .tuned
        .iter()
        .filter(|(_, e)| e.chosen != e.default)
        .map(|(k, e)| format!("{k}: {} -> {} ({:.2}x)", e.default, e.chosen, e.speedup()))
        .collect();
    println!(
        "tuning (cold compile): {:.2} s, {} GEMMs timed, {} moved off the static table{}",
        r.tuning_seconds,
        r.tuned.len(),
        changed.len(),
        if changed.is_empty() {
            String::new()
        } else {
            format!(":\n  {}", changed.join("\n  "))
        }
    );
    if profile {
        let total: f64 = r.first_run.iter().map(|k| k.ms).sum();
        println!(
            "kernels by their share of the first step (one dispatch at a time, the driver's compile \
             included: {total:.1} ms in all):"
        );
        print_shares(&r.first_run, total);
        let total: f64 = r.profile.iter().map(|k| k.ms).sum();
        println!("kernels by their share of the step (each dispatch timed alone: {total:.1} ms in all):");
        print_shares(&r.profile, total);
    }
    let mut v = serde_json::to_value(&r)?;
    v["model"] = json!(model);
    if let Some(spec) = augment {
        v["streaming"] = streaming(model, m, &cfg, batch_size, steps, spec, workers)?;
    }
    if let Some(path) = json_out {
        write_json(&path, &v)?;
    }
    Ok(())
}

/// The same step fed by the streaming pipeline (`--augment`): the embedded training images of a
/// seed model, augmented on `workers` threads while the device runs, against the same images
/// fed from memory; both as `fit` epochs of `steps` steps. Reports images/s and the time the
/// training loop waited for data (when the device may have idled).
fn streaming(
    model: &str,
    m: fovea_graph::Model,
    cfg: &CompileConfig,
    batch: usize,
    steps: usize,
    spec: &str,
    workers: usize,
) -> anyhow::Result<serde_json::Value> {
    use fovea_engine::{CompiledModel, FitOptions, Targets, Verbosity};
    use fovea_models::data::{arrays, cifar, mnist};
    anyhow::ensure!(workers > 0, "--workers must be positive");
    let pipeline = arrays::parse_array_augment(spec)?;
    let data = match model {
        "cifar10" => cifar::embedded(cifar::Split::Train)?,
        "mnist" => mnist::embedded(mnist::Split::Train)?,
        _ => anyhow::bail!("--augment needs a seed model with embedded images (mnist, cifar10), not {model}"),
    }
    .take(batch * steps.max(1));
    let (input, output) = (m.input_names()[0].clone(), m.output_names()[0].clone());
    let stream = Arc::new(arrays::ArrayStream::new(data.clone(), pipeline, &input, &output)?);
    let device = Arc::new(Device::new()?);
    let mut cm = CompiledModel::new(&device, m, cfg.clone())?;
    let opts = FitOptions {
        epochs: 1,
        batch_size: batch,
        workers,
        verbosity: Verbosity::Silent,
        ..FitOptions::default()
    };
    // One warm-up epoch compiles the step; then plain and streamed epochs alternate, twice.
    cm.fit(&data.images, &Targets::Classes(data.labels.clone()), &opts)?;
    let mut rows = Vec::new();
    for round in 0..2 {
        let plain = cm.fit(&data.images, &Targets::Classes(data.labels.clone()), &opts)?;
        let streamed = cm.fit_dataset(stream.clone(), &opts)?;
        for (what, h) in [("in memory", &plain), ("streamed, augmented", &streamed)] {
            let e = &h.epochs[0];
            println!(
                "{what:>20}: {:.0} images/s, waited {:.0} ms for data ({:.1}% of the epoch) [round {}]",
                e.images_per_second,
                1e3 * e.data_wait_seconds,
                100.0 * e.data_wait_seconds / e.seconds.max(1e-9),
                round + 1
            );
            rows.push(
                json!({"feed": what, "round": round + 1, "images_per_second": e.images_per_second,
                "data_wait_seconds": e.data_wait_seconds, "seconds": e.seconds}),
            );
        }
    }
    Ok(json!({"augment": spec, "workers": workers, "images": data.len(), "epochs": rows}))
}

/// `fovea bench tflite M.tflite`: inference time of an imported model at each batch size, a
/// whole `run` (upload, every dispatch, readback) as the median of `runs`, after one warm-up.
/// `tools/pretrained/bench_litert.py` times LiteRT on the same inputs for comparison.
/// The model `fovea bench tflite` times: a `.tflite` file, or one of face-api's two models
/// (`face-api-descriptor`, `face-api-detector`) from the cache of `tools/pretrained/fetch.sh`.
fn pretrained_model(model: &std::path::Path) -> anyhow::Result<fovea_graph::Model> {
    use fovea_models::zoo::face_api;
    Ok(match model.to_str() {
        Some("face-api-descriptor") => face_api::descriptor(&face_api::default_dir())?,
        Some("face-api-detector") => face_api::ssd_detector(&face_api::default_dir())?.model,
        _ => fovea_formats::tflite::load(model)?,
    })
}

pub fn tflite(
    model: &std::path::Path,
    batch_sizes: &[usize],
    runs: usize,
    json_out: Option<PathBuf>,
) -> anyhow::Result<()> {
    anyhow::ensure!(runs > 0, "--runs must be positive");
    anyhow::ensure!(
        !batch_sizes.is_empty() && batch_sizes.iter().all(|&b| b > 0),
        "--batch-sizes must list positive batch sizes, got {batch_sizes:?}"
    );
    let m = pretrained_model(model)?;
    let device = Arc::new(Device::new()?);
    println!(
        "adapter: {} ({}, {})",
        device.info().name,
        device.info().backend,
        device.info().driver_info
    );
    let state = DeviceState::new(&device);
    state.upload(&m.params)?;
    let per: usize = m.input_shapes().iter().map(|s| s.iter().product::<usize>()).sum();
    let mut rows = Vec::new();
    for &b in batch_sizes {
        let t0 = std::time::Instant::now();
        let p = Program::compile_with_state(&device, m.graph(b)?, &state)?;
        let compile = t0.elapsed().as_secs_f64();
        let x: Vec<f32> = (0..b * per).map(|i| ((i * 7919) % 251) as f32 / 251.0).collect();
        p.run(&[&x])?;
        let mut times: Vec<f64> = (0..runs)
            .map(|_| {
                let t = std::time::Instant::now();
                p.run(&[&x]).map(|_| t.elapsed().as_secs_f64() * 1e3)
            })
            .collect::<Result<_, _>>()?;
        times.sort_by(f64::total_cmp);
        let ms = times[times.len() / 2];
        println!(
            "{} batch {b}: {ms:.1} ms per run median of {runs} ({:.1} ms per sample, {:.1} samples/s), {} dispatches, compile {compile:.2} s",
            model.display(),
            ms / b as f64,
            1e3 * b as f64 / ms,
            p.dispatch_count()
        );
        rows.push(json!({"batch": b, "ms_per_run": ms, "ms_per_sample": ms / b as f64, "dispatches": p.dispatch_count(), "compile_seconds": compile}));
    }
    if let Some(path) = json_out {
        let j = json!({"model": model.display().to_string(), "adapter": device.info().name, "backend": device.info().backend,
            "driver": device.info().driver_info, "runs": runs, "results": rows});
        write_json(&path, &j)?;
    }
    Ok(())
}

/// The 15 largest of `rows` (out of `total` ms): ms, share, GFLOP/s, dispatches, kernel.
fn print_shares(rows: &[fovea_engine::bench::KernelShare], total: f64) {
    println!("{:>9} {:>6} {:>10} {:>5}  kernel", "ms", "share", "GFLOP/s", "runs");
    for k in rows.iter().take(15) {
        let gflops = if k.ms > 0.0 { k.flops as f64 / k.ms / 1e6 } else { 0.0 };
        println!(
            "{:>9.2} {:>5.1}% {:>10.2} {:>5}  {}",
            k.ms,
            100.0 * k.ms / total.max(1e-9),
            gflops,
            k.dispatches,
            k.kernel
        );
    }
}
