//! Every kernel variant the lowering can produce, validated by naga, with its bindings and
//! dispatch grid checked against the WGSL and the work it must cover.

use crate::gemm::{GEMM_TILES, choose_gemm_tile};
use crate::softmax::softmax_kernel;
use crate::softmax_ce::softmax_ce_kernel;
use crate::{
    AdapterClass, BufferRef, KernelError, KernelInstance, Target, lower::NodeCx, lower_graph, lower_node, storage_root,
    validate_wgsl, validate_with_info,
};
use fovea_graph::ir::*;
use fovea_graph::{DType, Graph, NodeId, Op, TensorType};
use naga::{AddressSpace, ShaderStage, StorageAccess};

pub(crate) fn targets() -> Vec<Target> {
    vec![
        Target::cpu(),
        Target::gpu(),
        // Adapters with smaller limits take the table's second entries or the fallback tile.
        Target {
            max_invocations_per_workgroup: 128,
            ..Target::cpu()
        },
        // lavapipe with AVX2: subgroups of 8, so the CPU GEMM broadcasts A across lanes.
        Target {
            subgroup_size: Some(8),
            ..Target::cpu()
        },
        // Subgroups of another size than the tile's row of invocations: no broadcasts.
        Target {
            subgroup_size: Some(4),
            ..Target::cpu()
        },
        Target {
            max_invocations_per_workgroup: 128,
            max_workgroup_storage_bytes: 4096,
            ..Target::gpu()
        },
        Target {
            max_invocations_per_workgroup: 64,
            max_workgroup_storage_bytes: 1024,
            ..Target::gpu()
        },
    ]
}

/// Validates `k` with naga and checks its bindings, entry point and grid against the target.
fn check(k: &KernelInstance, target: &Target) {
    let (module, info) = validate_with_info(&k.name, &k.source).unwrap_or_else(|e| panic!("{e}\n{}", k.source));
    let (ep_index, ep) = module
        .entry_points
        .iter()
        .enumerate()
        .find(|(_, e)| e.name == k.entry_point)
        .unwrap_or_else(|| panic!("{}: no entry point {}", k.name, k.entry_point));
    assert_eq!(ep.stage, ShaderStage::Compute, "{}", k.name);
    assert_eq!(ep.workgroup_size, k.workgroup_size, "{}: workgroup size", k.name);
    let ep_info = info.get_entry_point(ep_index);
    let mut declared: Vec<(u32, bool, naga::valid::GlobalUse)> = Vec::new();
    for (h, var) in module.global_variables.iter() {
        if let Some(rb) = &var.binding {
            assert_eq!(rb.group, 0, "{}: group", k.name);
            let AddressSpace::Storage { access } = var.space else {
                panic!("{}: binding {} is not a storage buffer", k.name, rb.binding)
            };
            declared.push((rb.binding, access.contains(StorageAccess::STORE), ep_info[h]));
        }
    }
    declared.sort_by_key(|d| d.0);
    assert_eq!(declared.len(), k.bindings.len(), "{}: binding count", k.name);
    for (i, (binding, writable, usage)) in declared.iter().enumerate() {
        assert_eq!(*binding, i as u32, "{}: bindings must be 0..n", k.name);
        assert_eq!(*writable, k.bindings[i].writable, "{}: access of binding {i}", k.name);
        assert_eq!(
            *writable,
            i + 1 == declared.len(),
            "{}: only the last binding is the output",
            k.name
        );
        let need = if *writable {
            naga::valid::GlobalUse::WRITE
        } else {
            naga::valid::GlobalUse::READ
        };
        assert!(
            usage.contains(need),
            "{}: binding {i} unused by {} ({usage:?})",
            k.name,
            k.entry_point
        );
    }
    let max = target.max_workgroups_per_dim;
    assert!(
        k.workgroups.iter().all(|&w| (1..=max).contains(&w)),
        "{}: workgroups {:?}",
        k.name,
        k.workgroups
    );
    let threads: u32 = k.workgroup_size.iter().product();
    assert!(
        threads <= target.max_invocations_per_workgroup,
        "{}: {threads} invocations",
        k.name
    );
    assert!(
        !k.name.is_empty() && k.source.starts_with("//"),
        "{}: header comment",
        k.name
    );
}

/// Lowers `id`, checks every instance, and checks one-invocation-per-element kernels cover
/// their output (GEMM, softmax and softmax cross-entropy coverage is checked by their tests).
pub(crate) fn lower(g: &Graph, id: NodeId, target: &Target) -> Vec<KernelInstance> {
    let ks = lower_node(g, id, target).unwrap_or_else(|e| panic!("{e}"));
    for k in &ks {
        check(k, target);
        assert_eq!(k.node, id);
        // The first dispatch of a split-K GEMM writes its partials to the scratch buffer.
        let out = if split_of(k) > 1 {
            BufferRef::Scratch(id)
        } else {
            BufferRef::Node(id)
        };
        assert_eq!(k.bindings.last().unwrap().buffer, out, "{}: output binding", k.name);
        assert_eq!(
            k.scratch_bytes > 0,
            k.bindings.iter().any(|b| matches!(b.buffer, BufferRef::Scratch(_))),
            "{}: scratch bytes",
            k.name
        );
        // Pooling and its gradient take 4 channels per invocation when C % 4 == 0, and the
        // gradient of non-overlapping windows one invocation per stride cell: their coverage is
        // checked by `pool_window_and_vec4_variants`. Instance norm and the bitonic sort stride a
        // workgroup over each plane or line (`tests_structural`). The direct convolutions take
        // a block of columns (and 4 channels) per invocation: `direct_conv_coverage`. NMS runs
        // one workgroup per image (`nms_variants_fit_workgroup_memory_or_say_why`).
        if !matches!(
            k.family,
            "gemm"
                | "softmax"
                | "softmax_ce"
                | "concat"
                | "pool"
                | "pool_grad"
                | "instance_norm"
                | "depthwise"
                | "conv_narrow"
                | "nms"
        ) && k.entry_point != "bitonic_top"
        {
            // Elementwise kernels of vec4 outputs take four elements per invocation.
            let per = if k.family == "elementwise" && k.source.contains("ew_out: array<vec4<f32>>") {
                4
            } else {
                1
            };
            assert!(
                per * k.invocations() >= g.ty(id).numel() as u64,
                "{}: grid {:?}",
                k.name,
                k.workgroups
            );
        }
    }
    ks
}

pub(crate) fn input(g: &mut Graph, name: &str, shape: &[usize]) -> NodeId {
    g.input(name, TensorType::f32(shape.to_vec())).unwrap()
}

pub(crate) fn param(g: &mut Graph, name: &str, shape: &[usize]) -> NodeId {
    g.param(name, shape, true, "layer").unwrap()
}

fn geom(stride: usize, dilation: usize, pad: (usize, usize, usize, usize), groups: usize) -> ConvGeometry {
    ConvGeometry {
        stride: (stride, stride),
        dilation: (dilation, dilation),
        pad: Pad2d {
            top: pad.0,
            bottom: pad.1,
            left: pad.2,
            right: pad.3,
        },
        groups,
    }
}

/// Whether a GEMM kernel reads B as vec4 (binding 1 is an array of vec4).
fn b_vec4(k: &KernelInstance) -> bool {
    k.source
        .contains("@binding(1) var<storage, read> mat_b: array<vec4<f32>>")
        || k.source
            .contains("@binding(1) var<storage, read> conv_w: array<vec4<f32>>")
        || k.source
            .contains("@binding(1) var<storage, read> cfg_dy: array<vec4<f32>>")
        || k.source
            .contains("@binding(1) var<storage, read> convt_w: array<vec4<f32>>")
}

/// Checks a GEMM kernel's grid covers `m x n` in `groups` groups.
pub(crate) fn check_gemm_grid(k: &KernelInstance, m: usize, n: usize, groups: usize, target: &Target) {
    let tile = choose_gemm_tile(target, m, n, b_vec4(k));
    assert_eq!(k.family, "gemm");
    assert_eq!(k.entry_point, tile.entry_point());
    assert!(k.workgroups[0] as usize * tile.bn as usize >= n, "{}", k.name);
    // Row tiles beyond the grid limit fold into z (gemm.wgsl): z = groups * splits * folds.
    let zg = groups * split_of(k);
    assert_eq!(k.workgroups[2] as usize % zg, 0, "{}", k.name);
    let folds = k.workgroups[2] as usize / zg;
    assert!(k.workgroups[1] as usize * folds * tile.bm as usize >= m, "{}", k.name);
    assert!(
        k.workgroups.iter().all(|&w| w <= target.max_workgroups_per_dim),
        "{}",
        k.name
    );
    assert_eq!(k.workgroup_size, [tile.bn / tile.tn, tile.bm / tile.tm, 1]);
}

/// The number of splits of K of a GEMM core kernel (`..._splitk<s>`), 1 when it is not split.
fn split_of(k: &KernelInstance) -> usize {
    match (k.name.rsplit_once("_splitk"), k.name.rsplit_once("_slabs")) {
        (Some((_, s)), _) if k.family == "gemm" => s.parse().unwrap_or_else(|_| panic!("{}: split count", k.name)),
        (_, Some((_, s))) if k.family == "depthwise" => s.parse().unwrap_or_else(|_| panic!("{}: slab count", k.name)),
        _ => 1,
    }
}

#[test]
fn conv2d_variants() {
    struct Case {
        x: [usize; 4],
        k: (usize, usize),
        co: usize,
        g: ConvGeometry,
    }
    let cases = [
        // 3x3 "same"
        Case {
            x: [2, 8, 8, 3],
            k: (3, 3),
            co: 8,
            g: geom(1, 1, (1, 1, 1, 1), 1),
        },
        // stride larger than the kernel, prime sizes
        Case {
            x: [1, 11, 13, 5],
            k: (2, 2),
            co: 7,
            g: geom(3, 1, (0, 0, 0, 0), 1),
        },
        // dilation
        Case {
            x: [2, 9, 9, 4],
            k: (3, 3),
            co: 6,
            g: geom(1, 2, (2, 2, 2, 2), 1),
        },
        // asymmetric padding, non-square kernel
        Case {
            x: [1, 7, 6, 3],
            k: (3, 2),
            co: 5,
            g: geom(2, 1, (0, 1, 1, 0), 1),
        },
        // 1x1
        Case {
            x: [3, 5, 5, 7],
            k: (1, 1),
            co: 13,
            g: geom(1, 1, (0, 0, 0, 0), 1),
        },
        // grouped: 2 groups of 2 input and 3 output channels
        Case {
            x: [2, 6, 6, 4],
            k: (3, 3),
            co: 6,
            g: geom(1, 1, (1, 1, 1, 1), 2),
        },
        // grouped, strided, dilated
        Case {
            x: [1, 10, 10, 6],
            k: (3, 3),
            co: 9,
            g: geom(2, 2, (1, 1, 1, 1), 3),
        },
        // a single input channel (MNIST's first layer)
        Case {
            x: [4, 28, 28, 1],
            k: (3, 3),
            co: 32,
            g: geom(1, 1, (0, 0, 0, 0), 1),
        },
    ];
    for t in targets() {
        for c in &cases {
            let mut g = Graph::new();
            let x = input(&mut g, "x", &c.x);
            let w = param(&mut g, "conv/kernel", &[c.k.0, c.k.1, c.x[3] / c.g.groups, c.co]);
            let y = g.push(Op::Conv2d(c.g), &[x, w], "conv").unwrap();
            let ks = lower(&g, y, &t);
            assert_eq!(ks.len(), 1);
            let k = &ks[0];
            let ys = g.shape(y);
            check_gemm_grid(k, ys[0] * ys[1] * ys[2], c.co / c.g.groups, c.g.groups, &t);
            let tile = choose_gemm_tile(&t, ys[0] * ys[1] * ys[2], c.co / c.g.groups, b_vec4(k));
            assert_eq!(
                b_vec4(k),
                t.class == AdapterClass::Cpu && c.co % 4 == 0 && (c.co / c.g.groups) % 4 == 0
            );
            assert_eq!(
                k.source.contains("= subgroupBroadcast("),
                t.class == AdapterClass::Cpu && t.subgroup_size == Some(k.workgroup_size[0])
            );
            let what = if c.g.groups == 1 { "conv2d" } else { "conv2d_grouped" };
            assert_eq!(
                k.name,
                format!("gemm_{what}_{}_{}x{}", t.class.name(), tile.bm, tile.bn)
            );
            let kk = c.k.0 * c.k.1 * c.x[3] / c.g.groups;
            assert_eq!(k.flops, 2 * (ys[0] * ys[1] * ys[2] * c.co * kk) as u64);
            assert_eq!(k.bindings.len(), 3);
        }
    }
}

#[test]
fn depthwise_variants() {
    for t in targets() {
        for (mult, stride, pad, dil) in [
            (1, 1, (1, 1, 1, 1), 1),
            (2, 2, (1, 0, 0, 1), 1),
            (1, 2, (0, 0, 0, 0), 2),
        ] {
            let mut g = Graph::new();
            let x = input(&mut g, "x", &[2, 9, 7, 5]);
            let w = param(&mut g, "dw/kernel", &[3, 3, 1, 5 * mult]);
            let y = g.push(Op::Conv2d(geom(stride, dil, pad, 5)), &[x, w], "dw").unwrap();
            let ks = lower(&g, y, &t);
            assert_eq!((ks[0].family, ks[0].name.as_str()), ("depthwise", "depthwise_conv2d"));
        }
    }
}

/// A `const NAME: u32 = <v>u;` (or i32) of a rendered kernel.
fn wgsl_const(k: &KernelInstance, name: &str) -> usize {
    let at = k
        .source
        .find(&format!("const {name}: "))
        .unwrap_or_else(|| panic!("{}: no {name}", k.name));
    let rest = &k.source[at..];
    let v = rest[rest.find('=').unwrap() + 1..rest.find(';').unwrap()]
        .trim()
        .trim_end_matches('u');
    v.parse().unwrap_or_else(|_| panic!("{}: {name} = {v}", k.name))
}

/// The direct convolution kernels (depthwise and its gradients, the narrow input gradient)
/// take a block of columns, and 4 channels when they come in fours, per invocation: the grid
/// covers every block of every row, and a block covers its row.
#[test]
fn direct_conv_coverage() {
    for t in targets() {
        for (n, h, w, c, mult, s) in [
            (2, 9, 7, 5, 1, 1),
            (1, 13, 17, 8, 1, 2),
            (3, 4, 1, 4, 2, 3),
            (1, 6, 23, 12, 1, 1),
        ] {
            let mut g = Graph::new();
            let x = input(&mut g, "x", &[n, h, w, c]);
            let k = param(&mut g, "dw/kernel", &[3, 3, 1, c * mult]);
            let dgeom = geom(s, 1, (1, 1, 1, 1), c);
            let y = g.push(Op::Conv2d(dgeom), &[x, k], "dw").unwrap();
            let ys = g.shape(y).to_vec();
            let lanes = if mult == 1 && c % 4 == 0 { 4 } else { 1 };
            let fwd = lower(&g, y, &t).remove(0);
            let (oxb, oxblk) = (wgsl_const(&fwd, "OXB"), wgsl_const(&fwd, "OXBLK"));
            let (oyb, oyblk) = (wgsl_const(&fwd, "OYB"), wgsl_const(&fwd, "OYBLK"));
            assert!(oxb * oxblk >= ys[2] && oxb * (oxblk - 1) < ys[2], "{}", fwd.name);
            assert!(oyb * oyblk >= ys[1] && oyb * (oyblk - 1) < ys[1], "{}", fwd.name);
            assert_eq!(wgsl_const(&fwd, "TOTAL"), ys[0] * oyblk * oxblk * c * mult / lanes);
            assert!(fwd.invocations() >= wgsl_const(&fwd, "TOTAL") as u64, "{}", fwd.name);
            let dy = input(&mut g, "dy", &ys);
            let op = Op::Conv2dBackpropInput {
                geom: dgeom,
                input_hw: (h, w),
                filter: BackpropFilter::Hwio,
            };
            let dx = g.push(op, &[dy, k], "dw_dx").unwrap();
            let kdx = lower(&g, dx, &t).remove(0);
            let (ixb, ixblk) = (wgsl_const(&kdx, "IXB"), wgsl_const(&kdx, "IXBLK"));
            assert!(
                ixb % s == 0 && ixb * ixblk >= w && ixb * (ixblk - 1) < w,
                "{}",
                kdx.name
            );
            assert_eq!(wgsl_const(&kdx, "TOTAL"), n * h * ixblk * c / lanes);
            assert!(kdx.invocations() >= wgsl_const(&kdx, "TOTAL") as u64, "{}", kdx.name);
            let dw = g
                .push(
                    Op::Conv2dBackpropFilter {
                        geom: dgeom,
                        kernel_hw: (3, 3),
                    },
                    &[x, dy],
                    "dw_dw",
                )
                .unwrap();
            let kdw = lower(&g, dw, &t);
            let slabs = split_of(&kdw[0]);
            let (rows, rps) = (wgsl_const(&kdw[0], "ROWS"), wgsl_const(&kdw[0], "RPS"));
            assert_eq!(rows, ys[0] * ys[1]);
            assert!(rps * slabs >= rows && rps * (slabs - 1) < rows, "{}", kdw[0].name);
            assert_eq!(kdw.len(), if slabs > 1 { 2 } else { 1 });
            assert!(
                kdw[0].invocations() >= (slabs * c * mult / lanes) as u64,
                "{}",
                kdw[0].name
            );
            // The narrow input gradient of a 3-channel layer.
            let mut g = Graph::new();
            let k3 = param(&mut g, "conv/kernel", &[3, 3, 3, 8]);
            let cgeom = geom(s, 1, (1, 1, 1, 1), 1);
            let oh = (h + 2 - 3) / s + 1;
            let ow = (w + 2 - 3) / s + 1;
            let dy = input(&mut g, "dy", &[n, oh, ow, 8]);
            let op = Op::Conv2dBackpropInput {
                geom: cgeom,
                input_hw: (h, w),
                filter: BackpropFilter::Hwio,
            };
            let dx = g.push(op, &[dy, k3], "conv_dx").unwrap();
            let kn = lower(&g, dx, &t).remove(0);
            assert_eq!(kn.family, "conv_narrow");
            let (ixb, ixblk) = (wgsl_const(&kn, "IXB"), wgsl_const(&kn, "IXBLK"));
            assert!(ixb % s == 0 && ixb * ixblk >= w && ixb * (ixblk - 1) < w, "{}", kn.name);
            assert!(kn.invocations() >= (n * h * ixblk) as u64, "{}", kn.name);
        }
    }
}

#[test]
fn conv_transpose_variants() {
    for t in targets() {
        for (stride, dil, pad, out_pad, c, co) in [
            (2, 1, (1, 1, 1, 1), (1, 1), 4, 3),
            (1, 1, (0, 0, 0, 0), (0, 0), 3, 5),
            (2, 2, (0, 1, 1, 0), (0, 1), 2, 7),
        ] {
            let mut g = Graph::new();
            let x = input(&mut g, "x", &[2, 5, 6, c]);
            let w = param(&mut g, "up/kernel", &[3, 3, co, c]);
            let op = Op::ConvTranspose2d {
                geom: geom(stride, dil, pad, 1),
                out_pad,
            };
            let y = g.push(op, &[x, w], "up").unwrap();
            let ks = lower(&g, y, &t);
            let ys = g.shape(y);
            check_gemm_grid(&ks[0], ys[0] * ys[1] * ys[2], co, 1, &t);
            assert!(ks[0].name.starts_with("gemm_conv_transpose2d_"));
        }
    }
}

#[test]
fn matmul_variants() {
    for t in targets() {
        for (m, k, n) in [(7, 13, 5), (129, 67, 257), (1, 1, 1), (64, 64, 64)] {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                let mut g = Graph::new();
                let a = input(&mut g, "a", &if ta { [k, m] } else { [m, k] });
                let b = param(&mut g, "dense/kernel", &if tb { [n, k] } else { [k, n] });
                let y = g
                    .push(
                        Op::MatMul {
                            trans_a: ta,
                            trans_b: tb,
                        },
                        &[a, b],
                        "dense",
                    )
                    .unwrap();
                let ks = lower(&g, y, &t);
                check_gemm_grid(&ks[0], m, n, 1, &t);
                assert_eq!(ks[0].flops, 2 * (m * n * k) as u64);
                let flags = format!("{}{}", if ta { 't' } else { 'n' }, if tb { 't' } else { 'n' });
                assert!(
                    ks[0].name.starts_with(&format!("gemm_matmul_{flags}_")),
                    "{}",
                    ks[0].name
                );
            }
        }
    }
}

#[test]
fn gemm_table_variants_validate() {
    // Each table entry and the fallback, on problems that are not multiples of any tile: plain
    // and transposed B (vec4 or scalar B on CPUs), with and without subgroups.
    for e in GEMM_TILES {
        // Rows enough for the entry and too few for any earlier one of the same width.
        let m = GEMM_TILES
            .iter()
            .take_while(|o| *o != e)
            .filter(|o| o.class == e.class && o.max_n == e.max_n && o.min_m > 0)
            .map(|o| o.min_m - 1)
            .min()
            .unwrap_or(37)
            .max(e.min_m);
        if e.tuner_only {
            // Never the table's choice: tests/tuning.rs runs every candidate against the
            // reference.
            continue;
        }
        let t = Target {
            class: e.class,
            ..Target::gpu()
        };
        let t = match e.tile.bm {
            32 => Target {
                max_invocations_per_workgroup: 64,
                max_workgroup_storage_bytes: 2048,
                ..t
            },
            _ => t,
        };
        let vec4 = e.tile.bv == 4;
        let ns: Vec<usize> = match (e.class, e.max_n) {
            (AdapterClass::Cpu, Some(max)) if vec4 => vec![max - 4, max],
            (AdapterClass::Cpu, None) if vec4 => vec![68, 36],
            (AdapterClass::Cpu, _) => vec![71, 1],
            (_, Some(max)) => vec![max - 3, 1],
            (_, None) if e.tile.bm == 32 => vec![71, 1],
            (_, None) => vec![71],
        };
        for subgroup_size in [None, Some(8)] {
            let t = Target { subgroup_size, ..t };
            for n in ns.iter().copied() {
                for trans_b in [false, true] {
                    let b_ok = e.class == AdapterClass::Cpu && !trans_b && n % 4 == 0;
                    if vec4 && !b_ok {
                        continue;
                    }
                    if e.class == AdapterClass::Cpu && !vec4 && b_ok {
                        continue;
                    }
                    assert_eq!(choose_gemm_tile(&t, m, n, b_ok), e.tile, "{e:?} n={n}");
                    let mut g = Graph::new();
                    let a = input(&mut g, "a", &[m, 29]);
                    let b = param(&mut g, "b", &if trans_b { [n, 29] } else { [29, n] });
                    let y = g
                        .push(
                            Op::MatMul {
                                trans_a: false,
                                trans_b,
                            },
                            &[a, b],
                            "dense",
                        )
                        .unwrap();
                    let k = &lower(&g, y, &t)[0];
                    assert_eq!(b_vec4(k), vec4);
                    check_gemm_grid(k, m, n, 1, &t);
                }
            }
        }
    }
    // The fallback (no table entry fits) runs on `targets()`'s smallest GPU in the other tests.
    let small = targets()[targets().len() - 1];
    assert!(
        GEMM_TILES
            .iter()
            .all(|e| e.class != small.class || !e.tile.fits(&small))
    );
}

#[test]
fn pool_variants() {
    for t in targets() {
        for kind in [PoolKind::Max, PoolKind::Avg] {
            for (size, stride, pad) in [
                ((2, 2), (2, 2), Pad2d::default()),
                (
                    (3, 3),
                    (2, 2),
                    Pad2d {
                        top: 1,
                        bottom: 1,
                        left: 1,
                        right: 1,
                    },
                ),
                (
                    (3, 2),
                    (1, 3),
                    Pad2d {
                        top: 0,
                        bottom: 2,
                        left: 1,
                        right: 0,
                    },
                ),
            ] {
                let mut g = Graph::new();
                let x = input(&mut g, "x", &[2, 9, 8, 3]);
                let y = g
                    .push(
                        Op::Pool2d(PoolGeometry {
                            kind,
                            size,
                            stride,
                            pad,
                        }),
                        &[x],
                        "pool",
                    )
                    .unwrap();
                let ks = lower(&g, y, &t);
                assert_eq!(ks[0].family, "pool");
            }
        }
    }
}

#[test]
fn reduce_variants() {
    for t in targets() {
        for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min] {
            for axes in [vec![0], vec![1, 2], vec![3], vec![0, 1, 2, 3], vec![0, 2], vec![1, 3]] {
                for keep_dims in [false, true] {
                    let mut g = Graph::new();
                    let x = input(&mut g, "x", &[2, 5, 3, 7]);
                    let y = g
                        .push(
                            Op::Reduce {
                                op,
                                axes: axes.clone(),
                                keep_dims,
                            },
                            &[x],
                            "reduce",
                        )
                        .unwrap();
                    let ks = lower(&g, y, &t);
                    assert_eq!(ks[0].name, format!("reduce_{}", op.name()));
                }
            }
        }
    }
}

fn unary_ops() -> Vec<UnaryOp> {
    use UnaryOp::*;
    vec![
        Relu,
        Relu6,
        LeakyRelu(0.2),
        Sigmoid,
        Tanh,
        Exp,
        Log,
        Neg,
        Sqrt,
        Square,
        Abs,
        Scale(-0.5),
        AddScalar(1e-7),
        Clip(-0.5, 2.0),
        Clip(f32::NEG_INFINITY, 1.0),
        Softplus,
        HardSwish,
        Elu(1.0),
        Elu(0.25),
    ]
}

const BINARY_OPS: [BinaryOp; 9] = [
    BinaryOp::Add,
    BinaryOp::Sub,
    BinaryOp::Mul,
    BinaryOp::Div,
    BinaryOp::Max,
    BinaryOp::Min,
    BinaryOp::Ge,
    BinaryOp::Eq,
    BinaryOp::PRelu,
];

#[test]
fn unary_variants() {
    for t in targets() {
        for op in unary_ops() {
            let mut g = Graph::new();
            let x = input(&mut g, "x", &[3, 5, 7]);
            let y = g.push(Op::Unary(op), &[x], "act").unwrap();
            let ks = lower(&g, y, &t);
            assert_eq!(ks[0].name, format!("elementwise_{}", op.name()));
            assert_eq!(ks[0].bindings.len(), 2);
        }
    }
}

#[test]
fn binary_variants_with_broadcasting() {
    let shapes: [(&[usize], &[usize]); 7] = [
        (&[2, 3, 4], &[2, 3, 4]),
        (&[2, 3, 4], &[4]),
        (&[4], &[2, 3, 4]),
        (&[2, 1, 4], &[3, 1]),
        (&[5], &[1]),
        (&[2, 8, 8, 16], &[1, 1, 1, 16]),
        (&[1, 3, 1], &[2, 1, 5]),
    ];
    for t in targets() {
        for op in BINARY_OPS {
            for (a, b) in shapes {
                let mut g = Graph::new();
                let x = input(&mut g, "a", a);
                let y = param(&mut g, "b", b);
                let z = g.push(Op::Binary(op), &[x, y], "bin").unwrap();
                let ks = lower(&g, z, &t);
                assert_eq!(ks[0].bindings.len(), 3);
            }
            // The same tensor twice binds it once.
            let mut g = Graph::new();
            let x = input(&mut g, "a", &[6, 7]);
            let z = g.push(Op::Binary(op), &[x, x], "bin").unwrap();
            assert_eq!(lower(&g, z, &t)[0].bindings.len(), 2);
        }
    }
}

#[test]
fn select_variants_with_broadcasting_and_i32_conditions() {
    let shapes: [(&[usize], &[usize], &[usize]); 5] = [
        (&[2, 3, 4], &[2, 3, 4], &[2, 3, 4]),
        (&[2, 3, 1], &[4], &[1]),
        (&[4], &[2, 3, 4], &[3, 1]),
        (&[1], &[5, 7], &[5, 7]),
        (&[2, 1, 1, 16], &[2, 8, 8, 16], &[16]),
    ];
    for t in targets() {
        for (c, a, b) in shapes {
            for dtype in [DType::F32, DType::I32] {
                let mut g = Graph::new();
                let cond = g
                    .input(
                        "cond",
                        TensorType {
                            shape: c.to_vec(),
                            dtype,
                        },
                    )
                    .unwrap();
                let x = input(&mut g, "a", a);
                let y = param(&mut g, "b", b);
                let z = g.push(Op::Select, &[cond, x, y], "where").unwrap();
                let ks = lower(&g, z, &t);
                assert_eq!(ks[0].name, "elementwise_select");
                assert_eq!(ks[0].bindings.len(), 4);
                let i32_binding = ks[0].source.contains("ew_in0: array<i32>");
                assert_eq!(i32_binding, dtype == DType::I32, "{}", ks[0].source);
            }
        }
        // Fused: where(x >= 0, x, 0.1 * x) over a per-channel slope, one kernel.
        let mut g = Graph::new();
        let x = input(&mut g, "x", &[2, 4, 4, 8]);
        let s = param(&mut g, "s", &[8]);
        let e = ElemExpr::select(
            ElemExpr::binary(BinaryOp::Ge, ElemExpr::Input(0), ElemExpr::Const(0.0)),
            ElemExpr::Input(0),
            ElemExpr::binary(BinaryOp::PRelu, ElemExpr::Input(0), ElemExpr::Input(1)),
        );
        let y = g.push(Op::Elementwise { expr: e }, &[x, s], "fused").unwrap();
        let ks = lower(&g, y, &t);
        assert_eq!(ks[0].name, "elementwise_ge_prelu_select");
    }
}

#[test]
fn fused_elementwise_chain() {
    use crate::elementwise::{ElemExpr, elementwise_kernel};
    // relu(x * scale[c] + shift[c]) + residual, sigmoid(x) * x (x read twice)
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[2, 4, 4, 8]);
    let s = param(&mut g, "s", &[8]);
    let b = param(&mut g, "b", &[8]);
    let r = input(&mut g, "r", &[2, 4, 4, 8]);
    let m = g.push(Op::Binary(BinaryOp::Mul), &[x, s], "m").unwrap();
    let a = g.push(Op::Binary(BinaryOp::Add), &[m, b], "a").unwrap();
    let y = g.push(Op::Unary(UnaryOp::Relu), &[a], "y").unwrap();
    let out = g.push(Op::Binary(BinaryOp::Add), &[y, r], "out").unwrap();
    let e = ElemExpr::binary(
        BinaryOp::Add,
        ElemExpr::unary(
            UnaryOp::Relu,
            ElemExpr::binary(
                BinaryOp::Add,
                ElemExpr::binary(BinaryOp::Mul, ElemExpr::Input(0), ElemExpr::Input(1)),
                ElemExpr::Input(2),
            ),
        ),
        ElemExpr::binary(
            BinaryOp::Mul,
            ElemExpr::unary(UnaryOp::Sigmoid, ElemExpr::Input(3)),
            ElemExpr::Input(3),
        ),
    );
    for t in targets() {
        let k = elementwise_kernel(&g, out, &[x, s, b, r], &e, &t).unwrap();
        check(&k, &t);
        assert_eq!(k.bindings.len(), 5);
        assert_eq!(k.name, "elementwise_mul_add_relu_sigmoid_mul_add");
        assert_eq!(k.flops, 6 * 256);
        // The per-channel input read modulo its length, four channels at a time.
        assert!(k.source.contains("ew_in1[((e % 8u)) / 4u]"), "{}", k.source);
    }
    // An input never read, or an index beyond the inputs, is an error naming the node.
    let err = elementwise_kernel(&g, out, &[x, s], &ElemExpr::Input(0), &Target::cpu()).unwrap_err();
    assert!(err.to_string().contains("never read"), "{err}");
    let err = elementwise_kernel(&g, out, &[x], &ElemExpr::Input(1), &Target::cpu()).unwrap_err();
    assert!(matches!(err, KernelError::Unsupported { .. }), "{err}");
}

#[test]
fn softmax_variants() {
    for t in targets() {
        for log in [false, true] {
            for len in [1, 10, 63, 64, 65, 1000] {
                let mut g = Graph::new();
                let x = input(&mut g, "x", &[3, 7, len]);
                let op = if log { Op::LogSoftmax } else { Op::Softmax };
                let y = g.push(op, &[x], "softmax").unwrap();
                let lowered = lower(&g, y, &t);
                let cx = NodeCx {
                    graph: &g,
                    id: y,
                    node: g.node(y),
                    target: &t,
                    in_place: None,
                    tiles: None,
                };
                for workgroup in [false, true] {
                    let k = softmax_kernel(&cx, 21, len, log, workgroup).unwrap();
                    check(&k, &t);
                    if workgroup {
                        assert!(k.workgroups.iter().map(|&w| w as u64).product::<u64>() >= 21);
                        assert_eq!(k.workgroup_size, [64, 1, 1]);
                    } else {
                        assert!(k.invocations() >= 21);
                    }
                }
                let wg = crate::softmax::softmax_uses_workgroup(len, &t);
                assert_eq!(
                    lowered[0].entry_point,
                    if wg { "softmax_workgroup" } else { "softmax_thread" }
                );
            }
        }
    }
    // More rows than one grid dimension holds: the workgroup variant folds them into 2-D.
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[70_000, 300]);
    let y = g.push(Op::Softmax, &[x], "softmax").unwrap();
    let k = &lower(&g, y, &Target::gpu())[0];
    assert_eq!(k.entry_point, "softmax_workgroup");
    assert_eq!(k.workgroups, [65535, 2, 1]);
}

#[test]
fn softmax_cross_entropy_variants() {
    for t in targets() {
        for grad in [false, true] {
            for (lead, len) in [
                (vec![3, 7], 1),
                (vec![1], 1),
                (vec![7], 10),
                (vec![2, 3, 5], 13),
                (vec![3, 7], 63),
                (vec![3, 7], 64),
                (vec![3, 7], 65),
                (vec![7], 257),
                (vec![3, 7], 1000),
                (vec![], 1000),
            ] {
                let mut shape = lead.clone();
                shape.push(len);
                let rows: usize = lead.iter().product();
                let mut g = Graph::new();
                let x = input(&mut g, "x", &shape);
                let labels = input(&mut g, "labels", &shape);
                let y = if grad {
                    let per_row = if lead.is_empty() { vec![1] } else { lead.clone() };
                    let d = input(&mut g, "dloss", &per_row);
                    g.push(Op::SoftmaxCrossEntropyGrad, &[x, labels, d], "loss").unwrap()
                } else {
                    g.push(Op::SoftmaxCrossEntropy, &[x, labels], "loss").unwrap()
                };
                let lowered = lower(&g, y, &t);
                assert_eq!(lowered.len(), 1);
                let k = &lowered[0];
                assert_eq!(k.family, "softmax_ce");
                assert_eq!(k.bindings.len(), if grad { 4 } else { 3 }, "{}", k.name);
                let wg = crate::softmax::softmax_uses_workgroup(len, &t);
                let entry = if wg {
                    "softmax_ce_workgroup"
                } else {
                    "softmax_ce_thread"
                };
                assert_eq!(k.entry_point, entry);
                let op = if grad { "softmax_ce_grad" } else { "softmax_ce" };
                assert_eq!(k.name, format!("{op}_{}", if wg { "workgroup" } else { "thread" }));
                let cx = NodeCx {
                    graph: &g,
                    id: y,
                    node: g.node(y),
                    target: &t,
                    in_place: None,
                    tiles: None,
                };
                // Both variants, whichever the lowering picks: every row gets an invocation or a
                // workgroup.
                for workgroup in [false, true] {
                    let k = softmax_ce_kernel(&cx, rows.max(1) as u64, len, grad, workgroup).unwrap();
                    check(&k, &t);
                    if workgroup {
                        assert!(k.workgroups.iter().map(|&w| w as u64).product::<u64>() >= rows as u64);
                        assert_eq!(k.workgroup_size, [64, 1, 1]);
                    } else {
                        assert!(k.invocations() >= rows as u64);
                    }
                }
            }
        }
    }
    // More rows than one grid dimension holds: the workgroup variant folds them into 2-D.
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[70_000, 300]);
    let labels = input(&mut g, "labels", &[70_000, 300]);
    let y = g.push(Op::SoftmaxCrossEntropy, &[x, labels], "loss").unwrap();
    let k = &lower(&g, y, &Target::gpu())[0];
    assert_eq!(k.entry_point, "softmax_ce_workgroup");
    assert_eq!(k.workgroups, [65535, 2, 1]);
    assert!(k.source.contains("+ wid.y * 65535u"), "{}", k.source);
}

#[test]
fn batchnorm_resize_pad_transpose() {
    for t in targets() {
        let mut g = Graph::new();
        let x = input(&mut g, "x", &[2, 5, 6, 3]);
        let stats: Vec<NodeId> = ["gamma", "beta", "mean", "var"]
            .iter()
            .map(|n| param(&mut g, n, &[3]))
            .collect();
        let bn = g.push(
            Op::BatchNormInference { epsilon: 1e-3 },
            &[x, stats[0], stats[1], stats[2], stats[3]],
            "bn",
        );
        let bn = bn.unwrap();
        assert_eq!(lower(&g, bn, &t)[0].bindings.len(), 6);
        for mode in ResizeMode::ALL {
            for (h, w) in [(10, 12), (3, 4), (5, 6), (1, 1)] {
                let y = g
                    .push(
                        Op::Resize {
                            mode,
                            height: h,
                            width: w,
                        },
                        &[x],
                        "resize",
                    )
                    .unwrap();
                lower(&g, y, &t);
            }
        }
        for (pads, value) in [
            (vec![(0, 0), (1, 1), (1, 1), (0, 0)], 0.0),
            (vec![(1, 0), (0, 2), (3, 0), (1, 1)], -1.5),
            (vec![(0, 0); 4], f32::NEG_INFINITY),
        ] {
            let y = g
                .push(
                    Op::Pad {
                        pads,
                        value,
                        mode: PadMode::Constant,
                    },
                    &[x],
                    "pad",
                )
                .unwrap();
            lower(&g, y, &t);
        }
        // Reflect and replicate on any axis (channels included), and their gradients.
        for mode in [PadMode::Reflect, PadMode::Replicate] {
            for pads in [
                vec![(0, 0), (1, 1), (1, 1), (0, 0)],
                vec![(1, 0), (0, 2), (3, 0), (1, 2)],
                vec![(0, 0), (0, 0), (0, 0), (2, 2)],
                vec![(0, 0); 4],
            ] {
                let op = Op::Pad {
                    pads: pads.clone(),
                    value: 0.0,
                    mode,
                };
                let y = g.push(op, &[x], "pad").unwrap();
                let ks = lower(&g, y, &t);
                assert_eq!(ks[0].name, format!("pad_{}", mode.name()));
                let padded = g.shape(y).to_vec();
                let dy = input(&mut g, "dy", &padded);
                let dx = g.push(Op::PadBackprop { pads, mode }, &[dy], "pad").unwrap();
                assert_eq!(g.shape(dx), g.shape(x));
                let ks = lower(&g, dx, &t);
                assert_eq!(ks[0].name, format!("pad_{}_backprop", mode.name()));
            }
        }
        for perm in [
            vec![0, 3, 1, 2],
            vec![0, 2, 3, 1],
            vec![3, 2, 1, 0],
            vec![0, 1, 2, 3],
            vec![1, 0, 2, 3],
        ] {
            let y = g.push(Op::Transpose { perm }, &[x], "transpose").unwrap();
            lower(&g, y, &t);
        }
    }
}

#[test]
fn slice_broadcast_fill() {
    for t in targets() {
        for dtype in [DType::F32, DType::I32] {
            let mut g = Graph::new();
            let x = g
                .input(
                    "x",
                    TensorType {
                        shape: vec![3, 4, 5],
                        dtype,
                    },
                )
                .unwrap();
            for (starts, sizes) in [([1, 0, 2], [2, 4, 3]), ([0, 0, 0], [3, 4, 5]), ([2, 3, 4], [1, 1, 1])] {
                let op = Op::Slice {
                    starts: starts.to_vec(),
                    sizes: sizes.to_vec(),
                };
                let y = g.push(op, &[x], "slice").unwrap();
                let k = &lower(&g, y, &t)[0];
                assert_eq!((k.family, k.name.as_str()), ("copy", "slice"));
            }
            let b = g
                .input(
                    "b",
                    TensorType {
                        shape: vec![4, 1],
                        dtype,
                    },
                )
                .unwrap();
            for shape in [vec![2, 4, 5], vec![4, 1], vec![3, 4, 7]] {
                let y = g.push(Op::Broadcast { shape }, &[b], "broadcast").unwrap();
                let k = &lower(&g, y, &t)[0];
                assert_eq!(k.name, "broadcast");
                assert!(k.source.contains(if dtype == DType::I32 {
                    "array<i32>"
                } else {
                    "array<f32>"
                }));
            }
        }
        let mut g = Graph::new();
        for value in [0.0, -2.5, f32::INFINITY] {
            let y = g.fill(&[3, 7], value, "fill").unwrap();
            let k = &lower(&g, y, &t)[0];
            assert_eq!((k.name.as_str(), k.bindings.len()), ("elementwise_fill", 1));
        }
    }
}

#[test]
fn concat_writes_one_slice_per_input() {
    for t in targets() {
        for axis in [1, 3] {
            for dtype in [DType::F32, DType::I32] {
                let mut g = Graph::new();
                let mut xs = Vec::new();
                for (i, len) in [2usize, 3, 5].into_iter().enumerate() {
                    let mut shape = vec![2, 4, 4, 3];
                    shape[axis] = len;
                    xs.push(g.input(&format!("x{i}"), TensorType { shape, dtype }).unwrap());
                }
                let y = g.push(Op::Concat { axis }, &xs, "concat").unwrap();
                let ks = lower(&g, y, &t);
                assert_eq!(ks.len(), 3);
                for (i, k) in ks.iter().enumerate() {
                    assert_eq!(k.bindings[0].buffer, BufferRef::Node(xs[i]));
                    assert!(k.bindings[1].writable);
                    assert!(k.invocations() >= g.ty(xs[i]).numel() as u64);
                }
                let inner = if axis == 1 { 12 } else { 1 };
                assert!(
                    ks[2].source.contains(&format!("const OFFSET: u32 = {}u;", 5 * inner)),
                    "{}",
                    ks[2].source
                );
            }
        }
    }
    // An i32 transpose copies integers.
    let mut g = Graph::new();
    let x = g
        .input(
            "labels",
            TensorType {
                shape: vec![4, 3],
                dtype: DType::I32,
            },
        )
        .unwrap();
    let y = g.push(Op::Transpose { perm: vec![1, 0] }, &[x], "t").unwrap();
    assert!(lower(&g, y, &Target::cpu())[0].source.contains("array<i32>"));
}

/// GEMMs with more row tiles than one grid dimension holds fold them into z, on every target
/// class, and stay valid; unfolded grids are unchanged. A target whose grid limit is about the
/// square root of the row tiles stands in for 65,535 (a batch-32 128x128 convolution).
#[test]
fn gemm_row_tiles_beyond_the_grid_limit_fold_into_z() {
    for t in targets() {
        for (x, k, pad) in [([1, 64, 63, 1], 1, 0), ([2, 17, 19, 2], 3, 1)] {
            let mut g = Graph::new();
            let xi = input(&mut g, "x", &x);
            let w = param(&mut g, "w", &[k, k, x[3], 2]);
            let y = g
                .push(Op::Conv2d(geom(1, 1, (pad, pad, pad, pad), 1)), &[xi, w], "conv")
                .unwrap();
            let m = x[0] * x[1] * x[2];
            let gemm_of = |target: &Target| {
                let ks = lower(&g, y, target);
                ks.into_iter().find(|k| k.family == "gemm").expect("a GEMM kernel")
            };
            let plain = gemm_of(&t);
            check(&plain, &t);
            check_gemm_grid(&plain, m, 2, 1, &t);
            assert_eq!(plain.workgroups[2], 1, "{}: folded without need", plain.name);
            let tiles = plain.workgroups[1];
            let limit = (tiles as f64).sqrt().ceil() as u32;
            assert!(limit < tiles, "{}: {tiles} row tiles", plain.name);
            let small = Target {
                max_workgroups_per_dim: limit,
                ..t
            };
            let folded = gemm_of(&small);
            check(&folded, &small);
            check_gemm_grid(&folded, m, 2, 1, &small);
            assert_eq!(folded.workgroups[1], limit, "{}", folded.name);
            assert!(
                folded.workgroups[2] > 1,
                "{}: {:?} did not fold",
                folded.name,
                folded.workgroups
            );
            assert!(folded.source.contains("row_tile(wid)"), "{}", folded.name);
        }
    }
}

#[test]
fn large_one_dimensional_dispatch_uses_a_2d_grid() {
    let total = 65535 * 256 + 4097;
    for t in targets() {
        let mut g = Graph::new();
        let x = input(&mut g, "x", &[total]);
        let y = g.push(Op::Unary(UnaryOp::Relu), &[x], "relu").unwrap();
        let k = &lower(&g, y, &t)[0];
        assert!(k.workgroups[1] > 1, "{:?}", k.workgroups);
        assert!(k.invocations() >= total as u64);
        assert!(k.source.contains("gid.y *"));
    }
}

#[test]
fn views_bind_their_storage_root() {
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[2, 3, 4]);
    let seed = input(&mut g, "seed", &[1]);
    let r = g.reshape(x, &[6, 4], "flatten").unwrap();
    let d = g
        .push(
            Op::Dropout {
                rate: 0.5,
                training: false,
            },
            &[r],
            "dropout",
        )
        .unwrap();
    let y = g.push(Op::Unary(UnaryOp::Relu), &[d], "relu").unwrap();
    assert_eq!(storage_root(&g, d), x);
    assert_eq!(storage_root(&g, y), y);
    for id in [x, r, d] {
        assert!(lower_node(&g, id, &Target::cpu()).unwrap().is_empty());
    }
    let k = &lower(&g, y, &Target::cpu())[0];
    assert_eq!(k.bindings[0].buffer, BufferRef::Node(x));
    let t = g
        .push(
            Op::Dropout {
                rate: 0.5,
                training: true,
            },
            &[y, seed],
            "drop_train",
        )
        .unwrap();
    // Training-mode dropout reads x through its storage root and the seed.
    let k = &lower(&g, t, &Target::cpu())[0];
    assert_eq!(k.name, "dropout");
    assert_eq!(k.bindings[0].buffer, BufferRef::Node(y));
    assert_eq!(k.bindings[1].buffer, BufferRef::Node(seed));
}

#[test]
fn lower_graph_covers_a_small_cnn() {
    for t in [Target::cpu(), Target::gpu()] {
        let mut g = Graph::new();
        let x = input(&mut g, "image", &[4, 16, 16, 3]);
        let w = param(&mut g, "conv/kernel", &[3, 3, 3, 8]);
        let b = param(&mut g, "conv/bias", &[8]);
        let c = g
            .push(Op::Conv2d(geom(1, 1, (1, 1, 1, 1), 1)), &[x, w], "conv")
            .unwrap();
        let c = g.push(Op::Binary(BinaryOp::Add), &[c, b], "conv").unwrap();
        let c = g.push(Op::Unary(UnaryOp::Relu), &[c], "conv").unwrap();
        let pool = PoolGeometry {
            kind: PoolKind::Max,
            size: (2, 2),
            stride: (2, 2),
            pad: Pad2d::default(),
        };
        let p = g.push(Op::Pool2d(pool), &[c], "pool").unwrap();
        let f = g.reshape(p, &[4, 8 * 8 * 8], "flatten").unwrap();
        let dw = param(&mut g, "dense/kernel", &[512, 10]);
        let d = g
            .push(
                Op::MatMul {
                    trans_a: false,
                    trans_b: false,
                },
                &[f, dw],
                "dense",
            )
            .unwrap();
        let s = g.push(Op::Softmax, &[d], "dense").unwrap();
        g.outputs.push(s);
        let ks = lower_graph(&g, &t).unwrap();
        let families: Vec<&str> = ks.iter().map(|k| k.family).collect();
        if t.class == AdapterClass::Gpu {
            // The dense layer (4 x 512 x 10: one workgroup, a long K) splits K on GPUs.
            assert_eq!(
                families,
                [
                    "gemm",
                    "elementwise",
                    "elementwise",
                    "pool",
                    "gemm",
                    "split_k",
                    "softmax"
                ]
            );
        } else {
            assert_eq!(
                families,
                ["gemm", "elementwise", "elementwise", "pool", "gemm", "softmax"]
            );
        }
        assert_eq!(
            ks[4].bindings[0].buffer,
            BufferRef::Node(p),
            "the matmul reads the pool's buffer"
        );
        for k in &ks {
            check(k, &t);
        }
    }
}

#[test]
fn broken_wgsl_is_an_error_naming_the_kernel_with_nagas_text() {
    // A parse error: a template filled with a value of the wrong type.
    let src = crate::template::Template::new("@compute @workgroup_size(1)\nfn main() {\n    let n: u32 = {{N}};\n}\n")
        .set("N", "1.5f")
        .render("broken_kernel")
        .unwrap();
    let err = validate_wgsl("broken_kernel", &src).unwrap_err();
    let KernelError::Invalid { kernel, message } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(kernel, "broken_kernel");
    assert!(message.contains("error") && message.contains("let n: u32"), "{message}");
    assert!(err.to_string().contains("broken_kernel"));
    // A validation error: storing into a read-only buffer.
    let src = "@group(0) @binding(0) var<storage, read> x: array<f32>;\n\
               @compute @workgroup_size(1)\nfn main() {\n    x[0] = 1.0;\n}\n";
    let err = validate_wgsl("read_only_store", src).unwrap_err();
    assert!(
        matches!(&err, KernelError::Invalid { kernel, .. } if kernel == "read_only_store"),
        "{err}"
    );
    // A real template with a placeholder left unfilled never reaches naga.
    let err = crate::template::Template::new(include_str!("../wgsl/pool.wgsl"))
        .render("pool_max")
        .unwrap_err();
    assert!(
        err.to_string().contains("pool_max") && err.to_string().contains("no value"),
        "{err}"
    );
}

#[test]
fn every_template_has_a_header_comment() {
    for (name, src) in [
        ("gemm", include_str!("../wgsl/gemm.wgsl")),
        ("gemm_cpu", include_str!("../wgsl/gemm_cpu.wgsl")),
        ("gemm_tiled", include_str!("../wgsl/gemm_tiled.wgsl")),
        ("matmul", include_str!("../wgsl/matmul.wgsl")),
        ("conv", include_str!("../wgsl/conv.wgsl")),
        ("pad_grad", include_str!("../wgsl/pad_grad.wgsl")),
        ("conv_transpose", include_str!("../wgsl/conv_transpose.wgsl")),
        ("depthwise", include_str!("../wgsl/depthwise.wgsl")),
        ("pool", include_str!("../wgsl/pool.wgsl")),
        ("reduce", include_str!("../wgsl/reduce.wgsl")),
        ("softmax", include_str!("../wgsl/softmax.wgsl")),
        ("softmax_ce", include_str!("../wgsl/softmax_ce.wgsl")),
        ("batchnorm", include_str!("../wgsl/batchnorm.wgsl")),
        ("resize", include_str!("../wgsl/resize.wgsl")),
        ("concat", include_str!("../wgsl/concat.wgsl")),
        ("pad", include_str!("../wgsl/pad.wgsl")),
        ("copy", include_str!("../wgsl/copy.wgsl")),
        ("dropout", include_str!("../wgsl/dropout.wgsl")),
        ("conv_filter_grad", include_str!("../wgsl/conv_filter_grad.wgsl")),
        ("pool_grad", include_str!("../wgsl/pool_grad.wgsl")),
        ("resize_grad", include_str!("../wgsl/resize_grad.wgsl")),
        ("elementwise", include_str!("../wgsl/elementwise.wgsl")),
    ] {
        assert!(src.starts_with(&format!("// {name}.wgsl: ")), "{name}");
        assert!(src.to_lowercase().contains("binding"), "{name}");
    }
    assert_eq!(AdapterClass::Cpu.name(), "cpu");
}

#[test]
fn unary_grad_and_dropout_variants() {
    for t in targets() {
        for op in unary_ops() {
            let mut g = Graph::new();
            let x = input(&mut g, "x", &[3, 5, 7]);
            let dy = input(&mut g, "dy", &[3, 5, 7]);
            let y = g.push(Op::UnaryGrad(op), &[x, dy], "act_grad").unwrap();
            let ks = lower(&g, y, &t);
            assert_eq!(ks[0].name, format!("elementwise_{}_grad", op.name()));
            assert_eq!(ks[0].bindings.len(), 3);
        }
        for rate in [0.0, 0.5, 0.9] {
            let mut g = Graph::new();
            let x = input(&mut g, "x", &[4, 33]);
            let seed = input(&mut g, "seed", &[1]);
            let y = g
                .push(Op::Dropout { rate, training: true }, &[x, seed], "dropout")
                .unwrap();
            assert_eq!(lower(&g, y, &t)[0].bindings.len(), 3);
        }
    }
}

#[test]
fn conv_gradient_variants() {
    // (input, kernel hw, filters, geometry): plain, strided with asymmetric padding, dilated,
    // grouped, depthwise with multiplier 2, 1x1.
    let cases = [
        ([2, 8, 8, 3], (3, 3), 8, geom(1, 1, (1, 1, 1, 1), 1)),
        ([1, 11, 13, 5], (3, 2), 7, geom(2, 1, (0, 1, 1, 0), 1)),
        ([2, 9, 9, 4], (3, 3), 6, geom(1, 2, (2, 2, 2, 2), 1)),
        ([1, 10, 10, 6], (3, 3), 9, geom(2, 1, (1, 1, 1, 1), 3)),
        ([2, 7, 6, 5], (3, 3), 10, geom(1, 1, (1, 1, 1, 1), 5)),
        ([3, 5, 5, 7], (1, 1), 13, geom(3, 1, (0, 0, 0, 0), 1)),
    ];
    for t in targets() {
        for (xs, k, co, geom) in cases {
            let mut g = Graph::new();
            let x = input(&mut g, "x", &xs);
            let w = param(&mut g, "conv/kernel", &[k.0, k.1, xs[3] / geom.groups, co]);
            let y = g.push(Op::Conv2d(geom), &[x, w], "conv").unwrap();
            let ys = g.shape(y).to_vec();
            let dy = input(&mut g, "dy", &ys);
            let dx = g
                .push(
                    Op::Conv2dBackpropInput {
                        geom,
                        input_hw: (xs[1], xs[2]),
                        filter: BackpropFilter::Hwio,
                    },
                    &[dy, w],
                    "conv_dx",
                )
                .unwrap();
            let depthwise = geom.groups == xs[3];
            let narrow = geom.groups == 1 && xs[3] <= 4 && co % 4 == 0;
            let k_dx = &lower(&g, dx, &t)[0];
            let kk = (ys[0] * ys[1] * ys[2]) as u64;
            // The direct kernels count the forward convolution's FLOPs (the GEMM core also the
            // products with the zeros between strided taps).
            if depthwise || narrow {
                let name = if depthwise {
                    "depthwise_input_grad"
                } else {
                    "conv2d_backprop_input_narrow"
                };
                assert!(k_dx.name.starts_with(name), "{}", k_dx.name);
                assert_eq!(k_dx.flops, 2 * kk * (k.0 * k.1 * xs[3] / geom.groups * co) as u64);
            } else {
                check_gemm_grid(k_dx, xs[0] * xs[1] * xs[2], xs[3] / geom.groups, geom.groups, &t);
                assert!(k_dx.name.starts_with("gemm_conv2d_backprop_input_"), "{}", k_dx.name);
            }
            let dw = g
                .push(Op::Conv2dBackpropFilter { geom, kernel_hw: k }, &[x, dy], "conv_dw")
                .unwrap();
            let k_dw = &lower(&g, dw, &t)[0];
            if depthwise {
                assert!(k_dw.name.starts_with("depthwise_filter_grad"), "{}", k_dw.name);
            } else {
                check_gemm_grid(k_dw, k.0 * k.1 * xs[3] / geom.groups, co / geom.groups, geom.groups, &t);
            }
            assert_eq!(k_dw.flops, 2 * kk * (k.0 * k.1 * xs[3] / geom.groups * co) as u64);
        }
    }
}

/// The input gradient reading the transposed kernel `(KH, KW, CO, C / groups)`
/// (`BackpropFilter::Hwoi`): every geometry, `vec4` B exactly where the CPU class allows it and
/// `C / groups % 4 == 0`, the same FLOPs as the HWIO variant.
#[test]
fn conv_backprop_input_hwoi_variants() {
    // (input, kernel hw, filters, geometry): plain with vec4 B, strided asymmetric, dilated,
    // grouped with vec4 B per group, grouped scalar, depthwise, 1x1 with stride > kernel,
    // N = 12 (vec4 over three columns' groups of 4).
    let cases = [
        ([2, 8, 8, 8], (3, 3), 8, geom(1, 1, (1, 1, 1, 1), 1)),
        ([1, 11, 13, 5], (3, 2), 7, geom(2, 1, (0, 1, 1, 0), 1)),
        ([2, 9, 9, 4], (3, 3), 6, geom(1, 2, (2, 2, 2, 2), 1)),
        ([1, 10, 10, 16], (3, 3), 6, geom(2, 1, (1, 1, 1, 1), 2)),
        ([1, 10, 10, 6], (3, 3), 9, geom(2, 1, (1, 1, 1, 1), 3)),
        ([3, 5, 5, 7], (1, 1), 13, geom(3, 1, (0, 0, 0, 0), 1)),
        ([1, 6, 6, 12], (2, 2), 4, geom(1, 1, (0, 1, 0, 1), 1)),
    ];
    for t in targets() {
        for (xs, k, co, geom) in cases {
            let cg = xs[3] / geom.groups;
            let mut g = Graph::new();
            let x = input(&mut g, "x", &xs);
            let w = param(&mut g, "conv/kernel", &[k.0, k.1, cg, co]);
            let y = g.push(Op::Conv2d(geom), &[x, w], "conv").unwrap();
            let ys = g.shape(y).to_vec();
            let dy = input(&mut g, "dy", &ys);
            let wt = param(&mut g, "conv/kernel_t", &[k.0, k.1, co, cg]);
            let mut dx = |filter, w| {
                let op = Op::Conv2dBackpropInput {
                    geom,
                    input_hw: (xs[1], xs[2]),
                    filter,
                };
                let id = g.push(op, &[dy, w], "conv_dx").unwrap();
                lower(&g, id, &t).remove(0)
            };
            let (old, new) = (dx(BackpropFilter::Hwio, w), dx(BackpropFilter::Hwoi, wt));
            assert!(new.name.starts_with("gemm_conv2d_backprop_input_hwoi_"), "{}", new.name);
            check_gemm_grid(&new, xs[0] * xs[1] * xs[2], cg, geom.groups, &t);
            let vec4 = t.class == AdapterClass::Cpu && cg % 4 == 0;
            assert_eq!(b_vec4(&new), vec4, "{} {xs:?} {geom:?}", new.name);
            assert!(!b_vec4(&old), "{}", old.name);
            assert_eq!(new.flops, old.flops);
        }
    }
}

#[test]
fn pool_and_resize_gradient_variants() {
    for t in targets() {
        for kind in [PoolKind::Max, PoolKind::Avg] {
            for (size, stride, pad) in [
                ((2, 2), (2, 2), Pad2d::default()),
                (
                    (3, 3),
                    (1, 1),
                    Pad2d {
                        top: 1,
                        bottom: 1,
                        left: 1,
                        right: 1,
                    },
                ),
                (
                    (3, 2),
                    (2, 3),
                    Pad2d {
                        top: 0,
                        bottom: 2,
                        left: 1,
                        right: 0,
                    },
                ),
            ] {
                let mut g = Graph::new();
                let x = input(&mut g, "x", &[2, 9, 8, 3]);
                let geom = PoolGeometry {
                    kind,
                    size,
                    stride,
                    pad,
                };
                let y = g.push(Op::Pool2d(geom), &[x], "pool").unwrap();
                let ys = g.shape(y).to_vec();
                let dy = input(&mut g, "dy", &ys);
                let dx = g.push(Op::Pool2dBackprop(geom), &[x, dy], "pool_grad").unwrap();
                assert_eq!(lower(&g, dx, &t)[0].family, "pool_grad");
            }
        }
        for mode in ResizeMode::ALL {
            for (oh, ow) in [(10, 12), (3, 4), (5, 6), (1, 1), (13, 7)] {
                let mut g = Graph::new();
                let dy = input(&mut g, "dy", &[2, oh, ow, 3]);
                let dx = g
                    .push(Op::ResizeBackprop { mode, input_hw: (5, 6) }, &[dy], "resize_grad")
                    .unwrap();
                assert_eq!(lower(&g, dx, &t)[0].family, "resize_grad");
            }
        }
    }
}

#[test]
fn dispatches_beyond_the_target_limits_are_unsupported_errors_naming_the_layer() {
    let tiny = Target {
        max_workgroups_per_dim: 4,
        ..Target::cpu()
    };
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[100, 100]);
    // An odd size: one element per invocation, 10,201 of them (vec4 kernels take four).
    let odd = input(&mut g, "odd", &[101, 101]);
    let y = g.push(Op::Unary(UnaryOp::Relu), &[odd], "big_relu").unwrap();
    let w = param(&mut g, "w", &[100, 1000]);
    let z = g
        .push(
            Op::MatMul {
                trans_a: false,
                trans_b: false,
            },
            &[x, w],
            "big_dense",
        )
        .unwrap();
    for (id, layer) in [(y, "big_relu"), (z, "big_dense")] {
        let err = lower_node(&g, id, &tiny).unwrap_err();
        assert!(
            matches!(&err, KernelError::Unsupported { layer: l, .. } if l == layer),
            "{err}"
        );
        assert!(
            err.to_string().contains(layer) && err.to_string().contains("workgroups"),
            "{err}"
        );
    }
}

/// The epilogues the fusion pass makes most: bias, bias + relu, a residual add after the bias,
/// the relu gradient with x (`x` the output-shaped input 2, `dy` the GEMM), five extras, a
/// hard swish after the bias, and a per-channel PReLU under an output-shaped select mask.
fn epilogues() -> Vec<(&'static str, ElemExpr, usize)> {
    let i = |k| Box::new(ElemExpr::Input(k));
    let add = |a: Box<ElemExpr>, b: Box<ElemExpr>| Box::new(ElemExpr::Binary(BinaryOp::Add, a, b));
    let bias = *add(i(0), i(1));
    let relu = ElemExpr::Unary(UnaryOp::Relu, Box::new(bias.clone()));
    let residual = ElemExpr::Unary(UnaryOp::Relu, add(add(i(0), i(1)), i(2)));
    let relu_grad = ElemExpr::UnaryGrad(UnaryOp::Relu, i(1), i(0));
    let mut many = *i(0);
    for k in 1..=5 {
        many = ElemExpr::Binary(BinaryOp::Mul, Box::new(many), i(k));
    }
    vec![
        ("add", bias.clone(), 0b1),
        ("add_relu", relu, 0b1),
        ("add_add_relu", residual, 0b01),
        ("relu_grad", relu_grad, 0b0),
        ("epilogue5ops", many, 0b10101),
        (
            "add_hard_swish",
            ElemExpr::Unary(UnaryOp::HardSwish, Box::new(bias.clone())),
            0b1,
        ),
        (
            "prelu_select",
            ElemExpr::select(*i(2), ElemExpr::Binary(BinaryOp::PRelu, i(0), i(1)), *i(0)),
            0b01,
        ),
    ]
}

#[test]
fn gemm_epilogue_variants() {
    fn conv(g: &mut Graph, xs: [usize; 4], co: usize, geom: ConvGeometry) -> (Op, [NodeId; 2]) {
        let x = input(g, "x", &xs);
        let w = param(g, "w", &[3, 3, xs[3] / geom.groups, co]);
        (Op::Conv2d(geom), [x, w])
    }
    type Base = fn(&mut Graph) -> (Op, [NodeId; 2]);
    let bases: Vec<(&str, Base)> = vec![
        ("conv2d", |g| conv(g, [2, 8, 8, 3], 8, geom(1, 1, (1, 1, 1, 1), 1))),
        ("conv2d", |g| conv(g, [1, 9, 7, 5], 7, geom(2, 2, (2, 1, 0, 1), 1))),
        ("conv2d_grouped", |g| {
            conv(g, [1, 8, 8, 6], 9, geom(1, 1, (1, 1, 1, 1), 3))
        }),
        ("matmul_nn", |g| {
            let (a, b) = (input(g, "a", &[10, 6]), param(g, "b", &[6, 12]));
            (
                Op::MatMul {
                    trans_a: false,
                    trans_b: false,
                },
                [a, b],
            )
        }),
        ("matmul_nt", |g| {
            let (a, b) = (input(g, "a", &[10, 6]), param(g, "b", &[7, 6]));
            (
                Op::MatMul {
                    trans_a: false,
                    trans_b: true,
                },
                [a, b],
            )
        }),
        ("matmul_tn", |g| {
            let (a, b) = (input(g, "a", &[6, 10]), param(g, "b", &[6, 5]));
            (
                Op::MatMul {
                    trans_a: true,
                    trans_b: false,
                },
                [a, b],
            )
        }),
        ("conv_transpose2d", |g| {
            let (x, w) = (input(g, "x", &[2, 5, 5, 4]), param(g, "w", &[3, 3, 6, 4]));
            let op = Op::ConvTranspose2d {
                geom: geom(2, 1, (1, 1, 1, 1), 1),
                out_pad: (1, 1),
            };
            (op, [x, w])
        }),
        ("conv2d_backprop_input", |g| {
            let (dy, w) = (input(g, "dy", &[2, 8, 8, 8]), param(g, "w", &[3, 3, 2, 8]));
            let op = Op::Conv2dBackpropInput {
                geom: geom(1, 1, (1, 1, 1, 1), 2),
                input_hw: (8, 8),
                filter: BackpropFilter::Hwio,
            };
            (op, [dy, w])
        }),
        ("conv2d_backprop_input_hwoi", |g| {
            // The transposed kernel (KH, KW, CO, C / groups) of a grouped convolution, vec4 B.
            let (dy, w) = (input(g, "dy", &[2, 8, 8, 8]), param(g, "w", &[3, 3, 8, 4]));
            let op = Op::Conv2dBackpropInput {
                geom: geom(1, 1, (1, 1, 1, 1), 2),
                input_hw: (8, 8),
                filter: BackpropFilter::Hwoi,
            };
            (op, [dy, w])
        }),
        ("conv2d_backprop_input_hwoi", |g| {
            // Scalar B (3 columns), strided.
            let (dy, w) = (input(g, "dy", &[1, 4, 4, 5]), param(g, "w", &[3, 3, 5, 3]));
            let op = Op::Conv2dBackpropInput {
                geom: geom(2, 1, (1, 1, 1, 1), 1),
                input_hw: (8, 8),
                filter: BackpropFilter::Hwoi,
            };
            (op, [dy, w])
        }),
        ("conv2d_backprop_filter", |g| {
            let (x, dy) = (input(g, "x", &[2, 8, 8, 3]), input(g, "dy", &[2, 8, 8, 8]));
            let op = Op::Conv2dBackpropFilter {
                geom: geom(1, 1, (1, 1, 1, 1), 1),
                kernel_hw: (3, 3),
            };
            (op, [x, dy])
        }),
        ("pixel_shuffle_matmul", |g| {
            let (x, k) = (input(g, "x", &[2, 5, 6, 4]), param(g, "k", &[4, 2 * 2 * 6]));
            (Op::PixelShuffleMatMul { block: (2, 2) }, [x, k])
        }),
    ];
    for t in targets() {
        for (what, base) in &bases {
            for (ops, expr, per_channel) in epilogues() {
                let mut g = Graph::new();
                let (op, [a, b]) = base(&mut g);
                let plain = g.push(op.clone(), &[a, b], "gemm").unwrap();
                let shape = g.shape(plain).to_vec();
                let c = *shape.last().unwrap();
                let mut extras = Vec::new();
                let mut k = 1;
                expr_inputs(&expr, &mut k);
                for e in 0..k - 1 {
                    let s = if per_channel >> e & 1 == 1 {
                        vec![c]
                    } else {
                        shape.clone()
                    };
                    extras.push(input(&mut g, &format!("e{e}"), &s));
                }
                let inputs: Vec<NodeId> = [a, b].into_iter().chain(extras.iter().copied()).collect();
                let epi = Op::GemmEpilogue {
                    base: Box::new(op),
                    expr: expr.clone(),
                };
                let y = g.push(epi, &inputs, "gemm").unwrap();
                let ks = lower(&g, y, &t);
                let k0 = &ks[0];
                let plain_k = &lower(&g, plain, &t)[0];
                assert_eq!(k0.family, "gemm");
                assert_eq!(
                    (k0.workgroups, k0.workgroup_size),
                    (plain_k.workgroups, plain_k.workgroup_size)
                );
                // The kernel that applies the epilogue: the GEMM itself, or with split-K the
                // reduction of the partials (the GEMM then stores them raw).
                let epi_k = if split_of(k0) > 1 {
                    assert_eq!(ks.len(), 2);
                    assert_eq!(k0.name, plain_k.name, "the split GEMM has no epilogue");
                    assert_eq!(
                        k0.bindings.iter().map(|b| b.buffer).collect::<Vec<_>>(),
                        [BufferRef::Node(a), BufferRef::Node(b), BufferRef::Scratch(y)]
                    );
                    let r = &ks[1];
                    assert_eq!(r.family, "split_k");
                    assert!(
                        r.name.starts_with(&format!("splitk_reduce_{what}_{ops}_")),
                        "{}",
                        r.name
                    );
                    let want: Vec<BufferRef> = std::iter::once(BufferRef::Scratch(y))
                        .chain(extras.iter().chain([&y]).map(|&i| BufferRef::Node(i)))
                        .collect();
                    assert_eq!(
                        r.bindings.iter().map(|b| b.buffer).collect::<Vec<_>>(),
                        want,
                        "{}",
                        r.name
                    );
                    assert_eq!(r.scratch_bytes, k0.scratch_bytes);
                    r
                } else {
                    assert_eq!(ks.len(), 1);
                    assert!(
                        k0.name.starts_with(&format!("gemm_{what}_{ops}_")),
                        "{} for {what} {ops}",
                        k0.name
                    );
                    let want: Vec<BufferRef> = inputs.iter().chain([&y]).map(|&i| BufferRef::Node(i)).collect();
                    assert_eq!(
                        k0.bindings.iter().map(|b| b.buffer).collect::<Vec<_>>(),
                        want,
                        "{}",
                        k0.name
                    );
                    assert!(k0.flops > plain_k.flops, "{}", k0.name);
                    k0
                };
                for e in 0..extras.len() {
                    let at = if per_channel >> e & 1 == 1 {
                        "[i % EPI_C]"
                    } else {
                        "[i]"
                    };
                    assert!(
                        epi_k.source.contains(&format!("epi_in{}{at}", e + 1)),
                        "{}",
                        epi_k.source
                    );
                }
            }
        }
    }
    // Depthwise convolutions have their own kernel and no epilogue.
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 6, 6, 4]);
    let w = param(&mut g, "w", &[3, 3, 1, 4]);
    let bias = param(&mut g, "bias", &[4]);
    let epi = Op::GemmEpilogue {
        base: Box::new(Op::Conv2d(geom(1, 1, (1, 1, 1, 1), 4))),
        expr: ElemExpr::Binary(
            BinaryOp::Add,
            Box::new(ElemExpr::Input(0)),
            Box::new(ElemExpr::Input(1)),
        ),
    };
    let y = g.push(epi, &[x, w, bias], "dw").unwrap();
    assert!(matches!(
        lower_node(&g, y, &Target::cpu()),
        Err(KernelError::Unsupported { .. })
    ));
}

#[test]
fn pool_grad_epilogue_variants() {
    // Max and average pooling gradients storing through the epilogues the fusion pass makes
    // (`Op::GemmEpilogue` with a `Pool2dBackprop` base): the relu gradient with x of dx's shape,
    // per-channel (C,) inputs, a mix, and five extras (8 bindings with max pooling's x).
    for t in targets() {
        for kind in [PoolKind::Max, PoolKind::Avg] {
            for (xs, size, stride, pad) in [
                ([2, 9, 8, 3], (2, 2), (2, 2), Pad2d::default()),
                (
                    [1, 7, 5, 5],
                    (3, 3),
                    (2, 2),
                    Pad2d {
                        top: 1,
                        bottom: 1,
                        left: 1,
                        right: 1,
                    },
                ),
                ([3, 11, 13, 7], (2, 3), (3, 4), Pad2d::default()),
            ] {
                let geom = PoolGeometry {
                    kind,
                    size,
                    stride,
                    pad,
                };
                for (ops, expr, per_channel) in epilogues() {
                    let mut g = Graph::new();
                    let x = input(&mut g, "x", &xs);
                    let y = g.push(Op::Pool2d(geom), &[x], "pool").unwrap();
                    let ys = g.shape(y).to_vec();
                    let dy = input(&mut g, "dy", &ys);
                    let plain = g.push(Op::Pool2dBackprop(geom), &[x, dy], "pool_grad").unwrap();
                    let c = xs[3];
                    let mut k = 1;
                    expr_inputs(&expr, &mut k);
                    let extras: Vec<NodeId> = (0..k - 1)
                        .map(|e| {
                            let s = if per_channel >> e & 1 == 1 {
                                vec![c]
                            } else {
                                xs.to_vec()
                            };
                            input(&mut g, &format!("e{e}"), &s)
                        })
                        .collect();
                    let inputs: Vec<NodeId> = [x, dy].into_iter().chain(extras.iter().copied()).collect();
                    let epi = Op::GemmEpilogue {
                        base: Box::new(Op::Pool2dBackprop(geom)),
                        expr: expr.clone(),
                    };
                    let id = g.push(epi, &inputs, "pool_grad").unwrap();
                    assert_eq!(g.shape(id), xs.as_slice());
                    let ks = lower(&g, id, &t);
                    let plain_k = &lower(&g, plain, &t)[0];
                    assert_eq!(ks.len(), 1);
                    let k0 = &ks[0];
                    let base_name = match kind {
                        PoolKind::Max => "pool_grad_max",
                        PoolKind::Avg => "pool_grad_avg",
                    };
                    assert_eq!(k0.family, "pool_grad");
                    assert_eq!(plain_k.name, base_name);
                    assert_eq!(k0.name, format!("{base_name}_{ops}"));
                    assert_eq!(
                        (k0.workgroups, k0.workgroup_size),
                        (plain_k.workgroups, plain_k.workgroup_size)
                    );
                    // x (max pooling only), dy, the extras, dx.
                    let first = usize::from(kind == PoolKind::Avg);
                    let want: Vec<BufferRef> = inputs[first..]
                        .iter()
                        .chain([&id])
                        .map(|&i| BufferRef::Node(i))
                        .collect();
                    assert_eq!(
                        k0.bindings.iter().map(|b| b.buffer).collect::<Vec<_>>(),
                        want,
                        "{}",
                        k0.name
                    );
                    assert!(k0.flops > plain_k.flops, "{}", k0.name);
                    assert!(k0.source.contains("pg_dx[i] = epilogue(i, acc);"), "{}", k0.source);
                    for e in 0..extras.len() {
                        let at = if per_channel >> e & 1 == 1 {
                            "[i % EPI_C]"
                        } else {
                            "[i]"
                        };
                        assert!(k0.source.contains(&format!("epi_in{}{at}", e + 1)), "{}", k0.source);
                    }
                    if per_channel != 0 {
                        assert!(k0.source.contains(&format!("const EPI_C: u32 = {c}u;")));
                    }
                }
            }
        }
    }
}

/// Counts past the highest input index `e` reads: `k` ends as one more than it.
fn expr_inputs(e: &ElemExpr, k: &mut usize) {
    e.visit_inputs(&mut |i| *k = (*k).max(i + 1));
}

#[test]
fn pool_window_and_vec4_variants() {
    // Pooling forward takes 4 channels per invocation when C % 4 == 0; the pooling gradient of
    // non-overlapping windows (stride >= window) takes the window kernel (one invocation per
    // stride cell, vec4 when C % 4 == 0), overlapping windows the gather kernel. Every variant
    // validates (in `lower`), covers its output, and stores through the epilogue.
    let pad1 = Pad2d {
        top: 1,
        bottom: 1,
        left: 1,
        right: 1,
    };
    let odd = Pad2d {
        top: 0,
        bottom: 2,
        left: 1,
        right: 0,
    };
    let gappy = Pad2d {
        top: 1,
        bottom: 0,
        left: 2,
        right: 1,
    };
    for t in targets() {
        for kind in [PoolKind::Max, PoolKind::Avg] {
            for (size, stride, pad) in [
                ((2, 2), (2, 2), Pad2d::default()),
                ((3, 3), (3, 3), pad1),
                ((2, 3), (3, 4), gappy),
                ((1, 1), (2, 3), Pad2d::default()),
                ((3, 3), (2, 2), pad1),
                ((3, 2), (1, 3), odd),
            ] {
                for c in [1usize, 3, 4, 8, 13] {
                    let xs = [3, 9, 11, c];
                    let geom = PoolGeometry {
                        kind,
                        size,
                        stride,
                        pad,
                    };
                    let disjoint = stride.0 >= size.0 && stride.1 >= size.1;
                    let lanes = if c.is_multiple_of(4) { 4 } else { 1 };
                    let mut g = Graph::new();
                    let x = input(&mut g, "x", &xs);
                    let y = g.push(Op::Pool2d(geom), &[x], "pool").unwrap();
                    let ys = g.shape(y).to_vec();
                    let kf = &lower(&g, y, &t)[0];
                    assert_eq!(kf.family, "pool");
                    assert!(kf.invocations() * lanes >= g.ty(y).numel() as u64, "{}", kf.name);
                    assert_eq!(kf.source.contains("alias T = vec4<f32>;"), lanes == 4);
                    let dy = input(&mut g, "dy", &ys);
                    let r = input(&mut g, "r", &xs);
                    let plain = g.push(Op::Pool2dBackprop(geom), &[x, dy], "pool_grad").unwrap();
                    let epi = Op::GemmEpilogue {
                        base: Box::new(Op::Pool2dBackprop(geom)),
                        expr: ElemExpr::UnaryGrad(
                            UnaryOp::Relu,
                            Box::new(ElemExpr::Input(1)),
                            Box::new(ElemExpr::Input(0)),
                        ),
                    };
                    let fused = g.push(epi, &[x, dy, r], "pool_grad").unwrap();
                    for id in [plain, fused] {
                        let k = &lower(&g, id, &t)[0];
                        assert_eq!(k.family, "pool_grad");
                        assert!(k.source.contains("pg_dx[i] = epilogue(i, acc);"));
                        assert_eq!(
                            k.source.starts_with("// pool_grad_window.wgsl: "),
                            disjoint,
                            "{size:?} {stride:?}"
                        );
                        let cells = if disjoint {
                            let ncy = (xs[1] + pad.top).div_ceil(stride.0);
                            let ncx = (xs[2] + pad.left).div_ceil(stride.1);
                            assert!(ncy >= ys[1] && ncx >= ys[2]);
                            assert_eq!(k.source.contains("alias T = vec4<f32>;"), lanes == 4);
                            (xs[0] * ncy * ncx * c) as u64 / lanes
                        } else {
                            g.ty(id).numel() as u64
                        };
                        assert!(k.invocations() >= cells, "{}", k.name);
                    }
                }
            }
        }
    }
    let src = include_str!("../wgsl/pool_grad_window.wgsl");
    assert!(src.starts_with("// pool_grad_window.wgsl: ") && src.contains("Bindings"));
}

/// Split-K shapes (small output, long K) for every GEMM-core op: `(what, build)`; `build`
/// returns the base op and its two inputs.
type GemmBase = fn(&mut Graph) -> (Op, [NodeId; 2]);
fn split_k_bases() -> Vec<(&'static str, GemmBase)> {
    fn mm(trans_a: bool, trans_b: bool) -> Op {
        Op::MatMul { trans_a, trans_b }
    }
    vec![
        ("matmul_nn", |g| {
            (
                mm(false, false),
                [input(g, "a", &[20, 3000]), param(g, "b", &[3000, 12])],
            )
        }),
        ("matmul_nt", |g| {
            (
                mm(false, true),
                [input(g, "a", &[20, 3000]), param(g, "b", &[12, 3000])],
            )
        }),
        ("matmul_tn", |g| {
            (
                mm(true, false),
                [input(g, "a", &[3000, 20]), param(g, "b", &[3000, 12])],
            )
        }),
        ("matmul_tt", |g| {
            (mm(true, true), [input(g, "a", &[3000, 20]), param(g, "b", &[12, 3000])])
        }),
        ("conv2d", |g| {
            // 2 output pixels, K = 3*3*256 = 2304.
            let (x, w) = (input(g, "x", &[2, 3, 3, 256]), param(g, "w", &[3, 3, 256, 8]));
            (Op::Conv2d(geom(1, 1, (0, 0, 0, 0), 1)), [x, w])
        }),
        ("conv2d_grouped", |g| {
            let (x, w) = (input(g, "x", &[2, 3, 3, 512]), param(g, "w", &[3, 3, 256, 8]));
            (Op::Conv2d(geom(1, 1, (0, 0, 0, 0), 2)), [x, w])
        }),
        ("conv2d_backprop_input", |g| {
            // dx of a 1x1 conv with 4096 filters: M = 2*2*2, N = 4, K = 4096.
            let (dy, w) = (input(g, "dy", &[2, 2, 2, 4096]), param(g, "w", &[1, 1, 4, 4096]));
            let op = Op::Conv2dBackpropInput {
                geom: geom(1, 1, (0, 0, 0, 0), 1),
                input_hw: (2, 2),
                filter: BackpropFilter::Hwio,
            };
            (op, [dy, w])
        }),
        ("conv2d_backprop_filter", |g| {
            // The filter gradient of a 3x3 conv 32 -> 64 at batch 32 on 28x28: 288 x 64 x 5408.
            let (x, dy) = (input(g, "x", &[32, 15, 15, 32]), input(g, "dy", &[32, 13, 13, 64]));
            let op = Op::Conv2dBackpropFilter {
                geom: geom(1, 1, (0, 0, 0, 0), 1),
                kernel_hw: (3, 3),
            };
            (op, [x, dy])
        }),
        ("conv2d_backprop_filter_grouped", |g| {
            let (x, dy) = (input(g, "x", &[8, 10, 10, 8]), input(g, "dy", &[8, 10, 10, 8]));
            let op = Op::Conv2dBackpropFilter {
                geom: geom(1, 1, (1, 1, 1, 1), 2),
                kernel_hw: (3, 3),
            };
            (op, [x, dy])
        }),
    ]
}

#[test]
fn split_k_variants_validate_on_gpu_targets() {
    let mut split_seen = 0;
    for t in targets().into_iter().filter(|t| t.class == AdapterClass::Gpu) {
        for (what, base) in split_k_bases() {
            let epis = std::iter::once(None).chain(epilogues().into_iter().map(Some));
            for epi in epis {
                let mut g = Graph::new();
                let (op, [a, b]) = base(&mut g);
                let y = match &epi {
                    None => g.push(op, &[a, b], "gemm").unwrap(),
                    Some((_, expr, per_channel)) => {
                        let plain = g.push(op.clone(), &[a, b], "plain").unwrap();
                        let shape = g.shape(plain).to_vec();
                        let c = *shape.last().unwrap();
                        let mut k = 1;
                        expr_inputs(expr, &mut k);
                        let mut inputs = vec![a, b];
                        for e in 0..k - 1 {
                            let s = if per_channel >> e & 1 == 1 {
                                vec![c]
                            } else {
                                shape.clone()
                            };
                            inputs.push(input(&mut g, &format!("e{e}"), &s));
                        }
                        let epi = Op::GemmEpilogue {
                            base: Box::new(op),
                            expr: expr.clone(),
                        };
                        g.push(epi, &inputs, "gemm").unwrap()
                    }
                };
                // `lower` validates both dispatches with naga and checks their bindings.
                let ks = lower(&g, y, &t);
                let s = split_of(&ks[0]);
                if s == 1 {
                    assert_eq!(ks.len(), 1, "{}", ks[0].name);
                    continue;
                }
                split_seen += 1;
                assert!((2..=crate::gemm::SPLIT_K_MAX_SPLITS).contains(&s), "{}", ks[0].name);
                assert_eq!(ks.len(), 2, "{what}");
                let numel = g.ty(y).numel() as u64;
                assert_eq!(ks[0].scratch_bytes, s as u64 * numel * 4, "{}", ks[0].name);
                assert_eq!(ks[1].family, "split_k");
                assert!(ks[1].invocations() >= numel, "{}", ks[1].name);
                assert!(ks[1].source.contains(&format!("const SPLITS: u32 = {s}u;")));
                assert!(ks[0].source.contains("[split_base + i] = v;"), "{}", ks[0].name);
                if epi.is_some() {
                    assert!(
                        !ks[0].source.contains("var<storage, read> epi_in"),
                        "{}: raw partials",
                        ks[0].name
                    );
                }
            }
        }
    }
    assert!(split_seen > 50, "{split_seen} split variants");
}

#[test]
fn split_k_only_on_gpus_for_few_tiles_and_long_k() {
    use crate::gemm::split_k_splits;
    // The filter gradient 288 x 64 x 5408 (batch 32): 5 workgroups of 64x64 without split-K.
    let (m, n, k) = (288, 64, 5408);
    let cpu = Target::cpu();
    let gpu = Target::gpu();
    assert_eq!(split_k_splits(&cpu, &choose_gemm_tile(&cpu, m, n, true), m, n, k, 1), 1);
    assert_eq!(
        split_k_splits(&cpu, &choose_gemm_tile(&cpu, m, n, false), m, n, k, 1),
        1
    );
    let tile = choose_gemm_tile(&gpu, m, n, false);
    let s = split_k_splits(&gpu, &tile, m, n, k, 1);
    assert!(s > 1 && s <= crate::gemm::SPLIT_K_MAX_SPLITS, "{s}");
    assert!(5 * s >= crate::gemm::SPLIT_K_MIN_WORKGROUPS, "{s} splits fill the grid");
    // A large square matmul has tiles enough; a short K is not worth splitting.
    assert_eq!(
        split_k_splits(&gpu, &choose_gemm_tile(&gpu, 1024, 1024, false), 1024, 1024, 1024, 1),
        1
    );
    assert_eq!(split_k_splits(&gpu, &tile, m, n, 100, 1), 1);
    // Through the lowering: the same node splits on GPUs, never on the CPU target.
    for t in targets() {
        for (what, base) in split_k_bases() {
            let mut g = Graph::new();
            let (op, [a, b]) = base(&mut g);
            let y = g.push(op, &[a, b], "gemm").unwrap();
            let ks = lower(&g, y, &t);
            if t.class == AdapterClass::Cpu {
                assert_eq!(ks.len(), 1, "{what}: {}", ks[0].name);
                assert_eq!(split_of(&ks[0]), 1);
                assert_eq!(ks[0].scratch_bytes, 0);
            } else if what == "conv2d_backprop_filter" && t == gpu {
                assert_eq!(ks.len(), 2, "{what}");
                assert_eq!(ks[0].name, format!("gemm_{what}_gpu_64x64_splitk{s}"));
                assert_eq!(ks[0].workgroups, [1, 5, s as u32]);
            }
        }
        let mut g = Graph::new();
        let (a, b) = (input(&mut g, "a", &[1024, 1024]), param(&mut g, "b", &[1024, 1024]));
        let mm = Op::MatMul {
            trans_a: false,
            trans_b: false,
        };
        let y = g.push(mm, &[a, b], "mm").unwrap();
        assert_eq!(lower(&g, y, &t).len(), 1, "a large square matmul never splits");
    }
}

/// Every tile the tuner may pick ([`crate::tiles::candidates`]) lowers every GEMM-core op to
/// valid WGSL with a grid that covers the output's columns, on every target: the tuner may choose any of
/// them (the GPU tests check that they all compute the same values).
#[test]
fn every_tuning_candidate_lowers_and_validates() {
    use crate::tiles::TileChoices;
    for t in targets() {
        let mut g = Graph::new();
        let a = input(&mut g, "a", &[37, 20]);
        let b = input(&mut g, "b", &[20, 68]);
        let mm = g
            .push(
                Op::MatMul {
                    trans_a: false,
                    trans_b: false,
                },
                &[a, b],
                "mm",
            )
            .unwrap();
        let x = input(&mut g, "x", &[2, 9, 7, 8]);
        let k = param(&mut g, "conv/kernel", &[3, 3, 8, 16]);
        let cg = geom(1, 1, (1, 1, 1, 1), 1);
        let y = g.push(Op::Conv2d(cg), &[x, k], "conv").unwrap();
        let dy = input(&mut g, "dy", &[2, 9, 7, 16]);
        let dx = g
            .push(
                Op::Conv2dBackpropInput {
                    geom: cg,
                    input_hw: (9, 7),
                    filter: BackpropFilter::Hwio,
                },
                &[dy, k],
                "conv_dx",
            )
            .unwrap();
        let dw = g
            .push(
                Op::Conv2dBackpropFilter {
                    geom: cg,
                    kernel_hw: (3, 3),
                },
                &[x, dy],
                "conv_dw",
            )
            .unwrap();
        for node in [mm, y, dx, dw] {
            let probe = TileChoices::none();
            crate::lower_node_with(&g, node, &t, &probe).unwrap();
            let requests = probe.requests();
            assert_eq!(requests.len(), 1, "{node}: one GEMM");
            let req = &requests[0];
            if node == mm && t.class == AdapterClass::Cpu {
                assert!(req.candidates.len() >= 3, "{}: {:?}", req.key, req.candidates);
            }
            for &tile in &req.candidates {
                let forced = TileChoices::one(&req.key, tile);
                let ks = crate::lower_node_with(&g, node, &t, &forced).unwrap();
                let gemm = &ks[0];
                assert!(gemm.name.contains(&format!("{}x{}", tile.bm, tile.bn)), "{}", gemm.name);
                for k in &ks {
                    check(k, &t);
                }
                let n = g.shape(node).last().copied().unwrap_or(1);
                assert!(gemm.workgroups[0] as usize * tile.bn as usize >= n, "{}", gemm.name);
            }
        }
    }
}
