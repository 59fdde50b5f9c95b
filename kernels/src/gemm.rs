//! The GEMM core (`wgsl/gemm.wgsl`) and its tile table. Matmul, implicit-GEMM convolution and
//! transposed convolution are this one kernel with different loaders (see `matmul.rs`,
//! `conv.rs`, `conv_transpose.rs`).

use crate::{AdapterClass, BindingRef, KernelError, KernelInstance, Target, template::Template};
use fovea_graph::NodeId;

const GEMM_WGSL: &str = include_str!("../wgsl/gemm.wgsl");
const GEMM_CPU_WGSL: &str = include_str!("../wgsl/gemm_cpu.wgsl");
const GEMM_TILED_WGSL: &str = include_str!("../wgsl/gemm_tiled.wgsl");

/// A tile shape of the GEMM core: the workgroup computes `bm x bn` of C with
/// `(bn / tn) x (bm / tm)` invocations of `tm x tn` outputs each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GemmTile {
    /// Rows of C per workgroup.
    pub bm: u32,
    /// Columns of C per workgroup.
    pub bn: u32,
    /// Depth of one workgroup-memory stage (only used when `staged`).
    pub bk: u32,
    /// Rows of C per invocation.
    pub tm: u32,
    /// Columns of C per invocation.
    pub tn: u32,
    /// Stage A and B through workgroup memory (`gemm_tiled`) rather than reading global memory
    /// directly (`gemm_global`).
    pub staged: bool,
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
    /// The tile.
    pub tile: GemmTile,
    /// Why this tile (the measurement or hardware fact behind it).
    pub reason: &'static str,
}

const fn entry(
    class: AdapterClass,
    max_n: Option<usize>,
    [bm, bn, bk, tm, tn]: [u32; 5],
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
        },
        reason,
    }
}

/// The tile table, `[bm, bn, bk, tm, tn]`: the first entry for the target's class that fits the
/// problem's width and the target's limits is used. CPU entries read global memory
/// (`gemm_global`), GPU entries stage through workgroup memory (`gemm_tiled`).
pub const GEMM_TILES: &[GemmTileEntry] = &[
    entry(AdapterClass::Cpu, None, [8, 16, 1, 8, 2], "EXPERIMENT"),
    entry(
        AdapterClass::Gpu,
        Some(32),
        [128, 32, 16, 4, 4],
        "narrow GEMMs on GPUs: keep all 256 invocations busy; 10 KiB of workgroup memory",
    ),
    entry(
        AdapterClass::Gpu,
        None,
        [64, 64, 16, 4, 4],
        "GPUs: stage tiles in workgroup memory so each global load feeds 64 FMAs; 256 invocations, \
         8 KiB of workgroup memory fits WebGPU's 16 KiB default, 4x4 register block",
    ),
    entry(
        AdapterClass::Gpu,
        None,
        [32, 32, 8, 4, 4],
        "GPU limited to fewer than 256 invocations or 8 KiB of workgroup memory: 64 invocations, 2 KiB",
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
};

/// The tile for a GEMM with `n` columns on `target`: the first entry of [`GEMM_TILES`] for its
/// class whose `max_n` admits `n` and that fits the target's limits.
pub fn choose_gemm_tile(target: &Target, n: usize) -> GemmTile {
    if target.class == AdapterClass::Cpu {
        if let Ok(v) = std::env::var("FOVEA_CPU_TILE") {
            let v: Vec<u32> = v.split(',').map(|x| x.parse().unwrap()).collect();
            return GemmTile {
                bm: v[0],
                bn: v[1] * v[2],
                bk: 1,
                tm: v[0],
                tn: v[1],
                staged: false,
            };
        }
    }
    GEMM_TILES
        .iter()
        .find(|e| e.class == target.class && e.max_n.is_none_or(|max| n <= max) && e.tile.fits(target))
        .map(|e| e.tile)
        .unwrap_or(FALLBACK_TILE)
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
    /// Rendered WGSL: the bindings and the three loader functions.
    pub loaders: String,
    /// The bindings the loaders declare, in binding order, the output last.
    pub bindings: Vec<BindingRef>,
    /// Minimum bytes read and written.
    pub bytes: u64,
}

/// Builds the kernel instance of `problem` on the GEMM core; `what` names the loaders
/// (`matmul_nn`, `conv2d`, ...) and becomes part of the kernel name
/// `gemm_<what>_<class>_<bm>x<bn>`. `None` if the grid exceeds the target's limits.
pub fn gemm_kernel(
    what: &str,
    node: NodeId,
    problem: GemmProblem,
    target: &Target,
) -> Result<Option<KernelInstance>, KernelError> {
    let tile = choose_gemm_tile(target, problem.n);
    let name = format!("gemm_{what}_{}_{}x{}", target.class.name(), tile.bm, tile.bn);
    let [tx, ty] = tile.threads();
    let max = target.max_workgroups_per_dim as usize;
    let workgroups = [
        problem.n.div_ceil(tile.bn as usize),
        problem.m.div_ceil(tile.bm as usize),
        problem.groups,
    ];
    if workgroups.iter().any(|&w| w > max) || [problem.m, problem.n, problem.k].iter().any(|&d| d > u32::MAX as usize) {
        return Ok(None);
    }
    assert!(
        problem.k_outer > 0 && problem.k % problem.k_outer == 0,
        "{name}: k_outer must divide k"
    );
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
        .set("LOADERS", problem.loaders)
        .render(&name)?
        + &if tile.staged {
            GEMM_TILED_WGSL.to_string()
        } else {
            let b: String = (0..tile.tm)
                .map(|i| format!("            a_reg[{i}] = subgroupBroadcast(a, {i}u);\n"))
                .collect();
            Template::new(GEMM_CPU_WGSL).set("BROADCASTS", b).render(&name)?
        };
    let flops = 2 * (problem.m * problem.n * problem.k * problem.groups) as u64;
    Ok(Some(KernelInstance {
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
    }))
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
        }
        let tiny = Target {
            max_invocations_per_workgroup: 64,
            max_workgroup_storage_bytes: 0,
            ..Target::gpu()
        };
        assert!(FALLBACK_TILE.fits(&tiny));
    }

    #[test]
    fn choice_follows_the_class_the_width_and_the_limits() {
        assert_eq!(choose_gemm_tile(&Target::cpu(), 64), GEMM_TILES[1].tile);
        assert_eq!(choose_gemm_tile(&Target::cpu(), 32), GEMM_TILES[0].tile);
        assert_eq!(choose_gemm_tile(&Target::gpu(), 100), GEMM_TILES[4].tile);
        assert_eq!(choose_gemm_tile(&Target::gpu(), 1), GEMM_TILES[3].tile);
        let small = Target {
            max_invocations_per_workgroup: 128,
            ..Target::gpu()
        };
        assert_eq!(choose_gemm_tile(&small, 10), GEMM_TILES[5].tile);
        let small = Target {
            max_invocations_per_workgroup: 128,
            ..Target::cpu()
        };
        assert_eq!(choose_gemm_tile(&small, 64), GEMM_TILES[2].tile);
        let tiny = Target {
            max_invocations_per_workgroup: 64,
            max_workgroup_storage_bytes: 1024,
            ..Target::gpu()
        };
        assert_eq!(choose_gemm_tile(&tiny, 64), FALLBACK_TILE);
    }
}
