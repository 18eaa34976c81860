//! Network lifecycle: create (subnet, bridge, address, sysctls, rules, DNS server), remove
//! (refused while containers are attached), list, get, prune.

use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{info, instrument, warn};

use super::{Inner, Netd};
use crate::error::NetdError;
use crate::ipam::{self, Taken};
use crate::names;
use crate::state::{NetworkRecord, Scope, State};
use crate::sys::HostLock;
use crate::types::{Network, NetworkContainer, NetworkSpec};

/// How often a fresh network id is drawn when its bridge name is taken by someone else.
const NAME_ATTEMPTS: usize = 8;

impl Netd {
    /// Creates a network: picks (or checks) its subnet under the host-wide lock, creates its
    /// bridge with the gateway address, loads its firewall rules and starts its DNS server.
    #[instrument(skip(self, spec), fields(network = %spec.name))]
    pub async fn create_network(&self, spec: NetworkSpec) -> Result<Network, NetdError> {
        let invalid = |reason: &str| NetdError::InvalidNetwork {
            name: spec.name.clone(),
            reason: reason.to_string(),
        };
        if !names::valid_network_name(&spec.name) {
            return Err(invalid(
                "names are 1 to 64 of [a-zA-Z0-9_.-], starting alphanumeric",
            ));
        }
        let mut inner = self.inner.lock().await;
        if inner.state.networks.contains_key(&spec.name) {
            return Err(NetdError::NetworkExists(spec.name));
        }
        let host_lock = HostLock::acquire(&self.cfg.host_lock).await?;
        let record = self.plan_network(&inner.state, &spec).await?;
        let mac = names::mac_for(record.gateway);
        let alias = names::bridge_alias(&self.root_id, &record.id);
        // A failed creation leaves no bridge behind (and never touches a link it did not make).
        let index = self.nl.create_bridge(&record.bridge, mac, &alias).await?;
        let addressed = self
            .nl
            .add_address(
                index,
                &record.bridge,
                record.gateway,
                record.subnet.prefix(),
            )
            .await;
        // The address (and its route) is visible to other roots now: they will skip the subnet.
        drop(host_lock);
        if let Err(e) = addressed {
            self.undo_network(&mut inner, &record).await;
            return Err(e.into());
        }
        inner
            .state
            .networks
            .insert(record.name.clone(), record.clone());
        if let Err(e) = self.finish_network(&mut inner, &record).await {
            self.undo_network(&mut inner, &record).await;
            return Err(e);
        }
        info!(id = %record.id, bridge = %record.bridge, subnet = %record.subnet, "network created");
        Ok(to_network(&inner.state, &record))
    }

    /// Sysctls, rules, DNS server and persisted state of a network whose bridge exists.
    async fn finish_network(
        &self,
        inner: &mut Inner,
        record: &NetworkRecord,
    ) -> Result<(), NetdError> {
        self.apply_sysctls(&inner.state)?;
        self.apply_firewall(&inner.state, true).await?;
        let server = self.start_dns(record)?;
        inner.dns.insert(record.id.clone(), server);
        self.persist(&mut inner.state, Scope::All).await
    }

    /// Best-effort removal of a half-created network.
    async fn undo_network(&self, inner: &mut Inner, record: &NetworkRecord) {
        inner.state.networks.remove(&record.name);
        if let Some(server) = inner.dns.remove(&record.id) {
            server.stop().await;
        }
        if let Err(e) = self.nl.delete_link(&record.bridge).await {
            warn!(bridge = %record.bridge, error = %e, "rollback: bridge not deleted");
        }
        if let Err(e) = self.apply_firewall(&inner.state, true).await {
            warn!(error = %e, "rollback: firewall not restored");
        }
    }

    /// Id, bridge name, subnet and gateway of a new network.
    async fn plan_network(
        &self,
        state: &State,
        spec: &NetworkSpec,
    ) -> Result<NetworkRecord, NetdError> {
        let ipam_err = |source| NetdError::Ipam {
            network: spec.name.clone(),
            source,
        };
        let mut taken: Vec<Taken> = state
            .networks
            .values()
            .map(|n| Taken {
                net: n.subnet,
                owner: format!("network {}", n.name),
            })
            .collect();
        taken.extend(self.nl.used_prefixes().await?);
        let subnet = match spec.subnet {
            Some(s) => {
                ipam::check_subnet(s, &taken).map_err(ipam_err)?;
                s
            }
            None => ipam::pick_subnet(self.cfg.address_pool, self.cfg.subnet_prefix, &taken)
                .map_err(ipam_err)?,
        };
        let gateway = ipam::gateway(subnet, spec.gateway).map_err(ipam_err)?;
        let mut chosen = None;
        for _ in 0..NAME_ATTEMPTS {
            let id = names::new_network_id();
            let bridge = names::bridge_name(&self.cfg.bridge_prefix, &id);
            if self.nl.link_index(&bridge).await?.is_none() {
                chosen = Some((id, bridge));
                break;
            }
        }
        let Some((id, bridge)) = chosen else {
            return Err(NetdError::InvalidNetwork {
                name: spec.name.clone(),
                reason: "no free bridge name found".into(),
            });
        };
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(NetworkRecord {
            id,
            name: spec.name.clone(),
            bridge,
            subnet,
            gateway,
            internal: spec.internal,
            labels: spec.labels.clone(),
            created,
            cursor: subnet.network(),
        })
    }

    /// Removes a network: its DNS server, bridge (with its address and routes) and rules.
    /// Refused while containers are attached. Teardown is best effort: every step runs and
    /// every failure is reported.
    #[instrument(skip(self))]
    pub async fn remove_network(&self, name: &str) -> Result<(), NetdError> {
        let mut inner = self.inner.lock().await;
        let record = resolve(&inner.state, name)?.clone();
        let mut users: Vec<String> = inner
            .state
            .endpoints
            .iter()
            .filter(|e| e.network_id == record.id)
            .map(|e| e.container_name.clone())
            .collect();
        if !users.is_empty() {
            users.sort();
            return Err(NetdError::NetworkInUse {
                name: record.name,
                containers: users,
            });
        }
        self.remove_unused(&mut inner, &record).await
    }

    async fn remove_unused(
        &self,
        inner: &mut Inner,
        record: &NetworkRecord,
    ) -> Result<(), NetdError> {
        // Veths of containers detached just before go first.
        self.reaper.flush().await;
        let mut errors = Vec::new();
        if let Some(server) = inner.dns.remove(&record.id) {
            server.stop().await;
        }
        self.registry.remove_network(&record.id);
        if let Err(e) = self.nl.delete_link(&record.bridge).await {
            errors.push(e.into());
        }
        inner.state.networks.remove(&record.name);
        if let Err(e) = self.apply_firewall(&inner.state, true).await {
            errors.push(e);
        }
        if let Err(e) = self.persist(&mut inner.state, Scope::All).await {
            errors.push(e);
        }
        NetdError::collect(format!("remove network {}", record.name), errors)?;
        info!(network = %record.name, "network removed");
        Ok(())
    }

    /// Every network, by name.
    pub async fn list(&self) -> Vec<Network> {
        let inner = self.inner.lock().await;
        inner
            .state
            .networks
            .values()
            .map(|n| to_network(&inner.state, n))
            .collect()
    }

    /// One network by name, full id or unique id prefix.
    pub async fn get(&self, name: &str) -> Result<Network, NetdError> {
        let inner = self.inner.lock().await;
        let record = resolve(&inner.state, name)?;
        Ok(to_network(&inner.state, record))
    }

    /// Removes every network without containers; returns their names.
    #[instrument(skip(self))]
    pub async fn prune(&self) -> Result<Vec<String>, NetdError> {
        let mut inner = self.inner.lock().await;
        let unused: Vec<NetworkRecord> = inner
            .state
            .networks
            .values()
            .filter(|n| !inner.state.endpoints.iter().any(|e| e.network_id == n.id))
            .cloned()
            .collect();
        let mut removed = Vec::new();
        let mut errors = Vec::new();
        for record in unused {
            match self.remove_unused(&mut inner, &record).await {
                Ok(()) => removed.push(record.name),
                Err(e) => errors.push(e),
            }
        }
        NetdError::collect("prune networks", errors)?;
        Ok(removed)
    }
}

/// A network by name, full id or unique id prefix (at least 3 characters).
pub(crate) fn resolve<'a>(state: &'a State, name: &str) -> Result<&'a NetworkRecord, NetdError> {
    if let Some(n) = state.networks.get(name) {
        return Ok(n);
    }
    let mut by_id = state
        .networks
        .values()
        .filter(|n| name.len() >= 3 && n.id.starts_with(name));
    match (by_id.next(), by_id.next()) {
        (Some(n), None) => Ok(n),
        _ => Err(NetdError::NetworkNotFound(name.to_string())),
    }
}

/// The public view of a network.
fn to_network(state: &State, n: &NetworkRecord) -> Network {
    Network {
        id: n.id.clone(),
        name: n.name.clone(),
        bridge: n.bridge.clone(),
        subnet: n.subnet,
        gateway: n.gateway,
        internal: n.internal,
        labels: n.labels.clone(),
        created: n.created,
        containers: state
            .endpoints
            .iter()
            .filter(|e| e.network_id == n.id)
            .map(|e| NetworkContainer {
                container_id: e.container_id.clone(),
                container_name: e.container_name.clone(),
                ipv4: e.ip,
                mac: names::format_mac(names::mac_for(e.ip)),
                aliases: e.aliases.clone(),
                service: e.service.clone(),
                dns_enabled: e.dns_enabled,
            })
            .collect(),
    }
}
