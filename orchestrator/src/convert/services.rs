//! Services: one per compose service, named after it so the same host names resolve in the
//! cluster, and one per network alias and container name (berth's DNS answers both). A service
//! with ports or `expose` gets a ClusterIP Service with those ports; one without gets a headless
//! Service (no ports, cluster DNS answers with the ready pods' addresses) so that, as with
//! berth, any port of it is reachable by name.
//! Published ports go on an extra `<name>-published` Service of the `--service-type` that keeps
//! the host port numbers (NodePort keeps them as node ports when they lie in 30000-32767).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Service as KService, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::context::Ctx;
use super::names::service_name;
use super::{Object, ServiceType};
use crate::compose::{NetworkMode, PortRange, Protocol, Service};

/// Lowest and highest default NodePort.
const NODE_PORTS: std::ops::RangeInclusive<u16> = 30000..=32767;
/// Most ports one `expose` range may open.
const MAX_EXPOSE_RANGE: u32 = 100;

/// The container ports of a service (`ports` targets and `expose`), sorted, without duplicates.
pub(crate) fn container_ports(
    ctx: &mut Ctx<'_>,
    name: &str,
    svc: &Service,
) -> Vec<(u16, Protocol)> {
    let mut out: BTreeSet<(u16, Protocol)> =
        svc.ports.iter().map(|p| (p.target, p.protocol)).collect();
    for (i, e) in svc.expose.iter().enumerate() {
        let (range, proto) = match e.split_once('/') {
            Some((r, "udp")) => (r, Protocol::Udp),
            Some((r, _)) => (r, Protocol::Tcp),
            None => (e.as_str(), Protocol::Tcp),
        };
        match range.parse::<PortRange>() {
            Ok(r) if u32::from(r.end - r.start) < MAX_EXPOSE_RANGE => {
                out.extend((r.start..=r.end).map(|p| (p, proto)));
            }
            Ok(_) => ctx.warn(
                name,
                format!("expose[{i}]"),
                format!("{e}: ranges over {MAX_EXPOSE_RANGE} ports are not listed on the Service"),
            ),
            Err(err) => ctx.warn(name, format!("expose[{i}]"), format!("{e}: {err}; ignored")),
        }
    }
    out.into_iter().collect()
}

fn service_port(port: u16, proto: Protocol, target: u16) -> ServicePort {
    ServicePort {
        name: Some(format!("{}-{port}", proto.as_str())),
        port: i32::from(port),
        protocol: Some(proto.as_str().to_uppercase()),
        target_port: Some(IntOrString::Int(i32::from(target))),
        ..ServicePort::default()
    }
}

/// A Service named `object` selecting the pods of `service`; headless without ports.
fn service(
    ctx: &Ctx<'_>,
    object: &str,
    service: &str,
    type_: ServiceType,
    ports: Vec<ServicePort>,
) -> Object {
    let headless = ports.is_empty();
    Object::Service(KService {
        metadata: ctx.meta(object, Some(service)),
        spec: Some(ServiceSpec {
            type_: Some(type_.as_str().to_string()),
            cluster_ip: headless.then(|| "None".to_string()),
            selector: Some(ctx.selector(service)),
            ports: (!headless).then_some(ports),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

/// Adds the Services of every compose service.
pub(crate) fn convert(ctx: &mut Ctx<'_>) {
    let project = ctx.project;
    for (name, svc) in &project.services {
        if svc.network_mode == Some(NetworkMode::None) {
            continue;
        }
        let ports: Vec<ServicePort> = container_ports(ctx, name, svc)
            .into_iter()
            .map(|(p, proto)| service_port(p, proto, p))
            .collect();
        let obj = service(
            ctx,
            &ctx.service(name),
            name,
            ServiceType::ClusterIp,
            ports.clone(),
        );
        ctx.objects.push(obj);
        // Names berth's DNS answers besides the service name: network aliases and the
        // container name. The first key naming an alias is the one warnings cite.
        let mut aliases: BTreeMap<String, (String, &String)> = BTreeMap::new();
        for (net, sn) in &svc.networks {
            for alias in &sn.aliases {
                let key = format!("networks.{net}.aliases.{alias}");
                aliases.entry(alias.to_lowercase()).or_insert((key, alias));
            }
        }
        if let Some(c) = &svc.container_name {
            aliases
                .entry(c.to_lowercase())
                .or_insert(("container_name".to_string(), c));
        }
        for (lower, (key, alias)) in aliases {
            let alias_name = service_name(alias);
            if alias_name == ctx.service(name) {
                continue;
            }
            if ctx.is_taken("Service", &alias_name) {
                ctx.warn(
                    name,
                    key,
                    format!("{alias}: the Service name {alias_name} is taken; the name does not resolve"),
                );
                continue;
            }
            let alias_name = ctx.unique("Service", alias_name);
            if alias_name != lower {
                ctx.warn(
                    name,
                    key,
                    format!("{alias}: not a valid Service name; it is {alias_name} in the cluster"),
                );
            }
            let obj = service(
                ctx,
                &alias_name,
                name,
                ServiceType::ClusterIp,
                ports.clone(),
            );
            ctx.objects.push(obj);
        }
        published(ctx, name, svc);
    }
}

/// The `<name>-published` Service of the published ports.
fn published(ctx: &mut Ctx<'_>, name: &str, svc: &Service) {
    let type_ = ctx.opts.service_type;
    let mut ports: Vec<ServicePort> = Vec::new();
    for (i, p) in svc.ports.iter().enumerate() {
        // Without a host port berth picks one: the cluster picks the node port likewise, and
        // with ClusterIP the service's own Service already carries the port.
        if p.published.is_none() && type_ == ServiceType::ClusterIp {
            continue;
        }
        let key = format!("ports[{i}]");
        match p.host_ip {
            Some(ip) if ip.is_loopback() && type_ == ServiceType::ClusterIp => {}
            Some(ip) if !ip.is_unspecified() => ctx.warn(
                name,
                format!("{key}.host_ip"),
                format!(
                    "{ip}: a {} Service listens on every address",
                    type_.as_str()
                ),
            ),
            _ => {}
        }
        let port = match p.published {
            Some(r) if r.start != r.end => {
                ctx.warn(
                    name,
                    format!("{key}.published"),
                    format!("{r}: a range; {} is used", r.start),
                );
                r.start
            }
            Some(r) => r.start,
            None => p.target,
        };
        let mut sp = service_port(port, p.protocol, p.target);
        if type_ == ServiceType::NodePort && p.published.is_some() {
            if NODE_PORTS.contains(&port) {
                sp.node_port = Some(i32::from(port));
            } else {
                ctx.warn(
                    name,
                    format!("{key}.published"),
                    format!(
                        "{port}: outside the NodePort range 30000-32767; the cluster picks the \
                         node port"
                    ),
                );
            }
        }
        if !ports
            .iter()
            .any(|q| q.port == sp.port && q.protocol == sp.protocol)
        {
            ports.push(sp);
        }
    }
    if !ports.is_empty() {
        let object = ctx.unique("Service", format!("{}-published", ctx.service(name)));
        let obj = service(ctx, &object, name, type_, ports);
        ctx.objects.push(obj);
    }
}
