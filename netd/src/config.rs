//! netd's configuration: the subnet pool, interface naming, the per-root id and the host paths
//! it reads or writes (so tests can point them elsewhere).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnetwork::Ipv4Network;

use crate::names;

/// Errors of an invalid configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("address pool {pool} must be a network address with a prefix of at least /8")]
    Pool { pool: Ipv4Network },
    #[error("subnet prefix /{prefix} must lie between the pool's /{pool_prefix} and /30")]
    SubnetPrefix { prefix: u8, pool_prefix: u8 },
    #[error("bridge prefix {prefix:?} must be 1 to 7 of [a-z0-9-]")]
    BridgePrefix { prefix: String },
    #[error("root id {id:?} must be 1 to 12 of [a-z0-9]")]
    RootId { id: String },
}

/// How a [`crate::Netd`] behaves.
#[derive(Debug, Clone)]
pub struct NetdConfig {
    /// Where subnets come from when a network has none given. The default, 10.89.0.0/16, sits
    /// beside Podman's 10.88.0.0/16 and away from Docker's 172.17.0.0/16 and up.
    pub address_pool: Ipv4Network,
    /// Size of the subnets taken from the pool.
    pub subnet_prefix: u8,
    /// Bridge names are this prefix followed by the start of the network id.
    pub bridge_prefix: String,
    /// Distinguishes berth roots on one host: names the nftables table (`berth-ID`), the
    /// iptables chain (`BERTH-ID`) and enters the veth names. `None`: derived from the root
    /// path.
    pub root_id: Option<String>,
    /// Where the embedded DNS servers forward names they do not own. `None`: the nameservers
    /// of [`NetdConfig::host_resolv_conf`].
    pub dns_upstreams: Option<Vec<SocketAddr>>,
    /// The host's resolver configuration.
    pub host_resolv_conf: PathBuf,
    /// Where `sys/net/...` sysctls live.
    pub proc_root: PathBuf,
    /// Lock file shared by every berth root of the host, held while a subnet is picked and its
    /// bridge created.
    pub host_lock: PathBuf,
}

impl Default for NetdConfig {
    fn default() -> Self {
        Self {
            address_pool: Ipv4Network::new_checked(std::net::Ipv4Addr::new(10, 89, 0, 0), 16)
                .unwrap_or_else(|| unreachable!("16 is a valid prefix")),
            subnet_prefix: 24,
            bridge_prefix: "br-".to_string(),
            root_id: None,
            dns_upstreams: None,
            host_resolv_conf: PathBuf::from("/etc/resolv.conf"),
            proc_root: PathBuf::from("/proc"),
            host_lock: PathBuf::from("/run/berth/netd.lock"),
        }
    }
}

impl NetdConfig {
    /// Checks the configuration and returns the root id in force for `root`.
    pub(crate) fn validate(&self, root: &Path) -> Result<String, ConfigError> {
        let pool = self.address_pool;
        if pool.prefix() < 8 || pool.ip() != pool.network() {
            return Err(ConfigError::Pool { pool });
        }
        if self.subnet_prefix < pool.prefix() || self.subnet_prefix > 30 {
            return Err(ConfigError::SubnetPrefix {
                prefix: self.subnet_prefix,
                pool_prefix: pool.prefix(),
            });
        }
        if !names::valid_bridge_prefix(&self.bridge_prefix) {
            return Err(ConfigError::BridgePrefix {
                prefix: self.bridge_prefix.clone(),
            });
        }
        let id = match &self.root_id {
            Some(id) => id.clone(),
            None => names::root_id_for(root),
        };
        if !names::valid_root_id(&id) {
            return Err(ConfigError::RootId { id });
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        let id = NetdConfig::default()
            .validate(Path::new("/var/lib/berth/net"))
            .unwrap();
        assert_eq!(id.len(), 8);
    }

    #[test]
    fn rejects_bad_values() {
        let root = Path::new("/r");
        let c = NetdConfig {
            subnet_prefix: 12,
            ..Default::default()
        };
        assert!(matches!(
            c.validate(root),
            Err(ConfigError::SubnetPrefix { .. })
        ));
        let c = NetdConfig {
            address_pool: "10.89.0.1/16".parse().unwrap(),
            ..Default::default()
        };
        assert!(matches!(c.validate(root), Err(ConfigError::Pool { .. })));
        let c = NetdConfig {
            bridge_prefix: "BR".into(),
            ..Default::default()
        };
        assert!(matches!(
            c.validate(root),
            Err(ConfigError::BridgePrefix { .. })
        ));
        let c = NetdConfig {
            root_id: Some("x_y".into()),
            ..Default::default()
        };
        assert!(matches!(c.validate(root), Err(ConfigError::RootId { .. })));
        let c = NetdConfig {
            root_id: Some("t1".into()),
            ..Default::default()
        };
        assert_eq!(c.validate(root).unwrap(), "t1");
    }
}
