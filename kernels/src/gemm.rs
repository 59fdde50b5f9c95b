//! The GEMM core (`wgsl/gemm.wgsl`) and its tile table. Matmul, implicit-GEMM convolution and
//! transposed convolution are this one kernel with different loaders (see `matmul.rs`,
//! `conv.rs`, `conv_transpose.rs`).

use crate::dispatch::LinearGrid;
use crate::elementwise::{ElemExpr, MAX_STORAGE_BUFFERS};
use crate::fused::{EpilogueSource, epilogue_name, epilogue_source};
use crate::lower::NodeCx;
use crate::tiles::{GemmRequest, TileChoices, candidates, gemm_key};
use crate::{AdapterClass, BindingRef, BufferRef, KernelError, KernelInstance, Target, template::Template};
use fovea_graph::{NodeId, Op};

const GEMM_WGSL: &str = include_str!("../wgsl/gemm.wgsl");
const GEMM_CPU_WGSL: &str = include_str!("../wgsl/gemm_cpu.wgsl");
const GEMM_TILED_WGSL: &str = include_str!("../wgsl/gemm_tiled.wgsl");
const SPLIT_K_WGSL: &str = include_str!("../wgsl/split_k.wgsl");

/// A tile shape of the GEMM core: the workgroup computes `bm x bn` of C with
/// `(bn / tn) x (bm / tm)` invocations of `tm x tn` outputs each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GemmTile {
    /// Rows of C per workgroup.
    pub bm: u32,
    /// Columns of C per workgroup.
    pub bn: u32,
    /// Steps of k per stage: the depth of one workgroup-memory stage when `staged`, else the
    /// steps of k that `gemm_global` runs per trip of its inner K loop (1: one per trip).
    pub bk: u32,
    /// Rows of C per invocation.
    pub tm: u32,
    /// Columns of C per invocation.
    pub tn: u32,
    /// Stage A and B through workgroup memory (`gemm_tiled`) rather than reading global memory
    /// directly (`gemm_global`).
    pub staged: bool,
    /// Columns of B per load in `gemm_global`: 4 reads B as `vec4` (only for problems whose B
    /// allows it, [`GemmProblem::b_vec4`]), 1 as scalars.
    pub bv: u32,
}

impl GemmTile {
    /// Invocations per workgroup along x (columns) and y (rows).
    pub fn threads(&self) -> [u32; 2] {
        [self.bn / self.tn, self.bm / self.tm]
    }

    /// Workgroup memory the staged variant uses, in bytes.
    pub fn workgroup_bytes(&self) -> u32 {
        if self.staged {
            (self.bm + self.bn) * self.bk * 4
        } else {
            0
        }
    }

    /// Whether the tile respects the target's limits.
    pub fn fits(&self, target: &Target) -> bool {
        let [tx, ty] = self.threads();
        tx * ty <= target.max_invocations_per_workgroup && self.workgroup_bytes() <= target.max_workgroup_storage_bytes
    }

    /// The entry point of `gemm.wgsl` this tile runs.
    pub fn entry_point(&self) -> &'static str {
        if self.staged { "gemm_tiled" } else { "gemm_global" }
    }
}

/// One row of the tile table: a tile for an adapter class, the problems it is for, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GemmTileEntry {
    /// The adapter class the entry applies to.
    pub class: AdapterClass,
    /// The entry applies only to GEMMs with at most this many columns (per group).
    pub max_n: Option<usize>,
    /// ... and at least this many rows (0: any).
    pub min_m: usize,
    /// The tile.
    pub tile: GemmTile,
    /// Why this tile (the measurement or hardware fact behind it).
    pub reason: &'static str,
    /// Only a candidate for the tuner ([`crate::tiles::candidates`]), never the table's choice.
    pub tuner_only: bool,
}

/// A tuner-only entry ([`GemmTileEntry::tuner_only`]) of the CPU class.
const fn candidate(dims: [u32; 6], reason: &'static str) -> GemmTileEntry {
    GemmTileEntry {
        tuner_only: true,
        ..entry(AdapterClass::Cpu, None, dims, reason)
    }
}

const fn entry(
    class: AdapterClass,
    max_n: Option<usize>,
    [bm, bn, bk, tm, tn, bv]: [u32; 6],
    reason: &'static str,
) -> GemmTileEntry {
    let staged = matches!(class, AdapterClass::Gpu);
    GemmTileEntry {
        class,
        max_n,
        tile: GemmTile {
            bm,
            bn,
            bk,
            tm,
            tn,
            staged,
            bv,
        },
        reason,
        min_m: 0,
        tuner_only: false,
    }
}

/// The tile table, `[bm, bn, bk, tm, tn, bv]`: the first entry for the target's class that fits
/// the problem's width, the target's limits and the problem's B (`bv = 4` needs
/// [`GemmProblem::b_vec4`]) is used. CPU entries read global memory (`gemm_global`: `bm = tm`,
/// `bn / tn` invocations in a row), GPU entries stage through workgroup memory (`gemm_tiled`).
pub const GEMM_TILES: &[GemmTileEntry] = &[
    entry(
        AdapterClass::Cpu,
        Some(8),
        [32, 8, 1, 4, 8, 4],
        "lavapipe, N <= 8 (the U-Net's 8-filter full-resolution layers and their gradients): \
         8x32 leaves 6 of its 8 lanes computing clamped duplicates of the 8 columns; here 8 \
         invocations own 4 rows each and all 8 columns (per k: two vec4 loads of B, four loads \
         of A, 32 FMAs per lane, no broadcasts). U-Net w8 at 128x128, batch 4, interleaved: \
         forward 8->8 45 -> 15 ms, data gradient 39 -> 16, filter gradient 39 -> 21; 8x16, 16x8 \
         (2 rows x 8) and 64x8 (8 rows x 8, spills) lost",
    ),
    entry(
        AdapterClass::Cpu,
        Some(16),
        [32, 16, 1, 4, 8, 4],
        "lavapipe, N <= 16: 8x32 leaves half its lanes idle; 2x8 invocations of 4 rows x 8 \
         columns: U-Net w16 128x128x16->16 forward 88 -> 63 ms, data gradient 107 -> 54, \
         filter gradient 98 -> 63; 16x16 (2 rows x 16, or 4 x 8), 32x16 (8 rows x 4) and 64x16 \
         lost or tied",
    ),
    GemmTileEntry {
        min_m: 33,
        ..entry(
            AdapterClass::Cpu,
            Some(32),
            [32, 32, 1, 32, 4, 4],
            "lavapipe (Mesa 25.0) runs a workgroup row as 8 SIMD lanes, and a load whose address \
             differs by lane as a loop over the lanes (a bounds check, a scalar load and an insert \
             each), while an FMA is one vector op; an accumulator kept on the stack costs a load and \
             a store. So loads of B per FMA matter most: each lane owns 4 columns (one vec4 load of \
             B per k) for 32 rows (A loaded 4 times per 8 rows, broadcast), 128 FMAs per load of B. \
             Quiet Zen 5 host, b128 CIFAR-10 convs, against 16x32 t16x4 and (before) 8x32 t8x4: conv1 \
             forward 38.8 / 22.6 / 18.8 GFLOP/s, the conv2 input gradient 70.0 / 54.8 / 37.6; but \
             the conv1 filter gradient (M = 27: one workgroup) 30.3 / 43.7 / 27.4, so 16x32 is the \
             table's choice below 33 rows. 32x32 with scalar B, 32x64 and 16x128 fall to 6-8 \
             GFLOP/s (past about 32 vector accumulators the driver's code collapses)",
        )
    },
    entry(
        AdapterClass::Cpu,
        Some(32),
        [16, 32, 1, 16, 4, 4],
        "lavapipe, N <= 32 and M <= 32: 16 rows x 4 columns per lane, twice the workgroups of \
         32x32 (the CIFAR-10 conv1 filter gradient, M = 27: 43.7 vs 30.3 GFLOP/s on the quiet Zen \
         5 host); also a tuner's candidate up to N = 64",
    ),
    entry(
        AdapterClass::Cpu,
        None,
        [16, 64, 1, 16, 8, 4],
        "lavapipe, N > 32: two vec4 loads of B feed 16 rows (128 FMAs per lane per k; most \
         accumulators live on the stack, which costs less than the loads it saves). Quiet Zen 5 \
         host, against 8x64 t8x8: matmul 1024^3 60.1 vs 34.4 GFLOP/s, CIFAR-10 conv2 66.8 vs \
         42.7, its filter gradient 67.5 vs 42.9, conv3 68.1 vs 43.0; 24x64 tied (61.5), 32x64 \
         and 16x128 (7.5: the compiler gives up on their registers) and 32x32 (47.4) lost",
    ),
    entry(
        AdapterClass::Cpu,
        None,
        [16, 32, 1, 16, 4, 1],
        "lavapipe, B not vec4-readable (transposed B, N % 4 != 0): 16 rows x 4 columns per lane, 4 \
         scalar loads of B per k. Quiet Zen 5 host, forced on the CIFAR-10 convs (b128) against \
         8x32 t8x4 b1: conv2 forward 17.3 vs 27.6 ms, its input gradient 20.9 vs 32.4",
    ),
    entry(
        AdapterClass::Gpu,
        Some(32),
        [128, 32, 16, 4, 4, 1],
        "narrow GEMMs on GPUs: keep all 256 invocations busy; 10 KiB of workgroup memory",
    ),
    entry(
        AdapterClass::Gpu,
        None,
        [64, 64, 16, 4, 4, 1],
        "GPUs: stage tiles in workgroup memory so each global load feeds 64 FMAs; 256 invocations, \
         8 KiB of workgroup memory fits WebGPU's 16 KiB default, 4x4 register block",
    ),
    entry(
        AdapterClass::Gpu,
        None,
        [32, 32, 8, 4, 4, 1],
        "GPU limited to fewer than 256 invocations or 8 KiB of workgroup memory: 64 invocations, 2 KiB",
    ),
    // Tiles that are never the table's choice, only the tuner's candidates.
    candidate(
        [8, 64, 1, 8, 8, 4],
        "lavapipe, tuner's candidate: the 8-row tile that was the table's for N > 32 until \
         2026-12-04 (measured best on the Zen 3 and Intel hosts then; 16-row tiles were not \
         tried there), kept so that a host where it still wins gets it",
    ),
    candidate(
        [8, 32, 1, 8, 4, 4],
        "lavapipe, tuner's candidate: the 8-row tile that was the table's for N <= 32 until \
         2026-12-04 (see 8x64 t8x8)",
    ),
];

/// Last resort when no table entry fits: one output per invocation, 8x8 invocations, no
/// workgroup memory (every WebGPU adapter allows 64 invocations).
const FALLBACK_TILE: GemmTile = GemmTile {
    bm: 1,
    bn: 64,
    bk: 1,
    tm: 1,
    tn: 1,
    staged: false,
    bv: 1,
};

/// The tile for a GEMM of `m` rows and `n` columns on `target`: the first entry of
/// [`GEMM_TILES`] for its class that is not tuner-only, whose `max_n` and `min_m` admit the
/// problem, that fits the target's limits, and whose `bv` the problem's B allows (`b_vec4`).
pub fn choose_gemm_tile(target: &Target, m: usize, n: usize, b_vec4: bool) -> GemmTile {
    GEMM_TILES
        .iter()
        .find(|e| {
            e.class == target.class
                && !e.tuner_only
                && e.max_n.is_none_or(|max| n <= max)
                && m >= e.min_m
                && e.tile.fits(target)
                && (e.tile.bv == 1 || b_vec4)
        })
        .map(|e| e.tile)
        .unwrap_or(FALLBACK_TILE)
}

/// Whether a GEMM core kernel for `target` may read B as `vec4`: the caller also needs B's
/// columns contiguous with every column start a multiple of 4 (then it sets
/// [`GemmProblem::b_vec4`] and declares B through [`b_view`]).
pub(crate) fn b_vec4_allowed(target: &Target) -> bool {
    target.class == AdapterClass::Cpu
}

/// The element type, scalar read and vec4 read of a binding `buf` (see [`b_view`]).
fn views(buf: &str, vec4: bool) -> (&'static str, String, String) {
    if vec4 {
        ("vec4<f32>", format!("{buf}[i / 4u][i % 4u]"), format!("{buf}[i / 4u]"))
    } else {
        (
            "f32",
            format!("{buf}[i]"),
            format!("vec4<f32>({buf}[i], {buf}[i + 1u], {buf}[i + 2u], {buf}[i + 3u])"),
        )
    }
}

/// Sets a loader template's `B_TYPE`, `B_AT` and `B_AT4` for B's binding `buf`: an
/// `array<vec4<f32>>` when `vec4`, else an `array<f32>`; `b_at(i)` reads element `i` and
/// `b_at4(i)` elements `i..i + 4` (`i % 4 == 0`) either way.
pub(crate) fn b_view(t: Template, buf: &str, vec4: bool) -> Template {
    let (ty, at, at4) = views(buf, vec4);
    t.set("B_TYPE", ty).set("B_AT", at).set("B_AT4", at4)
}

/// A GEMM to run on the core: `groups` independent `M x K` by `K x N` products, with the
/// loaders (rendered WGSL defining `load_a`, `load_b`, `store_c` and the bindings they use).
#[derive(Debug, Clone)]
pub struct GemmProblem {
    /// Rows of C.
    pub m: usize,
    /// Columns of C (per group).
    pub n: usize,
    /// The reduced dimension.
    pub k: usize,
    /// The number of outer steps K is split into (`k_outer` divides `k`): the loaders compute
    /// their index arithmetic once per row and outer step (a convolution's kernel taps).
    pub k_outer: usize,
    /// Independent groups (workgroup_id.z).
    pub groups: usize,
    /// B's binding is an `array<vec4<f32>>` ([`b_view`]), its columns contiguous
    /// (`b_col(g, ko, n) = b_col(g, ko, 0) + n`), `b_col(g, ko, 0)`, `B_KSTRIDE` and N multiples of 4.
    pub b_vec4: bool,
    /// Rendered WGSL: the bindings and the three loader functions.
    pub loaders: String,
    /// The bindings the loaders declare, in binding order, the output last.
    pub bindings: Vec<BindingRef>,
    /// Minimum bytes read and written.
    pub bytes: u64,
    /// A fused elementwise epilogue applied to every stored element, if any.
    pub epilogue: Option<GemmEpilogue>,
}

impl GemmProblem {
    /// The problem of node `cx` on the GEMM core: its two inputs bound first (A's buffer, then
    /// B's), its output last, its fused epilogue if it has one; `[m, n, k]`, `k_outer`, `groups`,
    /// `b_vec4` and `loaders` as the fields.
    pub(crate) fn of_node(
        cx: &NodeCx,
        [m, n, k]: [usize; 3],
        k_outer: usize,
        groups: usize,
        b_vec4: bool,
        loaders: String,
    ) -> GemmProblem {
        GemmProblem {
            m,
            n,
            k,
            k_outer,
            groups,
            b_vec4,
            loaders,
            bindings: vec![
                BindingRef::read(cx.input(0)),
                BindingRef::read(cx.input(1)),
                BindingRef::write(cx.id),
            ],
            bytes: cx.io_bytes(),
            epilogue: epilogue_of(cx),
        }
    }
}

/// An elementwise epilogue of a GEMM kernel: the stored value of output element `i` is `expr`,
/// where `Input(0)` is the GEMM result and `Input(k)` reads `extras[k - 1]`, bound after the
/// loaders' inputs and before the output.
#[derive(Debug, Clone)]
pub struct GemmEpilogue {
    /// The expression per stored element.
    pub expr: ElemExpr,
    /// The extra inputs' buffers, each with whether it is a per-channel vector (read at
    /// `i % channels`) rather than a tensor of the output's shape (read at `i`).
    pub extras: Vec<(NodeId, bool)>,
    /// The output's last axis.
    pub channels: usize,
}

/// The epilogue of an `Op::GemmEpilogue` node (`None` for any other node): its extra inputs
/// follow the base op's two. The pooling gradient takes epilogues the same way.
pub(crate) fn epilogue_of(cx: &NodeCx) -> Option<GemmEpilogue> {
    let Op::GemmEpilogue { expr, .. } = &cx.node.op else {
        return None;
    };
    let out = cx.out_shape();
    let extras = (2..cx.node.inputs.len())
        .map(|k| (cx.input(k), cx.in_shape(k) != out))
        .collect();
    Some(GemmEpilogue {
        expr: expr.clone(),
        extras,
        channels: *out.last().unwrap_or(&1),
    })
}

/// Split-K applies (GPU class only) when the GEMM's grid has fewer workgroups than this: a
/// GEMM with a small output and a long reduction (a convolution's filter gradient, e.g.
/// 288 x 64 x 5408 at batch 32: 5 workgroups of 64x64; a dense layer's weight gradient) would
/// otherwise keep 5 of a GPU's 100+ compute units busy for the whole reduction. 64 is at least
/// one workgroup per compute unit on most integrated and mid-range GPUs, and enough in flight
/// that the extra pass (the partials are written once and read once) is cheap beside it.
pub const SPLIT_K_MIN_WORKGROUPS: usize = 64;

/// At most this many splits: the partials cost `splits * M * N` floats of scratch and one read
/// each in the reduction, which stops paying once the grid is full.
pub const SPLIT_K_MAX_SPLITS: usize = 16;

/// Each split reduces at least this many steps of `bk`: below that the per-workgroup prologue and
/// store of a whole tile dominate its few FMAs.
pub const SPLIT_K_MIN_K_STEPS: usize = 8;

/// The number of splits of K for `problem` on `tile` and `target`: 1 (no split-K) on the CPU class
/// (lavapipe: its narrow tiles give enough workgroups for a few cores, and every extra pass costs
/// there), for unstaged tiles, when the grid already has [`SPLIT_K_MIN_WORKGROUPS`], or when K is
/// too short for two splits of [`SPLIT_K_MIN_K_STEPS`] steps of `bk`. Otherwise enough splits to
/// reach the threshold, capped by [`SPLIT_K_MAX_SPLITS`], by K and by the z limit (splits are
/// folded into workgroup_id.z with the groups: z = g * splits + s). The result never leaves a
/// split empty.
pub fn split_k_splits(target: &Target, tile: &GemmTile, m: usize, n: usize, k: usize, groups: usize) -> usize {
    if target.class != AdapterClass::Gpu || !tile.staged {
        return 1;
    }
    let grid = n.div_ceil(tile.bn as usize) * m.div_ceil(tile.bm as usize) * groups.max(1);
    if grid >= SPLIT_K_MIN_WORKGROUPS {
        return 1;
    }
    let by_k = k / (SPLIT_K_MIN_K_STEPS * tile.bk as usize);
    let by_z = target.max_workgroups_per_dim as usize / groups.max(1);
    let splits = SPLIT_K_MIN_WORKGROUPS
        .div_ceil(grid)
        .min(SPLIT_K_MAX_SPLITS)
        .min(by_k)
        .min(by_z);
    if splits < 2 {
        return 1;
    }
    // No empty split: the per-split length rounded up to whole steps may cover K in fewer.
    let ksplit = split_len(k, splits, tile.bk as usize);
    k.div_ceil(ksplit)
}

/// The length of K one of `splits` splits reduces: `ceil(k / splits)` rounded up to a multiple
/// of `bk` (so splits start on a staging step).
fn split_len(k: usize, splits: usize, bk: usize) -> usize {
    k.div_ceil(splits).div_ceil(bk) * bk
}

/// Builds the kernel instances of `problem` on the GEMM core, with the tile `tiles` chooses
/// for it (the static table's without choices, or when the choice cannot run it); `what` names the loaders
/// (`matmul_nn`, `conv2d`, ...) and becomes part of the kernel name
/// `gemm_<what>_<class>_<bm>x<bn>`. `None` if the grid exceeds the target's limits.
///
/// Usually one kernel. With split-K ([`split_k_splits`] > 1, GPU class only) two, run in order:
/// `gemm_<what>_<class>_<bm>x<bn>_splitk<s>`, which writes the raw partial sums of its `s`
/// splits of K into the scratch buffer ([`BufferRef::Scratch`], `[s][output elements]` f32,
/// [`KernelInstance::scratch_bytes`]) instead of the output, then `splitk_reduce_<what>_<s>`
/// (`wgsl/split_k.wgsl`), which sums them per output element and stores through the epilogue.
pub fn gemm_kernel(
    what: &str,
    node: NodeId,
    problem: GemmProblem,
    target: &Target,
    tiles: Option<&TileChoices>,
) -> Result<Option<Vec<KernelInstance>>, KernelError> {
    let default = choose_gemm_tile(target, problem.m, problem.n, problem.b_vec4);
    let tile = match tiles {
        None => default,
        Some(tiles) => tiles.tile_for(GemmRequest {
            node,
            key: gemm_key(
                what,
                problem.m,
                problem.n,
                problem.k,
                problem.groups,
                problem.b_vec4,
                &problem.loaders,
            ),
            default,
            candidates: {
                let mut c = candidates(target, problem.m, problem.n, problem.b_vec4);
                let extra = tiles
                    .outside_table()
                    .filter(|t| t.fits(target) && (t.bv == 1 || problem.b_vec4));
                c.extend(extra.filter(|t| !c.contains(t)));
                c
            },
            flops: 2 * (problem.m * problem.n * problem.k * problem.groups) as u64,
        }),
    };
    let splits = split_k_splits(target, &tile, problem.m, problem.n, problem.k, problem.groups);
    let mut problem = problem;
    let out_binding = problem.bindings.len() - 1;
    // With split-K the GEMM stores raw partials: the epilogue runs in the reduction.
    let epilogue = if splits > 1 { None } else { problem.epilogue.as_ref() };
    let EpilogueSource {
        code: epilogue,
        bindings: extra_bindings,
        ops,
    } = epilogue_source(epilogue, out_binding);
    let what_epi = epilogue_name(what, &ops);
    let mut name = format!("gemm_{what_epi}_{}_{}x{}", target.class.name(), tile.bm, tile.bn);
    if !tile.staged && tile.bk > 1 {
        name = format!("{name}_k{}", tile.bk);
    }
    if splits > 1 {
        name = format!("{name}_splitk{splits}");
    }
    if !extra_bindings.is_empty() {
        // The output binding moves behind the epilogue's inputs.
        let from = format!("@group(0) @binding({out_binding}) var<storage, read_write>");
        let to = format!(
            "@group(0) @binding({}) var<storage, read_write>",
            out_binding + extra_bindings.len()
        );
        if problem.loaders.matches(&from).count() != 1 {
            return Err(KernelError::invalid(&name, "the loaders must declare the output last"));
        }
        problem.loaders = problem.loaders.replace(&from, &to);
        let out = problem.bindings.pop().expect("the output binding");
        problem.bindings.extend(extra_bindings);
        problem.bindings.push(out);
    }
    let out_numel = problem.m * problem.n * problem.groups;
    let scratch_bytes = (splits * out_numel * 4) as u64;
    if splits > 1 {
        // store_c writes `<out>[i] = epilogue(i, v);`: redirect it to the split's partials.
        let decl = format!("@group(0) @binding({out_binding}) var<storage, read_write> ");
        let out_var = problem
            .loaders
            .split_once(&decl)
            .and_then(|(_, rest)| rest.split_once(':'))
            .map(|(v, _)| v.trim().to_string())
            .ok_or_else(|| KernelError::invalid(&name, "the loaders must declare the output last"))?;
        let store = format!("{out_var}[i] = epilogue(i, v);");
        if problem.loaders.matches(&store).count() != 1 {
            return Err(KernelError::invalid(
                &name,
                format!("split-K needs store_c to store exactly `{store}`"),
            ));
        }
        problem.loaders = problem
            .loaders
            .replace(&store, &format!("{out_var}[split_base + i] = v;"));
        let out = problem.bindings.last_mut().expect("the output binding");
        *out = BindingRef {
            buffer: BufferRef::Scratch(node),
            writable: true,
        };
    }
    if problem.bindings.len() > MAX_STORAGE_BUFFERS {
        return Err(KernelError::invalid(
            &name,
            format!(
                "{} bindings exceed the {MAX_STORAGE_BUFFERS} storage buffers a kernel may bind",
                problem.bindings.len()
            ),
        ));
    }
    let [tx, ty] = tile.threads();
    let Some(grid) = GemmGrid::new(&problem, &tile, splits, target) else {
        return Ok(None);
    };
    let workgroups = grid.workgroups;
    if problem.m.div_ceil(tile.bm as usize) > u32::MAX as usize
        || [problem.m, problem.n, problem.k].iter().any(|&d| d > u32::MAX as usize)
        || splits * out_numel > u32::MAX as usize
    {
        return Ok(None);
    }
    assert!(
        problem.k_outer > 0 && problem.k.is_multiple_of(problem.k_outer),
        "{name}: k_outer must divide k"
    );
    let ksplit = if splits > 1 {
        split_len(problem.k, splits, tile.bk as usize)
    } else {
        problem.k.div_ceil(tile.bk.max(1) as usize) * tile.bk.max(1) as usize
    };
    let source = Template::new(GEMM_WGSL)
        .set("M", problem.m)
        .set("N", problem.n)
        .set("K", problem.k)
        .set("KO", problem.k_outer)
        .set("KI", problem.k / problem.k_outer)
        .set("BM", tile.bm)
        .set("BN", tile.bn)
        .set("BK", tile.bk)
        .set("TM", tile.tm)
        .set("TN", tile.tn)
        .set("TX", tx)
        .set("TY", ty)
        .set("SPLITS", splits)
        .set("KSPLIT", ksplit)
        .set("SPLIT_STRIDE", if splits > 1 { out_numel } else { 0 })
        .set("ZG", grid.zg)
        .set("GRID_Y", workgroups[1])
        .set("LOADERS", problem.loaders)
        .set("EPILOGUE", epilogue)
        .render(&name)?
        + &if tile.staged {
            GEMM_TILED_WGSL.to_string()
        } else {
            global_entry(&name, &tile, target, problem.k)?
        };
    let epilogue_flops = problem.epilogue.as_ref().map_or(0, |e| e.expr.op_count()) * problem.m * problem.n;
    let gemm_flops = 2 * (problem.m * problem.n * problem.k * problem.groups) as u64;
    let flops = gemm_flops + (epilogue_flops * problem.groups) as u64;
    if splits == 1 {
        return Ok(Some(vec![KernelInstance {
            name,
            family: "gemm",
            node,
            source,
            entry_point: tile.entry_point(),
            bindings: problem.bindings,
            workgroups: workgroups.map(|w| w as u32),
            workgroup_size: [tx, ty, 1],
            flops,
            bytes: problem.bytes,
            scratch_bytes: 0,
        }]));
    }
    let gemm = KernelInstance {
        name,
        family: "gemm",
        node,
        source,
        entry_point: tile.entry_point(),
        bindings: problem.bindings,
        workgroups: workgroups.map(|w| w as u32),
        workgroup_size: [tx, ty, 1],
        flops: gemm_flops,
        bytes: problem.bytes + scratch_bytes,
        scratch_bytes,
    };
    let Some(reduce) = split_k_reduce(what, node, problem.epilogue.as_ref(), out_numel, splits, target)? else {
        return Ok(None);
    };
    Ok(Some(vec![gemm, reduce]))
}

/// The workgroup grid of a GEMM: `(column tiles, row tiles, groups * splits)`, with the row
/// tiles beyond the target's per-dimension limit folded into z (`gemm.wgsl`, "Row tiles beyond
/// the grid limit"): y = min(row tiles, limit), z = zg * ceil(row tiles / y).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GemmGrid {
    /// Workgroup counts to dispatch.
    pub workgroups: [usize; 3],
    /// The z extent without folding (`groups * splits`).
    pub zg: usize,
}

impl GemmGrid {
    /// The grid, or `None` if even folded it exceeds the target's limits.
    pub fn new(problem: &GemmProblem, tile: &GemmTile, splits: usize, target: &Target) -> Option<Self> {
        let max = (target.max_workgroups_per_dim as usize).max(1);
        let row_tiles = problem.m.div_ceil(tile.bm as usize).max(1);
        let zg = problem.groups.max(1) * splits.max(1);
        let y = row_tiles.min(max);
        let workgroups = [problem.n.div_ceil(tile.bn as usize), y, zg * row_tiles.div_ceil(y)];
        if workgroups.iter().any(|&w| w > max) {
            return None;
        }
        Some(GemmGrid { workgroups, zg })
    }
}

/// The second dispatch of a split-K GEMM (`wgsl/split_k.wgsl`): sums `splits` partials of
/// `total` output elements from the scratch buffer and stores them through `epilogue` into
/// `node`. `None` if its grid exceeds the target's limits.
pub(crate) fn split_k_reduce(
    what: &str,
    node: NodeId,
    epilogue: Option<&GemmEpilogue>,
    total: usize,
    splits: usize,
    target: &Target,
) -> Result<Option<KernelInstance>, KernelError> {
    let EpilogueSource {
        code,
        bindings: extras,
        ops,
    } = epilogue_source(epilogue, 1);
    let name = format!("splitk_reduce_{}_{splits}", epilogue_name(what, &ops));
    let Some(grid) = LinearGrid::new(total as u64, target.linear_workgroup_size(), target) else {
        return Ok(None);
    };
    let source = Template::new(SPLIT_K_WGSL)
        .set("TOTAL", total)
        .set("SPLITS", splits)
        .set("EPILOGUE", code)
        .set("OUT_BINDING", 1 + extras.len())
        .set("WG", grid.workgroup_size)
        .set("INDEX", grid.index_expr("gid"))
        .render(&name)?;
    let mut bindings = vec![BindingRef {
        buffer: BufferRef::Scratch(node),
        writable: false,
    }];
    bindings.extend(extras);
    bindings.push(BindingRef::write(node));
    if bindings.len() > MAX_STORAGE_BUFFERS {
        return Err(KernelError::invalid(
            &name,
            format!(
                "{} bindings exceed the {MAX_STORAGE_BUFFERS} storage buffers",
                bindings.len()
            ),
        ));
    }
    let epilogue_ops = epilogue.map_or(0, |e| e.expr.op_count());
    let scratch_bytes = (splits * total * 4) as u64;
    Ok(Some(KernelInstance {
        name,
        family: "split_k",
        node,
        source,
        entry_point: "main",
        bindings,
        workgroups: grid.workgroups,
        workgroup_size: [grid.workgroup_size, 1, 1],
        flops: ((splits - 1 + epilogue_ops) * total) as u64,
        bytes: scratch_bytes + (total * 4) as u64,
        scratch_bytes,
    }))
}

/// Up to this K, `gemm_global` hides its K loops' trip counts from the driver's compiler (adds
/// `wid.z >> 31`, always 0). Measured on lavapipe with wgpu's loop bounding off (BENCHMARKS.md,
/// 2026-12-04): LLVM unrolls the whole K loop of a GEMM whose K is small (the seed CIFAR-10
/// model's first convolution, K = 27; its dense layers, K = 64 and 10), which made those
/// kernels' first dispatch compile for 0.7-2.2 s instead of about 0.3 s; hiding the bound of
/// every GEMM also slowed the large-K convolutions, so only small K is hidden.
const HIDDEN_K_MAX: usize = 128;

/// The `gemm_global` entry point (`gemm_cpu.wgsl`) for `tile`: with subgroup broadcasts of A
/// when the target's subgroups are exactly one workgroup row of `tx` lanes and `tm` is a
/// multiple of it, else with one load of A per row.
fn global_entry(name: &str, tile: &GemmTile, target: &Target, k: usize) -> Result<String, KernelError> {
    let [tx, ty] = tile.threads();
    let broadcast = ty == 1 && target.subgroup_size == Some(tx) && tile.tm.is_multiple_of(tx);
    // With broadcasts each lane holds the rows of A it loads: the tile skips an outer step only
    // when no lane's rows read it (a uniform branch, so the lanes keep broadcasting together).
    let live_any = if broadcast {
        "        live = subgroupAny(live);\n"
    } else {
        ""
    };
    let (ar, a_row_m, a_regs) = if broadcast {
        let regs: String = (0..tile.tm)
            .map(|i| {
                format!(
                    "            a_reg[{i}] = subgroupBroadcast(a[{}], {}u);\n",
                    i / tx,
                    i % tx
                )
            })
            .collect();
        (tile.tm / tx, "m0 + r * TX + lid.x", regs)
    } else {
        let regs = "            a_reg = a;\n".to_string();
        (tile.tm, "m0 + r", regs)
    };
    let vec4 = tile.bv == 4;
    let hide_k = k <= HIDDEN_K_MAX;
    Template::new(GEMM_CPU_WGSL)
        .set("BVEC", if vec4 { "vec4<f32>" } else { "f32" })
        .set("BV", tile.bv)
        .set("AR", ar)
        .set("BVEC_GET", if vec4 { "v[c]" } else { "v" })
        .set("A_ROW_M", a_row_m)
        .set("B_LOAD", if vec4 { "b_at4" } else { "b_at" })
        .set("A_REGS", a_regs)
        .set("LIVE_ANY", live_any)
        .set("K_HIDDEN", if hide_k { "wid.z >> 31u" } else { "0u" })
        .set(
            "K_BOUND_NOTE",
            if hide_k {
                "K is small: its loops' bound is hidden from the compiler (a zero it cannot see), which would unroll them whole"
            } else {
                "K is large: the compiler sees its loops' bound"
            },
        )
        .render(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_entries_are_consistent() {
        for e in GEMM_TILES {
            let t = e.tile;
            assert!(t.bm % t.tm == 0 && t.bn % t.tn == 0, "{e:?}");
            assert!(!e.reason.is_empty());
            assert_eq!(t.staged, e.class == AdapterClass::Gpu, "{e:?}");
            assert!(t.fits(&Target::gpu()) || t.bm == 32, "{e:?}");
            assert!(t.bv == 1 || (t.bv == 4 && t.tn % 4 == 0 && !t.staged), "{e:?}");
            if !t.staged {
                // gemm_global: TY rows of invocations, each owning TM whole rows of the tile; no
                // more than two of lavapipe's 8-lane SIMD rows per workgroup.
                let [tx, ty] = t.threads();
                assert!(tx * ty <= 16 && t.bm == t.tm * ty, "{e:?}");
            }
        }
        // The tuner-only tiles are never the table's choice.
        for n in 1..300 {
            for b4 in [false, true] {
                let t = choose_gemm_tile(&Target::cpu(), 1000, n, b4);
                assert!(GEMM_TILES.iter().any(|e| e.tile == t && !e.tuner_only), "n {n} b4 {b4}");
                assert_eq!(t.bk, 1, "n {n} b4 {b4}");
            }
        }
        let c = crate::tiles::candidates(&Target::cpu(), 1000, 64, true);
        assert!(c.iter().any(|t| t.bm == 8 && t.bn == 64), "{c:?}");
        let tiny = Target {
            max_invocations_per_workgroup: 64,
            max_workgroup_storage_bytes: 0,
            ..Target::gpu()
        };
        assert!(FALLBACK_TILE.fits(&tiny) && FALLBACK_TILE.bm == FALLBACK_TILE.tm);
    }

    #[test]
    fn choice_follows_the_class_the_width_b_and_the_limits() {
        let cpu = Target::cpu();
        assert_eq!(choose_gemm_tile(&cpu, 1000, 4, true), GEMM_TILES[0].tile);
        assert_eq!(choose_gemm_tile(&cpu, 1000, 8, true), GEMM_TILES[0].tile);
        assert_eq!(choose_gemm_tile(&cpu, 1000, 12, true), GEMM_TILES[1].tile);
        assert_eq!(choose_gemm_tile(&cpu, 1000, 16, true), GEMM_TILES[1].tile);
        assert_eq!(choose_gemm_tile(&cpu, 1000, 32, true), GEMM_TILES[2].tile);
        assert_eq!(choose_gemm_tile(&cpu, 33, 32, true), GEMM_TILES[2].tile);
        assert_eq!(choose_gemm_tile(&cpu, 32, 32, true), GEMM_TILES[3].tile);
        assert_eq!(choose_gemm_tile(&cpu, 27, 20, true), GEMM_TILES[3].tile);
        assert_eq!(choose_gemm_tile(&cpu, 1000, 64, true), GEMM_TILES[4].tile);
        assert_eq!(choose_gemm_tile(&cpu, 1000, 36, true), GEMM_TILES[4].tile);
        assert_eq!(choose_gemm_tile(&cpu, 1000, 64, false), GEMM_TILES[5].tile);
        assert_eq!(choose_gemm_tile(&cpu, 1000, 8, false), GEMM_TILES[5].tile);
        assert_eq!(choose_gemm_tile(&Target::gpu(), 1000, 100, false), GEMM_TILES[7].tile);
        assert_eq!(choose_gemm_tile(&Target::gpu(), 1000, 1, false), GEMM_TILES[6].tile);
        let small = Target {
            max_invocations_per_workgroup: 128,
            ..Target::gpu()
        };
        assert_eq!(choose_gemm_tile(&small, 1000, 10, false), GEMM_TILES[8].tile);
        let tiny = Target {
            max_invocations_per_workgroup: 64,
            max_workgroup_storage_bytes: 1024,
            ..Target::gpu()
        };
        assert_eq!(choose_gemm_tile(&tiny, 1000, 64, false), FALLBACK_TILE);
        let tiny_cpu = Target {
            max_invocations_per_workgroup: 4,
            ..Target::cpu()
        };
        assert_eq!(choose_gemm_tile(&tiny_cpu, 1000, 64, true), FALLBACK_TILE);
    }
}
