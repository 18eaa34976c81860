//! The records the embedded DNS servers answer from: one entry per container endpoint, with
//! every name it answers to (container name, short id, aliases, service name).
//!
//! A query is answered from the networks the *querying* container shares with the target: the
//! server finds the querier by its source address on the network the query arrived on, so a
//! container attached to two networks resolves the names of both through its one nameserver,
//! and nobody resolves names of networks they are not on. A name with several enabled entries
//! (the replicas of a service) returns all their addresses, rotated by one on each query so
//! clients that take the first address still spread the load.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Mutex, MutexGuard};

/// One container endpoint as DNS knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub container_id: String,
    pub network_id: String,
    pub ip: Ipv4Addr,
    /// Lowercase names; the first one is the canonical name used for reverse lookups.
    pub names: Vec<String>,
    /// Healthy and running.
    pub enabled: bool,
    /// The container's own upstream resolvers; empty: the server's.
    pub upstreams: Vec<SocketAddr>,
}

/// The result of looking a name up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Addresses of the enabled entries, rotated.
    Found(Vec<Ipv4Addr>),
    /// The name belongs to a container of a network the querier is on, but none of its
    /// entries is enabled right now.
    Disabled,
    /// Not a name netd owns for this querier.
    Unknown,
}

#[derive(Debug, Default)]
struct Inner {
    entries: Vec<Entry>,
    rotation: HashMap<String, usize>,
}

/// Shared by every DNS server of a Netd; updated under netd's state lock, read per query.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    inner: Mutex<Inner>,
}

/// Lowercases a query name and strips the root dot.
pub(crate) fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves the data consistent, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces every entry (on open).
    pub(crate) fn replace_all(&self, entries: Vec<Entry>) {
        let mut inner = self.lock();
        inner.entries = entries;
        inner.rotation.clear();
    }

    /// Adds entries (on attach).
    pub(crate) fn add(&self, entries: Vec<Entry>) {
        self.lock().entries.extend(entries);
    }

    /// Removes every entry of a container (on detach).
    pub(crate) fn remove_container(&self, container_id: &str) {
        self.lock()
            .entries
            .retain(|e| e.container_id != container_id);
    }

    /// Removes every entry of a network (when its server stops).
    pub(crate) fn remove_network(&self, network_id: &str) {
        self.lock().entries.retain(|e| e.network_id != network_id);
    }

    /// Enables or disables every entry of a container; returns how many entries it has.
    pub(crate) fn set_enabled(&self, container_id: &str, enabled: bool) -> usize {
        let mut inner = self.lock();
        let mut n = 0;
        for e in inner
            .entries
            .iter_mut()
            .filter(|e| e.container_id == container_id)
        {
            e.enabled = enabled;
            n += 1;
        }
        n
    }

    /// The networks whose names a query from `src` on `network_id` may see.
    fn scope(inner: &Inner, network_id: &str, src: Ipv4Addr) -> HashSet<String> {
        let mut scope: HashSet<String> = [network_id.to_string()].into();
        if let Some(me) = inner
            .entries
            .iter()
            .find(|e| e.network_id == network_id && e.ip == src)
        {
            scope.extend(
                inner
                    .entries
                    .iter()
                    .filter(|e| e.container_id == me.container_id)
                    .map(|e| e.network_id.clone()),
            );
        }
        scope
    }

    /// The upstream resolvers of the container that sent a query from `src` on `network_id`,
    /// when it has its own.
    pub(crate) fn upstreams(&self, network_id: &str, src: Ipv4Addr) -> Option<Vec<SocketAddr>> {
        self.lock()
            .entries
            .iter()
            .find(|e| e.network_id == network_id && e.ip == src && !e.upstreams.is_empty())
            .map(|e| e.upstreams.clone())
    }

    /// Looks `name` (normalized) up for a query from `src` arriving on `network_id`; `rotate`
    /// moves the name's rotation on by one. Queries that answer no addresses (AAAA) must not
    /// move it: a client asking A and AAAA per connection would otherwise only ever see every
    /// other replica first.
    pub(crate) fn lookup(
        &self,
        network_id: &str,
        src: Ipv4Addr,
        name: &str,
        rotate: bool,
    ) -> Lookup {
        let mut inner = self.lock();
        let scope = Self::scope(&inner, network_id, src);
        let mut known = false;
        let mut ips: Vec<Ipv4Addr> = Vec::new();
        for e in &inner.entries {
            if scope.contains(&e.network_id) && e.names.iter().any(|n| n == name) {
                known = true;
                if e.enabled && !ips.contains(&e.ip) {
                    ips.push(e.ip);
                }
            }
        }
        if ips.is_empty() {
            return if known {
                Lookup::Disabled
            } else {
                Lookup::Unknown
            };
        }
        ips.sort();
        let counter = inner.rotation.entry(name.to_string()).or_insert(0);
        let shift = *counter % ips.len();
        if rotate {
            *counter = counter.wrapping_add(1);
        }
        ips.rotate_left(shift);
        Lookup::Found(ips)
    }

    /// The canonical name of `ip` for a query from `src` on `network_id`.
    pub(crate) fn reverse(&self, network_id: &str, src: Ipv4Addr, ip: Ipv4Addr) -> Option<String> {
        let inner = self.lock();
        let scope = Self::scope(&inner, network_id, src);
        inner
            .entries
            .iter()
            .find(|e| e.ip == ip && scope.contains(&e.network_id))
            .and_then(|e| e.names.first().cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(c: &str, net: &str, ip: u8, names: &[&str]) -> Entry {
        Entry {
            container_id: c.into(),
            network_id: net.into(),
            ip: Ipv4Addr::new(10, 0, 0, ip),
            names: names.iter().map(|s| s.to_string()).collect(),
            enabled: true,
            upstreams: Vec::new(),
        }
    }

    fn registry() -> Registry {
        let r = Registry::default();
        r.replace_all(vec![
            entry("w1", "a", 11, &["web-1", "web"]),
            entry("w2", "a", 12, &["web-2", "web"]),
            entry("w3", "a", 13, &["web-3", "web"]),
            entry("db", "b", 21, &["db"]),
            // The client is on both networks.
            entry("cl", "a", 31, &["client"]),
            entry("cl", "b", 32, &["client"]),
            // Someone only on network a.
            entry("x", "a", 41, &["x"]),
        ]);
        r
    }

    const SRC_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 41);

    #[test]
    fn service_names_rotate_over_replicas() {
        let r = registry();
        let ips = |l| match l {
            Lookup::Found(v) => v
                .iter()
                .map(|ip: &Ipv4Addr| ip.octets()[3])
                .collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(ips(r.lookup("a", SRC_A, "web", true)), vec![11, 12, 13]);
        assert_eq!(ips(r.lookup("a", SRC_A, "web", true)), vec![12, 13, 11]);
        assert_eq!(ips(r.lookup("a", SRC_A, "web", true)), vec![13, 11, 12]);
        assert_eq!(ips(r.lookup("a", SRC_A, "web-2", true)), vec![12]);
        assert_eq!(
            ips(r.lookup("a", SRC_A, "web", false)),
            vec![11, 12, 13],
            "a lookup without rotation leaves the next answer alone"
        );
        assert_eq!(ips(r.lookup("a", SRC_A, "web", true)), vec![11, 12, 13]);
        assert_eq!(ips(r.lookup("a", SRC_A, "web", true)), vec![12, 13, 11]);
    }

    #[test]
    fn unhealthy_replicas_drop_out_at_once() {
        let r = registry();
        assert_eq!(r.set_enabled("w2", false), 1);
        match r.lookup("a", SRC_A, "web", true) {
            Lookup::Found(v) => assert_eq!(v.len(), 2),
            other => panic!("{other:?}"),
        }
        assert_eq!(r.lookup("a", SRC_A, "web-2", true), Lookup::Disabled);
        r.set_enabled("w2", true);
        assert!(matches!(
            r.lookup("a", SRC_A, "web-2", true),
            Lookup::Found(_)
        ));
        r.remove_container("w2");
        assert_eq!(r.lookup("a", SRC_A, "web-2", true), Lookup::Unknown);
    }

    #[test]
    fn names_are_scoped_to_shared_networks() {
        let r = registry();
        // x is only on a: db (on b) is unknown to it.
        assert_eq!(r.lookup("a", SRC_A, "db", true), Lookup::Unknown);
        // The client asks on network a but is on b too: it sees db.
        let client_a = Ipv4Addr::new(10, 0, 0, 31);
        assert_eq!(
            r.lookup("a", client_a, "db", true),
            Lookup::Found(vec![Ipv4Addr::new(10, 0, 0, 21)])
        );
        // A query from an unknown source only sees the network it arrived on.
        let stranger = Ipv4Addr::new(10, 0, 0, 99);
        assert_eq!(r.lookup("b", stranger, "web", true), Lookup::Unknown);
        assert!(matches!(
            r.lookup("b", stranger, "db", true),
            Lookup::Found(_)
        ));
    }

    #[test]
    fn reverse_lookups() {
        let r = registry();
        assert_eq!(
            r.reverse("a", SRC_A, Ipv4Addr::new(10, 0, 0, 12))
                .as_deref(),
            Some("web-2")
        );
        assert_eq!(r.reverse("a", SRC_A, Ipv4Addr::new(10, 0, 0, 21)), None);
        r.remove_network("a");
        assert_eq!(r.reverse("a", SRC_A, Ipv4Addr::new(10, 0, 0, 12)), None);
    }

    #[test]
    fn normalizes_names() {
        assert_eq!(normalize("Web.Example."), "web.example");
        assert_eq!(normalize("web"), "web");
    }
}
