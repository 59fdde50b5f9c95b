//! The error table of docs/errors.md, checked row by row: each command fails with exit status
//! 1 or 2, prints the documented text, does not panic, and writes nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

struct Row {
    command: String,
    says: String,
}

/// The table rows: the second and third columns, each in backticks.
fn rows() -> Vec<Row> {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/errors.md")).unwrap();
    let quoted = |cell: &str| {
        let c = cell.trim();
        c.strip_prefix('`')
            .and_then(|c| c.strip_suffix('`'))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("docs/errors.md: a cell is not in backticks: {c}"))
    };
    doc.lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| situation") && !l.starts_with("| ---"))
        .map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            assert!(cells.len() >= 4, "docs/errors.md: bad row {l}");
            Row {
                command: quoted(cells[1]),
                says: quoted(cells[2]),
            }
        })
        .collect()
}

#[test]
fn every_documented_error_is_what_the_command_says() {
    let rows = rows();
    assert!(rows.len() >= 10, "the table lost rows");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for (i, row) in rows.iter().enumerate() {
        let out = std::env::temp_dir().join(format!("fovea-error-audit-{}-{i}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).unwrap();
        let line = row.command.replace("$OUT", &out.display().to_string());
        let mut words = line.split_whitespace().peekable();
        let mut env = Vec::new();
        while let Some(w) = words.peek().filter(|w| w.contains('=') && !w.starts_with('-')) {
            let (k, v) = w.split_once('=').unwrap();
            env.push((k.to_string(), v.to_string()));
            words.next();
        }
        assert_eq!(words.next(), Some("fovea"), "row {i}: commands start with fovea");
        let o = Command::new(env!("CARGO_BIN_EXE_fovea"))
            .args(words)
            .envs(env)
            .current_dir(&root)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let code = o.status.code();
        assert!(matches!(code, Some(1) | Some(2)), "{line}: exit {code:?}\n{text}");
        assert!(!text.contains("panicked"), "{line}: panicked\n{text}");
        assert!(text.contains(&row.says), "{line}: expected `{}` in\n{text}", row.says);
        let written: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
        assert!(written.is_empty(), "{line}: wrote {} file(s) into $OUT", written.len());
        std::fs::remove_dir_all(&out).unwrap();
    }
}
