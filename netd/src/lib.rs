//! berth's network layer: bridge networks, veth pairs, IPAM, service-name DNS, published
//! ports, egress NAT and isolation, with state that survives engine restarts.
//!
//! The engine holds one [`Netd`] per berth root and calls it to create and remove networks and
//! to attach and detach container network namespaces. Everything is async (tokio); netlink goes
//! through rtnetlink, firewall rules through one nftables table per root (see [`firewall`]),
//! DNS through hickory-proto (see [`dns`]).
//!
//! # How a container gets on a network
//!
//! [`Netd::attach`] creates, per network, a veth pair whose container end is born inside the
//! container's namespace (`eth0`, `eth1`, ...; MAC derived from the address; no IPv6
//! addresses, networks are IPv4), adds the address, the default route via the first network
//! with egress and brings `lo` up; DNS records and, for published ports, DNAT rules follow.
//! [`Netd::detach`] sets the host ends down (the container is cut off at once) and leaves
//! their deletion, the slow part in the kernel, to a background batch. State is persisted on
//! every change (see [`state`]); [`Netd::open`] restores bridges, rules, DNS servers and port
//! reservations after an engine restart and [`Netd::reconcile`] drops the containers that
//! died meanwhile.
//!
//! # Host requirements
//!
//! Root; the `nft` tool (nftables package) for rules; the `iptables` tool only where Docker's
//! chains exist (Docker ships with it). Rules live in the table `ip berth-<root id>` and,
//! beside Docker, the chain `BERTH-<root id>`; bridges are `br-<network id>`, host-side veths
//! `vb<random>`.
//!
//! # Layout
//!
//! - [`manager`]: [`Netd`], the API: open/reconcile/shutdown, networks, endpoints.
//! - [`types`]: request and result types of the API.
//! - [`config`]: the configuration, [`NetdConfig`].
//! - [`ipam`]: subnet and address allocation (pure).
//! - [`state`]: the persisted state and its atomic writes.
//! - [`slots`]: double-buffered files for state written on every attach and detach.
//! - [`names`]: ids, interface names, MACs.
//! - [`netlink`]: bridges, veths, addresses, routes over rtnetlink.
//! - [`firewall`]: nftables table (isolation, NAT, ports) and Docker coexistence.
//! - [`dns`]: the embedded per-network DNS servers and their records.
//! - [`ports`]: host port reservations.
//! - [`files`]: the container's `/etc/resolv.conf` and `/etc/hosts`.
//! - [`sysctl`]: kernel parameters (forwarding, `route_localnet`).
//! - [`sys`]: namespace switching on dedicated threads and the host-wide lock.
//! - [`error`]: the error type, [`NetdError`].
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod config;
pub mod dns;
pub mod error;
pub mod files;
pub mod firewall;
pub mod ipam;
pub mod manager;
pub mod names;
pub mod netlink;
pub mod ports;
pub mod slots;
pub mod state;
pub mod sys;
pub mod sysctl;
pub mod types;

pub use config::NetdConfig;
pub use error::NetdError;
pub use manager::Netd;
pub use types::{
    Attachment, EndpointInfo, EndpointSpec, Network, NetworkContainer, NetworkSpec, PortSpec,
    Proto, PublishedPort,
};
