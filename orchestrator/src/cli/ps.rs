//! `berth ps` (the project's containers) and `berth ls` (projects on this host).

use std::path::Path;

use clap::Args;
use hyper::Method;

use super::{up, ProjectArgs};
use crate::api::{ContainerInfo, Status};
use crate::client::Client;
use crate::engine::projects::ProjectSummary;
use crate::engine::translate::SERVICE;

const NONE: Option<&()> = None;

/// Flags of `berth ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show stopped containers too.
    #[arg(short, long)]
    all: bool,
    /// `table` or `json`.
    #[arg(long, default_value = "table")]
    format: String,
    /// Only the service names.
    #[arg(long)]
    services: bool,
    #[arg(short, long)]
    quiet: bool,
    service: Vec<String>,
}

/// The project name from `-p` or the compose file.
pub fn project_name(project: &ProjectArgs) -> anyhow::Result<String> {
    match &project.project_name {
        Some(n) => Ok(n.clone()),
        None => Ok(up::load(project)?.name),
    }
}

fn status(c: &ContainerInfo) -> String {
    let health = c
        .state
        .health
        .as_ref()
        .map(|h| format!(" ({})", h.status))
        .unwrap_or_default();
    match c.state.status {
        Status::Running => format!("running{health}"),
        Status::Paused => "paused".into(),
        Status::Created => "created".into(),
        Status::Exited => format!("exited ({})", c.state.exit_code.unwrap_or(0)),
    }
}

/// Runs `berth ps`.
pub async fn run(root: &Path, project: &ProjectArgs, args: PsArgs) -> anyhow::Result<u8> {
    let name = project_name(project)?;
    let client = Client::connect(root).await?;
    let mut list: Vec<ContainerInfo> = client
        .call(Method::GET, &format!("/projects/{name}/ps"), NONE)
        .await?;
    list.retain(|c| args.all || matches!(c.state.status, Status::Running | Status::Paused));
    let svc = |c: &ContainerInfo| c.config.labels.get(SERVICE).cloned().unwrap_or_default();
    if !args.service.is_empty() {
        list.retain(|c| args.service.contains(&svc(c)));
    }
    if args.services {
        let mut names: Vec<String> = list.iter().map(svc).collect();
        names.dedup();
        names.iter().for_each(|n| println!("{n}"));
        return Ok(0);
    }
    if args.quiet {
        list.iter().for_each(|c| println!("{}", c.id));
        return Ok(0);
    }
    match args.format.as_str() {
        "json" => println!("{}", serde_json::to_string(&list)?),
        "table" => {
            println!(
                "{:<32}  {:<16}  {:<22}  {:<28}  COMMAND",
                "NAME", "SERVICE", "STATUS", "CREATED"
            );
            for c in &list {
                println!(
                    "{:<32}  {:<16}  {:<22}  {:<28}  {}",
                    c.name,
                    svc(c),
                    status(c),
                    c.state.created_at,
                    c.config.args.join(" ")
                );
            }
        }
        f => anyhow::bail!("unknown --format {f:?}: use table or json"),
    }
    Ok(0)
}

/// Flags of `berth ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Show projects without running containers too.
    #[arg(short, long)]
    all: bool,
    #[arg(long, default_value = "table")]
    format: String,
}

/// Runs `berth ls`.
pub async fn ls(root: &Path, args: LsArgs) -> anyhow::Result<u8> {
    let client = Client::connect(root).await?;
    let mut list: Vec<ProjectSummary> = client.call(Method::GET, "/projects", NONE).await?;
    list.retain(|p| args.all || p.status.contains("running"));
    if args.format == "json" {
        println!("{}", serde_json::to_string(&list)?);
        return Ok(0);
    }
    println!("{:<24}  {:<32}  WORKING DIR", "NAME", "STATUS");
    for p in &list {
        println!(
            "{:<24}  {:<32}  {}",
            p.name,
            p.status,
            p.working_dir.display()
        );
    }
    Ok(0)
}
