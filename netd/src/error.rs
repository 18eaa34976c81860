//! The error type of netd's public API: request errors (what the caller asked is not
//! possible) and the errors of each module, passed through with their context.

use std::path::PathBuf;

use crate::config::ConfigError;
use crate::dns::DnsError;
use crate::firewall::FirewallError;
use crate::ipam::IpamError;
use crate::netlink::NetlinkError;
use crate::ports::PortError;
use crate::state::StateError;
use crate::sys::SysError;
use crate::sysctl::SysctlError;

/// Everything that can go wrong in a [`crate::Netd`] call.
#[derive(Debug, thiserror::Error)]
pub enum NetdError {
    #[error("invalid netd config")]
    Config(#[source] ConfigError),
    #[error("create netd root {path}")]
    Root {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid network {name:?}: {reason}")]
    InvalidNetwork { name: String, reason: String },
    #[error("network {0} already exists")]
    NetworkExists(String),
    #[error("network {0} not found")]
    NetworkNotFound(String),
    #[error("network {name} is in use by containers {}", containers.join(", "))]
    NetworkInUse {
        name: String,
        containers: Vec<String>,
    },
    #[error("invalid endpoint of container {container} on network {network}: {reason}")]
    InvalidEndpoint {
        container: String,
        network: String,
        reason: String,
    },
    #[error("container {container} is already attached to network {network}")]
    AlreadyAttached { container: String, network: String },
    #[error("container {container} cannot publish ports: {reason}")]
    InvalidPorts { container: String, reason: String },
    #[error("container {0} is not attached to any network")]
    NotAttached(String),
    #[error("allocate addresses on network {network}")]
    Ipam {
        network: String,
        #[source]
        source: IpamError,
    },
    #[error("open network namespace {path}")]
    Netns {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    #[error(transparent)]
    Dns(#[from] DnsError),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error(transparent)]
    Sysctl(#[from] SysctlError),
    #[error(transparent)]
    Sys(#[from] SysError),
    #[error("{what}: {} step(s) failed: {}", errors.len(), summary(errors))]
    Teardown {
        what: String,
        errors: Vec<NetdError>,
    },
}

/// One line per error with its source chain.
fn summary(errors: &[NetdError]) -> String {
    errors
        .iter()
        .map(|e| {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            s
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl NetdError {
    /// `Ok` when `errors` is empty, else one [`NetdError::Teardown`] carrying all of them.
    pub(crate) fn collect(
        what: impl Into<String>,
        errors: Vec<NetdError>,
    ) -> Result<(), NetdError> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(NetdError::Teardown {
                what: what.into(),
                errors,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teardown_lists_every_error_with_sources() {
        let e = NetdError::collect(
            "detach container c1",
            vec![
                NetdError::NetworkNotFound("a".into()),
                NetdError::Ipam {
                    network: "b".into(),
                    source: IpamError::SubnetFull {
                        subnet: "10.0.0.0/30".parse().unwrap(),
                    },
                },
            ],
        )
        .unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("detach container c1: 2 step(s) failed"),
            "{s}"
        );
        assert!(s.contains("network a not found"));
        assert!(s.contains(
            "allocate addresses on network b: subnet 10.0.0.0/30 has no free address left"
        ));
        assert!(NetdError::collect("x", vec![]).is_ok());
    }
}
