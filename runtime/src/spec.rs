//! The container specification: what the engine decides and the in-container init carries out.
//!
//! It is written to `<container dir>/spec.json` when the container is created and read by the
//! init before it builds the root filesystem.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which network namespace the container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// A new namespace with only `lo` (the network layer may attach interfaces to it).
    #[default]
    Private,
    /// A new namespace that stays isolated: `lo` only.
    None,
    /// The host's namespace.
    Host,
}

/// What is mounted at a destination inside the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum MountKind {
    /// A host path (bind mounts and named volumes, which are directories under the root).
    Bind { source: PathBuf },
    /// A fresh tmpfs; `size` in bytes, `mode` octal.
    Tmpfs {
        size: Option<u64>,
        mode: Option<u32>,
    },
}

/// One mount inside the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub destination: String,
    #[serde(flatten)]
    pub kind: MountKind,
    #[serde(default)]
    pub read_only: bool,
}

/// A resource limit (`setrlimit`); values above the current hard limit are clamped to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

/// Log file settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    /// Rotate when the file grows past this many bytes.
    pub max_size: u64,
    /// Rotated files kept besides the current one.
    pub max_files: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            max_size: 10 * 1024 * 1024,
            max_files: 2,
        }
    }
}

/// Everything needed to build and run one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub id: String,
    pub name: String,
    pub hostname: String,
    /// Read-only image layer directories, bottom first.
    pub layers: Vec<PathBuf>,
    /// argv of the main process (entrypoint + command already resolved).
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    /// `user[:group]`, numeric or names from the image's /etc/passwd and /etc/group.
    pub user: String,
    #[serde(default)]
    pub network: NetworkMode,
    #[serde(default)]
    pub memory: Option<u64>,
    #[serde(default)]
    pub cpus: Option<f64>,
    #[serde(default)]
    pub pids_limit: Option<i64>,
    /// Signal name or number that `stop` sends first.
    pub stop_signal: String,
    /// Seconds between the stop signal and SIGKILL.
    pub stop_timeout: u64,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub mounts: Vec<Mount>,
    #[serde(default)]
    pub cap_add: Vec<String>,
    #[serde(default)]
    pub cap_drop: Vec<String>,
    #[serde(default)]
    pub rlimits: Vec<Rlimit>,
    #[serde(default)]
    pub sysctls: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub log: LogConfig,
    /// Image reference and id the container was created from (for `ls`/`inspect`).
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub image_id: String,
}
