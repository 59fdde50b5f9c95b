//! Shared helpers of the GPU tests: one device for the whole test binary, random data, and the
//! comparison of a GPU run against the reference interpreter.

#![allow(dead_code)]

use fovea::engine::{Device, Program};
use fovea::graph::init::Rng;
use fovea::graph::interp::{self, Feeds};
use fovea::graph::ir::{Graph, Op, TensorType};
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};

/// The device every test of this binary shares; prints which adapter and backend ran.
pub fn device() -> Arc<Device> {
    static DEVICE: OnceLock<Arc<Device>> = OnceLock::new();
    DEVICE
        .get_or_init(|| {
            let d = Device::new().unwrap_or_else(|e| panic!("GPU tests need an adapter: {e}"));
            eprintln!("GPU tests run on: {}", d.describe());
            Arc::new(d)
        })
        .clone()
}

/// A device on this adapter running the kernels of `class`, whatever adapter runs the tests:
/// `Gpu` the kernels a real GPU gets (workgroup-memory tiles, split-K), `Cpu` those lavapipe
/// gets (register-blocked `gemm_global` tiles, the narrow tiles). One per class per binary.
pub fn class_device(class: fovea::kernels::AdapterClass) -> std::sync::Arc<fovea::engine::Device> {
    type Shared = std::sync::OnceLock<std::sync::Arc<fovea::engine::Device>>;
    static GPU: Shared = std::sync::OnceLock::new();
    static CPU: Shared = std::sync::OnceLock::new();
    let cell = if class == fovea::kernels::AdapterClass::Gpu {
        &GPU
    } else {
        &CPU
    };
    cell.get_or_init(|| {
        std::sync::Arc::new(
            fovea::engine::Device::with_kernel_class(class)
                .unwrap_or_else(|e| panic!("GPU tests need an adapter: {e}")),
        )
    })
    .clone()
}

/// A graph computing `op` of an input `x` (first shape) and parameters
/// (`None` when the op refuses the shapes) `p1, p2, ...`.
pub fn single(op: Op, shapes: &[Vec<usize>]) -> Option<Graph> {
    let mut g = Graph::new();
    let mut ids = vec![g.input("x", TensorType::f32(shapes[0].clone())).ok()?];
    for (i, s) in shapes[1..].iter().enumerate() {
        ids.push(g.param(&format!("p{}", i + 1), s, true, "test").ok()?);
    }
    let y = g.push(op, &ids, "test").ok()?;
    g.outputs.push(y);
    Some(g)
}

/// Uniform values in `[lo, hi)`.
pub fn random(rng: &mut Rng, n: usize, lo: f64, hi: f64) -> Vec<f32> {
    (0..n).map(|_| rng.uniform_in(lo, hi) as f32).collect()
}

/// Random feeds for every input and parameter of `graph` (values in `[lo, hi)`).
pub fn random_feeds(graph: &Graph, seed: u64, lo: f64, hi: f64) -> Vec<(String, Vec<f32>)> {
    let mut rng = Rng::new(seed);
    graph
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::Input { name } | Op::Param { name, .. } => Some((name.clone(), random(&mut rng, n.ty.numel(), lo, hi))),
            _ => None,
        })
        .collect()
}

/// Runs `graph` on the GPU and in the reference interpreter with the same feeds, and returns
/// the largest error relative to `|ref| + mean|ref|` over all outputs (with a description).
pub fn gpu_vs_reference(graph: Graph, feeds: &[(String, Vec<f32>)]) -> (f64, String) {
    let (err, at, _) = run_vs_reference(&device(), graph, feeds);
    (err, at)
}

/// [`gpu_vs_reference`] on `device`, also returning the compiled program (its kernels, its
/// scratch buffer).
pub fn run_vs_reference(device: &Arc<Device>, graph: Graph, feeds: &[(String, Vec<f32>)]) -> (f64, String, Program) {
    let program = Program::compile(device, graph.clone()).unwrap_or_else(|e| panic!("compile: {e}"));
    program_vs_reference(program, &graph, feeds)
}

/// [`run_vs_reference`] for a `program` already compiled from `graph`.
pub fn program_vs_reference(program: Program, graph: &Graph, feeds: &[(String, Vec<f32>)]) -> (f64, String, Program) {
    let reference = {
        let f: Feeds = feeds
            .iter()
            .map(|(n, v)| (n.clone(), v.iter().map(|&x| x as f64).collect()))
            .collect();
        interp::evaluate(graph, &f).expect("reference interpreter")
    };
    let mut inputs = Vec::new();
    for &i in &graph.inputs {
        let Op::Input { name } = &graph.node(i).op else {
            unreachable!()
        };
        inputs.push(
            feeds
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_slice())
                .expect("input feed"),
        );
    }
    for (_, name) in graph.params() {
        let v = &feeds.iter().find(|(n, _)| n == name).expect("param feed").1;
        program.set_param(name, v).expect("set_param");
    }
    let got = program.run(&inputs).unwrap_or_else(|e| panic!("run: {e}"));
    let mut worst = (0.0f64, String::new());
    for (o, (g, r)) in got.iter().zip(&reference).enumerate() {
        assert_eq!(g.len(), r.len(), "output {o} length");
        let scale = r.iter().map(|v| v.abs()).sum::<f64>() / r.len().max(1) as f64 + 1e-6;
        for (i, (&gv, &rv)) in g.iter().zip(r).enumerate() {
            let err = (gv as f64 - rv).abs() / (rv.abs() + scale);
            let err = if err.is_nan() { f64::INFINITY } else { err };
            if err > worst.0 {
                worst = (err, format!("output {o}[{i}]: gpu {gv}, reference {rv}"));
            }
        }
    }
    let names: Vec<String> = program.kernels().iter().map(|k| k.name.clone()).collect();
    (worst.0, format!("{} (kernels: {})", worst.1, names.join(", ")), program)
}

/// Runs the `fovea` binary of this build with `args`.
pub fn fovea(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fovea"))
        .args(args)
        .output()
        .expect("run fovea")
}

/// The JSON file a command wrote (a metrics file).
pub fn read_json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A finished command's stdout and stderr, together.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
