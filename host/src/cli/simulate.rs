//! `aplo simulate` (filled in next).

use std::process::ExitCode;

use super::Config;

/// Arguments of `aplo simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {}

/// Run the simulation.
pub fn run(_config: &Config, _args: SimulateArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet")
}
