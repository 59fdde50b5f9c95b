//! Per-problem GEMM tile choices: what the lowering takes from an autotuner (or a test that
//! forces a tile), and the record of every GEMM the lowering met, with the tiles that could run it.
//!
//! The lowering never times anything: the engine's tuner (`engine/src/tuning.rs`) lowers a
//! graph once with the choices it has, reads [`TileChoices::requests`], times the candidates
//! of the problems it has no choice for, and lowers again with the winners. Without choices the
//! static table ([`crate::gemm::GEMM_TILES`]) decides, so results never depend on tuning: every
//! candidate computes the same GEMM (the reference tests run each one).

use crate::Target;
use crate::gemm::{GemmTile, choose_gemm_tile};
use fovea_graph::NodeId;
use std::cell::RefCell;
use std::collections::HashMap;

/// One GEMM the lowering met: the node, its tuning key, the static table's tile, the tiles that
/// could run it (the static one first) and its FLOPs.
#[derive(Debug, Clone, PartialEq)]
pub struct GemmRequest {
    /// The node whose kernel this is.
    pub node: NodeId,
    /// The key a choice is stored under ([`gemm_key`]).
    pub key: String,
    /// The tile the static table gives.
    pub default: GemmTile,
    /// Every tile that fits the target and the problem, `default` first.
    pub candidates: Vec<GemmTile>,
    /// Multiply-adds times two.
    pub flops: u64,
}

/// Tile choices for the lowering: by problem key, or one tile forced on every GEMM it fits.
/// It also records each GEMM the lowering met ([`TileChoices::requests`]).
#[derive(Debug, Default)]
pub struct TileChoices {
    chosen: HashMap<String, GemmTile>,
    forced: Option<GemmTile>,
    outside_table: bool,
    met: RefCell<Vec<GemmRequest>>,
}

impl TileChoices {
    /// No choices: the static table decides everything.
    pub fn none() -> Self {
        Self::default()
    }

    /// Choices by problem key (keys the lowering never meets are ignored).
    pub fn from_map(chosen: HashMap<String, GemmTile>) -> Self {
        TileChoices {
            chosen,
            ..Self::default()
        }
    }

    /// `tile` on every GEMM it can run (see [`candidates`]); the static table elsewhere.
    pub fn forcing(tile: GemmTile) -> Self {
        TileChoices {
            forced: Some(tile),
            ..Self::default()
        }
    }

    /// `tile` on every GEMM it can run at all (it fits the target and the problem's B), even where
    /// the table does not offer it: for trying tiles out (`examples/tile_sweep.rs`).
    pub fn forcing_any(tile: GemmTile) -> Self {
        TileChoices {
            forced: Some(tile),
            outside_table: true,
            ..Self::default()
        }
    }

    /// The tile [`TileChoices::forcing_any`] adds to every problem's candidates.
    pub(crate) fn outside_table(&self) -> Option<GemmTile> {
        self.forced.filter(|_| self.outside_table)
    }

    /// `tile` for the problem `key` only.
    pub fn one(key: &str, tile: GemmTile) -> Self {
        Self::from_map(HashMap::from([(key.to_string(), tile)]))
    }

    /// The GEMMs lowered so far with these choices, in lowering order.
    pub fn requests(&self) -> Vec<GemmRequest> {
        self.met.borrow().clone()
    }

    /// The tile for a problem: the choice for `key` (or the forced tile) when it is one of the
    /// problem's candidates, else the static table's. Records the request.
    pub(crate) fn tile_for(&self, request: GemmRequest) -> GemmTile {
        let wanted = self.forced.or_else(|| self.chosen.get(&request.key).copied());
        let tile = wanted
            .filter(|t| request.candidates.contains(t))
            .unwrap_or(request.default);
        self.met.borrow_mut().push(request);
        tile
    }
}

/// Every tile that can run a GEMM with `n` columns on `target`: the static table's choice
/// first, then the other table entries of the target's class, each once, when they fit the target's limits and the problem's B (`bv = 4` needs `b_vec4`) and
/// suit its width: no more than twice as wide as `n` (the rest would compute clamped
/// duplicates) and at least half as wide (up to 32 columns; narrower tiles load A once per few
/// columns and lost by about 2x wherever they were timed against the wide ones). Each candidate
/// costs a pipeline compile at tuning time, so the list stays short.
pub fn candidates(target: &Target, m: usize, n: usize, b_vec4: bool) -> Vec<GemmTile> {
    // Two rows of 8 lanes (16x32 t8x4 and 16x64 t8x8: two rows of invocations sharing B) were
    // candidates too;
    // on the Intel host they lost to the table's 8-row tiles by 1.3-2x on every problem timed
    // (BENCHMARKS.md, 2026-12-03), so they are not compiled at every first start.
    let default = choose_gemm_tile(target, m, n, b_vec4);
    let table = crate::gemm::GEMM_TILES
        .iter()
        .filter(|e| e.class == target.class)
        .map(|e| e.tile);
    let mut out = vec![default];
    for t in table {
        let width = t.bn as usize;
        let usable = t.fits(target) && (t.bv == 1 || b_vec4) && width <= (2 * n).max(8) && 2 * width >= n.min(64);
        if usable && !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// The key a GEMM's tile choice is stored under: its loaders' name, its sizes, and a stable
/// hash of its loader source (which fixes everything else the kernel depends on: strides,
/// padding, transposes).
pub fn gemm_key(what: &str, m: usize, n: usize, k: usize, groups: usize, b_vec4: bool, loaders: &str) -> String {
    // FNV-1a: stable across Rust releases, unlike `DefaultHasher`, so cached keys stay valid.
    let hash = loaders.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!(
        "{what} m{m} n{n} k{k} g{groups}{} #{hash:016x}",
        if b_vec4 { " b4" } else { "" }
    )
}

impl GemmTile {
    /// A short label, `8x64 t8x8 b4` (`bm x bn`, per-invocation `tm x tn`, B's vector width),
    /// with `k16 staged` for the workgroup-memory variant; [`GemmTile::parse`] reads it back.
    pub fn label(&self) -> String {
        let mut s = format!("{}x{} t{}x{} b{}", self.bm, self.bn, self.tm, self.tn, self.bv);
        if self.staged || self.bk != 1 {
            s += &format!(" k{}", self.bk);
        }
        if self.staged {
            s += " staged";
        }
        s
    }

    /// Parses a [`GemmTile::label`]; `None` for anything else.
    pub fn parse(label: &str) -> Option<GemmTile> {
        let mut parts = label.split_whitespace();
        let pair = |s: &str, prefix: &str| -> Option<(u32, u32)> {
            let (a, b) = s.strip_prefix(prefix)?.split_once('x')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        };
        let (bm, bn) = pair(parts.next()?, "")?;
        let (tm, tn) = pair(parts.next()?, "t")?;
        let bv = parts.next()?.strip_prefix('b')?.parse().ok()?;
        let mut tile = GemmTile {
            bm,
            bn,
            bk: 1,
            tm,
            tn,
            staged: false,
            bv,
        };
        for p in parts {
            match p {
                "staged" => tile.staged = true,
                _ => tile.bk = p.strip_prefix('k')?.parse().ok()?,
            }
        }
        let sane = [bm, bn, tm, tn, tile.bk].iter().all(|&v| (1..=1024).contains(&v))
            && bm.is_multiple_of(tm)
            && bn.is_multiple_of(tn)
            && matches!(bv, 1 | 4);
        sane.then_some(tile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_and_junk_is_refused() {
        for e in crate::gemm::GEMM_TILES {
            assert_eq!(GemmTile::parse(&e.tile.label()), Some(e.tile), "{}", e.tile.label());
        }
        for junk in [
            "",
            "8x64",
            "8x64 t8x8",
            "8x64 t8x8 b3",
            "8x64 t3x8 b4",
            "0x64 t1x8 b4",
            "8x64 t8x8 b4 q",
        ] {
            assert_eq!(GemmTile::parse(junk), None, "{junk}");
        }
    }

    #[test]
    fn candidates_start_with_the_table_and_respect_b_and_width() {
        let cpu = Target::cpu();
        for (n, b4) in [(8, true), (16, true), (32, true), (64, true), (64, false), (3, false)] {
            let c = candidates(&cpu, 1000, n, b4);
            assert_eq!(c[0], choose_gemm_tile(&cpu, 1000, n, b4));
            assert!(c.iter().all(|t| t.bv == 1 || b4), "{n} {b4}: {c:?}");
            assert!(c.iter().skip(1).all(|t| t.bn as usize <= (2 * n).max(8)), "{n}: {c:?}");
            assert!(c.iter().skip(1).all(|t| 2 * t.bn as usize >= n.min(64)), "{n}: {c:?}");
            let mut d = c.clone();
            d.dedup();
            assert_eq!(d.len(), c.len());
        }
        assert!(candidates(&cpu, 1000, 64, true).len() >= 3);
        let gpu = candidates(&Target::gpu(), 1000, 256, false);
        assert!(gpu.len() >= 2 && gpu.iter().all(|t| t.staged));
    }

    #[test]
    fn choices_apply_only_to_their_key_and_only_when_a_candidate() {
        let cpu = Target::cpu();
        let req = |key: &str| GemmRequest {
            node: NodeId(0),
            key: key.into(),
            default: choose_gemm_tile(&cpu, 1000, 64, true),
            candidates: candidates(&cpu, 1000, 64, true),
            flops: 1,
        };
        let other = candidates(&cpu, 1000, 64, true)[1];
        let choices = TileChoices::one("a", other);
        assert_eq!(choices.tile_for(req("a")), other);
        assert_eq!(choices.tile_for(req("b")), req("b").default);
        let stray = GemmTile { bm: 2, ..other };
        assert_eq!(TileChoices::one("a", stray).tile_for(req("a")), req("a").default);
        assert_eq!(TileChoices::forcing(other).tile_for(req("z")), other);
        assert_eq!(choices.requests().len(), 2);
        assert_ne!(
            gemm_key("conv2d", 1, 2, 3, 1, true, "x"),
            gemm_key("conv2d", 1, 2, 3, 1, true, "y")
        );
    }
}
