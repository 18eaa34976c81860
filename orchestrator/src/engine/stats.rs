//! Resource usage of a running container (`GET /containers/{id}/stats`): CPU time, memory
//! against its limit (the host's memory when unlimited), pids, from its cgroup; network bytes
//! from its network namespace (`/proc/<init pid>/net/dev`, loopback left out). One sample per
//! request: rates such as CPU % are the difference of two samples, computed by the client.

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use runtime::spec::NetworkMode;
use serde::{Deserialize, Serialize};

use super::containers::blocking;
use super::record::Container;
use super::translate::{PROJECT, SERVICE};
use super::{Engine, EngineError};
use crate::api::Status;

/// One sample of a container's usage. A field is `None` when the host cannot tell (no such
/// controller, a container in the host's network namespace).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerStats {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub service: Option<String>,
    /// When the sample was taken, in nanoseconds since the Unix epoch.
    pub read_ns: u64,
    /// CPU time of all its processes so far, in nanoseconds.
    pub cpu_usage_ns: Option<u64>,
    /// CPUs the host has (a CPU % of 100 is one CPU busy).
    pub online_cpus: u32,
    pub memory_usage_bytes: Option<u64>,
    /// Its memory limit, or the host's memory when it has none.
    pub memory_limit_bytes: Option<u64>,
    pub pids_current: Option<u64>,
    pub pids_max: Option<u64>,
    /// Bytes received and sent on every interface of its namespace but `lo`.
    pub net_rx_bytes: Option<u64>,
    pub net_tx_bytes: Option<u64>,
}

/// Received and sent bytes summed over the interfaces of a `/proc/net/dev` text, `lo` excepted.
pub fn parse_net_dev(text: &str) -> (u64, u64) {
    let mut rx = 0u64;
    let mut tx = 0u64;
    for line in text.lines().skip(2) {
        let Some((iface, counters)) = line.split_once(':') else {
            continue;
        };
        if iface.trim() == "lo" {
            continue;
        }
        let n: Vec<u64> = counters
            .split_whitespace()
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        if n.len() >= 9 {
            rx = rx.saturating_add(n[0]);
            tx = tx.saturating_add(n[8]);
        }
    }
    (rx, tx)
}

/// `MemTotal` of a `/proc/meminfo` text, in bytes.
pub fn parse_mem_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn online_cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// Samples a running container.
#[tracing::instrument(skip(engine, c), fields(container = %c.id))]
pub async fn sample(
    engine: &Arc<Engine>,
    c: &Arc<Container>,
) -> Result<ContainerStats, EngineError> {
    let st = c.state();
    let pid = match (st.status, st.pid) {
        (Status::Running | Status::Paused, Some(pid)) => pid,
        _ => {
            return Err(EngineError::Conflict(format!(
                "container {} is not running",
                c.name
            )))
        }
    };
    let e = engine.clone();
    let id = c.id.clone();
    let name = c.name.clone();
    let own_netns = c.spec.network != NetworkMode::Host;
    let labels = c.spec.labels.clone();
    blocking(move || {
        let cg = e
            .runtime
            .cgroup(&id)
            .stats()
            .map_err(|err| EngineError::Internal(format!("container {name}: stats: {err}")))?;
        let net = own_netns
            .then(|| std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok())
            .flatten()
            .map(|t| parse_net_dev(&t));
        let host_memory = std::fs::read_to_string(Path::new("/proc/meminfo"))
            .ok()
            .and_then(|t| parse_mem_total(&t));
        let read_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Ok(ContainerStats {
            id,
            name,
            project: labels.get(PROJECT).cloned(),
            service: labels.get(SERVICE).cloned(),
            read_ns,
            cpu_usage_ns: cg.cpu_usage_ns,
            online_cpus: online_cpus(),
            memory_usage_bytes: cg.memory_usage_bytes,
            memory_limit_bytes: cg.memory_limit_bytes.or(host_memory),
            pids_current: cg.pids_current,
            pids_max: cg.pids_max,
            net_rx_bytes: net.map(|n| n.0),
            net_tx_bytes: net.map(|n| n.1),
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_and_meminfo() {
        let dev = "Inter-|   Receive                                                |  Transmit\n \
            face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
            lo:     500       5    0    0    0     0          0         0      500       5    0    0    0     0       0          0\n  \
            eth0:    1200      10    0    0    0     0          0         0      800       8    0    0    0     0       0          0\n  \
            eth1:      34       1    0    0    0     0          0         0       66       1    0    0    0     0       0          0\n";
        assert_eq!(parse_net_dev(dev), (1234, 866));
        assert_eq!(parse_net_dev(""), (0, 0));
        let mem = "MemTotal:        8052676 kB\nMemFree:          123 kB\n";
        assert_eq!(parse_mem_total(mem), Some(8052676 * 1024));
        assert_eq!(parse_mem_total("nothing"), None);
    }
}
