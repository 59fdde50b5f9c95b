//! Every `fovea bench kernels` case whose name or shape contains FILTER, timed once per GEMM tile
//! given (labels as `fovea bench kernels --tuning` prints them, e.g. `"8x64 t8x8 b4"`), each
//! forced on every GEMM of the case that it can run; `table` is the static table's choice.
//!
//! ```sh
//! cargo run --release --example tile_sweep -- 1024x1024 table "8x64 t8x8 b4" "16x16 t2x16 b4"
//! ```

use fovea::engine::bench::{bench_cases, bench_inputs, time_program};
use fovea::engine::{Device, DeviceState, Program};
use fovea::kernels::gemm::GemmTile;
use fovea::kernels::tiles::TileChoices;
use std::sync::Arc;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let filter = args.next().unwrap_or_default();
    let labels: Vec<String> = args.collect();
    let device = Arc::new(Device::new()?);
    println!("adapter: {}", device.describe());
    for (name, shape, graph) in bench_cases(false)? {
        if !format!("{name} {shape}").contains(filter.as_str()) {
            continue;
        }
        for label in &labels {
            let choices = if label == "table" {
                TileChoices::none()
            } else {
                let tile = GemmTile::parse(label).ok_or_else(|| anyhow::anyhow!("tile label '{label}'"))?;
                TileChoices::forcing_any(tile)
            };
            let state = DeviceState::new(&device);
            let program = Program::compile_with_tiles(&device, graph.clone(), &state, &choices)?;
            for (n, d) in &bench_inputs(&graph, 1) {
                program.set_input(n, d)?;
            }
            let t = time_program(&program, 3, 5)?;
            let flops: u64 = program.kernels().iter().map(|k| k.flops).sum();
            let kernels: Vec<_> = program.kernels().iter().map(|k| k.name.clone()).collect();
            println!(
                "{name:<28} {shape:<24} {label:<22} {:>9.3} ms {:>7.2} GFLOP/s  {}",
                t.as_secs_f64() * 1e3,
                flops as f64 / t.as_secs_f64() / 1e9,
                kernels.join(" ")
            );
        }
    }
    Ok(())
}
