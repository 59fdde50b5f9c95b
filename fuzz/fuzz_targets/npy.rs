//! Fuzz target `npy`: see `fovea::fuzzing::npy`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fovea::fuzzing::npy(data);
});
