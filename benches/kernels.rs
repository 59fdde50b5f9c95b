//! Per-kernel throughput on the adapter `Device::new()` picks: square matmuls and the seed
//! CIFAR-10 CNN's layers at batch 32. Each measurement records the kernel many times into one
//! command buffer and waits for the device (criterion's `iter_custom`), so the numbers are
//! device time plus one submit, reported as FLOP/s (criterion's element throughput = FLOPs).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fovea::engine::{Device, Program};
use fovea::graph::ir::*;
use std::sync::Arc;
use std::time::Duration;

fn graph_of(op: Op, shapes: &[Vec<usize>]) -> Graph {
    let mut g = Graph::new();
    let mut ids = vec![g.input("x", TensorType::f32(shapes[0].clone())).expect("input")];
    for (i, s) in shapes[1..].iter().enumerate() {
        ids.push(g.param(&format!("p{i}"), s, true, "bench").expect("param"));
    }
    let y = g.push(op, &ids, "bench").expect("op");
    g.outputs.push(y);
    g
}

fn bench_graph(c: &mut Criterion, device: &Arc<Device>, name: &str, g: Graph) {
    let program = Program::compile(device, g).expect("compile");
    let flops: u64 = program.kernels().iter().map(|k| k.flops).sum();
    let mut group = c.benchmark_group("kernels");
    group.throughput(Throughput::Elements(flops.max(1)));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| program.time_runs(iters as usize).expect("run"));
    });
    group.finish();
}

fn kernels(c: &mut Criterion) {
    let device = Arc::new(Device::new().expect("adapter"));
    eprintln!("benchmarking on {}", device.describe());
    for n in [128usize, 256, 512, 1024] {
        let g = graph_of(
            Op::MatMul {
                trans_a: false,
                trans_b: false,
            },
            &[vec![n, n], vec![n, n]],
        );
        bench_graph(c, &device, &format!("matmul_{n}x{n}x{n}"), g);
    }
    let conv = |stride| ConvGeometry {
        stride: (stride, stride),
        dilation: (1, 1),
        pad: Pad2d::default(),
        groups: 1,
    };
    for (name, x, w) in [
        ("conv2d_seed1_b32", vec![32, 32, 32, 3], vec![3, 3, 3, 32]),
        ("conv2d_seed2_b32", vec![32, 15, 15, 32], vec![3, 3, 32, 64]),
        ("conv2d_seed3_b32", vec![32, 6, 6, 64], vec![3, 3, 64, 64]),
    ] {
        bench_graph(c, &device, name, graph_of(Op::Conv2d(conv(1)), &[x, w]));
    }
}

criterion_group!(benches, kernels);
criterion_main!(benches);
