//! Fuzz target `tflite`: see `fovea::fuzzing::tflite`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fovea::fuzzing::tflite(data);
});
