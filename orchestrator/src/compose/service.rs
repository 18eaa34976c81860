//! The canonical service model (long form of every key) and its configuration hash.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use super::model::{is_false, Extensions};
use super::units::{option_duration, option_mode};

/// A service in canonical long form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// How to build the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    /// Capabilities to add (as written, for example `NET_ADMIN`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// Capabilities to drop.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// Command (string form split like a shell does); `None` keeps the image's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Configs mounted into the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<FileRef>,
    /// Fixed container name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// Dependencies by service name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub depends_on: BTreeMap<String, DependsOn>,
    /// Replicas, resource limits and restart policy.
    #[serde(default, skip_serializing_if = "Deploy::is_default")]
    pub deploy: Deploy,
    /// DNS servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<IpAddr>,
    /// resolv.conf `options` (`ndots:2`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_opt: Vec<String>,
    /// resolv.conf search domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    /// Entrypoint; `None` keeps the image's, `Some([])` clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Env files read into `environment` (kept for reference).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_file: Vec<EnvFile>,
    /// Environment; `None` means "declared but not set anywhere".
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, Option<String>>,
    /// Exposed ports (`5432`, `8000-8010/udp`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose: Vec<String>,
    /// Extra /etc/hosts entries: host name to addresses (or `host-gateway`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_hosts: BTreeMap<String, Vec<String>>,
    /// Health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// Host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Image reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Run an init process as PID 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Network mode instead of project networks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<NetworkMode>,
    /// Project networks the service joins, by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, ServiceNetwork>,
    /// Platform (`linux/amd64`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Published ports, one entry per container port.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// Profiles the service belongs to; empty means always enabled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// Read-only root filesystem.
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    /// Restart policy.
    #[serde(default, skip_serializing_if = "RestartPolicy::is_no")]
    pub restart: RestartPolicy,
    /// OCI runtime name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Secrets mounted into the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<FileRef>,
    /// Keep stdin open.
    #[serde(default, skip_serializing_if = "is_false")]
    pub stdin_open: bool,
    /// Time to wait after the stop signal before killing.
    #[serde(
        default,
        with = "option_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub stop_grace_period: Option<Duration>,
    /// Stop signal (`SIGTERM`, `SIGINT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Namespaced sysctls.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    /// tmpfs mounts (`/run`, `/tmp:size=64m`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    /// Allocate a terminal.
    #[serde(default, skip_serializing_if = "is_false")]
    pub tty: bool,
    /// Resource limits by name (`nofile`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ulimits: BTreeMap<String, Ulimit>,
    /// User (`uid[:gid]` or name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Mounts in long form.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Mount>,
    /// Working directory inside the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// `x-*` extensions.
    #[serde(flatten)]
    pub extensions: Extensions,
}

impl Service {
    /// Stable sha256 (hex) of the service's configuration, ignoring what does not require
    /// recreating its containers: replicas (and `scale`), `depends_on`, `build` and `profiles`,
    /// as Compose does. The reconciler recreates containers whose recorded hash differs.
    pub fn config_hash(&self) -> String {
        let mut s = self.clone();
        s.deploy.replicas = 1;
        s.depends_on.clear();
        s.build = None;
        s.profiles.clear();
        let mut hasher = Sha256::new();
        match serde_json::to_vec(&s) {
            Ok(bytes) => hasher.update(&bytes),
            // Serialization only fails on non-string keys inside x-* extensions; hash their
            // debug form instead so the hash stays defined and stable.
            Err(_) => hasher.update(format!("{s:?}").as_bytes()),
        }
        hex::encode(hasher.finalize())
    }

    /// The number of containers to run.
    pub fn replicas(&self) -> u32 {
        self.deploy.replicas
    }
}

/// Build configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Build {
    /// Build context: an absolute directory or a URL.
    pub context: String,
    /// Dockerfile, relative to the context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// Build arguments; `None` takes the value from the environment at build time.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, Option<String>>,
    /// Build stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A secret or config mounted into a service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// Top-level secret or config key.
    pub source: String,
    /// Path in the container (defaults resolved: `/run/secrets/<source>`, `/<source>`).
    pub target: String,
    /// Owner uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Owner gid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    /// Permission bits.
    #[serde(default, with = "option_mode", skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

/// When a dependency counts as ready.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The dependency's containers are running.
    #[default]
    ServiceStarted,
    /// The dependency's health check passes.
    ServiceHealthy,
    /// The dependency ran to completion with exit code 0.
    ServiceCompletedSuccessfully,
}

impl Condition {
    /// The compose spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::ServiceStarted => "service_started",
            Condition::ServiceHealthy => "service_healthy",
            Condition::ServiceCompletedSuccessfully => "service_completed_successfully",
        }
    }
}

fn default_true() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// One `depends_on` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependsOn {
    /// Readiness condition.
    pub condition: Condition,
    /// Restart this service when the dependency is restarted.
    #[serde(default, skip_serializing_if = "is_false")]
    pub restart: bool,
    /// Fail when the dependency is missing (else only warn).
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub required: bool,
}

impl Default for DependsOn {
    fn default() -> Self {
        Self {
            condition: Condition::ServiceStarted,
            restart: false,
            required: true,
        }
    }
}

/// Replicas, resources and restart policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deploy {
    /// Number of containers (from `deploy.replicas` or `scale`; default 1).
    #[serde(default = "default_replicas")]
    pub replicas: u32,
    /// Resource limits.
    #[serde(default, skip_serializing_if = "Resources::is_empty")]
    pub resources: Resources,
    /// Restart policy in deploy form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<DeployRestartPolicy>,
}

fn default_replicas() -> u32 {
    1
}

impl Default for Deploy {
    fn default() -> Self {
        Self {
            replicas: 1,
            resources: Resources::default(),
            restart_policy: None,
        }
    }
}

impl Deploy {
    /// Whether this is the default (one replica, no limits, no policy).
    pub fn is_default(&self) -> bool {
        *self == Deploy::default()
    }
}

/// Resource section of deploy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// Limits (also from `mem_limit`, `cpus`, `pids_limit`).
    #[serde(default)]
    pub limits: Limits,
}

impl Resources {
    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        self.limits == Limits::default()
    }
}

/// Resource limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// CPUs (fractional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Memory in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// Maximum number of processes (-1: unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<i64>,
}

/// `deploy.restart_policy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeployRestartPolicy {
    /// `none`, `on-failure` or `any`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Delay between restarts.
    #[serde(
        default,
        with = "option_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub delay: Option<Duration>,
    /// Maximum attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u64>,
    /// Time to decide whether a restart succeeded.
    #[serde(
        default,
        with = "option_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub window: Option<Duration>,
}

/// An env file read into the environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvFile {
    /// Absolute path.
    pub path: PathBuf,
    /// Whether a missing file is an error.
    #[serde(default = "default_true")]
    pub required: bool,
}

/// A health check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]` or `["NONE"]` (string form becomes CMD-SHELL).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    /// Time between checks.
    #[serde(
        default,
        with = "option_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub interval: Option<Duration>,
    /// Time one check may take.
    #[serde(
        default,
        with = "option_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// Consecutive failures before unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
    /// Grace period after start during which failures do not count.
    #[serde(
        default,
        with = "option_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub start_period: Option<Duration>,
    /// Time between checks during the start period.
    #[serde(
        default,
        with = "option_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub start_interval: Option<Duration>,
    /// Disable the image's health check.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable: bool,
}

impl Healthcheck {
    /// Whether the check is turned off (`disable: true` or `test: [NONE]`).
    pub fn is_disabled(&self) -> bool {
        self.disable || self.test.first().is_some_and(|t| t == "NONE")
    }
}

/// `network_mode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkMode {
    /// No network.
    None,
    /// The host's network namespace.
    Host,
    /// Another service's network namespace (`service:NAME`).
    Service(String),
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetworkMode::None => f.write_str("none"),
            NetworkMode::Host => f.write_str("host"),
            NetworkMode::Service(s) => write!(f, "service:{s}"),
        }
    }
}

impl FromStr for NetworkMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(NetworkMode::None),
            "host" => Ok(NetworkMode::Host),
            _ => match s.strip_prefix("service:") {
                Some(name) if !name.is_empty() => Ok(NetworkMode::Service(name.to_string())),
                _ => Err(format!(
                    "expected \"none\", \"host\" or \"service:NAME\", found {s:?}"
                )),
            },
        }
    }
}

/// A service's attachment to a project network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceNetwork {
    /// Extra DNS names on this network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Fixed IPv4 address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<Ipv4Addr>,
}

/// Transport protocol of a port.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    #[default]
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// An inclusive range of host ports (`start == end` for a single port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    /// First port.
    pub start: u16,
    /// Last port.
    pub end: u16,
}

impl PortRange {
    /// A single port.
    pub fn single(port: u16) -> Self {
        Self {
            start: port,
            end: port,
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

impl FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let port = |p: &str| -> Result<u16, String> {
            match p.parse::<u32>() {
                Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
                Ok(n) => Err(format!("port {n} is out of range 1-65535")),
                Err(_) => Err(format!("expected a port number, found {p:?}")),
            }
        };
        let (start, end) = match s.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => (port(s)?, port(s)?),
        };
        if start > end {
            return Err(format!("port range {s:?} ends before it starts"));
        }
        Ok(Self { start, end })
    }
}

impl Serialize for PortRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u16),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(PortRange::single(n)),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A published or exposed container port in long form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Port {
    /// Container port.
    pub target: u16,
    /// Host port or range; `None` lets the engine pick one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<PortRange>,
    /// Host address to bind; `None` means all addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<IpAddr>,
    /// Protocol.
    #[serde(default)]
    pub protocol: Protocol,
}

/// Kind of mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    /// A host path.
    Bind,
    /// A named or anonymous volume.
    Volume,
    /// A tmpfs.
    Tmpfs,
}

/// A mount in long form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Kind.
    #[serde(rename = "type")]
    pub kind: MountType,
    /// Bind: absolute host path; volume: top-level volume key (`None` for anonymous volumes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Absolute path in the container.
    pub target: String,
    /// Mount read-only.
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    /// Bind options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<BindOptions>,
    /// Volume options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeOptions>,
    /// tmpfs options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<TmpfsOptions>,
}

/// Options of a bind mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindOptions {
    /// Create the host path when missing (short syntax: true).
    #[serde(default)]
    pub create_host_path: bool,
}

/// Options of a volume mount.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeOptions {
    /// Do not copy the image's content into a new volume.
    #[serde(default, skip_serializing_if = "is_false")]
    pub nocopy: bool,
}

/// Options of a tmpfs mount.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TmpfsOptions {
    /// Size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Permission bits.
    #[serde(default, with = "option_mode", skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

/// A ulimit's soft and hard values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// Soft limit.
    pub soft: i64,
    /// Hard limit.
    pub hard: i64,
}

/// The service's restart policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Never restart.
    #[default]
    No,
    /// Always restart.
    Always,
    /// Restart on non-zero exit, at most `max_retries` times when set.
    OnFailure {
        /// Retry limit.
        max_retries: Option<u32>,
    },
    /// Restart unless stopped by the user.
    UnlessStopped,
}

impl RestartPolicy {
    /// Whether this is `no`.
    pub fn is_no(&self) -> bool {
        *self == RestartPolicy::No
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartPolicy::No => f.write_str("no"),
            RestartPolicy::Always => f.write_str("always"),
            RestartPolicy::OnFailure { max_retries: None } => f.write_str("on-failure"),
            RestartPolicy::OnFailure {
                max_retries: Some(n),
            } => write!(f, "on-failure:{n}"),
            RestartPolicy::UnlessStopped => f.write_str("unless-stopped"),
        }
    }
}

impl FromStr for RestartPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let expected = || {
            format!(
                "expected \"no\", \"always\", \"on-failure\", \"on-failure:N\" or \
                 \"unless-stopped\", found {s:?}"
            )
        };
        match s {
            "no" => Ok(RestartPolicy::No),
            "always" => Ok(RestartPolicy::Always),
            "on-failure" => Ok(RestartPolicy::OnFailure { max_retries: None }),
            "unless-stopped" => Ok(RestartPolicy::UnlessStopped),
            _ => match s.strip_prefix("on-failure:") {
                Some(n) => n
                    .parse()
                    .map(|n| RestartPolicy::OnFailure {
                        max_retries: Some(n),
                    })
                    .map_err(|_| expected()),
                None => Err(expected()),
            },
        }
    }
}

macro_rules! serde_via_string {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d)?
                    .parse()
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_via_string!(RestartPolicy);
serde_via_string!(NetworkMode);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_round_trip_their_text() {
        for text in [
            "no",
            "always",
            "on-failure",
            "on-failure:3",
            "unless-stopped",
        ] {
            let p: RestartPolicy = text.parse().unwrap();
            assert_eq!(p.to_string(), text);
        }
        let err = "sometimes".parse::<RestartPolicy>().unwrap_err();
        assert!(err.starts_with("expected \"no\""), "{err}");
        assert!("on-failure:x".parse::<RestartPolicy>().is_err());
    }

    #[test]
    fn port_ranges_parse_and_check_bounds() {
        assert_eq!("80".parse::<PortRange>().unwrap(), PortRange::single(80));
        let r: PortRange = "8000-8010".parse().unwrap();
        assert_eq!((r.start, r.end), (8000, 8010));
        assert_eq!(r.to_string(), "8000-8010");
        assert_eq!(
            "70000".parse::<PortRange>().unwrap_err(),
            "port 70000 is out of range 1-65535"
        );
        assert!("0".parse::<PortRange>().is_err());
        assert!("9-1"
            .parse::<PortRange>()
            .unwrap_err()
            .contains("ends before"));
    }

    #[test]
    fn config_hash_ignores_replicas_deps_build_and_profiles() {
        let mut a = Service {
            image: Some("nginx".into()),
            ..Service::default()
        };
        let base = a.config_hash();
        assert_eq!(base.len(), 64);
        a.deploy.replicas = 3;
        a.depends_on.insert("db".into(), DependsOn::default());
        a.profiles.push("dev".into());
        a.build = Some(Build {
            context: "/src".into(),
            ..Build::default()
        });
        assert_eq!(a.config_hash(), base);
        a.environment.insert("A".into(), Some("1".into()));
        assert_ne!(a.config_hash(), base);
    }

    #[test]
    fn network_modes_parse() {
        assert_eq!("host".parse::<NetworkMode>().unwrap(), NetworkMode::Host);
        assert_eq!(
            "service:db".parse::<NetworkMode>().unwrap(),
            NetworkMode::Service("db".into())
        );
        assert!("service:".parse::<NetworkMode>().is_err());
    }
}
