//! Workloads: a Deployment per long-running service, a Job per one-shot (`restart: "no"` that
//! another service waits for with `service_completed_successfully`); containers with command,
//! environment, user, limits and probes; `depends_on` as init containers that wait.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, ExecAction, HostAlias, PodDNSConfig,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SecurityContext,
    ServiceAccount, Sysctl,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::{k8s_name, services, storage, ConvertError, Ctx, Object, LABEL_NETWORK_PREFIX};
use crate::compose::{Condition, Healthcheck, NetworkMode, Protocol, RestartPolicy, Service};

/// Image of the init containers that wait for a Service to answer.
pub const WAIT_IMAGE: &str = "busybox:1.37";
/// Image of the init containers that wait for a Job to complete.
pub const KUBECTL_IMAGE: &str = "registry.k8s.io/kubectl:v1.33.0";
/// ServiceAccount allowed to watch Jobs (used by pods that wait for one).
pub const JOB_WAITER: &str = "berth-job-waiter";

/// Services that run once: `restart: "no"` and awaited with `service_completed_successfully`.
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
                && !matches!(
                    s.restart,
                    RestartPolicy::Always | RestartPolicy::UnlessStopped
                )
        })
        .map(|(n, _)| n.clone())
        .collect()
}

/// Adds the workloads of every service.
pub(crate) fn convert(ctx: &mut Ctx<'_>) -> Result<(), ConvertError> {
    let jobs = one_shots(ctx);
    let mut needs_waiter = false;
    let project = ctx.project;
    for (name, svc) in &project.services {
        let one_shot = jobs.contains(name);
        let (pod, waits_for_job) = pod_spec(ctx, name, svc, &jobs, one_shot)?;
        needs_waiter |= waits_for_job;
        let mut labels = ctx.selector(name);
        for net in svc.networks.keys() {
            labels.insert(
                format!("{LABEL_NETWORK_PREFIX}{}", k8s_name(net)),
                "true".into(),
            );
        }
        let mut annotations = svc.labels.clone();
        annotations.insert("berth.dev/compose-project".into(), project.name.clone());
        annotations.insert("berth.dev/compose-service".into(), name.clone());
        let template = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels),
                annotations: Some(annotations.clone()),
                ..ObjectMeta::default()
            }),
            spec: Some(pod),
        };
        let mut meta = ctx.meta(&k8s_name(name), Some(name));
        meta.annotations = Some(annotations);
        let replicas = i32::try_from(svc.replicas()).unwrap_or(i32::MAX);
        if one_shot {
            let backoff = match svc.restart {
                RestartPolicy::OnFailure { max_retries } => {
                    max_retries.map_or(6, |n| i32::try_from(n).unwrap_or(i32::MAX))
                }
                _ => 0,
            };
            ctx.objects.push(Object::Job(Job {
                metadata: meta,
                spec: Some(JobSpec {
                    backoff_limit: Some(backoff),
                    completions: Some(replicas),
                    parallelism: Some(replicas),
                    template,
                    ..JobSpec::default()
                }),
                status: None,
            }));
        } else {
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
                    template,
                    ..DeploymentSpec::default()
                },
                status: None,
            }));
        }
    }
    if needs_waiter {
        job_waiter(ctx);
    }
    Ok(())
}

/// The ServiceAccount, Role and RoleBinding that let init containers watch Jobs.
fn job_waiter(ctx: &mut Ctx<'_>) {
    ctx.objects.push(Object::ServiceAccount(ServiceAccount {
        metadata: ctx.meta(JOB_WAITER, None),
        ..ServiceAccount::default()
    }));
    ctx.objects.push(Object::Role(Role {
        metadata: ctx.meta(JOB_WAITER, None),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec!["batch".into()]),
            resources: Some(vec!["jobs".into()]),
            verbs: vec!["get".into(), "list".into(), "watch".into()],
            ..PolicyRule::default()
        }]),
    }));
    ctx.objects.push(Object::RoleBinding(RoleBinding {
        metadata: ctx.meta(JOB_WAITER, None),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: JOB_WAITER.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: JOB_WAITER.into(),
            namespace: ctx.opts.namespace.clone(),
            ..Subject::default()
        }]),
    }));
}

/// The pod of a service; the flag tells whether it waits for a Job.
fn pod_spec(
    ctx: &mut Ctx<'_>,
    name: &str,
    svc: &Service,
    jobs: &BTreeSet<String>,
    one_shot: bool,
) -> Result<(PodSpec, bool), ConvertError> {
    let (volumes, mounts) = storage::pod_volumes(ctx, name, svc)?;
    let (init, waits_for_job) = init_containers(ctx, name, svc, jobs);
    let mut container = container(ctx, name, svc);
    container.volume_mounts = non_empty(mounts);
    let mut pod = PodSpec {
        containers: vec![container],
        init_containers: non_empty(init),
        volumes: non_empty(volumes),
        restart_policy: one_shot.then(|| match svc.restart {
            RestartPolicy::OnFailure { .. } => "OnFailure".to_string(),
            _ => "Never".to_string(),
        }),
        termination_grace_period_seconds: svc.stop_grace_period.map(|d| secs(d) as i64),
        hostname: svc.hostname.as_deref().map(k8s_name),
        host_network: (svc.network_mode == Some(NetworkMode::Host)).then_some(true),
        service_account_name: waits_for_job.then(|| JOB_WAITER.to_string()),
        ..PodSpec::default()
    };
    if !svc.sysctls.is_empty() {
        pod.security_context = Some(PodSecurityContext {
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
        });
    }
    if !svc.dns.is_empty() {
        pod.dns_config = Some(PodDNSConfig {
            nameservers: Some(svc.dns.iter().map(|a| a.to_string()).collect()),
            ..PodDNSConfig::default()
        });
    }
    let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (host, addrs) in &svc.extra_hosts {
        for a in addrs
            .iter()
            .filter(|a| a.parse::<std::net::IpAddr>().is_ok())
        {
            aliases.entry(a.clone()).or_default().push(host.clone());
        }
    }
    pod.host_aliases = non_empty(
        aliases
            .into_iter()
            .map(|(ip, hostnames)| HostAlias {
                ip,
                hostnames: Some(hostnames),
            })
            .collect(),
    );
    Ok((pod, waits_for_job))
}

/// The service's main container.
fn container(ctx: &mut Ctx<'_>, name: &str, svc: &Service) -> Container {
    let image = match &svc.image {
        Some(i) => i.clone(),
        None => {
            let i = format!("{}-{}", ctx.project.name, name);
            ctx.warn(
                name,
                "build",
                format!(
                    "built images are not pushed; push {i} to a registry the cluster can pull from"
                ),
            );
            i
        }
    };
    let env: Vec<EnvVar> = svc
        .environment
        .iter()
        .map(|(k, v)| EnvVar {
            name: k.clone(),
            value: Some(v.clone().unwrap_or_default()),
            ..EnvVar::default()
        })
        .collect();
    let mut ports = Vec::new();
    for p in services::container_ports(ctx, name, svc) {
        ports.push(ContainerPort {
            container_port: i32::from(p.0),
            protocol: Some(proto(p.1)),
            ..ContainerPort::default()
        });
    }
    let mut limits = BTreeMap::new();
    if let Some(c) = svc.deploy.resources.limits.cpus {
        limits.insert(
            "cpu".to_string(),
            Quantity(format!("{}m", (c * 1000.0).round() as i64)),
        );
    }
    if let Some(m) = svc.deploy.resources.limits.memory {
        limits.insert("memory".to_string(), Quantity(memory(m)));
    }
    let (liveness, readiness) = probes(svc.healthcheck.as_ref()).unzip();
    Container {
        name: k8s_name(name),
        image: Some(image),
        command: svc.entrypoint.clone().filter(|e| !e.is_empty()),
        args: svc.command.clone(),
        env: non_empty(env),
        ports: non_empty(ports),
        working_dir: svc.working_dir.clone(),
        resources: (!limits.is_empty()).then(|| ResourceRequirements {
            limits: Some(limits),
            ..ResourceRequirements::default()
        }),
        liveness_probe: liveness,
        readiness_probe: readiness,
        security_context: security_context(ctx, name, svc),
        stdin: svc.stdin_open.then_some(true),
        tty: svc.tty.then_some(true),
        ..Container::default()
    }
}

fn security_context(ctx: &mut Ctx<'_>, name: &str, svc: &Service) -> Option<SecurityContext> {
    let mut sc = SecurityContext::default();
    if let Some(user) = &svc.user {
        let (u, g) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user.as_str(), None),
        };
        match (u.parse::<i64>(), g.map(str::parse::<i64>)) {
            (Ok(u), None) => sc.run_as_user = Some(u),
            (Ok(u), Some(Ok(g))) => {
                sc.run_as_user = Some(u);
                sc.run_as_group = Some(g);
            }
            _ => ctx.warn(
                name,
                "user",
                format!("{user}: only numeric uid[:gid] becomes runAsUser; ignored"),
            ),
        }
    }
    if !svc.cap_add.is_empty() || !svc.cap_drop.is_empty() {
        let caps = |v: &[String]| {
            non_empty(
                v.iter()
                    .map(|c| c.trim_start_matches("CAP_").to_string())
                    .collect(),
            )
        };
        sc.capabilities = Some(Capabilities {
            add: caps(&svc.cap_add),
            drop: caps(&svc.cap_drop),
        });
    }
    if svc.read_only {
        sc.read_only_root_filesystem = Some(true);
    }
    (sc != SecurityContext::default()).then_some(sc)
}

/// Liveness and readiness probes from a health check.
fn probes(hc: Option<&Healthcheck>) -> Option<(Probe, Probe)> {
    let hc = hc.filter(|h| !h.is_disabled())?;
    let (kind, rest) = hc.test.split_first()?;
    let command = match kind.as_str() {
        "CMD" => rest.to_vec(),
        "CMD-SHELL" => vec!["/bin/sh".into(), "-c".into(), rest.join(" ")],
        _ => return None,
    };
    let probe = Probe {
        exec: Some(ExecAction {
            command: Some(command),
        }),
        period_seconds: Some(hc.interval.map_or(30, secs) as i32),
        timeout_seconds: Some(hc.timeout.map_or(30, secs) as i32),
        failure_threshold: Some(
            hc.retries
                .map_or(3, |r| i32::try_from(r).unwrap_or(i32::MAX)),
        ),
        ..Probe::default()
    };
    let mut liveness = probe.clone();
    liveness.initial_delay_seconds = hc.start_period.map(|d| secs(d) as i32);
    Some((liveness, probe))
}

/// Init containers for `depends_on`; the flag tells whether one waits for a Job.
fn init_containers(
    ctx: &mut Ctx<'_>,
    name: &str,
    svc: &Service,
    jobs: &BTreeSet<String>,
) -> (Vec<Container>, bool) {
    let mut out = Vec::new();
    let mut waits_for_job = false;
    let project = ctx.project;
    for (dep, d) in &svc.depends_on {
        let key = format!("depends_on.{dep}");
        let Some(dep_svc) = project.services.get(dep) else {
            ctx.warn(
                name,
                key,
                "the dependency is not converted (disabled or missing); not awaited",
            );
            continue;
        };
        if d.condition == Condition::ServiceCompletedSuccessfully && jobs.contains(dep) {
            waits_for_job = true;
            out.push(Container {
                name: format!("wait-{}", k8s_name(dep)),
                image: Some(KUBECTL_IMAGE.into()),
                command: Some(vec![
                    "kubectl".into(),
                    "wait".into(),
                    "--for=condition=complete".into(),
                    "--timeout=1h".into(),
                    format!("job/{}", k8s_name(dep)),
                ]),
                ..Container::default()
            });
            continue;
        }
        let tcp = services::container_ports(ctx, dep, dep_svc)
            .into_iter()
            .find(|p| p.1 == Protocol::Tcp);
        let Some((port, _)) = tcp else {
            ctx.warn(
                name,
                key,
                format!("{dep} has no TCP port to wait for; start order is not kept"),
            );
            continue;
        };
        let host = k8s_name(dep);
        out.push(Container {
            name: format!("wait-{host}"),
            image: Some(WAIT_IMAGE.into()),
            command: Some(vec![
                "sh".into(),
                "-c".into(),
                format!("until nc -z -w 2 {host} {port}; do echo waiting for {host}:{port}; sleep 2; done"),
            ]),
            ..Container::default()
        });
    }
    (out, waits_for_job)
}

fn proto(p: Protocol) -> String {
    match p {
        Protocol::Tcp => "TCP".into(),
        Protocol::Udp => "UDP".into(),
    }
}

/// Whole seconds, rounded up.
fn secs(d: std::time::Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Bytes as a quantity in the largest binary unit that divides them.
pub fn memory(bytes: u64) -> String {
    for (unit, size) in [("Gi", 1u64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if bytes >= size && bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_uses_binary_units() {
        assert_eq!(memory(512 << 20), "512Mi");
        assert_eq!(memory(2 << 30), "2Gi");
        assert_eq!(memory(1000), "1000");
    }

    #[test]
    fn shell_health_checks_become_sh_c_probes() {
        let hc = Healthcheck {
            test: vec!["CMD-SHELL".into(), "pg_isready".into()],
            interval: Some(std::time::Duration::from_millis(1500)),
            start_period: Some(std::time::Duration::from_secs(10)),
            ..Healthcheck::default()
        };
        let (live, ready) = probes(Some(&hc)).unwrap();
        let cmd = ready.exec.unwrap().command.unwrap();
        assert_eq!(cmd, ["/bin/sh", "-c", "pg_isready"]);
        assert_eq!(ready.period_seconds, Some(2));
        assert_eq!(live.initial_delay_seconds, Some(10));
        assert!(probes(Some(&Healthcheck {
            test: vec!["NONE".into()],
            ..Healthcheck::default()
        }))
        .is_none());
    }
}
