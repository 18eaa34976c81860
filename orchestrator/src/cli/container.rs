//! `berth container ...`: single containers, with Docker's flags and exit codes.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use hyper::Method;

use super::port;
use super::units::parse_bytes;
use crate::api::{
    self, ContainerInfo, CreateContainer, Created, ExecOptions, Mount, MountKind, Rlimit, Status,
};
use crate::client::{enc, Client};

#[derive(Debug, Subcommand)]
pub enum ContainerCmd {
    /// Create and run a container.
    Run(RunArgs),
    /// Create a container without starting it.
    Create(RunArgs),
    /// Start stopped containers.
    Start { containers: Vec<String> },
    /// List containers.
    #[command(alias = "ps", alias = "list")]
    Ls {
        #[arg(short, long)]
        all: bool,
        /// `json` for one JSON array.
        #[arg(long)]
        format: Option<String>,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Stop containers (stop signal, then SIGKILL after the grace period).
    Stop {
        #[arg(short = 't', long = "time")]
        time: Option<u64>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Send a signal to containers.
    Kill {
        #[arg(short, long, default_value = "KILL")]
        signal: String,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Freeze every process of containers.
    Pause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Thaw paused containers.
    Unpause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove containers.
    Rm {
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Show a container's output.
    Logs {
        #[arg(short, long)]
        follow: bool,
        #[arg(long = "tail", short = 'n')]
        tail: Option<String>,
        /// Prefix every line with its time (RFC 3339).
        #[arg(short, long)]
        timestamps: bool,
        container: String,
    },
    /// Run a command in a running container.
    Exec {
        #[arg(short, long = "env")]
        env: Vec<String>,
        #[arg(short, long = "workdir")]
        workdir: Option<String>,
        #[arg(short, long)]
        user: Option<String>,
        container: String,
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        cmd: Vec<String>,
    },
    /// Show containers' full records as JSON.
    Inspect {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Wait for containers to stop and print their exit codes.
    Wait {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// List a container's published ports, or the host addresses of one port.
    Port {
        container: String,
        /// PORT[/tcp|udp]
        port: Option<String>,
    },
}

/// Flags of `container run` / `container create`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Remove the container when it exits.
    #[arg(long)]
    rm: bool,
    /// Run in the background and print the container id.
    #[arg(short, long)]
    detach: bool,
    #[arg(long)]
    name: Option<String>,
    #[arg(short, long = "env")]
    env: Vec<String>,
    #[arg(short, long = "workdir")]
    workdir: Option<String>,
    #[arg(short, long)]
    user: Option<String>,
    #[arg(long)]
    hostname: Option<String>,
    /// Memory limit, e.g. 64m.
    #[arg(short, long)]
    memory: Option<String>,
    /// CPU quota in CPUs, e.g. 0.5.
    #[arg(long)]
    cpus: Option<f64>,
    #[arg(long)]
    pids_limit: Option<i64>,
    /// A network to join (repeatable; default: the `bridge` network), `none` (only `lo`) or
    /// `host` (the host's). Also `name=NET[,alias=A][,ip=IP]`.
    #[arg(long = "network", alias = "net")]
    network: Vec<String>,
    /// Extra DNS name on the first network; repeatable.
    #[arg(long = "network-alias", alias = "net-alias")]
    network_alias: Vec<String>,
    /// Static IPv4 address on the first network.
    #[arg(long)]
    ip: Option<Ipv4Addr>,
    /// Publish ports: [HOST_IP:][HOST_PORT:]PORT[/udp], ranges allowed; repeatable.
    #[arg(short = 'p', long = "publish")]
    publish: Vec<String>,
    /// Accepted for Docker compatibility: every berth container has an init as PID 1.
    #[arg(long)]
    init: bool,
    #[arg(long)]
    entrypoint: Option<String>,
    #[arg(long)]
    read_only: bool,
    #[arg(long)]
    cap_add: Vec<String>,
    #[arg(long)]
    cap_drop: Vec<String>,
    #[arg(long)]
    stop_signal: Option<String>,
    #[arg(long)]
    stop_timeout: Option<u64>,
    /// NAME=SOFT[:HARD]
    #[arg(long)]
    ulimit: Vec<String>,
    #[arg(short, long = "label")]
    label: Vec<String>,
    /// HOST_PATH:CONTAINER_PATH[:ro]
    #[arg(short, long = "volume")]
    volume: Vec<String>,
    /// CONTAINER_PATH[:size=N]
    #[arg(long)]
    tmpfs: Vec<String>,
    #[arg(long)]
    sysctl: Vec<String>,
    /// Restart policy: no, always, on-failure[:N], unless-stopped.
    #[arg(long, default_value = "no")]
    restart: String,
    /// Resolver for names the container's networks do not own; repeatable.
    #[arg(long)]
    dns: Vec<std::net::IpAddr>,
    /// resolv.conf search domain; repeatable.
    #[arg(long)]
    dns_search: Vec<String>,
    /// resolv.conf option (ndots:2, ...); repeatable.
    #[arg(long)]
    dns_option: Vec<String>,
    /// HOST:IP line for /etc/hosts (IP may be host-gateway); repeatable.
    #[arg(long)]
    add_host: Vec<String>,
    image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    cmd: Vec<String>,
}

/// One `--network`: `NAME` or `name=NAME[,alias=A...][,ip=IP]`.
fn endpoint(s: &str) -> anyhow::Result<netd::EndpointSpec> {
    let mut e = netd::EndpointSpec::default();
    if !s.contains('=') {
        e.network = s.to_string();
        return Ok(e);
    }
    for part in s.split(',') {
        match part.split_once('=') {
            Some(("name", v)) => e.network = v.to_string(),
            Some(("alias", v)) => e.aliases.push(v.to_string()),
            Some(("ip", v)) => {
                e.ipv4 = Some(v.parse().with_context(|| {
                    format!("invalid --network {s:?}: {v:?} is not an IPv4 address")
                })?)
            }
            _ => bail!("invalid --network {s:?}: expected NAME or name=NAME[,alias=A][,ip=IP]"),
        }
    }
    if e.network.is_empty() {
        bail!("invalid --network {s:?}: no name=");
    }
    Ok(e)
}

fn kv(items: &[String], what: &str) -> anyhow::Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("invalid {what} {s:?}: expected KEY=VALUE"),
        })
        .collect()
}

fn env_list(items: &[String]) -> Vec<String> {
    items
        .iter()
        .map(|e| {
            if e.contains('=') {
                e.clone()
            } else {
                format!("{e}={}", std::env::var(e).unwrap_or_default())
            }
        })
        .collect()
}

impl RunArgs {
    /// The network mode (`none`, `host` or empty) and the networks to join: `--network-alias`
    /// and `--ip` apply to the first.
    fn networks(&self) -> anyhow::Result<(String, Vec<netd::EndpointSpec>)> {
        let special = self
            .network
            .iter()
            .find(|n| matches!(n.as_str(), "none" | "host"));
        if let Some(mode) = special {
            if self.network.len() > 1 {
                bail!("--network {mode} cannot be combined with other networks");
            }
            if !self.network_alias.is_empty() || self.ip.is_some() {
                bail!("--network-alias and --ip need a network; --network {mode} has none");
            }
            return Ok((mode.clone(), Vec::new()));
        }
        let mut networks = Vec::new();
        for n in &self.network {
            networks.push(endpoint(n)?);
        }
        if (!self.network_alias.is_empty() || self.ip.is_some()) && networks.is_empty() {
            networks.push(netd::EndpointSpec {
                network: crate::engine::networks::DEFAULT_NETWORK.into(),
                ..Default::default()
            });
        }
        if let Some(first) = networks.first_mut() {
            first.aliases.extend(self.network_alias.iter().cloned());
            if self.ip.is_some() {
                first.ipv4 = self.ip;
            }
        }
        Ok((String::new(), networks))
    }

    fn request(&self) -> anyhow::Result<CreateContainer> {
        let mut mounts = Vec::new();
        for v in &self.volume {
            let parts: Vec<&str> = v.split(':').collect();
            let (src, dst, ro) = match parts.as_slice() {
                [s, d] => (*s, *d, false),
                [s, d, o] => (*s, *d, o.split(',').any(|x| x == "ro")),
                _ => bail!("invalid volume {v:?}: expected HOST_PATH:CONTAINER_PATH[:ro]"),
            };
            let src = std::fs::canonicalize(src)
                .with_context(|| format!("volume {v:?}: host path {src} does not exist"))?;
            mounts.push(Mount {
                destination: dst.to_string(),
                kind: MountKind::Bind { source: src },
                read_only: ro,
            });
        }
        for t in &self.tmpfs {
            let (dst, opts) = t.split_once(':').unwrap_or((t, ""));
            let mut size = None;
            for o in opts.split(',').filter(|o| !o.is_empty()) {
                if let Some(s) = o.strip_prefix("size=") {
                    size = Some(parse_bytes(s)?);
                }
            }
            mounts.push(Mount {
                destination: dst.to_string(),
                kind: MountKind::Tmpfs { size, mode: None },
                read_only: false,
            });
        }
        let mut rlimits = Vec::new();
        for u in &self.ulimit {
            let (name, vals) = u
                .split_once('=')
                .with_context(|| format!("invalid ulimit {u:?}: expected NAME=SOFT[:HARD]"))?;
            let (soft, hard) = vals.split_once(':').unwrap_or((vals, vals));
            let p = |x: &str| {
                x.parse::<u64>()
                    .with_context(|| format!("invalid ulimit {u:?}: {x} is not a number"))
            };
            rlimits.push(Rlimit {
                name: name.to_string(),
                soft: p(soft)?,
                hard: p(hard)?,
            });
        }
        let (network, networks) = self.networks()?;
        Ok(CreateContainer {
            image: self.image.clone(),
            name: self.name.clone(),
            cmd: self.cmd.clone(),
            entrypoint: self.entrypoint.as_ref().map(|e| {
                if e.is_empty() {
                    vec![]
                } else {
                    vec![e.clone()]
                }
            }),
            env: env_list(&self.env),
            working_dir: self.workdir.clone(),
            user: self.user.clone(),
            hostname: self.hostname.clone(),
            memory: self.memory.as_deref().map(parse_bytes).transpose()?,
            cpus: self.cpus,
            pids_limit: self.pids_limit,
            network,
            networks,
            ports: self
                .publish
                .iter()
                .map(|p| port::parse_publish(p))
                .collect::<anyhow::Result<Vec<_>>>()?
                .concat(),
            dns: self.dns.clone(),
            dns_search: self.dns_search.clone(),
            dns_options: self.dns_option.clone(),
            extra_hosts: self.add_host.clone(),
            auto_remove: self.rm,
            labels: kv(&self.label, "label")?,
            mounts,
            read_only: self.read_only,
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            stop_signal: self.stop_signal.clone(),
            stop_timeout: self.stop_timeout,
            rlimits,
            sysctls: kv(&self.sysctl, "sysctl")?,
            restart: self.restart.clone(),
            healthcheck: None,
        })
    }
}

fn write_frame(stream: u8, data: &[u8]) {
    if stream == api::STDERR {
        let _ = std::io::stderr().write_all(data);
    } else {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(data);
        let _ = out.flush();
    }
}

const NONE: Option<&()> = None;

/// Runs a `berth container` command.
pub async fn run(root: &Path, cmd: ContainerCmd) -> anyhow::Result<u8> {
    let client = Client::connect(root).await?;
    match cmd {
        ContainerCmd::Run(args) => run_container(&client, args).await,
        ContainerCmd::Create(args) => {
            let created: Created = client
                .call(Method::POST, "/containers/create", Some(&args.request()?))
                .await?;
            println!("{}", created.id);
            Ok(0)
        }
        ContainerCmd::Start { containers } => each(&client, &containers, "start", "").await,
        ContainerCmd::Ls { all, format, quiet } => {
            list(&client, all, format.as_deref(), quiet).await
        }
        ContainerCmd::Stop { time, containers } => {
            let q = time.map(|t| format!("?t={t}")).unwrap_or_default();
            each(&client, &containers, "stop", &q).await
        }
        ContainerCmd::Kill { signal, containers } => {
            each(
                &client,
                &containers,
                "kill",
                &format!("?signal={}", enc(&signal)),
            )
            .await
        }
        ContainerCmd::Pause { containers } => each(&client, &containers, "pause", "").await,
        ContainerCmd::Unpause { containers } => each(&client, &containers, "unpause", "").await,
        ContainerCmd::Rm { force, containers } => {
            let mut code = 0;
            for c in &containers {
                let path = format!(
                    "/containers/{}{}",
                    enc(c),
                    if force { "?force=1" } else { "" }
                );
                match client
                    .call::<serde_json::Value>(Method::DELETE, &path, NONE)
                    .await
                {
                    Ok(_) => println!("{c}"),
                    Err(e) => {
                        eprintln!("berth: {e:#}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        ContainerCmd::Logs {
            follow,
            tail,
            timestamps,
            container,
        } => {
            let mut q = format!(
                "?follow={}&timestamps={}",
                u8::from(follow),
                u8::from(timestamps)
            );
            if let Some(t) = tail.filter(|t| t != "all") {
                let n: usize = t
                    .parse()
                    .with_context(|| format!("invalid --tail {t:?}: expected a number or all"))?;
                q.push_str(&format!("&tail={n}"));
            }
            client
                .stream(
                    Method::GET,
                    &format!("/containers/{}/logs{q}", enc(&container)),
                    NONE,
                    write_frame,
                )
                .await?;
            Ok(0)
        }
        ContainerCmd::Exec {
            env,
            workdir,
            user,
            container,
            cmd,
        } => {
            let opts = ExecOptions {
                cmd,
                env: env_list(&env),
                working_dir: workdir,
                user,
            };
            let code = client
                .stream(
                    Method::POST,
                    &format!("/containers/{}/exec", enc(&container)),
                    Some(&opts),
                    write_frame,
                )
                .await?;
            Ok(code.unwrap_or(255).clamp(0, 255) as u8)
        }
        ContainerCmd::Inspect { containers } => {
            let mut out = Vec::new();
            for c in &containers {
                let info: serde_json::Value = client
                    .call(Method::GET, &format!("/containers/{}/json", enc(c)), NONE)
                    .await?;
                out.push(info);
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(0)
        }
        ContainerCmd::Port { container, port } => {
            port::run(&client, &container, port.as_deref()).await
        }
        ContainerCmd::Wait { containers } => {
            for c in &containers {
                let v: serde_json::Value = client
                    .call(Method::POST, &format!("/containers/{}/wait", enc(c)), NONE)
                    .await?;
                println!("{}", v["StatusCode"]);
            }
            Ok(0)
        }
    }
}

/// Docker's exit codes for a failed `run`: 127 command not found, 126 cannot invoke, 125 any
/// other failure before the command ran.
pub(super) fn run_failure(e: &anyhow::Error) -> u8 {
    let msg = format!("{e:#}");
    eprintln!("berth: {msg}");
    let lower = msg.to_lowercase();
    if lower.contains("not found in $path") || lower.contains("no such file or directory") {
        127
    } else if lower.contains("permission denied") {
        126
    } else {
        125
    }
}

async fn run_container(client: &Client, args: RunArgs) -> anyhow::Result<u8> {
    let req = match args.request() {
        Ok(r) => r,
        Err(e) => return Ok(run_failure(&e)),
    };
    let created: Created = match client
        .call(Method::POST, "/containers/create", Some(&req))
        .await
    {
        Ok(c) => c,
        Err(e) => return Ok(run_failure(&e)),
    };
    if args.detach {
        if let Err(e) = client
            .call::<serde_json::Value>(
                Method::POST,
                &format!("/containers/{}/start", created.id),
                NONE,
            )
            .await
        {
            return Ok(run_failure(&e));
        }
        println!("{}", created.id);
        return Ok(0);
    }
    match start_attached(client, &created.id).await {
        Ok(c) => Ok(c),
        Err(e) => Ok(run_failure(&e)),
    }
}

/// Starts a created container attached to its output, forwarding Ctrl-C and SIGTERM to it as
/// Docker's signal proxy does; returns its exit code.
pub(super) async fn start_attached(client: &Client, id: &str) -> anyhow::Result<u8> {
    let c2 = client.clone();
    let target = id.to_string();
    let proxy = tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        loop {
            let sig = tokio::select! {
                _ = int.recv() => "INT",
                _ = term.recv() => "TERM",
            };
            let _ = c2
                .call::<serde_json::Value>(
                    Method::POST,
                    &format!("/containers/{target}/kill?signal={sig}"),
                    NONE,
                )
                .await;
        }
    });
    let code = client
        .stream(
            Method::POST,
            &format!("/containers/{id}/start?attach=1"),
            NONE,
            write_frame,
        )
        .await;
    proxy.abort();
    Ok(code?.unwrap_or(255).clamp(0, 255) as u8)
}

async fn each(client: &Client, containers: &[String], action: &str, q: &str) -> anyhow::Result<u8> {
    let mut code = 0;
    for c in containers {
        match client
            .call::<serde_json::Value>(
                Method::POST,
                &format!("/containers/{}/{action}{q}", enc(c)),
                NONE,
            )
            .await
        {
            Ok(_) => println!("{c}"),
            Err(e) => {
                eprintln!("berth: {e:#}");
                code = 1;
            }
        }
    }
    Ok(code)
}

fn status_text(info: &ContainerInfo) -> String {
    match info.state.status {
        Status::Running => format!(
            "Up since {}",
            info.state.started_at.clone().unwrap_or_default()
        ),
        Status::Paused => "Up (Paused)".to_string(),
        Status::Created => "Created".to_string(),
        Status::Exited => format!(
            "Exited ({}){}",
            info.state.exit_code.unwrap_or(0),
            if info.state.oom_killed {
                " OOMKilled"
            } else {
                ""
            }
        ),
    }
}

async fn list(client: &Client, all: bool, format: Option<&str>, quiet: bool) -> anyhow::Result<u8> {
    let path = if all {
        "/containers/json?all=1"
    } else {
        "/containers/json"
    };
    let list: Vec<ContainerInfo> = client.call(Method::GET, path, NONE).await?;
    if format == Some("json") {
        println!("{}", serde_json::to_string(&list)?);
        return Ok(0);
    }
    if let Some(f) = format {
        bail!("unknown --format {f:?}: use json");
    }
    if quiet {
        for c in &list {
            println!("{}", &c.id[..12]);
        }
        return Ok(0);
    }
    println!(
        "{:<12}  {:<24}  {:<30}  {:<28}  NAMES",
        "CONTAINER ID", "IMAGE", "COMMAND", "STATUS"
    );
    for c in &list {
        let mut cmd = c.config.args.join(" ");
        if cmd.len() > 28 {
            cmd.truncate(27);
            cmd.push('…');
        }
        println!(
            "{:<12}  {:<24}  {:<30}  {:<28}  {}",
            &c.id[..12],
            c.image,
            format!("\"{cmd}\""),
            status_text(c),
            c.name
        );
    }
    Ok(0)
}
