//! Phase 5, the service keys that refer to other things: `depends_on`, `networks`,
//! `network_mode`, `ports`, `volumes`, `secrets` and `configs`, each read from its short or long
//! syntax into the long form. Whether the referenced services, networks, volumes, secrets and
//! configs exist is checked by the validate phase.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_yaml::Value;

use super::keys::{
    BIND_KEYS, DEPENDS_ON_KEYS, FILE_REF_KEYS, MOUNT_KEYS, PORT_KEYS, SERVICE_NETWORK_KEYS,
    TMPFS_KEYS, VOLUME_OPTION_KEYS,
};
use super::parse::{join_index, join_key};
use super::read::describe;
use super::service::{
    BindOptions, Condition, DependsOn, FileRef, Mount, MountType, NetworkMode, Port, PortRange,
    ServiceNetwork, TmpfsOptions, VolumeOptions,
};
use super::shorthand::{parse_port, parse_protocol, parse_volume};
use super::Norm;

impl Norm<'_> {
    pub(crate) fn depends_on(&mut self, path: &str, v: &Value) -> BTreeMap<String, DependsOn> {
        let mut out = BTreeMap::new();
        match v {
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(name) = self.r.string(&join_index(path, i), item) {
                        out.insert(name, DependsOn::default());
                    }
                }
            }
            Value::Mapping(m) => {
                for (k, val) in m {
                    let name = super::read::key_text(k);
                    let p = join_key(path, &name);
                    let mut dep = DependsOn::default();
                    if let Value::Mapping(dm) = val {
                        for (key, kp, v) in self.r.fields(&p, dm, &DEPENDS_ON_KEYS) {
                            match key {
                                "condition" => dep.condition = self.condition(&kp, v),
                                "restart" => dep.restart = self.r.bool(&kp, v).unwrap_or(false),
                                "required" => dep.required = self.r.bool(&kp, v).unwrap_or(true),
                                _ => {}
                            }
                        }
                    } else if !val.is_null() {
                        self.r.error(
                            &p,
                            format!(
                                "expected a mapping with `condition`, found {}",
                                describe(val)
                            ),
                        );
                    }
                    out.insert(name, dep);
                }
            }
            other => {
                self.r.error(
                    path,
                    format!(
                        "expected a sequence of service names or a mapping, found {}",
                        describe(other)
                    ),
                );
            }
        }
        out
    }

    fn condition(&mut self, path: &str, v: &Value) -> Condition {
        match self.r.string(path, v).as_deref() {
            Some("service_started") => Condition::ServiceStarted,
            Some("service_healthy") => Condition::ServiceHealthy,
            Some("service_completed_successfully") => Condition::ServiceCompletedSuccessfully,
            Some(other) => {
                let hint = super::error::did_you_mean(
                    other,
                    [
                        "service_started",
                        "service_healthy",
                        "service_completed_successfully",
                    ],
                );
                self.r.error(
                    path,
                    format!(
                        "expected \"service_started\", \"service_healthy\" or \
                         \"service_completed_successfully\", found {other:?}{hint}"
                    ),
                );
                Condition::ServiceStarted
            }
            None => Condition::ServiceStarted,
        }
    }

    pub(crate) fn service_networks(
        &mut self,
        path: &str,
        v: &Value,
    ) -> BTreeMap<String, ServiceNetwork> {
        let mut out = BTreeMap::new();
        match v {
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(name) = self.r.string(&join_index(path, i), item) {
                        out.insert(name, ServiceNetwork::default());
                    }
                }
            }
            Value::Mapping(m) => {
                for (k, val) in m {
                    let name = super::read::key_text(k);
                    let p = join_key(path, &name);
                    let mut net = ServiceNetwork::default();
                    if let Value::Mapping(nm) = val {
                        for (key, kp, v) in self.r.fields(&p, nm, &SERVICE_NETWORK_KEYS) {
                            match key {
                                "aliases" => {
                                    net.aliases = self.r.string_list(&kp, v).unwrap_or_default()
                                }
                                "ipv4_address" => {
                                    let ip = self.r.string(&kp, v);
                                    net.ipv4_address = ip.and_then(|ip| match ip.parse() {
                                        Ok(a) => Some(a),
                                        Err(_) => {
                                            self.r.error(
                                                &kp,
                                                format!("expected an IPv4 address, found {ip:?}"),
                                            );
                                            None
                                        }
                                    });
                                }
                                _ => {}
                            }
                        }
                    } else if !val.is_null() {
                        self.r.error(
                            &p,
                            format!("expected a mapping or null, found {}", describe(val)),
                        );
                    }
                    out.insert(name, net);
                }
            }
            other => self.r.error(
                path,
                format!(
                    "expected a sequence of network names or a mapping, found {}",
                    describe(other)
                ),
            ),
        }
        out
    }

    pub(crate) fn network_mode(&mut self, path: &str, v: &Value) -> Option<NetworkMode> {
        let text = self.r.string(path, v)?;
        if text == "bridge" || text.starts_with("container:") {
            self.r.error(
                path,
                format!(
                    "network mode {text:?} is not supported yet; use \"none\", \"host\", \
                     \"service:NAME\" or project networks"
                ),
            );
            return None;
        }
        text.parse().map_err(|e: String| self.r.error(path, e)).ok()
    }

    pub(crate) fn ports(&mut self, path: &str, v: &Value) -> Vec<Port> {
        let Some(items) = self.r.seq(path, v) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let p = join_index(path, i);
            match item {
                Value::Number(_) | Value::String(_) => {
                    let spec = super::read::scalar_text(item).unwrap_or_default();
                    match parse_port(&spec) {
                        Ok(ports) => out.extend(ports),
                        Err(e) => self.r.error(&p, e),
                    }
                }
                Value::Mapping(m) => {
                    if let Some(port) = self.long_port(&p, m) {
                        out.push(port);
                    }
                }
                other => self.r.error(
                    &p,
                    format!(
                        "expected a port spec or a mapping, found {}",
                        describe(other)
                    ),
                ),
            }
        }
        out
    }

    fn long_port(&mut self, path: &str, m: &serde_yaml::Mapping) -> Option<Port> {
        let mut port = Port {
            target: 0,
            published: None,
            host_ip: None,
            protocol: Default::default(),
        };
        let mut ok = true;
        for (key, p, v) in self.r.fields(path, m, &PORT_KEYS) {
            let text = || super::read::scalar_text(v).unwrap_or_else(|| describe(v));
            match key {
                "target" => match text().parse::<PortRange>() {
                    Ok(r) if r.start == r.end => port.target = r.start,
                    Ok(_) => {
                        ok = false;
                        self.r
                            .error(&p, "expected a single container port, not a range");
                    }
                    Err(e) => {
                        ok = false;
                        self.r.error(&p, e);
                    }
                },
                "published" => match text().parse::<PortRange>() {
                    Ok(r) => port.published = Some(r),
                    Err(e) => {
                        ok = false;
                        self.r.error(&p, e);
                    }
                },
                "host_ip" => match text().parse::<IpAddr>() {
                    Ok(ip) => port.host_ip = Some(ip),
                    Err(_) => {
                        ok = false;
                        self.r
                            .error(&p, format!("expected an IP address, found {}", describe(v)));
                    }
                },
                "protocol" => match parse_protocol(&text()) {
                    Ok(proto) => port.protocol = proto,
                    Err(e) => {
                        ok = false;
                        self.r.error(&p, e);
                    }
                },
                _ => {}
            }
        }
        if port.target == 0 && ok {
            self.r.error(path, "missing `target`: the container port");
            return None;
        }
        ok.then_some(port)
    }

    pub(crate) fn mounts(&mut self, path: &str, v: &Value) -> Vec<Mount> {
        let Some(items) = self.r.seq(path, v) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let p = join_index(path, i);
            let mount = match item {
                Value::String(spec) => parse_volume(spec).map_err(|e| self.r.error(&p, e)).ok(),
                Value::Mapping(m) => self.long_mount(&p, m),
                other => {
                    self.r.error(
                        &p,
                        format!(
                            "expected a volume spec or a mapping, found {}",
                            describe(other)
                        ),
                    );
                    None
                }
            };
            let Some(mut mount) = mount else { continue };
            if mount.kind == MountType::Bind {
                let src = mount.source.clone().unwrap_or_default();
                mount.source = self.host_path(&p, &src);
            }
            out.push(mount);
        }
        out
    }

    fn long_mount(&mut self, path: &str, m: &serde_yaml::Mapping) -> Option<Mount> {
        let mut kind = None;
        let mut mount = Mount {
            kind: MountType::Volume,
            source: None,
            target: String::new(),
            read_only: false,
            bind: None,
            volume: None,
            tmpfs: None,
        };
        for (key, p, v) in self.r.fields(path, m, &MOUNT_KEYS) {
            match key {
                "type" => {
                    kind = match self.r.string(&p, v).as_deref() {
                        Some("bind") => Some(MountType::Bind),
                        Some("volume") => Some(MountType::Volume),
                        Some("tmpfs") => Some(MountType::Tmpfs),
                        Some(t @ ("npipe" | "cluster" | "image")) => {
                            self.r
                                .error(&p, format!("mount type `{t}` is not supported yet"));
                            return None;
                        }
                        Some(t) => {
                            self.r.error(
                                &p,
                                format!("expected \"bind\", \"volume\" or \"tmpfs\", found {t:?}"),
                            );
                            return None;
                        }
                        None => return None,
                    }
                }
                "source" => mount.source = self.r.string(&p, v),
                "target" => mount.target = self.absolute_container_path(&p, v)?,
                "read_only" => mount.read_only = self.r.bool(&p, v).unwrap_or(false),
                "bind" => {
                    let bm = self.r.map(&p, v)?;
                    let mut opts = BindOptions {
                        create_host_path: true,
                    };
                    for (key, kp, v) in self.r.fields(&p, bm, &BIND_KEYS) {
                        if key == "create_host_path" {
                            opts.create_host_path = self.r.bool(&kp, v).unwrap_or(true);
                        }
                    }
                    mount.bind = Some(opts);
                }
                "volume" => {
                    let vm = self.r.map(&p, v)?;
                    let mut opts = VolumeOptions::default();
                    for (key, kp, v) in self.r.fields(&p, vm, &VOLUME_OPTION_KEYS) {
                        if key == "nocopy" {
                            opts.nocopy = self.r.bool(&kp, v).unwrap_or(false);
                        }
                    }
                    mount.volume = Some(opts);
                }
                "tmpfs" => {
                    let tm = self.r.map(&p, v)?;
                    let mut opts = TmpfsOptions::default();
                    for (key, kp, v) in self.r.fields(&p, tm, &TMPFS_KEYS) {
                        match key {
                            "size" => opts.size = self.r.bytes(&kp, v),
                            "mode" => opts.mode = self.r.mode(&kp, v),
                            _ => {}
                        }
                    }
                    mount.tmpfs = Some(opts);
                }
                _ => {}
            }
        }
        let Some(kind) = kind else {
            self.r
                .error(path, "missing `type`: one of bind, volume, tmpfs");
            return None;
        };
        mount.kind = kind;
        if mount.target.is_empty() {
            self.r
                .error(path, "missing `target`: the path in the container");
            return None;
        }
        let misplaced = match kind {
            MountType::Bind => mount.volume.is_some() || mount.tmpfs.is_some(),
            MountType::Volume => mount.bind.is_some() || mount.tmpfs.is_some(),
            MountType::Tmpfs => mount.bind.is_some() || mount.volume.is_some(),
        };
        if misplaced {
            self.r.error(
                path,
                format!("options of another mount type on a {kind:?} mount").to_lowercase(),
            );
        }
        match kind {
            MountType::Bind if mount.source.is_none() => {
                self.r
                    .error(path, "a bind mount needs `source`: the host path");
                return None;
            }
            MountType::Bind if mount.bind.is_none() => {
                mount.bind = Some(BindOptions {
                    create_host_path: true,
                })
            }
            MountType::Tmpfs if mount.source.is_some() => {
                self.r.error(path, "a tmpfs mount takes no `source`");
            }
            _ => {}
        }
        Some(mount)
    }

    /// Secrets (`prefix` `/run/secrets/`) or configs (`/`) mounted into the service.
    pub(crate) fn file_refs(&mut self, path: &str, v: &Value, prefix: &str) -> Vec<FileRef> {
        let Some(items) = self.r.seq(path, v) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let p = join_index(path, i);
            let mut r = FileRef::default();
            match item {
                Value::String(s) => r.source = s.clone(),
                Value::Mapping(m) => {
                    for (key, kp, v) in self.r.fields(&p, m, &FILE_REF_KEYS) {
                        match key {
                            "source" => r.source = self.r.string(&kp, v).unwrap_or_default(),
                            "target" => r.target = self.r.string(&kp, v).unwrap_or_default(),
                            "uid" => r.uid = self.r.string(&kp, v),
                            "gid" => r.gid = self.r.string(&kp, v),
                            "mode" => r.mode = self.r.mode(&kp, v),
                            _ => {}
                        }
                    }
                    if r.source.is_empty() {
                        self.r.error(&p, "missing `source`: the top-level name");
                        continue;
                    }
                }
                other => {
                    self.r.error(
                        &p,
                        format!(
                            "expected a name or a mapping with `source`, found {}",
                            describe(other)
                        ),
                    );
                    continue;
                }
            }
            if r.target.is_empty() {
                r.target = format!("{prefix}{}", r.source);
            } else if !r.target.starts_with('/') {
                r.target = format!("{prefix}{}", r.target);
            }
            out.push(r);
        }
        out
    }
}
