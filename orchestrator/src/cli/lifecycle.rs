//! `berth start|stop|restart|pause|unpause|kill|rm|create`: the project's containers, selected
//! by SERVICE names (all when none) and `--index N`; the engine does the work in dependency
//! order and streams `Container NAME  Stopped` lines.
//!
//! `rm` removes stopped containers only (`-s` stops running ones first). Without `-f` it asks
//! `Are you sure? [yN]` on the terminal like Compose; an answer other than `y` (an empty or
//! closed stdin included) removes nothing and exits 0.

use std::io::{BufRead, Write};
use std::path::Path;

use clap::Args;
use hyper::Method;

use super::{up, ProjectArgs};
use crate::api::{ContainerInfo, Status};
use crate::client::Client;
use crate::compose::Project;
use crate::engine::project_ops::OpRequest;

/// SERVICE names and one replica.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// Only this replica of each service.
    #[arg(long)]
    pub index: Option<u32>,
    /// Services (all when none).
    pub services: Vec<String>,
}

/// The project as loaded from the compose file, or `None` when `-p` names it without a file
/// and none is found (the engine then uses the one stored by `up`).
pub fn optional_project(project: &ProjectArgs) -> anyhow::Result<(String, Option<Project>)> {
    let loaded = match (&project.project_name, project.files.is_empty()) {
        (Some(_), true) => up::load(project).ok(),
        _ => Some(up::load(project)?),
    };
    let name = match (&loaded, &project.project_name) {
        (Some(p), _) => p.name.clone(),
        (None, Some(n)) => n.clone(),
        (None, None) => anyhow::bail!("no project: give a compose file (-f) or a name (-p)"),
    };
    Ok((name, loaded))
}

/// A request for `target` of the project named by the global flags.
pub fn request(project: &ProjectArgs, target: &Target) -> anyhow::Result<(String, OpRequest)> {
    let (name, loaded) = optional_project(project)?;
    Ok((
        name,
        OpRequest {
            project: loaded,
            services: target.services.clone(),
            index: target.index,
            ..OpRequest::default()
        },
    ))
}

/// The containers a request selects.
pub async fn select(
    client: &Client,
    name: &str,
    req: &OpRequest,
) -> anyhow::Result<Vec<ContainerInfo>> {
    client
        .call(Method::POST, &format!("/projects/{name}/select"), Some(req))
        .await
}

async fn operate(root: &Path, name: &str, op: &str, req: &OpRequest) -> anyhow::Result<u8> {
    let client = Client::connect(root).await?;
    up::send(&client, &format!("/projects/{name}/{op}"), req).await
}

/// Flags of `start`, `pause` and `unpause`.
#[derive(Debug, Args)]
pub struct PlainArgs {
    #[command(flatten)]
    target: Target,
}

/// Flags of `stop` and `restart`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait for each container to stop before killing it.
    #[arg(short = 't', long = "timeout")]
    timeout: Option<u64>,
    #[command(flatten)]
    target: Target,
}

/// Flags of `kill`.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send (name or number).
    #[arg(short, long, default_value = "SIGKILL")]
    signal: String,
    #[command(flatten)]
    target: Target,
}

/// Flags of `rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Don't ask to confirm removal.
    #[arg(short, long)]
    force: bool,
    /// Stop the containers first if they run.
    #[arg(short, long)]
    stop: bool,
    /// Remove the anonymous volumes of the containers too.
    #[arg(short, long)]
    volumes: bool,
    #[command(flatten)]
    target: Target,
}

/// Flags of `create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    #[arg(long)]
    force_recreate: bool,
    #[arg(long)]
    no_recreate: bool,
    /// Services (all when none) and, always, their dependencies.
    services: Vec<String>,
}

/// `start`, `pause` or `unpause`.
pub async fn plain(
    root: &Path,
    project: &ProjectArgs,
    op: &str,
    args: PlainArgs,
) -> anyhow::Result<u8> {
    let (name, req) = request(project, &args.target)?;
    operate(root, &name, op, &req).await
}

/// `stop` or `restart`.
pub async fn stop(
    root: &Path,
    project: &ProjectArgs,
    op: &str,
    args: StopArgs,
) -> anyhow::Result<u8> {
    let (name, mut req) = request(project, &args.target)?;
    req.timeout = args.timeout;
    operate(root, &name, op, &req).await
}

/// `kill`.
pub async fn kill(root: &Path, project: &ProjectArgs, args: KillArgs) -> anyhow::Result<u8> {
    let (name, mut req) = request(project, &args.target)?;
    req.signal = Some(args.signal);
    operate(root, &name, "kill", &req).await
}

/// `create`: needs the compose file.
pub async fn create(root: &Path, project: &ProjectArgs, args: CreateArgs) -> anyhow::Result<u8> {
    let loaded = up::load(project)?;
    let name = loaded.name.clone();
    let req = OpRequest {
        project: Some(loaded),
        services: args.services,
        force_recreate: args.force_recreate,
        no_recreate: args.no_recreate,
        ..OpRequest::default()
    };
    operate(root, &name, "create", &req).await
}

/// `rm`.
pub async fn rm(root: &Path, project: &ProjectArgs, args: RmArgs) -> anyhow::Result<u8> {
    let (name, mut req) = request(project, &args.target)?;
    req.oneoff = true;
    req.stop = args.stop;
    req.volumes = args.volumes;
    if !args.force {
        let client = Client::connect(root).await?;
        let doomed: Vec<String> = select(&client, &name, &req)
            .await?
            .into_iter()
            .filter(|c| args.stop || matches!(c.state.status, Status::Created | Status::Exited))
            .map(|c| c.name)
            .collect();
        if doomed.is_empty() {
            println!("No stopped containers");
            return Ok(0);
        }
        eprint!(
            "Going to remove {}\n? Are you sure? [yN] ",
            doomed.join(", ")
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!();
            return Ok(0);
        }
    }
    operate(root, &name, "rm", &req).await
}
