//! Times every dispatch of a seed model's training step on its own and prints the slowest.
//!
//! `cargo run --release --example profile_step -- [mnist|cifar10] [batch]`

use fovea::engine::{Device, DeviceState, Program};
use fovea::graph::train::{CompileConfig, Loss, Metric, Optimizer, train_step};
use std::sync::Arc;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map_or("mnist", String::as_str);
    let batch: usize = args.get(2).map_or(Ok(32), |b| b.parse())?;
    let device = Arc::new(Device::new()?);
    let model = fovea::models::zoo::by_name(name, 1)?;
    let cfg = CompileConfig::new(
        Loss::SparseCategoricalCrossentropy { from_logits: true },
        Optimizer::adam(0.001),
        vec![Metric::Accuracy],
    );
    let step = train_step(&model, batch, &cfg)?;
    let state = DeviceState::new(&device);
    state.upload(&model.params)?;
    state.upload(&step.slots)?;
    let start = Instant::now();
    let program = Program::compile_with_state(&device, step.graph, &state)?;
    println!(
        "{} on {}: compiled in {:.2?}, {} dispatches",
        name,
        device.describe(),
        start.elapsed(),
        program.dispatch_count()
    );
    let whole = program.time_runs(5)? / 5;
    println!(
        "whole step: {whole:.2?} ({:.0} images/s)",
        batch as f64 / whole.as_secs_f64()
    );
    let mut profile: Vec<(usize, String, std::time::Duration, u64)> = program
        .profile(5)?
        .into_iter()
        .zip(program.kernels())
        .enumerate()
        .map(|(i, ((n, d), k))| (i, n, d, k.flops))
        .collect();
    let total: std::time::Duration = profile.iter().map(|p| p.2).sum();
    println!("sum of dispatches timed alone: {total:.2?}");
    profile.sort_by_key(|p| std::cmp::Reverse(p.2));
    for (i, n, d, flops) in profile.iter().take(20) {
        let gflops = *flops as f64 / d.as_secs_f64() / 1e9;
        println!(
            "{:>9.3} ms  #{i:<4} {n:<44} {gflops:>6.2} GFLOP/s",
            d.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
