//! Crash-safe training: a real `fovea train` killed with SIGKILL and resumed ends with the
//! same weights, bit for bit, as the same run left alone; a checkpoint of another run is refused.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fovea-resume-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `fovea train mnist` on 96 embedded digits, batch 16: 6 steps an epoch, 2 epochs.
fn train_args(dir: &Path, save: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "train",
        "mnist",
        "--limit",
        "96",
        "--batch-size",
        "16",
        "--epochs",
        "2",
        "--seed",
        "5",
        "--quiet",
        "--checkpoint-every",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("--checkpoint-dir".into());
    v.push(dir.display().to_string());
    v.push("--save".into());
    v.push(save.display().to_string());
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn spawn(args: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_fovea"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start fovea")
}

fn run(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fovea"))
        .args(args)
        .output()
        .expect("run fovea")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Waits until `file` exists, then kills `child` with SIGKILL.
fn kill_after(mut child: Child, file: &Path) {
    let start = Instant::now();
    while !file.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("fovea ended ({status}) before writing {}", file.display());
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no {} after 300 s",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
}

fn tensors(path: &Path) -> Vec<(String, Vec<u32>)> {
    fovea_engine::checkpoint::read_safetensors(path)
        .unwrap()
        .into_iter()
        .map(|(n, t)| (n, t.data.iter().map(|x| x.to_bits()).collect()))
        .collect()
}

#[test]
fn killed_twice_and_resumed_ends_with_the_uninterrupted_weights() {
    let base = scratch("kill");
    let (dir_a, dir_b) = (base.join("a"), base.join("b"));
    let (save_a, save_b) = (base.join("a.safetensors"), base.join("b.safetensors"));
    let o = run(&train_args(&dir_a, &save_a, &[]));
    assert!(o.status.success(), "{}", text(&o));

    // Killed right after a mid-epoch checkpoint (step 2 of epoch 1), resumed, killed again
    // after the first epoch-end checkpoint (step 6), resumed to the end.
    kill_after(
        spawn(&train_args(&dir_b, &save_b, &[])),
        &dir_b.join("step-0000000002.safetensors"),
    );
    assert!(!save_b.exists(), "the killed run must not have saved");
    kill_after(
        spawn(&train_args(&dir_b, &save_b, &["--resume"])),
        &dir_b.join("step-0000000006.safetensors"),
    );
    let o = run(&train_args(&dir_b, &save_b, &["--resume"]));
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("resuming from"), "{}", text(&o));

    let (a, b) = (tensors(&save_a), tensors(&save_b));
    assert_eq!(a.len(), b.len());
    for ((na, va), (nb, vb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(va == vb, "{na}: resumed weights differ from the uninterrupted run's");
    }
    // No temporary file is left in the checkpoint folder, and only the newest two remain.
    let names: Vec<String> = std::fs::read_dir(&dir_b)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| n.ends_with(".safetensors")), "{names:?}");
    assert!(names.len() <= 2, "{names:?}");
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn a_checkpoint_of_another_run_is_refused_naming_the_file() {
    let base = scratch("other");
    let dir = base.join("ck");
    let save = base.join("w.safetensors");
    let mut args = train_args(&dir, &save, &[]);
    args[7] = "1".into(); // one epoch
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o));
    // Same folder, another batch size: refused, nothing saved.
    let _ = std::fs::remove_file(&save);
    let mut other = train_args(&dir, &save, &["--resume"]);
    other[5] = "8".into();
    let o = run(&other);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains("step-0000000006.safetensors") && t.contains("another run"),
        "{t}"
    );
    assert!(t.contains("batch 16") && t.contains("batch 8"), "{t}");
    assert!(!save.exists());
    // --resume without --checkpoint-dir is an argument error.
    let o = run(&["train".into(), "mnist".into(), "--resume".into()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--checkpoint-dir"), "{}", text(&o));
    std::fs::remove_dir_all(&base).unwrap();
}

/// `fovea segment train` on the embedded slices, tiny: 3 epochs of 4 patches in steps of 2,
/// a checkpoint after every step.
fn segment_args(dir: &Path, save: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "segment",
        "train",
        "--epochs",
        "3",
        "--patches",
        "4",
        "--batch-size",
        "2",
        "--tile",
        "32",
        "--base-width",
        "4",
        "--seed",
        "3",
        "--quiet",
        "--checkpoint-every",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(["--checkpoint-dir".into(), dir.display().to_string()]);
    v.extend(["--save".into(), save.display().to_string()]);
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

// The task trainers run one `fit` per epoch (`CompiledModel::fit_epochs`): killed inside an
// epoch (after its mid-epoch checkpoint, in DIR/epoch-2/) and resumed, then killed after an
// epoch-end checkpoint and resumed again, the run ends with the uninterrupted run's weights.
#[test]
fn a_killed_task_training_resumes_to_the_same_weights() {
    let base = scratch("segment");
    let (dir_a, dir_b) = (base.join("a"), base.join("b"));
    let (save_a, save_b) = (base.join("a.safetensors"), base.join("b.safetensors"));
    let o = run(&segment_args(&dir_a, &save_a, &[]));
    assert!(o.status.success(), "{}", text(&o));
    kill_after(
        spawn(&segment_args(&dir_b, &save_b, &[])),
        &dir_b.join("epoch-2").join("step-0000000003.safetensors"),
    );
    assert!(!save_b.exists(), "the killed run must not have saved");
    kill_after(
        spawn(&segment_args(&dir_b, &save_b, &["--resume"])),
        &dir_b.join("step-0000000004.safetensors"),
    );
    let o = run(&segment_args(&dir_b, &save_b, &["--resume"]));
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("resuming from"), "{}", text(&o));
    let (a, b) = (tensors(&save_a), tensors(&save_b));
    assert_eq!(a.len(), b.len());
    for ((na, va), (nb, vb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(va == vb, "{na}: resumed weights differ from the uninterrupted run's");
    }
    // The finished epochs' mid-epoch folders are gone.
    assert!(!dir_b.join("epoch-2").exists() && !dir_b.join("epoch-3").exists());
    // Another run's settings in the same folder: refused, naming both.
    let o = run(&segment_args(&dir_b, &save_b, &["--resume", "--learning-rate", "0.01"]));
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("another run") && t.contains("lr 0.01"), "{t}");
    std::fs::remove_dir_all(&base).unwrap();
}
