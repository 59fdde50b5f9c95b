//! Times the structural ops' cases of `fovea bench kernels` (batched-matmul Gram matrices,
//! SSD-sized top-k and gather, instance norm) without the rest of the kernel suite.
//!
//! `cargo run --release --example bench_structural [-- FILTER]` (FILTER: a substring of the
//! case name, default all structural cases)

use fovea::engine::bench::{bench_cases, time_program, timing_method};
use fovea::engine::{Device, DeviceState, Program};
use std::sync::Arc;

fn main() -> anyhow::Result<()> {
    let filter = std::env::args().nth(1);
    let device = Arc::new(Device::new()?);
    println!("adapter: {}; timed with {}", device.describe(), timing_method(&device));
    let structural = ["batched_matmul", "top_k", "instance_norm"];
    for (name, shape, g) in bench_cases(false)? {
        let wanted = match &filter {
            Some(f) => name.contains(f.as_str()),
            None => structural.iter().any(|s| name.starts_with(s)),
        };
        if !wanted {
            continue;
        }
        let state = DeviceState::new(&device);
        let p = Program::compile_exact(&device, g, &state)?;
        let flops: u64 = p.kernels().iter().map(|k| k.flops).sum();
        let bytes: u64 = p.kernels().iter().map(|k| k.bytes).sum();
        let secs = time_program(&p, 2, 3)?.as_secs_f64();
        let names: Vec<&str> = p.kernels().iter().map(|k| k.name.as_str()).collect();
        println!(
            "{name:<28} {shape:<16} {:>9.3} ms {:>8.2} GFLOP/s {:>8.2} GB/s  {}",
            secs * 1e3,
            flops as f64 / secs / 1e9,
            bytes as f64 / secs / 1e9,
            names.join(",")
        );
    }
    Ok(())
}
