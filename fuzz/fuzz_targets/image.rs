//! Fuzz target `image`: see `fovea::fuzzing::image`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fovea::fuzzing::image(data);
});
