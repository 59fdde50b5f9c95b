//! `fovea style`: Style transfer (see fovea_models::tasks::style). Thin: parse, call the task, print.

/// Arguments of `fovea style`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `fovea style`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("fovea style is not built yet")
}
