//! Every pass preserves meaning: random graphs (every elementwise op, broadcasting, reductions,
//! layout ops, duplicates, identities) are run by the reference interpreter before and after
//! each pass and after the whole pipeline.

use super::*;
use crate::init::Rng;
use crate::interp::{Feeds, evaluate};
use crate::ir::*;
use proptest::prelude::*;

const UNARY: [UnaryOp; 14] = [
    UnaryOp::Relu,
    UnaryOp::Relu6,
    UnaryOp::LeakyRelu(0.2),
    UnaryOp::Sigmoid,
    UnaryOp::Tanh,
    UnaryOp::Neg,
    UnaryOp::Square,
    UnaryOp::Abs,
    UnaryOp::Scale(0.5),
    UnaryOp::AddScalar(-0.25),
    UnaryOp::Clip(-0.5, 1.5),
    UnaryOp::Softplus,
    UnaryOp::HardSwish,
    UnaryOp::Elu(0.7),
];
const BINARY: [BinaryOp; 7] = [
    BinaryOp::Add,
    BinaryOp::Sub,
    BinaryOp::Mul,
    BinaryOp::Max,
    BinaryOp::Min,
    BinaryOp::Ge,
    BinaryOp::PRelu,
];

/// A random graph over two inputs, built by `steps` random choices.
fn random_graph(seed: u64, steps: usize) -> Graph {
    let mut rng = Rng::new(seed);
    let mut g = Graph::new();
    let dims = [1 + rng.below(4), 2 + rng.below(3), 1 + rng.below(5)];
    let a = g.input("a", TensorType::f32(dims.to_vec())).unwrap();
    let b = g.input("b", TensorType::f32(dims.to_vec())).unwrap();
    let w = g.param("w", &[dims[2]], true, "p").unwrap();
    let mut nodes = vec![a, b, w];
    for step in 0..steps {
        let pick = |rng: &mut Rng, nodes: &[NodeId]| nodes[rng.below(nodes.len())];
        let x = pick(&mut rng, &nodes);
        let layer = format!("l{step}");
        let made = match rng.below(20) {
            12..=19 => other_op(&mut g, &mut rng, x, &nodes, &layer),
            0 | 1 => g.push(Op::Unary(UNARY[rng.below(UNARY.len())]), &[x], &layer),
            2..=4 => {
                let y = pick(&mut rng, &nodes);
                g.push(Op::Binary(BINARY[rng.below(BINARY.len())]), &[x, y], &layer)
            }
            5 => {
                let f = g.fill(&[1], [0.0, 1.0, 2.0][rng.below(3)], &layer).unwrap();
                let op = [BinaryOp::Add, BinaryOp::Mul, BinaryOp::Sub][rng.below(3)];
                g.push(Op::Binary(op), &[x, f], &layer)
            }
            6 => g.push(
                Op::Unary([UnaryOp::Scale(1.0), UnaryOp::AddScalar(0.0), UnaryOp::Neg][rng.below(3)]),
                &[x],
                &layer,
            ),
            7 => {
                // A duplicate of an existing computation.
                let n = g.node(x).clone();
                match n.op {
                    Op::Unary(_) | Op::Binary(_) | Op::UnaryGrad(_) => g.push(n.op, &n.inputs, &layer),
                    _ => continue,
                }
            }
            8 => {
                let y = pick(&mut rng, &nodes);
                if g.shape(x) != g.shape(y) {
                    continue;
                }
                g.push(Op::UnaryGrad(UNARY[rng.below(UNARY.len())]), &[x, y], &layer)
            }
            9 => {
                let r = g.shape(x).len();
                if r < 2 {
                    continue;
                }
                let axis = rng.below(r);
                let op = [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min][rng.below(4)];
                g.push(
                    Op::Reduce {
                        op,
                        axes: vec![axis],
                        keep_dims: true,
                    },
                    &[x],
                    &layer,
                )
            }
            10 => {
                let s = g.shape(x).to_vec();
                let flat = g.reshape(x, &[numel(&s)], &layer).unwrap();
                g.reshape(flat, &s, &layer)
            }
            _ => {
                let r = g.shape(x).len();
                let mut perm: Vec<usize> = (0..r).collect();
                perm.reverse();
                g.push(Op::Transpose { perm }, &[x], &layer)
            }
        };
        if let Ok(id) = made {
            nodes.push(id);
        }
    }
    g.outputs.push(*nodes.last().unwrap());
    let extra = nodes[rng.below(nodes.len())];
    g.outputs.push(extra);
    g
}

/// One of the non-elementwise op kinds over `x` (and sometimes another node), as a rank-4
/// NHWC view where the op needs one: convolution, pooling, matmul, softmax, log-softmax,
/// softmax cross-entropy, batch norm, concat, pad, slice, broadcast, resize. Errors (shapes
/// that do not fit) are skipped by the caller.
fn other_op(g: &mut Graph, rng: &mut Rng, x: NodeId, nodes: &[NodeId], layer: &str) -> crate::Result<NodeId> {
    let s = g.shape(x).to_vec();
    let last = *s.last().unwrap_or(&1);
    let as4 = |g: &mut Graph| -> crate::Result<NodeId> {
        let mut s4 = vec![1; 4usize.saturating_sub(s.len())];
        s4.extend(&s);
        if s4.len() > 4 {
            s4 = vec![s4[0] * s4[1], s4[2], s4[3], s4[4]];
        }
        g.reshape(x, &s4, layer)
    };
    match rng.below(15) {
        0 => {
            let x4 = as4(g)?;
            let c = g.shape(x4)[3];
            let co = 1 + rng.below(3);
            let k = g.param(
                &format!("{layer}/k"),
                &[1 + rng.below(2), 1 + rng.below(2), c, co],
                true,
                layer,
            )?;
            let geom = conv_geom(rng, 1);
            g.push(Op::Conv2d(geom), &[x4, k], layer)
        }
        1 => {
            let x4 = as4(g)?;
            let kind = [PoolKind::Max, PoolKind::Avg][rng.below(2)];
            let size = (1 + rng.below(2), 1 + rng.below(2));
            let geom = PoolGeometry {
                kind,
                size,
                stride: (1 + rng.below(2), 1 + rng.below(2)),
                pad: Pad2d::default(),
            };
            g.push(Op::Pool2d(geom), &[x4], layer)
        }
        2 => {
            let m = numel(&s) / last;
            let x2 = g.reshape(x, &[m, last], layer)?;
            let w = g.param(&format!("{layer}/w"), &[last, 1 + rng.below(4)], true, layer)?;
            g.push(
                Op::MatMul {
                    trans_a: false,
                    trans_b: false,
                },
                &[x2, w],
                layer,
            )
        }
        3 => g.push(
            if rng.below(2) == 0 { Op::Softmax } else { Op::LogSoftmax },
            &[x],
            layer,
        ),
        4 => {
            let y = nodes[rng.below(nodes.len())];
            let labels = g.push(Op::Softmax, &[y], layer)?;
            g.push(Op::SoftmaxCrossEntropy, &[x, labels], layer)
        }
        5 => {
            let gamma = g.param(&format!("{layer}/gamma"), &[last], true, layer)?;
            let beta = g.param(&format!("{layer}/beta"), &[last], true, layer)?;
            let mean = g.param(&format!("{layer}/mean"), &[last], false, layer)?;
            let var = g.param(&format!("{layer}/var"), &[last], false, layer)?;
            let var = g.push(Op::Unary(UnaryOp::Square), &[var], layer)?;
            g.push(
                Op::BatchNormInference { epsilon: 1e-3 },
                &[x, gamma, beta, mean, var],
                layer,
            )
        }
        6 => {
            let y = nodes[rng.below(nodes.len())];
            g.push(Op::Concat { axis: s.len() - 1 }, &[x, y], layer)
        }
        7 => {
            let pads = s.iter().map(|_| (rng.below(2), rng.below(2))).collect();
            g.push(
                Op::Pad {
                    pads,
                    value: 0.5,
                    mode: PadMode::Constant,
                },
                &[x],
                layer,
            )
        }
        8 => {
            let starts: Vec<usize> = s.iter().map(|&d| rng.below(d)).collect();
            let sizes = s.iter().zip(&starts).map(|(&d, &a)| 1 + rng.below(d - a)).collect();
            g.push(Op::Slice { starts, sizes }, &[x], layer)
        }
        9 => {
            let mut shape = vec![2];
            shape.extend(&s);
            g.push(Op::Broadcast { shape }, &[x], layer)
        }
        10 => {
            let x4 = as4(g)?;
            let (h, w) = (g.shape(x4)[1], g.shape(x4)[2]);
            let mode = ResizeMode::ALL[rng.below(ResizeMode::ALL.len())];
            g.push(
                Op::Resize {
                    mode,
                    height: 2 * h,
                    width: w + 1,
                },
                &[x4],
                layer,
            )
        }
        11 => {
            // where(x >= y, x, w) with the per-channel parameter as the other branch.
            let y = nodes[rng.below(nodes.len())];
            let w = nodes[2];
            let cond = g.push(Op::Binary(BinaryOp::Ge), &[x, y], layer)?;
            g.push(Op::Select, &[cond, x, w], layer)
        }
        12 => {
            let mode = [PadMode::Reflect, PadMode::Replicate][rng.below(2)];
            let pads = s.iter().map(|&d| (rng.below(d.min(3)), rng.below(d.min(3)))).collect();
            g.push(Op::Pad { pads, value: 0.0, mode }, &[x], layer)
        }
        13 => {
            // x times host data of its shape (foldable when x is).
            let data = (0..numel(&s)).map(|k| (k % 5) as f32 - 2.0).collect();
            let c = g.constant(crate::tensor::Tensor::new(s.clone(), data, layer)?, layer)?;
            g.push(Op::Binary(BinaryOp::Mul), &[x, c], layer)
        }
        _ => {
            let x4 = as4(g)?;
            let c = g.shape(x4)[3];
            let k = g.param(&format!("{layer}/k"), &[2, 2, c, 1 + rng.below(3)], true, layer)?;
            let geom = conv_geom(rng, 1);
            let conv = g.push(Op::Conv2d(geom), &[x4, k], layer)?;
            let b = g.param(&format!("{layer}/b"), &[g.shape(conv)[3]], true, layer)?;
            let biased = g.push(Op::Binary(BinaryOp::Add), &[conv, b], layer)?;
            g.push(Op::Unary(UnaryOp::Relu), &[biased], layer)
        }
    }
}

fn feeds(g: &Graph, seed: u64) -> Feeds {
    let mut rng = Rng::new(seed);
    g.nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::Input { name } | Op::Param { name, .. } => Some((
                name.clone(),
                (0..n.ty.numel()).map(|_| rng.uniform_in(-3.0, 3.0)).collect(),
            )),
            _ => None,
        })
        .collect()
}

fn assert_same(before: &[Vec<f64>], after: &[Vec<f64>], what: &str) {
    assert_eq!(before.len(), after.len(), "{what}: output count");
    for (o, (x, y)) in before.iter().zip(after).enumerate() {
        assert_eq!(x.len(), y.len(), "{what}: output {o} length");
        for (a, b) in x.iter().zip(y) {
            assert!(
                (a - b).abs() <= 1e-6 * (1.0 + a.abs()),
                "{what}: output {o}: {a} vs {b}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn every_pass_preserves_results(seed in any::<u64>(), steps in 1usize..30) {
        let g = random_graph(seed, steps);
        let f = feeds(&g, seed ^ 1);
        let want = evaluate(&g, &f).unwrap();
        for (name, pass) in [
            ("simplify", simplify as fn(Graph) -> crate::Result<(Graph, PassReport)>),
            ("fold_constants", fold_constants),
            ("cse", cse),
            ("dce", dce),
            ("fuse_elementwise", fuse_elementwise),
            ("bypass_broadcasts", bypass_broadcasts),
            ("fuse_reduce_prologues", fuse_reduce_prologues),
            ("fold_batchnorm", fold_batchnorm),
            ("fuse_epilogues", fuse_epilogues),
            ("transpose_backprop_filters", transpose_backprop_filters),
        ] {
            let (h, report) = pass(g.clone()).unwrap();
            assert_eq!(report.nodes_after, h.nodes.len());
            assert_same(&want, &evaluate(&h, &f).unwrap(), name);
        }
        let (h, _) = optimize(g.clone()).unwrap();
        assert_same(&want, &evaluate(&h, &f).unwrap(), "optimize");
        prop_assert!(h.nodes.len() <= g.nodes.len());
        // Fusing again after a new consumer re-fuses fused nodes into it.
        let mut h2 = h.clone();
        let last = h2.outputs[0];
        let y = h2.push(Op::Unary(UnaryOp::Tanh), &[last], "extra").unwrap();
        let z = h2.push(Op::Binary(BinaryOp::Sub), &[y, last], "extra").unwrap();
        h2.outputs[0] = z;
        let want2 = evaluate(&h2, &f).unwrap();
        let (h3, _) = fuse_elementwise(h2).unwrap();
        assert_same(&want2, &evaluate(&h3, &f).unwrap(), "refuse");
    }
}

#[test]
fn passes_do_what_they_say() {
    let mut g = Graph::new();
    let x = g.input("x", TensorType::f32(vec![4, 3])).unwrap();
    let one = g.unit_scale(x);
    let a = g.push(Op::Unary(UnaryOp::Relu), &[one], "a").unwrap();
    let a2 = g.push(Op::Unary(UnaryOp::Relu), &[one], "a2").unwrap();
    let s = g.push(Op::Binary(BinaryOp::Add), &[a, a2], "s").unwrap();
    let t = g.push(Op::Unary(UnaryOp::Tanh), &[s], "t").unwrap();
    let _dead = g.push(Op::Unary(UnaryOp::Exp), &[t], "dead").unwrap();
    g.outputs.push(t);
    let (h, reports) = optimize(g).unwrap();
    let by = |p: &str| reports.iter().find(|r| r.pass == p).unwrap().changes.len();
    assert_eq!(by("simplify"), 1, "{reports:?}");
    assert_eq!(by("cse"), 1, "{reports:?}");
    assert!(by("dce") >= 1, "{reports:?}");
    assert_eq!(by("fuse_elementwise"), 1, "{reports:?}");
    // x, then one fused node: relu is read twice by the add, so it is inlined twice.
    assert_eq!(h.nodes.len(), 2, "{:?}", h.nodes);
    match &h.nodes[1].op {
        Op::Elementwise { expr } => assert_eq!(expr.describe(), "tanh(add(relu(in0), relu(in0)))"),
        op => panic!("expected a fused node, got {op:?}"),
    }
}

impl Graph {
    fn unit_scale(&mut self, x: NodeId) -> NodeId {
        self.push(Op::Unary(UnaryOp::Scale(1.0)), &[x], "one").unwrap()
    }
}

fn conv_geom(rng: &mut Rng, groups: usize) -> ConvGeometry {
    let p = rng.below(2);
    ConvGeometry {
        stride: (1 + rng.below(2), 1 + rng.below(2)),
        dilation: (1 + rng.below(2), 1),
        pad: Pad2d {
            top: p,
            bottom: rng.below(2),
            left: p,
            right: rng.below(2),
        },
        groups,
    }
}

/// A random GEMM-based op (sometimes a depthwise convolution, which must stay unfused) over
/// fresh inputs, followed by a random elementwise epilogue: bias, activations, a residual, a
/// unary gradient with an input of the output's shape, constants; sometimes the GEMM or an
/// intermediate is also an output.
fn random_gemm_graph(seed: u64) -> (Graph, bool) {
    let mut rng = Rng::new(seed);
    let mut g = Graph::new();
    let (n, h, w, c) = (1 + rng.below(2), 3 + rng.below(3), 3 + rng.below(3), 1 + rng.below(4));
    let co = 1 + rng.below(5);
    let kind = rng.below(6);
    let x4 = |g: &mut Graph, shape: Vec<usize>| g.input("x", TensorType::f32(shape)).unwrap();
    let (gemm, gemm_like) = match kind {
        0 | 1 => {
            // Conv2d, grouped or depthwise sometimes.
            let groups = if c > 1 && rng.below(3) == 0 { c } else { 1 };
            let x = x4(&mut g, vec![n, h, w, c]);
            let cout = if groups == c && c > 1 { c } else { co };
            let k = g
                .param("k", &[2, 1 + rng.below(2), c / groups, cout], true, "conv")
                .unwrap();
            let geom = conv_geom(&mut rng, groups);
            (g.push(Op::Conv2d(geom), &[x, k], "conv"), !(groups > 1 && groups == c))
        }
        2 => {
            let (m, k, nn) = (1 + rng.below(5), 1 + rng.below(6), 1 + rng.below(7));
            let (ta, tb) = (rng.below(2) == 1, rng.below(2) == 1);
            let a = x4(&mut g, if ta { vec![k, m] } else { vec![m, k] });
            let b = g.param("b", &(if tb { [nn, k] } else { [k, nn] }), true, "mm").unwrap();
            (
                g.push(
                    Op::MatMul {
                        trans_a: ta,
                        trans_b: tb,
                    },
                    &[a, b],
                    "mm",
                ),
                true,
            )
        }
        3 => {
            let x = x4(&mut g, vec![n, h, w, c]);
            let k = g.param("k", &[2, 2, co, c], true, "convt").unwrap();
            let geom = ConvGeometry {
                pad: Pad2d::default(),
                ..conv_geom(&mut rng, 1)
            };
            (
                g.push(Op::ConvTranspose2d { geom, out_pad: (0, 0) }, &[x, k], "convt"),
                true,
            )
        }
        4 | 5 => {
            let geom = conv_geom(&mut rng, 1);
            let fwd = {
                let mut t = Graph::new();
                let x = t.input("x", TensorType::f32(vec![n, h, w, c])).unwrap();
                let k = t.param("k", &[2, 2, c, co], true, "conv").unwrap();
                let y = t.push(Op::Conv2d(geom), &[x, k], "conv").unwrap();
                t.shape(y).to_vec()
            };
            if kind == 4 {
                let dy = x4(&mut g, fwd);
                let k = g.param("k", &[2, 2, c, co], true, "conv").unwrap();
                let op = Op::Conv2dBackpropInput {
                    geom,
                    input_hw: (h, w),
                    filter: BackpropFilter::Hwio,
                };
                (g.push(op, &[dy, k], "bpi"), true)
            } else {
                let x = x4(&mut g, vec![n, h, w, c]);
                let dy = g.input("dy", TensorType::f32(fwd)).unwrap();
                let op = Op::Conv2dBackpropFilter {
                    geom,
                    kernel_hw: (2, 2),
                };
                (g.push(op, &[x, dy], "bpf"), true)
            }
        }
        _ => unreachable!(),
    };
    let gemm = gemm.unwrap();
    let shape = g.shape(gemm).to_vec();
    let ch = *shape.last().unwrap();
    let mut y = gemm;
    let mut fusable = gemm_like;
    let mut last_neg = false;
    for step in 0..1 + rng.below(4) {
        let layer = format!("e{step}");
        let pick = rng.below(7);
        // Two negations in a row cancel (`simplify`), and a chain of nothing but such pairs
        // leaves no epilogue to fuse: a second negation becomes a relu.
        let unary = |u: UnaryOp| {
            if last_neg && u == UnaryOp::Neg {
                UnaryOp::Relu
            } else {
                u
            }
        };
        let mut this_neg = false;
        y = match pick {
            0 | 1 => {
                let bias = g.param(&format!("bias{step}"), &[ch], true, &layer).unwrap();
                g.push(Op::Binary(BinaryOp::Add), &[y, bias], &layer).unwrap()
            }
            2 => {
                let u = unary(UNARY[rng.below(UNARY.len())]);
                this_neg = u == UnaryOp::Neg;
                g.push(Op::Unary(u), &[y], &layer).unwrap()
            }
            3 => {
                let r = g.input(&format!("res{step}"), TensorType::f32(shape.clone())).unwrap();
                let op = BINARY[rng.below(BINARY.len())];
                g.push(Op::Binary(op), &[r, y], &layer).unwrap()
            }
            4 => {
                let x = g.input(&format!("gx{step}"), TensorType::f32(shape.clone())).unwrap();
                g.push(Op::UnaryGrad(UNARY[rng.below(UNARY.len())]), &[x, y], &layer)
                    .unwrap()
            }
            5 => {
                let f = g.fill(&[1], 0.5, &layer).unwrap();
                g.push(Op::Binary(BinaryOp::Mul), &[y, f], &layer).unwrap()
            }
            _ => {
                // A broadcast the epilogue cannot index: (1, .., 1, C) is not (C,).
                let mut s = vec![1; shape.len()];
                s[shape.len() - 1] = ch;
                let p = g.param(&format!("odd{step}"), &s, true, &layer).unwrap();
                if s != shape {
                    fusable = false;
                }
                g.push(Op::Binary(BinaryOp::Sub), &[y, p], &layer).unwrap()
            }
        };
        last_neg = this_neg;
    }
    g.outputs.push(y);
    if rng.below(5) == 0 {
        g.outputs.push(gemm);
        fusable = false;
    }
    (g, fusable)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn epilogue_fusion_preserves_results(seed in any::<u64>()) {
        let (g, fusable) = random_gemm_graph(seed);
        let f = feeds(&g, seed ^ 7);
        let want = evaluate(&g, &f).unwrap();
        let (h, report) = fuse_epilogues(g.clone()).unwrap();
        assert_eq!(report.nodes_after, h.nodes.len());
        assert_same(&want, &evaluate(&h, &f).unwrap(), "fuse_epilogues");
        let (h, _) = optimize(g.clone()).unwrap();
        assert_same(&want, &evaluate(&h, &f).unwrap(), "optimize");
        let fused = h.nodes.iter().filter(|n| matches!(n.op, Op::GemmEpilogue { .. })).count();
        // A transposed convolution with kernel == stride became a pixel-shuffled matmul
        // (`subpixel`), which takes the epilogue as well.
        prop_assert_eq!(fused, usize::from(fusable), "{:?}", h.nodes);
        for n in &h.nodes {
            if matches!(n.op, Op::GemmEpilogue { .. }) {
                prop_assert!(n.inputs.len() - 2 <= MAX_EPILOGUE_INPUTS);
            }
        }
    }
}

#[test]
fn epilogue_inputs_are_checked() {
    let mut g = Graph::new();
    let a = g.input("a", TensorType::f32(vec![3, 4])).unwrap();
    let b = g.param("b", &[4, 5], true, "mm").unwrap();
    let bias = g.param("bias", &[5], true, "mm").unwrap();
    let odd = g.param("odd", &[3, 1], true, "mm").unwrap();
    let mm = Op::MatMul {
        trans_a: false,
        trans_b: false,
    };
    let epi = |expr| Op::GemmEpilogue {
        base: Box::new(mm.clone()),
        expr,
    };
    let add = ElemExpr::Binary(
        BinaryOp::Add,
        Box::new(ElemExpr::Input(0)),
        Box::new(ElemExpr::Input(1)),
    );
    let ok = g.push(epi(add.clone()), &[a, b, bias], "mm").unwrap();
    assert_eq!(g.shape(ok), &[3, 5]);
    assert_eq!(g.node(ok).op.name(), "matmul_epilogue");
    assert!(
        g.push(epi(add.clone()), &[a, b, odd], "mm").is_err(),
        "(3, 1) is neither (3, 5) nor (5,)"
    );
    assert!(g.push(epi(add), &[a, b], "mm").is_err(), "reads a missing input");
    assert!(
        g.push(epi(ElemExpr::Input(0)), &[a, b, bias], "mm").is_err(),
        "never reads bias"
    );
    let relu = Op::GemmEpilogue {
        base: Box::new(Op::Unary(UnaryOp::Relu)),
        expr: ElemExpr::Input(0),
    };
    assert!(g.push(relu, &[a, b], "x").is_err(), "relu is no GEMM");
}

#[test]
fn training_step_gets_gemm_epilogues() {
    use crate::layers::{Conv2D, Dense, Flatten, Input, MaxPooling2D};
    use crate::train::{CompileConfig, Loss, Optimizer, train_step};
    let model = crate::Sequential::new()
        .add(Input::new(&[12, 12, 3]))
        .add(Conv2D::new(8, 3).activation("relu"))
        .add(MaxPooling2D::new(2))
        .add(Conv2D::new(8, 3).activation("relu"))
        .add(Flatten::new())
        .add(Dense::new(16).activation("relu"))
        .add(Dense::new(10))
        .build(3)
        .unwrap();
    let cfg = CompileConfig::new(
        Loss::SparseCategoricalCrossentropy { from_logits: true },
        Optimizer::adam(0.001),
        vec![],
    );
    let step = train_step(&model, 4, &cfg).unwrap();
    let (h, reports) = optimize(step.graph.clone()).unwrap();
    let report = reports.iter().find(|r| r.pass == "fuse_epilogues").unwrap();
    let epilogues: Vec<&Node> = h
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::GemmEpilogue { .. }))
        .collect();
    assert_eq!(report.changes.len(), epilogues.len());
    // Bias adds of the two convolutions and the two dense layers, with the relu after them
    // (its gradient reads the relu's output, so the GEMM's result has no other reader), and
    // the relu gradient of the first dense layer into the second one's input-gradient matmul.
    let described: Vec<String> = epilogues
        .iter()
        .map(|n| match &n.op {
            Op::GemmEpilogue { base, expr } => format!("{} {}", base.name(), expr.describe()),
            _ => unreachable!(),
        })
        .collect();
    assert!(
        described.iter().filter(|d| d.contains("add(in0, in1)")).count() >= 4,
        "{described:?}"
    );
    assert_eq!(
        described.iter().filter(|d| d.contains("relu(add(in0, in1))")).count(),
        3,
        "{described:?}"
    );
    assert!(
        described.iter().any(|d| d.starts_with("matmul relu_grad")),
        "{described:?}"
    );
    // Same results in the reference interpreter.
    let mut rng = Rng::new(5);
    let mut f: Feeds = step
        .graph
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::Input { name } | Op::Param { name, .. } => Some((
                name.clone(),
                (0..n.ty.numel()).map(|_| rng.uniform_in(-0.5, 0.5)).collect(),
            )),
            _ => None,
        })
        .collect();
    let labels = step
        .graph
        .nodes
        .iter()
        .find(|n| matches!(&n.op, Op::Input { name } if name.starts_with("target/")));
    let labels = labels.unwrap();
    let count = labels.ty.numel();
    let Op::Input { name } = &labels.op else { unreachable!() };
    f.insert(name.clone(), (0..count).map(|k| (k % 2) as f64).collect());
    let want = evaluate(&step.graph, &f).unwrap();
    assert_same(&want, &evaluate(&h, &f).unwrap(), "train step");
}

/// Random feeds for every input and parameter of a training step, with labels `k % classes`.
fn step_feeds(g: &Graph, seed: u64, classes: usize) -> Feeds {
    let mut rng = Rng::new(seed);
    let mut f: Feeds = g
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::Input { name } | Op::Param { name, .. } => Some((
                name.clone(),
                (0..n.ty.numel()).map(|_| rng.uniform_in(-0.5, 0.5)).collect(),
            )),
            _ => None,
        })
        .collect();
    let labels = g
        .nodes
        .iter()
        .find(|n| matches!(&n.op, Op::Input { name } if name.starts_with("target/")));
    let labels = labels.unwrap();
    let count = labels.ty.numel();
    let Op::Input { name } = &labels.op else { unreachable!() };
    f.insert(name.clone(), (0..count).map(|k| (k % classes) as f64).collect());
    f
}

/// The pooling-gradient epilogues of `g`: `(pool kind, epilogue)` per fused node.
fn pool_grad_epilogues(g: &Graph) -> Vec<(PoolKind, String)> {
    g.nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::GemmEpilogue { base, expr } => match **base {
                Op::Pool2dBackprop(p) => Some((p.kind, expr.describe())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// conv -> relu -> max/avg pooling (valid and same padding, stride above the window too) in a
/// differentiated training step: the relu gradient after the pooling gradient fuses into it,
/// and the reference interpreter gives the same loss, gradients and updates before and after
/// `fuse_epilogues` and the whole pipeline.
#[test]
fn pooling_gradients_take_the_activation_gradient_as_epilogue() {
    use crate::layers::{AveragePooling2D, Conv2D, Dense, Flatten, Input, MaxPooling2D};
    use crate::train::{CompileConfig, Loss, Optimizer, train_step};
    for (kind, size, stride, padding) in [
        (PoolKind::Max, 2, 2, "valid"),
        (PoolKind::Avg, 2, 2, "valid"),
        (PoolKind::Max, 3, 2, "same"),
        (PoolKind::Avg, 3, 2, "same"),
        (PoolKind::Max, 2, 3, "valid"),
        (PoolKind::Avg, 2, 3, "same"),
    ] {
        let what = format!("{kind:?} pool {size} stride {stride} {padding}");
        let model = crate::Sequential::new().add(Input::new(&[9, 7, 3]));
        let model = model.add(Conv2D::new(5, 3).activation("relu").padding("same"));
        let model = match kind {
            PoolKind::Max => model.add(MaxPooling2D::new(size).strides(stride).padding(padding)),
            PoolKind::Avg => model.add(AveragePooling2D::new(size).strides(stride).padding(padding)),
        };
        let model = model.add(Flatten::new()).add(Dense::new(4)).build(11).unwrap();
        let cfg = CompileConfig::new(
            Loss::SparseCategoricalCrossentropy { from_logits: true },
            Optimizer::sgd(0.1),
            vec![],
        );
        let step = train_step(&model, 3, &cfg).unwrap();
        let g = step.graph;
        let f = step_feeds(&g, 17, 4);
        let want = evaluate(&g, &f).unwrap();
        assert!(pool_grad_epilogues(&g).is_empty());
        let (h, report) = fuse_epilogues(g.clone()).unwrap();
        let fused = pool_grad_epilogues(&h);
        assert_eq!(fused.len(), 1, "{what}: {fused:?}\n{:?}", report.changes);
        assert_eq!(fused[0].0, kind, "{what}");
        assert!(fused[0].1.contains("relu_grad"), "{what}: {fused:?}");
        assert!(
            report.changes.iter().any(|c| c.contains("pool2d_backprop")),
            "{what}: {:?}",
            report.changes
        );
        assert_same(&want, &evaluate(&h, &f).unwrap(), &format!("fuse_epilogues, {what}"));
        let (o, _) = optimize(g.clone()).unwrap();
        assert_eq!(pool_grad_epilogues(&o).len(), 1, "{what}: after optimize");
        assert_same(&want, &evaluate(&o, &f).unwrap(), &format!("optimize, {what}"));
    }
}

/// A hand-built conv -> relu -> pooling -> loss graph, differentiated with `grad`: the relu
/// gradient fuses into the pooling gradient with the relu's input (same shape) as its extra
/// input; a per-channel scale after it fuses too; a pooling gradient with a second reader or
/// read by a broadcast it cannot index stays unfused.
#[test]
fn pooling_gradient_epilogues_follow_the_fusion_rules() {
    for kind in [PoolKind::Max, PoolKind::Avg] {
        let build = |variant: usize| {
            let mut g = Graph::new();
            let x = g.input("x", TensorType::f32(vec![2, 7, 5, 3])).unwrap();
            let w = g.param("w", &[3, 3, 3, 5], true, "conv").unwrap();
            let geom = ConvGeometry {
                stride: (1, 1),
                dilation: (1, 1),
                pad: Pad2d {
                    top: 1,
                    bottom: 1,
                    left: 1,
                    right: 1,
                },
                groups: 1,
            };
            let c = g.push(Op::Conv2d(geom), &[x, w], "conv").unwrap();
            let r = g.push(Op::Unary(UnaryOp::Relu), &[c], "relu").unwrap();
            let pg = PoolGeometry {
                kind,
                size: (2, 2),
                stride: (2, 2),
                pad: Pad2d::default(),
            };
            let p = g.push(Op::Pool2d(pg), &[r], "pool").unwrap();
            let sq = g.push(Op::Unary(UnaryOp::Square), &[p], "loss").unwrap();
            let loss = g
                .push(
                    Op::Reduce {
                        op: ReduceOp::Sum,
                        axes: vec![0, 1, 2, 3],
                        keep_dims: false,
                    },
                    &[sq],
                    "loss",
                )
                .unwrap();
            let dy = g.push(Op::Unary(UnaryOp::Scale(2.0)), &[p], "dloss").unwrap();
            let dr = g.push(Op::Pool2dBackprop(pg), &[r, dy], "pool_grad").unwrap();
            let e = match variant {
                // The relu gradient, reading the relu's input (same shape).
                0 | 3 => g.push(Op::UnaryGrad(UnaryOp::Relu), &[c, dr], "relu_grad").unwrap(),
                // A per-channel (C,) scale.
                1 => {
                    let s = g.param("s", &[5], true, "scale").unwrap();
                    g.push(Op::Binary(BinaryOp::Mul), &[dr, s], "scale").unwrap()
                }
                // (1, 1, 1, 5) is not (5,): no epilogue
                _ => {
                    let s = g.param("s", &[1, 1, 1, 5], true, "scale").unwrap();
                    g.push(Op::Binary(BinaryOp::Mul), &[dr, s], "scale").unwrap()
                }
            };
            let dw = g
                .push(
                    Op::Conv2dBackpropFilter {
                        geom,
                        kernel_hw: (3, 3),
                    },
                    &[x, e],
                    "conv_grad",
                )
                .unwrap();
            g.outputs.extend([loss, dw]);
            if variant == 3 {
                // A second reader (here: an output) keeps the pooling gradient unfused.
                g.outputs.push(dr);
            }
            (g, usize::from(variant < 2))
        };
        for variant in 0..4 {
            let (g, expected) = build(variant);
            let f = feeds(&g, 3 + variant as u64);
            let want = evaluate(&g, &f).unwrap();
            let (h, _) = fuse_epilogues(g.clone()).unwrap();
            assert_same(&want, &evaluate(&h, &f).unwrap(), "fuse_epilogues");
            let fused = pool_grad_epilogues(&h);
            assert_eq!(fused.len(), expected, "{kind:?} variant {variant}: {fused:?}");
            let (o, _) = optimize(g.clone()).unwrap();
            assert_same(&want, &evaluate(&o, &f).unwrap(), "optimize");
            assert_eq!(pool_grad_epilogues(&o).len(), expected, "{kind:?} variant {variant}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Inference batch norm after a convolution (with or without bias, with or without a
    /// relu after it) or a matmul ends up in the GEMM's epilogue, with unchanged results.
    #[test]
    fn batch_norm_folds_into_the_gemm_epilogue(seed in any::<u64>(), bias in any::<bool>(), relu in any::<bool>(), conv in any::<bool>()) {
        let mut rng = Rng::new(seed);
        let mut g = Graph::new();
        let (n, h, w, c, co) = (1 + rng.below(2), 3 + rng.below(3), 3 + rng.below(3), 1 + rng.below(5), 1 + rng.below(7));
        let mut y = if conv {
            let x = g.input("x", TensorType::f32(vec![n, h, w, c])).unwrap();
            let k = g.param("k", &[2, 2, c, co], true, "conv").unwrap();
            let geom = conv_geom(&mut rng, 1);
            g.push(Op::Conv2d(geom), &[x, k], "conv").unwrap()
        } else {
            let x = g.input("x", TensorType::f32(vec![n * h, c])).unwrap();
            let k = g.param("k", &[c, co], true, "dense").unwrap();
            g.push(Op::MatMul { trans_a: false, trans_b: false }, &[x, k], "dense").unwrap()
        };
        if bias {
            let b = g.param("b", &[co], true, "conv").unwrap();
            y = g.push(Op::Binary(BinaryOp::Add), &[y, b], "conv").unwrap();
        }
        let gamma = g.param("bn/gamma", &[co], true, "bn").unwrap();
        let beta = g.param("bn/beta", &[co], true, "bn").unwrap();
        let mean = g.param("bn/moving_mean", &[co], false, "bn").unwrap();
        let var = g.param("bn/moving_variance", &[co], false, "bn").unwrap();
        let var = g.push(Op::Unary(UnaryOp::Abs), &[var], "bn").unwrap();
        y = g.push(Op::BatchNormInference { epsilon: 1e-3 }, &[y, gamma, beta, mean, var], "bn").unwrap();
        if relu {
            y = g.push(Op::Unary(UnaryOp::Relu), &[y], "relu").unwrap();
        }
        g.outputs.push(y);
        let f = feeds(&g, seed ^ 3);
        let want = evaluate(&g, &f).unwrap();
        let (folded, report) = fold_batchnorm(g.clone()).unwrap();
        prop_assert_eq!(report.changes.len(), 1);
        assert_same(&want, &evaluate(&folded, &f).unwrap(), "fold_batchnorm");
        let (h, _) = optimize(g).unwrap();
        assert_same(&want, &evaluate(&h, &f).unwrap(), "optimize");
        let left = h.nodes.iter().filter(|n| matches!(n.op, Op::BatchNormInference { .. })).count();
        prop_assert_eq!(left, 0);
        // The abs of the variance stays a (C,) kernel of its own; everything else is the GEMM.
        let gemm: Vec<&Node> = h.nodes.iter().filter(|n| matches!(n.op, Op::GemmEpilogue { .. })).collect();
        prop_assert_eq!(gemm.len(), 1, "{:?}", h.nodes);
        let Op::GemmEpilogue { expr, .. } = &gemm[0].op else { unreachable!() };
        prop_assert!(expr.describe().contains("sqrt"), "{}", expr.describe());
        prop_assert_eq!(h.outputs[0].index(), h.nodes.len() - 1, "the epilogue node is the output");
    }
}

/// The input gradient of a random convolution (stride, dilation, groups, padding; `C / groups`
/// a multiple of 4 or not), sometimes twice over the same kernel (summed) and sometimes with a
/// bias + relu epilogue after it. `None` when the geometry leaves no output.
fn random_backprop_input_graph(seed: u64) -> Option<(Graph, bool)> {
    let mut rng = Rng::new(seed);
    let mut g = Graph::new();
    let groups = 1 + rng.below(3);
    let cg = [1, 2, 3, 4, 8][rng.below(5)];
    let cog = 1 + rng.below(5);
    let (n, h, w) = (1 + rng.below(2), 3 + rng.below(5), 3 + rng.below(5));
    let (kh, kw) = (1 + rng.below(3), 1 + rng.below(3));
    let mut geom = conv_geom(&mut rng, groups);
    geom.dilation.1 = 1 + rng.below(2);
    let w_shape = [kh, kw, cg, cog * groups];
    let y_shape = {
        let mut t = Graph::new();
        let x = t.input("x", TensorType::f32(vec![n, h, w, cg * groups])).unwrap();
        let k = t.param("k", &w_shape, true, "conv").unwrap();
        let y = t.push(Op::Conv2d(geom), &[x, k], "conv").ok()?;
        t.shape(y).to_vec()
    };
    let k = g.param("k", &w_shape, true, "conv").unwrap();
    let op = Op::Conv2dBackpropInput {
        geom,
        input_hw: (h, w),
        filter: BackpropFilter::Hwio,
    };
    let dy = g.input("dy", TensorType::f32(y_shape.clone())).unwrap();
    let mut dx = g.push(op.clone(), &[dy, k], "conv_dx").unwrap();
    if rng.below(3) == 0 {
        let dy2 = g.input("dy2", TensorType::f32(y_shape)).unwrap();
        let dx2 = g.push(op, &[dy2, k], "conv_dx2").unwrap();
        dx = g.push(Op::Binary(BinaryOp::Add), &[dx, dx2], "sum").unwrap();
    }
    if rng.below(2) == 0 {
        let b = g.param("b", &[cg * groups], true, "epi").unwrap();
        dx = g.push(Op::Binary(BinaryOp::Add), &[dx, b], "epi").unwrap();
        dx = g.push(Op::Unary(UnaryOp::Relu), &[dx], "epi").unwrap();
    }
    g.outputs.push(dx);
    // One group of at most 4 channels with CO % 4 == 0 stays HWIO for the narrow kernel.
    let narrow = groups == 1 && cg <= NARROW_INPUT_GRAD_MAX_CHANNELS && (cog * groups).is_multiple_of(4);
    Some((g, cg % 4 == 0 && !narrow))
}

fn backprop_inputs(g: &Graph) -> Vec<BackpropFilter> {
    let layout = |op: &Op| match op {
        Op::Conv2dBackpropInput { filter, .. } => Some(*filter),
        _ => None,
    };
    g.nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::GemmEpilogue { base, .. } => layout(base),
            op => layout(op),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// The transposed-kernel rewrite keeps the reference interpreter's results, applies exactly
    /// where `C / groups` is a multiple of 4 (except the narrow input gradients), transposes each kernel once, and leaves the
    /// rewritten op to epilogue fusion.
    #[test]
    fn transposed_backprop_filters_preserve_results(seed in any::<u64>()) {
        let Some((g, applies)) = random_backprop_input_graph(seed) else {
            return Ok(());
        };
        let f = feeds(&g, seed ^ 11);
        let want = evaluate(&g, &f).unwrap();
        let (h, report) = super::backprop_filter::rewrite(g.clone(), 0).unwrap();
        assert_eq!(report.nodes_after, h.nodes.len());
        assert_same(&want, &evaluate(&h, &f).unwrap(), "transpose_backprop_filters");
        let count = backprop_inputs(&g).len();
        let expected = if applies { BackpropFilter::Hwoi } else { BackpropFilter::Hwio };
        prop_assert_eq!(backprop_inputs(&h), vec![expected; count]);
        prop_assert_eq!(report.changes.len(), if applies { count } else { 0 });
        let transposes = h.nodes.iter().filter(|n| matches!(n.op, Op::Transpose { .. })).count();
        prop_assert_eq!(transposes, usize::from(applies));
        // Fusing after the rewrite, as `optimize` does.
        let (e, _) = fuse_epilogues(h).unwrap();
        assert_same(&want, &evaluate(&e, &f).unwrap(), "then fuse_epilogues");
        let (o, _) = optimize(g.clone()).unwrap();
        assert_same(&want, &evaluate(&o, &f).unwrap(), "optimize");
        // Running it again changes nothing.
        let (again, report) = super::backprop_filter::rewrite(e, 0).unwrap();
        prop_assert!(report.changes.is_empty());
        assert_same(&want, &evaluate(&again, &f).unwrap(), "again");
    }
}

#[test]
fn transposed_backprop_filters_follow_the_rules() {
    // A training-size gradient: (32, 13, 13, 64) through a 3x3 kernel into 32 channels.
    let build = |c: usize, batch: usize, epilogue: bool| {
        let mut g = Graph::new();
        let geom = ConvGeometry {
            stride: (1, 1),
            dilation: (1, 1),
            pad: Pad2d::default(),
            groups: 1,
        };
        let k = g.param("k", &[3, 3, c, 64], true, "conv").unwrap();
        let dy = g.input("dy", TensorType::f32(vec![batch, 13, 13, 64])).unwrap();
        let op = Op::Conv2dBackpropInput {
            geom,
            input_hw: (15, 15),
            filter: BackpropFilter::Hwio,
        };
        let mut dx = g.push(op, &[dy, k], "conv").unwrap();
        if epilogue {
            let x = g.input("x", TensorType::f32(vec![batch, 15, 15, c])).unwrap();
            dx = g.push(Op::UnaryGrad(UnaryOp::Relu), &[x, dx], "relu").unwrap();
        }
        g.outputs.push(dx);
        g
    };
    let pass = |g: Graph| transpose_backprop_filters(g).unwrap();
    // Above the FLOP threshold with N % 4 == 0: rewritten, one transpose, reported.
    let (h, report) = pass(build(32, 32, false));
    assert_eq!(backprop_inputs(&h), [BackpropFilter::Hwoi]);
    assert_eq!(report.changes.len(), 1, "{report:?}");
    assert!(report.changes[0].contains("transpose"), "{report:?}");
    let t = h.nodes.iter().find(|n| matches!(n.op, Op::Transpose { .. })).unwrap();
    assert_eq!(t.ty.shape, [3, 3, 64, 32]);
    assert_eq!(t.op, Op::Transpose { perm: vec![0, 1, 3, 2] });
    // N not a multiple of 4 (no vec4 loads to gain) or a GEMM too small to repay a dispatch.
    assert_eq!(backprop_inputs(&pass(build(30, 32, false)).0), [BackpropFilter::Hwio]);
    let small = build(4, 1, false);
    const { assert!(2 * 13 * 13 * 64 * 9 * 4 < super::backprop_filter::MIN_FLOPS) };
    assert_eq!(backprop_inputs(&pass(small).0), [BackpropFilter::Hwio]);
    // In the pipeline: the relu gradient fuses into the rewritten op.
    let (o, reports) = optimize(build(32, 32, true)).unwrap();
    let names: Vec<&str> = reports.iter().map(|r| r.pass).collect();
    let at = |p: &str| names.iter().position(|&n| n == p).unwrap();
    assert!(at("transpose_backprop_filters") < at("fuse_epilogues"), "{names:?}");
    let epi: Vec<String> = o
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::GemmEpilogue { base, expr } => Some(format!("{} {}", base.name(), expr.describe())),
            _ => None,
        })
        .collect();
    assert_eq!(epi.len(), 1, "{:?}", o.nodes);
    assert!(epi[0].starts_with("conv2d_backprop_input_hwoi relu_grad"), "{epi:?}");
}

/// Host data: computations on constants fold into constants (uniform results into fills),
/// the memory plan keeps them out of the arenas, and the dumps print a fingerprint, not data.
#[test]
fn constants_fold_stay_out_of_the_arenas_and_dump_small() {
    use crate::tensor::Tensor;
    let mut g = Graph::new();
    let anchors = Tensor::new(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0], "anchors").unwrap();
    let c = g.constant(anchors, "anchors").unwrap();
    let two = g.fill(&[1], 2.0, "two").unwrap();
    let scaled = g.push(Op::Binary(BinaryOp::Mul), &[c, two], "scaled").unwrap();
    let zero = g.fill(&[1], 0.0, "zero").unwrap();
    let gone = g.push(Op::Binary(BinaryOp::Mul), &[c, zero], "gone").unwrap();
    let x = g.input("x", TensorType::f32(vec![2, 2])).unwrap();
    let out = g.push(Op::Binary(BinaryOp::Add), &[x, scaled], "out").unwrap();
    let out2 = g.push(Op::Binary(BinaryOp::Sub), &[x, gone], "out2").unwrap();
    g.outputs = vec![out, out2];
    let f: Feeds = [("x".to_string(), vec![0.5, -1.0, 2.0, 0.0])].into_iter().collect();
    let want = evaluate(&g, &f).unwrap();
    assert_eq!(want[0], [2.5, 3.0, 8.0, 8.0]);
    let (h, report) = fold_constants(g.clone()).unwrap();
    assert_same(&want, &evaluate(&h, &f).unwrap(), "fold_constants");
    let folded = |layer: &str| h.nodes.iter().find(|n| n.layer == layer).map(|n| n.op.clone());
    match folded("scaled") {
        Some(Op::Constant { value }) => assert_eq!(value.tensor().data, [2.0, 4.0, 6.0, 8.0]),
        other => panic!("scaled: {other:?} ({:?})", report.changes),
    }
    assert!(
        matches!(folded("gone"), Some(Op::Fill { value: 0.0 })),
        "{:?}",
        folded("gone")
    );
    // The whole pipeline keeps the results and plans no arena bytes for constants.
    let (opt, _) = optimize(g.clone()).unwrap();
    assert_same(&want, &evaluate(&opt, &f).unwrap(), "optimize");
    let plan = crate::plan::plan_memory(&opt);
    for (i, n) in opt.nodes.iter().enumerate() {
        if matches!(n.op, Op::Constant { .. }) {
            assert_eq!(plan.place[i], None, "constant %{i} placed in an arena");
        }
    }
    // A large constant dumps as its shape, a hash and four values.
    let mut big = Graph::new();
    let data: Vec<f32> = (0..100_000).map(|k| k as f32).collect();
    let k = big
        .constant(Tensor::new(vec![100, 1000], data, "grid").unwrap(), "grid")
        .unwrap();
    big.outputs.push(k);
    let text = crate::dump::to_text(&big, None);
    assert!(text.len() < 400, "{text}");
    assert!(
        text.contains("shape=(100, 1000)") && text.contains("hash=") && text.contains("first=[0, 1, 2, 3, ..]"),
        "{text}"
    );
    assert!(crate::dump::to_json(&big, None).to_string().len() < 1000);
    // Two different constants of the same shape are never merged by CSE.
    let mut two_c = Graph::new();
    let a = two_c
        .constant(Tensor::new(vec![2], vec![1.0, 2.0], "a").unwrap(), "a")
        .unwrap();
    let b = two_c
        .constant(Tensor::new(vec![2], vec![1.0, 3.0], "b").unwrap(), "b")
        .unwrap();
    let s = two_c.push(Op::Binary(BinaryOp::Sub), &[a, b], "s").unwrap();
    two_c.outputs.push(s);
    let (merged, _) = cse(two_c.clone()).unwrap();
    assert_eq!(evaluate(&merged, &Feeds::new()).unwrap()[0], [0.0, -1.0]);
    // Bad data is an error naming the layer, not a panic.
    let bad = Tensor {
        shape: vec![3],
        data: vec![1.0],
    };
    let err = Graph::new().constant(bad, "mask").unwrap_err().to_string();
    assert!(err.contains("mask") && err.contains("needs 3 values"), "{err}");
}

/// The new elementwise ops fuse like the old ones: hard swish and PReLU into a convolution's
/// epilogue, clip and select into one elementwise kernel.
#[test]
fn new_elementwise_ops_fuse_into_chains_and_epilogues() {
    let mut g = Graph::new();
    let x = g.input("x", TensorType::f32(vec![1, 5, 5, 3])).unwrap();
    let k = g.param("conv/kernel", &[3, 3, 3, 4], true, "conv").unwrap();
    let b = g.param("conv/bias", &[4], true, "conv").unwrap();
    let geom = ConvGeometry {
        stride: (1, 1),
        dilation: (1, 1),
        pad: Pad2d::default(),
        groups: 1,
    };
    let conv = g.push(Op::Conv2d(geom), &[x, k], "conv").unwrap();
    let biased = g.push(Op::Binary(BinaryOp::Add), &[conv, b], "conv").unwrap();
    let act = g.push(Op::Unary(UnaryOp::HardSwish), &[biased], "conv").unwrap();
    let slope = g.param("prelu/alpha", &[4], true, "prelu").unwrap();
    let p = g.push(Op::Binary(BinaryOp::PRelu), &[act, slope], "prelu").unwrap();
    let mask = g.input("mask", TensorType::f32(vec![1, 3, 3, 4])).unwrap();
    let clipped = g.push(Op::Unary(UnaryOp::Clip(-1.0, 1.0)), &[p], "clip").unwrap();
    let y = g.push(Op::Select, &[mask, clipped, p], "where").unwrap();
    g.outputs.push(y);
    let f = feeds(&g, 5);
    let want = evaluate(&g, &f).unwrap();
    let (h, _) = optimize(g).unwrap();
    assert_same(&want, &evaluate(&h, &f).unwrap(), "optimize");
    let ops: Vec<String> = h
        .nodes
        .iter()
        .filter(|n| !matches!(n.op, Op::Input { .. } | Op::Param { .. }))
        .map(|n| match &n.op {
            Op::GemmEpilogue { expr, .. } | Op::Elementwise { expr } => expr.describe(),
            op => op.name(),
        })
        .collect();
    assert_eq!(ops.len(), 2, "{ops:?}");
    // The PReLU output has two readers: it ends the epilogue, and the select chain reads it.
    assert!(ops[0].contains("hard_swish") && ops[0].contains("prelu"), "{ops:?}");
    assert!(ops[1].starts_with("select(") && ops[1].contains("clip"), "{ops:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Transposed convolutions with kernel == stride become a pixel-shuffled matmul with the
    /// interpreter's results unchanged (alone and through `optimize`, where the bias and relu
    /// after it fuse into its store); the others are left alone.
    #[test]
    fn subpixel_transposed_convs_preserve_results(
        n in 1usize..3, h in 1usize..6, w in 1usize..6, c in 1usize..6, o in 1usize..6,
        kh in 1usize..4, kw in 1usize..4, off in any::<bool>(), seed in any::<u64>(),
    ) {
        let mut g = Graph::new();
        let x = g.input("x", TensorType::f32(vec![n, h, w, c])).unwrap();
        let k = g.param("k", &[kh, kw, o, c], true, "up").unwrap();
        // `off`: a stride other than the kernel's (or padding), which the rewrite must skip.
        let geom = ConvGeometry {
            stride: if off { (kh + 1, kw) } else { (kh, kw) },
            dilation: (1, 1),
            pad: Pad2d::default(),
            groups: 1,
        };
        let y = g.push(Op::ConvTranspose2d { geom, out_pad: (0, 0) }, &[x, k], "up").unwrap();
        let b = g.param("b", &[o], true, "up").unwrap();
        let yb = g.push(Op::Binary(BinaryOp::Add), &[y, b], "up").unwrap();
        let r = g.push(Op::Unary(UnaryOp::Relu), &[yb], "up").unwrap();
        g.outputs.push(r);
        let f = feeds(&g, seed);
        let want = evaluate(&g, &f).unwrap();
        let (s, report) = subpixel_transposed_convs(g.clone()).unwrap();
        prop_assert_eq!(report.changes.len(), usize::from(!off));
        let convts = s.nodes.iter().filter(|nd| matches!(nd.op, Op::ConvTranspose2d { .. })).count();
        prop_assert_eq!(convts, usize::from(off));
        assert_same(&want, &evaluate(&s, &f).unwrap(), "subpixel_transposed_convs");
        let shuffled = s.nodes.iter().filter(|nd| matches!(nd.op, Op::PixelShuffleMatMul { .. })).count();
        prop_assert_eq!(shuffled, usize::from(!off));
        let (opt, _) = optimize(g).unwrap();
        assert_same(&want, &evaluate(&opt, &f).unwrap(), "optimize");
        let fused = opt.nodes.iter().any(|nd| {
            matches!(&nd.op, Op::GemmEpilogue { base, .. } if matches!(**base, Op::PixelShuffleMatMul { .. }))
        });
        prop_assert_eq!(fused, !off, "{:?}", opt.nodes);
    }
}

#[test]
fn batch_norm_gradients_read_their_statistics_unbroadcast() {
    use crate::layers::{BatchNormalization, Conv2D, Flatten, Input};
    use crate::train::{CompileConfig, Loss, Optimizer, train_step};
    let model = crate::Sequential::new()
        .add(Input::new(&[7, 5, 3]))
        .add(Conv2D::new(6, 3).padding("same"))
        .add(BatchNormalization::new())
        .add(Conv2D::new(4, 3))
        .add(BatchNormalization::new())
        .add(Flatten::new())
        .build(2)
        .unwrap();
    let cfg = CompileConfig::new(Loss::MeanSquaredError, Optimizer::sgd(0.1), vec![]);
    let step = train_step(&model, 3, &cfg).unwrap();
    let full = |g: &Graph| {
        g.nodes
            .iter()
            .filter(|n| matches!(n.op, Op::Broadcast { .. }) && n.ty.shape.len() == 4)
            .count()
    };
    // The means' gradients broadcast to the activations: before, at least one per statistic.
    assert!(full(&step.graph) >= 4, "{}", full(&step.graph));
    let (h, reports) = optimize(step.graph.clone()).unwrap();
    let report = reports.iter().find(|r| r.pass == "bypass_broadcasts").unwrap();
    assert!(report.changes.len() >= 4, "{report:?}");
    assert_eq!(full(&h), 0, "{:?}", h.nodes);
    // Each layer's variance (a mean of squares) and the gradient's sum of dy * xhat (a sum of
    // products) reduce their elementwise input as they load it.
    let prologues = h
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::ReducePrologue { .. }))
        .count();
    assert!(prologues >= 4, "{prologues}");
    let f = step_feeds(&step.graph, 9, 3);
    let want = evaluate(&step.graph, &f).unwrap();
    assert_same(&want, &evaluate(&h, &f).unwrap(), "batch-norm step");
    let (b, _) = bypass_broadcasts(step.graph.clone()).unwrap();
    assert_same(&want, &evaluate(&b, &f).unwrap(), "bypass_broadcasts alone");
}
