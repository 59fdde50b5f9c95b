//! Bounded autotuning of the GEMM core's tiles, per adapter and problem, cached on disk.
//!
//! When a program is built, every GEMM the lowering meets ([`fovea_kernels::tiles`]) that is
//! large enough to matter ([`MIN_TUNE_FLOPS`]) and has no cached choice gets its candidate
//! tiles timed: each candidate is compiled, bound to scratch buffers of the problem's sizes and
//! run (timed with GPU timestamps where the adapter has them, else by wall clock around a
//! submit and a wait) in alternating rounds (a warm-up, then up to [`ROUNDS`] timed runs each; the best run
//! counts). The largest problems go first; the first one a process meets is always tuned (so
//! every start makes progress), the others only when they fit in what is left of the device's
//! budget, and tuning stops for the rest of the process once it is spent (`FOVEA_TUNE_BUDGET_MS`, default [`DEFAULT_BUDGET_MS`]): those
//! keep the static table's tile. Choices and every candidate's timing are kept in
//! `tuning-<adapter key>-<kernel class>.json` beside the pipeline cache, so a second start tunes nothing and
//! `fovea bench kernels --tuning` can show why a tile won. `FOVEA_TUNE=0` turns tuning and the
//! cache off (the static table decides everything).
//!
//! A cache written for another adapter, driver, Fovea version or file format, or one that does
//! not parse, is ignored with a note on stderr and rewritten. Results never depend on the
//! choice: every candidate computes the same GEMM, and the GPU tests run each one against the
//! reference interpreter.

use crate::device::{Device, DeviceInfo};
use crate::error::Result;
use fovea_graph::ir::{Graph, NodeId};
use fovea_kernels::gemm::GemmTile;
use fovea_kernels::tiles::{GemmRequest, TileChoices};
use fovea_kernels::{BufferRef, KernelInstance, Target};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Default tuning budget per device (process), in milliseconds: on lavapipe a candidate's
/// first dispatch compiles it (0.1-0.5 s), so this tunes a few problems per start, the largest
/// first, and keeps the seed CIFAR-10 model's cold first step near its 10 s target; later starts
/// tune the rest.
pub const DEFAULT_BUDGET_MS: u64 = 2000;

/// GEMMs below this many FLOPs keep the static table's tile: on lavapipe they take well under a
/// millisecond, where timing noise exceeds any difference between tiles.
pub const MIN_TUNE_FLOPS: u64 = 4_000_000;

/// Timed runs per candidate after the warm-up (fewer when the budget runs out).
pub const ROUNDS: usize = 3;

/// A candidate replaces the static tile only when it is at least this much faster (5%).
pub const MIN_GAIN: f64 = 0.05;

/// The version of the cache file's layout.
const FORMAT: u32 = 1;

/// One tuned problem: the static table's tile, the winner and every candidate's best time.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TunedGemm {
    /// Multiply-adds times two.
    pub flops: u64,
    /// The static table's tile ([`GemmTile::label`]).
    pub default: String,
    /// The tile chosen: the fastest candidate if it beats the static tile by [`MIN_GAIN`],
    /// else the static tile.
    pub chosen: String,
    /// Each candidate's best time in milliseconds, in the order they were tried.
    pub timings: Vec<(String, f64)>,
}

impl TunedGemm {
    /// The static tile's time over the winner's (1 when the table already had the winner).
    pub fn speedup(&self) -> f64 {
        let time = |label: &str| self.timings.iter().find(|(l, _)| l == label).map(|t| t.1);
        match (time(&self.default), time(&self.chosen)) {
            (Some(d), Some(c)) if c > 0.0 => d / c,
            _ => 1.0,
        }
    }
}

/// The cache file.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct TuningFile {
    format: u32,
    identity: String,
    gemm: BTreeMap<String, TunedGemm>,
}

/// A device's tuner: its budget, what it spent, and the choices (loaded from and saved to disk).
#[derive(Debug)]
pub struct Tuner {
    path: Option<PathBuf>,
    identity: String,
    budget: Duration,
    state: Mutex<TunerState>,
}

#[derive(Debug, Default)]
struct TunerState {
    spent: Duration,
    gemm: BTreeMap<String, TunedGemm>,
    /// Problems whose tuning failed or ran out of budget this process: not retried.
    skipped: Vec<String>,
}

/// What identifies an adapter's tuning: name, backend, driver and this Fovea version.
fn identity(info: &DeviceInfo, target: &Target) -> String {
    format!(
        "{} | {} | {} {} | {} kernels | fovea {}",
        info.name,
        info.backend,
        info.driver,
        info.driver_info,
        target.class.name(),
        env!("CARGO_PKG_VERSION")
    )
}

/// A file-name-safe key of the adapter (name and backend) and the kernel class it runs for its
/// cache file (one file per class: the tests run both classes on lavapipe, and a run of one must
/// not throw away the other's choices); the file itself records the driver and Fovea version it
/// was written by ([`identity`]).
fn file_key(info: &DeviceInfo, target: &Target) -> String {
    let raw = format!("{}-{}", info.name, info.backend).to_ascii_lowercase();
    let words: Vec<&str> = raw
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let adapter: String = words.join("-").chars().take(80).collect();
    format!("{adapter}-{}", target.class.name())
}

/// The tuning budget from `FOVEA_TUNE_BUDGET_MS` (whether tuning is on at all is
/// [`enabled_from_env`]).
pub fn budget_from_env() -> Duration {
    let ms = std::env::var("FOVEA_TUNE_BUDGET_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(DEFAULT_BUDGET_MS);
    Duration::from_millis(ms)
}

/// Whether tuning (and its cache) is on: `FOVEA_TUNE` is not `0`/`off`.
pub fn enabled_from_env() -> bool {
    !std::env::var("FOVEA_TUNE").is_ok_and(|v| matches!(v.trim(), "0" | "off"))
}

impl Tuner {
    /// A tuner for the adapter `info` running `target`'s kernels, caching in
    /// `dir/tuning-<adapter>-<kernel class>.json` (`None`: in memory only), with `budget` (`None`:
    /// `FOVEA_TUNE_BUDGET_MS`). With `FOVEA_TUNE=0` it has neither cache nor budget. A file for
    /// another adapter, driver, Fovea version or format, or one that does not parse, is
    /// ignored with a note and replaced at the next save.
    pub fn new(dir: Option<&Path>, info: &DeviceInfo, target: &Target, budget: Option<Duration>) -> Tuner {
        let enabled = enabled_from_env();
        let budget = match enabled {
            true => budget.unwrap_or_else(budget_from_env),
            false => Duration::ZERO,
        };
        let identity = identity(info, target);
        let path = dir
            .filter(|_| enabled)
            .map(|d| d.join(format!("tuning-{}.json", file_key(info, target))));
        let mut gemm = BTreeMap::new();
        if let Some(p) = &path {
            match load(p, &identity) {
                Ok(Some(g)) => gemm = g,
                Ok(None) => {}
                Err(why) => eprintln!(
                    "fovea: ignoring the kernel tuning cache {}: {why}; it will be rebuilt",
                    p.display()
                ),
            }
        }
        Tuner {
            path,
            identity,
            budget,
            state: Mutex::new(TunerState {
                gemm,
                ..TunerState::default()
            }),
        }
    }

    /// The cache file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The adapter identity the cache is for.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Every tuned problem, by key.
    pub fn entries(&self) -> BTreeMap<String, TunedGemm> {
        self.state.lock().map(|s| s.gemm.clone()).unwrap_or_default()
    }

    /// Time spent tuning in this process.
    pub fn spent(&self) -> Duration {
        self.state.lock().map(|s| s.spent).unwrap_or_default()
    }

    /// The tile choices for lowering: the cached winners.
    pub fn choices(&self) -> TileChoices {
        let map: HashMap<String, GemmTile> = self
            .entries()
            .into_iter()
            .filter_map(|(k, e)| Some((k, GemmTile::parse(&e.chosen)?)))
            .collect();
        TileChoices::from_map(map)
    }

    /// Tunes the `requests` of `graph` that have no choice yet, largest first, within what is
    /// left of the budget; saves the cache if anything was tuned. Returns whether any new
    /// choice differs from the static table (then the caller lowers again). Failures (a
    /// candidate that does not compile, a device error) skip the problem with a note: tuning
    /// never stops a build.
    pub fn tune(&self, device: &Device, graph: &Graph, requests: &[GemmRequest]) -> bool {
        let mut todo: Vec<&GemmRequest> = {
            let Ok(state) = self.state.lock() else { return false };
            if state.spent >= self.budget {
                return false;
            }
            requests
                .iter()
                .filter(|r| r.flops >= MIN_TUNE_FLOPS && r.candidates.len() > 1)
                .filter(|r| !state.gemm.contains_key(&r.key) && !state.skipped.contains(&r.key))
                .collect()
        };
        // Largest first; a problem met at several nodes once.
        todo.sort_by(|a, b| b.flops.cmp(&a.flops).then_with(|| a.key.cmp(&b.key)));
        todo.dedup_by(|a, b| a.key == b.key);
        let mut changed = false;
        let mut tuned = 0;
        for req in todo {
            // The first problem a process tunes is tuned whatever its price (on lavapipe one
            // problem's candidates can cost most of the budget in shader compiles), so every
            // start makes progress; the budget bounds the rest.
            let (left, first) = {
                let Ok(state) = self.state.lock() else { break };
                (self.budget.saturating_sub(state.spent), state.spent.is_zero())
            };
            if left.is_zero() {
                break;
            }
            let start = Instant::now();
            let outcome = time_candidates(device, graph, req, start + left, first);
            let Ok(mut state) = self.state.lock() else { break };
            state.spent += start.elapsed();
            match outcome {
                Ok(Some(entry)) => {
                    changed |= entry.chosen != entry.default;
                    state.gemm.insert(req.key.clone(), entry);
                    tuned += 1;
                }
                Ok(None) => state.skipped.push(req.key.clone()),
                Err(e) => {
                    eprintln!("fovea: not tuning {}: {e}", req.key);
                    state.skipped.push(req.key.clone());
                }
            }
        }
        if tuned > 0 {
            self.save();
        }
        changed
    }

    /// Writes the cache (temporary file, then rename); failures are ignored (it is an
    /// optimisation).
    fn save(&self) {
        let Some(path) = &self.path else { return };
        let Ok(state) = self.state.lock() else { return };
        let file = TuningFile {
            format: FORMAT,
            identity: self.identity.clone(),
            gemm: state.gemm.clone(),
        };
        let Ok(text) = serde_json::to_string_pretty(&file) else {
            return;
        };
        crate::pipelines::replace_cache_file(path, text.as_bytes());
    }
}

/// Reads a cache file: `Ok(None)` when there is none, `Err(why)` when it is unusable.
fn load(path: &Path, identity: &str) -> std::result::Result<Option<BTreeMap<String, TunedGemm>>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("unreadable ({e})")),
    };
    let file: TuningFile = serde_json::from_str(&text).map_err(|e| format!("not a tuning cache ({e})"))?;
    if file.format != FORMAT {
        return Err(format!("format {} (this Fovea writes {FORMAT})", file.format));
    }
    if file.identity != identity {
        return Err(format!("written for \"{}\", not \"{identity}\"", file.identity));
    }
    let bad = file
        .gemm
        .values()
        .filter(|e| GemmTile::parse(&e.chosen).is_none())
        .count();
    if bad > 0 {
        return Err(format!("{bad} entries name no valid tile"));
    }
    Ok(Some(file.gemm))
}

/// The kernels of `req`'s node with each candidate tile, bound to scratch buffers, timed in
/// alternating rounds until `deadline` (at least one round). `None` when the rounds would not
/// fit before the deadline, unless `regardless`.
fn time_candidates(
    device: &Device,
    graph: &Graph,
    req: &GemmRequest,
    deadline: Instant,
    regardless: bool,
) -> Result<Option<TunedGemm>> {
    let dev = &device.device;
    let mut runs = Vec::new();
    for &tile in &req.candidates {
        let choice = TileChoices::one(&req.key, tile);
        let kernels: Vec<KernelInstance> = fovea_kernels::lower_node_with(graph, req.node, device.target(), &choice)?
            .into_iter()
            .map(KernelInstance::into_shared)
            .collect();
        runs.push((tile, kernels));
    }
    let mut buffers: HashMap<NodeId, wgpu::Buffer> = HashMap::new();
    let scratch_bytes = runs
        .iter()
        .flat_map(|(_, ks)| ks.iter().map(|k| k.scratch_bytes))
        .max()
        .unwrap_or(0);
    let usage = wgpu::BufferUsages::STORAGE;
    let scratch = (scratch_bytes > 0).then(|| {
        dev.create_buffer(&wgpu::BufferDescriptor {
            label: Some("tuning scratch"),
            size: scratch_bytes.div_ceil(4) * 4,
            usage,
            mapped_at_creation: false,
        })
    });
    for b in runs.iter().flat_map(|(_, ks)| ks.iter().flat_map(|k| &k.bindings)) {
        if let BufferRef::Node(n) = b.buffer {
            buffers.entry(n).or_insert_with(|| {
                dev.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("tuning operand"),
                    size: (graph.ty(n).size_bytes().max(4) as u64).div_ceil(4) * 4,
                    usage,
                    mapped_at_creation: false,
                })
            });
        }
    }
    let scope = dev.push_error_scope(wgpu::ErrorFilter::Validation);
    let mut prepared = Vec::new();
    for (tile, kernels) in &runs {
        let mut dispatches = Vec::new();
        for k in kernels {
            let compiled = device.pipelines.get(k)?;
            let mut entries = Vec::new();
            for (i, b) in k.bindings.iter().enumerate() {
                let resource = match b.buffer {
                    BufferRef::Node(n) => match buffers.get(&n) {
                        Some(buf) => buf.as_entire_binding(),
                        None => return Ok(None),
                    },
                    BufferRef::Scratch(_) => match &scratch {
                        Some(s) => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: s,
                            offset: 0,
                            size: std::num::NonZeroU64::new(k.scratch_bytes),
                        }),
                        None => return Ok(None),
                    },
                    BufferRef::Buffer(_) => return Ok(None),
                };
                entries.push(wgpu::BindGroupEntry {
                    binding: i as u32,
                    resource,
                });
            }
            let bind_group = dev.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&k.name),
                layout: &compiled.layout,
                entries: &entries,
            });
            dispatches.push((compiled, bind_group, k.workgroups));
        }
        prepared.push((*tile, dispatches));
    }
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(crate::EngineError::Device(format!("binding the candidates: {e}")));
    }
    let run = |dispatches: &[(
        std::sync::Arc<crate::pipelines::CompiledKernel>,
        wgpu::BindGroup,
        [u32; 3],
    )],
               reps: usize|
     -> Result<Duration> {
        let encode = |enc: &mut wgpu::CommandEncoder| {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("tuning"),
                timestamp_writes: None,
            });
            for _ in 0..reps {
                for (k, bg, wg) in dispatches {
                    pass.set_pipeline(&k.pipeline);
                    pass.set_bind_group(0, bg, &[]);
                    pass.dispatch_workgroups(wg[0], wg[1], wg[2]);
                }
            }
        };
        // GPU timestamps where the adapter has them, else the wall time of a submit and a wait.
        if let Some(t) = crate::device::gpu_time(device, encode)? {
            device.check()?;
            return Ok(t / reps as u32);
        }
        let mut enc = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("tuning") });
        encode(&mut enc);
        let t = Instant::now();
        device.queue.submit([enc.finish()]);
        device.check()?;
        Ok(t.elapsed() / reps as u32)
    };
    // Warm-up: one run each (on lavapipe the first dispatch of a pipeline compiles it), which
    // also sizes the repetitions of the timed rounds (about 5 ms per timed submit, so the
    // submit's own cost stays small). The static tile (the first) runs twice and prices the
    // whole tuning: a problem that cannot finish its rounds before the deadline keeps the table's
    // tile (its pipeline is compiled already, so nothing is lost).
    let mut reps = Vec::new();
    for (i, (_, d)) in prepared.iter().enumerate() {
        let mut t = run(d, 1)?;
        if i == 0 {
            let first = t;
            t = run(d, 1)?;
            let n = prepared.len() as u32;
            let cost = first * (n - 1) + t.max(Duration::from_millis(5)) * n * ROUNDS as u32;
            if std::env::var_os("FOVEA_DEBUG_TUNING").is_some() {
                eprintln!(
                    "fovea: tuning {}: first run {first:?}, then {t:?}, {n} candidates, priced at {cost:?}, {:?} left",
                    req.key,
                    deadline.saturating_duration_since(Instant::now())
                );
            }
            if !regardless && Instant::now() + cost > deadline {
                return Ok(None);
            }
        }
        reps.push(
            (Duration::from_millis(5).as_secs_f64() / t.as_secs_f64().max(1e-6))
                .ceil()
                .clamp(1.0, 64.0) as usize,
        );
    }
    let mut best = vec![f64::INFINITY; prepared.len()];
    let mut rounds = 0;
    while rounds < ROUNDS {
        let round_cost: f64 = best.iter().sum::<f64>() * 1e-3;
        if rounds > 0 && Instant::now() + Duration::from_secs_f64(round_cost.max(0.0)) > deadline {
            break;
        }
        for (i, (_, d)) in prepared.iter().enumerate() {
            let t = run(d, reps[i])?;
            best[i] = best[i].min(t.as_secs_f64() * 1e3);
        }
        rounds += 1;
        if Instant::now() > deadline {
            break;
        }
    }
    let fastest = best
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap_or(0);
    // The static tile (index 0) keeps the problem unless another is clearly faster: on shared
    // machines single timings move by several percent, and a choice made on noise would only
    // make runs differ.
    let winner = if best[fastest] * (1.0 + MIN_GAIN) < best[0] {
        fastest
    } else {
        0
    };
    Ok(Some(TunedGemm {
        flops: req.flops,
        default: req.default.label(),
        chosen: prepared[winner].0.label(),
        timings: prepared
            .iter()
            .zip(&best)
            .map(|((t, _), &ms)| (t.label(), ms))
            .collect(),
    }))
}
