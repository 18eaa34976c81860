//! `berth config`.

use super::ProjectArgs;

/// Flags of `berth config`.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {}

/// Runs `berth config`.
pub fn run(_project: &ProjectArgs, _args: &ConfigArgs) -> anyhow::Result<u8> {
    anyhow::bail!("config: the compose loader has not landed yet")
}
