//! A compiled program: a graph lowered to kernel instances, with a device buffer per stored
//! tensor, a bind group per dispatch, and every dispatch of a run recorded into one command
//! encoder. Parameters live in a [`DeviceState`] that several programs can share; the graph's
//! `updates` are copied into it at the end of each run.

use crate::device::Device;
use crate::error::{EngineError, Result};
use crate::pipelines::CompiledKernel;
use crate::readback::map_read;
use crate::state::DeviceState;
use fovea_graph::ir::{Graph, NodeId, Op, fmt_shape};
use fovea_graph::model::ParamStore;
use fovea_graph::plan::{MemoryPlan, plan_memory};
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
    state: Arc<DeviceState>,
    graph: Graph,
    kernels: Vec<KernelInstance>,
    buffers: Vec<Option<wgpu::Buffer>>,
    dispatches: Vec<Dispatch>,
    readback: Vec<wgpu::Buffer>,
    plan: MemoryPlan,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("nodes", &self.graph.nodes.len())
            .field("dispatches", &self.dispatches.len())
            .finish()
    }
}

fn byte_len(graph: &Graph, id: NodeId) -> u64 {
    (graph.ty(id).size_bytes().max(4) as u64).div_ceil(4) * 4
}

impl Program {
    /// Lowers `graph` for `device` with a state of its own.
    pub fn compile(device: &Arc<Device>, graph: Graph) -> Result<Program> {
        Self::compile_with_state(device, graph, &DeviceState::new(device))
    }

    /// Optimises `graph` (the passes of [`fovea_graph::passes::optimize`]; `FOVEA_OPT=0` turns
    /// them off), lowers it for `device`, compiles (or reuses) every kernel and allocates
    /// buffers; parameters are the buffers of `state`, by name.
    pub fn compile_with_state(device: &Arc<Device>, graph: Graph, state: &Arc<DeviceState>) -> Result<Program> {
        let optimize = !std::env::var("FOVEA_OPT").is_ok_and(|v| v == "0");
        let (optimized, reports) = if optimize {
            fovea_graph::passes::optimize(graph.clone())?
        } else {
            (graph.clone(), vec![])
        };
        let program = Self::compile_exact(device, optimized, state)?;
        device.pipelines.save();
        if let Some(dir) = crate::dump::dump_dir() {
            crate::dump::write_program(&dir, &graph, &program.graph, &reports, &program.kernels, &program.plan);
        }
        Ok(program)
    }

    /// Lowers `graph` exactly as given (no passes).
    pub fn compile_exact(device: &Arc<Device>, graph: Graph, state: &Arc<DeviceState>) -> Result<Program> {
        let kernels = fovea_kernels::lower_graph(&graph, device.target())?;
        let dev = &device.device;
        let plan = plan_memory(&graph);
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
        let slots: Vec<wgpu::Buffer> = plan
            .slots
            .iter()
            .enumerate()
            .map(|(i, &size)| {
                let label = format!("slot {i}");
                dev.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&label),
                    size,
                    usage,
                    mapped_at_creation: false,
                })
            })
            .collect();
        let mut buffers: Vec<Option<wgpu::Buffer>> = (0..graph.nodes.len()).map(|_| None).collect();
        let need = |id: NodeId, buffers: &mut Vec<Option<wgpu::Buffer>>| -> Result<()> {
            let root = storage_root(&graph, id);
            if buffers[root.index()].is_none() {
                let node = graph.node(root);
                buffers[root.index()] = Some(match (&node.op, plan.slot_of[root.index()]) {
                    (Op::Param { name, .. }, _) => state.buffer(name, node.ty.numel())?,
                    (_, Some(s)) => slots[s].clone(),
                    _ => dev.create_buffer(&wgpu::BufferDescriptor {
                        label: Some(&format!("{} {}", node.layer, node.op.name())),
                        size: byte_len(&graph, root),
                        usage,
                        mapped_at_creation: false,
                    }),
                });
            }
            Ok(())
        };
        for (i, n) in graph.nodes.iter().enumerate() {
            if matches!(n.op, Op::Input { .. } | Op::Param { .. }) {
                need(NodeId(i as u32), &mut buffers)?;
            }
        }
        for &o in &graph.outputs {
            need(o, &mut buffers)?;
        }
        for &(p, v) in &graph.updates {
            if !matches!(graph.node(p).op, Op::Param { .. }) {
                return Err(EngineError::Input {
                    what: format!("update of {p}"),
                    message: "only parameters can be updated".into(),
                });
            }
            need(p, &mut buffers)?;
            need(v, &mut buffers)?;
        }
        for k in &kernels {
            for b in &k.bindings {
                let BufferRef::Node(id) = b.buffer;
                need(id, &mut buffers)?;
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
                    let buf = buffers[storage_root(&graph, id).index()]
                        .as_ref()
                        .expect("buffer allocated above");
                    let size = std::num::NonZeroU64::new(byte_len(&graph, storage_root(&graph, id)));
                    wgpu::BindGroupEntry {
                        binding: i as u32,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: buf,
                            offset: 0,
                            size,
                        }),
                    }
                })
                .collect();
            let bind_group = dev.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&k.name),
                layout: &compiled.layout,
                entries: &entries,
            });
            dispatches.push(Dispatch {
                kernel: compiled,
                bind_group,
                workgroups: k.workgroups,
            });
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
        Ok(Program {
            device: device.clone(),
            state: state.clone(),
            graph,
            kernels,
            buffers,
            dispatches,
            readback,
            plan,
        })
    }

    /// The graph this program runs.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The device state holding this program's parameters.
    pub fn state(&self) -> &Arc<DeviceState> {
        &self.state
    }

    /// The kernel instances, in dispatch order.
    pub fn kernels(&self) -> &[KernelInstance] {
        &self.kernels
    }

    /// The memory plan the buffers follow (slots, planned vs baseline bytes).
    pub fn memory_plan(&self) -> &MemoryPlan {
        &self.plan
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
                message: format!(
                    "expected {} values for shape {}, got {}",
                    ty.numel(),
                    fmt_shape(&ty.shape),
                    data.len()
                ),
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
        let (id, _) = self
            .graph
            .params()
            .find(|(_, n)| *n == name)
            .ok_or_else(|| EngineError::Input {
                what: name.to_string(),
                message: "no parameter of this name in the program".into(),
            })?;
        self.write(id, name, data)
    }

    /// The names of the graph's inputs, in feeding order.
    pub fn input_names(&self) -> Vec<String> {
        self.graph
            .inputs
            .iter()
            .map(|&i| match &self.graph.node(i).op {
                Op::Input { name } => name.clone(),
                _ => format!("{i}"),
            })
            .collect()
    }

    /// Uploads the input named `name` (queued before the next submit).
    pub fn set_input(&self, name: &str, data: &[f32]) -> Result<()> {
        let id = self
            .graph
            .inputs
            .iter()
            .copied()
            .find(|&i| matches!(&self.graph.node(i).op, Op::Input { name: n } if n == name))
            .ok_or_else(|| EngineError::Input {
                what: name.to_string(),
                message: "the program has no input of this name".into(),
            })?;
        self.write(id, name, data)
    }

    /// Records every dispatch, then the state updates, into `enc`.
    pub fn encode(&self, enc: &mut wgpu::CommandEncoder) {
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("fovea"),
                timestamp_writes: None,
            });
            for d in &self.dispatches {
                pass.set_pipeline(&d.kernel.pipeline);
                pass.set_bind_group(0, &d.bind_group, &[]);
                pass.dispatch_workgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
            }
        }
        self.encode_updates(enc);
    }

    /// Records the copies of the state updates into `enc`.
    pub fn encode_updates(&self, enc: &mut wgpu::CommandEncoder) {
        for &(p, v) in &self.graph.updates {
            if let (Some(dst), Some(src)) = (self.buffer(p), self.buffer(v)) {
                if dst != src {
                    enc.copy_buffer_to_buffer(src, 0, dst, 0, byte_len(&self.graph, p));
                }
            }
        }
    }

    /// The NaN/Inf tripwire: runs the dispatches one at a time, reads each kernel's output back
    /// and stops at the first that holds a NaN or an infinity, naming the node, its layer and
    /// the kernel. State updates are not applied (call [`Program::encode_updates`] after).
    /// Slow: one submit and one readback per dispatch.
    pub fn run_checked(&self) -> Result<()> {
        for (d, k) in self.dispatches.iter().zip(&self.kernels) {
            let mut enc = self
                .device
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("checked") });
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("checked"),
                    timestamp_writes: None,
                });
                pass.set_pipeline(&d.kernel.pipeline);
                pass.set_bind_group(0, &d.bind_group, &[]);
                pass.dispatch_workgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
            }
            self.device.queue.submit([enc.finish()]);
            let Some(buf) = self.buffer(k.node) else { continue };
            let values = crate::readback::read_buffer(&self.device, buf, self.graph.ty(k.node).numel())?;
            if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                let node = self.graph.node(k.node);
                return Err(EngineError::Numerics {
                    node: format!("{} {}", k.node, node.op.name()),
                    layer: node.layer.clone(),
                    kernel: k.name.clone(),
                    message: format!("element {i} of {} is {v}", node.ty),
                });
            }
        }
        Ok(())
    }

    /// Records a copy of output `index` into `dst` at byte `offset`.
    pub fn copy_output(&self, enc: &mut wgpu::CommandEncoder, index: usize, dst: &wgpu::Buffer, offset: u64) {
        if let Some(src) = self.graph.outputs.get(index).and_then(|&o| self.buffer(o)) {
            enc.copy_buffer_to_buffer(src, 0, dst, offset, byte_len(&self.graph, self.graph.outputs[index]));
        }
    }

    /// Records the program `iters` times into one encoder, submits, waits for the device and
    /// returns the wall time (for benchmarks; inputs and parameters keep their current values).
    pub fn time_runs(&self, iters: usize) -> Result<std::time::Duration> {
        let mut enc = self
            .device
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("bench") });
        for _ in 0..iters {
            self.encode(&mut enc);
        }
        let start = std::time::Instant::now();
        self.device.queue.submit([enc.finish()]);
        self.device.check()?;
        Ok(start.elapsed())
    }

    /// Times every dispatch on its own (`iters` repetitions in one submit, after one warm-up
    /// run) and returns `(kernel name, mean time per dispatch)` in dispatch order.
    pub fn profile(&self, iters: usize) -> Result<Vec<(String, std::time::Duration)>> {
        self.time_runs(1)?;
        let mut out = Vec::with_capacity(self.dispatches.len());
        for (d, k) in self.dispatches.iter().zip(&self.kernels) {
            let mut enc = self
                .device
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("profile") });
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("profile"),
                    timestamp_writes: None,
                });
                pass.set_pipeline(&d.kernel.pipeline);
                pass.set_bind_group(0, &d.bind_group, &[]);
                for _ in 0..iters.max(1) {
                    pass.dispatch_workgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
                }
            }
            let start = std::time::Instant::now();
            self.device.queue.submit([enc.finish()]);
            self.device.check()?;
            out.push((k.name.clone(), start.elapsed() / iters.max(1) as u32));
        }
        Ok(out)
    }

    /// Runs the program on `inputs` (one slice per graph input, in order) and reads back every
    /// output. All dispatches go into one command encoder and one submit.
    pub fn run(&self, inputs: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
        if inputs.len() != self.graph.inputs.len() {
            return Err(EngineError::Input {
                what: "inputs".into(),
                message: format!(
                    "the program takes {} inputs, got {}",
                    self.graph.inputs.len(),
                    inputs.len()
                ),
            });
        }
        for ((&id, name), data) in self.graph.inputs.iter().zip(self.input_names()).zip(inputs) {
            self.write(id, &name, data)?;
        }
        let mut enc = self
            .device
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("fovea run"),
            });
        self.encode(&mut enc);
        for (i, rb) in self.readback.iter().enumerate() {
            self.copy_output(&mut enc, i, rb, 0);
        }
        self.device.queue.submit([enc.finish()]);
        self.graph
            .outputs
            .iter()
            .zip(&self.readback)
            .map(|(&o, rb)| map_read(&self.device, rb, self.graph.ty(o).numel()))
            .collect()
    }
}
