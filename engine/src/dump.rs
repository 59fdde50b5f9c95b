//! `FOVEA_DUMP=DIR`: every program compiled while it is set writes its stages (the graph as
//! given, after the passes, lowered with kernels and buffers) and the WGSL of every kernel
//! instance to `DIR/program-NNN/`, so a user can see exactly what ran.

use fovea_graph::Graph;
use fovea_graph::dump::{KernelNote, NodeAnnotation, to_text};
use fovea_graph::passes::PassReport;
use fovea_graph::plan::MemoryPlan;
use fovea_kernels::KernelInstance;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

static PROGRAMS: AtomicUsize = AtomicUsize::new(0);

/// The dump directory, if `FOVEA_DUMP` is set.
pub(crate) fn dump_dir() -> Option<PathBuf> {
    std::env::var_os("FOVEA_DUMP")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Writes one program's stages and kernels; failures are reported on stderr, never fatal.
pub(crate) fn write_program(
    dir: &std::path::Path,
    before: &Graph,
    after: &Graph,
    reports: &[PassReport],
    kernels: &[KernelInstance],
    plan: &MemoryPlan,
) {
    let n = PROGRAMS.fetch_add(1, Ordering::SeqCst);
    let out = dir.join(format!("program-{n:03}"));
    let result = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(out.join("kernels"))?;
        std::fs::write(out.join("1-ir.txt"), to_text(before, None))?;
        let mut opt = to_text(after, None);
        for r in reports {
            opt.push_str(&format!("# {r}\n"));
            for c in &r.changes {
                opt.push_str(&format!("#   {c}\n"));
            }
        }
        std::fs::write(out.join("2-optimized.txt"), opt)?;
        let mut notes = vec![NodeAnnotation::default(); after.nodes.len()];
        for k in kernels {
            notes[k.node.index()].kernels.push(KernelNote {
                name: k.name.clone(),
                workgroups: k.workgroups,
                workgroup_size: k.workgroup_size,
            });
        }
        for (i, note) in notes.iter_mut().enumerate() {
            note.buffer = match (plan.place[i], plan.in_place[i]) {
                (Some(p), None) => Some(format!("arena {}", p.arena)),
                (Some(p), Some(r)) => Some(format!("arena {} (in place over {r})", p.arena)),
                (None, Some(r)) => Some(format!("param {r} (update in place)")),
                (None, None) => None,
            };
            note.offset = plan.place[i].map_or(0, |p| p.offset);
        }
        let mut lowered = to_text(after, Some(&notes));
        lowered.push_str(&format!(
            "# memory: {} arenas, planned {} bytes, baseline {} bytes\n",
            plan.arenas.len(),
            plan.planned_bytes,
            plan.baseline_bytes
        ));
        std::fs::write(out.join("3-lowered.txt"), lowered)?;
        for (i, k) in kernels.iter().enumerate() {
            let header = format!(
                "// {} for node {} ({}), workgroups {:?}\n",
                k.name,
                k.node,
                after.node(k.node).layer,
                k.workgroups
            );
            std::fs::write(
                out.join("kernels").join(format!("{i:03}-{}.wgsl", k.name)),
                header + &k.source,
            )?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => eprintln!("FOVEA_DUMP: wrote {}", out.display()),
        Err(e) => eprintln!("FOVEA_DUMP: could not write {}: {e}", out.display()),
    }
}
