//! `fovea detect`: Object detection (see fovea_models::tasks::detection). Thin: parse, call the task, print.

/// Arguments of `fovea detect`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `fovea detect`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("fovea detect is not built yet")
}
