//! The time of each kernel's first dispatch beside its second, for the `fovea bench kernels`
//! cases whose name or shape contains FILTER: on a driver that compiles a pipeline at its first
//! dispatch (lavapipe) the difference is the driver's compile. Run it with Mesa's shader cache
//! off to see a cold machine:
//!
//! ```sh
//! MESA_SHADER_CACHE_DISABLE=true cargo run --release --example first_dispatch -- depthwise
//! ```

use fovea::engine::bench::bench_cases;
use fovea::engine::{Device, DeviceState, Program};
use std::sync::Arc;

fn main() -> anyhow::Result<()> {
    let filter = std::env::args().nth(1).unwrap_or_default();
    let device = Arc::new(Device::new()?);
    println!("adapter: {}", device.describe());
    for (name, shape, graph) in bench_cases(false)? {
        if !format!("{name} {shape}").contains(filter.as_str()) {
            continue;
        }
        let state = DeviceState::new(&device);
        let program = Program::compile_exact(&device, graph, &state)?;
        let first = program.first_run_each()?;
        let second = program.first_run_each()?;
        for ((kernel, a), (_, b)) in first.iter().zip(&second) {
            println!(
                "{name:<36} {shape:<28} {kernel:<44} first {:>8.1} ms, second {:>7.2} ms",
                a.as_secs_f64() * 1e3,
                b.as_secs_f64() * 1e3
            );
        }
    }
    Ok(())
}
