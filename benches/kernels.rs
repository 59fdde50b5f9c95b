//! Per-kernel throughput on the adapter `Device::new()` picks, for every kernel family over
//! the cases of `fovea bench kernels` (`fovea_engine::bench::bench_cases`): square and odd
//! matmuls, the seed CNN's convolutions forward and backward at batch 32 and 128, depthwise,
//! pooling, softmax, softmax cross-entropy, batch norm, elementwise, the multi-tensor Adam
//! update, and the structural ops (Gram-matrix batched matmul, SSD-sized top-k and gather,
//! instance norm). Each measurement records the program many times into one command buffer
//! (`iter_custom`) and takes the device time between GPU timestamps where the adapter has
//! timestamp queries, else the wall time to device idle; throughput is FLOPs as criterion's
//! element count (bytes for memory-bound kernels).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fovea::engine::bench::bench_cases;
use fovea::engine::{Device, DeviceState, Program};
use std::sync::Arc;
use std::time::Duration;

fn kernels(c: &mut Criterion) {
    let device = Arc::new(Device::new().expect("adapter"));
    eprintln!("benchmarking on {}", device.describe());
    let mut group = c.benchmark_group("kernels");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for (family, shape, graph) in bench_cases(false).expect("cases") {
        let state = DeviceState::new(&device);
        let program = Program::compile_exact(&device, graph, &state).expect("compile");
        let flops: u64 = program.kernels().iter().map(|k| k.flops).sum();
        let bytes: u64 = program.kernels().iter().map(|k| k.bytes).sum();
        // Compute-bound kernels (at least one FLOP per byte) count FLOPs, the others bytes.
        group.throughput(if flops >= bytes.max(1) {
            Throughput::Elements(flops)
        } else {
            Throughput::Bytes(bytes)
        });
        group.bench_function(format!("{family} {shape}"), |b| {
            b.iter_custom(|iters| match program.gpu_time_runs(iters as usize).expect("run") {
                Some(t) => t,
                None => program.time_runs(iters as usize).expect("run"),
            });
        });
    }
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
