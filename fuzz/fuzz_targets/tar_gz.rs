//! Fuzz target `tar_gz`: see `fovea::fuzzing::tar_gz`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fovea::fuzzing::tar_gz(data);
});
