//! `fovea info`: the adapter Fovea would use.

use fovea_engine::Device;

/// Prints the adapter's name, backend, type, key limits and features.
pub fn run(json: bool) -> anyhow::Result<()> {
    let device = Device::new()?;
    let info = device.info();
    if json {
        println!("{}", serde_json::to_string_pretty(info)?);
        return Ok(());
    }
    println!("adapter:     {}", info.name);
    println!("backend:     {}", info.backend);
    println!("device type: {}", info.device_type);
    println!("driver:      {} ({})", info.driver, info.driver_info);
    if info.fell_back_to_gl {
        println!(
            "note:        no Vulkan/Metal/DX12 adapter was found; using OpenGL (install mesa-vulkan-drivers for lavapipe)"
        );
    }
    println!("limits:");
    for (k, v) in &info.limits {
        println!("  {k:<40} {v}");
    }
    println!(
        "features:    {}",
        if info.features.is_empty() {
            "none".to_string()
        } else {
            info.features.join(", ")
        }
    );
    Ok(())
}
