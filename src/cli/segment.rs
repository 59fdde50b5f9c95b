//! `fovea segment`: Segmentation (see fovea_models::tasks::segmentation). Thin: parse, call the task, print.

/// Arguments of `fovea segment`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `fovea segment`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("fovea segment is not built yet")
}
