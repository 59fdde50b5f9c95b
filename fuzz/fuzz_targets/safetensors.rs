//! Fuzz target `safetensors`: see `fovea::fuzzing::safetensors`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fovea::fuzzing::safetensors(data);
});
