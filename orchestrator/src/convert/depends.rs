//! `depends_on` as init containers, so start order survives:
//!
//! - a dependency that runs as a Job (`service_completed_successfully`): `kubectl wait` until
//!   the Job completed;
//! - a dependency with a TCP port on a network the service shares (`service_started`,
//!   `service_healthy`): `nc` until its Service answers; a Service routes only to ready pods,
//!   so a health check (a readiness probe) is awaited too;
//! - any other dependency: `kubectl wait` until its Deployment is Available (its pods ready).
//!
//! Waiting through the API needs the `berth-waiter` ServiceAccount, a Role that may read Jobs
//! and Deployments, and egress to the API server (see [`super::netpol`]).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Container, ServiceAccount};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};

use super::context::Ctx;
use super::{services, Object};
use crate::compose::{Condition, NetworkMode, Protocol, Service};

/// Image of the init containers that wait for a Service to answer.
pub const WAIT_IMAGE: &str = "busybox:1.37";
/// Image of the init containers that wait through the API (shell-free, kubectl at /bin).
pub const KUBECTL_IMAGE: &str = "registry.k8s.io/kubectl:v1.34.1";
/// ServiceAccount, Role and RoleBinding of pods that wait through the API.
pub const WAITER: &str = "berth-waiter";
/// How long one wait may take before the init container fails (and is restarted).
const TIMEOUT: &str = "--timeout=1h";

/// The init containers of a service.
pub(crate) struct Waits {
    /// One per dependency, in `depends_on` order.
    pub containers: Vec<Container>,
    /// Whether one of them waits through the API.
    pub via_api: bool,
}

/// Whether `a` can reach `b`'s pods: they share a network, or `a` uses the host's.
fn reachable(a: &Service, b: &Service) -> bool {
    a.network_mode == Some(NetworkMode::Host)
        || (b.network_mode.is_none() && a.networks.keys().any(|n| b.networks.contains_key(n)))
}

/// The init container name for waiting on `dep` (a label of at most 63 characters).
fn wait_name(dep: &str) -> String {
    let name: String = format!("wait-{dep}").chars().take(63).collect();
    name.trim_end_matches('-').to_string()
}

fn kubectl_wait(dep: &str, condition: &str, object: String) -> Container {
    Container {
        name: wait_name(dep),
        image: Some(KUBECTL_IMAGE.into()),
        command: Some(vec![
            "/bin/kubectl".into(),
            "wait".into(),
            format!("--for=condition={condition}"),
            TIMEOUT.into(),
            object,
        ]),
        ..Container::default()
    }
}

fn nc_wait(dep: &str, port: u16) -> Container {
    Container {
        name: wait_name(dep),
        image: Some(WAIT_IMAGE.into()),
        command: Some(vec![
            "sh".into(),
            "-c".into(),
            format!(
                "until nc -z -w 2 {dep} {port}; do echo waiting for {dep}:{port}; sleep 2; done"
            ),
        ]),
        ..Container::default()
    }
}

/// Init containers for the `depends_on` of `name`; `jobs` are the services run as Jobs.
pub(crate) fn init_containers(
    ctx: &mut Ctx<'_>,
    name: &str,
    svc: &Service,
    jobs: &BTreeSet<String>,
) -> Waits {
    let mut waits = Waits {
        containers: Vec::new(),
        via_api: false,
    };
    let project = ctx.project;
    for (dep, d) in &svc.depends_on {
        let key = format!("depends_on.{dep}");
        let Some(dep_svc) = project.services.get(dep) else {
            ctx.warn(
                name,
                key,
                "the dependency is not converted (its profile is disabled); not awaited",
            );
            continue;
        };
        let object = ctx.service(dep);
        let completed = d.condition == Condition::ServiceCompletedSuccessfully;
        if jobs.contains(dep) {
            if completed {
                waits.via_api = true;
                let c = kubectl_wait(&object, "Complete", format!("job/{object}"));
                waits.containers.push(c);
            } else {
                ctx.warn(
                    name,
                    key,
                    format!(
                        "{}: {dep} runs as a Job, which starts when applied; not awaited",
                        d.condition.as_str()
                    ),
                );
            }
            continue;
        }
        if completed {
            ctx.warn(
                name,
                key.clone(),
                format!(
                    "service_completed_successfully: {dep} restarts ({}), so it runs as a \
                     Deployment; waiting until it is available instead",
                    dep_svc.restart
                ),
            );
        }
        let tcp = services::container_ports(ctx, dep, dep_svc)
            .into_iter()
            .find(|p| p.1 == Protocol::Tcp);
        match tcp {
            Some((port, _)) if !completed && reachable(svc, dep_svc) => {
                waits.containers.push(nc_wait(&object, port));
            }
            _ => {
                waits.via_api = true;
                let c = kubectl_wait(&object, "Available", format!("deployment/{object}"));
                waits.containers.push(c);
            }
        }
    }
    if waits.via_api && isolated(ctx, svc) {
        ctx.warn(
            name,
            "depends_on",
            "waiting through the Kubernetes API lets the pod open TCP 443 and 6443 although \
             it has no outside network (network_mode none or only internal networks)",
        );
    }
    waits
}

/// Whether the service has no way out: `network_mode: none` or only internal networks.
fn isolated(ctx: &Ctx<'_>, svc: &Service) -> bool {
    match &svc.network_mode {
        Some(NetworkMode::None) => true,
        Some(_) => false,
        None => svc
            .networks
            .keys()
            .all(|n| ctx.project.networks.get(n).is_some_and(|net| net.internal)),
    }
}

/// The ServiceAccount, Role and RoleBinding that let init containers wait through the API.
pub(crate) fn waiter_account(ctx: &mut Ctx<'_>) {
    ctx.objects.push(Object::ServiceAccount(ServiceAccount {
        metadata: ctx.meta(WAITER, None),
        ..ServiceAccount::default()
    }));
    let read = |group: &str, resource: &str| PolicyRule {
        api_groups: Some(vec![group.into()]),
        resources: Some(vec![resource.into()]),
        verbs: vec!["get".into(), "list".into(), "watch".into()],
        ..PolicyRule::default()
    };
    ctx.objects.push(Object::Role(Role {
        metadata: ctx.meta(WAITER, None),
        rules: Some(vec![read("apps", "deployments"), read("batch", "jobs")]),
    }));
    // Without a namespace the subject's namespace defaults to the binding's.
    ctx.objects.push(Object::RoleBinding(RoleBinding {
        metadata: ctx.meta(WAITER, None),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: WAITER.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: WAITER.into(),
            namespace: ctx.opts.namespace.clone(),
            ..Subject::default()
        }]),
    }));
}
