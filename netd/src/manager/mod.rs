//! [`Netd`]: the network manager the engine holds. One per berth root; every mutation goes
//! through one async lock so state, links, rules and DNS records change together, and every
//! mutation that fails half-way is rolled back.
//!
//! - `networks`: create, remove, list, prune.
//! - `endpoints`: attach, detach, DNS health, published ports.
//! - here: opening (restoring bridges, rules, DNS servers and port reservations after an
//!   engine restart), reconciling with the containers that still live, shutdown.

mod endpoints;
mod networks;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::Mutex;
use tracing::{info, instrument, warn};

use crate::config::NetdConfig;
use crate::dns::registry::{self, Entry, Registry};
use crate::dns::{DnsServer, Responder};
use crate::error::NetdError;
use crate::files;
use crate::firewall::{Firewall, FwNetwork, FwPort};
use crate::names;
use crate::netlink::{Nl, Reaper};
use crate::ports::{self, Reservation};
use crate::state::{EndpointRecord, NetworkRecord, Scope, State};
use crate::sysctl::Sysctl;

/// Port of the embedded DNS servers.
const DNS_PORT: u16 = 53;

/// Mutable state behind the lock.
struct Inner {
    state: State,
    /// Running DNS servers by network id.
    dns: HashMap<String, DnsServer>,
    /// Held host ports by container id.
    reservations: HashMap<String, Vec<Reservation>>,
}

/// The network manager of one berth root.
pub struct Netd {
    root: PathBuf,
    cfg: NetdConfig,
    root_id: String,
    nl: Nl,
    reaper: Reaper,
    sysctl: Sysctl,
    firewall: Firewall,
    registry: Arc<Registry>,
    upstreams: Arc<Vec<SocketAddr>>,
    search: Arc<Vec<String>>,
    host_resolv: String,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Netd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netd")
            .field("root", &self.root)
            .field("root_id", &self.root_id)
            .finish_non_exhaustive()
    }
}

impl Netd {
    /// Opens the root `root` (`<berth-root>/net`): loads the persisted state, re-creates
    /// missing bridges, addresses and firewall rules of existing networks, removes bridges this
    /// root made but never recorded, restarts the DNS servers and re-reserves published ports.
    /// Containers keep running across this; call [`Netd::reconcile`] next with the containers
    /// that still exist.
    #[instrument(skip(cfg), fields(root = %root.display()))]
    pub async fn open(root: &Path, cfg: NetdConfig) -> Result<Netd, NetdError> {
        let root_id = cfg.validate(root).map_err(NetdError::Config)?;
        std::fs::create_dir_all(root).map_err(|source| NetdError::Root {
            path: root.to_owned(),
            source,
        })?;
        let state = State::load(root)?;
        let host_resolv = std::fs::read_to_string(&cfg.host_resolv_conf).unwrap_or_default();
        let upstreams = cfg
            .dns_upstreams
            .clone()
            .unwrap_or_else(|| files::nameservers(&host_resolv));
        let netd = Netd {
            root: root.to_owned(),
            sysctl: Sysctl::new(&cfg.proc_root),
            firewall: Firewall::new(&root_id),
            nl: Nl::connect()?,
            reaper: Reaper::start().await?,
            registry: Arc::new(Registry::default()),
            upstreams: Arc::new(upstreams),
            search: Arc::new(files::search_domains(&host_resolv)),
            host_resolv,
            root_id,
            cfg,
            inner: Mutex::new(Inner {
                state,
                dns: HashMap::new(),
                reservations: HashMap::new(),
            }),
        };
        netd.restore().await?;
        Ok(netd)
    }

    async fn restore(&self) -> Result<(), NetdError> {
        let mut inner = self.inner.lock().await;
        // Veths retired before a crash.
        self.reaper.flush().await;
        let networks: Vec<NetworkRecord> = inner.state.networks.values().cloned().collect();
        for net in &networks {
            self.ensure_bridge(net).await?;
        }
        self.sweep_orphan_bridges(&inner.state).await?;
        self.apply_sysctls(&inner.state)?;
        self.apply_firewall(&inner.state, true).await?;
        self.registry
            .replace_all(inner.state.endpoints.iter().map(dns_entry).collect());
        for net in &networks {
            match self.start_dns(net) {
                Ok(server) => {
                    inner.dns.insert(net.id.clone(), server);
                }
                Err(e) => warn!(network = %net.name, error = %e, "dns server not started"),
            }
        }
        let ports = inner.state.ports.clone();
        for p in ports {
            match ports::reserve(p.host_ip, p.host_port, p.proto) {
                Ok(r) => inner
                    .reservations
                    .entry(p.container_id.clone())
                    .or_default()
                    .push(r),
                // The DNAT rule still forwards the port; only the guard against other programs
                // binding it is missing.
                Err(e) => {
                    warn!(container = %p.container_id, error = %e, "published port not re-reserved")
                }
            }
        }
        info!(
            networks = networks.len(),
            endpoints = inner.state.endpoints.len(),
            "netd opened"
        );
        Ok(())
    }

    /// Detaches every container not in `live_container_ids` (it died while the engine was
    /// away) and deletes veths on this root's bridges that belong to no recorded endpoint.
    /// Returns the ids of the containers it detached.
    #[instrument(skip(self, live_container_ids))]
    pub async fn reconcile(&self, live_container_ids: &[String]) -> Result<Vec<String>, NetdError> {
        let live: HashSet<&str> = live_container_ids.iter().map(String::as_str).collect();
        let gone: Vec<String> = {
            let inner = self.inner.lock().await;
            inner
                .state
                .containers()
                .into_iter()
                .filter(|c| !live.contains(c.as_str()))
                .collect()
        };
        let mut errors = Vec::new();
        for id in &gone {
            if let Err(e) = self.detach(id).await {
                errors.push(e);
            }
        }
        self.reaper.flush().await;
        if let Err(e) = self.sweep_stale_veths().await {
            errors.push(e);
        }
        NetdError::collect("reconcile containers", errors)?;
        Ok(gone)
    }

    /// Stops the DNS servers and releases the port reservations. Bridges, addresses and rules
    /// stay (containers keep running); the next [`Netd::open`] picks them up again.
    #[instrument(skip(self))]
    pub async fn shutdown(&self) {
        let mut inner = self.inner.lock().await;
        self.reaper.flush().await;
        for (_, server) in inner.dns.drain() {
            server.stop().await;
        }
        inner.reservations.clear();
        info!("netd shut down");
    }

    /// Loads this root's firewall rules and the Docker coexistence chain again, for when
    /// something else flushed them (`nft flush ruleset`, a firewall reload) or Docker started
    /// after the networks were made. Cheap enough to call every few seconds.
    #[instrument(skip(self))]
    pub async fn refresh_firewall(&self) -> Result<(), NetdError> {
        let inner = self.inner.lock().await;
        self.apply_firewall(&inner.state, true).await
    }

    /// The root id in force (names the firewall table `berth-ID` and chain `BERTH-ID`).
    pub fn root_id(&self) -> &str {
        &self.root_id
    }

    /// The nftables table (family `ip`) holding this root's rules.
    pub fn firewall_table(&self) -> &str {
        self.firewall.table()
    }

    /// The iptables chain jumped to from Docker's `DOCKER-USER` while Docker is present.
    pub fn docker_chain(&self) -> &str {
        self.firewall.docker_chain()
    }

    /// Saves the state; `Scope::All` (networks changed) waits for the disk.
    async fn persist(&self, state: &mut State, scope: Scope) -> Result<(), NetdError> {
        state.generation += 1;
        if scope == Scope::Endpoints {
            // No fsync, no rename: an in-place write of a few kilobytes (~20 µs).
            return Ok(state.save(&self.root, scope)?);
        }
        let state = state.clone();
        let root = self.root.clone();
        let saved = tokio::task::spawn_blocking(move || state.save(&root, scope)).await;
        match saved {
            Ok(r) => Ok(r?),
            Err(e) => Err(NetdError::State(crate::state::StateError::Write {
                path: self.root.clone(),
                source: std::io::Error::other(e.to_string()),
            })),
        }
    }

    /// Creates the bridge of `net` if it is missing, and makes sure it is up with its address.
    async fn ensure_bridge(&self, net: &NetworkRecord) -> Result<u32, NetdError> {
        let index = match self.nl.link_index(&net.bridge).await? {
            Some(i) => i,
            None => {
                warn!(network = %net.name, bridge = %net.bridge, "bridge missing, re-creating");
                let mac = names::mac_for(net.gateway);
                let alias = names::bridge_alias(&self.root_id, &net.id);
                self.nl.create_bridge(&net.bridge, mac, &alias).await?
            }
        };
        self.nl
            .add_address(index, &net.bridge, net.gateway, net.subnet.prefix())
            .await?;
        self.nl.set_up(index, &net.bridge).await?;
        Ok(index)
    }

    /// Deletes bridges carrying this root's alias that no network records.
    async fn sweep_orphan_bridges(&self, state: &State) -> Result<(), NetdError> {
        let prefix = names::bridge_alias_prefix(&self.root_id);
        let known: HashSet<&str> = state.networks.values().map(|n| n.bridge.as_str()).collect();
        for link in self.nl.links().await? {
            let ours = link
                .alias
                .as_deref()
                .is_some_and(|a| a.starts_with(&prefix));
            if link.is_bridge && ours && !known.contains(link.name.as_str()) {
                warn!(bridge = %link.name, "deleting unrecorded bridge of this root");
                self.nl.delete_link(&link.name).await?;
            }
        }
        Ok(())
    }

    /// Deletes links enslaved to this root's bridges that no endpoint records.
    async fn sweep_stale_veths(&self) -> Result<(), NetdError> {
        let inner = self.inner.lock().await;
        let links = self.nl.links().await?;
        let bridges: HashSet<&str> = inner
            .state
            .networks
            .values()
            .map(|n| n.bridge.as_str())
            .collect();
        let bridge_indexes: HashSet<u32> = links
            .iter()
            .filter(|l| bridges.contains(l.name.as_str()))
            .map(|l| l.index)
            .collect();
        let recorded: HashSet<&str> = inner
            .state
            .endpoints
            .iter()
            .map(|e| e.host_veth.as_str())
            .collect();
        let mut errors = Vec::new();
        for link in &links {
            let on_ours = link.master.is_some_and(|m| bridge_indexes.contains(&m));
            if on_ours && !recorded.contains(link.name.as_str()) {
                info!(veth = %link.name, "deleting stale veth");
                if let Err(e) = self.nl.delete_link(&link.name).await {
                    errors.push(e.into());
                }
            }
        }
        NetdError::collect("sweep stale veths", errors)
    }

    /// IPv4 forwarding once a network with egress exists; per bridge: `route_localnet` for
    /// published loopback ports, no forwarding out of internal bridges, no IPv6 on bridges
    /// (networks are IPv4; a host-side IPv6 address would be a path around isolation).
    fn apply_sysctls(&self, state: &State) -> Result<(), NetdError> {
        if state.networks.values().any(|n| !n.internal) {
            self.sysctl.ensure("net/ipv4/ip_forward", "1")?;
        }
        for net in state.networks.values() {
            let b = &net.bridge;
            if net.internal {
                // Re-asserted after every change: enabling ip_forward resets every interface.
                self.sysctl
                    .ensure(&format!("net/ipv4/conf/{b}/forwarding"), "0")?;
            } else {
                self.sysctl
                    .ensure(&format!("net/ipv4/conf/{b}/route_localnet"), "1")?;
            }
            self.sysctl
                .ensure_if_present(&format!("net/ipv6/conf/{b}/disable_ipv6"), "1")?;
        }
        Ok(())
    }

    /// Loads the nftables table for `state`; with `docker`, also the Docker coexistence chain
    /// (which only changes with the set of bridges).
    async fn apply_firewall(&self, state: &State, docker: bool) -> Result<(), NetdError> {
        let nets: Vec<FwNetwork> = state
            .networks
            .values()
            .map(|n| FwNetwork {
                bridge: n.bridge.clone(),
                subnet: n.subnet,
                gateway: n.gateway,
                internal: n.internal,
            })
            .collect();
        let ports: Vec<FwPort> = state
            .ports
            .iter()
            .map(|p| FwPort {
                host_ip: p.host_ip,
                host_port: p.host_port,
                proto: p.proto,
                container_ip: p.container_ip,
                container_port: p.container_port,
            })
            .collect();
        self.firewall.apply_rules(&nets, &ports).await?;
        if docker {
            let bridges: Vec<String> = nets.into_iter().map(|n| n.bridge).collect();
            self.firewall.apply_docker(&bridges).await?;
        }
        Ok(())
    }

    fn start_dns(&self, net: &NetworkRecord) -> Result<DnsServer, NetdError> {
        let responder = Responder {
            network_id: net.id.clone(),
            internal: net.internal,
            search: self.search.clone(),
        };
        Ok(DnsServer::start(
            self.registry.clone(),
            responder,
            self.upstreams.clone(),
            net.gateway,
            DNS_PORT,
        )?)
    }
}

/// The DNS entry of an endpoint: container name first (the reverse-lookup name), then the short
/// id, aliases and service name, lowercased and without duplicates.
pub(crate) fn dns_entry(e: &EndpointRecord) -> Entry {
    let mut names: Vec<String> = Vec::new();
    let candidates = std::iter::once(e.container_name.as_str())
        .chain(std::iter::once(names::short_id(&e.container_id)))
        .chain(e.aliases.iter().map(String::as_str))
        .chain(e.service.as_deref());
    for n in candidates {
        let n = registry::normalize(n);
        if !n.is_empty() && !names.contains(&n) {
            names.push(n);
        }
    }
    Entry {
        container_id: e.container_id.clone(),
        network_id: e.network_id.clone(),
        ip: e.ip,
        names,
        enabled: e.dns_enabled,
        upstreams: e
            .dns_upstreams
            .iter()
            .map(|ip| SocketAddr::new(*ip, 53))
            .collect(),
    }
}
