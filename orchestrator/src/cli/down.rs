//! `berth down`: stop and remove the project's containers in reverse dependency order, its
//! networks and, with `-v`, its volumes.

use std::path::Path;

use clap::Args;

use super::{up, ProjectArgs};
use crate::client::Client;
use crate::engine::projects::DownRequest;

/// Flags of `berth down`.
#[derive(Debug, Args)]
pub struct DownArgs {
    /// Remove named volumes too.
    #[arg(short, long)]
    volumes: bool,
    #[arg(long)]
    remove_orphans: bool,
    /// Seconds to wait for each container to stop.
    #[arg(short, long)]
    timeout: Option<u64>,
}

/// Runs `berth down`. Works without the compose file when `-p` names the project.
pub async fn run(root: &Path, project: &ProjectArgs, args: DownArgs) -> anyhow::Result<u8> {
    let loaded = match (&project.project_name, project.files.is_empty()) {
        (Some(_), true) => up::load(project).ok(),
        _ => Some(up::load(project)?),
    };
    let name = loaded
        .as_ref()
        .map(|p| p.name.clone())
        .or_else(|| project.project_name.clone())
        .unwrap_or_default();
    let req = DownRequest {
        project: loaded,
        volumes: args.volumes,
        remove_orphans: args.remove_orphans,
        timeout: args.timeout,
    };
    let client = Client::connect(root).await?;
    up::send(&client, &format!("/projects/{name}/down"), &req).await
}
