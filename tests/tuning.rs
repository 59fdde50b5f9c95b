//! The GEMM tile tuner (`engine/src/tuning.rs`): every candidate it may choose computes the
//! reference's values, tuning stays inside its budget, its choices persist, and a corrupt or
//! stale cache is ignored and rebuilt without changing results.

mod common;

use common::{class_device, program_vs_reference, random_feeds, single};
use fovea::engine::tuning::{MIN_GAIN, MIN_TUNE_FLOPS, TunedGemm};
use fovea::engine::{Device, DeviceState, Program};
use fovea::graph::ir::*;
use fovea::kernels::tiles::TileChoices;
use proptest::prelude::*;
use std::sync::Arc;
use std::time::Duration;

const TOL: f64 = 1e-4;

fn same3x3() -> ConvGeometry {
    ConvGeometry {
        stride: (1, 1),
        dilation: (1, 1),
        pad: Pad2d {
            top: 1,
            bottom: 1,
            left: 1,
            right: 1,
        },
        groups: 1,
    }
}

/// A matmul, convolution, data gradient or filter gradient (`kind` 0..5; 4 is a matmul with
/// B transposed) of the given sizes.
fn gemm_graph(kind: usize, m: usize, k: usize, n: usize, b: usize, h: usize, c: usize) -> Graph {
    let geom = same3x3();
    let g = match kind {
        0 => single(
            Op::MatMul {
                trans_a: false,
                trans_b: false,
            },
            &[vec![m, k], vec![k, n]],
        ),
        4 => single(
            Op::MatMul {
                trans_a: false,
                trans_b: true,
            },
            &[vec![m, k], vec![n, k]],
        ),
        1 => single(Op::Conv2d(geom), &[vec![b, h, h + 2, c], vec![3, 3, c, n]]),
        2 => single(
            Op::Conv2dBackpropInput {
                geom,
                input_hw: (h, h + 2),
                filter: BackpropFilter::Hwio,
            },
            &[vec![b, h, h + 2, n], vec![3, 3, c, n]],
        ),
        _ => single(
            Op::Conv2dBackpropFilter {
                geom,
                kernel_hw: (3, 3),
            },
            &[vec![b, h, h + 2, c], vec![b, h, h + 2, n]],
        ),
    };
    g.expect("valid shapes")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, max_shrink_iters: 10, ..ProptestConfig::default() })]

    // Every tile the tuner may choose for a GEMM, forced on it, gives the reference's values:
    // so the choice never changes results. Both kernel classes (the GPU class's staged tiles
    // run on lavapipe too); odd and prime sizes leave partial tiles on every side.
    #[test]
    fn every_candidate_tile_matches_reference(
        kind in 0usize..5, m in 1usize..70, k in 1usize..40, n in 1usize..70,
        b in 1usize..3, h in 1usize..9, c in 1usize..13, gpu in any::<bool>(), seed in any::<u64>(),
    ) {
        let class = if gpu { fovea::kernels::AdapterClass::Gpu } else { fovea::kernels::AdapterClass::Cpu };
        let device = class_device(class);
        let g = gemm_graph(kind, m, k, n, b, h, c);
        let feeds = random_feeds(&g, seed, -1.0, 1.0);
        let probe = TileChoices::none();
        let state = DeviceState::new(&device);
        drop(Program::compile_with_tiles(&device, g.clone(), &state, &probe).unwrap());
        let requests = probe.requests();
        // The narrow convolution kernels take a few of these shapes off the GEMM core.
        prop_assume!(!requests.is_empty());
        for tile in requests[0].candidates.clone() {
            let state = DeviceState::new(&device);
            let program = Program::compile_with_tiles(&device, g.clone(), &state, &TileChoices::forcing(tile)).unwrap();
            let (err, at, program) = program_vs_reference(program, &g, &feeds);
            prop_assert!(err <= TOL, "tile {}: relative error {err:e} at {at}", tile.label());
            let dims = format!("_{}x{}", tile.bm, tile.bn);
            prop_assert!(
                program.kernels().iter().any(|k| k.name.contains(&dims)),
                "tile {} not used: {:?}", tile.label(), program.kernels().iter().map(|k| &k.name).collect::<Vec<_>>()
            );
        }
    }
}

/// A graph with two GEMMs above [`MIN_TUNE_FLOPS`]: a matmul and a convolution.
fn tunable() -> Graph {
    let mut g = Graph::new();
    let a = g.input("x", TensorType::f32(vec![200, 96])).unwrap();
    let w = g.param("w", &[96, 128], true, "mm").unwrap();
    let mm = g
        .push(
            Op::MatMul {
                trans_a: false,
                trans_b: false,
            },
            &[a, w],
            "mm",
        )
        .unwrap();
    let img = g.reshape(mm, &[2, 10, 10, 128], "r").unwrap();
    let k = g.param("k", &[3, 3, 128, 36], true, "conv").unwrap();
    let y = g.push(Op::Conv2d(same3x3()), &[img, k], "conv").unwrap();
    g.outputs.push(y);
    g
}

fn compile_and_check(device: &Arc<Device>, g: &Graph) {
    let feeds = random_feeds(g, 7, -1.0, 1.0);
    let program = Program::compile_with_state(device, g.clone(), &DeviceState::new(device)).unwrap();
    let (err, at, _) = program_vs_reference(program, g, &feeds);
    assert!(err <= TOL, "relative error {err:e} at {at}");
}

fn entries(device: &Device) -> std::collections::BTreeMap<String, TunedGemm> {
    device.tuner().entries()
}

#[test]
fn tuning_is_bounded_cached_and_survives_a_corrupt_or_stale_cache() {
    if !fovea::engine::tuning::enabled_from_env() {
        eprintln!("FOVEA_TUNE=0: the tuner is off, nothing to test");
        return;
    }
    let dir = std::env::temp_dir().join(format!("fovea-tuning-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let g = tunable();
    let budget = Duration::from_secs(60);

    // A first device tunes both GEMMs, keeps every candidate's time and saves the choices.
    let d1 = Arc::new(Device::with_tuning(Some(dir.clone()), budget).unwrap());
    assert!(entries(&d1).is_empty());
    compile_and_check(&d1, &g);
    let tuned = entries(&d1);
    assert_eq!(tuned.len(), 2, "{tuned:?}");
    for (key, e) in &tuned {
        assert!(e.flops >= MIN_TUNE_FLOPS, "{key}");
        assert!(e.timings.len() >= 2, "{key}: {e:?}");
        assert!(
            e.timings.iter().all(|(_, ms)| ms.is_finite() && *ms > 0.0),
            "{key}: {e:?}"
        );
        let best = e.timings.iter().map(|t| t.1).fold(f64::INFINITY, f64::min);
        let time = |label: &str| e.timings.iter().find(|(l, _)| l == label).map(|t| t.1);
        let chosen = time(&e.chosen).expect("the winner was timed");
        let table = time(&e.default).expect("the table's tile is a candidate");
        // The fastest wins when it beats the table's tile by MIN_GAIN; else the table's stays.
        if best * (1.0 + MIN_GAIN) < table {
            assert_eq!(chosen, best, "{key}: {e:?}");
        } else {
            assert_eq!(e.chosen, e.default, "{key}: {e:?}");
        }
    }
    let spent = d1.tuner().spent();
    assert!(spent > Duration::ZERO && spent < budget);
    compile_and_check(&d1, &g);
    assert_eq!(d1.tuner().spent(), spent, "a second build tunes nothing");
    let path = d1.tuner().path().expect("a cache file").to_path_buf();
    // One file per kernel class: a run of the other class keeps this one's choices.
    let class = d1.target().class.name();
    let file = path.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        file.starts_with("tuning-") && file.ends_with(&format!("-{class}.json")),
        "{file}"
    );
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(saved["identity"], d1.tuner().identity());

    // A new device reads the choices back and tunes nothing.
    let d2 = Arc::new(Device::with_tuning(Some(dir.clone()), budget).unwrap());
    let read = entries(&d2);
    assert_eq!(read.keys().collect::<Vec<_>>(), tuned.keys().collect::<Vec<_>>());
    for (key, e) in &read {
        let t = &tuned[key];
        assert_eq!(
            (&e.chosen, &e.default, e.flops),
            (&t.chosen, &t.default, t.flops),
            "{key}"
        );
        for ((la, a), (lb, b)) in e.timings.iter().zip(&t.timings) {
            assert!(
                la == lb && (a - b).abs() <= 1e-9 * b.abs(),
                "{key}: {la} {a} vs {lb} {b}"
            );
        }
    }
    compile_and_check(&d2, &g);
    assert_eq!(d2.tuner().spent(), Duration::ZERO);

    // A corrupt cache is ignored (same results) and rewritten.
    std::fs::write(&path, "{\"format\": 1, \"identity\": tru").unwrap();
    let d3 = Arc::new(Device::with_tuning(Some(dir.clone()), budget).unwrap());
    assert!(entries(&d3).is_empty());
    compile_and_check(&d3, &g);
    assert_eq!(entries(&d3).len(), 2);
    let rewritten: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(rewritten["identity"], d3.tuner().identity());

    // A cached choice other than the table's is what the program runs.
    let mut moved = rewritten.clone();
    let (key, entry) = moved["gemm"].as_object_mut().unwrap().iter_mut().next().unwrap();
    let other = entry["timings"].as_array().unwrap()[1][0].as_str().unwrap().to_string();
    assert_ne!(entry["default"].as_str(), Some(other.as_str()), "{key}");
    entry["chosen"] = serde_json::json!(other);
    std::fs::write(&path, moved.to_string()).unwrap();
    let d = Arc::new(Device::with_tuning(Some(dir.clone()), budget).unwrap());
    let program = Program::compile_with_state(&d, g.clone(), &DeviceState::new(&d)).unwrap();
    let tile = fovea::kernels::gemm::GemmTile::parse(&other).unwrap();
    let dims = format!("_{}x{}", tile.bm, tile.bn);
    let names: Vec<&str> = program.kernels().iter().map(|k| k.name.as_str()).collect();
    assert!(names.iter().any(|n| n.contains(&dims)), "{other} not used: {names:?}");
    compile_and_check(&d, &g);

    // One written for another adapter or Fovea version is ignored the same way, and so is a
    // cache whose winner is no tile at all.
    for (field, value) in [
        ("identity", serde_json::json!("another adapter | fovea 0.0.0")),
        ("format", serde_json::json!(99)),
    ] {
        let mut stale = rewritten.clone();
        stale[field] = value;
        std::fs::write(&path, stale.to_string()).unwrap();
        let d = Arc::new(Device::with_tuning(Some(dir.clone()), budget).unwrap());
        assert!(entries(&d).is_empty(), "{field}");
        compile_and_check(&d, &g);
    }
    let mut junk = rewritten.clone();
    for e in junk["gemm"].as_object_mut().unwrap().values_mut() {
        e["chosen"] = serde_json::json!("99x7 t5x3 b2");
    }
    std::fs::write(&path, junk.to_string()).unwrap();
    let d = Arc::new(Device::with_tuning(Some(dir.clone()), Duration::ZERO).unwrap());
    assert!(entries(&d).is_empty());
    // No budget: nothing is tuned, the static table runs, results are the same.
    compile_and_check(&d, &g);
    assert!(entries(&d).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

// The tuner-only CPU tiles and k-unrolled tiles (two or three steps of k per trip of the K
// loop, the rest one by one; only forced, as examples/tile_sweep.rs does) against the reference:
// K even and odd, small (its loop bound hidden from the driver) and large, on a matmul and on a
// convolution's taps and its filter gradient.
#[test]
fn tuner_only_and_k_unrolled_tiles_match_reference() {
    use fovea::kernels::gemm::{GEMM_TILES, GemmTile};
    let device = class_device(fovea::kernels::AdapterClass::Cpu);
    let mut tiles: Vec<(GemmTile, TileChoices)> = GEMM_TILES
        .iter()
        .filter(|e| e.tuner_only)
        .map(|e| (e.tile, TileChoices::forcing(e.tile)))
        .collect();
    assert!(!tiles.is_empty());
    for label in ["16x64 t16x8 b4 k2", "32x32 t32x4 b4 k3"] {
        let tile = GemmTile::parse(label).unwrap();
        tiles.push((tile, TileChoices::forcing_any(tile)));
    }
    for (tile, choices) in &tiles {
        for (kind, m, k, n) in [
            (0, 37, 1, 68),
            (0, 21, 7, 64),
            (0, 9, 130, 36),
            (0, 40, 257, 68),
            (1, 0, 0, 64),
            (3, 0, 0, 64),
        ] {
            let g = gemm_graph(kind, m, k, n, 2, 5, 7);
            let feeds = random_feeds(&g, k as u64, -1.0, 1.0);
            let state = DeviceState::new(&device);
            let program = Program::compile_with_tiles(&device, g.clone(), &state, choices).unwrap();
            let (err, at, program) = program_vs_reference(program, &g, &feeds);
            assert!(
                err <= TOL,
                "tile {} kind {kind} k {k}: relative error {err:e} at {at}",
                tile.label()
            );
            let name = format!(
                "_{}x{}{}",
                tile.bm,
                tile.bn,
                if tile.bk > 1 {
                    format!("_k{}", tile.bk)
                } else {
                    String::new()
                }
            );
            assert!(
                program.kernels().iter().any(|kn| kn.name.contains(&name)),
                "tile {} not used: {:?}",
                tile.label(),
                program.kernels().iter().map(|kn| &kn.name).collect::<Vec<_>>()
            );
        }
    }
}

// `TileChoices::forcing_any` (examples/tile_sweep.rs) runs a tile the table does not have, and
// only where the problem allows it: a vec4 tile on a B that is not vec4-readable gets the table's.
#[test]
fn a_tile_outside_the_table_can_be_forced() {
    let device = class_device(fovea::kernels::AdapterClass::Cpu);
    let tile = fovea::kernels::gemm::GemmTile::parse("16x16 t2x16 b4").unwrap();
    assert!(fovea::kernels::gemm::GEMM_TILES.iter().all(|e| e.tile != tile));
    for (kind, used) in [(0, true), (4, false)] {
        let g = gemm_graph(kind, 37, 29, 68, 1, 1, 1);
        let feeds = random_feeds(&g, 3, -1.0, 1.0);
        let state = DeviceState::new(&device);
        let program = Program::compile_with_tiles(&device, g.clone(), &state, &TileChoices::forcing_any(tile)).unwrap();
        let (err, at, program) = program_vs_reference(program, &g, &feeds);
        assert!(err <= TOL, "kind {kind}: relative error {err:e} at {at}");
        let names: Vec<_> = program.kernels().iter().map(|k| k.name.clone()).collect();
        assert_eq!(
            names.iter().any(|n| n.contains("_16x16")),
            used,
            "kind {kind}: {names:?}"
        );
    }
}
