//! A compiled program: a graph lowered to kernel instances, with a device buffer per stored
//! tensor, a bind group per dispatch, and every dispatch of a run recorded into one command
//! encoder. Parameters live in a [`DeviceState`] that several programs can share; the graph's
//! `updates` are copied into it at the end of each run.

use crate::device::Device;
use crate::error::{EngineError, Result};
use crate::pipelines::CompiledKernel;
use crate::readback::map_read;
use crate::state::DeviceState;
use fovea_graph::ir::{DType, Graph, NodeId, Op, fmt_shape};
use fovea_graph::model::ParamStore;
use fovea_graph::plan::{MemoryPlan, PlanOptions, plan_memory_with};
use fovea_kernels::{BufferRef, KernelInstance, Location, fuse_updates, storage_root};
use std::sync::Arc;

struct Dispatch {
    kernel: Arc<CompiledKernel>,
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 3],
}

/// Where a tensor's bytes are: a byte range of a device buffer (an arena, a parameter's buffer
/// in the state, or an input's own buffer).
#[derive(Debug, Clone)]
pub(crate) struct Loc {
    pub(crate) buffer: wgpu::Buffer,
    pub(crate) offset: u64,
    pub(crate) size: u64,
}

/// How [`Program::compile_with_options`] compiles a graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileOptions {
    /// Run the graph passes (simplification, folding, CSE, fusion).
    pub optimize: bool,
    /// Let the memory plan compute elementwise nodes in place, write parameter updates
    /// straight into the state and fuse them into one multi-tensor dispatch.
    pub in_place: bool,
    /// Use the device's tuned GEMM tiles and tune the problems it has none for, within its
    /// budget ([`crate::tuning`]); off: the static tile table.
    pub tune: bool,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            optimize: true,
            in_place: true,
            tune: true,
        }
    }
}

impl CompileOptions {
    /// The defaults, with `FOVEA_OPT=0` turning the passes off, `FOVEA_IN_PLACE=0`
    /// in-place reuse and `FOVEA_TUNE=0` tuning.
    pub fn from_env() -> Self {
        let off = |var: &str| std::env::var(var).is_ok_and(|v| v == "0");
        CompileOptions {
            optimize: !off("FOVEA_OPT"),
            in_place: !off("FOVEA_IN_PLACE"),
            tune: crate::tuning::enabled_from_env(),
        }
    }

    /// Where a build with these options takes its GEMM tiles from.
    fn tiles(self) -> Tiles<'static> {
        if self.tune { Tiles::Tuned } else { Tiles::Static }
    }
}

/// Where a build takes its GEMM tiles from.
#[derive(Clone, Copy)]
enum Tiles<'a> {
    /// The static table.
    Static,
    /// The device's tuner (tuning what it has no choice for).
    Tuned,
    /// Given choices, no tuning.
    Given(&'a fovea_kernels::tiles::TileChoices),
}

/// A graph compiled for one device: buffers allocated, pipelines built, bind groups made.
pub struct Program {
    device: Arc<Device>,
    state: Arc<DeviceState>,
    graph: Graph,
    kernels: Vec<KernelInstance>,
    /// Per storage root: where its bytes are.
    locs: Vec<Option<Loc>>,
    dispatches: Vec<Dispatch>,
    readback: Vec<wgpu::Buffer>,
    plan: MemoryPlan,
    /// Bytes of the program's one scratch buffer (0: none).
    scratch_bytes: u64,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("nodes", &self.graph.nodes.len())
            .field("dispatches", &self.dispatches.len())
            .finish()
    }
}

/// Checks, before anything is allocated, that every tensor of `graph` fits in one buffer the
/// adapter can bind (`max_storage_buffer_binding_size`, and `max_buffer_size`); the error names
/// the tensor, its size and the limit.
fn check_fits(device: &Device, graph: &Graph) -> Result<()> {
    let limits = device.device.limits();
    let limit = (limits.max_storage_buffer_binding_size).min(limits.max_buffer_size);
    for (i, node) in graph.nodes.iter().enumerate() {
        if node.op.is_view() {
            continue;
        }
        let bytes = (node.ty.numel() as u64).saturating_mul(4);
        if bytes > limit {
            let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
            return Err(EngineError::Input {
                what: format!(
                    "tensor {} of layer '{}' ({} {})",
                    NodeId(i as u32),
                    node.layer,
                    node.op.name(),
                    fmt_shape(&node.ty.shape)
                ),
                message: format!(
                    "needs {:.1} MiB, but this adapter ({}) binds at most {:.1} MiB per buffer \
                     (max_storage_buffer_binding_size): use a smaller batch size or input size",
                    mib(bytes),
                    device.describe(),
                    mib(limit)
                ),
            });
        }
    }
    Ok(())
}

/// The memory a program may take on `device`, in bytes, and where that limit comes from:
/// `FOVEA_MEMORY_LIMIT_MB` if set; else, on a CPU adapter (lavapipe: device memory is host
/// memory), the host's available memory (`MemAvailable`, Linux); else none (wgpu reports no
/// device memory total for GPUs; their out-of-memory errors are caught when allocating).
fn memory_limit(device: &Device) -> Option<(u64, String)> {
    if let Ok(v) = std::env::var("FOVEA_MEMORY_LIMIT_MB") {
        return v
            .trim()
            .parse::<u64>()
            .ok()
            .map(|mb| (mb.saturating_mul(1 << 20), "FOVEA_MEMORY_LIMIT_MB".to_string()));
    }
    if device.info().device_type != "Cpu" {
        return None;
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some((
        kb.saturating_mul(1024),
        "the host's available memory (this adapter runs on the CPU)".to_string(),
    ))
}

/// Checks, before anything is allocated, that the program's buffers together (arenas, inputs,
/// constants, parameters and optimizer state, scratch) fit in [`memory_limit`]; the error
/// names the total, the largest arena and the limit.
fn check_total(device: &Device, graph: &Graph, arenas: &[u64], scratch: u64) -> Result<()> {
    let Some((limit, source)) = memory_limit(device) else {
        return Ok(());
    };
    let own: u64 = graph
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| matches!(n.op, Op::Input { .. } | Op::Constant { .. } | Op::Param { .. }))
        .map(|(i, _)| byte_len(graph, NodeId(i as u32)))
        .sum();
    let total = arenas.iter().sum::<u64>().saturating_add(own).saturating_add(scratch);
    if total <= limit {
        return Ok(());
    }
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    Err(EngineError::Input {
        what: format!("the program on {}", device.describe()),
        message: format!(
            "needs {:.1} MiB in all (intermediates {:.1} MiB in {} arenas, the largest {:.1} MiB; \
             inputs, constants and parameters {:.1} MiB), over the {:.1} MiB of {source}: use a smaller \
             batch size or input size",
            mib(total),
            mib(arenas.iter().sum()),
            arenas.len(),
            mib(arenas.iter().copied().max().unwrap_or(0)),
            mib(own),
            mib(limit)
        ),
    })
}

fn byte_len(graph: &Graph, id: NodeId) -> u64 {
    (graph.ty(id).size_bytes().max(4) as u64).div_ceil(4) * 4
}

impl Program {
    /// Lowers `graph` for `device` with a state of its own.
    pub fn compile(device: &Arc<Device>, graph: Graph) -> Result<Program> {
        Self::compile_with_state(device, graph, &DeviceState::new(device))
    }

    /// Optimises `graph` (the passes of [`fovea_graph::passes::optimize`]), lowers it for
    /// `device`, compiles (or reuses) every kernel and allocates buffers; parameters are the
    /// buffers of `state`, by name. `FOVEA_OPT=0` turns the passes off and `FOVEA_IN_PLACE=0`
    /// in-place reuse ([`CompileOptions::from_env`]).
    pub fn compile_with_state(device: &Arc<Device>, graph: Graph, state: &Arc<DeviceState>) -> Result<Program> {
        Self::compile_with_options(device, graph, state, CompileOptions::from_env())
    }

    /// [`Program::compile_with_state`] with explicit options.
    pub fn compile_with_options(
        device: &Arc<Device>,
        graph: Graph,
        state: &Arc<DeviceState>,
        options: CompileOptions,
    ) -> Result<Program> {
        let (optimized, reports) = if options.optimize {
            fovea_graph::passes::optimize(graph.clone())?
        } else {
            (graph.clone(), vec![])
        };
        let program = Self::build(device, optimized, state, options.in_place, options.tiles())?;
        device.pipelines.save();
        if let Some(dir) = crate::dump::dump_dir() {
            crate::dump::write_program(&dir, &graph, &program.graph, &reports, &program.kernels, &program.plan);
        }
        Ok(program)
    }

    /// The memory-plan options for `device`: its offset alignment and largest buffer.
    pub fn plan_options(device: &Device, in_place: bool) -> PlanOptions {
        let limits = device.device.limits();
        PlanOptions {
            align: (limits.min_storage_buffer_offset_alignment as u64).max(4),
            max_arena_bytes: limits.max_buffer_size,
            in_place,
        }
    }

    /// Lowers `graph` exactly as given (no passes; in-place reuse unless `FOVEA_IN_PLACE=0`).
    pub fn compile_exact(device: &Arc<Device>, graph: Graph, state: &Arc<DeviceState>) -> Result<Program> {
        let options = CompileOptions::from_env();
        Self::build(device, graph, state, options.in_place, options.tiles())
    }

    /// Like [`Program::compile_with_state`] (passes, in-place reuse), with GEMM tiles from
    /// `tiles` and no tuning: to run a chosen tile (tests run every tuning candidate against the
    /// reference this way). `tiles` records the GEMMs the lowering met.
    pub fn compile_with_tiles(
        device: &Arc<Device>,
        graph: Graph,
        state: &Arc<DeviceState>,
        tiles: &fovea_kernels::tiles::TileChoices,
    ) -> Result<Program> {
        let (optimized, _) = fovea_graph::passes::optimize(graph)?;
        Self::build(device, optimized, state, true, Tiles::Given(tiles))
    }

    /// Lowers `graph` as given. Intermediate tensors live in the arenas of the memory plan
    /// ([`fovea_graph::plan`]), allocated exactly as planned; inputs have buffers of their
    /// own, constants too (written once, here), and parameters are the state's. With `in_place`, elementwise nodes overwrite
    /// inputs that die there, parameter updates are written straight into the state, and
    /// those updates run as one multi-tensor dispatch. Kernels that need temporaries between
    /// their dispatches (the partials of a split-K GEMM on the GPU class) share ONE scratch
    /// buffer, sized for the largest [`KernelInstance::scratch_bytes`] of the program (none if
    /// every kernel needs 0; see [`Program::scratch_bytes`]): dispatches run in order with
    /// barriers between them, so no two nodes' temporaries are ever live at once.
    ///
    /// GEMM tiles come from `tiles`: with [`Tiles::Tuned`] the device's tuned tiles, after
    /// tuning those it has none for within its budget ([`crate::tuning`]).
    fn build(
        device: &Arc<Device>,
        graph: Graph,
        state: &Arc<DeviceState>,
        in_place: bool,
        tiles: Tiles,
    ) -> Result<Program> {
        let dev = &device.device;
        check_fits(device, &graph)?;
        let plan = plan_memory_with(&graph, &Self::plan_options(device, in_place));
        let lower = |t: &fovea_kernels::tiles::TileChoices| {
            fovea_kernels::lower_planned_with(&graph, device.target(), &plan, t)
        };
        let kernels = match tiles {
            Tiles::Static => lower(&fovea_kernels::tiles::TileChoices::none())?,
            Tiles::Given(t) => lower(t)?,
            Tiles::Tuned => {
                let cached = device.tuner.choices();
                let kernels = lower(&cached)?;
                if device.tuner.tune(device, &graph, &cached.requests()) {
                    lower(&device.tuner.choices())?
                } else {
                    kernels
                }
            }
        };
        let scratch = kernels.iter().map(|k| k.scratch_bytes).max().unwrap_or(0);
        check_total(device, &graph, &plan.arenas, scratch)?;
        let oom = dev.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
        let arenas: Vec<wgpu::Buffer> = plan
            .arenas
            .iter()
            .enumerate()
            .map(|(i, &size)| {
                dev.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("arena {i}")),
                    size,
                    usage,
                    mapped_at_creation: false,
                })
            })
            .collect();
        let mut locs: Vec<Option<Loc>> = (0..graph.nodes.len()).map(|_| None).collect();
        for &(p, _) in &graph.updates {
            if !matches!(graph.node(p).op, Op::Param { .. }) {
                return Err(EngineError::Input {
                    what: format!("update of {p}"),
                    message: "only parameters can be updated".into(),
                });
            }
        }
        // Every parameter the state lacks goes into one new chunk, in graph order.
        let wanted: Vec<(&str, usize)> = graph
            .nodes
            .iter()
            .filter_map(|n| match &n.op {
                Op::Param { name, .. } => Some((name.as_str(), n.ty.numel())),
                _ => None,
            })
            .collect();
        state.reserve(&wanted)?;
        for (i, node) in graph.nodes.iter().enumerate() {
            let id = NodeId(i as u32);
            if node.op.is_view() {
                continue;
            }
            let size = byte_len(&graph, id);
            if let (None, Some(r)) = (plan.place[i], plan.in_place[i]) {
                // An update computed in place over its parameter.
                locs[i] = locs[r.index()].clone();
                continue;
            }
            locs[i] = Some(match (&node.op, plan.place[i]) {
                (Op::Param { name, .. }, _) => {
                    let l = state.buffer(name, node.ty.numel())?;
                    Loc {
                        buffer: l.buffer,
                        offset: l.offset,
                        size,
                    }
                }
                (_, Some(p)) => Loc {
                    buffer: arenas[p.arena].clone(),
                    offset: p.offset,
                    size,
                },
                _ => Loc {
                    buffer: dev.create_buffer(&wgpu::BufferDescriptor {
                        label: Some(&format!("{} {}", node.layer, node.op.name())),
                        size,
                        usage,
                        mapped_at_creation: false,
                    }),
                    offset: 0,
                    size,
                },
            });
        }
        // Constants are uploaded once, here, into their own buffers (the plan never reuses them).
        for (node, loc) in graph.nodes.iter().zip(&locs) {
            if let (Op::Constant { value }, Some(l)) = (&node.op, loc) {
                device
                    .queue
                    .write_buffer(&l.buffer, l.offset, bytemuck::cast_slice(&value.tensor().data));
            }
        }
        let max_binding = dev.limits().max_storage_buffer_binding_size;
        let mut keys: Vec<wgpu::Buffer> = Vec::new();
        let locations: Vec<Option<Location>> = locs
            .iter()
            .map(|l| {
                l.as_ref().map(|l| {
                    let buffer = keys.iter().position(|b| *b == l.buffer).unwrap_or_else(|| {
                        keys.push(l.buffer.clone());
                        keys.len() - 1
                    });
                    Location {
                        buffer,
                        offset: l.offset,
                        buffer_size: l.buffer.size(),
                    }
                })
            })
            .collect();
        let locate = |id: NodeId| locations[storage_root(&graph, id).index()];
        let (kernels, unfused) = fuse_updates(&graph, &plan, kernels, &locate, device.target(), max_binding);
        if let Some(why) = unfused
            && std::env::var_os("FOVEA_DEBUG_UPDATES").is_some()
        {
            eprintln!("fovea: parameter updates not fused into one dispatch: {why}");
        }
        let scratch_bytes = kernels.iter().map(|k| k.scratch_bytes).max().unwrap_or(0);
        let scratch = (scratch_bytes > 0).then(|| {
            dev.create_buffer(&wgpu::BufferDescriptor {
                label: Some("scratch"),
                size: scratch_bytes.div_ceil(4) * 4,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            })
        });
        let scope = dev.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut dispatches = Vec::with_capacity(kernels.len());
        for k in &kernels {
            let compiled = device.pipelines.get(k)?;
            let entries: Vec<wgpu::BindGroupEntry> = k
                .bindings
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let loc = |n: NodeId| {
                        locs[storage_root(&graph, n).index()]
                            .as_ref()
                            .expect("every stored tensor has a location")
                    };
                    let (buffer, offset, size) = match b.buffer {
                        BufferRef::Node(n) => {
                            let l = loc(n);
                            (&l.buffer, l.offset, std::num::NonZeroU64::new(l.size))
                        }
                        BufferRef::Buffer(n) => (&loc(n).buffer, 0, None),
                        BufferRef::Scratch(_) => (
                            scratch
                                .as_ref()
                                .expect("a kernel binding scratch has scratch_bytes > 0"),
                            0,
                            std::num::NonZeroU64::new(k.scratch_bytes),
                        ),
                    };
                    wgpu::BindGroupEntry {
                        binding: i as u32,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer, offset, size }),
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
        if let Some(e) = pollster::block_on(oom.pop()) {
            let total: u64 = plan.arenas.iter().sum();
            return Err(EngineError::Device(format!(
                "out of device memory while allocating the program's buffers ({:.1} MiB of arenas): {e}; \
                 use a smaller batch size or input",
                total as f64 / (1 << 20) as f64
            )));
        }
        Ok(Program {
            device: device.clone(),
            state: state.clone(),
            graph,
            kernels,
            locs,
            dispatches,
            readback,
            plan,
            scratch_bytes,
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

    /// Bytes of the program's one scratch buffer, shared by every kernel that needs temporaries
    /// between its dispatches (split-K GEMMs on the GPU class): the largest
    /// [`KernelInstance::scratch_bytes`] of its kernels, 0 when it has none.
    pub fn scratch_bytes(&self) -> u64 {
        self.scratch_bytes
    }

    /// Number of dispatches per run.
    pub fn dispatch_count(&self) -> usize {
        self.dispatches.len()
    }

    fn loc(&self, id: NodeId) -> Option<&Loc> {
        self.locs[storage_root(&self.graph, id).index()].as_ref()
    }

    /// Uploads `data` into the f32 tensor `id` (`what` names it in errors).
    fn write(&self, id: NodeId, what: &str, data: &[f32]) -> Result<()> {
        self.check_dtype(id, what, DType::F32, "set_input_i32")?;
        self.write_bytes(id, what, data.len(), bytemuck::cast_slice(data))
    }

    /// The error for feeding `id` values of another element type than its own.
    fn check_dtype(&self, id: NodeId, what: &str, want: DType, instead: &str) -> Result<()> {
        let ty = self.graph.ty(id);
        if ty.dtype != want {
            return Err(EngineError::Input {
                what: what.to_string(),
                message: format!(
                    "is an {} tensor {}, got {} values; feed it with {instead}",
                    ty.dtype.name(),
                    fmt_shape(&ty.shape),
                    want.name()
                ),
            });
        }
        Ok(())
    }

    /// Uploads `len` elements (`bytes`) into the tensor `id`, after checking the count.
    fn write_bytes(&self, id: NodeId, what: &str, len: usize, bytes: &[u8]) -> Result<()> {
        let ty = self.graph.ty(id);
        if len != ty.numel() {
            return Err(EngineError::Input {
                what: what.to_string(),
                message: format!(
                    "expected {} values for shape {}, got {len}",
                    ty.numel(),
                    fmt_shape(&ty.shape),
                ),
            });
        }
        if let Some(l) = self.loc(id) {
            self.device.queue.write_buffer(&l.buffer, l.offset, bytes);
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

    /// The input node named `name`.
    fn input_node(&self, name: &str) -> Result<NodeId> {
        self.graph
            .inputs
            .iter()
            .copied()
            .find(|&i| matches!(&self.graph.node(i).op, Op::Input { name: n } if n == name))
            .ok_or_else(|| EngineError::Input {
                what: name.to_string(),
                message: "the program has no input of this name".into(),
            })
    }

    /// Uploads the f32 input named `name` (queued before the next submit); an `i32` input is
    /// an error (use [`Program::set_input_i32`]).
    pub fn set_input(&self, name: &str, data: &[f32]) -> Result<()> {
        let id = self.input_node(name)?;
        self.write(id, name, data)
    }

    /// Uploads the `i32` input named `name` (indices for `Gather`/`ScatterAdd`), queued before
    /// the next submit; an f32 input is an error (use [`Program::set_input`]).
    pub fn set_input_i32(&self, name: &str, data: &[i32]) -> Result<()> {
        let id = self.input_node(name)?;
        self.check_dtype(id, name, DType::I32, "set_input")?;
        self.write_bytes(id, name, data.len(), bytemuck::cast_slice(data))
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
            if let (Some(dst), Some(src)) = (self.loc(p), self.loc(v))
                && (dst.buffer != src.buffer || dst.offset != src.offset)
            {
                enc.copy_buffer_to_buffer(&src.buffer, src.offset, &dst.buffer, dst.offset, dst.size);
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
            let Some(loc) = self.loc(k.node) else { continue };
            let values =
                crate::readback::read_buffer(&self.device, &loc.buffer, loc.offset, self.graph.ty(k.node).numel())?;
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
        if let Some(src) = self.graph.outputs.get(index).and_then(|&o| self.loc(o)) {
            enc.copy_buffer_to_buffer(&src.buffer, src.offset, dst, offset, src.size);
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

    /// Records the program `iters` times into one encoder between two GPU timestamps and
    /// returns the device time between them, or `None` when the adapter has no timestamp
    /// queries inside encoders (then time with [`Program::time_runs`]).
    pub fn gpu_time_runs(&self, iters: usize) -> Result<Option<std::time::Duration>> {
        crate::device::gpu_time(&self.device, |enc| {
            for _ in 0..iters {
                self.encode(enc);
            }
        })
    }

    /// Times every dispatch on its own (`iters` repetitions in one submit, after one warm-up
    /// run) and returns `(kernel name, mean time per dispatch)` in dispatch order.
    pub fn profile(&self, iters: usize) -> Result<Vec<(String, std::time::Duration)>> {
        self.time_runs(1)?;
        self.time_each(iters)
    }

    /// Runs the whole program once as one submit per dispatch, in order, and returns each
    /// dispatch's wall time (submit to device idle). Called before the program has ever run,
    /// this is the first run: on drivers that compile a pipeline at its first dispatch
    /// (lavapipe's LLVM JIT) each time includes that compile.
    pub fn first_run_each(&self) -> Result<Vec<(String, std::time::Duration)>> {
        self.time_each(1)
    }

    /// Every dispatch in order, `iters` times in one submit each: `(kernel name, mean time)`.
    fn time_each(&self, iters: usize) -> Result<Vec<(String, std::time::Duration)>> {
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
    /// output. All dispatches go into one command encoder and one submit. An `i32` input takes
    /// integral values (`3.0`), converted; any other value is an error naming the input. `i32`
    /// outputs (indices) come back converted to f32 values (`3.0`), exact below 2^24.
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
            if self.graph.ty(id).dtype == DType::I32 {
                let ints = integral(&name, data)?;
                self.write_bytes(id, &name, ints.len(), bytemuck::cast_slice(&ints))?;
            } else {
                self.write(id, &name, data)?;
            }
        }
        self.run_fed()
    }

    /// Runs the program on the inputs already uploaded ([`Program::set_input`],
    /// [`Program::set_input_i32`]) and reads back every output, as [`Program::run`] does.
    pub fn run_fed(&self) -> Result<Vec<Vec<f32>>> {
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
            .map(|(&o, rb)| {
                let words = map_read(&self.device, rb, self.graph.ty(o).numel())?;
                Ok(match self.graph.ty(o).dtype {
                    DType::F32 => words,
                    DType::I32 => words.iter().map(|w| w.to_bits() as i32 as f32).collect(),
                })
            })
            .collect()
    }
}

/// `data` as `i32`s when every value is an integer in range, else an error naming `what`.
fn integral(what: &str, data: &[f32]) -> Result<Vec<i32>> {
    data.iter()
        .enumerate()
        .map(|(i, &v)| {
            if v.fract() == 0.0 && v >= i32::MIN as f32 && v < i32::MAX as f32 {
                Ok(v as i32)
            } else {
                Err(EngineError::Input {
                    what: what.to_string(),
                    message: format!("is an i32 input, but value {i} is {v}; expected an integer"),
                })
            }
        })
        .collect()
}
