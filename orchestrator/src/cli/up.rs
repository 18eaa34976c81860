//! `berth up` and `berth scale`: send the loaded project to the engine, which plans and
//! converges; print its progress. Without `-d`, attach to every replica's output afterwards.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;

use anyhow::{bail, Context};
use clap::Args;
use hyper::Method;

use super::attach::{self, AttachOptions};
use super::progress;
use super::ProjectArgs;
use crate::client::Client;
use crate::compose::{self, LoadOptions};
use crate::engine::projects::{UpFlags, UpRequest};

/// Flags of `berth up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Detached: return once the project is converged.
    #[arg(short, long)]
    detach: bool,
    /// Wait for services to be running/healthy (one-shots completed); implies -d.
    #[arg(long)]
    wait: bool,
    /// Seconds --wait may take.
    #[arg(long)]
    wait_timeout: Option<u64>,
    #[arg(long)]
    force_recreate: bool,
    #[arg(long)]
    no_recreate: bool,
    /// Don't start linked services.
    #[arg(long)]
    no_deps: bool,
    /// Remove containers of services not in the compose file.
    #[arg(long)]
    remove_orphans: bool,
    /// SERVICE=N; repeatable.
    #[arg(long)]
    scale: Vec<String>,
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Parallel operations at most.
    #[arg(long, default_value_t = 0)]
    parallel: usize,
    /// Build images before starting containers (default: only missing ones).
    #[arg(long, conflicts_with = "no_build")]
    build: bool,
    /// Don't build images, even missing ones.
    #[arg(long)]
    no_build: bool,
    /// Pull images first: `always`, `missing` (those not in the store) or `never` (default:
    /// the store is used as it is).
    #[arg(long, value_parser = ["always", "missing", "never"])]
    pull: Option<String>,
    #[arg(long)]
    no_color: bool,
    /// Stop every container when one exits (attached mode).
    #[arg(long, conflicts_with_all = ["detach", "wait"])]
    abort_on_container_exit: bool,
    /// Exit with the code of this service's container; implies --abort-on-container-exit.
    #[arg(long, value_name = "SERVICE", conflicts_with_all = ["detach", "wait"])]
    exit_code_from: Option<String>,
    /// Show the output of these services only; repeatable.
    #[arg(long = "attach", value_name = "SERVICE")]
    attach: Vec<String>,
    /// Don't show the output of these services; repeatable.
    #[arg(long = "no-attach", value_name = "SERVICE")]
    no_attach: Vec<String>,
    /// Seconds containers get to stop when the attached mode stops the project.
    #[arg(short = 't', long)]
    timeout: Option<u64>,
    services: Vec<String>,
}

/// Parses `SERVICE=N` pairs.
pub fn parse_scale(items: &[String]) -> anyhow::Result<BTreeMap<String, u32>> {
    items
        .iter()
        .map(|s| {
            let (k, v) = s
                .split_once('=')
                .with_context(|| format!("invalid scale {s:?}: expected SERVICE=N"))?;
            let n: u32 = v
                .parse()
                .with_context(|| format!("invalid scale {s:?}: {v} is not a number"))?;
            Ok((k.to_string(), n))
        })
        .collect()
}

/// Loads the project from the global flags, printing its warnings.
pub fn load(project: &ProjectArgs) -> anyhow::Result<compose::Project> {
    let opts = LoadOptions::from_args(project).context("read the current directory")?;
    let p = compose::load(&opts)?;
    for w in &p.warnings {
        eprintln!("warning: {w}");
    }
    Ok(p)
}

fn print_frame(stream: u8, data: &[u8]) {
    use std::io::Write;
    if stream == crate::api::STDERR {
        let _ = std::io::stderr().write_all(data);
    } else {
        let _ = std::io::stdout().write_all(data);
    }
}

/// Sends a streamed project operation and returns its exit code.
pub async fn send(client: &Client, path: &str, body: &impl serde::Serialize) -> anyhow::Result<u8> {
    let code = client
        .stream(Method::POST, path, Some(body), print_frame)
        .await?;
    Ok(code.unwrap_or(1).clamp(0, 255) as u8)
}

/// Runs `berth up`.
pub async fn run(root: &Path, project: &ProjectArgs, args: UpArgs) -> anyhow::Result<u8> {
    let loaded = load(project)?;
    let name = loaded.name.clone();
    for svc in args
        .exit_code_from
        .iter()
        .chain(&args.attach)
        .chain(&args.no_attach)
    {
        if !loaded.services.contains_key(svc) {
            let known: Vec<&String> = loaded.services.keys().collect();
            bail!("no such service: {svc:?} (the project has {known:?})");
        }
    }
    let attached = !(args.detach || args.wait || args.dry_run);
    let opts = AttachOptions {
        colour: !args.no_color
            && std::env::var_os("NO_COLOR").is_none()
            && std::io::stdout().is_terminal(),
        abort_on_exit: args.abort_on_container_exit || args.exit_code_from.is_some(),
        exit_code_from: args.exit_code_from.clone(),
        shown: if args.attach.is_empty() {
            args.services.iter().cloned().collect()
        } else {
            args.attach.iter().cloned().collect()
        },
        hidden: args.no_attach.iter().cloned().collect(),
        stop_order: crate::graph::ServiceGraph::new(&loaded)?.stop_order(),
        timeout: args.timeout,
    };
    let flags = UpFlags {
        force_recreate: args.force_recreate,
        no_recreate: args.no_recreate,
        remove_orphans: args.remove_orphans,
        no_deps: args.no_deps,
        services: args.services.clone(),
        scale: parse_scale(&args.scale)?,
        dry_run: args.dry_run,
        wait: args.wait,
        wait_timeout: args.wait_timeout,
        parallel: args.parallel,
        build: args.build,
        no_build: args.no_build,
        pull: args.pull.clone(),
    };
    let client = Client::connect(root).await?;
    // Subscribed before anything starts, so no output and no exit is missed.
    let events = match attached {
        true => Some((
            attach::subscribe(&client, &name).await?,
            attach::watch_ctrl_c()?,
        )),
        false => None,
    };
    let req = UpRequest {
        project: loaded,
        flags,
    };
    let path = format!("/projects/{name}/up");
    let code = if args.dry_run {
        send(&client, &path, &req).await?
    } else if std::io::stdout().is_terminal() {
        progress::board(&client, &name, &path, &req, opts.colour).await?
    } else {
        progress::plain(&client, &path, &req).await?
    };
    match events {
        Some((events, sigint)) if code == 0 => {
            attach::run(&client, &name, events, opts, sigint).await
        }
        _ => Ok(code),
    }
}

/// Flags of `berth scale`.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// SERVICE=N pairs.
    #[arg(required = true)]
    pairs: Vec<String>,
}

/// Runs `berth scale`.
pub async fn scale(root: &Path, project: &ProjectArgs, args: ScaleArgs) -> anyhow::Result<u8> {
    let name = match &project.project_name {
        Some(n) => n.clone(),
        None => load(project)?.name,
    };
    let client = Client::connect(root).await?;
    send(
        &client,
        &format!("/projects/{name}/scale"),
        &parse_scale(&args.pairs)?,
    )
    .await
}
