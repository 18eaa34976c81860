//! `berth logs`: every replica's output with a `service-N | ` prefix (a colour per service on
//! a terminal), following new replicas as they appear (the attached mode of `up` is in `attach`).

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use clap::Args;
use hyper::Method;

use super::{ps, ProjectArgs};
use crate::api::{self, ContainerInfo};
use crate::client::Client;
use crate::engine::translate::{NUMBER, SERVICE};

const NONE: Option<&()> = None;
const COLOURS: &[&str] = &[
    "36", "33", "32", "35", "34", "91", "92", "93", "94", "95", "96",
];

/// Flags of `berth logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    #[arg(short, long)]
    follow: bool,
    #[arg(short = 'n', long)]
    tail: Option<usize>,
    /// Prefix every line with its time (RFC 3339).
    #[arg(short = 't', long)]
    timestamps: bool,
    #[arg(long)]
    no_color: bool,
    services: Vec<String>,
}

fn prefix(c: &ContainerInfo, colour: bool, width: usize) -> String {
    let svc = c
        .config
        .labels
        .get(SERVICE)
        .cloned()
        .unwrap_or_else(|| c.name.clone());
    let label = format!(
        "{svc}-{}",
        c.config.labels.get(NUMBER).cloned().unwrap_or_default()
    );
    if colour {
        let h = svc
            .bytes()
            .fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(b as usize));
        format!(
            "\x1b[{}m{label:<width$} |\x1b[0m ",
            COLOURS[h % COLOURS.len()]
        )
    } else {
        format!("{label:<width$} | ")
    }
}

async fn stream_one(
    client: Client,
    c: ContainerInfo,
    follow: bool,
    tail: Option<usize>,
    timestamps: bool,
    pfx: String,
) {
    let mut q = format!(
        "?follow={}&timestamps={}",
        u8::from(follow),
        u8::from(timestamps)
    );
    if let Some(t) = tail {
        q.push_str(&format!("&tail={t}"));
    }
    let mut pending: Vec<u8> = Vec::new();
    let _ = client
        .stream(
            Method::GET,
            &format!("/containers/{}/logs{q}", c.id),
            NONE,
            |stream, data| {
                pending.extend_from_slice(data);
                while let Some(nl) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=nl).collect();
                    let text = format!("{pfx}{}", String::from_utf8_lossy(&line));
                    if stream == api::STDERR {
                        let _ = std::io::stderr().write_all(text.as_bytes());
                    } else {
                        let _ = std::io::stdout().lock().write_all(text.as_bytes());
                    }
                }
            },
        )
        .await;
}

/// Streams the logs of a project's containers; with `follow`, also of replicas that appear
/// later, until interrupted.
pub async fn follow(
    client: &Client,
    project: &str,
    services: &[String],
    follow: bool,
    tail: Option<usize>,
    timestamps: bool,
    colour: bool,
) -> anyhow::Result<()> {
    let mut seen = BTreeSet::new();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let list: Vec<ContainerInfo> = client
            .call(Method::GET, &format!("/projects/{project}/ps"), NONE)
            .await?;
        let width = list.iter().map(|c| c.name.len().min(24)).max().unwrap_or(8);
        for c in list {
            let svc = c.config.labels.get(SERVICE).cloned().unwrap_or_default();
            if (!services.is_empty() && !services.contains(&svc)) || !seen.insert(c.id.clone()) {
                continue;
            }
            let pfx = prefix(&c, colour, width.min(20));
            tasks.spawn(stream_one(client.clone(), c, follow, tail, timestamps, pfx));
        }
        if !follow {
            while tasks.join_next().await.is_some() {}
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// Runs `berth logs`.
pub async fn run(root: &Path, project: &ProjectArgs, args: LogsArgs) -> anyhow::Result<u8> {
    let name = ps::project_name(project)?;
    let client = Client::connect(root).await?;
    let colour =
        !args.no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal();
    follow(
        &client,
        &name,
        &args.services,
        args.follow,
        args.tail,
        args.timestamps,
        colour,
    )
    .await?;
    Ok(0)
}
