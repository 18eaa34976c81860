//! Names and identifiers netd derives: network ids, bridge and veth interface names, MAC
//! addresses, the per-root id and the validation of user-given names.
//!
//! Interface names must fit `IFNAMSIZ - 1` (15) bytes. Everything here is pure so it is unit
//! tested without privileges.

use std::net::Ipv4Addr;
use std::path::Path;

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Longest interface name the kernel accepts (`IFNAMSIZ - 1`).
pub(crate) const IFNAME_MAX: usize = 15;

/// Prefix of every host-side veth name.
const VETH_PREFIX: &str = "vb";

/// First two bytes of every MAC netd derives: `0a` is a locally administered unicast address,
/// `b7` marks berth.
const MAC_PREFIX: [u8; 2] = [0x0a, 0xb7];

/// A fresh random network id: 64 lowercase hex characters, like Docker's.
pub(crate) fn new_network_id() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The bridge name of a network: `prefix` followed by as much of the id as fits 15 bytes.
pub(crate) fn bridge_name(prefix: &str, network_id: &str) -> String {
    let room = IFNAME_MAX.saturating_sub(prefix.len());
    let take = room.min(network_id.len());
    format!("{prefix}{}", &network_id[..take])
}

/// A fresh host-side veth name: random, so a container re-attached right after a detach
/// never waits for its previous veth (still being deleted) to free the name.
pub(crate) fn veth_name() -> String {
    let mut bytes = [0u8; 6];
    rand::rng().fill_bytes(&mut bytes);
    let room = IFNAME_MAX - VETH_PREFIX.len() - 2;
    format!("{VETH_PREFIX}{}", &hex::encode(bytes)[..room])
}

/// The interface alias that marks a bridge as made by this root: lets `open` find bridges it
/// made but never recorded (a crash between creating and persisting).
pub(crate) fn bridge_alias(root_id: &str, network_id: &str) -> String {
    format!("berth:{root_id}:{network_id}")
}

/// The alias prefix shared by every bridge of one root.
pub(crate) fn bridge_alias_prefix(root_id: &str) -> String {
    format!("berth:{root_id}:")
}

/// The MAC derived from an IPv4 address: stable across restarts so neighbours' ARP caches stay
/// valid when a container comes back with the same address.
pub(crate) fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [MAC_PREFIX[0], MAC_PREFIX[1], o[0], o[1], o[2], o[3]]
}

/// `aa:bb:cc:dd:ee:ff`.
pub(crate) fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The default root id: the first 8 hex characters of the SHA-256 of the root path.
pub(crate) fn root_id_for(root: &Path) -> String {
    let digest = Sha256::digest(root.as_os_str().as_encoded_bytes());
    hex::encode(digest)[..8].to_string()
}

/// Root ids end up in nftables table and iptables chain names: 1 to 12 of `[a-z0-9]`.
pub(crate) fn valid_root_id(id: &str) -> bool {
    (1..=12).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Bridge prefixes: 1 to 7 of `[a-z0-9-]`, so at least 8 id characters remain.
pub(crate) fn valid_bridge_prefix(prefix: &str) -> bool {
    (1..=7).contains(&prefix.len())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Network names: like Docker's, `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 64 bytes.
pub(crate) fn valid_network_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    name.len() <= 64 && bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// DNS names a container answers to: one label or a dotted name of `[a-zA-Z0-9_-]` labels.
pub(crate) fn valid_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The short form of a container id used as an extra DNS name (Docker answers to it too).
pub(crate) fn short_id(container_id: &str) -> &str {
    let end = container_id
        .char_indices()
        .nth(12)
        .map_or(container_id.len(), |(i, _)| i);
    &container_id[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_names_fit_ifnamsiz() {
        let id = new_network_id();
        assert_eq!(id.len(), 64);
        let name = bridge_name("br-", &id);
        assert_eq!(name.len(), IFNAME_MAX);
        assert!(name.starts_with("br-"));
        assert_eq!(&name[3..], &id[..12]);
        assert_eq!(bridge_name("b-", "abc"), "b-abc");
    }

    #[test]
    fn veth_names_are_short_and_distinct() {
        let a = veth_name();
        assert_ne!(a, veth_name());
        assert_eq!(a.len(), 13);
        assert!(a.starts_with("vb"));
    }

    #[test]
    fn mac_is_derived_from_address() {
        let mac = mac_for(Ipv4Addr::new(10, 89, 3, 7));
        assert_eq!(format_mac(mac), "0a:b7:0a:59:03:07");
        // Locally administered, unicast.
        assert_eq!(mac[0] & 0b11, 0b10);
    }

    #[test]
    fn root_ids() {
        let id = root_id_for(Path::new("/var/lib/berth"));
        assert_eq!(id.len(), 8);
        assert!(valid_root_id(&id));
        assert_ne!(id, root_id_for(Path::new("/var/lib/berth2")));
        assert!(!valid_root_id(""));
        assert!(!valid_root_id("ABC"));
        assert!(!valid_root_id("abcdefghijklm"));
    }

    #[test]
    fn name_validation() {
        assert!(valid_network_name("front_end-1.x"));
        assert!(!valid_network_name("-x"));
        assert!(!valid_network_name(""));
        assert!(!valid_network_name("a b"));
        assert!(valid_dns_name("web"));
        assert!(valid_dns_name("web.internal"));
        assert!(!valid_dns_name("web..x"));
        assert!(!valid_dns_name("we b"));
        assert!(valid_bridge_prefix("br-"));
        assert!(!valid_bridge_prefix("Br"));
        assert!(!valid_bridge_prefix("toolong-"));
    }

    #[test]
    fn short_ids() {
        assert_eq!(short_id("0123456789abcdef"), "0123456789ab");
        assert_eq!(short_id("abc"), "abc");
    }
}
