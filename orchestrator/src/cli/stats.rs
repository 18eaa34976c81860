//! `berth stats [--no-stream] [--format table|json] [SERVICE...]`: CPU %, memory against the
//! limit, network bytes and pids of the project's running containers, refreshed every second
//! (once with `--no-stream`). CPU % is the CPU time used between two samples a second apart
//! over the time between them (100 % is one CPU busy).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use hyper::Method;
use serde::Serialize;

use super::{ps, ProjectArgs};
use crate::api::{ContainerInfo, Status};
use crate::client::{enc, Client};
use crate::engine::stats::ContainerStats;
use crate::engine::translate::SERVICE;

const NONE: Option<&()> = None;
const INTERVAL: Duration = Duration::from_secs(1);

/// Flags of `berth stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print one sample and exit.
    #[arg(long)]
    no_stream: bool,
    /// `table` or `json`.
    #[arg(long, default_value = "table")]
    format: String,
    /// Only these services.
    services: Vec<String>,
}

/// One container's line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub name: String,
    pub id: String,
    pub service: Option<String>,
    pub cpu_percent: Option<f64>,
    pub memory_usage: Option<u64>,
    pub memory_limit: Option<u64>,
    pub memory_percent: Option<f64>,
    pub net_rx: Option<u64>,
    pub net_tx: Option<u64>,
    pub pids: Option<u64>,
}

/// The line of `cur`, with CPU % against the earlier sample `prev` of the same container.
pub fn row(prev: Option<&ContainerStats>, cur: &ContainerStats) -> Row {
    let cpu_percent = prev.and_then(|p| {
        let used = cur.cpu_usage_ns?.checked_sub(p.cpu_usage_ns?)?;
        let wall = cur.read_ns.checked_sub(p.read_ns).filter(|w| *w > 0)?;
        Some(used as f64 / wall as f64 * 100.0)
    });
    let memory_percent = match (cur.memory_usage_bytes, cur.memory_limit_bytes) {
        (Some(u), Some(l)) if l > 0 => Some(u as f64 / l as f64 * 100.0),
        _ => None,
    };
    Row {
        name: cur.name.clone(),
        id: cur.id.clone(),
        service: cur.service.clone(),
        cpu_percent,
        memory_usage: cur.memory_usage_bytes,
        memory_limit: cur.memory_limit_bytes,
        memory_percent,
        net_rx: cur.net_rx_bytes,
        net_tx: cur.net_tx_bytes,
        pids: cur.pids_current,
    }
}

/// A byte count with a unit: binary (KiB, MiB) for memory, decimal (kB, MB) for traffic, as
/// Docker prints them.
pub fn human(n: u64, binary: bool) -> String {
    let (base, units): (f64, &[&str]) = if binary {
        (1024.0, &["B", "KiB", "MiB", "GiB", "TiB"])
    } else {
        (1000.0, &["B", "kB", "MB", "GB", "TB"])
    };
    let mut v = n as f64;
    let mut i = 0;
    while v >= base && i + 1 < units.len() {
        v /= base;
        i += 1;
    }
    if i == 0 {
        format!("{n}{}", units[0])
    } else {
        format!("{v:.3}{}", units[i])
    }
}

fn opt(v: Option<u64>, binary: bool) -> String {
    v.map_or_else(|| "--".into(), |n| human(n, binary))
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "--".into(), |p| format!("{p:.2}%"))
}

/// The table of `rows`.
pub fn table(rows: &[Row]) -> String {
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4) + 2;
    let mut out = format!(
        "{:<width$}{:<10}{:<24}{:<10}{:<24}{}\n",
        "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "PIDS"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<width$}{:<10}{:<24}{:<10}{:<24}{}\n",
            r.name,
            pct(r.cpu_percent),
            format!(
                "{} / {}",
                opt(r.memory_usage, true),
                opt(r.memory_limit, true)
            ),
            pct(r.memory_percent),
            format!("{} / {}", opt(r.net_rx, false), opt(r.net_tx, false)),
            r.pids.map_or_else(|| "--".into(), |p| p.to_string()),
        ));
    }
    out
}

async fn sample_all(
    client: &Client,
    project: &str,
    services: &[String],
) -> anyhow::Result<Vec<ContainerStats>> {
    let list: Vec<ContainerInfo> = client
        .call(Method::GET, &format!("/projects/{}/ps", enc(project)), NONE)
        .await?;
    let wanted = list.into_iter().filter(|c| {
        matches!(c.state.status, Status::Running | Status::Paused)
            && (services.is_empty()
                || c.config
                    .labels
                    .get(SERVICE)
                    .is_some_and(|s| services.contains(s)))
    });
    let samples = wanted.map(|c| async move {
        client
            .call::<ContainerStats>(Method::GET, &format!("/containers/{}/stats", c.id), NONE)
            .await
    });
    // A container that stopped between the listing and its sample is left out.
    Ok(futures::future::join_all(samples)
        .await
        .into_iter()
        .filter_map(Result::ok)
        .collect())
}

/// Runs `berth stats`.
pub async fn run(root: &Path, project: &ProjectArgs, args: StatsArgs) -> anyhow::Result<u8> {
    if !matches!(args.format.as_str(), "table" | "json") {
        bail!("invalid --format {:?}: expected table or json", args.format);
    }
    let name = ps::project_name(project)?;
    let client = Client::connect(root).await?;
    let tty = std::io::stdout().is_terminal();
    let mut prev: HashMap<String, ContainerStats> = sample_all(&client, &name, &args.services)
        .await?
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect();
    loop {
        tokio::time::sleep(INTERVAL).await;
        let cur = sample_all(&client, &name, &args.services).await?;
        let rows: Vec<Row> = cur.iter().map(|s| row(prev.get(&s.id), s)).collect();
        let text = match args.format.as_str() {
            "json" => format!("{}\n", serde_json::to_string(&rows)?),
            _ if tty && !args.no_stream => format!("\x1b[2J\x1b[H{}", table(&rows)),
            _ => table(&rows),
        };
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()?;
        if args.no_stream {
            return Ok(0);
        }
        prev = cur.into_iter().map(|s| (s.id.clone(), s)).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_units() {
        let a = ContainerStats {
            id: "x".into(),
            name: "p-web-1".into(),
            read_ns: 1_000_000_000,
            cpu_usage_ns: Some(100_000_000),
            memory_usage_bytes: Some(16 << 20),
            memory_limit_bytes: Some(64 << 20),
            pids_current: Some(3),
            net_rx_bytes: Some(1500),
            net_tx_bytes: Some(0),
            ..ContainerStats::default()
        };
        let b = ContainerStats {
            read_ns: 2_000_000_000,
            cpu_usage_ns: Some(600_000_000),
            ..a.clone()
        };
        let r = row(Some(&a), &b);
        assert_eq!(r.cpu_percent, Some(50.0));
        assert_eq!(r.memory_percent, Some(25.0));
        assert_eq!(row(None, &b).cpu_percent, None);
        let t = table(&[r]);
        assert!(t.starts_with("NAME"), "{t}");
        assert!(
            t.contains("p-web-1  50.00%    16.000MiB / 64.000MiB"),
            "{t}"
        );
        assert!(t.contains("1.500kB / 0B"), "{t}");
        assert_eq!(human(999, false), "999B");
        assert_eq!(human(1536, true), "1.500KiB");
    }
}
