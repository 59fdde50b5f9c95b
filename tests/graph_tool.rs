//! `fovea graph`: the inspection tool's outputs (text, DOT, JSON, statistics) and the
//! compiler's targets for the seed CIFAR-10 training step; `FOVEA_DUMP`; the NaN tripwire.

mod common;

use fovea::engine::{EngineError, Program};
use fovea::graph::ir::{Graph, Op, TensorType, UnaryOp};
use std::process::{Command, Output};

fn fovea(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fovea"))
        .args(args)
        .output()
        .expect("run fovea")
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn cifar_training_step_halves_dispatches_and_memory() {
    let s = stdout(&fovea(&["graph", "cifar10", "--train", "--stats", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(&s).expect("stats json");
    let get = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("missing {k} in {v}"));
    assert!(2 * get("dispatches_fused") <= get("dispatches_unfused"), "{v}");
    assert!(2 * get("peak_bytes_planned") <= get("peak_bytes_baseline"), "{v}");
    assert!(get("nodes_fused") < get("nodes_unfused"));
}

#[test]
fn dot_and_json_dumps_are_well_formed() {
    let dot = stdout(&fovea(&[
        "graph",
        "cifar10",
        "--train",
        "--stage",
        "optimized",
        "--format",
        "dot",
    ]));
    assert!(
        dot.starts_with("digraph fovea {") && dot.trim_end().ends_with('}'),
        "{dot}"
    );
    assert_eq!(dot.matches('{').count(), dot.matches('}').count());
    assert!(dot.contains("fused_elementwise") && dot.contains("->"));
    // Before fusion, the groups the fusion pass will form are drawn as clusters.
    let grad = stdout(&fovea(&[
        "graph", "mnist", "--train", "--stage", "grad", "--format", "dot",
    ]));
    assert!(grad.contains("subgraph cluster_0"), "no fused-group clusters");
    if Command::new("dot").arg("-V").output().is_ok() {
        let path = std::env::temp_dir().join(format!("fovea-graph-{}.dot", std::process::id()));
        std::fs::write(&path, &dot).unwrap();
        let o = Command::new("dot").arg("-Tsvg").arg(&path).output().unwrap();
        assert!(
            o.status.success(),
            "dot rejected the DOT: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::fs::remove_file(&path).unwrap();
    }
    let json = stdout(&fovea(&[
        "graph", "mnist", "--train", "--stage", "memory", "--format", "json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let nodes = v["nodes"].as_array().unwrap();
    assert!(!nodes.is_empty() && !v["updates"].as_array().unwrap().is_empty());
    for n in nodes {
        for key in [
            "id", "op", "inputs", "shape", "dtype", "layer", "flops", "bytes", "kernels", "buffer",
        ] {
            assert!(n.get(key).is_some(), "node without {key}: {n}");
        }
    }
    assert!(nodes.iter().any(|n| n["kernels"].as_array().is_some_and(|k| !k.is_empty()) && n["kernels"][0]["workgroups"].is_array()));
}

#[test]
fn text_dump_is_stable_and_errors_are_clear() {
    let a = stdout(&fovea(&["graph", "mnist", "--stage", "lowered"]));
    let b = stdout(&fovea(&["graph", "mnist", "--stage", "lowered"]));
    assert_eq!(a, b, "the text dump must be deterministic");
    assert!(a.contains("kernel=gemm_conv2d") && a.contains("layer=conv2d_1"), "{a}");
    let layers = stdout(&fovea(&["graph", "mnist", "--stage", "layers"]));
    assert!(layers.contains("Total params: 93,322"));
    let o = fovea(&["graph", "mnist", "--stage", "assembly"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--stage assembly"));
    let o = fovea(&["graph", "mnist", "--render", "out.gif"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains(".svg or .png"));
}

#[test]
fn fovea_dump_writes_stages_and_kernels() {
    let dir = std::env::temp_dir().join(format!("fovea-dump-{}", std::process::id()));
    let o = Command::new(env!("CARGO_BIN_EXE_fovea"))
        .args(["predict", "--count", "4", "--show", "0"])
        .env("FOVEA_DUMP", &dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let p = dir.join("program-000");
    for f in ["1-ir.txt", "2-optimized.txt", "3-lowered.txt"] {
        assert!(p.join(f).is_file(), "missing {f}");
    }
    let wgsl: Vec<_> = std::fs::read_dir(p.join("kernels")).unwrap().collect();
    assert!(wgsl.len() >= 5, "{} kernels dumped", wgsl.len());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn nan_tripwire_names_the_node_layer_and_kernel() {
    let mut g = Graph::new();
    let x = g.input("x", TensorType::f32(vec![2, 5])).unwrap();
    let r = g.push(Op::Unary(UnaryOp::Relu), &[x], "clean").unwrap();
    let l = g.push(Op::Unary(UnaryOp::Log), &[x], "bad_log").unwrap();
    let s = g
        .push(Op::Binary(fovea::graph::ir::BinaryOp::Add), &[r, l], "sum")
        .unwrap();
    g.outputs.push(s);
    let state = fovea::engine::DeviceState::new(&common::device());
    let p = Program::compile_exact(&common::device(), g, &state).unwrap();
    let mut data = vec![1.0f32; 10];
    p.set_input("x", &data).unwrap();
    p.run_checked().expect("all finite");
    data[7] = -2.0;
    p.set_input("x", &data).unwrap();
    match p.run_checked() {
        Err(EngineError::Numerics {
            node,
            layer,
            kernel,
            message,
        }) => {
            assert!(node.contains("log"), "{node}");
            assert_eq!(layer, "bad_log");
            assert!(kernel.contains("log"), "{kernel}");
            assert!(message.contains("element 7") && message.contains("NaN"), "{message}");
        }
        other => panic!("expected the tripwire, got {other:?}"),
    }
}
