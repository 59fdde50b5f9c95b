//! Unit tests of the manifest reader: every storage type decodes to the values written, shards
//! concatenate in order, and bad manifests or shards are errors naming the file and tensor.

use super::*;
use half::f16;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh folder holding `manifest.json` (text `manifest`) and the given shard files.
fn folder(manifest: &str, shards: &[(&str, Vec<u8>)]) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "fovea-tfjs-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("manifest.json"), manifest).unwrap();
    for (name, bytes) in shards {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    dir.join("manifest.json")
}

fn err_of(manifest: &str, shards: &[(&str, Vec<u8>)]) -> String {
    match load(folder(manifest, shards)) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn every_storage_type_decodes_across_two_shards() {
    // a: float32 [2, 2]; b: float16 [3]; c: uint8 affine [4]; d: uint16 affine [2];
    // e: int32 raw scalar; f: int32 from uint8 codes (rounded). 16+6+4+4+4+2 = 36 bytes,
    // split 20 | 16 so that b straddles the shard boundary.
    let mut bytes = f32s(&[1.5, -2.0, 3.25, 0.0]);
    for v in [0.5f32, -1.0, 65504.0] {
        bytes.extend(f16::from_f32(v).to_le_bytes());
    }
    bytes.extend([0u8, 1, 2, 255]);
    bytes.extend(0u16.to_le_bytes());
    bytes.extend(1000u16.to_le_bytes());
    bytes.extend((-7i32).to_le_bytes());
    bytes.extend([3u8, 4]);
    assert_eq!(bytes.len(), 36);
    let manifest = r#"[{"paths": ["s1.bin", "s2.bin"], "weights": [
        {"name": "a", "shape": [2, 2], "dtype": "float32"},
        {"name": "b", "shape": [3], "dtype": "float32", "quantization": {"dtype": "float16"}},
        {"name": "c", "shape": [4], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0}},
        {"name": "d", "shape": [2, 1], "dtype": "float32", "quantization": {"dtype": "uint16", "scale": 0.001, "min": 2.0}},
        {"name": "e", "shape": [], "dtype": "int32"},
        {"name": "f", "shape": [2], "dtype": "int32", "quantization": {"dtype": "uint8", "scale": 0.5, "min": 0.0}}
    ]}]"#;
    let path = folder(
        manifest,
        &[("s1.bin", bytes[..20].to_vec()), ("s2.bin", bytes[20..].to_vec())],
    );
    let w = load(&path).unwrap();
    let names: Vec<&str> = w.weights.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "d", "e", "f"]);
    assert_eq!(w.expect("a", &[2, 2]).unwrap().data, vec![1.5, -2.0, 3.25, 0.0]);
    assert_eq!(w.get("b").unwrap().data, vec![0.5, -1.0, 65504.0]);
    assert_eq!(w.get("c").unwrap().data, vec![-1.0, -0.5, 0.0, 126.5]);
    let d = &w.get("d").unwrap().data;
    assert_eq!(d[0], 2.0);
    assert!((d[1] - 3.0).abs() < 1e-6, "{d:?}");
    assert_eq!(w.expect("e", &[]).unwrap().data, vec![-7.0]);
    // 3 * 0.5 = 1.5 rounds up to 2 (Math.round), 4 * 0.5 = 2
    assert_eq!(w.get("f").unwrap().data, vec![2.0, 2.0]);
}

#[test]
fn expect_names_the_tensor_and_the_shape_it_wanted() {
    let path = folder(
        r#"[{"paths": ["w.bin"], "weights": [{"name": "k", "shape": [2], "dtype": "float32"}]}]"#,
        &[("w.bin", f32s(&[1.0, 2.0]))],
    );
    let w = load(&path).unwrap();
    let e = w.expect("k", &[3]).unwrap_err().to_string();
    assert!(e.contains("tensor 0 'k'") && e.contains("expected [3]"), "{e}");
    let e = w.expect("missing", &[1]).unwrap_err().to_string();
    assert!(e.contains("no tensor 'missing'"), "{e}");
}

#[test]
fn a_missing_shard_names_the_shard() {
    let e = err_of(
        r#"[{"paths": ["gone.bin"], "weights": [{"name": "k", "shape": [2], "dtype": "float32"}]}]"#,
        &[],
    );
    assert!(e.contains("gone.bin") && e.contains("shard of"), "{e}");
}

#[test]
fn a_short_shard_names_the_tensor_that_runs_past_its_end() {
    let e = err_of(
        r#"[{"paths": ["w.bin"], "weights": [
            {"name": "first", "shape": [2], "dtype": "float32"},
            {"name": "second", "shape": [3], "dtype": "float32"}]}]"#,
        &[("w.bin", f32s(&[1.0, 2.0, 3.0]))],
    );
    assert!(e.contains("tensor 1 'second'") && e.contains("hold 12 bytes"), "{e}");
}

#[test]
fn a_long_shard_is_an_error() {
    let e = err_of(
        r#"[{"paths": ["w.bin"], "weights": [{"name": "k", "shape": [1], "dtype": "float32"}]}]"#,
        &[("w.bin", f32s(&[1.0, 2.0]))],
    );
    assert!(e.contains("hold 8 bytes but the manifest's weights take 4"), "{e}");
}

#[test]
fn bad_dtypes_are_errors_naming_the_tensor() {
    for (dtype, quant, want) in [
        ("bool", "", "dtype 'bool' is not supported"),
        ("complex64", "", "dtype 'complex64'"),
        (
            "float32",
            r#", "quantization": {"dtype": "int8", "scale": 1, "min": 0}"#,
            "quantisation dtype 'int8'",
        ),
        (
            "int32",
            r#", "quantization": {"dtype": "float16"}"#,
            "quantisation dtype 'float16'",
        ),
        (
            "float32",
            r#", "quantization": {"dtype": "uint8"}"#,
            "needs finite 'scale' and 'min'",
        ),
    ] {
        let m = format!(
            r#"[{{"paths": ["w.bin"], "weights": [{{"name": "bad", "shape": [1], "dtype": "{dtype}"{quant}}}]}}]"#
        );
        let e = err_of(&m, &[("w.bin", vec![0; 4])]);
        assert!(e.contains("tensor 0 'bad'") && e.contains(want), "{dtype} {quant}: {e}");
    }
}

#[test]
fn shape_overflow_and_negative_dimensions_are_errors_before_any_shard_is_read() {
    // no shard exists: the shape check must come first
    for (shape, want) in [
        ("[4294967296, 4294967296, 16]", "more than"),
        ("[65536, 65536]", "more than"),
        ("[2, -1]", "negative dimension"),
    ] {
        let m = format!(
            r#"[{{"paths": ["w.bin"], "weights": [{{"name": "huge", "shape": {shape}, "dtype": "float32"}}]}}]"#
        );
        let e = err_of(&m, &[]);
        assert!(e.contains("tensor 0 'huge'") && e.contains(want), "{shape}: {e}");
    }
}

#[test]
fn garbage_and_escaping_paths_are_errors_naming_the_manifest() {
    for (text, want) in [
        ("", "not a tfjs weights manifest"),
        ("{\"paths\": []}", "not a tfjs weights manifest"),
        ("[{\"paths\": [\"../x.bin\"], \"weights\": []}]", "relative path inside"),
        (
            "[{\"paths\": [\"/etc/passwd\"], \"weights\": []}]",
            "relative path inside",
        ),
        (
            "[{\"paths\": [], \"weights\": [{\"name\": \"k\", \"shape\": [1], \"dtype\": \"float32\"}]}]",
            "no shard paths",
        ),
    ] {
        let e = err_of(text, &[]);
        assert!(e.contains("manifest.json: ") && e.contains(want), "{text}: {e}");
    }
    let e = load("/nonexistent/fovea/manifest.json").unwrap_err().to_string();
    assert!(e.contains("/nonexistent/fovea/manifest.json"), "{e}");
}
