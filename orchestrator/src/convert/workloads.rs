//! Workloads: a Deployment per long-running service, a Job per one-shot (`restart: "no"` or
//! `on-failure` that another service waits for with `service_completed_successfully`). The pod
//! carries the project, service and network labels, the compose labels as annotations, the
//! volumes, the init containers of `depends_on`, and the pod-level keys: stop_grace_period,
//! hostname, network_mode host, sysctls, dns (servers, search domains, options), extra_hosts,
//! init, platform.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    HostAlias, PodDNSConfig, PodDNSConfigOption, PodSecurityContext, PodSpec, PodTemplateSpec,
    Sysctl,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::container::{container, non_empty, secs};
use super::context::Ctx;
use super::depends::{init_containers, waiter_account, WAITER};
use super::names::label_name;
use super::{network_label, storage, Object, LABEL_WAITS_VIA_API};
use crate::compose::{Condition, NetworkMode, RestartPolicy, Service};

/// Sysctls the kubelet allows without `--allowed-unsafe-sysctls`.
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ping_group_range",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.tcp_wmem",
];
/// Name servers a pod may list besides the cluster's.
const MAX_EXTRA_DNS: usize = 2;

/// Services that run once: not restarted always and awaited with
/// `service_completed_successfully`.
pub fn one_shots(ctx: &Ctx<'_>) -> BTreeSet<String> {
    let awaited: BTreeSet<&String> = ctx
        .project
        .services
        .values()
        .flat_map(|s| s.depends_on.iter())
        .filter(|(_, d)| d.condition == Condition::ServiceCompletedSuccessfully)
        .map(|(n, _)| n)
        .collect();
    ctx.project
        .services
        .iter()
        .filter(|(n, s)| {
            awaited.contains(n)
                && matches!(
                    s.restart,
                    RestartPolicy::No | RestartPolicy::OnFailure { .. }
                )
        })
        .map(|(n, _)| n.clone())
        .collect()
}

/// Adds the workloads of every service; tells whether some pod waits through the API.
pub(crate) fn convert(ctx: &mut Ctx<'_>) -> bool {
    let jobs = one_shots(ctx);
    let mut any_waiter = false;
    let project = ctx.project;
    for (name, svc) in &project.services {
        let one_shot = jobs.contains(name);
        let (pod, via_api) = pod_spec(ctx, name, svc, &jobs, one_shot);
        any_waiter |= via_api;
        let mut labels = ctx.selector(name);
        for net in svc.networks.keys() {
            labels.insert(network_label(net), "true".into());
        }
        if via_api {
            labels.insert(LABEL_WAITS_VIA_API.into(), "true".into());
        }
        let mut annotations = ctx.annotations(Some(name), "labels", &svc.labels);
        annotations.insert("berth.dev/compose-project".into(), project.name.clone());
        annotations.insert("berth.dev/compose-service".into(), name.clone());
        let claims = pod
            .volumes
            .iter()
            .flatten()
            .any(|v| v.persistent_volume_claim.is_some());
        let template = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels),
                annotations: Some(annotations.clone()),
                ..ObjectMeta::default()
            }),
            spec: Some(pod),
        };
        let mut meta = ctx.meta(&ctx.service(name), Some(name));
        meta.annotations = Some(annotations);
        let replicas = i32::try_from(svc.replicas()).unwrap_or(i32::MAX);
        if one_shot {
            ctx.objects
                .push(Object::Job(job(meta, template, svc, replicas)));
            continue;
        }
        if let RestartPolicy::OnFailure {
            max_retries: Some(n),
        } = svc.restart
        {
            ctx.warn(
                name,
                "restart",
                format!("on-failure:{n}: a Deployment restarts without limit"),
            );
        }
        ctx.objects.push(Object::Deployment(Deployment {
            metadata: meta,
            spec: DeploymentSpec {
                replicas: Some(replicas),
                selector: LabelSelector {
                    match_labels: Some(ctx.selector(name)),
                    ..LabelSelector::default()
                },
                // Like berth, stop the old pods before starting new ones: a ReadWriteOnce
                // claim cannot be mounted by pods on two nodes.
                strategy: claims.then(|| DeploymentStrategy {
                    type_: Some("Recreate".into()),
                    ..DeploymentStrategy::default()
                }),
                template,
                ..DeploymentSpec::default()
            },
            status: None,
        }));
    }
    if any_waiter {
        waiter_account(ctx);
    }
    any_waiter
}

/// A Job: `restart: "no"` runs once, `on-failure[:N]` retries (N times, or the default 6).
fn job(metadata: ObjectMeta, template: PodTemplateSpec, svc: &Service, replicas: i32) -> Job {
    let backoff = match svc.restart {
        RestartPolicy::OnFailure { max_retries } => {
            max_retries.map_or(6, |n| i32::try_from(n).unwrap_or(i32::MAX))
        }
        _ => 0,
    };
    Job {
        metadata,
        spec: Some(JobSpec {
            backoff_limit: Some(backoff),
            completions: Some(replicas),
            parallelism: Some(replicas),
            template,
            ..JobSpec::default()
        }),
        status: None,
    }
}

/// The pod of a service; the flag tells whether it waits through the API.
fn pod_spec(
    ctx: &mut Ctx<'_>,
    name: &str,
    svc: &Service,
    jobs: &BTreeSet<String>,
    one_shot: bool,
) -> (PodSpec, bool) {
    let (volumes, mounts) = storage::pod_volumes(ctx, name, svc);
    let waits = init_containers(ctx, name, svc, jobs);
    let mut main = container(ctx, name, svc);
    main.volume_mounts = non_empty(mounts);
    let mut pod = PodSpec {
        containers: vec![main],
        init_containers: non_empty(waits.containers),
        volumes: non_empty(volumes),
        restart_policy: one_shot.then(|| match svc.restart {
            RestartPolicy::OnFailure { .. } => "OnFailure".to_string(),
            _ => "Never".to_string(),
        }),
        termination_grace_period_seconds: svc
            .stop_grace_period
            .map(|d| i64::try_from(secs(d)).unwrap_or(i64::MAX)),
        hostname: hostname(ctx, name, svc),
        host_network: (svc.network_mode == Some(NetworkMode::Host)).then_some(true),
        service_account_name: waits.via_api.then(|| WAITER.to_string()),
        // A pause process as PID 1 reaps zombies, as `init: true` does.
        share_process_namespace: (svc.init == Some(true)).then_some(true),
        node_selector: platform(ctx, name, svc),
        ..PodSpec::default()
    };
    pod.security_context = sysctls(ctx, name, svc);
    pod.dns_config = dns(ctx, name, svc);
    pod.host_aliases = host_aliases(svc);
    (pod, waits.via_api)
}

fn hostname(ctx: &mut Ctx<'_>, name: &str, svc: &Service) -> Option<String> {
    let h = svc.hostname.as_deref()?;
    let label = label_name(h.split('.').next().unwrap_or_default());
    if label != h.to_lowercase() {
        ctx.warn(
            name,
            "hostname",
            format!("{h}: a pod's host name is one DNS label; {label} is used"),
        );
    }
    Some(label)
}

/// `platform: os/arch[/variant]` as a node selector on the well-known node labels.
fn platform(ctx: &mut Ctx<'_>, name: &str, svc: &Service) -> Option<BTreeMap<String, String>> {
    let p = svc.platform.as_deref()?;
    let mut parts = p.split('/');
    let (os, arch) = (parts.next().unwrap_or_default(), parts.next());
    if let Some(variant) = parts.next() {
        ctx.warn(
            name,
            "platform",
            format!("{p}: nodes are not selected by variant ({variant})"),
        );
    }
    let mut sel = BTreeMap::from([("kubernetes.io/os".to_string(), os.to_string())]);
    if let Some(arch) = arch {
        sel.insert("kubernetes.io/arch".to_string(), arch.to_string());
    }
    Some(sel)
}

fn sysctls(ctx: &mut Ctx<'_>, name: &str, svc: &Service) -> Option<PodSecurityContext> {
    if svc.sysctls.is_empty() {
        return None;
    }
    for key in svc.sysctls.keys() {
        if !SAFE_SYSCTLS.contains(&key.as_str()) {
            ctx.warn(
                name,
                format!("sysctls.{key}"),
                "not a safe sysctl: the kubelet rejects the pod unless it allows it \
                 (--allowed-unsafe-sysctls)",
            );
        }
    }
    Some(PodSecurityContext {
        sysctls: Some(
            svc.sysctls
                .iter()
                .map(|(k, v)| Sysctl {
                    name: k.clone(),
                    value: v.clone(),
                })
                .collect(),
        ),
        ..PodSecurityContext::default()
    })
}

/// `dns` as extra name servers after the cluster's (a pod lists at most three).
fn dns(ctx: &mut Ctx<'_>, name: &str, svc: &Service) -> Option<PodDNSConfig> {
    if svc.dns.is_empty() && svc.dns_search.is_empty() && svc.dns_opt.is_empty() {
        return None;
    }
    for extra in svc.dns.iter().skip(MAX_EXTRA_DNS) {
        ctx.warn(
            name,
            "dns",
            format!(
                "{extra}: a pod lists at most {MAX_EXTRA_DNS} name servers besides the \
                 cluster's; left out"
            ),
        );
    }
    let nameservers: Vec<String> = svc
        .dns
        .iter()
        .take(MAX_EXTRA_DNS)
        .map(|a| a.to_string())
        .collect();
    let options: Vec<PodDNSConfigOption> = svc
        .dns_opt
        .iter()
        .map(|o| match o.split_once(':') {
            Some((n, v)) => PodDNSConfigOption {
                name: Some(n.to_string()),
                value: Some(v.to_string()),
            },
            None => PodDNSConfigOption {
                name: Some(o.clone()),
                value: None,
            },
        })
        .collect();
    Some(PodDNSConfig {
        nameservers: non_empty(nameservers),
        searches: non_empty(svc.dns_search.clone()),
        options: non_empty(options),
    })
}

/// `extra_hosts` with IP addresses as host aliases (the rest is warned about elsewhere).
fn host_aliases(svc: &Service) -> Option<Vec<HostAlias>> {
    let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (host, addrs) in &svc.extra_hosts {
        for a in addrs
            .iter()
            .filter(|a| a.parse::<std::net::IpAddr>().is_ok())
        {
            aliases.entry(a.clone()).or_default().push(host.clone());
        }
    }
    non_empty(
        aliases
            .into_iter()
            .map(|(ip, hostnames)| HostAlias {
                ip,
                hostnames: Some(hostnames),
            })
            .collect(),
    )
}
