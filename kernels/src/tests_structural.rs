//! The structural ops' kernel variants (batched matmul, gather and scatter-add, the
//! order-based ops, instance norm), validated by naga on every test target, with their bindings,
//! entry points and grids checked (helpers from `tests.rs`).

use crate::tests::{check_gemm_grid, input, lower, param, targets};
use crate::{KernelInstance, Target};
use fovea_graph::ir::*;
use fovea_graph::{Graph, NodeId, Op};

fn indices(g: &mut Graph, name: &str, shape: &[usize]) -> NodeId {
    let ty = TensorType {
        shape: shape.to_vec(),
        dtype: DType::I32,
    };
    g.input(name, ty).unwrap()
}

fn one(g: &Graph, id: NodeId, t: &Target) -> KernelInstance {
    let mut ks = lower(g, id, t);
    assert_eq!(ks.len(), 1, "{:?}", ks.iter().map(|k| &k.name).collect::<Vec<_>>());
    ks.remove(0)
}

#[test]
fn batched_matmul_runs_the_batch_as_gemm_groups() {
    for t in targets() {
        for (b, m, k, n) in [(1, 7, 13, 5), (3, 64, 300, 64), (7, 1, 1, 1), (2, 17, 5, 12)] {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                let mut g = Graph::new();
                let a = input(&mut g, "a", &if ta { [b, k, m] } else { [b, m, k] });
                let w = param(&mut g, "w", &if tb { [b, n, k] } else { [b, k, n] });
                let y = g
                    .push(
                        Op::MatMul {
                            trans_a: ta,
                            trans_b: tb,
                        },
                        &[a, w],
                        "gram",
                    )
                    .unwrap();
                assert_eq!(g.shape(y), [b, m, n]);
                let ks = lower(&g, y, &t);
                check_gemm_grid(&ks[0], m, n, b, &t);
                assert_eq!(ks.iter().map(|k| k.flops).max(), Some(2 * (b * m * n * k) as u64));
                assert!(ks[0].name.starts_with("gemm_batched_matmul_"), "{}", ks[0].name);
                // Each group reads its own matrices (the offsets are only emitted for b > 1).
                assert_eq!(
                    ks[0].source.contains(&format!("g * {}u", m * k)),
                    b > 1,
                    "{}",
                    ks[0].name
                );
            }
        }
    }
}

#[test]
fn gather_and_scatter_add_variants() {
    // (x shape, index shape, axis, batch_dims)
    let cases: [(&[usize], &[usize], usize, usize); 5] = [
        (&[5], &[3], 0, 0),
        (&[2, 7, 3], &[4, 2], 1, 0),
        (&[8732, 4], &[200], 0, 0),
        (&[3, 13], &[3, 5], 1, 1),
        (&[2, 3, 1, 11], &[2, 1], 3, 1),
    ];
    for t in targets() {
        for (x_shape, idx_shape, axis, batch_dims) in cases {
            let mut g = Graph::new();
            let x = input(&mut g, "x", x_shape);
            let idx = indices(&mut g, "idx", idx_shape);
            let y = g.push(Op::Gather { axis, batch_dims }, &[x, idx], "gather").unwrap();
            let k = one(&g, y, &t);
            assert_eq!((k.entry_point, k.family), ("gather", "gather"));
            let len = x_shape[axis];
            let s = g
                .push(Op::ScatterAdd { axis, batch_dims, len }, &[y, idx], "scatter")
                .unwrap();
            assert_eq!(g.shape(s), x_shape);
            let k = one(&g, s, &t);
            assert_eq!(k.entry_point, "scatter_add");
            assert!(k.source.contains("array<i32>"));
        }
    }
}

/// The entry point an argsort or top-k of `kout` results over lines of `len` should get.
fn expected_entry(kout: usize, len: usize, t: &Target) -> &'static str {
    let wg = t.max_invocations_per_workgroup.min(256);
    let cap = crate::sort::bitonic_capacity(t.max_workgroup_storage_bytes, wg);
    let preferred = if t.class == crate::AdapterClass::Gpu { 256 } else { 1024 };
    if crate::sort::bitonic_chunk(kout, len, cap, preferred).is_some() {
        "bitonic_top"
    } else {
        "rank_sort"
    }
}

#[test]
fn order_op_variants() {
    for t in targets() {
        for shape in [
            vec![1],
            vec![7],
            vec![3, 257],
            vec![32, 8732],
            vec![4, 1, 3],
            vec![2, 300, 5],
        ] {
            let last = shape.len() - 1;
            for axis in 0..shape.len() {
                for descending in [false, true] {
                    let mut g = Graph::new();
                    let x = input(&mut g, "x", &shape);
                    let y = g.push(Op::ArgSort { axis, descending }, &[x], "sort").unwrap();
                    let k = one(&g, y, &t);
                    assert_eq!(k.family, "sort");
                    assert_eq!(
                        k.entry_point,
                        expected_entry(shape[axis], shape[axis], &t),
                        "{}",
                        k.name
                    );
                    let lines = shape.iter().product::<usize>() / shape[axis];
                    assert!(k.workgroups.iter().map(|&w| w as usize).product::<usize>() >= lines);
                    assert!(k.source.contains(&format!("DESCENDING: bool = {descending}")));
                }
                let mut g = Graph::new();
                let x = input(&mut g, "x", &shape);
                let y = g.push(Op::ArgMax { axis }, &[x], "argmax").unwrap();
                assert_eq!(one(&g, y, &t).entry_point, "argmax");
            }
            for k in [1, shape[last].min(200), shape[last]] {
                let mut g = Graph::new();
                let x = input(&mut g, "x", &shape);
                let y = g.push(Op::TopK { k }, &[x], "top_k").unwrap();
                let kern = one(&g, y, &t);
                assert_eq!(kern.entry_point, expected_entry(k, shape[last], &t), "{}", kern.name);
                assert!(kern.source.contains(&format!("KOUT: u32 = {k}u")));
            }
        }
    }
}

#[test]
fn instance_norm_variants() {
    for t in targets() {
        // Planes of one pixel, odd and prime sizes, more planes than one grid row holds.
        for shape in [[1, 1, 1, 1], [2, 5, 7, 3], [1, 64, 64, 32], [70_000, 1, 1, 1]] {
            let mut g = Graph::new();
            let x = input(&mut g, "x", &shape);
            let gamma = param(&mut g, "in/gamma", &[shape[3]]);
            let beta = param(&mut g, "in/beta", &[shape[3]]);
            let y = g
                .push(Op::InstanceNorm { epsilon: 1e-3 }, &[x, gamma, beta], "in")
                .unwrap();
            let k = one(&g, y, &t);
            let wgs = k.workgroups.iter().map(|&w| w as usize).product::<usize>();
            assert!(wgs >= shape[0] * shape[3], "{:?}", k.workgroups);
        }
    }
}

#[test]
fn integer_outputs_are_accepted_only_for_the_order_ops() {
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[4, 6]);
    let idx = g.push(Op::TopK { k: 2 }, &[x], "top_k").unwrap();
    assert_eq!(g.ty(idx).dtype, DType::I32);
    // The values of the top k, as a training graph picks them.
    let v = g
        .push(Op::Gather { axis: 1, batch_dims: 1 }, &[x, idx], "pick")
        .unwrap();
    assert_eq!(g.shape(v), [4, 2]);
    for t in targets() {
        one(&g, idx, &t);
        one(&g, v, &t);
    }
}

#[test]
fn nms_variants_fit_workgroup_memory_or_say_why() {
    use crate::nms::nms_workgroup_bytes;
    let nms = |b: usize, c: usize, k: usize, m: usize| {
        let mut g = Graph::new();
        let s = input(&mut g, "scores", &[b, c, k]);
        let bx = input(&mut g, "boxes", &[b, c, k, 4]);
        let op = Op::Nms {
            iou_threshold: 0.5,
            score_threshold: 0.05,
            max_detections: m,
        };
        let y = g.push(op, &[s, bx], "nms").unwrap();
        assert_eq!(g.shape(y), [b, m, 6]);
        (g, y)
    };
    let mut lowered = 0;
    for t in targets() {
        // One candidate, odd and prime sizes, 10,000 candidates of one class, several images,
        // more detections than candidates, 80 classes, and one too large for any target.
        for (b, c, k, m) in [
            (1, 1, 1, 1),
            (3, 2, 37, 5),
            (1, 1, 10_000, 100),
            (7, 3, 1344, 100),
            (2, 20, 200, 100),
            (1, 3, 5, 40),
            (1, 80, 100, 100),
            (1, 90, 3000, 100),
        ] {
            let (g, y) = nms(b, c, k, m);
            let need = nms_workgroup_bytes(c, k);
            if need <= t.max_workgroup_storage_bytes as u64 {
                let kern = one(&g, y, &t);
                assert_eq!(kern.bindings.len(), 3);
                assert_eq!(kern.workgroup_size, [64, 1, 1]);
                let wgs = kern.workgroups.iter().map(|&w| w as usize).product::<usize>();
                assert!(wgs >= b, "{:?}", kern.workgroups);
                lowered += 1;
            } else {
                // Too many classes x candidates for the adapter: an error naming the node.
                let e = crate::lower::lower_node(&g, y, &t).unwrap_err().to_string();
                assert!(e.contains("nms") && e.contains("workgroup memory"), "{e}");
            }
        }
    }
    assert!(lowered > 20, "most variants fit most targets ({lowered})");
}
