//! Fuzz target `voc_xml`: see `fovea::fuzzing::voc_xml`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fovea::fuzzing::voc_xml(data);
});
