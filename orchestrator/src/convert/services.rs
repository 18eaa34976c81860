//! Services: one per compose service with ports or `expose`, named after it so the same host
//! names resolve in the cluster; one per network alias; published ports on an extra
//! `<name>-published` Service of the `--service-type`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Service as KService, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{k8s_name, Ctx, Object, ServiceType};
use crate::compose::{Protocol, Service};

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
        let parsed = range.parse::<crate::compose::PortRange>();
        match parsed {
            Ok(r) if u32::from(r.end - r.start) < MAX_EXPOSE_RANGE => {
                out.extend((r.start..=r.end).map(|p| (p, proto)));
            }
            Ok(_) => ctx.warn(
                name,
                format!("expose[{i}]"),
                format!("{e}: ranges over {MAX_EXPOSE_RANGE} ports are not exposed"),
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

fn service(
    ctx: &Ctx<'_>,
    object: &str,
    service: &str,
    type_: ServiceType,
    ports: Vec<ServicePort>,
) -> Object {
    Object::Service(KService {
        metadata: ctx.meta(object, Some(service)),
        spec: Some(ServiceSpec {
            type_: Some(type_.as_str().to_string()),
            selector: Some(ctx.selector(service)),
            ports: Some(ports),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

/// Adds the Services of every compose service.
pub(crate) fn convert(ctx: &mut Ctx<'_>) {
    let project = ctx.project;
    let mut taken: BTreeMap<String, String> = project
        .services
        .keys()
        .map(|n| (k8s_name(n), n.clone()))
        .collect();
    for (name, svc) in &project.services {
        let ports: Vec<ServicePort> = container_ports(ctx, name, svc)
            .into_iter()
            .map(|(p, proto)| service_port(p, proto, p))
            .collect();
        let aliases: BTreeSet<&String> = svc
            .networks
            .values()
            .flat_map(|n| n.aliases.iter())
            .collect();
        if ports.is_empty() {
            for (net, sn) in &svc.networks {
                if !sn.aliases.is_empty() {
                    ctx.warn(
                        name,
                        format!("networks.{net}.aliases"),
                        "the service has no ports or expose, so no Service carries the alias",
                    );
                }
            }
        } else {
            let obj = service(
                ctx,
                &k8s_name(name),
                name,
                ServiceType::ClusterIp,
                ports.clone(),
            );
            ctx.objects.push(obj);
            for alias in aliases {
                let alias_name = k8s_name(alias);
                match taken.get(&alias_name) {
                    Some(owner) if owner != name => {
                        ctx.warn(
                            name,
                            "networks.aliases",
                            format!("{alias}: the name is taken by {owner}; no Service"),
                        );
                    }
                    Some(_) => {}
                    None => {
                        taken.insert(alias_name.clone(), name.clone());
                        let obj = service(
                            ctx,
                            &alias_name,
                            name,
                            ServiceType::ClusterIp,
                            ports.clone(),
                        );
                        ctx.objects.push(obj);
                    }
                }
            }
        }
        published(ctx, name, svc);
    }
}

/// The `<name>-published` Service of the published ports.
fn published(ctx: &mut Ctx<'_>, name: &str, svc: &Service) {
    let type_ = ctx.opts.service_type;
    let mut ports = Vec::new();
    for (i, p) in svc.ports.iter().enumerate() {
        let Some(published) = p.published else {
            continue;
        };
        let key = format!("ports[{i}]");
        if type_ == ServiceType::ClusterIp {
            ctx.warn(name, key, format!("{published}:{}: not reachable from outside the cluster with --service-type ClusterIP (use kubectl port-forward, or NodePort/LoadBalancer)", p.target));
            continue;
        }
        if let Some(ip) = p.host_ip {
            ctx.warn(
                name,
                format!("{key}.host_ip"),
                format!("{ip}: Services listen on every address"),
            );
        }
        if published.start != published.end {
            ctx.warn(
                name,
                format!("{key}.published"),
                format!("{published}: a range; only {} is used", published.start),
            );
        }
        let mut sp = service_port(published.start, p.protocol, p.target);
        if type_ == ServiceType::NodePort {
            if NODE_PORTS.contains(&published.start) {
                sp.node_port = Some(i32::from(published.start));
            } else {
                ctx.warn(name, format!("{key}.published"), format!("{}: outside the NodePort range 30000-32767; the cluster picks the node port", published.start));
            }
        }
        if !ports
            .iter()
            .any(|q: &ServicePort| q.port == sp.port && q.protocol == sp.protocol)
        {
            ports.push(sp);
        }
    }
    if !ports.is_empty() {
        let obj = service(
            ctx,
            &format!("{}-published", k8s_name(name)),
            name,
            type_,
            ports,
        );
        ctx.objects.push(obj);
    }
}
