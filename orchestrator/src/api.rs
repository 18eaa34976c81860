//! The engine's HTTP + JSON API types, shared by the engine and the CLI.
//!
//! Streams (logs, attach, exec) use Docker's framing: an 8-byte header (stream byte, three zero
//! bytes, big-endian u32 length) before each chunk; stream 1 is stdout, 2 stderr, and berth adds
//! stream 3 whose payload is the decimal exit code, sent last.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use runtime::spec::{ContainerSpec, Mount, MountKind, Rlimit};

/// Stream ids of the framing.
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const EXIT: u8 = 3;

/// Encodes one frame.
pub fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + data.len());
    out.push(stream);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// Splits complete frames off the front of `buf`.
pub fn take_frames(buf: &mut Vec<u8>) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        if buf.len() < 8 {
            break;
        }
        let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
        if buf.len() < 8 + len {
            break;
        }
        let stream = buf[0];
        let data = buf[8..8 + len].to_vec();
        buf.drain(..8 + len);
        out.push((stream, data));
    }
    out
}

/// An error answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub message: String,
}

/// `POST /containers/create`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CreateContainer {
    pub image: String,
    pub name: Option<String>,
    pub cmd: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    pub pids_limit: Option<i64>,
    /// `none`, `host`, a network name, or empty for the default network.
    pub network: String,
    /// Networks to join (aliases, static address, service DNS name); the first one carries the
    /// default route. `container_name` is filled in by the engine.
    pub networks: Vec<netd::EndpointSpec>,
    /// Published ports.
    pub ports: Vec<netd::PortSpec>,
    /// Resolvers for names the network does not own (`--dns`).
    pub dns: Vec<std::net::IpAddr>,
    /// resolv.conf search domains (`--dns-search`).
    pub dns_search: Vec<String>,
    /// resolv.conf options (`--dns-option`).
    pub dns_options: Vec<String>,
    /// Extra `/etc/hosts` lines as `HOST:IP` (`--add-host`; `host-gateway` allowed).
    pub extra_hosts: Vec<String>,
    pub auto_remove: bool,
    pub labels: BTreeMap<String, String>,
    pub mounts: Vec<Mount>,
    pub read_only: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<u64>,
    pub rlimits: Vec<Rlimit>,
    pub sysctls: BTreeMap<String, String>,
    /// `no`, `always`, `on-failure[:N]` or `unless-stopped`.
    pub restart: String,
    pub healthcheck: Option<HealthConfig>,
}

/// A health check as the engine runs it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthConfig {
    /// argv run inside the container (`CMD-SHELL x` arrives as `["/bin/sh", "-c", "x"]`).
    pub test: Vec<String>,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub retries: u32,
    pub start_period_ms: u64,
    pub start_interval_ms: u64,
}

/// Health of a container with a health check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Health {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    pub failing_streak: u32,
    /// Output of the last check.
    pub last_output: String,
    pub last_exit_code: Option<i32>,
}

/// Answer to a create.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Created {
    pub id: String,
    pub name: String,
}

/// Lifecycle status of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Paused,
    Exited,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Exited => "exited",
        })
    }
}

/// The state part of `inspect`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub status: Status,
    pub pid: Option<i32>,
    /// Start time of the init (clock ticks since boot), to tell it from a reused pid.
    #[serde(default)]
    pub pid_start_time: Option<u64>,
    pub exit_code: Option<i32>,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub auto_remove: bool,
    #[serde(default)]
    pub restart_count: u32,
    /// Restart policy (`no`, `always`, `on-failure[:N]`, `unless-stopped`).
    #[serde(default)]
    pub restart: String,
    #[serde(default)]
    pub healthcheck: Option<HealthConfig>,
    #[serde(default)]
    pub health: Option<Health>,
    /// Stopped by the user (`stop`, `kill`): restart policies leave it alone.
    #[serde(default)]
    pub stopped_by_user: bool,
}

/// `GET /containers/{id}/json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub image: String,
    pub state: ContainerState,
    pub config: ContainerSpec,
    /// Networks, addresses and published ports (`inspect` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkSettings>,
}

/// The `network` section of `inspect`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkSettings {
    /// `none`, `host`, or `bridge` (its own namespace joined to `networks`).
    pub mode: String,
    /// The networks it joins, as asked.
    pub networks: Vec<netd::EndpointSpec>,
    /// The ports it publishes, as asked.
    pub ports: Vec<netd::PortSpec>,
    /// Its interfaces while it runs: network, address, MAC.
    pub endpoints: Vec<netd::EndpointInfo>,
    /// Its published ports while it runs, with the host ports in force.
    pub published: Vec<netd::PublishedPort>,
}

/// `POST /containers/{id}/exec`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecOptions {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

/// `POST /images/import`: a rootfs tarball on the engine's host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportImage {
    pub path: String,
    pub reference: String,
}

/// One image in `GET /images/json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageSummary {
    pub id: String,
    pub references: Vec<String>,
    pub created: String,
    pub size: u64,
}

/// `POST /images/save`: write images as one archive to a file on the engine's host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SaveImages {
    /// Absolute path of the archive to write.
    pub path: String,
    /// `oci` or `docker`.
    pub format: String,
    pub references: Vec<String>,
}

/// `POST /images/load`: an OCI or Docker archive on the engine's host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadImages {
    /// Absolute path of the archive.
    pub path: String,
}

/// `POST /images/login`: credentials for one registry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegistryLogin {
    /// `host[:port]`.
    pub registry: String,
    pub username: String,
    pub password: String,
}

/// `POST /images/build`: a Dockerfile build from a context directory on the engine's host.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BuildImage {
    /// Absolute path of the build context.
    pub context: String,
    /// The Dockerfile: absolute, or relative to the context (default `Dockerfile`).
    pub dockerfile: Option<String>,
    /// References for the result (`name:tag`).
    pub tags: Vec<String>,
    pub build_args: std::collections::BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
}
