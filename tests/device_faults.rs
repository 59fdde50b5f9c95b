//! Device faults are errors, not aborts or hangs: a tensor larger than the adapter can bind is
//! refused before anything is allocated, naming the tensor, its size and the limit.

mod common;

use fovea::engine::Program;
use fovea::graph::ir::{Graph, Op, TensorType, UnaryOp};

#[test]
fn a_tensor_over_the_binding_limit_is_an_error_naming_it_and_the_limit() {
    let device = common::device();
    let limit_of = |name: &str| {
        let l = device.info().limits.iter().find(|(k, _)| k == name);
        l.map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("the adapter info lists no {name}"))
    };
    let limit = limit_of("max_storage_buffer_binding_size").min(limit_of("max_buffer_size"));
    // One float more than the adapter can bind, as a (rows, 1024) activation.
    let rows = (limit / 4 / 1024 + 1) as usize;
    if rows * 1024 > fovea::graph::ir::MAX_TENSOR_ELEMENTS {
        eprintln!("skipped: this adapter binds {limit} bytes, more than one graph tensor may hold");
        return;
    }
    let mut g = Graph::new();
    let x = g.input("x", TensorType::f32(vec![rows, 1024])).unwrap();
    let y = g.push(Op::Unary(UnaryOp::Relu), &[x], "huge_relu").unwrap();
    g.outputs.push(y);
    let e = match Program::compile(&device, g) {
        Ok(_) => panic!("a tensor over the binding limit must not compile"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("max_storage_buffer_binding_size"), "{e}");
    assert!(e.contains(&format!("({rows}, 1024)")), "{e}");
    assert!(e.contains("smaller batch size"), "{e}");
}

/// Runs `f`, ending the whole test process with a message if it takes more than `secs` (a
/// hang would otherwise stall the suite).
fn within<T>(secs: u64, f: impl FnOnce() -> T) -> T {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if rx.recv_timeout(std::time::Duration::from_secs(secs)).is_err() {
            eprintln!("no answer within {secs} s: the lost device hung the call");
            std::process::exit(101);
        }
    });
    let out = f();
    let _ = tx.send(());
    let _ = watchdog.join();
    out
}

// A device lost between two runs (destroyed, as a driver reset would) makes the next run,
// upload and training step return an error naming the loss: no panic, no hang. A checkpoint
// written before the loss stays readable, so the run can resume on a working device.
#[test]
fn a_lost_device_is_an_error_and_keeps_the_last_checkpoint() {
    use fovea::engine::{CheckpointOptions, CompiledModel, Device, FitOptions, Targets, Verbosity};
    use fovea::graph::Tensor;
    use std::sync::Arc;

    let device = Arc::new(Device::new().expect("an adapter"));
    let mut g = Graph::new();
    let x = g.input("x", TensorType::f32(vec![64])).unwrap();
    let y = g.push(Op::Unary(UnaryOp::Relu), &[x], "relu").unwrap();
    g.outputs.push(y);
    let p = Program::compile(&device, g).unwrap();
    let input: Vec<f32> = (0..64).map(|i| i as f32 - 32.0).collect();
    assert_eq!(p.run(&[&input]).unwrap()[0][40], 8.0);

    // A model trained one epoch with a checkpoint, on the same device.
    let dir = std::env::temp_dir().join(format!("fovea-lost-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let model = fovea::models::zoo::mnist_cnn(3).unwrap();
    let cfg = fovea::graph::train::CompileConfig::new(
        fovea::graph::train::Loss::SparseCategoricalCrossentropy { from_logits: true },
        fovea::graph::train::Optimizer::adam(1e-3),
        vec![],
    );
    let mut cm = CompiledModel::new(&device, model, cfg).unwrap();
    let xs = Tensor::new(vec![8, 28, 28, 1], vec![0.5; 8 * 784], "x").unwrap();
    let ys = Targets::Classes((0..8).map(|i| i % 10).collect());
    let opts = FitOptions {
        batch_size: 4,
        verbosity: Verbosity::Silent,
        checkpoint: Some(CheckpointOptions::new(&dir)),
        ..FitOptions::default()
    };
    cm.fit(&xs, &ys, &opts).unwrap();
    let saved = fovea::engine::resume::newest(&dir).unwrap().expect("a checkpoint").0;

    device.destroy();
    let e = within(120, || p.run(&[&input]).map(|_| ()));
    let e = e.expect_err("a run on a lost device must fail").to_string();
    assert!(e.contains("device lost") && e.contains("--resume"), "{e}");
    let e = within(120, || cm.fit(&xs, &ys, &FitOptions { epochs: 2, ..opts }).map(|_| ()));
    let e = e.expect_err("training on a lost device must fail").to_string();
    assert!(e.contains("device lost"), "{e}");
    // The checkpoint from before the loss is intact.
    let (state, tensors) = fovea::engine::resume::load(&saved).unwrap();
    assert_eq!(state.epochs_done, 1);
    assert!(!tensors.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

// A program whose buffers together exceed the memory limit (FOVEA_MEMORY_LIMIT_MB here; the
// host's available memory on a CPU adapter by default) is refused before anything is
// allocated, with the total, the limit and advice; the command exits 1 and saves nothing.
#[test]
fn a_program_over_the_memory_limit_is_refused_naming_the_total_and_the_limit() {
    let dir = std::env::temp_dir().join(format!("fovea-memlimit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let save = dir.join("w.safetensors");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_fovea"))
        .args([
            "train",
            "mnist",
            "--limit",
            "64",
            "--epochs",
            "1",
            "--batch-size",
            "64",
            "--quiet",
            "--save",
        ])
        .arg(&save)
        .env("FOVEA_MEMORY_LIMIT_MB", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FOVEA_MEMORY_LIMIT_MB") && text.contains("MiB in all"),
        "{text}"
    );
    assert!(text.contains("smaller batch size"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert!(!save.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
