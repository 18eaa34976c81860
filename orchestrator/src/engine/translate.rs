//! Turns a service of the canonical project into the container request of one replica: names,
//! labels (project, service, replica number, config hash), networks with the service name as a
//! DNS name, ports, mounts (binds, named volumes, tmpfs, secrets and configs), limits, health
//! check and restart policy. Pure, so every mapping is tested without root.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use crate::api::{CreateContainer, HealthConfig, Mount, MountKind, Rlimit};
use crate::compose::{MountType, NetworkMode, Project, Protocol, RestartPolicy, Service};

/// Container labels berth sets on project containers.
pub const PROJECT: &str = "com.docker.compose.project";
pub const SERVICE: &str = "com.docker.compose.service";
pub const NUMBER: &str = "com.docker.compose.container-number";
pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
pub const ONEOFF: &str = "com.docker.compose.oneoff";

/// The image a service runs: its `image`, or `<project>-<service>` for a built one.
pub fn image_of(project: &Project, name: &str, svc: &Service) -> String {
    svc.image
        .clone()
        .unwrap_or_else(|| format!("{}-{name}", project.name))
}

/// The container name of replica `number`.
pub fn container_name(project: &Project, name: &str, svc: &Service, number: u32) -> String {
    match &svc.container_name {
        Some(n) => n.clone(),
        None => format!("{}-{name}-{number}", project.name),
    }
}

/// Where a project's secret or config file lives when it comes from content or the environment.
pub fn generated_file(root: &Path, project: &str, kind: &str, key: &str) -> PathBuf {
    root.join("projects").join(project).join(kind).join(key)
}

fn health(svc: &Service) -> Option<HealthConfig> {
    let h = svc.healthcheck.as_ref()?;
    if h.is_disabled() || h.test.is_empty() {
        return None;
    }
    let test = match h.test[0].as_str() {
        "CMD" => h.test[1..].to_vec(),
        "CMD-SHELL" => vec!["/bin/sh".into(), "-c".into(), h.test[1..].join(" ")],
        _ => vec!["/bin/sh".into(), "-c".into(), h.test.join(" ")],
    };
    let ms =
        |d: Option<std::time::Duration>, def: u64| d.map(|d| d.as_millis() as u64).unwrap_or(def);
    Some(HealthConfig {
        test,
        interval_ms: ms(h.interval, 30_000),
        timeout_ms: ms(h.timeout, 30_000),
        retries: h.retries.unwrap_or(3) as u32,
        start_period_ms: ms(h.start_period, 0),
        start_interval_ms: ms(h.start_interval, 5_000),
    })
}

fn restart(svc: &Service) -> String {
    if let Some(p) = &svc.deploy.restart_policy {
        return match p.condition.as_deref() {
            Some("none") => "no".into(),
            Some("on-failure") => match p.max_attempts {
                Some(n) => format!("on-failure:{n}"),
                None => "on-failure".into(),
            },
            _ => "always".into(),
        };
    }
    match svc.restart {
        RestartPolicy::No => "no".into(),
        other => other.to_string(),
    }
}

/// The request that creates replica `number` of service `name`. `root` is the engine root
/// (named volumes and generated secret files live there).
pub fn create_request(
    root: &Path,
    project: &Project,
    name: &str,
    svc: &Service,
    number: u32,
) -> CreateContainer {
    let cname = container_name(project, name, svc, number);
    let mut labels = svc.labels.clone();
    labels.insert(PROJECT.into(), project.name.clone());
    labels.insert(SERVICE.into(), name.into());
    labels.insert(NUMBER.into(), number.to_string());
    labels.insert(CONFIG_HASH.into(), svc.config_hash());
    labels.insert(ONEOFF.into(), "False".into());
    let env = svc
        .environment
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect();
    let (network, networks) = match &svc.network_mode {
        Some(NetworkMode::None) => ("none".to_string(), Vec::new()),
        Some(NetworkMode::Host) => ("host".to_string(), Vec::new()),
        _ => {
            let mut eps: Vec<(String, netd::EndpointSpec)> = svc
                .networks
                .iter()
                .map(|(key, sn)| {
                    let real = project
                        .networks
                        .get(key)
                        .map(|n| n.name.clone())
                        .unwrap_or_else(|| key.clone());
                    (
                        key.clone(),
                        netd::EndpointSpec {
                            network: real,
                            aliases: sn.aliases.clone(),
                            ipv4: sn.ipv4_address,
                            service: Some(name.to_string()),
                            container_name: cname.clone(),
                            dns_upstreams: Vec::new(),
                        },
                    )
                })
                .collect();
            eps.sort_by(|a, b| a.0.cmp(&b.0));
            (String::new(), eps.into_iter().map(|(_, e)| e).collect())
        }
    };
    let mut ports = Vec::new();
    for p in &svc.ports {
        let proto = match p.protocol {
            Protocol::Udp => netd::Proto::Udp,
            _ => netd::Proto::Tcp,
        };
        let host_ip = match p.host_ip {
            Some(IpAddr::V4(a)) => a,
            _ => Ipv4Addr::UNSPECIFIED,
        };
        match &p.published {
            Some(r) if r.end > r.start => {
                for (i, hp) in (r.start..=r.end).enumerate() {
                    ports.push(netd::PortSpec {
                        host_ip,
                        host_port: Some(hp),
                        container_port: p.target.saturating_add(i as u16),
                        proto,
                    });
                }
            }
            Some(r) => ports.push(netd::PortSpec {
                host_ip,
                host_port: Some(r.start),
                container_port: p.target,
                proto,
            }),
            None => ports.push(netd::PortSpec {
                host_ip,
                host_port: None,
                container_port: p.target,
                proto,
            }),
        }
    }
    let mut mounts = Vec::new();
    for m in &svc.volumes {
        let kind = match m.kind {
            MountType::Bind => MountKind::Bind {
                source: PathBuf::from(m.source.clone().unwrap_or_default()),
            },
            MountType::Volume => {
                let vol = match &m.source {
                    Some(key) => project
                        .volumes
                        .get(key)
                        .map(|v| v.name.clone())
                        .unwrap_or_else(|| key.clone()),
                    None => format!(
                        "{cname}-anon-{}",
                        m.target.trim_matches('/').replace('/', "_")
                    ),
                };
                MountKind::Bind {
                    source: root.join("volumes").join(vol).join("_data"),
                }
            }
            MountType::Tmpfs => MountKind::Tmpfs {
                size: m.tmpfs.as_ref().and_then(|t| t.size),
                mode: m.tmpfs.as_ref().and_then(|t| t.mode),
            },
        };
        mounts.push(Mount {
            destination: m.target.clone(),
            kind,
            read_only: m.read_only,
        });
    }
    for t in &svc.tmpfs {
        let (dst, opts) = t.split_once(':').unwrap_or((t, ""));
        let size = opts
            .split(',')
            .find_map(|o| o.strip_prefix("size="))
            .and_then(|s| crate::cli::parse_bytes(s).ok());
        mounts.push(Mount {
            destination: dst.to_string(),
            kind: MountKind::Tmpfs { size, mode: None },
            read_only: false,
        });
    }
    for (kind, refs) in [("secrets", &svc.secrets), ("configs", &svc.configs)] {
        for r in refs {
            let file = if kind == "secrets" {
                project.secrets.get(&r.source).and_then(|s| s.file.clone())
            } else {
                project.configs.get(&r.source).and_then(|c| c.file.clone())
            };
            let source =
                file.unwrap_or_else(|| generated_file(root, &project.name, kind, &r.source));
            mounts.push(Mount {
                destination: r.target.clone(),
                kind: MountKind::Bind { source },
                read_only: true,
            });
        }
    }
    let limits = &svc.deploy.resources.limits;
    CreateContainer {
        image: image_of(project, name, svc),
        name: Some(cname.clone()),
        cmd: svc.command.clone().unwrap_or_default(),
        entrypoint: svc.entrypoint.clone(),
        env,
        working_dir: svc.working_dir.clone(),
        user: svc.user.clone(),
        hostname: Some(svc.hostname.clone().unwrap_or_else(|| cname.clone())),
        memory: limits.memory,
        cpus: limits.cpus,
        pids_limit: limits.pids,
        network,
        networks,
        ports,
        dns: svc.dns.clone(),
        dns_search: svc.dns_search.clone(),
        dns_options: svc.dns_opt.clone(),
        extra_hosts: svc
            .extra_hosts
            .iter()
            .flat_map(|(host, ips)| ips.iter().map(move |ip| format!("{host}={ip}")))
            .collect(),
        auto_remove: false,
        labels,
        mounts,
        read_only: svc.read_only,
        cap_add: svc.cap_add.clone(),
        cap_drop: svc.cap_drop.clone(),
        stop_signal: svc.stop_signal.clone(),
        stop_timeout: svc.stop_grace_period.map(|d| d.as_secs()),
        rlimits: svc
            .ulimits
            .iter()
            .map(|(n, u)| Rlimit {
                name: n.clone(),
                soft: u.soft.max(0) as u64,
                hard: u.hard.max(0) as u64,
            })
            .collect(),
        sysctls: svc.sysctls.clone(),
        restart: restart(svc),
        healthcheck: health(svc),
    }
}

/// Labels of a project's networks and volumes.
pub fn project_labels(project: &str) -> BTreeMap<String, String> {
    [(PROJECT.to_string(), project.to_string())].into()
}
