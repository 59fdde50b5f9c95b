//! Every pass preserves meaning: random graphs (every elementwise op, broadcasting, reductions,
//! layout ops, duplicates, identities) are run by the reference interpreter before and after
//! each pass and after the whole pipeline.

use super::*;
use crate::init::Rng;
use crate::interp::{Feeds, evaluate};
use crate::ir::*;
use proptest::prelude::*;

const UNARY: [UnaryOp; 10] = [
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
];
const BINARY: [BinaryOp; 6] = [
    BinaryOp::Add,
    BinaryOp::Sub,
    BinaryOp::Mul,
    BinaryOp::Max,
    BinaryOp::Min,
    BinaryOp::Ge,
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
        let made = match rng.below(12) {
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
                g.push(
                    Op::Reduce {
                        op: ReduceOp::Sum,
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
