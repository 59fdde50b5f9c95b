//! Reading device buffers back to the host.

use crate::device::Device;
use crate::error::Result;

/// Waits for the device and maps `staging` (a `MAP_READ` buffer), returning its first `n` floats.
pub(crate) fn map_read(device: &Device, staging: &wgpu::Buffer, n: usize) -> Result<Vec<f32>> {
    let slice = staging.slice(..);
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    device
        .device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| device.failure("waiting for results", e))?;
    rx.recv()
        .map_err(|e| device.failure("reading results back", e))?
        .map_err(|e| device.failure("mapping results", e))?;
    let out = {
        let view = slice
            .get_mapped_range()
            .map_err(|e| device.failure("mapping results", e))?;
        bytemuck::cast_slice::<u8, f32>(&view)[..n].to_vec()
    };
    staging.unmap();
    device.take_error()?;
    Ok(out)
}

/// Copies `n` floats of `buffer` from byte `offset` through a temporary staging buffer to the
/// host.
pub(crate) fn read_buffer(device: &Device, buffer: &wgpu::Buffer, offset: u64, n: usize) -> Result<Vec<f32>> {
    let size = (n.max(1) * 4) as u64;
    let staging = device.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = device.device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("readback"),
    });
    enc.copy_buffer_to_buffer(buffer, offset, &staging, 0, size);
    device.queue.submit([enc.finish()]);
    map_read(device, &staging, n)
}
