//! Fuzz target `box_csv`: see `fovea::fuzzing::box_csv`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fovea::fuzzing::box_csv(data);
});
