//! The public request and result types of netd's API: what the engine passes to
//! [`crate::Netd`] and what it gets back (all serializable, for the engine's HTTP API).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use ipnetwork::Ipv4Network;
use serde::{Deserialize, Serialize};

/// What `network create` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    pub name: String,
    /// `None`: the next free subnet of the configured pool.
    pub subnet: Option<Ipv4Network>,
    /// `None`: the first host address of the subnet.
    pub gateway: Option<Ipv4Addr>,
    /// No egress, no published ports, no access to the host beyond DNS.
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
}

/// A network as `network ls`/`inspect` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    pub name: String,
    /// The Linux bridge interface.
    pub bridge: String,
    pub subnet: Ipv4Network,
    pub gateway: Ipv4Addr,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    /// Unix seconds.
    pub created: u64,
    /// Attached containers.
    pub containers: Vec<NetworkContainer>,
}

/// One container attached to a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkContainer {
    pub container_id: String,
    pub container_name: String,
    pub ipv4: Ipv4Addr,
    pub mac: String,
    pub aliases: Vec<String>,
    pub service: Option<String>,
    pub dns_enabled: bool,
}

/// One network a container joins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSpec {
    /// Network name.
    pub network: String,
    /// Extra DNS names on this network (`--network-alias`).
    pub aliases: Vec<String>,
    /// Static address (`--ip`, compose `ipv4_address`).
    pub ipv4: Option<Ipv4Addr>,
    /// DNS name shared by every replica of a service.
    pub service: Option<String>,
    /// The container's own DNS name.
    pub container_name: String,
    /// Resolvers the network's DNS server asks for this container's names that netd does not
    /// own (compose `dns`, `--dns`); empty: the host's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_upstreams: Vec<IpAddr>,
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

impl FromStr for Proto {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            other => Err(format!("unknown protocol {other:?}: expected tcp or udp")),
        }
    }
}

/// One port to publish (`-p [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`; ranges are expanded
/// by the caller into one spec per port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    /// `0.0.0.0`: every address of the host.
    pub host_ip: Ipv4Addr,
    /// `None`: an ephemeral port picked by the kernel.
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub proto: Proto,
}

/// A published port as it is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
    pub proto: Proto,
}

/// One attached network as the container sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointInfo {
    pub network: String,
    pub network_id: String,
    /// Interface inside the container (`eth0`, `eth1`, ...).
    pub interface: String,
    /// Host-side veth.
    pub host_interface: String,
    pub ipv4: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
}

/// The result of attaching a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub container_id: String,
    pub endpoints: Vec<EndpointInfo>,
    pub ports: Vec<PublishedPort>,
    /// Contents for the container's `/etc/resolv.conf`.
    pub resolv_conf: String,
    /// Contents for the container's `/etc/hosts`.
    pub hosts: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proto_text_forms() {
        assert_eq!("udp".parse::<Proto>().unwrap(), Proto::Udp);
        assert_eq!(Proto::Tcp.to_string(), "tcp");
        assert!("sctp".parse::<Proto>().is_err());
        assert_eq!(serde_json::to_string(&Proto::Udp).unwrap(), "\"udp\"");
    }
}
