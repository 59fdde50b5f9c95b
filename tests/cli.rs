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
