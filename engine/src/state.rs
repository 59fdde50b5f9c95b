//! Device-resident state: parameters and optimizer slots, one buffer per name, shared by every
//! program of a model (the training step at each batch size, evaluation, prediction) so they
//! all see the same weights without copies through the host.

use crate::device::Device;
use crate::error::{EngineError, Result};
use fovea_graph::model::ParamStore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Named device buffers holding parameters and optimizer state.
pub struct DeviceState {
    device: Arc<Device>,
    buffers: Mutex<HashMap<String, (wgpu::Buffer, usize)>>,
}

impl std::fmt::Debug for DeviceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.buffers.lock().map(|b| b.len()).unwrap_or(0);
        f.debug_struct("DeviceState").field("tensors", &n).finish()
    }
}

impl DeviceState {
    /// An empty state on `device`.
    pub fn new(device: &Arc<Device>) -> Arc<DeviceState> {
        Arc::new(DeviceState {
            device: device.clone(),
            buffers: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, (wgpu::Buffer, usize)>>> {
        self.buffers
            .lock()
            .map_err(|_| EngineError::Device("state lock poisoned".into()))
    }

    /// The buffer of `name` holding `numel` floats, created (zeroed) on first use.
    pub(crate) fn buffer(&self, name: &str, numel: usize) -> Result<wgpu::Buffer> {
        let mut map = self.lock()?;
        if let Some((b, n)) = map.get(name) {
            if *n != numel {
                return Err(EngineError::Input {
                    what: name.to_string(),
                    message: format!("state holds {n} values, a program needs {numel}"),
                });
            }
            return Ok(b.clone());
        }
        let b = self.device.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(name),
            size: (numel.max(1) * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        map.insert(name.to_string(), (b.clone(), numel));
        Ok(b)
    }

    /// Whether a tensor of this name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.buffers.lock().map(|m| m.contains_key(name)).unwrap_or(false)
    }

    /// Uploads every tensor of `store` (creating buffers as needed).
    pub fn upload(&self, store: &ParamStore) -> Result<()> {
        for p in store.iter() {
            let b = self.buffer(&p.name, p.value.numel())?;
            self.device
                .queue
                .write_buffer(&b, 0, bytemuck::cast_slice(&p.value.data));
        }
        Ok(())
    }

    /// Reads every tensor of `store` that this state holds back into `store`.
    pub fn download(&self, store: &mut ParamStore) -> Result<()> {
        let names: Vec<(String, usize)> = store.iter().map(|p| (p.name.clone(), p.value.numel())).collect();
        for (name, n) in names {
            let buf = match self.lock()?.get(&name) {
                Some((b, _)) => b.clone(),
                None => continue,
            };
            let data = crate::readback::read_buffer(&self.device, &buf, n)?;
            if let Some(p) = store.get(&name) {
                let t = fovea_graph::Tensor {
                    shape: p.value.shape.clone(),
                    data,
                };
                store.set(&name, t)?;
            }
        }
        Ok(())
    }
}
