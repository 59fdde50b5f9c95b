//! Fuzz target `npz`: see `fovea::fuzzing::npz`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fovea::fuzzing::npz(data);
});
