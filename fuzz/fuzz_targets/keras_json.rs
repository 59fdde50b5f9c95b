//! Fuzz target `keras_json`: see `fovea::fuzzing::keras_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fovea::fuzzing::keras_json(data);
});
