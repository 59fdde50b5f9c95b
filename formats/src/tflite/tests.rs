//! Unit tests of the importer: the real models build, and bad files give errors, not panics.

use super::*;
use std::path::PathBuf;

fn pretrained(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../data/pretrained")
        .join(name)
}

#[test]
fn blazeface_short_range_imports() {
    let m = import(pretrained("face_detection_short_range.tflite")).unwrap();
    assert_eq!(m.inputs, vec!["input"]);
    assert_eq!(m.outputs, vec!["regressors", "classificators"]);
    assert_eq!(m.model.input_shapes(), vec![vec![128, 128, 3]]);
    assert_eq!(m.model.output_shapes(), vec![vec![896, 16], vec![896, 1]]);
    println!("{:?} params {}", m.operators, m.model.params.count(None));
}

#[test]
fn selfie_segmentation_imports() {
    let m = import(pretrained("selfie_segmentation.tflite")).unwrap();
    assert_eq!(m.model.output_shapes(), vec![vec![256, 256, 1]]);
    println!("{:?} params {}", m.operators, m.model.params.count(None));
}

use super::writer::{C, add_model, f32_bytes};

fn err_of(bytes: &[u8]) -> String {
    match import_bytes(bytes, "m.tflite", "m") {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_written_model_imports_with_its_constant_as_a_parameter() {
    let m = import_bytes(
        &add_model(C::Builtin(0), f32_bytes(&[1.0, 2.0, 3.0]), false),
        "m.tflite",
        "m",
    )
    .unwrap();
    assert_eq!(m.inputs, vec!["x"]);
    assert_eq!(m.outputs, vec!["y"]);
    let p = m.model.params.get("y/in1").unwrap();
    assert_eq!(p.value.data, vec![1.0, 2.0, 3.0]);
    assert!(p.trainable);
    assert_eq!(m.operators, vec![("ADD".to_string(), 1)]);
}

#[test]
fn truncated_files_are_errors_naming_the_file() {
    let full = std::fs::read(pretrained("face_detection_short_range.tflite")).unwrap();
    for len in [0, 3, 7, 8, 64, 1000, full.len() / 2, full.len() - 1] {
        let e = err_of(&full[..len]);
        assert!(e.starts_with("m.tflite: "), "{len}: {e}");
    }
}

#[test]
fn garbage_is_an_error() {
    let mut rng = fovea_graph::init::Rng::new(3);
    for n in [8usize, 100, 5000] {
        let mut bytes: Vec<u8> = (0..n).map(|_| rng.below(256) as u8).collect();
        bytes[4..8].copy_from_slice(b"TFL3");
        let e = err_of(&bytes);
        assert!(e.contains("m.tflite"), "{e}");
    }
    assert!(err_of(b"not a model at all").contains("TFL3"));
}

#[test]
fn offsets_outside_the_file_are_errors() {
    let good = add_model(C::Builtin(0), f32_bytes(&[1.0, 2.0, 3.0]), false);
    // The root offset, pointed past the end.
    let mut bytes = good.clone();
    bytes[0..4].copy_from_slice(&(good.len() as u32 + 16).to_le_bytes());
    assert!(err_of(&bytes).contains("not a valid TFLite flatbuffer"));
    // Every 4-byte word in turn set to a huge value: never a panic, and an error or a model.
    for at in (8..good.len() - 4).step_by(4) {
        let mut bytes = good.clone();
        bytes[at..at + 4].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
        let _ = import_bytes(&bytes, "m.tflite", "m");
    }
}

#[test]
fn a_buffer_shorter_than_its_shape_names_the_tensor() {
    let e = err_of(&add_model(C::Builtin(0), f32_bytes(&[1.0, 2.0]), false));
    assert!(
        e.contains("tensor 1 'c'") && e.contains("holds 8 bytes") && e.contains("needs 12"),
        "{e}"
    );
}

#[test]
fn unknown_and_custom_operators_name_the_operator_and_tensor() {
    let e = err_of(&add_model(C::Builtin(150), f32_bytes(&[1.0; 3]), false));
    assert!(
        e.contains("operator 0 (builtin operator 150), tensor 'y'") && e.contains("unknown operator"),
        "{e}"
    );
    let e = err_of(&add_model(C::Custom("FancyOp"), f32_bytes(&[1.0; 3]), false));
    assert!(
        e.contains("CUSTOM:FancyOp") && e.contains("unknown custom operator"),
        "{e}"
    );
}

#[test]
fn quantised_tensors_are_errors() {
    let e = err_of(&add_model(C::Builtin(0), f32_bytes(&[1.0; 3]), true));
    assert!(e.contains("tensor 0 'x'") && e.contains("integer-quantised"), "{e}");
}

#[test]
fn real_model_with_corrupted_bytes_never_panics() {
    let full = std::fs::read(pretrained("face_detection_short_range.tflite")).unwrap();
    let mut rng = fovea_graph::init::Rng::new(9);
    for _ in 0..200 {
        let mut bytes = full[..20_000.min(full.len())].to_vec();
        bytes.extend_from_slice(&full[20_000..]);
        for _ in 0..4 {
            let i = 8 + rng.below(bytes.len() - 8);
            bytes[i] = rng.below(256) as u8;
        }
        let _ = import_bytes(&bytes, "m.tflite", "m");
    }
}

#[test]
fn a_quantised_weight_names_the_operator_and_tensor() {
    use super::writer::{O, T, model};
    let bytes = model(
        &[C::Builtin(0)],
        &[
            T {
                name: "x",
                shape: vec![1, 2, 2, 3],
                dtype: 0,
                data: None,
                quantized: false,
            },
            T {
                name: "w_q",
                shape: vec![3],
                dtype: 9,
                data: Some(vec![1, 2, 3]),
                quantized: true,
            },
            T {
                name: "y",
                shape: vec![1, 2, 2, 3],
                dtype: 0,
                data: None,
                quantized: false,
            },
        ],
        &[O {
            opcode: 0,
            inputs: vec![0, 1],
            outputs: vec![2],
            options_key: 11,
        }],
        &[0],
        &[2],
    );
    let e = err_of(&bytes);
    assert!(
        e.contains("operator 0 (ADD), tensor 'w_q'") && e.contains("'w_q' is integer-quantised (INT8)"),
        "{e}"
    );
}
