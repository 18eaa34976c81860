//! `berth convert`: the canonical compose project model to Kubernetes manifests.
//!
//! Every object is a typed k8s-openapi struct, so it is well formed by construction. The output
//! is deterministic: objects are sorted by kind and name, names derive from compose keys. What
//! cannot be expressed becomes a [`Warning`] naming the service and key.
//!
//! One file per mapping area: [`workloads`] (Deployments, Jobs, probes, init containers),
//! [`services`] (Services), [`netpol`] (NetworkPolicies), [`storage`] (claims and pod volumes),
//! [`configs`] (ConfigMaps and Secrets), [`warnings`] (keys without an equivalent).

mod configs;
mod netpol;
mod services;
mod storage;
mod warnings;
mod workloads;

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Secret, Service as KService, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::compose::Project;

pub use warnings::Warning;

/// Label holding the project name on every object and pod.
pub const LABEL_PROJECT: &str = "berth.dev/project";
/// Label holding the compose service name on workloads, pods and Services.
pub const LABEL_SERVICE: &str = "berth.dev/service";
/// Prefix of the pod label marking membership of a compose network.
pub const LABEL_NETWORK_PREFIX: &str = "berth.dev/network-";

/// How Services expose published ports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ServiceType {
    /// Cluster-internal only; published ports are not reachable from outside.
    #[default]
    #[value(name = "ClusterIP")]
    ClusterIp,
    /// Published ports on every node.
    #[value(name = "NodePort")]
    NodePort,
    /// Published ports on a cloud load balancer.
    #[value(name = "LoadBalancer")]
    LoadBalancer,
}

impl ServiceType {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIp => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

/// Conversion options (the flags of `berth convert`).
#[derive(Debug, Clone)]
pub struct Options {
    /// Namespace set on every object; `None` leaves it to kubectl's context.
    pub namespace: Option<String>,
    /// Type of the Services carrying published ports.
    pub service_type: ServiceType,
    /// Storage class of claims without an `x-kubernetes.storage_class`.
    pub storage_class: Option<String>,
    /// Size of claims without an `x-kubernetes.size`.
    pub volume_size: String,
    /// Turn bind mounts into hostPath volumes instead of refusing them.
    pub allow_hostpath: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            namespace: None,
            service_type: ServiceType::ClusterIp,
            storage_class: None,
            volume_size: "1Gi".to_string(),
            allow_hostpath: false,
        }
    }
}

/// Errors of the conversion.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A bind mount without `--allow-hostpath`.
    #[error(
        "service {service}: bind mount {source_path} -> {target} has no cluster equivalent \
         (use a named volume, or --allow-hostpath to mount the node's path)"
    )]
    BindMount {
        /// Service.
        service: String,
        /// Host path.
        source_path: String,
        /// Container path.
        target: String,
    },
    /// A config or secret file could not be read.
    #[error("read {kind} {name} from {path}")]
    ReadFile {
        /// `config` or `secret`.
        kind: &'static str,
        /// Top-level key.
        name: String,
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// An object could not be rendered as YAML.
    #[error("render {kind} {name} as yaml")]
    Render {
        /// Kind.
        kind: &'static str,
        /// Name.
        name: String,
        /// Cause.
        #[source]
        source: serde_yaml::Error,
    },
}

/// One emitted object.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // a handful per project
pub enum Object {
    /// A Namespace-scoped ServiceAccount (for init containers that wait for Jobs).
    ServiceAccount(ServiceAccount),
    /// A Role.
    Role(Role),
    /// A RoleBinding.
    RoleBinding(RoleBinding),
    /// A ConfigMap.
    ConfigMap(ConfigMap),
    /// A Secret.
    Secret(Secret),
    /// A PersistentVolumeClaim.
    PersistentVolumeClaim(PersistentVolumeClaim),
    /// A NetworkPolicy.
    NetworkPolicy(NetworkPolicy),
    /// A Service.
    Service(KService),
    /// A Job.
    Job(Job),
    /// A Deployment.
    Deployment(Deployment),
}

impl Object {
    /// The object's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Object::ServiceAccount(_) => "ServiceAccount",
            Object::Role(_) => "Role",
            Object::RoleBinding(_) => "RoleBinding",
            Object::ConfigMap(_) => "ConfigMap",
            Object::Secret(_) => "Secret",
            Object::PersistentVolumeClaim(_) => "PersistentVolumeClaim",
            Object::NetworkPolicy(_) => "NetworkPolicy",
            Object::Service(_) => "Service",
            Object::Job(_) => "Job",
            Object::Deployment(_) => "Deployment",
        }
    }

    fn meta(&self) -> &ObjectMeta {
        match self {
            Object::ServiceAccount(o) => &o.metadata,
            Object::Role(o) => &o.metadata,
            Object::RoleBinding(o) => &o.metadata,
            Object::ConfigMap(o) => &o.metadata,
            Object::Secret(o) => &o.metadata,
            Object::PersistentVolumeClaim(o) => &o.metadata,
            Object::NetworkPolicy(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::Job(o) => &o.metadata,
            Object::Deployment(o) => &o.metadata,
        }
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        self.meta().name.as_deref().unwrap_or_default()
    }

    /// A stable file name: `<kind>-<name>.yaml`, kind in lowercase.
    pub fn file_name(&self) -> String {
        format!("{}-{}.yaml", self.kind().to_lowercase(), self.name())
    }

    /// The object as one YAML document (with apiVersion and kind).
    pub fn to_yaml(&self) -> Result<String, ConvertError> {
        let rendered = match self {
            Object::ServiceAccount(o) => serde_yaml::to_string(o),
            Object::Role(o) => serde_yaml::to_string(o),
            Object::RoleBinding(o) => serde_yaml::to_string(o),
            Object::ConfigMap(o) => serde_yaml::to_string(o),
            Object::Secret(o) => serde_yaml::to_string(o),
            Object::PersistentVolumeClaim(o) => serde_yaml::to_string(o),
            Object::NetworkPolicy(o) => serde_yaml::to_string(o),
            Object::Service(o) => serde_yaml::to_string(o),
            Object::Job(o) => serde_yaml::to_string(o),
            Object::Deployment(o) => serde_yaml::to_string(o),
        };
        rendered.map_err(|source| ConvertError::Render {
            kind: self.kind(),
            name: self.name().to_string(),
            source,
        })
    }
}

/// The result of a conversion.
#[derive(Debug, Clone, Default)]
pub struct Converted {
    /// Objects sorted by kind order (dependencies first) then name.
    pub objects: Vec<Object>,
    /// What could not be expressed, sorted by service then key.
    pub warnings: Vec<Warning>,
}

impl Converted {
    /// All objects as one YAML stream, documents separated by `---`.
    pub fn to_yaml(&self) -> Result<String, ConvertError> {
        let mut out = String::new();
        for (i, o) in self.objects.iter().enumerate() {
            if i > 0 {
                out.push_str("---\n");
            }
            out.push_str(&o.to_yaml()?);
        }
        Ok(out)
    }
}

/// Shared state while converting one project.
pub(crate) struct Ctx<'a> {
    pub project: &'a Project,
    pub opts: &'a Options,
    pub objects: Vec<Object>,
    pub warnings: Vec<Warning>,
}

impl Ctx<'_> {
    /// Records a warning about `service`'s `key`.
    pub fn warn(&mut self, service: &str, key: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Warning {
            service: service.to_string(),
            key: key.into(),
            message: message.into(),
        });
    }

    /// Metadata with the name, namespace and project labels set.
    pub fn meta(&self, name: &str, service: Option<&str>) -> ObjectMeta {
        let mut labels = BTreeMap::new();
        labels.insert(LABEL_PROJECT.to_string(), k8s_name(&self.project.name));
        labels.insert(
            "app.kubernetes.io/managed-by".to_string(),
            "berth".to_string(),
        );
        if let Some(s) = service {
            labels.insert(LABEL_SERVICE.to_string(), k8s_name(s));
        }
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: self.opts.namespace.clone(),
            labels: Some(labels),
            ..ObjectMeta::default()
        }
    }

    /// The pod selector of a service.
    pub fn selector(&self, service: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (LABEL_PROJECT.to_string(), k8s_name(&self.project.name)),
            (LABEL_SERVICE.to_string(), k8s_name(service)),
        ])
    }
}

/// A compose key as a Kubernetes object name (RFC 1123 label: lowercase alphanumerics and `-`,
/// at most 63 characters, starting and ending with an alphanumeric).
pub fn k8s_name(key: &str) -> String {
    let mapped: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let trimmed: String = mapped.trim_matches('-').chars().take(63).collect();
    let trimmed = trimmed.trim_end_matches('-').to_string();
    if trimmed.is_empty() {
        "x".to_string()
    } else {
        trimmed
    }
}

/// Converts a project to Kubernetes objects.
pub fn convert(project: &Project, opts: &Options) -> Result<Converted, ConvertError> {
    let mut ctx = Ctx {
        project,
        opts,
        objects: Vec::new(),
        warnings: Vec::new(),
    };
    configs::convert(&mut ctx)?;
    storage::claims(&mut ctx);
    netpol::convert(&mut ctx);
    services::convert(&mut ctx);
    workloads::convert(&mut ctx)?;
    for (name, svc) in &project.services {
        warnings::unsupported(&mut ctx, name, svc);
    }
    let order = |o: &Object| match o {
        Object::ServiceAccount(_) => 0,
        Object::Role(_) => 1,
        Object::RoleBinding(_) => 2,
        Object::ConfigMap(_) => 3,
        Object::Secret(_) => 4,
        Object::PersistentVolumeClaim(_) => 5,
        Object::NetworkPolicy(_) => 6,
        Object::Service(_) => 7,
        Object::Job(_) => 8,
        Object::Deployment(_) => 9,
    };
    ctx.objects
        .sort_by(|a, b| (order(a), a.name()).cmp(&(order(b), b.name())));
    ctx.objects
        .dedup_by(|a, b| a.kind() == b.kind() && a.name() == b.name());
    ctx.warnings.sort();
    ctx.warnings.dedup();
    Ok(Converted {
        objects: ctx.objects,
        warnings: ctx.warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_rfc1123_labels() {
        assert_eq!(k8s_name("My_Web.app"), "my-web-app");
        assert_eq!(k8s_name("_db_"), "db");
        assert_eq!(k8s_name("___"), "x");
        assert_eq!(k8s_name(&"a".repeat(70)).len(), 63);
    }
}
