//! One entry point per parser that reads user files, taking raw bytes: the bodies of the
//! `cargo fuzz` targets in `fuzz/` and of the crash regressions in `tests/fuzz_regressions.rs`,
//! so both exercise exactly the same code. Each returns whether the input parsed; an error is a
//! fine outcome, a panic or an abort is the bug the fuzzer looks for.
//!
//! Parsers that only read from a path (npz, CSV box lists, tar.gz members) get the bytes
//! through a per-process scratch file.

use std::path::{Path, PathBuf};

/// The parsers, by fuzz-target name.
pub const TARGETS: &[&str] = &[
    "keras_json",
    "safetensors",
    "npy",
    "npz",
    "idx",
    "cifar",
    "tflite",
    "image",
    "voc_xml",
    "box_csv",
    "tar_gz",
    "tfjs_manifest",
];

/// Runs the parser of `target` on `data`; `None` for an unknown target name.
pub fn run(target: &str, data: &[u8]) -> Option<bool> {
    Some(match target {
        "keras_json" => keras_json(data),
        "safetensors" => safetensors(data),
        "npy" => npy(data),
        "npz" => npz(data),
        "idx" => idx(data),
        "cifar" => cifar(data),
        "tflite" => tflite(data),
        "image" => image(data),
        "voc_xml" => voc_xml(data),
        "box_csv" => box_csv(data),
        "tar_gz" => tar_gz(data),
        "tfjs_manifest" => tfjs_manifest(data),
        _ => return None,
    })
}

fn name() -> &'static Path {
    Path::new("fuzz-input")
}

/// A Keras `model.to_json()` config, loaded into a model (shapes inferred, parameters created).
pub fn keras_json(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    fovea_graph::keras::load_config(text, "fuzz.json").is_ok()
}

/// A safetensors file.
pub fn safetensors(data: &[u8]) -> bool {
    fovea_engine::checkpoint::parse_safetensors(data, name()).is_ok()
}

/// An `.npy` array.
pub fn npy(data: &[u8]) -> bool {
    fovea_engine::npy::parse(data, name()).is_ok()
}

/// An `.npz` archive.
pub fn npz(data: &[u8]) -> bool {
    with_file("npz", data, |p| fovea_engine::npz::read(p).is_ok())
}

/// An IDX file (MNIST), gzipped or not.
pub fn idx(data: &[u8]) -> bool {
    fovea_models::data::idx::maybe_gunzip(data.to_vec(), name())
        .and_then(|b| fovea_models::data::idx::parse_idx(b, name()))
        .is_ok()
}

/// CIFAR-10 binary records.
pub fn cifar(data: &[u8]) -> bool {
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    fovea_models::data::cifar::parse_records(data.to_vec(), name(), &mut images, &mut labels).is_ok()
}

/// A `.tflite` flatbuffer, imported into a model.
pub fn tflite(data: &[u8]) -> bool {
    fovea_formats::tflite::import_bytes(data, "fuzz.tflite", "fuzz").is_ok()
}

/// An image (JPEG, PNG, PGM, BMP) decoded with the default limits.
pub fn image(data: &[u8]) -> bool {
    fovea_models::vision::decode_image(data, name(), &fovea_models::vision::DecodeLimits::default()).is_ok()
}

/// A Pascal VOC annotation.
pub fn voc_xml(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    fovea_models::data::voc::parse_voc_xml(&text, name()).is_ok()
}

/// A CSV box list.
pub fn box_csv(data: &[u8]) -> bool {
    with_file("csv", data, |p| fovea_models::data::voc::read_box_csv(p).is_ok())
}

/// The members of a `.tar.gz` archive (the ORL faces' container).
pub fn tar_gz(data: &[u8]) -> bool {
    with_file("tar.gz", data, |p| {
        fovea_models::vision::archive::read_tar_gz_members(p, |_| true).is_ok()
    })
}

/// A tfjs weights manifest (`*-weights_manifest.json`), parsed and checked.
pub fn tfjs_manifest(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    fovea_formats::tfjs::manifest::parse(&text, "fuzz-weights_manifest.json").is_ok()
}

/// Calls `f` on a scratch file holding `data` (one per process and extension).
fn with_file(ext: &str, data: &[u8], f: impl FnOnce(&Path) -> bool) -> bool {
    let dir = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let path = dir.join(format!("fovea-fuzz-{}.{ext}", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return false;
    }
    let ok = f(&path);
    let _ = std::fs::remove_file(&path);
    ok
}
