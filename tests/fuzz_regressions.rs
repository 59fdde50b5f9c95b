//! Every input the fuzzers (fuzz/run.sh) ever crashed a parser with, replayed through the same
//! entry points (`fovea::fuzzing`): each must now give an error or a value, never a panic.
//! The files live in `fuzz/regressions/<target>/`.

use std::path::PathBuf;

#[test]
fn every_saved_fuzz_crash_is_now_an_error_or_a_value() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut replayed = 0;
    for target in fovea::fuzzing::TARGETS {
        let dir = root.join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| fovea::fuzzing::run(target, &data));
            assert!(outcome.is_ok(), "{target}: {} panics the parser again", path.display());
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} saved fuzz inputs");
}

#[test]
fn every_target_runs_on_empty_and_garbage_input() {
    for target in fovea::fuzzing::TARGETS {
        for data in [&b""[..], b"\x00", b"garbage \xff\xfe", &[0xffu8; 64][..]] {
            let ok = fovea::fuzzing::run(target, data);
            assert_eq!(ok, Some(false), "{target} accepted {data:?}");
        }
    }
    assert_eq!(fovea::fuzzing::run("no_such_parser", b""), None);
}
