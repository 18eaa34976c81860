//! `berth run SERVICE [CMD...]`: a one-off container `PROJECT-SERVICE-run-<id>` with the
//! service's config, networks and volumes. Its dependencies are brought up first (as `up SERVICE
//! --no-deps` would bring up each; their progress goes to stderr), unless `--no-deps`. Attached
//! by default, the container's exit code is berth's; `-d` prints the container's name.

use std::io::Write;
use std::path::Path;

use clap::Args;
use hyper::Method;

use super::{container, port, up, ProjectArgs};
use crate::api::Created;
use crate::client::Client;
use crate::compose::Project;
use crate::engine::oneoff::RunRequest;
use crate::engine::projects::{UpFlags, UpRequest};

/// Flags of `berth run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run in the background and print the container's name.
    #[arg(short, long)]
    detach: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    rm: bool,
    /// Set an environment variable (K=V, or K to take it from here); repeatable.
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// Don't start the service's dependencies.
    #[arg(long)]
    no_deps: bool,
    /// Override the entrypoint: words split on whitespace ("" for none).
    #[arg(long)]
    entrypoint: Option<String>,
    /// Publish a port: [HOST_IP:][HOST_PORT:]PORT[/udp]; repeatable.
    #[arg(short = 'p', long = "publish")]
    publish: Vec<String>,
    /// Publish the service's own ports too.
    #[arg(long)]
    service_ports: bool,
    /// Container name (default PROJECT-SERVICE-run-<id>).
    #[arg(long)]
    name: Option<String>,
    /// Accepted for compatibility: berth never allocates a terminal.
    #[arg(short = 'T', long = "no-TTY")]
    no_tty: bool,
    #[arg(short, long)]
    user: Option<String>,
    #[arg(short, long = "workdir")]
    workdir: Option<String>,
    service: String,
    /// Command (default: the service's).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    cmd: Vec<String>,
}

/// Exits 1 naming an unknown service and the services that exist.
pub fn check_service(project: &Project, service: &str) -> anyhow::Result<()> {
    if project.services.contains_key(service) {
        return Ok(());
    }
    let known: Vec<&str> = project.services.keys().map(String::as_str).collect();
    anyhow::bail!(
        "no such service: {service}; the services of project {} are: {}",
        project.name,
        known.join(", ")
    )
}

/// Brings up the service's dependencies, progress on stderr.
async fn start_dependencies(
    client: &Client,
    project: &Project,
    service: &str,
) -> anyhow::Result<()> {
    let deps: Vec<String> = project.services[service]
        .depends_on
        .keys()
        .filter(|d| project.services.contains_key(*d))
        .cloned()
        .collect();
    if deps.is_empty() {
        return Ok(());
    }
    let req = UpRequest {
        project: project.clone(),
        flags: UpFlags {
            services: deps,
            ..UpFlags::default()
        },
    };
    let code = client
        .stream(
            Method::POST,
            &format!("/projects/{}/up", project.name),
            Some(&req),
            |_, data| {
                let _ = std::io::stderr().write_all(data);
            },
        )
        .await?;
    if code != Some(0) {
        anyhow::bail!("starting the dependencies of {service} failed");
    }
    Ok(())
}

/// Runs `berth run`.
pub async fn run(root: &Path, project: &ProjectArgs, args: RunArgs) -> anyhow::Result<u8> {
    let loaded = up::load(project)?;
    check_service(&loaded, &args.service)?;
    let client = Client::connect(root).await?;
    if !args.no_deps {
        start_dependencies(&client, &loaded, &args.service).await?;
    }
    let env = args
        .env
        .iter()
        .map(|e| {
            if e.contains('=') {
                e.clone()
            } else {
                format!("{e}={}", std::env::var(e).unwrap_or_default())
            }
        })
        .collect();
    let ports = args
        .publish
        .iter()
        .map(|p| port::parse_publish(p))
        .collect::<anyhow::Result<Vec<_>>>()?
        .concat();
    let name = loaded.name.clone();
    let req = RunRequest {
        project: loaded,
        service: args.service,
        cmd: args.cmd,
        entrypoint: args
            .entrypoint
            .map(|e| e.split_whitespace().map(str::to_string).collect::<Vec<_>>()),
        env,
        ports,
        service_ports: args.service_ports,
        name: args.name,
        rm: args.rm,
        user: args.user,
        workdir: args.workdir,
    };
    let created: Created = client
        .call(Method::POST, &format!("/projects/{name}/run"), Some(&req))
        .await?;
    if args.detach {
        client
            .call::<serde_json::Value>(
                Method::POST,
                &format!("/containers/{}/start", created.id),
                None::<&()>,
            )
            .await?;
        println!("{}", created.name);
        return Ok(0);
    }
    // Docker's codes when the command cannot run: 127 not found, 126 not executable.
    match container::start_attached(&client, &created.id).await {
        Ok(code) => Ok(code),
        Err(e) => Ok(container::run_failure(&e)),
    }
}
