//! A container's own name-resolution settings (compose `dns`, `dns_search`, `dns_opt`,
//! `extra_hosts`; `--dns`, `--dns-search`, `--dns-option`, `--add-host`) laid over the
//! `/etc/resolv.conf` and `/etc/hosts` it would get otherwise. Pure: the engine writes the
//! results.
//!
//! On a bridge network the nameserver stays the network's DNS server (service discovery keeps
//! working) and `dns` servers become that container's upstreams in netd, as Docker's embedded
//! DNS does; with `--network host` or `none` they are written as the nameservers.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use crate::api::CreateContainer;

/// The address `host-gateway` stands for in `extra_hosts`.
pub const HOST_GATEWAY: &str = "host-gateway";

/// One `extra_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraHost {
    pub name: String,
    /// An IP address or [`HOST_GATEWAY`].
    pub address: String,
}

/// Resolver settings of one container; empty when it has none of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resolver {
    pub dns: Vec<IpAddr>,
    pub search: Vec<String>,
    pub options: Vec<String>,
    pub extra_hosts: Vec<ExtraHost>,
}

impl Resolver {
    /// The settings of a create request, checked.
    pub fn from_request(req: &CreateContainer) -> Result<Resolver, String> {
        for (what, words) in [
            ("dns search", &req.dns_search),
            ("dns option", &req.dns_options),
        ] {
            if let Some(w) = words
                .iter()
                .find(|w| w.is_empty() || w.contains(char::is_whitespace))
            {
                return Err(format!(
                    "invalid {what} {w:?}: expected a single word without blanks"
                ));
            }
        }
        let extra_hosts = req
            .extra_hosts
            .iter()
            .map(|h| parse_extra_host(h))
            .collect::<Result<_, _>>()?;
        Ok(Resolver {
            dns: req.dns.clone(),
            search: req.dns_search.clone(),
            options: req.dns_options.clone(),
            extra_hosts,
        })
    }

    /// Whether the container has no settings of its own.
    pub fn is_empty(&self) -> bool {
        self == &Resolver::default()
    }

    /// `base` with the container's search domains and options in place of the ones it has;
    /// with `direct`, its `dns` servers replace the nameservers too.
    pub fn resolv_conf(&self, base: &str, direct: bool) -> String {
        let replaced = |line: &str| {
            let word = line.split_whitespace().next().unwrap_or("");
            (word == "search" && !self.search.is_empty())
                || (word == "options" && !self.options.is_empty())
                || (word == "nameserver" && direct && !self.dns.is_empty())
        };
        let mut out: String = base
            .lines()
            .filter(|l| !replaced(l))
            .map(|l| format!("{l}\n"))
            .collect();
        if !self.search.is_empty() {
            let _ = writeln!(out, "search {}", self.search.join(" "));
        }
        if !self.options.is_empty() {
            let _ = writeln!(out, "options {}", self.options.join(" "));
        }
        if direct {
            for ns in &self.dns {
                let _ = writeln!(out, "nameserver {ns}");
            }
        }
        out
    }

    /// `base` with the extra hosts appended; `host-gateway` becomes `gateway` (entries that
    /// name it are left out when the container has no way to the host).
    pub fn hosts(&self, base: &str, gateway: Option<Ipv4Addr>) -> String {
        let mut out = base.to_string();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        for h in &self.extra_hosts {
            let address = if h.address == HOST_GATEWAY {
                match gateway {
                    Some(g) => g.to_string(),
                    None => continue,
                }
            } else {
                h.address.clone()
            };
            let _ = writeln!(out, "{address}\t{}", h.name);
        }
        out
    }
}

/// `HOST:IP` or `HOST=IP` (IPv6 addresses keep their colons; `host-gateway` allowed).
fn parse_extra_host(s: &str) -> Result<ExtraHost, String> {
    let (name, address) = s
        .split_once('=')
        .or_else(|| s.split_once(':'))
        .ok_or_else(|| format!("invalid extra host {s:?}: expected HOST:IP"))?;
    let address = address.trim_start_matches('[').trim_end_matches(']');
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!(
            "invalid extra host {s:?}: the host name is empty or has blanks"
        ));
    }
    if address != HOST_GATEWAY && address.parse::<IpAddr>().is_err() {
        return Err(format!(
            "invalid extra host {s:?}: {address:?} is not an IP address or {HOST_GATEWAY}"
        ));
    }
    Ok(ExtraHost {
        name: name.to_string(),
        address: address.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver() -> Resolver {
        Resolver::from_request(&CreateContainer {
            dns: vec!["192.0.2.53".parse().unwrap()],
            dns_search: vec!["corp.example".into(), "example".into()],
            dns_options: vec!["ndots:2".into()],
            extra_hosts: vec![
                "db.local:192.0.2.7".into(),
                "v6=::1".into(),
                "host.docker.internal:host-gateway".into(),
            ],
            ..CreateContainer::default()
        })
        .unwrap()
    }

    const NETD: &str = "# generated by berth\nsearch host.example\nnameserver 10.89.0.1\n";

    #[test]
    fn on_a_network_the_nameserver_stays_and_search_and_options_are_replaced() {
        assert_eq!(
            resolver().resolv_conf(NETD, false),
            "# generated by berth\nnameserver 10.89.0.1\nsearch corp.example example\noptions ndots:2\n"
        );
    }

    #[test]
    fn direct_resolvers_replace_the_nameservers() {
        let conf = resolver().resolv_conf("nameserver 127.0.0.53\noptions edns0\n", true);
        assert_eq!(
            conf,
            "search corp.example example\noptions ndots:2\nnameserver 192.0.2.53\n"
        );
        // Nothing of its own: the base stays as it is.
        assert_eq!(Resolver::default().resolv_conf(NETD, true), NETD);
    }

    #[test]
    fn extra_hosts_are_appended_with_the_gateway_resolved() {
        let hosts = resolver().hosts("127.0.0.1\tlocalhost", Some(Ipv4Addr::new(10, 89, 0, 1)));
        assert_eq!(
            hosts,
            "127.0.0.1\tlocalhost\n192.0.2.7\tdb.local\n::1\tv6\n10.89.0.1\thost.docker.internal\n"
        );
        assert!(!resolver().hosts("", None).contains("host.docker.internal"));
    }

    #[test]
    fn bad_entries_are_refused_with_what_is_wrong() {
        let err = |hosts: &[&str], search: &[&str]| {
            Resolver::from_request(&CreateContainer {
                extra_hosts: hosts.iter().map(|s| s.to_string()).collect(),
                dns_search: search.iter().map(|s| s.to_string()).collect(),
                ..CreateContainer::default()
            })
            .unwrap_err()
        };
        assert!(err(&["nohost"], &[]).contains("expected HOST:IP"));
        assert!(err(&["a:not-an-ip"], &[]).contains("\"not-an-ip\" is not an IP address"));
        assert!(err(&[], &["two words"]).contains("single word"));
    }
}
