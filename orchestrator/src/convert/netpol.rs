//! Network policies that reproduce berth's isolation: a project-wide default deny of ingress;
//! per compose network, pods that share it may talk to each other; internal networks get no
//! egress beyond their members and cluster DNS; published ports accept traffic from anywhere
//! (but loopback-only ones with `--service-type ClusterIP`, reached by port-forward);
//! `network_mode: none` pods get no traffic at all; pods whose init containers wait through the
//! Kubernetes API may reach it (TCP 443 and 6443).

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::context::Ctx;
use super::names::label_name;
use super::{network_label, Object, ServiceType, LABEL_PROJECT, LABEL_WAITS_VIA_API};
use crate::compose::{NetworkMode, Protocol};

/// Ports of the Kubernetes API server: the `kubernetes` Service and the usual endpoint port.
const API_PORTS: [i32; 2] = [443, 6443];

fn selector(labels: BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels),
        ..LabelSelector::default()
    }
}

fn policy(
    ctx: &mut Ctx<'_>,
    name: String,
    pods: LabelSelector,
    types: &[&str],
    ingress: Option<Vec<NetworkPolicyIngressRule>>,
    egress: Option<Vec<NetworkPolicyEgressRule>>,
) {
    let name = ctx.unique("NetworkPolicy", name);
    ctx.objects.push(Object::NetworkPolicy(NetworkPolicy {
        metadata: ctx.meta(&name, None),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(pods),
            policy_types: Some(types.iter().map(|t| t.to_string()).collect()),
            ingress,
            egress,
        }),
    }));
}

fn port(port: i32, proto: Protocol) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(port)),
        protocol: Some(proto.as_str().to_uppercase()),
        ..NetworkPolicyPort::default()
    }
}

/// Cluster DNS (kube-dns / CoreDNS in any namespace) on port 53.
fn dns_rule() -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        to: Some(vec![NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector::default()),
            pod_selector: Some(selector(BTreeMap::from([(
                "k8s-app".to_string(),
                "kube-dns".to_string(),
            )]))),
            ..NetworkPolicyPeer::default()
        }]),
        ports: Some(vec![port(53, Protocol::Udp), port(53, Protocol::Tcp)]),
    }
}

/// Adds the project's network policies; `api_waiters` tells whether some pod waits through the
/// API.
pub(crate) fn convert(ctx: &mut Ctx<'_>, api_waiters: bool) {
    let project = ctx.project;
    let project_pods = BTreeMap::from([(LABEL_PROJECT.to_string(), label_name(&project.name))]);
    policy(
        ctx,
        "default-deny-ingress".into(),
        selector(project_pods.clone()),
        &["Ingress"],
        None,
        None,
    );
    for (key, net) in &project.networks {
        if !project
            .services
            .values()
            .any(|s| s.networks.contains_key(key))
        {
            continue;
        }
        network(ctx, key, net, &project_pods);
    }
    for (name, svc) in &project.services {
        let pods = selector(ctx.selector(name));
        if svc.network_mode == Some(NetworkMode::None) {
            let name = format!("{}-no-network", ctx.service(name));
            policy(ctx, name, pods, &["Ingress", "Egress"], None, None);
            continue;
        }
        let mut ports: Vec<NetworkPolicyPort> = Vec::new();
        // Every `ports` entry is published, on a fixed or a picked host port.
        for p in &svc.ports {
            let local = p.host_ip.is_some_and(|ip| ip.is_loopback());
            if local && ctx.opts.service_type == ServiceType::ClusterIp {
                continue;
            }
            let np = port(i32::from(p.target), p.protocol);
            if !ports.contains(&np) {
                ports.push(np);
            }
        }
        if !ports.is_empty() {
            let rule = NetworkPolicyIngressRule {
                from: None,
                ports: Some(ports),
            };
            let name = format!("{}-published", ctx.service(name));
            policy(ctx, name, pods, &["Ingress"], Some(vec![rule]), None);
        }
    }
    if api_waiters {
        let mut pods = project_pods;
        pods.insert(LABEL_WAITS_VIA_API.to_string(), "true".to_string());
        let rule = NetworkPolicyEgressRule {
            to: None,
            ports: Some(API_PORTS.iter().map(|p| port(*p, Protocol::Tcp)).collect()),
        };
        policy(
            ctx,
            "waiters-reach-the-api".into(),
            selector(pods),
            &["Egress"],
            None,
            Some(vec![rule]),
        );
    }
}

/// The policy of one compose network: members talk to each other; internal ones have no other
/// egress than cluster DNS.
fn network(
    ctx: &mut Ctx<'_>,
    key: &str,
    net: &crate::compose::Network,
    project_pods: &BTreeMap<String, String>,
) {
    if let Some(d) = net.driver.as_deref().filter(|d| *d != "bridge") {
        ctx.warn_top(
            format!("networks.{key}.driver"),
            format!("{d}: the cluster network is used"),
        );
    }
    if !net.ipam.is_empty() {
        ctx.warn_top(
            format!("networks.{key}.ipam"),
            "pod addresses are assigned by the cluster; ignored",
        );
    }
    if net.external {
        ctx.warn_top(
            format!("networks.{key}.external"),
            "only this project's pods are members of the network",
        );
    }
    let mut members = project_pods.clone();
    members.insert(network_label(key), "true".into());
    let peers = vec![NetworkPolicyPeer {
        pod_selector: Some(selector(members.clone())),
        ..NetworkPolicyPeer::default()
    }];
    let ingress = vec![NetworkPolicyIngressRule {
        from: Some(peers.clone()),
        ports: None,
    }];
    let egress = if net.internal {
        vec![
            NetworkPolicyEgressRule {
                to: Some(peers),
                ports: None,
            },
            dns_rule(),
        ]
    } else {
        vec![NetworkPolicyEgressRule::default()]
    };
    policy(
        ctx,
        format!("net-{}", label_name(key)),
        selector(members),
        &["Ingress", "Egress"],
        Some(ingress),
        Some(egress),
    );
}
