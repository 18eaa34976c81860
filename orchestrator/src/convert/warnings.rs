//! Warnings: compose keys that have no Kubernetes equivalent, each naming the service and key.

use std::fmt;

use super::Ctx;
use crate::compose::{NetworkMode, Service};

/// Something the conversion could not express.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Warning {
    /// The service; `None` for top-level keys (`networks`, `volumes`, `configs`, `secrets`).
    pub service: Option<String>,
    /// The compose key (`ulimits.nofile`, `ports[0].host_ip`, `volumes.data.driver`).
    pub key: String,
    /// What happened to it.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.service {
            Some(s) => write!(f, "service {s}: {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// Warns about the service keys no mapping area handles.
pub(crate) fn unsupported(ctx: &mut Ctx<'_>, name: &str, svc: &Service) {
    if let Some(r) = svc.runtime.as_ref().filter(|r| *r != "runc") {
        ctx.warn(
            name,
            "runtime",
            format!("{r}: set a runtimeClassName by hand; ignored"),
        );
    }
    let term = |s: &&String| matches!(s.as_str(), "SIGTERM" | "TERM" | "15");
    if let Some(s) = svc.stop_signal.as_ref().filter(|s| !term(s)) {
        ctx.warn(
            name,
            "stop_signal",
            format!("{s}: pods always get SIGTERM; ignored"),
        );
    }
    for key in svc.ulimits.keys() {
        ctx.warn(
            name,
            format!("ulimits.{key}"),
            "pods have no per-container ulimits; ignored",
        );
    }
    if svc.deploy.restart_policy.is_some() {
        ctx.warn(
            name,
            "deploy.restart_policy",
            "controllers decide restarts; ignored",
        );
    }
    if svc.deploy.resources.limits.pids.is_some() {
        ctx.warn(
            name,
            "deploy.resources.limits.pids",
            "pid limits are a node setting; ignored",
        );
    }
    for (key, v) in &svc.environment {
        if v.is_none() {
            ctx.warn(
                name,
                format!("environment.{key}"),
                "declared without a value and unset while converting; left out of the pod",
            );
        }
    }
    for (net, sn) in &svc.networks {
        if let Some(ip) = sn.ipv4_address {
            ctx.warn(
                name,
                format!("networks.{net}.ipv4_address"),
                format!("{ip}: pod addresses are assigned by the cluster; ignored"),
            );
        }
    }
    match &svc.network_mode {
        Some(NetworkMode::None) => ctx.warn(
            name,
            "network_mode",
            "none: pods always get a network; all traffic is denied by policy instead",
        ),
        Some(NetworkMode::Service(s)) => ctx.warn(
            name,
            "network_mode",
            format!(
                "service:{s}: run it as a sidecar in one pod by hand; the pod gets its own network"
            ),
        ),
        Some(NetworkMode::Host) | None => {}
    }
    for (host, addrs) in &svc.extra_hosts {
        if addrs.iter().any(|a| a.parse::<std::net::IpAddr>().is_err()) {
            ctx.warn(
                name,
                format!("extra_hosts.{host}"),
                "only IP addresses become hostAliases; the rest is ignored",
            );
        }
    }
}
