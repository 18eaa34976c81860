//! `berth convert`: the canonical compose project model (what `up` runs) to Kubernetes
//! manifests.
//!
//! Every object is a typed k8s-openapi struct, so it is well formed by construction. The output
//! is deterministic: objects are sorted by kind (apply order) and name, names derive from compose
//! keys, and every compose service keeps its name as its Service name so host names resolve the
//! same in the cluster. What cannot be expressed becomes a [`Warning`] naming the service and
//! key; nothing is dropped silently.
//!
//! One file per mapping area: [`workloads`] (Deployments and Jobs), [`container`] (the main
//! container: command, environment, user, limits, probes), [`depends`] (`depends_on` as init
//! containers), [`services`] (Services), [`netpol`] (NetworkPolicies), [`storage`] (claims and
//! pod volumes), [`configs`] (ConfigMaps and Secrets), [`warnings`] (keys without an
//! equivalent); [`names`] holds the Kubernetes naming rules, [`context`] the state of one run
//! and [`object`] the emitted objects, [`yaml`] their rendering.

mod configs;
mod container;
mod context;
mod depends;
pub mod names;
mod netpol;
mod object;
mod services;
mod storage;
mod warnings;
mod workloads;
mod yaml;

use std::path::PathBuf;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::compose::{MountType, Project};
use context::Ctx;

pub use object::{Converted, Object};
pub use warnings::Warning;

/// Label holding the project name on every object and pod.
pub const LABEL_PROJECT: &str = "berth.dev/project";
/// Label holding the compose service name on workloads, pods and Services.
pub const LABEL_SERVICE: &str = "berth.dev/service";
/// Prefix of the pod label marking membership of a compose network.
pub const LABEL_NETWORK_PREFIX: &str = "berth.dev/network-";
/// Pod label of pods whose init containers wait through the Kubernetes API.
pub const LABEL_WAITS_VIA_API: &str = "berth.dev/waits-via-api";

/// The pod label marking membership of compose network `key` (the name part of a label key
/// holds at most 63 characters).
pub fn network_label(key: &str) -> String {
    let name: String = names::label_name(key).chars().take(55).collect();
    format!("{LABEL_NETWORK_PREFIX}{}", name.trim_end_matches('-'))
}

/// How Services expose published ports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ServiceType {
    /// Cluster-internal only; `kubectl port-forward` reaches published ports.
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
    /// Namespace set on every object (and created); `None` leaves it to kubectl's context.
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
    /// Bind mounts without `--allow-hostpath`.
    #[error(
        "bind mounts have no cluster equivalent: {}; use named volumes (or configs for single \
         files), or --allow-hostpath to mount the paths of whichever node runs the pod",
        .0.join("; ")
    )]
    BindMounts(Vec<String>),
    /// A flag or `x-kubernetes` value that is not a resource quantity.
    #[error("{what}: {value:?} is not a quantity like \"1Gi\" or \"500M\"")]
    Quantity {
        /// Where the value comes from.
        what: String,
        /// The value.
        value: String,
    },
    /// A namespace that is not an RFC 1123 label.
    #[error("--namespace {0:?}: not a valid namespace name (lowercase letters, digits and '-')")]
    Namespace(String),
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
        source: serde_json::Error,
    },
}

/// Converts a project to Kubernetes objects.
pub fn convert(project: &Project, opts: &Options) -> Result<Converted, ConvertError> {
    check_options(project, opts)?;
    let mut ctx = Ctx::new(project, opts);
    if let Some(ns) = &opts.namespace {
        ctx.objects.push(Object::Namespace(Namespace {
            metadata: ObjectMeta {
                name: Some(ns.clone()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        }));
    }
    configs::convert(&mut ctx)?;
    storage::claims(&mut ctx)?;
    services::convert(&mut ctx);
    let waiters = workloads::convert(&mut ctx);
    netpol::convert(&mut ctx, waiters);
    for (name, svc) in &project.services {
        warnings::unsupported(&mut ctx, name, svc);
    }
    ctx.objects
        .sort_by(|a, b| (a.order(), a.name()).cmp(&(b.order(), b.name())));
    ctx.warnings.sort();
    ctx.warnings.dedup();
    Ok(Converted {
        objects: ctx.objects,
        warnings: ctx.warnings,
    })
}

/// Checks the flags and refuses bind mounts (all of them at once) unless allowed.
fn check_options(project: &Project, opts: &Options) -> Result<(), ConvertError> {
    if let Some(ns) = &opts.namespace {
        if !names::is_label(ns) {
            return Err(ConvertError::Namespace(ns.clone()));
        }
    }
    if !names::is_quantity(&opts.volume_size) {
        return Err(ConvertError::Quantity {
            what: "--volume-size".into(),
            value: opts.volume_size.clone(),
        });
    }
    if opts.allow_hostpath {
        return Ok(());
    }
    let binds: Vec<String> = project
        .services
        .iter()
        .flat_map(|(name, svc)| {
            svc.volumes
                .iter()
                .filter(|m| m.kind == MountType::Bind)
                .map(move |m| {
                    format!(
                        "service {name}: {} -> {}",
                        m.source.as_deref().unwrap_or_default(),
                        m.target
                    )
                })
        })
        .collect();
    if binds.is_empty() {
        Ok(())
    } else {
        Err(ConvertError::BindMounts(binds))
    }
}
