//! `berth ps` (the project's containers) and `berth ls` (projects on this host).

use std::path::Path;
use std::time::{Duration, SystemTime};

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

/// Docker's status column: `Up 5 seconds (healthy)`, `Exited (1) 2 minutes ago`, ...
fn status(c: &ContainerInfo, now: SystemTime) -> String {
    let health = c
        .state
        .health
        .as_ref()
        .map(|h| format!(" ({})", h.status))
        .unwrap_or_default();
    let since = |t: &Option<String>| human_since(t.as_deref(), now);
    match c.state.status {
        Status::Running => format!("Up {}{health}", since(&c.state.started_at)),
        Status::Paused => format!("Up {} (Paused)", since(&c.state.started_at)),
        Status::Created => "Created".into(),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            c.state.exit_code.unwrap_or(0),
            since(&c.state.finished_at)
        ),
    }
}

/// How long ago an RFC 3339 time was, as Docker words it.
fn human_since(t: Option<&str>, now: SystemTime) -> String {
    let Some(then) = t.and_then(|t| humantime::parse_rfc3339_weak(t).ok()) else {
        return "for a while".into();
    };
    human_duration(now.duration_since(then).unwrap_or_default())
}

/// Docker's human durations: `Less than a second`, `5 seconds`, `About a minute`, `3 hours`.
fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match s {
        0 => "Less than a second".into(),
        1..=59 => plural(s, "second"),
        60..=119 => "About a minute".into(),
        120..=3599 => plural(s / 60, "minute"),
        3600..=7199 => "About an hour".into(),
        7200..=172_799 => plural(s / 3600, "hour"),
        172_800..=1_209_599 => plural(s / 86_400, "day"),
        1_209_600..=5_183_999 => plural(s / 604_800, "week"),
        _ => plural(s / 2_592_000, "month"),
    }
}

/// Docker's ports column: published ports as `HOST_IP:PORT->PORT/PROTO`, exposed-only ports of
/// the request as `PORT/PROTO`; one entry per port, comma-separated.
fn ports(c: &ContainerInfo) -> String {
    let Some(net) = &c.network else {
        return String::new();
    };
    let mut out: Vec<String> = net
        .published
        .iter()
        .map(|p| {
            format!(
                "{}:{}->{}/{}",
                p.host_ip, p.host_port, p.container_port, p.proto
            )
        })
        .collect();
    if net.published.is_empty() {
        out.extend(net.ports.iter().map(|p| {
            let host = p.host_port.map(|h| format!("{}:{h}->", p.host_ip));
            format!(
                "{}{}/{}",
                host.unwrap_or_default(),
                p.container_port,
                p.proto
            )
        }));
    }
    out.join(", ")
}

/// The command as Docker's ps quotes it, cut to `width`.
fn command(c: &ContainerInfo, width: usize) -> String {
    let cmd = c.config.args.join(" ");
    if cmd.chars().count() > width {
        let cut: String = cmd.chars().take(width.saturating_sub(1)).collect();
        format!("\"{cut}…\"")
    } else {
        format!("\"{cmd}\"")
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
            let now = SystemTime::now();
            let rows: Vec<[String; 7]> = list
                .iter()
                .map(|c| {
                    [
                        c.name.clone(),
                        c.image.clone(),
                        command(c, 20),
                        svc(c),
                        format!("{} ago", human_since(Some(&c.state.created_at), now)),
                        status(c, now),
                        ports(c),
                    ]
                })
                .collect();
            let head = [
                "NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS",
            ]
            .map(String::from);
            let mut widths = head.clone().map(|h| h.chars().count());
            for row in &rows {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            for row in std::iter::once(&head).chain(&rows) {
                let line: Vec<String> = row
                    .iter()
                    .zip(widths)
                    .map(|(cell, w)| format!("{cell:<w$}"))
                    .collect();
                println!("{}", line.join("   ").trim_end());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_dockers() {
        let d = |s| human_duration(Duration::from_secs(s));
        assert_eq!(d(0), "Less than a second");
        assert_eq!(d(1), "1 second");
        assert_eq!(d(42), "42 seconds");
        assert_eq!(d(90), "About a minute");
        assert_eq!(d(600), "10 minutes");
        assert_eq!(d(4000), "About an hour");
        assert_eq!(d(3 * 3600), "3 hours");
        assert_eq!(d(3 * 86_400), "3 days");
        assert_eq!(d(20 * 86_400), "2 weeks");
        let now = humantime::parse_rfc3339_weak("2026-11-26T10:00:05Z").unwrap();
        assert_eq!(
            human_since(Some("2026-11-26T10:00:00.123Z"), now),
            "4 seconds"
        );
        assert_eq!(human_since(None, now), "for a while");
    }
}
