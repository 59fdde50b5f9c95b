//! Fuzz target `idx`: see `fovea::fuzzing::idx`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fovea::fuzzing::idx(data);
});
