//! The catalogue of compose keys: for each mapping of the model, the keys berth implements and
//! the keys of the Compose specification that it rejects with "not supported yet" (never
//! silently ignored). Any other key is unknown and gets a "did you mean" suggestion.

use super::read::KeySet;

#[rustfmt::skip]
pub(crate) const TOP_KEYS: KeySet = KeySet {
    known: &[
        "version", "name", "services", "networks", "volumes", "configs", "secrets", "include",
    ],
    unsupported: &[
        "models",
    ],
};

#[rustfmt::skip]
pub(crate) const NETWORK_KEYS: KeySet = KeySet {
    known: &[
        "name", "driver", "ipam", "internal", "external", "labels",
    ],
    unsupported: &[
        "driver_opts", "attachable", "enable_ipv4", "enable_ipv6",
    ],
};

#[rustfmt::skip]
pub(crate) const IPAM_KEYS: KeySet = KeySet {
    known: &[
        "config",
    ],
    unsupported: &[
        "driver", "options",
    ],
};

#[rustfmt::skip]
pub(crate) const POOL_KEYS: KeySet = KeySet {
    known: &[
        "subnet", "gateway",
    ],
    unsupported: &[
        "ip_range", "aux_addresses",
    ],
};

#[rustfmt::skip]
pub(crate) const VOLUME_KEYS: KeySet = KeySet {
    known: &[
        "name", "driver", "external", "labels",
    ],
    unsupported: &[
        "driver_opts",
    ],
};

#[rustfmt::skip]
pub(crate) const CONFIG_KEYS: KeySet = KeySet {
    known: &[
        "name", "file", "content", "environment", "external",
    ],
    unsupported: &[
        "labels", "template_driver",
    ],
};

#[rustfmt::skip]
pub(crate) const SECRET_KEYS: KeySet = KeySet {
    known: &[
        "name", "file", "environment", "external",
    ],
    unsupported: &[
        "labels", "driver", "driver_opts", "template_driver",
    ],
};

#[rustfmt::skip]
pub(crate) const SERVICE_KEYS: KeySet = KeySet {
    known: &[
        "build", "cap_add", "cap_drop", "command", "configs", "container_name", "cpus",
        "depends_on", "deploy", "dns", "dns_opt", "dns_search", "entrypoint", "env_file", "environment", "expose",
        "extra_hosts", "healthcheck", "hostname", "image", "init", "labels", "mem_limit",
        "network_mode", "networks", "pids_limit", "platform", "ports", "profiles", "read_only",
        "restart", "runtime", "scale", "secrets", "stdin_open", "stop_grace_period", "stop_signal",
        "sysctls", "tmpfs", "tty", "ulimits", "user", "volumes", "working_dir",
    ],
    unsupported: &[
        "annotations", "attach", "blkio_config", "cgroup", "cgroup_parent", "cpu_count",
        "cpu_percent", "cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime", "cpu_shares",
        "cpuset", "credential_spec", "develop", "device_cgroup_rules", "devices",
        "domainname", "driver_opts", "external_links", "gpus", "group_add", "ipc",
        "isolation", "label_file", "links", "logging", "mac_address", "mem_reservation",
        "mem_swappiness", "memswap_limit", "models", "oom_kill_disable", "oom_score_adj", "pid",
        "post_start", "pre_stop", "privileged", "provider", "pull_policy", "security_opt",
        "shm_size", "storage_opt", "use_api_socket", "userns_mode", "uts", "volumes_from",
    ],
};

#[rustfmt::skip]
pub(crate) const BUILD_KEYS: KeySet = KeySet {
    known: &[
        "context", "dockerfile", "args", "target",
    ],
    unsupported: &[
        "additional_contexts", "cache_from", "cache_to", "dockerfile_inline", "entitlements",
        "extra_hosts", "isolation", "labels", "network", "no_cache", "platforms", "privileged",
        "provenance", "pull", "sbom", "secrets", "shm_size", "ssh", "tags", "ulimits",
    ],
};

#[rustfmt::skip]
pub(crate) const DEPLOY_KEYS: KeySet = KeySet {
    known: &[
        "replicas", "resources", "restart_policy",
    ],
    unsupported: &[
        "mode", "endpoint_mode", "labels", "placement", "rollback_config", "update_config",
    ],
};

#[rustfmt::skip]
pub(crate) const RESOURCES_KEYS: KeySet = KeySet {
    known: &[
        "limits",
    ],
    unsupported: &[
        "reservations",
    ],
};

#[rustfmt::skip]
pub(crate) const LIMITS_KEYS: KeySet = KeySet {
    known: &[
        "cpus", "memory", "pids",
    ],
    unsupported: &[
        "devices",
    ],
};

#[rustfmt::skip]
pub(crate) const RESTART_POLICY_KEYS: KeySet = KeySet {
    known: &[
        "condition", "delay", "max_attempts", "window",
    ],
    unsupported: &[],
};

#[rustfmt::skip]
pub(crate) const HEALTHCHECK_KEYS: KeySet = KeySet {
    known: &[
        "test", "interval", "timeout", "retries", "start_period", "start_interval", "disable",
    ],
    unsupported: &[],
};

#[rustfmt::skip]
pub(crate) const ENV_FILE_KEYS: KeySet = KeySet {
    known: &[
        "path", "required",
    ],
    unsupported: &[
        "format",
    ],
};

#[rustfmt::skip]
pub(crate) const ULIMIT_KEYS: KeySet = KeySet {
    known: &[
        "soft", "hard",
    ],
    unsupported: &[],
};

#[rustfmt::skip]
pub(crate) const CAPABILITIES: [&str; 41] = [
    "AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE",
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER", "KILL",
    "LEASE", "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN",
    "NET_BIND_SERVICE", "NET_BROADCAST", "NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP",
    "SETUID", "SYSLOG", "SYS_ADMIN", "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE",
    "SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG",
    "WAKE_ALARM",
];

#[rustfmt::skip]
pub(crate) const SIGNALS: [&str; 31] = [
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU",
    "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

#[rustfmt::skip]
pub(crate) const DEPENDS_ON_KEYS: KeySet = KeySet {
    known: &[
        "condition", "restart", "required",
    ],
    unsupported: &[],
};

#[rustfmt::skip]
pub(crate) const SERVICE_NETWORK_KEYS: KeySet = KeySet {
    known: &[
        "aliases", "ipv4_address",
    ],
    unsupported: &[
        "ipv6_address", "link_local_ips", "mac_address", "driver_opts", "priority", "gw_priority",
        "interface_name",
    ],
};

#[rustfmt::skip]
pub(crate) const PORT_KEYS: KeySet = KeySet {
    known: &[
        "target", "published", "host_ip", "protocol",
    ],
    unsupported: &[
        "mode", "name", "app_protocol",
    ],
};

#[rustfmt::skip]
pub(crate) const MOUNT_KEYS: KeySet = KeySet {
    known: &[
        "type", "source", "target", "read_only", "bind", "volume", "tmpfs",
    ],
    unsupported: &[
        "consistency", "image",
    ],
};

#[rustfmt::skip]
pub(crate) const BIND_KEYS: KeySet = KeySet {
    known: &[
        "create_host_path",
    ],
    unsupported: &[
        "propagation", "selinux", "recursive",
    ],
};

#[rustfmt::skip]
pub(crate) const VOLUME_OPTION_KEYS: KeySet = KeySet {
    known: &[
        "nocopy",
    ],
    unsupported: &[
        "subpath",
    ],
};

#[rustfmt::skip]
pub(crate) const TMPFS_KEYS: KeySet = KeySet {
    known: &[
        "size", "mode",
    ],
    unsupported: &[],
};

#[rustfmt::skip]
pub(crate) const FILE_REF_KEYS: KeySet = KeySet {
    known: &[
        "source", "target", "uid", "gid", "mode",
    ],
    unsupported: &[],
};
