//! Writing a task's results so that nothing half-written is left behind: every file goes to a
//! temporary sibling first and is renamed into place, so an error (or a kill) leaves either the
//! old file or none.

use crate::error::{DataError, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The temporary sibling `path` is written to before the rename.
fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes `bytes` to `path` atomically (temporary file, flush, rename); creates the parent folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    }
    let tmp = temp_sibling(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(DataError::io(path, e));
    }
    Ok(())
}

/// Writes `value` as pretty JSON to `path` atomically.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| DataError::format(path, format!("cannot encode JSON: {e}")))?;
    write_atomic(path, format!("{text}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("fovea-output-{}", std::process::id()));
        let path = dir.join("sub").join("m.json");
        write_json(&path, &serde_json::json!({"a": 1})).unwrap();
        write_json(&path, &serde_json::json!({"a": 2})).unwrap();
        let back: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back["a"], 2);
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1, "only the final file remains");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn write_atomic_into_a_file_path_is_an_error_naming_it() {
        let dir = std::env::temp_dir().join(format!("fovea-output-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let blocker = dir.join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let err = write_atomic(&blocker.join("m.json"), b"{}").unwrap_err();
        assert!(err.to_string().contains("file"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
