//! Phase 7: validate the cross-references and rules of the canonical project.
//!
//! Every service has an image or a build; `depends_on` and `network_mode: service:` name existing
//! services (with a suggestion for typos); referenced networks, volumes, secrets and configs are
//! declared; fixed addresses lie in a declared subnet; container names are unique and not combined
//! with several replicas; no two services publish the same host port; a `service_healthy`
//! dependency has a health check that is not disabled; and there is no dependency cycle
//! (`dependency cycle: a -> b -> a`).

use std::collections::BTreeMap;

use super::error::{did_you_mean, Diagnostics};
use super::model::Project;
use super::parse::join_key;
use super::service::{Condition, MountType, NetworkMode, Service};

fn svc_path(name: &str, key: &str) -> String {
    join_key(&join_key("services", name), key)
}

/// Checks the project; optional dependencies on unknown services are dropped with a warning.
pub(crate) fn validate(
    project: &mut Project,
    errors: &mut Diagnostics,
    warnings: &mut Diagnostics,
) {
    drop_optional_unknown_deps(project, warnings);
    let names: Vec<&str> = project.services.keys().map(String::as_str).collect();
    for (name, svc) in &project.services {
        if svc.image.is_none() && svc.build.is_none() {
            errors.push(
                join_key("services", name),
                "missing `image` or `build`: say which image to run or how to build it",
            );
        }
        for dep in svc.depends_on.keys() {
            if !project.services.contains_key(dep) && !project.disabled_services.contains_key(dep) {
                let hint = did_you_mean(dep, names.iter().copied().filter(|n| n != name));
                errors.push(
                    join_key(&svc_path(name, "depends_on"), dep),
                    format!("unknown service `{dep}`{hint}"),
                );
            }
        }
        check_network_mode(project, name, svc, &names, errors);
        check_refs(project, name, svc, errors);
        check_health_deps(project, name, svc, errors);
        if svc.container_name.is_some() && svc.deploy.replicas > 1 {
            errors.push(
                svc_path(name, "container_name"),
                format!(
                    "a fixed container name cannot be used with {} replicas; remove one of them",
                    svc.deploy.replicas
                ),
            );
        }
    }
    check_unique_container_names(project, errors);
    check_host_ports(project, errors);
    for cycle in crate::graph::cycles(project) {
        let path = match cycle.as_slice() {
            [a, b, ..] => join_key(&svc_path(a, "depends_on"), b),
            _ => String::new(),
        };
        errors.push(path, format!("dependency cycle: {}", cycle.join(" -> ")));
    }
}

fn drop_optional_unknown_deps(project: &mut Project, warnings: &mut Diagnostics) {
    let known: Vec<String> = project.services.keys().cloned().collect();
    for (name, svc) in project.services.iter_mut() {
        let missing: Vec<String> = svc
            .depends_on
            .iter()
            .filter(|(dep, d)| !d.required && !known.contains(dep))
            .map(|(dep, _)| dep.clone())
            .collect();
        for dep in missing {
            if !project.disabled_services.contains_key(&dep) {
                warnings.push(
                    join_key(&svc_path(name, "depends_on"), &dep),
                    format!("optional dependency `{dep}` is not defined; ignoring it"),
                );
            }
            svc.depends_on.remove(&dep);
        }
    }
}

fn check_network_mode(
    project: &Project,
    name: &str,
    svc: &Service,
    names: &[&str],
    errors: &mut Diagnostics,
) {
    let Some(mode) = &svc.network_mode else {
        return;
    };
    if !svc.networks.is_empty() {
        errors.push(
            svc_path(name, "network_mode"),
            "`network_mode` and `networks` cannot be combined; remove one of them",
        );
    }
    if let NetworkMode::Service(other) = mode {
        if other == name {
            errors.push(
                svc_path(name, "network_mode"),
                "a service cannot share its own network namespace",
            );
        } else if !project.services.contains_key(other) {
            let hint = did_you_mean(other, names.iter().copied());
            errors.push(
                svc_path(name, "network_mode"),
                format!("unknown service `{other}`{hint}"),
            );
        }
    }
}

/// Networks, volumes, secrets and configs a service uses must be declared.
fn check_refs(project: &Project, name: &str, svc: &Service, errors: &mut Diagnostics) {
    let networks = declared(&project.networks);
    for (net, attach) in &svc.networks {
        let path = join_key(&svc_path(name, "networks"), net);
        let Some(decl) = project.networks.get(net) else {
            let hint = did_you_mean(net, networks.iter().copied());
            errors.push(
                path,
                format!(
                    "undeclared network `{net}`{hint}; declare it under the top-level `networks`"
                ),
            );
            continue;
        };
        if let Some(ip) = attach.ipv4_address {
            let subnets: Vec<&str> = decl
                .ipam
                .config
                .iter()
                .filter_map(|p| p.subnet.as_deref())
                .collect();
            let inside = subnets.iter().any(|s| subnet_contains(s, ip.into()));
            if !inside && !decl.external {
                let msg = if subnets.is_empty() {
                    format!("a fixed address needs a subnet: set `ipam.config` with a subnet on network `{net}`")
                } else {
                    format!(
                        "address {ip} is outside the subnets of network `{net}` ({})",
                        subnets.join(", ")
                    )
                };
                errors.push(join_key(&path, "ipv4_address"), msg);
            }
        }
    }
    let volumes = declared(&project.volumes);
    for (i, m) in svc.volumes.iter().enumerate() {
        if m.kind != MountType::Volume {
            continue;
        }
        if let Some(src) = &m.source {
            if !project.volumes.contains_key(src) {
                let hint = did_you_mean(src, volumes.iter().copied());
                errors.push(
                    format!("{}[{i}]", svc_path(name, "volumes")),
                    format!(
                        "undeclared volume `{src}`{hint}; declare it under the top-level `volumes`"
                    ),
                );
            }
        }
    }
    for (key, refs, decl) in [
        ("secrets", &svc.secrets, declared(&project.secrets)),
        ("configs", &svc.configs, declared(&project.configs)),
    ] {
        for (i, r) in refs.iter().enumerate() {
            if !decl.contains(&r.source.as_str()) {
                let hint = did_you_mean(&r.source, decl.iter().copied());
                errors.push(
                    format!("{}[{i}]", svc_path(name, key)),
                    format!(
                        "undeclared {} `{}`{hint}; declare it under the top-level `{key}`",
                        key.trim_end_matches('s'),
                        r.source
                    ),
                );
            }
        }
    }
}

fn declared<V>(map: &BTreeMap<String, V>) -> Vec<&str> {
    map.keys().map(String::as_str).collect()
}

fn subnet_contains(subnet: &str, ip: std::net::IpAddr) -> bool {
    let Some((addr, prefix)) = subnet.split_once('/') else {
        return false;
    };
    let (Ok(addr), Ok(prefix)) = (addr.parse::<std::net::Ipv4Addr>(), prefix.parse::<u32>()) else {
        return false;
    };
    let std::net::IpAddr::V4(ip) = ip else {
        return false;
    };
    let mask = u32::MAX.checked_shl(32 - prefix.min(32)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(addr) & mask
}

fn check_health_deps(project: &Project, name: &str, svc: &Service, errors: &mut Diagnostics) {
    for (dep, d) in &svc.depends_on {
        if d.condition != Condition::ServiceHealthy {
            continue;
        }
        let Some(target) = project.services.get(dep) else {
            continue;
        };
        if target.healthcheck.as_ref().is_some_and(|h| h.is_disabled()) {
            errors.push(
                join_key(&join_key(&svc_path(name, "depends_on"), dep), "condition"),
                format!("`{dep}` has its health check disabled, so it never becomes healthy; use service_started or enable the check"),
            );
        }
    }
}

fn check_unique_container_names(project: &Project, errors: &mut Diagnostics) {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, svc) in &project.services {
        if let Some(cn) = &svc.container_name {
            if let Some(first) = seen.insert(cn.as_str(), name.as_str()) {
                errors.push(
                    svc_path(name, "container_name"),
                    format!("container name {cn:?} is already used by service `{first}`"),
                );
            }
        }
    }
}

/// Two services (or several replicas) cannot publish the same host port.
fn check_host_ports(project: &Project, errors: &mut Diagnostics) {
    let mut seen: BTreeMap<(String, u16, &str), &str> = BTreeMap::new();
    for (name, svc) in &project.services {
        for (i, p) in svc.ports.iter().enumerate() {
            let Some(published) = p.published else {
                continue;
            };
            let path = format!("{}[{i}]", svc_path(name, "ports"));
            if published.start == published.end && svc.deploy.replicas > 1 {
                errors.push(
                    &path,
                    format!(
                        "host port {} cannot be published by {} replicas; publish a range or let berth pick ports",
                        published.start, svc.deploy.replicas
                    ),
                );
            }
            if published.start != published.end {
                continue;
            }
            let ip = p.host_ip.map(|i| i.to_string()).unwrap_or_default();
            let key = (ip, published.start, p.protocol.as_str());
            if let Some(first) = seen.insert(key, name.as_str()) {
                let msg = if first == name {
                    format!(
                        "host port {}/{} is published twice",
                        published.start,
                        p.protocol.as_str()
                    )
                } else {
                    format!(
                        "host port {}/{} is already published by service `{first}`",
                        published.start,
                        p.protocol.as_str()
                    )
                };
                errors.push(path, msg);
            }
        }
    }
}
