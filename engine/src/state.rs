//! Device-resident state: parameters and optimizer slots, shared by every program of a model
//! (the training step at each batch size, evaluation, prediction) so they all see the same
//! weights without copies through the host.
//!
//! Tensors are packed into a few chunk buffers at aligned offsets: every tensor a program
//! adds is placed in one new chunk ([`DeviceState::reserve`]), so a training step's
//! parameters and optimizer slots share one buffer and a multi-tensor kernel can update them
//! all in one dispatch.

use crate::device::Device;
use crate::error::{EngineError, Result};
use fovea_graph::model::ParamStore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Where a state tensor lives.
#[derive(Debug, Clone)]
pub(crate) struct StateLoc {
    /// The chunk buffer.
    pub buffer: wgpu::Buffer,
    /// Byte offset in the chunk.
    pub offset: u64,
    /// Number of floats.
    pub numel: usize,
}

/// Named device tensors holding parameters and optimizer state.
pub struct DeviceState {
    device: Arc<Device>,
    tensors: Mutex<HashMap<String, StateLoc>>,
}

impl std::fmt::Debug for DeviceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.tensors.lock().map(|b| b.len()).unwrap_or(0);
        f.debug_struct("DeviceState").field("tensors", &n).finish()
    }
}

impl DeviceState {
    /// An empty state on `device`.
    pub fn new(device: &Arc<Device>) -> Arc<DeviceState> {
        Arc::new(DeviceState {
            device: device.clone(),
            tensors: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, StateLoc>>> {
        self.tensors
            .lock()
            .map_err(|_| EngineError::Device("state lock poisoned".into()))
    }

    /// Places every tensor of `wanted` (name, floats) the state does not hold yet, in order,
    /// at aligned offsets of new zeroed chunk buffers (one, unless they exceed the largest
    /// buffer a kernel may bind whole); checks the size of those it holds.
    pub(crate) fn reserve(&self, wanted: &[(&str, usize)]) -> Result<()> {
        let mut map = self.lock()?;
        let limits = self.device.device.limits();
        let align = (limits.min_storage_buffer_offset_alignment as u64).max(4);
        let cap = limits.max_buffer_size.min(limits.max_storage_buffer_binding_size);
        // (name, floats, byte offset) of the chunk being filled; finished chunks with sizes.
        type Placed<'a> = Vec<(&'a str, usize, u64)>;
        let mut new: Placed = Vec::new();
        let mut chunks: Vec<(Placed, u64)> = Vec::new();
        let mut end = 0u64;
        for &(name, numel) in wanted {
            if let Some(loc) = map.get(name) {
                if loc.numel != numel {
                    return Err(EngineError::Input {
                        what: name.to_string(),
                        message: format!("state holds {} values, a program needs {numel}", loc.numel),
                    });
                }
                continue;
            }
            if new.iter().any(|&(n, ..)| n == name) {
                continue;
            }
            let bytes = (numel.max(1) as u64 * 4).div_ceil(align) * align;
            if end > 0 && end + bytes > cap {
                chunks.push((std::mem::take(&mut new), end));
                end = 0;
            }
            new.push((name, numel, end));
            end += bytes;
        }
        if !new.is_empty() {
            chunks.push((new, end));
        }
        for (members, size) in chunks {
            let buffer = self.device.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(&format!("state ({} tensors)", members.len())),
                size,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            for (name, numel, offset) in members {
                map.insert(
                    name.to_string(),
                    StateLoc {
                        buffer: buffer.clone(),
                        offset,
                        numel,
                    },
                );
            }
        }
        Ok(())
    }

    /// The location of `name` holding `numel` floats, placed (zeroed) on first use.
    pub(crate) fn buffer(&self, name: &str, numel: usize) -> Result<StateLoc> {
        self.reserve(&[(name, numel)])?;
        self.lock()?
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::Device(format!("state lost {name}")))
    }

    /// Whether a tensor of this name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.lock().map(|m| m.contains_key(name)).unwrap_or(false)
    }

    /// Uploads every tensor of `store` (placing tensors as needed).
    pub fn upload(&self, store: &ParamStore) -> Result<()> {
        let wanted: Vec<(&str, usize)> = store.iter().map(|p| (p.name.as_str(), p.value.numel())).collect();
        self.reserve(&wanted)?;
        for p in store.iter() {
            let loc = self.buffer(&p.name, p.value.numel())?;
            self.device
                .queue
                .write_buffer(&loc.buffer, loc.offset, bytemuck::cast_slice(&p.value.data));
        }
        Ok(())
    }

    /// Every tensor the state holds (parameters and optimizer slots), sorted by name, read
    /// back from the device: what a training checkpoint saves.
    pub fn snapshot(&self) -> Result<Vec<(String, Vec<f32>)>> {
        let mut locs: Vec<(String, StateLoc)> = self.lock()?.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        locs.sort_by(|a, b| a.0.cmp(&b.0));
        locs.into_iter()
            .map(|(name, loc)| {
                let data = crate::readback::read_buffer(&self.device, &loc.buffer, loc.offset, loc.numel)?;
                Ok((name, data))
            })
            .collect()
    }

    /// Overwrites the held tensor `name` with `data` (same length), as a checkpoint restores it.
    pub fn restore(&self, name: &str, data: &[f32]) -> Result<()> {
        let loc = self.lock()?.get(name).cloned().ok_or_else(|| EngineError::Input {
            what: name.to_string(),
            message: "the checkpoint holds a tensor this model's training step does not have".into(),
        })?;
        if loc.numel != data.len() {
            return Err(EngineError::Input {
                what: name.to_string(),
                message: format!("checkpoint holds {} values, the model needs {}", data.len(), loc.numel),
            });
        }
        self.device
            .queue
            .write_buffer(&loc.buffer, loc.offset, bytemuck::cast_slice(data));
        Ok(())
    }

    /// Names of every held tensor.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .tensors
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Reads every tensor of `store` that this state holds back into `store`.
    pub fn download(&self, store: &mut ParamStore) -> Result<()> {
        let names: Vec<(String, usize)> = store.iter().map(|p| (p.name.clone(), p.value.numel())).collect();
        for (name, n) in names {
            let loc = match self.lock()?.get(&name) {
                Some(l) => l.clone(),
                None => continue,
            };
            let data = crate::readback::read_buffer(&self.device, &loc.buffer, loc.offset, n)?;
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
