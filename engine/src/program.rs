//! A compiled program: a graph lowered to kernel instances, with one device buffer per stored
//! tensor, a bind group per dispatch, and all dispatches recorded into one command encoder per
//! run.

use crate::device::Device;
use crate::error::{EngineError, Result};
use crate::pipelines::CompiledKernel;
use fovea_graph::ir::{Graph, NodeId, Op, fmt_shape};
use fovea_graph::model::ParamStore;
use fovea_kernels::{BufferRef, KernelInstance, storage_root};
use std::sync::Arc;

struct Dispatch {
    kernel: Arc<CompiledKernel>,
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 3],
}

/// A graph compiled for one device: buffers allocated, pipelines built, bind groups made.
pub struct Program {
    device: Arc<Device>,
    graph: Graph,
    kernels: Vec<KernelInstance>,
    buffers: Vec<Option<wgpu::Buffer>>,
    dispatches: Vec<Dispatch>,
    readback: Vec<wgpu::Buffer>,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program").field("nodes", &self.graph.nodes.len()).field("dispatches", &self.dispatches.len()).finish()
    }
}

fn byte_len(graph: &Graph, id: NodeId) -> u64 {
    (graph.ty(id).size_bytes().max(4) as u64).div_ceil(4) * 4
}

impl Program {
    /// Lowers `graph` for `device`, compiles (or reuses) every kernel and allocates buffers.
    pub fn compile(device: &Arc<Device>, graph: Graph) -> Result<Program> {
        let kernels = fovea_kernels::lower_graph(&graph, device.target())?;
        let dev = &device.device;
        let mut buffers: Vec<Option<wgpu::Buffer>> = (0..graph.nodes.len()).map(|_| None).collect();
        let need = |id: NodeId, buffers: &mut Vec<Option<wgpu::Buffer>>| {
            let root = storage_root(&graph, id);
            if buffers[root.index()].is_none() {
                let node = graph.node(root);
                buffers[root.index()] = Some(dev.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("{} {}", node.layer, node.op.name())),
                    size: byte_len(&graph, root),
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                }));
            }
            root
        };
        for (i, n) in graph.nodes.iter().enumerate() {
            if matches!(n.op, Op::Input { .. } | Op::Param { .. }) {
                need(NodeId(i as u32), &mut buffers);
            }
        }
        for &o in &graph.outputs {
            need(o, &mut buffers);
        }
        for k in &kernels {
            for b in &k.bindings {
                let BufferRef::Node(id) = b.buffer;
                need(id, &mut buffers);
            }
        }
        let scope = dev.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut dispatches = Vec::with_capacity(kernels.len());
        for k in &kernels {
            let compiled = device.pipelines.get(k)?;
            let entries: Vec<wgpu::BindGroupEntry> = k
                .bindings
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let BufferRef::Node(id) = b.buffer;
                    let buf = buffers[storage_root(&graph, id).index()].as_ref().expect("buffer allocated above");
                    wgpu::BindGroupEntry { binding: i as u32, resource: buf.as_entire_binding() }
                })
                .collect();
            let bind_group = dev.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&k.name),
                layout: &compiled.layout,
                entries: &entries,
            });
            dispatches.push(Dispatch { kernel: compiled, bind_group, workgroups: k.workgroups });
        }
        let readback = graph
            .outputs
            .iter()
            .map(|&o| {
                dev.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("readback"),
                    size: byte_len(&graph, o),
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })
            .collect();
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(EngineError::Device(format!("while building the program: {e}")));
        }
        Ok(Program { device: device.clone(), graph, kernels, buffers, dispatches, readback })
    }

    /// The graph this program runs.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The kernel instances, in dispatch order.
    pub fn kernels(&self) -> &[KernelInstance] {
        &self.kernels
    }

    /// Number of dispatches per run.
    pub fn dispatch_count(&self) -> usize {
        self.dispatches.len()
    }

    fn buffer(&self, id: NodeId) -> Option<&wgpu::Buffer> {
        self.buffers[storage_root(&self.graph, id).index()].as_ref()
    }

    fn write(&self, id: NodeId, what: &str, data: &[f32]) -> Result<()> {
        let ty = self.graph.ty(id);
        if data.len() != ty.numel() {
            return Err(EngineError::Input {
                what: what.to_string(),
                message: format!("expected {} values for shape {}, got {}", ty.numel(), fmt_shape(&ty.shape), data.len()),
            });
        }
        if let Some(b) = self.buffer(id) {
            self.device.queue.write_buffer(b, 0, bytemuck::cast_slice(data));
        }
        Ok(())
    }

    /// Uploads the value of every parameter of the graph from `params` (by Keras name).
    pub fn load_params(&self, params: &ParamStore) -> Result<()> {
        for (id, name) in self.graph.params() {
            let p = params.get(name).ok_or_else(|| EngineError::Input {
                what: name.to_string(),
                message: "the program needs this parameter but the store has none".into(),
            })?;
            self.write(id, name, &p.value.data)?;
        }
        Ok(())
    }

    /// Sets one parameter by name.
    pub fn set_param(&self, name: &str, data: &[f32]) -> Result<()> {
        let (id, _) = self.graph.params().find(|(_, n)| *n == name).ok_or_else(|| EngineError::Input {
            what: name.to_string(),
            message: "no parameter of this name in the program".into(),
        })?;
        self.write(id, name, data)
    }

    /// Runs the program on `inputs` (one slice per graph input, in order) and reads back every
    /// output. All dispatches go into one command encoder and one submit.
    pub fn run(&self, inputs: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
        if inputs.len() != self.graph.inputs.len() {
            return Err(EngineError::Input {
                what: "inputs".into(),
                message: format!("the program takes {} inputs, got {}", self.graph.inputs.len(), inputs.len()),
            });
        }
        for (&id, data) in self.graph.inputs.iter().zip(inputs) {
            let name = match &self.graph.node(id).op {
                Op::Input { name } => name.clone(),
                _ => format!("{id}"),
            };
            self.write(id, &name, data)?;
        }
        let dev = &self.device.device;
        let mut enc = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("fovea run") });
        {
            let mut pass =
                enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("fovea"), timestamp_writes: None });
            for d in &self.dispatches {
                pass.set_pipeline(&d.kernel.pipeline);
                pass.set_bind_group(0, &d.bind_group, &[]);
                pass.dispatch_workgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
            }
        }
        for (&o, rb) in self.graph.outputs.iter().zip(&self.readback) {
            if let Some(src) = self.buffer(o) {
                enc.copy_buffer_to_buffer(src, 0, rb, 0, rb.size());
            }
        }
        self.device.queue.submit([enc.finish()]);
        let outs = self.graph.outputs.iter().zip(&self.readback).map(|(&o, rb)| self.read(rb, self.graph.ty(o).numel())).collect();
        self.device.take_error()?;
        outs
    }

    fn read(&self, buffer: &wgpu::Buffer, n: usize) -> Result<Vec<f32>> {
        let slice = buffer.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| EngineError::Device(format!("waiting for results: {e}")))?;
        rx.recv()
            .map_err(|_| EngineError::Device("readback was dropped".into()))?
            .map_err(|e| EngineError::Device(format!("mapping results: {e}")))?;
        let out = {
            let view = slice.get_mapped_range().map_err(|e| EngineError::Device(format!("mapping results: {e}")))?;
            bytemuck::cast_slice::<u8, f32>(&view)[..n].to_vec()
        };
        buffer.unmap();
        Ok(out)
    }
}
