//! Unit tests of the importer: the real models build, and bad files give errors, not panics.

use super::*;
use std::path::PathBuf;

fn pretrained(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/pretrained").join(name)
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
