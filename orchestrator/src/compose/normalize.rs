//! Phase 5: normalize the merged document into the canonical [`Project`].
//!
//! Top-level sections are read here (networks, volumes, configs, secrets, with their names
//! resolved to `<project>_<key>` unless `name:` is given or they are external); services are read
//! by [`super::normalize_service`] and [`super::normalize_refs`]. A service that names no network
//! and has no `network_mode` joins the `default` network, which is then declared
//! (`<project>_default`) unless the file declares it. Unknown keys and keys berth does not
//! implement yet are reported here, with the type errors of every value.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use serde_yaml::{Mapping, Value};

use super::error::Diagnostics;
use super::keys::{
    CONFIG_KEYS, IPAM_KEYS, NETWORK_KEYS, POOL_KEYS, SECRET_KEYS, TOP_KEYS, VOLUME_KEYS,
};
use super::model::{Config, Ipam, IpamPool, Network, Project, Secret, Volume};
use super::parse::{join_index, join_key};
use super::read::{KeySet, Reader};
use super::service::ServiceNetwork;
use super::source::FileSource;

/// State of the normalize phase.
pub(crate) struct Norm<'a> {
    /// Type errors and unknown keys.
    pub r: Reader,
    /// Warnings (obsolete keys).
    pub warnings: Diagnostics,
    /// Base of relative host paths.
    pub project_dir: &'a Path,
    /// Project environment (values for `environment` keys without a value, HOME for `~`).
    pub env: &'a BTreeMap<String, String>,
    /// Where env files are read from.
    pub fs: &'a dyn FileSource,
}

/// Whether `name` is a valid service, profile or resource name.
pub(crate) fn valid_resource_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

impl Norm<'_> {
    /// Reads the whole document.
    pub(crate) fn project(&mut self, doc: &Mapping, name: &str) -> Project {
        let mut project = Project {
            name: name.to_string(),
            working_dir: self.project_dir.to_path_buf(),
            ..Project::default()
        };
        let mut saw_services = false;
        for (key, p, v) in self.r.fields("", doc, &TOP_KEYS) {
            match key {
                "version" => self.warnings.push(
                    &p,
                    "`version` is obsolete and ignored; remove it to avoid confusion",
                ),
                "name" | "include" => {}
                "services" => {
                    saw_services = true;
                    self.services(&p, v, &mut project);
                }
                "networks" => {
                    for (k, p, v) in self.entries(&p, v) {
                        let n = self.network(&p, &k, v, name);
                        project.networks.insert(k, n);
                    }
                }
                "volumes" => {
                    for (k, p, v) in self.entries(&p, v) {
                        let vol = self.volume(&p, &k, v, name);
                        project.volumes.insert(k, vol);
                    }
                }
                "configs" => {
                    for (k, p, v) in self.entries(&p, v) {
                        let c = self.config(&p, &k, v, name);
                        project.configs.insert(k, c);
                    }
                }
                "secrets" => {
                    for (k, p, v) in self.entries(&p, v) {
                        let s = self.secret(&p, &k, v, name);
                        project.secrets.insert(k, s);
                    }
                }
                _ => {
                    project.extensions.insert(key.to_string(), v.clone());
                }
            }
        }
        let typo = self
            .r
            .errors
            .0
            .iter()
            .any(|d| !d.path.contains('.') && d.message.starts_with("unknown key"));
        if !saw_services && !doc.contains_key("include") && !typo {
            self.r.error(
                "services",
                "missing `services`: a compose file defines services",
            );
        }
        add_default_network(&mut project);
        project
    }

    /// The entries of a top-level section (a mapping; null means empty).
    fn entries<'v>(&mut self, path: &str, v: &'v Value) -> Vec<(String, String, &'v Value)> {
        if v.is_null() {
            return Vec::new();
        }
        let Some(m) = self.r.map(path, v) else {
            return Vec::new();
        };
        m.iter()
            .map(|(k, v)| {
                let key = super::read::key_text(k);
                let p = join_key(path, &key);
                (key, p, v)
            })
            .collect()
    }

    fn services(&mut self, path: &str, v: &Value, project: &mut Project) {
        for (name, p, v) in self.entries(path, v) {
            if !valid_resource_name(&name) {
                self.r.error(
                    &p,
                    format!("invalid service name {name:?}: use letters, digits, `_`, `.` and `-`"),
                );
                continue;
            }
            let svc = self.service(&p, v);
            project.services.insert(name, svc);
        }
    }

    /// `name:` of a resource, else `<project>_<key>` (the key itself when external).
    fn resolved_name(
        &mut self,
        path: &str,
        m: &Mapping,
        key: &str,
        project: &str,
        external: bool,
    ) -> String {
        match m.get("name") {
            Some(v) => self
                .r
                .string(&join_key(path, "name"), v)
                .unwrap_or_else(|| key.to_string()),
            None if external => key.to_string(),
            None => format!("{project}_{key}"),
        }
    }

    fn external(&mut self, path: &str, m: &Mapping) -> bool {
        m.get("external")
            .and_then(|v| self.r.bool(&join_key(path, "external"), v))
            .unwrap_or(false)
    }

    fn network(&mut self, path: &str, key: &str, v: &Value, project: &str) -> Network {
        let empty = Mapping::new();
        let m = if v.is_null() {
            &empty
        } else {
            self.r.map(path, v).unwrap_or(&empty)
        };
        let external = self.external(path, m);
        let mut n = Network {
            name: self.resolved_name(path, m, key, project, external),
            external,
            ..Network::default()
        };
        for (k, p, v) in self.r.fields(path, m, &NETWORK_KEYS) {
            match k {
                "driver" => {
                    n.driver = self.r.string(&p, v);
                    if let Some(d) = n.driver.as_deref().filter(|d| *d != "bridge") {
                        self.r.error(
                            &p,
                            format!("network driver `{d}` is not supported yet; use bridge"),
                        );
                    }
                }
                "ipam" => n.ipam = self.ipam(&p, v),
                "internal" => n.internal = self.r.bool(&p, v).unwrap_or(false),
                "labels" => n.labels = self.string_map(&p, v, ""),
                "name" | "external" => {}
                _ => {
                    n.extensions.insert(k.to_string(), v.clone());
                }
            }
        }
        if external && (n.driver.is_some() || !n.ipam.is_empty() || n.internal) {
            self.r.error(
                path,
                "an external network is created elsewhere: remove `driver`, `ipam` and `internal`",
            );
        }
        n
    }

    fn ipam(&mut self, path: &str, v: &Value) -> Ipam {
        let mut ipam = Ipam::default();
        let Some(m) = self.r.map(path, v) else {
            return ipam;
        };
        for (k, p, v) in self.r.fields(path, m, &IPAM_KEYS) {
            if k != "config" {
                continue;
            }
            let Some(items) = self.r.seq(&p, v) else {
                continue;
            };
            for (i, item) in items.iter().enumerate() {
                let ip = join_index(&p, i);
                let Some(pm) = self.r.map(&ip, item) else {
                    continue;
                };
                let mut pool = IpamPool::default();
                let mut net: Option<(IpAddr, u8)> = None;
                for (k, kp, v) in self.r.fields(&ip, pm, &POOL_KEYS) {
                    let Some(text) = self.r.string(&kp, v) else {
                        continue;
                    };
                    match k {
                        "subnet" => match parse_cidr(&text) {
                            Ok(c) => {
                                net = Some(c);
                                pool.subnet = Some(text);
                            }
                            Err(e) => self.r.error(&kp, e),
                        },
                        "gateway" => match text.parse::<IpAddr>() {
                            Ok(g) => pool.gateway = Some(g),
                            Err(_) => self
                                .r
                                .error(&kp, format!("expected an IP address, found {text:?}")),
                        },
                        _ => {}
                    }
                }
                if let (Some(g), Some((addr, prefix))) = (pool.gateway, net) {
                    if !in_subnet(g, addr, prefix) {
                        self.r.error(
                            &join_key(&ip, "gateway"),
                            format!(
                                "gateway {g} is outside subnet {}",
                                pool.subnet.clone().unwrap_or_default()
                            ),
                        );
                    }
                }
                ipam.config.push(pool);
            }
        }
        ipam
    }

    fn volume(&mut self, path: &str, key: &str, v: &Value, project: &str) -> Volume {
        let empty = Mapping::new();
        let m = if v.is_null() {
            &empty
        } else {
            self.r.map(path, v).unwrap_or(&empty)
        };
        let external = self.external(path, m);
        let mut vol = Volume {
            name: self.resolved_name(path, m, key, project, external),
            external,
            ..Volume::default()
        };
        for (k, p, v) in self.r.fields(path, m, &VOLUME_KEYS) {
            match k {
                "driver" => {
                    vol.driver = self.r.string(&p, v);
                    if let Some(d) = vol.driver.as_deref().filter(|d| *d != "local") {
                        self.r.error(
                            &p,
                            format!("volume driver `{d}` is not supported yet; use local"),
                        );
                    }
                }
                "labels" => vol.labels = self.string_map(&p, v, ""),
                "name" | "external" => {}
                _ => {
                    vol.extensions.insert(k.to_string(), v.clone());
                }
            }
        }
        if external && vol.driver.is_some() {
            self.r.error(
                path,
                "an external volume is created elsewhere: remove `driver`",
            );
        }
        vol
    }

    /// Reads `file`, `content`, `environment` of a config or secret; exactly one source (or
    /// `external`) must be set.
    fn file_source(
        &mut self,
        path: &str,
        m: &Mapping,
        keys: &KeySet,
        external: bool,
    ) -> (
        Option<std::path::PathBuf>,
        Option<String>,
        Option<String>,
        crate::compose::model::Extensions,
    ) {
        let (mut file, mut content, mut environment) = (None, None, None);
        let mut ext = BTreeMap::new();
        for (k, p, v) in self.r.fields(path, m, keys) {
            match k {
                "file" => {
                    file = self
                        .r
                        .string(&p, v)
                        .and_then(|f| self.host_path(&p, &f))
                        .map(Into::into)
                }
                "content" => content = self.r.string(&p, v),
                "environment" => environment = self.r.string(&p, v),
                "name" | "external" => {}
                _ => {
                    ext.insert(k.to_string(), v.clone());
                }
            }
        }
        let count = [
            file.is_some(),
            content.is_some(),
            environment.is_some(),
            external,
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if count != 1 {
            let what = if keys.known.contains(&"content") {
                "`file`, `content`, `environment` or `external: true`"
            } else {
                "`file`, `environment` or `external: true`"
            };
            self.r.error(path, format!("set exactly one of {what}"));
        }
        (file, content, environment, ext)
    }

    fn config(&mut self, path: &str, key: &str, v: &Value, project: &str) -> Config {
        let empty = Mapping::new();
        let m = self.r.map(path, v).unwrap_or(&empty);
        let external = self.external(path, m);
        let name = self.resolved_name(path, m, key, project, external);
        let (file, content, environment, extensions) =
            self.file_source(path, m, &CONFIG_KEYS, external);
        Config {
            name,
            file,
            content,
            environment,
            external,
            extensions,
        }
    }

    fn secret(&mut self, path: &str, key: &str, v: &Value, project: &str) -> Secret {
        let empty = Mapping::new();
        let m = self.r.map(path, v).unwrap_or(&empty);
        let external = self.external(path, m);
        let name = self.resolved_name(path, m, key, project, external);
        let (file, _, environment, extensions) = self.file_source(path, m, &SECRET_KEYS, external);
        Secret {
            name,
            file,
            environment,
            external,
            extensions,
        }
    }
}

/// Puts services without networks on `default` and declares it when the file does not.
fn add_default_network(project: &mut Project) {
    let mut uses_default = false;
    for svc in project.services.values_mut() {
        if svc.network_mode.is_none() && svc.networks.is_empty() {
            svc.networks
                .insert("default".into(), ServiceNetwork::default());
        }
        uses_default |= svc.networks.contains_key("default");
    }
    if uses_default && !project.networks.contains_key("default") {
        let name = format!("{}_default", project.name);
        project.networks.insert(
            "default".into(),
            Network {
                name,
                ..Network::default()
            },
        );
    }
}

/// Parses `addr/prefix`.
fn parse_cidr(text: &str) -> Result<(IpAddr, u8), String> {
    let err =
        || format!("expected a subnet in CIDR notation like \"172.20.0.0/24\", found {text:?}");
    let (addr, prefix) = text.split_once('/').ok_or_else(err)?;
    let addr: IpAddr = addr.parse().map_err(|_| err())?;
    let prefix: u8 = prefix.parse().map_err(|_| err())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(err());
    }
    Ok((addr, prefix))
}

fn in_subnet(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_and_gateway_checks() {
        let (a, p) = parse_cidr("172.20.0.0/24").unwrap();
        assert!(in_subnet("172.20.0.1".parse().unwrap(), a, p));
        assert!(!in_subnet("172.21.0.1".parse().unwrap(), a, p));
        assert!(in_subnet(
            "10.1.2.3".parse().unwrap(),
            "0.0.0.0".parse().unwrap(),
            0
        ));
        let (a, p) = parse_cidr("fd00::/64").unwrap();
        assert!(in_subnet("fd00::1".parse().unwrap(), a, p));
        assert!(parse_cidr("172.20.0.0").is_err());
        assert!(parse_cidr("172.20.0.0/33").is_err());
        assert!(parse_cidr("x/8").is_err());
    }

    #[test]
    fn resource_names() {
        assert!(valid_resource_name("web-1.a_b"));
        assert!(!valid_resource_name("web app"));
        assert!(!valid_resource_name(""));
    }
}
