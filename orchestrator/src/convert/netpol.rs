//! Network policies that reproduce berth's isolation: a project-wide default deny of ingress;
//! per compose network, pods that share it may talk to each other; internal networks get no
//! egress beyond their members and cluster DNS; published ports accept traffic from anywhere;
//! `network_mode: none` pods get no traffic at all.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{k8s_name, Ctx, Object, LABEL_NETWORK_PREFIX, LABEL_PROJECT};
use crate::compose::NetworkMode;

fn selector(labels: BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels),
        ..LabelSelector::default()
    }
}

fn policy(
    ctx: &Ctx<'_>,
    name: &str,
    pods: LabelSelector,
    types: &[&str],
    ingress: Option<Vec<NetworkPolicyIngressRule>>,
    egress: Option<Vec<NetworkPolicyEgressRule>>,
) -> Object {
    Object::NetworkPolicy(NetworkPolicy {
        metadata: ctx.meta(name, None),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(pods),
            policy_types: Some(types.iter().map(|t| t.to_string()).collect()),
            ingress,
            egress,
        }),
    })
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
        ports: Some(
            ["UDP", "TCP"]
                .iter()
                .map(|p| NetworkPolicyPort {
                    port: Some(IntOrString::Int(53)),
                    protocol: Some(p.to_string()),
                    ..NetworkPolicyPort::default()
                })
                .collect(),
        ),
    }
}

/// Adds the project's network policies.
pub(crate) fn convert(ctx: &mut Ctx<'_>) {
    let project = ctx.project;
    let project_pods = BTreeMap::from([(LABEL_PROJECT.to_string(), k8s_name(&project.name))]);
    let deny = policy(
        ctx,
        "default-deny-ingress",
        selector(project_pods.clone()),
        &["Ingress"],
        None,
        None,
    );
    ctx.objects.push(deny);
    for (key, net) in &project.networks {
        if !project
            .services
            .values()
            .any(|s| s.networks.contains_key(key))
        {
            continue;
        }
        if let Some(d) = net.driver.as_deref().filter(|d| *d != "bridge") {
            ctx.warn(
                "networks",
                format!("{key}.driver"),
                format!("{d}: the cluster network is used"),
            );
        }
        if !net.ipam.is_empty() {
            ctx.warn(
                "networks",
                format!("{key}.ipam"),
                "pod addresses are assigned by the cluster; ignored",
            );
        }
        let mut members = project_pods.clone();
        members.insert(
            format!("{LABEL_NETWORK_PREFIX}{}", k8s_name(key)),
            "true".into(),
        );
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
        let obj = policy(
            ctx,
            &format!("net-{}", k8s_name(key)),
            selector(members),
            &["Ingress", "Egress"],
            Some(ingress),
            Some(egress),
        );
        ctx.objects.push(obj);
    }
    for (name, svc) in &project.services {
        let pods = selector(ctx.selector(name));
        if svc.network_mode == Some(NetworkMode::None) {
            let obj = policy(
                ctx,
                &format!("{}-no-network", k8s_name(name)),
                pods,
                &["Ingress", "Egress"],
                None,
                None,
            );
            ctx.objects.push(obj);
            continue;
        }
        let mut ports: Vec<NetworkPolicyPort> = Vec::new();
        for p in svc.ports.iter().filter(|p| p.published.is_some()) {
            let np = NetworkPolicyPort {
                port: Some(IntOrString::Int(i32::from(p.target))),
                protocol: Some(p.protocol.as_str().to_uppercase()),
                ..NetworkPolicyPort::default()
            };
            if !ports.contains(&np) {
                ports.push(np);
            }
        }
        if !ports.is_empty() {
            let rule = NetworkPolicyIngressRule {
                from: None,
                ports: Some(ports),
            };
            let obj = policy(
                ctx,
                &format!("{}-published", k8s_name(name)),
                pods,
                &["Ingress"],
                Some(vec![rule]),
                None,
            );
            ctx.objects.push(obj);
        }
    }
}
