//! Fuzz target `tfjs_manifest`: see `fovea::fuzzing::tfjs_manifest`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fovea::fuzzing::tfjs_manifest(data);
});
