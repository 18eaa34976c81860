//! Kernel parameters netd sets: IPv4 forwarding (only once a network with egress exists) and
//! `route_localnet` on bridges that carry published ports from 127.0.0.1.
//!
//! Writers take the proc root so unit tests run on a temporary directory. Values under
//! `/proc/sys/net` belong to the network namespace of the calling thread.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Errors of reading or writing a sysctl.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    #[error("read sysctl {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("write {value} to sysctl {path}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
}

/// Sysctls under a proc root.
#[derive(Debug, Clone)]
pub(crate) struct Sysctl {
    root: PathBuf,
}

impl Sysctl {
    pub(crate) fn new(proc_root: &Path) -> Self {
        Self {
            root: proc_root.join("sys"),
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// The value of `key` (`net/ipv4/ip_forward`), trimmed.
    pub(crate) fn get(&self, key: &str) -> Result<String, SysctlError> {
        let path = self.path(key);
        fs::read_to_string(&path)
            .map(|s| s.trim().to_string())
            .map_err(|source| SysctlError::Read { path, source })
    }

    /// Sets `key` to `value` unless it already has it; returns whether it wrote.
    pub(crate) fn ensure(&self, key: &str, value: &str) -> Result<bool, SysctlError> {
        if self.get(key)? == value {
            return Ok(false);
        }
        let path = self.path(key);
        fs::write(&path, value).map_err(|source| SysctlError::Write {
            path,
            value: value.to_string(),
            source,
        })?;
        Ok(true)
    }
}

impl Sysctl {
    /// Like [`Sysctl::ensure`], but a key the kernel does not have (IPv6 compiled out) is
    /// nothing to do.
    pub(crate) fn ensure_if_present(&self, key: &str, value: &str) -> Result<bool, SysctlError> {
        match self.ensure(key, value) {
            Err(SysctlError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(false)
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_writes_only_changes() {
        let dir = tempfile::tempdir().unwrap();
        let key = "net/ipv4/ip_forward";
        fs::create_dir_all(dir.path().join("sys/net/ipv4")).unwrap();
        fs::write(dir.path().join("sys").join(key), "0\n").unwrap();
        let s = Sysctl::new(dir.path());
        assert_eq!(s.get(key).unwrap(), "0");
        assert!(s.ensure(key, "1").unwrap());
        assert!(!s.ensure(key, "1").unwrap());
        assert_eq!(s.get(key).unwrap(), "1");
        let err = s
            .ensure("net/ipv4/conf/nope/route_localnet", "1")
            .unwrap_err();
        assert!(err.to_string().contains("nope/route_localnet"));
    }
}
