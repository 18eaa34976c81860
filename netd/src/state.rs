//! netd's persisted state: networks, leases (container endpoints) and port reservations.
//!
//! - `networks.json` changes rarely and must survive a host crash (bridges and rules are
//!   re-created from it at boot): written to a temporary file, fsynced, renamed over the old
//!   one, and the directory fsynced.
//! - `endpoints.0`/`endpoints.1` (leases and published ports) change on every attach and
//!   detach: written as double-buffered slots (see [`crate::slots`]) without fsync. A slot
//!   write is all-or-nothing across an engine crash (the page cache outlives the process);
//!   across a host crash its content does not matter, because no container survives one and
//!   `reconcile` drops every entry anyway. This keeps ~15 ms of disk waits off every attach
//!   and detach here; endpoints found damaged after a host crash are read as none (with a
//!   warning).

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use ipnetwork::Ipv4Network;
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::slots::{self, Found};
use crate::types::Proto;

/// Version of the state files' layout.
const STATE_VERSION: u32 = 1;

/// The networks file under the root.
pub(crate) const NETWORKS_FILE: &str = "networks.json";

/// The endpoints (leases and ports) slot files under the root.
pub(crate) const ENDPOINTS_SLOTS: &str = "endpoints";

/// What a save must write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Only endpoints and ports changed.
    Endpoints,
    /// Networks changed too.
    All,
}

#[derive(Serialize)]
struct NetworksOut<'a> {
    version: u32,
    networks: &'a BTreeMap<String, NetworkRecord>,
}

#[derive(Deserialize)]
struct NetworksIn {
    version: u32,
    networks: BTreeMap<String, NetworkRecord>,
}

#[derive(Serialize)]
struct EndpointsOut<'a> {
    version: u32,
    endpoints: &'a [EndpointRecord],
    ports: &'a [PortRecord],
}

#[derive(Deserialize)]
struct EndpointsIn {
    version: u32,
    endpoints: Vec<EndpointRecord>,
    ports: Vec<PortRecord>,
}

/// Errors of loading and saving the state file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("read state file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("parse state file {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("state file {path} has version {found}, this netd understands {STATE_VERSION}")]
    Version { path: PathBuf, found: u32 },
    #[error("encode state for {path}")]
    Encode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("write state file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// One network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NetworkRecord {
    pub id: String,
    pub name: String,
    pub bridge: String,
    pub subnet: Ipv4Network,
    pub gateway: Ipv4Addr,
    pub internal: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Unix seconds.
    pub created: u64,
    /// Where the address allocator continues.
    pub cursor: Ipv4Addr,
}

/// One container endpoint on one network: the lease of its address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EndpointRecord {
    pub container_id: String,
    pub container_name: String,
    pub network_id: String,
    /// Interface name inside the container (`eth0`, ...).
    pub interface: String,
    /// Host-side veth name.
    pub host_veth: String,
    pub ip: Ipv4Addr,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub service: Option<String>,
    /// Whether DNS answers with this endpoint (healthy and running).
    pub dns_enabled: bool,
    /// The container's own upstream resolvers (see [`crate::EndpointSpec::dns_upstreams`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_upstreams: Vec<IpAddr>,
}

/// One published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PortRecord {
    pub container_id: String,
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub proto: Proto,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
}

/// Everything netd persists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct State {
    pub version: u32,
    /// By network name.
    pub networks: BTreeMap<String, NetworkRecord>,
    pub endpoints: Vec<EndpointRecord>,
    pub ports: Vec<PortRecord>,
    /// Generation of the endpoints slots last loaded or saved.
    pub generation: u64,
}

impl Default for State {
    fn default() -> Self {
        Self {
            version: STATE_VERSION,
            networks: BTreeMap::new(),
            endpoints: Vec::new(),
            ports: Vec::new(),
            generation: 0,
        }
    }
}

impl State {
    /// Loads the state from the directory `dir`; missing files are empty.
    pub(crate) fn load(dir: &Path) -> Result<Self, StateError> {
        let mut state = State::default();
        let path = dir.join(NETWORKS_FILE);
        if let Some(bytes) = read_optional(&path)? {
            let parsed: NetworksIn =
                serde_json::from_slice(&bytes).map_err(|source| StateError::Parse {
                    path: path.clone(),
                    source,
                })?;
            check_version(&path, parsed.version)?;
            state.networks = parsed.networks;
        }
        let path = dir.join(format!("{ENDPOINTS_SLOTS}.*"));
        let found = slots::read(dir, ENDPOINTS_SLOTS).map_err(|source| StateError::Read {
            path: path.clone(),
            source,
        })?;
        match found {
            Found::Nothing => {}
            // Only a host crash can damage both slots, and no container survived that.
            Found::Damaged => warn!(path = %path.display(), "damaged endpoints read as none"),
            Found::Body { generation, body } => {
                let parsed: EndpointsIn =
                    serde_json::from_slice(&body).map_err(|source| StateError::Parse {
                        path: path.clone(),
                        source,
                    })?;
                check_version(&path, parsed.version)?;
                state.endpoints = parsed.endpoints;
                state.ports = parsed.ports;
                state.generation = generation;
            }
        }
        Ok(state)
    }

    /// Writes the state into the directory `dir` (see the module docs for durability).
    pub(crate) fn save(&self, dir: &Path, scope: Scope) -> Result<(), StateError> {
        if scope == Scope::All {
            let path = dir.join(NETWORKS_FILE);
            let out = NetworksOut {
                version: STATE_VERSION,
                networks: &self.networks,
            };
            write_json(&path, &out)?;
        }
        let out = EndpointsOut {
            version: STATE_VERSION,
            endpoints: &self.endpoints,
            ports: &self.ports,
        };
        let path = dir.join(format!("{ENDPOINTS_SLOTS}.{}", self.generation % 2));
        let body = serde_json::to_vec(&out).map_err(|source| StateError::Encode {
            path: path.clone(),
            source,
        })?;
        slots::write(dir, ENDPOINTS_SLOTS, self.generation, &body)
            .map_err(|source| StateError::Write { path, source })
    }

    /// The network with this id.
    pub(crate) fn network_by_id(&self, id: &str) -> Option<&NetworkRecord> {
        self.networks.values().find(|n| n.id == id)
    }

    /// The endpoints of one container, in interface order.
    pub(crate) fn endpoints_of<'a>(
        &'a self,
        container_id: &'a str,
    ) -> impl Iterator<Item = &'a EndpointRecord> + 'a {
        self.endpoints
            .iter()
            .filter(move |e| e.container_id == container_id)
    }

    /// The addresses leased on one network.
    pub(crate) fn leased(&self, network_id: &str) -> HashSet<Ipv4Addr> {
        self.endpoints
            .iter()
            .filter(|e| e.network_id == network_id)
            .map(|e| e.ip)
            .collect()
    }

    /// Ids of every container with an endpoint or a port, without duplicates.
    pub(crate) fn containers(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .endpoints
            .iter()
            .map(|e| e.container_id.clone())
            .chain(self.ports.iter().map(|p| p.container_id.clone()))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Removes every endpoint and port of a container, returning what was removed.
    pub(crate) fn remove_container(
        &mut self,
        container_id: &str,
    ) -> (Vec<EndpointRecord>, Vec<PortRecord>) {
        let (gone, kept) = std::mem::take(&mut self.endpoints)
            .into_iter()
            .partition(|e| e.container_id == container_id);
        self.endpoints = kept;
        let (gone_ports, kept_ports) = std::mem::take(&mut self.ports)
            .into_iter()
            .partition(|p| p.container_id == container_id);
        self.ports = kept_ports;
        (gone, gone_ports)
    }
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StateError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

fn check_version(path: &Path, found: u32) -> Result<(), StateError> {
    if found == STATE_VERSION {
        Ok(())
    } else {
        Err(StateError::Version {
            path: path.to_owned(),
            found,
        })
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StateError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| StateError::Encode {
        path: path.to_owned(),
        source,
    })?;
    write_atomic(path, &bytes).map_err(|source| StateError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Writes `bytes` to `path` through a temporary file in the same directory: write, fsync,
/// rename over the target, fsync the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no parent"))?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    if let Err(e) = fs::rename(&tmp, path) {
        // Best effort: the temporary file is ours and useless now.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> State {
        let mut s = State::default();
        s.networks.insert(
            "front".into(),
            NetworkRecord {
                id: "a".repeat(64),
                name: "front".into(),
                bridge: "br-aaaaaaaaaaaa".into(),
                subnet: "10.89.0.0/24".parse().unwrap(),
                gateway: Ipv4Addr::new(10, 89, 0, 1),
                internal: false,
                labels: [("k".to_string(), "v".to_string())].into(),
                created: 1,
                cursor: Ipv4Addr::new(10, 89, 0, 3),
            },
        );
        for (c, ip) in [("c1", 2), ("c2", 3)] {
            s.endpoints.push(EndpointRecord {
                container_id: c.into(),
                container_name: format!("name-{c}"),
                network_id: "a".repeat(64),
                interface: "eth0".into(),
                host_veth: format!("vb{c}"),
                ip: Ipv4Addr::new(10, 89, 0, ip),
                aliases: vec!["alias".into()],
                service: Some("web".into()),
                dns_enabled: true,
                dns_upstreams: Vec::new(),
            });
        }
        s.ports.push(PortRecord {
            container_id: "c1".into(),
            host_ip: Ipv4Addr::UNSPECIFIED,
            host_port: 8080,
            proto: Proto::Tcp,
            container_ip: Ipv4Addr::new(10, 89, 0, 2),
            container_port: 80,
        });
        s
    }

    #[test]
    fn missing_files_are_empty_state() {
        let dir = tempfile::tempdir().unwrap();
        let s = State::load(dir.path()).unwrap();
        assert_eq!(s, State::default());
    }

    #[test]
    fn round_trip_and_atomic_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sample();
        s.generation = 1;
        s.save(dir.path(), Scope::All).unwrap();
        assert_eq!(State::load(dir.path()).unwrap(), s);
        // An endpoints-only save leaves the networks file alone.
        let mut s2 = s.clone();
        s2.ports.clear();
        s2.networks.clear();
        s2.generation = 2;
        s2.save(dir.path(), Scope::Endpoints).unwrap();
        let loaded = State::load(dir.path()).unwrap();
        assert_eq!(loaded.networks, s.networks);
        assert!(loaded.ports.is_empty());
        assert_eq!(loaded.generation, 2);
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, vec!["endpoints.0", "endpoints.1", NETWORKS_FILE]);
    }

    #[test]
    fn corrupt_or_future_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sample();
        s.generation = 1;
        s.save(dir.path(), Scope::All).unwrap();
        // Damaged endpoints (host crash) read as none; networks survive.
        fs::write(dir.path().join("endpoints.1"), b"{\"vers").unwrap();
        let loaded = State::load(dir.path()).unwrap();
        assert!(loaded.endpoints.is_empty());
        assert_eq!(loaded.networks.len(), 1);
        // A corrupt networks file is an error naming it.
        fs::write(dir.path().join(NETWORKS_FILE), b"{not json").unwrap();
        let err = State::load(dir.path()).unwrap_err();
        assert!(matches!(err, StateError::Parse { .. }));
        assert!(err.to_string().contains(NETWORKS_FILE));
        fs::write(
            dir.path().join(NETWORKS_FILE),
            br#"{"version": 99, "networks": {}}"#,
        )
        .unwrap();
        assert!(matches!(
            State::load(dir.path()),
            Err(StateError::Version { found: 99, .. })
        ));
    }

    #[test]
    fn queries_and_removal() {
        let mut s = sample();
        let id = "a".repeat(64);
        assert_eq!(s.network_by_id(&id).unwrap().name, "front");
        assert_eq!(s.leased(&id).len(), 2);
        assert_eq!(s.containers(), vec!["c1", "c2"]);
        assert_eq!(s.endpoints_of("c1").count(), 1);
        let (eps, ports) = s.remove_container("c1");
        assert_eq!((eps.len(), ports.len()), (1, 1));
        assert_eq!(s.containers(), vec!["c2"]);
        let (eps, ports) = s.remove_container("c1");
        assert!(eps.is_empty() && ports.is_empty());
    }
}
