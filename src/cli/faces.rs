//! `fovea faces`: Face recognition (see fovea_models::tasks::faces). Thin: parse, call the task, print.

/// Arguments of `fovea faces`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `fovea faces`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("fovea faces is not built yet")
}
