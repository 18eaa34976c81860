//! Container endpoints: attaching a network namespace to networks (veth pairs, addresses,
//! default route, published ports, DNS records), detaching it, and DNS health.
//!
//! Attach checks everything and reserves host ports before it creates anything; a failure
//! after that deletes what was created (the host end of a veth takes its peer with it) and
//! releases leases and ports, so nothing leaks.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::Path;

use tracing::{info, instrument, warn};

use super::{dns_entry, Inner, Netd};
use crate::error::NetdError;
use crate::files;
use crate::ipam::{self, Pool};
use crate::names;
use crate::netlink::{self, Nl};
use crate::ports::{self, Reservation};
use crate::state::{EndpointRecord, NetworkRecord, PortRecord, Scope, State};
use crate::types::{Attachment, EndpointInfo, EndpointSpec, PortSpec, PublishedPort};

/// How long attach waits for new links to carry traffic.
const LINK_READY: std::time::Duration = std::time::Duration::from_secs(2);

/// An endpoint about to be created, with its network.
struct Planned {
    record: EndpointRecord,
    network: NetworkRecord,
}

impl Netd {
    /// Attaches the network namespace `netns` (e.g. `/proc/<pid>/ns/net`) of a container to
    /// `endpoints` (interfaces `eth0`, `eth1`, ... in that order, the default route via the
    /// first network with egress) and publishes `ports` on its first network with egress.
    #[instrument(skip(self, endpoints, ports), fields(container = %container_id, netns = %netns.display()))]
    pub async fn attach(
        &self,
        container_id: &str,
        netns: &Path,
        endpoints: &[EndpointSpec],
        ports: &[PortSpec],
    ) -> Result<Attachment, NetdError> {
        let mut inner = self.inner.lock().await;
        let mut planned = self.plan_endpoints(&inner.state, container_id, endpoints)?;
        let target = publish_target(&inner.state, container_id, &planned);
        if !ports.is_empty() && target.is_none() {
            return Err(NetdError::InvalidPorts {
                container: container_id.to_string(),
                reason: "it is on no network with egress (internal networks publish nothing)"
                    .into(),
            });
        }
        // Host ports first: a taken port fails the attach before anything exists.
        let mut reserved: Vec<Reservation> = Vec::new();
        let mut port_records = Vec::new();
        for p in ports {
            let r = ports::reserve(p.host_ip, p.host_port.unwrap_or(0), p.proto)?;
            port_records.push(PortRecord {
                container_id: container_id.to_string(),
                host_ip: p.host_ip,
                host_port: r.port,
                proto: p.proto,
                container_ip: target.unwrap_or(Ipv4Addr::UNSPECIFIED),
                container_port: p.container_port,
            });
            reserved.push(r);
        }
        let ns = File::open(netns).map_err(|source| NetdError::Netns {
            path: netns.to_owned(),
            source,
        })?;
        let default_route = default_route(&inner.state, container_id, &planned);
        if let Err(e) = self.plumb(&ns, netns, &mut planned, default_route).await {
            self.unplumb(&planned).await;
            return Err(e);
        }
        let before = inner.state.clone();
        commit(&mut inner.state, &planned, &port_records);
        if let Err(e) = self
            .publish_and_persist(&mut inner.state, !port_records.is_empty())
            .await
        {
            inner.state = before;
            self.unplumb(&planned).await;
            if !port_records.is_empty() {
                if let Err(fw) = self.apply_firewall(&inner.state, false).await {
                    warn!(error = %fw, "rollback: firewall not restored");
                }
            }
            return Err(e);
        }
        self.registry
            .add(planned.iter().map(|p| dns_entry(&p.record)).collect());
        inner
            .reservations
            .entry(container_id.to_string())
            .or_default()
            .extend(reserved);
        info!(
            endpoints = planned.len(),
            ports = port_records.len(),
            "container attached"
        );
        Ok(self.attachment_of(&inner.state, container_id))
    }

    async fn publish_and_persist(&self, state: &mut State, rules: bool) -> Result<(), NetdError> {
        if rules {
            self.apply_firewall(state, false).await?;
        }
        self.persist(state, Scope::Endpoints).await
    }

    /// Validates the endpoints and leases their addresses (in the plan only).
    fn plan_endpoints(
        &self,
        state: &State,
        container_id: &str,
        endpoints: &[EndpointSpec],
    ) -> Result<Vec<Planned>, NetdError> {
        if endpoints.is_empty() {
            return Err(NetdError::InvalidEndpoint {
                container: container_id.to_string(),
                network: String::new(),
                reason: "no network given".into(),
            });
        }
        let existing: Vec<&EndpointRecord> = state.endpoints_of(container_id).collect();
        let mut planned: Vec<Planned> = Vec::new();
        for (i, spec) in endpoints.iter().enumerate() {
            let invalid = |reason: String| NetdError::InvalidEndpoint {
                container: container_id.to_string(),
                network: spec.network.clone(),
                reason,
            };
            let net = super::networks::resolve(state, &spec.network)?.clone();
            let attached = existing.iter().any(|e| e.network_id == net.id)
                || planned.iter().any(|p| p.network.id == net.id);
            if attached {
                return Err(NetdError::AlreadyAttached {
                    container: container_id.to_string(),
                    network: net.name,
                });
            }
            let names = std::iter::once(&spec.container_name)
                .chain(&spec.aliases)
                .chain(&spec.service);
            for n in names {
                if !names::valid_dns_name(n) {
                    return Err(invalid(format!("{n:?} is not a valid DNS name")));
                }
            }
            let mut leased = state.leased(&net.id);
            leased.extend(
                planned
                    .iter()
                    .filter(|p| p.network.id == net.id)
                    .map(|p| p.record.ip),
            );
            let pool = Pool {
                subnet: net.subnet,
                gateway: net.gateway,
                leased: &leased,
            };
            let ipam_err = |source| NetdError::Ipam {
                network: net.name.clone(),
                source,
            };
            let ip = match spec.ipv4 {
                Some(ip) => {
                    pool.check_static(ip).map_err(ipam_err)?;
                    ip
                }
                None => pool.next_free(net.cursor).map_err(ipam_err)?,
            };
            let record = EndpointRecord {
                container_id: container_id.to_string(),
                container_name: spec.container_name.clone(),
                network_id: net.id.clone(),
                interface: format!("eth{}", existing.len() + i),
                host_veth: names::veth_name(),
                ip,
                aliases: spec.aliases.clone(),
                service: spec.service.clone(),
                dns_enabled: true,
                dns_upstreams: spec.dns_upstreams.clone(),
            };
            planned.push(Planned {
                record,
                network: net,
            });
        }
        Ok(planned)
    }

    /// Creates the links: per endpoint a veth pair whose peer is born inside the namespace, its
    /// address, and the default route; then `lo` up.
    async fn plumb(
        &self,
        ns: &File,
        netns: &Path,
        planned: &mut [Planned],
        default_route: Option<(usize, Ipv4Addr)>,
    ) -> Result<(), NetdError> {
        let label = netns.display().to_string();
        let inside = Nl::connect_in(ns, &label).await?;
        for (i, p) in planned.iter_mut().enumerate() {
            let r = &p.record;
            let bridge = match self.nl.link_index(&p.network.bridge).await? {
                Some(index) => index,
                None => self.ensure_bridge(&p.network).await?,
            };
            let mac = names::mac_for(r.ip);
            let created = self
                .nl
                .add_veth(&r.host_veth, bridge, &r.interface, mac, ns)
                .await;
            if let Err(e) = created {
                if !e.is_errno(libc::EEXIST) {
                    return Err(e.into());
                }
                // Either the container still holds the end of a veth retired by a detach a
                // moment ago (deleting the retired veths frees the name), or the random host
                // name is taken (a fresh one is drawn). Anything else fails the retry again.
                self.reaper.flush().await;
                p.record.host_veth = names::veth_name();
                let r = &p.record;
                self.nl
                    .add_veth(&r.host_veth, bridge, &r.interface, mac, ns)
                    .await?;
            }
            let r = &p.record;
            let index = inside.link_index(&r.interface).await?.ok_or_else(|| {
                crate::netlink::NetlinkError::Missing {
                    step: "create veth pair",
                    name: format!("{} in {label}", r.interface),
                }
            })?;
            inside
                .add_address(index, &r.interface, r.ip, p.network.subnet.prefix())
                .await?;
            // Networks are IPv4: without this, every new container would send IPv6 address
            // detection, router solicitations and multicast reports that the bridge floods to
            // every other container (attach times grew 5x by the 100th container).
            inside.no_ipv6_addresses(index, &r.interface).await?;
            inside.set_up(index, &r.interface).await?;
            if let Some((_, gateway)) = default_route.filter(|(at, _)| *at == i) {
                inside
                    .add_default_route(index, &r.interface, gateway)
                    .await?;
            }
        }
        // Last: bringing `lo` up in a fresh namespace starts kernel work (IPv6 address
        // configuration, link watch) that would delay the veth creation by ~4 ms.
        if let Some(lo) = inside.link_index("lo").await? {
            inside.set_up(lo, "lo").await?;
        }
        // The container's first packets must not vanish: attach returns once its interfaces
        // send and the bridge forwards (at once, usually).
        for p in planned.iter() {
            let r = &p.record;
            let sending = inside
                .wait_link(&r.interface, netlink::transmitting, LINK_READY)
                .await?;
            let forwarding = self
                .nl
                .wait_link(&r.host_veth, netlink::port_forwarding, LINK_READY)
                .await?;
            // A bridge whose last port went away lost its carrier; it gets it back with this
            // port, asynchronously too.
            let bridge_up = self
                .nl
                .wait_link(&p.network.bridge, netlink::oper_up, LINK_READY)
                .await?;
            if !sending || !forwarding || !bridge_up {
                warn!(veth = %r.host_veth, sending, forwarding, bridge_up, "link not ready yet");
            }
        }
        Ok(())
    }

    /// Best-effort removal of planned endpoints' veths (rollback).
    async fn unplumb(&self, planned: &[Planned]) {
        for p in planned {
            if let Err(e) = self.nl.delete_link(&p.record.host_veth).await {
                warn!(veth = %p.record.host_veth, error = %e, "rollback: veth not deleted");
            }
        }
    }

    /// Detaches a container from every network: deletes its veths, releases its leases and
    /// published ports, removes its DNS records. Idempotent and best effort: a container that
    /// is not attached (or whose links are already gone) is success. The container is cut off
    /// at once; its veths are deleted in the background within 100 ms (see
    /// `netlink::Reaper`), and removing a network, reconciling and shutting down wait
    /// for that.
    #[instrument(skip(self), fields(container = %container_id))]
    pub async fn detach(&self, container_id: &str) -> Result<(), NetdError> {
        let mut inner = self.inner.lock().await;
        self.detach_locked(&mut inner, container_id).await
    }

    async fn detach_locked(&self, inner: &mut Inner, container_id: &str) -> Result<(), NetdError> {
        let (endpoints, ports) = inner.state.remove_container(container_id);
        self.registry.remove_container(container_id);
        let mut errors = Vec::new();
        for e in &endpoints {
            // Cut off now, deleted (with the container end) in the reaper's next batch; a link
            // already gone is fine.
            match self.nl.retire_veth(&e.host_veth).await {
                Ok(true) => self.reaper.retired(),
                Ok(false) => {}
                Err(err) => errors.push(err.into()),
            }
        }
        if !ports.is_empty() {
            if let Err(err) = self.apply_firewall(&inner.state, false).await {
                errors.push(err);
            }
        }
        // Released only after the rules are gone, so the port never forwards to nobody while
        // another program could bind it.
        inner.reservations.remove(container_id);
        if !endpoints.is_empty() || !ports.is_empty() {
            if let Err(err) = self.persist(&mut inner.state, Scope::Endpoints).await {
                errors.push(err);
            }
            info!(
                endpoints = endpoints.len(),
                ports = ports.len(),
                "container detached"
            );
        }
        NetdError::collect(format!("detach container {container_id}"), errors)
    }

    /// Makes DNS answer (healthy, running) or stop answering with a container's addresses,
    /// effective for the next query. A container without endpoints is a no-op.
    #[instrument(skip(self), fields(container = %container_id))]
    pub async fn set_dns_enabled(
        &self,
        container_id: &str,
        healthy: bool,
    ) -> Result<(), NetdError> {
        let mut inner = self.inner.lock().await;
        let mut changed = false;
        for e in inner
            .state
            .endpoints
            .iter_mut()
            .filter(|e| e.container_id == container_id)
        {
            changed |= e.dns_enabled != healthy;
            e.dns_enabled = healthy;
        }
        self.registry.set_enabled(container_id, healthy);
        if changed {
            self.persist(&mut inner.state, Scope::Endpoints).await?;
        }
        Ok(())
    }

    /// The published ports of a container (`berth port`).
    pub async fn ports(&self, container_id: &str) -> Vec<PublishedPort> {
        let inner = self.inner.lock().await;
        inner
            .state
            .ports
            .iter()
            .filter(|p| p.container_id == container_id)
            .map(to_published)
            .collect()
    }

    /// The attachment of a container as it stands (same shape `attach` returned), or `None`
    /// when it is attached to nothing.
    pub async fn attachment(&self, container_id: &str) -> Option<Attachment> {
        let inner = self.inner.lock().await;
        inner.state.endpoints_of(container_id).next()?;
        Some(self.attachment_of(&inner.state, container_id))
    }

    fn attachment_of(&self, state: &State, container_id: &str) -> Attachment {
        let mut endpoints: Vec<(&EndpointRecord, &NetworkRecord)> = state
            .endpoints_of(container_id)
            .filter_map(|e| state.network_by_id(&e.network_id).map(|n| (e, n)))
            .collect();
        endpoints.sort_by_key(|(e, _)| interface_number(&e.interface));
        // The server of the first network with egress (internal networks forward nothing);
        // any of the container's servers answers the names of all its networks.
        let nameserver = endpoints
            .iter()
            .find(|(_, n)| !n.internal)
            .or(endpoints.first())
            .map(|(_, n)| n.gateway);
        let hosts: Vec<(Ipv4Addr, Vec<String>)> = endpoints
            .iter()
            .map(|(e, _)| {
                let mut names = vec![e.container_name.clone()];
                names.extend(e.aliases.iter().cloned());
                (e.ip, names)
            })
            .collect();
        Attachment {
            container_id: container_id.to_string(),
            endpoints: endpoints
                .iter()
                .map(|(e, n)| EndpointInfo {
                    network: n.name.clone(),
                    network_id: n.id.clone(),
                    interface: e.interface.clone(),
                    host_interface: e.host_veth.clone(),
                    ipv4: e.ip,
                    prefix_len: n.subnet.prefix(),
                    gateway: n.gateway,
                    mac: names::format_mac(names::mac_for(e.ip)),
                })
                .collect(),
            ports: state
                .ports
                .iter()
                .filter(|p| p.container_id == container_id)
                .map(to_published)
                .collect(),
            resolv_conf: files::resolv_conf(nameserver, &self.host_resolv),
            hosts: files::hosts(&hosts),
        }
    }
}

/// Records the planned endpoints and ports in the state and moves the allocation cursors.
fn commit(state: &mut State, planned: &[Planned], ports: &[PortRecord]) {
    for p in planned {
        if let Some(net) = state.networks.get_mut(&p.network.name) {
            net.cursor = ipam::after(p.record.ip);
        }
        state.endpoints.push(p.record.clone());
    }
    state.ports.extend(ports.iter().cloned());
}

/// Where published ports go: the address on the container's first network with egress.
fn publish_target(state: &State, container_id: &str, planned: &[Planned]) -> Option<Ipv4Addr> {
    let existing = state.endpoints_of(container_id).find(|e| {
        state
            .network_by_id(&e.network_id)
            .is_some_and(|n| !n.internal)
    });
    existing.map(|e| e.ip).or_else(|| {
        planned
            .iter()
            .find(|p| !p.network.internal)
            .map(|p| p.record.ip)
    })
}

/// Which planned endpoint gets the default route (and via which gateway): the first with
/// egress, unless the container already has an endpoint with egress.
fn default_route(
    state: &State,
    container_id: &str,
    planned: &[Planned],
) -> Option<(usize, Ipv4Addr)> {
    let has_egress = state
        .endpoints_of(container_id)
        .filter_map(|e| state.network_by_id(&e.network_id))
        .any(|n| !n.internal);
    if has_egress {
        return None;
    }
    planned
        .iter()
        .position(|p| !p.network.internal)
        .map(|i| (i, planned[i].network.gateway))
}

fn interface_number(name: &str) -> u32 {
    name.trim_start_matches("eth").parse().unwrap_or(u32::MAX)
}

fn to_published(p: &PortRecord) -> PublishedPort {
    PublishedPort {
        host_ip: p.host_ip,
        host_port: p.host_port,
        container_ip: p.container_ip,
        container_port: p.container_port,
        proto: p.proto,
    }
}
