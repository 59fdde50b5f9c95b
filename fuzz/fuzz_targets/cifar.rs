//! Fuzz target `cifar`: see `fovea::fuzzing::cifar`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fovea::fuzzing::cifar(data);
});
