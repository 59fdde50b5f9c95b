//! The `fovea` command end to end: output users rely on, and errors for bad arguments.

use std::process::{Command, Output};

fn fovea(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fovea"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run fovea")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn summary_prints_keras_totals() {
    let o = fovea(&["summary", "cifar10"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("Total params: 122,570 (478.79 KB)"), "{}", text(&o));
    let o = fovea(&["summary", "mnist"], &[]);
    assert!(text(&o).contains("Total params: 93,322"), "{}", text(&o));
    let o = fovea(&["summary", "resnet9000"], &[]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("resnet9000") && text(&o).contains("mnist, cifar10"),
        "{}",
        text(&o)
    );
}

#[test]
fn info_names_the_adapter_and_backend() {
    let o = fovea(&["info", "--json"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(!v["name"].as_str().unwrap_or("").is_empty());
    assert!(
        ["vulkan", "metal", "dx12", "gl"].contains(&v["backend"].as_str().unwrap_or("")),
        "{v}"
    );
    eprintln!("fovea info: {} on {}", v["name"], v["backend"]);
}

#[test]
fn bad_backend_and_missing_adapter_say_what_to_do() {
    let o = fovea(&["info"], &[("FOVEA_BACKEND", "cuda")]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("FOVEA_BACKEND=cuda") && text(&o).contains("vulkan, metal, dx12, gl"),
        "{}",
        text(&o)
    );
    // No Metal or DX12 on Linux: the error explains how to get an adapter.
    if cfg!(target_os = "linux") {
        let o = fovea(&["info"], &[("FOVEA_BACKEND", "metal")]);
        assert!(!o.status.success());
        assert!(
            text(&o).contains("no GPU adapter found") && text(&o).contains("mesa-vulkan-drivers"),
            "{}",
            text(&o)
        );
    }
}

#[test]
fn predict_runs_on_embedded_digits() {
    let o = fovea(&["predict", "--count", "40", "--show", "3"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("accuracy: ") && t.contains("/40"), "{t}");
    assert_eq!(t.matches("predicted").count(), 3, "{t}");
}

#[test]
fn predict_errors_name_the_file_or_directory() {
    let o = fovea(&["predict", "--data", "/nonexistent/mnist-dir"], &[]);
    assert!(!o.status.success());
    assert!(text(&o).contains("/nonexistent/mnist-dir"), "{}", text(&o));
    let dir = std::env::temp_dir().join(format!("fovea-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.safetensors");
    std::fs::write(&bad, b"not a checkpoint").unwrap();
    let o = fovea(&["predict", "--weights", bad.to_str().unwrap()], &[]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("bad.safetensors") && text(&o).contains("safetensors"),
        "{}",
        text(&o)
    );
    let o = fovea(&["predict", "--batch-size", "0"], &[]);
    assert!(!o.status.success() && text(&o).contains("--batch-size"), "{}", text(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

const BLAZEFACE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/pretrained/face_detection_short_range.tflite"
);

#[test]
fn info_describes_a_tflite_model() {
    let o = fovea(&["info", BLAZEFACE, "--json"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["inputs"][0]["name"], "input");
    assert_eq!(v["inputs"][0]["shape"], serde_json::json!([128, 128, 3]));
    assert_eq!(v["outputs"][0]["name"], "regressors");
    assert_eq!(v["outputs"][1]["shape"], serde_json::json!([896, 1]));
    let ops = v["operators"].as_array().unwrap();
    let count = |n: &str| {
        ops.iter()
            .find(|o| o["operator"] == n)
            .map(|o| o["count"].as_u64().unwrap())
    };
    assert_eq!(count("CONV_2D"), Some(21));
    assert_eq!(count("DEQUANTIZE"), Some(74));
    // The fixture script counts the file's float constants with LiteRT's schema reader.
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/tflite/manifest.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let blaze = manifest["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "blazeface_short_range")
        .unwrap();
    assert_eq!(v["parameters"], blaze["parameters"], "{v}");
    let o = fovea(&["info", BLAZEFACE], &[]);
    assert!(
        text(&o).contains("DEPTHWISE_CONV_2D") && text(&o).contains("regressors"),
        "{}",
        text(&o)
    );
}

#[test]
fn graph_dumps_a_tflite_model() {
    let o = fovea(&["graph", BLAZEFACE, "--stage", "ir", "--batch-size", "1"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("conv2d") && text(&o).contains("classificators"),
        "{}",
        text(&o)
    );
}

#[test]
fn predict_writes_every_tflite_output_to_npz() {
    let dir = std::env::temp_dir().join(format!("fovea-cli-tflite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let x = dir.join("x.npy");
    let n = 2 * 128 * 128 * 3;
    let t = fovea::graph::Tensor {
        shape: vec![2, 128, 128, 3],
        data: (0..n).map(|i| ((i * 7919) % 255) as f32 / 127.5 - 1.0).collect(),
    };
    fovea::engine::npy::write_f32(&x, &t).unwrap();
    let y = dir.join("y.npz");
    let (xs, ys) = (x.to_str().unwrap(), y.to_str().unwrap());
    let o = fovea(
        &[
            "predict",
            "--model",
            BLAZEFACE,
            "--input",
            xs,
            "--output",
            ys,
            "--batch-size",
            "2",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("regressors: (2, 896, 16)") && text(&o).contains("classificators: (2, 896, 1)"),
        "{}",
        text(&o)
    );
    let bytes = std::fs::read(&y).unwrap();
    assert!(
        bytes.starts_with(b"PK") && bytes.len() > 2 * 896 * 17 * 4,
        "{} bytes",
        bytes.len()
    );
    // Bad input: the wrong sample shape, and an output that is not .npz; no file written.
    let bad = dir.join("bad.npy");
    fovea::engine::npy::write_f32(
        &bad,
        &fovea::graph::Tensor {
            shape: vec![1, 64, 64, 3],
            data: vec![0.0; 64 * 64 * 3],
        },
    )
    .unwrap();
    let z = dir.join("z.npz");
    let o = fovea(
        &[
            "predict",
            "--model",
            BLAZEFACE,
            "--input",
            bad.to_str().unwrap(),
            "--output",
            z.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("bad.npy") && text(&o).contains("(samples, 128, 128, 3)"),
        "{}",
        text(&o)
    );
    assert!(!z.exists());
    let o = fovea(
        &[
            "predict",
            "--model",
            BLAZEFACE,
            "--input",
            xs,
            "--output",
            dir.join("y.npy").to_str().unwrap(),
        ],
        &[],
    );
    assert!(!o.status.success() && text(&o).contains(".npz"), "{}", text(&o));
    let o = fovea(
        &["info", dir.join("bad.npy").with_extension("tflite").to_str().unwrap()],
        &[],
    );
    assert!(!o.status.success() && text(&o).contains("bad.tflite"), "{}", text(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bench_step_checks_its_augmentation_before_any_work() {
    let o = fovea(&["bench", "step", "mnist", "--augment", "sideways"], &[]);
    assert!(!o.status.success());
    assert!(text(&o).contains("sideways"), "{}", text(&o));
    let o = fovea(
        &[
            "bench",
            "step",
            "tests/fixtures/keras/seq_cnn.json",
            "--augment",
            "flip",
            "--steps",
            "1",
        ],
        &[],
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("embedded images"), "{}", text(&o));
}
