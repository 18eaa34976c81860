//! `berth volume ...`: named volumes.

use std::path::Path;

use clap::Subcommand;
use hyper::Method;

use crate::client::Client;
use crate::engine::volumes::VolumeInfo;

const NONE: Option<&()> = None;

#[derive(Debug, Subcommand)]
pub enum VolumeCmd {
    /// Create a volume.
    Create { name: String },
    /// List volumes.
    Ls {
        #[arg(long)]
        format: Option<String>,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show volumes as JSON.
    Inspect {
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove volumes (refused while a container uses one).
    Rm {
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove volumes no container uses.
    Prune {
        #[arg(short, long)]
        force: bool,
    },
}

/// Runs a `berth volume` command.
pub async fn run(root: &Path, cmd: VolumeCmd) -> anyhow::Result<u8> {
    let client = Client::connect(root).await?;
    match cmd {
        VolumeCmd::Create { name } => {
            let v: VolumeInfo = client
                .call(Method::POST, &format!("/volumes/create/{name}"), NONE)
                .await?;
            println!("{}", v.name);
        }
        VolumeCmd::Ls { format, quiet } => {
            let list: Vec<VolumeInfo> = client.call(Method::GET, "/volumes", NONE).await?;
            match format.as_deref() {
                Some("json") => println!("{}", serde_json::to_string(&list)?),
                Some(f) => anyhow::bail!("unknown --format {f:?}: use json"),
                None if quiet => list.iter().for_each(|v| println!("{}", v.name)),
                None => {
                    println!("{:<40}  MOUNTPOINT", "VOLUME NAME");
                    list.iter()
                        .for_each(|v| println!("{:<40}  {}", v.name, v.mountpoint.display()));
                }
            }
        }
        VolumeCmd::Inspect { volumes } => {
            let mut out = Vec::new();
            for v in &volumes {
                out.push(
                    client
                        .call::<VolumeInfo>(Method::GET, &format!("/volumes/{v}"), NONE)
                        .await?,
                );
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        VolumeCmd::Rm { volumes } => {
            let mut code = 0;
            for v in &volumes {
                match client
                    .call::<serde_json::Value>(Method::DELETE, &format!("/volumes/{v}"), NONE)
                    .await
                {
                    Ok(_) => println!("{v}"),
                    Err(e) => {
                        eprintln!("berth: {e:#}");
                        code = 1;
                    }
                }
            }
            return Ok(code);
        }
        VolumeCmd::Prune { .. } => {
            let removed: Vec<String> = client.call(Method::POST, "/volumes/prune", NONE).await?;
            removed.iter().for_each(|v| println!("Deleted: {v}"));
        }
    }
    Ok(0)
}
