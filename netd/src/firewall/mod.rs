//! Packet filtering and NAT: isolation between networks, egress masquerade, published ports,
//! and coexistence with Docker's iptables chains.
//!
//! # Mechanism
//!
//! Every rule of a berth root lives in one nftables table, `ip berth-<root id>`, rendered from
//! netd's state as a whole and loaded with `nft -f -` in a single transaction that deletes and
//! re-creates the table. Loading is atomic (no window with half the rules), idempotent (the
//! same state gives the same table, so `open` simply re-applies it) and removal is exact:
//! deleting the table removes every rule netd made and nothing else. The table is rewritten
//! only when networks change or published ports come and go; attaching a container without
//! ports touches no rule.
//!
//! Published ports use DNAT in the kernel rather than a userland proxy: no copy through the
//! engine, no extra latency, the client's source address is preserved, and ports keep working
//! while the engine restarts. Traffic from other hosts is translated in `prerouting`, traffic
//! of the host itself (including 127.0.0.1) in `output`; for loopback sources the bridge gets
//! `route_localnet` and the packets are masqueraded to the gateway address, and packets that
//! a container sends to 127.0.0.0/8 through the bridge are dropped so `route_localnet` opens
//! nothing. Container-to-published-port traffic on the same bridge (hairpin) is masqueraded so
//! replies return through the host. The host port itself is held by a bound socket (see
//! [`crate::ports`]) so no other program can take it and a taken port is a clear error before
//! anything is created.
//!
//! Isolation: a bridge accepts forwarded packets only from itself, for established flows, and
//! for DNAT'd (published) flows; containers cannot reach the host's addresses on other berth
//! networks, and a gateway address (with its DNS server) answers only its own bridge and the
//! host, so containers of other berth roots cannot reach it either; internal networks forward
//! nothing off their bridge and reach only DNS (and ping) on their gateway.
//!
//! Docker sets the FORWARD policy to DROP and, with `br_netfilter`, even traffic between two
//! ports of one berth bridge crosses that chain. When Docker's `DOCKER-USER` chain exists,
//! the `docker` module adds a jump from it to our own chain `BERTH-<root id>`, which accepts traffic in
//! and out of our bridges only; Docker's own rules are untouched and our nftables table still
//! decides what is allowed.

pub(crate) mod docker;
mod nft;

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;

use crate::types::Proto;

pub use docker::DockerError;
pub use nft::NftError;

/// A network as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FwNetwork {
    pub bridge: String,
    pub subnet: Ipv4Network,
    pub gateway: Ipv4Addr,
    pub internal: bool,
}

/// A published port as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FwPort {
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub proto: Proto,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
}

/// Errors of applying firewall rules.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error(transparent)]
    Nft(#[from] NftError),
    #[error(transparent)]
    Docker(#[from] DockerError),
}

/// The firewall of one berth root.
#[derive(Debug, Clone)]
pub(crate) struct Firewall {
    table: String,
    docker: docker::DockerUser,
}

impl Firewall {
    pub(crate) fn new(root_id: &str) -> Self {
        Self {
            table: format!("berth-{root_id}"),
            docker: docker::DockerUser::new(format!("BERTH-{root_id}")),
        }
    }

    /// The nftables table name (`ip` family).
    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    /// The iptables chain hooked into `DOCKER-USER`.
    pub(crate) fn docker_chain(&self) -> &str {
        self.docker.chain()
    }

    /// Replaces the nftables table with the rules for `networks` and `ports`; with no network
    /// left, deletes the table.
    pub(crate) async fn apply_rules(
        &self,
        networks: &[FwNetwork],
        ports: &[FwPort],
    ) -> Result<(), FirewallError> {
        if networks.is_empty() {
            return match nft::run(&render_delete(&self.table)).await {
                // Without nft there is no table of ours to delete: a host that never uses
                // networks does not need nftables.
                Err(NftError::Spawn(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                other => Ok(other?),
            };
        }
        nft::run(&render(&self.table, networks, ports)).await?;
        Ok(())
    }

    /// Makes the Docker coexistence chain accept traffic of exactly these bridges (removing it
    /// when the list is empty or Docker's chain is gone).
    pub(crate) async fn apply_docker(&self, bridges: &[String]) -> Result<(), FirewallError> {
        self.docker.apply(bridges).await?;
        Ok(())
    }
}

/// A script that removes the table whether it exists or not.
fn render_delete(table: &str) -> String {
    format!("table ip {table}\ndelete table ip {table}\n")
}

/// The whole table for a root, preceded by its deletion so loading replaces it atomically.
pub(crate) fn render(table: &str, networks: &[FwNetwork], ports: &[FwPort]) -> String {
    let mut s = render_delete(table);
    let _ = writeln!(s, "table ip {table} {{");
    render_subnets(&mut s, networks);
    render_filter(&mut s, networks);
    render_nat(&mut s, networks, ports);
    s.push_str("}\n");
    s
}

fn render_subnets(s: &mut String, networks: &[FwNetwork]) {
    let subnets: Vec<String> = networks.iter().map(|n| n.subnet.to_string()).collect();
    s.push_str("\tset subnets {\n\t\ttype ipv4_addr\n\t\tflags interval\n");
    if !subnets.is_empty() {
        let _ = writeln!(s, "\t\telements = {{ {} }}", subnets.join(", "));
    }
    s.push_str("\t}\n");
}

fn render_filter(s: &mut String, networks: &[FwNetwork]) {
    s.push_str("\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n");
    for n in networks {
        let b = &n.bridge;
        let _ = writeln!(s, "\t\toifname \"{b}\" ct state established,related accept");
        let _ = writeln!(s, "\t\toifname \"{b}\" iifname \"{b}\" accept");
        if !n.internal {
            let _ = writeln!(s, "\t\toifname \"{b}\" ct status dnat accept");
        }
        let _ = writeln!(s, "\t\toifname \"{b}\" drop");
        if n.internal {
            let _ = writeln!(s, "\t\tiifname \"{b}\" drop");
        }
    }
    s.push_str("\t}\n");

    s.push_str("\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n");
    for n in networks {
        let b = &n.bridge;
        // The gateway (DNS server) answers its own bridge and the host only: not containers
        // of other berth roots, whose tables know nothing of this network.
        let _ = writeln!(
            s,
            "\t\tiifname != \"{b}\" iifname != \"lo\" ip daddr {} drop",
            n.gateway
        );
        // Replies of published loopback ports arrive here addressed to 127.0.0.1.
        let _ = writeln!(s, "\t\tiifname \"{b}\" ct state established,related accept");
        let _ = writeln!(s, "\t\tiifname \"{b}\" ip daddr 127.0.0.0/8 drop");
        if n.internal {
            let g = n.gateway;
            let _ = writeln!(s, "\t\tiifname \"{b}\" ip daddr {g} udp dport 53 accept");
            let _ = writeln!(s, "\t\tiifname \"{b}\" ip daddr {g} tcp dport 53 accept");
            let _ = writeln!(
                s,
                "\t\tiifname \"{b}\" ip daddr {g} icmp type echo-request accept"
            );
            let _ = writeln!(s, "\t\tiifname \"{b}\" drop");
        } else {
            let _ = writeln!(
                s,
                "\t\tiifname \"{b}\" ip daddr != {} ip daddr @subnets drop",
                n.subnet
            );
        }
    }
    s.push_str("\t}\n");
}

fn render_nat(s: &mut String, networks: &[FwNetwork], ports: &[FwPort]) {
    s.push_str("\tchain publish {\n");
    for p in ports {
        let daddr = if p.host_ip.is_unspecified() {
            String::new()
        } else {
            format!("ip daddr {} ", p.host_ip)
        };
        let _ = writeln!(
            s,
            "\t\t{daddr}{} dport {} dnat to {}:{}",
            p.proto, p.host_port, p.container_ip, p.container_port
        );
    }
    s.push_str("\t}\n");
    s.push_str(
        "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\
         \t\tip daddr != 127.0.0.0/8 fib daddr type local jump publish\n\t}\n",
    );
    s.push_str(
        "\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n\
         \t\tfib daddr type local jump publish\n\t}\n",
    );
    s.push_str(
        "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n",
    );
    for n in networks.iter().filter(|n| !n.internal) {
        let (b, sub) = (&n.bridge, n.subnet);
        let _ = writeln!(s, "\t\toifname \"{b}\" ip saddr 127.0.0.0/8 masquerade");
        let _ = writeln!(
            s,
            "\t\toifname \"{b}\" ct status dnat ip saddr {sub} masquerade"
        );
        let _ = writeln!(s, "\t\toifname != \"{b}\" ip saddr {sub} masquerade");
    }
    s.push_str("\t}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets() -> Vec<FwNetwork> {
        vec![
            FwNetwork {
                bridge: "br-aaa".into(),
                subnet: "10.89.0.0/24".parse().unwrap(),
                gateway: Ipv4Addr::new(10, 89, 0, 1),
                internal: false,
            },
            FwNetwork {
                bridge: "br-bbb".into(),
                subnet: "10.89.1.0/24".parse().unwrap(),
                gateway: Ipv4Addr::new(10, 89, 1, 1),
                internal: true,
            },
        ]
    }

    #[test]
    fn renders_isolation_egress_and_ports() {
        let ports = vec![
            FwPort {
                host_ip: Ipv4Addr::UNSPECIFIED,
                host_port: 8080,
                proto: Proto::Tcp,
                container_ip: Ipv4Addr::new(10, 89, 0, 2),
                container_port: 80,
            },
            FwPort {
                host_ip: Ipv4Addr::LOCALHOST,
                host_port: 5353,
                proto: Proto::Udp,
                container_ip: Ipv4Addr::new(10, 89, 0, 3),
                container_port: 53,
            },
        ];
        let s = render("berth-t1", &nets(), &ports);
        assert!(s.starts_with("table ip berth-t1\ndelete table ip berth-t1\ntable ip berth-t1 {\n"));
        assert!(s.contains("elements = { 10.89.0.0/24, 10.89.1.0/24 }"));
        // Egress only for the non-internal network.
        assert!(s.contains("oifname != \"br-aaa\" ip saddr 10.89.0.0/24 masquerade"));
        assert!(!s.contains("ip saddr 10.89.1.0/24 masquerade"));
        // The internal network forwards nothing off its bridge.
        assert!(s.contains("iifname \"br-bbb\" drop"));
        assert!(!s.contains("iifname \"br-aaa\" drop"));
        // Ports.
        assert!(s.contains("\t\ttcp dport 8080 dnat to 10.89.0.2:80\n"));
        assert!(s.contains("\t\tip daddr 127.0.0.1 udp dport 5353 dnat to 10.89.0.3:53\n"));
        // Balanced braces.
        assert_eq!(s.matches('{').count(), s.matches('}').count());
    }

    #[test]
    fn delete_script_is_idempotent() {
        assert_eq!(
            render_delete("berth-x"),
            "table ip berth-x\ndelete table ip berth-x\n"
        );
    }
}
