//! Linux capability names and Docker's default set.

/// Capability names in kernel order (index = capability number).
const NAMES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Docker's default capability set.
pub const DEFAULT: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Error for an unknown capability name.
#[derive(Debug, thiserror::Error)]
#[error("unknown capability {0:?} (expected a name such as NET_ADMIN or CAP_NET_ADMIN, or ALL)")]
pub struct UnknownCapability(pub String);

/// The number of a capability given as `NET_ADMIN`, `CAP_NET_ADMIN` or `net_admin`.
pub fn number(name: &str) -> Result<u32, UnknownCapability> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    NAMES
        .iter()
        .position(|n| *n == bare)
        .map(|i| i as u32)
        .ok_or_else(|| UnknownCapability(name.to_string()))
}

/// The name of capability number `n`, `CAP_` prefixed.
pub fn name(n: u32) -> String {
    NAMES
        .get(n as usize)
        .map(|s| format!("CAP_{s}"))
        .unwrap_or_else(|| format!("CAP_{n}"))
}

/// The effective set for a container: Docker's default, plus `add`, minus `drop`; `ALL` works
/// in both lists as Docker's does.
pub fn resolve(add: &[String], drop: &[String]) -> Result<u64, UnknownCapability> {
    let all = (1u64 << NAMES.len()) - 1;
    let mut set = 0u64;
    for n in DEFAULT {
        set |= 1 << number(n)?;
    }
    for n in add {
        if n.eq_ignore_ascii_case("ALL") {
            set = all;
        } else {
            set |= 1 << number(n)?;
        }
    }
    for n in drop {
        if n.eq_ignore_ascii_case("ALL") {
            set = 0;
        } else {
            set &= !(1 << number(n)?);
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sets() {
        assert_eq!(number("CAP_SYS_ADMIN").unwrap(), 21);
        assert_eq!(number("net_admin").unwrap(), 12);
        assert_eq!(name(27), "CAP_MKNOD");
        let d = resolve(&[], &[]).unwrap();
        assert_eq!(d.count_ones(), 14);
        assert_eq!(d & (1 << 21), 0, "SYS_ADMIN is not in the default set");
        let s = resolve(&["NET_ADMIN".into()], &["MKNOD".into()]).unwrap();
        assert_ne!(s & (1 << 12), 0);
        assert_eq!(s & (1 << 27), 0);
        assert_eq!(resolve(&[], &["ALL".into()]).unwrap(), 0);
        assert!(number("NOPE").is_err());
    }
}
