//! The main container of a service: image, entrypoint and command as command and args (escaped
//! against the kubelet's `$(VAR)` expansion), environment (env files included: the loader read
//! them), working directory, ports, limits, user and capabilities as the security context, and
//! the health check as readiness and liveness probes.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, ExecAction, Probe, ResourceRequirements,
    SecurityContext,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::context::Ctx;
use super::names::escape_expansion;
use super::services;
use crate::compose::{Healthcheck, Service};

/// Compose defaults of a health check: interval, timeout, retries.
const HEALTH_INTERVAL: u64 = 30;
const HEALTH_TIMEOUT: u64 = 30;
const HEALTH_RETRIES: u64 = 3;

/// The service's main container.
pub(crate) fn container(ctx: &mut Ctx<'_>, name: &str, svc: &Service) -> Container {
    let image = image(ctx, name, svc);
    // A variable declared without a value is unset in the container, as with berth.
    let env: Vec<EnvVar> = svc
        .environment
        .iter()
        .filter_map(|(k, v)| {
            Some(EnvVar {
                name: k.clone(),
                value: Some(escape_expansion(v.as_deref()?)),
                ..EnvVar::default()
            })
        })
        .collect();
    let ports: Vec<ContainerPort> = services::container_ports(ctx, name, svc)
        .into_iter()
        .map(|(port, proto)| ContainerPort {
            container_port: i32::from(port),
            protocol: Some(proto.as_str().to_uppercase()),
            ..ContainerPort::default()
        })
        .collect();
    let (command, args) = command_and_args(ctx, name, svc);
    let (liveness, readiness) = probes(ctx, name, svc.healthcheck.as_ref()).unzip();
    Container {
        name: ctx.service(name),
        image: Some(image),
        command,
        args,
        env: non_empty(env),
        ports: non_empty(ports),
        working_dir: svc.working_dir.clone(),
        resources: resources(svc),
        liveness_probe: liveness,
        readiness_probe: readiness,
        security_context: security_context(ctx, name, svc),
        stdin: svc.stdin_open.then_some(true),
        tty: svc.tty.then_some(true),
        ..Container::default()
    }
}

/// The image; a built one is named as berth names it and must be pushed by hand.
fn image(ctx: &mut Ctx<'_>, name: &str, svc: &Service) -> String {
    let image = svc
        .image
        .clone()
        .unwrap_or_else(|| format!("{}-{name}", ctx.project.name));
    if svc.build.is_some() {
        ctx.warn(
            name,
            "build",
            format!(
                "built images are not pushed; push {image} to a registry the cluster pulls from"
            ),
        );
    }
    image
}

/// Entrypoint as command and command as args; `entrypoint: []` makes the command the whole
/// command line.
fn command_and_args(
    ctx: &mut Ctx<'_>,
    name: &str,
    svc: &Service,
) -> (Option<Vec<String>>, Option<Vec<String>>) {
    let escape = |v: &Vec<String>| v.iter().map(|s| escape_expansion(s)).collect::<Vec<_>>();
    let command = svc.command.as_ref().filter(|c| !c.is_empty()).map(escape);
    match &svc.entrypoint {
        Some(e) if e.is_empty() => {
            if command.is_none() {
                ctx.warn(
                    name,
                    "entrypoint",
                    "[]: clearing the image's entrypoint while keeping its command cannot be \
                     expressed; the image's entrypoint is kept",
                );
            }
            (command, None)
        }
        Some(e) => (Some(escape(e)), command),
        None => (None, command),
    }
}

fn resources(svc: &Service) -> Option<ResourceRequirements> {
    let mut limits = BTreeMap::new();
    let l = &svc.deploy.resources.limits;
    if let Some(c) = l.cpus.filter(|c| *c > 0.0) {
        let millis = (c * 1000.0).round().max(1.0) as i64;
        limits.insert("cpu".to_string(), Quantity(format!("{millis}m")));
    }
    if let Some(m) = l.memory.filter(|m| *m > 0) {
        limits.insert("memory".to_string(), Quantity(memory(m)));
    }
    (!limits.is_empty()).then(|| ResourceRequirements {
        limits: Some(limits),
        ..ResourceRequirements::default()
    })
}

fn security_context(ctx: &mut Ctx<'_>, name: &str, svc: &Service) -> Option<SecurityContext> {
    let mut sc = SecurityContext::default();
    if let Some(user) = &svc.user {
        let id = |s: &str| {
            if s == "root" {
                Ok(0)
            } else {
                s.parse::<i64>()
            }
        };
        let (u, g) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user.as_str(), None),
        };
        match (id(u), g.map(id)) {
            (Ok(u), None) => sc.run_as_user = Some(u),
            (Ok(u), Some(Ok(g))) => {
                sc.run_as_user = Some(u);
                sc.run_as_group = Some(g);
            }
            _ => ctx.warn(
                name,
                "user",
                format!(
                    "{user}: only numeric uid[:gid] becomes runAsUser; the image's user is kept"
                ),
            ),
        }
    }
    if !svc.cap_add.is_empty() || !svc.cap_drop.is_empty() {
        let caps = |v: &[String]| {
            non_empty(
                v.iter()
                    .map(|c| c.trim_start_matches("CAP_").to_uppercase())
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

/// Liveness and readiness probes from a health check; the start period delays liveness.
fn probes(ctx: &mut Ctx<'_>, name: &str, hc: Option<&Healthcheck>) -> Option<(Probe, Probe)> {
    let hc = hc.filter(|h| !h.is_disabled())?;
    let Some((kind, rest)) = hc.test.split_first() else {
        ctx.warn(
            name,
            "healthcheck",
            "no test: the image's health check is not visible to the conversion; no probe",
        );
        return None;
    };
    let command = match kind.as_str() {
        "CMD" => rest.to_vec(),
        "CMD-SHELL" => vec!["/bin/sh".into(), "-c".into(), rest.join(" ")],
        other => {
            ctx.warn(
                name,
                "healthcheck.test",
                format!("{other}: not CMD or CMD-SHELL; no probe"),
            );
            return None;
        }
    };
    let seconds = |d: Option<Duration>, default: u64| {
        i32::try_from(d.map_or(default, secs).max(1)).unwrap_or(i32::MAX)
    };
    let probe = Probe {
        exec: Some(ExecAction {
            command: Some(command),
        }),
        period_seconds: Some(seconds(hc.interval, HEALTH_INTERVAL)),
        timeout_seconds: Some(seconds(hc.timeout, HEALTH_TIMEOUT)),
        failure_threshold: Some(
            i32::try_from(hc.retries.unwrap_or(HEALTH_RETRIES).max(1)).unwrap_or(i32::MAX),
        ),
        ..Probe::default()
    };
    let mut liveness = probe.clone();
    liveness.initial_delay_seconds = hc
        .start_period
        .map(|d| i32::try_from(secs(d)).unwrap_or(i32::MAX));
    Some((liveness, probe))
}

/// Whole seconds, rounded up.
pub(crate) fn secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Bytes as a quantity in the largest binary unit that divides them.
pub fn memory(bytes: u64) -> String {
    for (unit, size) in [("Gi", 1u64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

pub(crate) fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
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
        let project = crate::compose::Project::default();
        let opts = super::super::Options::default();
        let mut ctx = Ctx::new(&project, &opts);
        let hc = Healthcheck {
            test: vec!["CMD-SHELL".into(), "pg_isready".into()],
            interval: Some(Duration::from_millis(1500)),
            start_period: Some(Duration::from_secs(10)),
            ..Healthcheck::default()
        };
        let (live, ready) = probes(&mut ctx, "db", Some(&hc)).unwrap();
        let cmd = ready.exec.unwrap().command.unwrap();
        assert_eq!(cmd, ["/bin/sh", "-c", "pg_isready"]);
        assert_eq!(ready.period_seconds, Some(2));
        assert_eq!(ready.timeout_seconds, Some(30));
        assert_eq!(ready.initial_delay_seconds, None);
        assert_eq!(live.initial_delay_seconds, Some(10));
        let none = Healthcheck {
            test: vec!["NONE".into()],
            ..Healthcheck::default()
        };
        assert!(probes(&mut ctx, "db", Some(&none)).is_none());
        assert!(ctx.warnings.is_empty());
        let inherited = Healthcheck {
            interval: Some(Duration::from_secs(5)),
            ..Healthcheck::default()
        };
        assert!(probes(&mut ctx, "db", Some(&inherited)).is_none());
        assert_eq!(ctx.warnings.len(), 1);
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(secs(Duration::from_millis(300)), 1);
        assert_eq!(secs(Duration::from_secs(5)), 5);
    }
}
