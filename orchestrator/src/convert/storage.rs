//! Storage: named volumes as PersistentVolumeClaims (size and class from the flags or the
//! volume's `x-kubernetes` extension), pod volumes and mounts: claims, emptyDir for anonymous
//! volumes, emptyDir with medium Memory for tmpfs, hostPath for binds only with
//! `--allow-hostpath`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    EmptyDirVolumeSource, HostPathVolumeSource, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, Volume as PodVolume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::{configs, k8s_name, workloads, ConvertError, Ctx, Object};
use crate::compose::{Extensions, MountType, Service};

/// A string field of the `x-kubernetes` extension (`size`, `storage_class`).
pub fn extension(ext: &Extensions, field: &str) -> Option<String> {
    let value = ext.get("x-kubernetes")?.get(field)?;
    match value {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Adds a claim for every named volume that is not external.
pub(crate) fn claims(ctx: &mut Ctx<'_>) {
    let project = ctx.project;
    for (key, vol) in &project.volumes {
        let users: Vec<(&String, &Service)> = project
            .services
            .iter()
            .filter(|(_, s)| {
                s.volumes
                    .iter()
                    .any(|m| m.kind == MountType::Volume && m.source.as_deref() == Some(key))
            })
            .collect();
        if vol.external || users.is_empty() {
            continue;
        }
        if let Some(d) = vol.driver.as_deref().filter(|d| *d != "local") {
            ctx.warn(
                "volumes",
                format!("{key}.driver"),
                format!("{d}: claims use the storage class instead"),
            );
        }
        let pods: u32 = users.iter().map(|(_, s)| s.replicas()).sum();
        if pods > 1 {
            let names: Vec<&str> = users.iter().map(|(n, _)| n.as_str()).collect();
            ctx.warn(
                "volumes",
                key.clone(),
                format!(
                    "shared by {} pods ({}): a ReadWriteOnce claim keeps them on one node",
                    pods,
                    names.join(", ")
                ),
            );
        }
        let size =
            extension(&vol.extensions, "size").unwrap_or_else(|| ctx.opts.volume_size.clone());
        let class =
            extension(&vol.extensions, "storage_class").or_else(|| ctx.opts.storage_class.clone());
        let mut meta = ctx.meta(&k8s_name(key), None);
        if !vol.labels.is_empty() {
            meta.annotations = Some(vol.labels.clone());
        }
        ctx.objects
            .push(Object::PersistentVolumeClaim(PersistentVolumeClaim {
                metadata: meta,
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: Some(vec!["ReadWriteOnce".into()]),
                    storage_class_name: class,
                    resources: Some(VolumeResourceRequirements {
                        requests: Some(BTreeMap::from([("storage".to_string(), Quantity(size))])),
                        ..VolumeResourceRequirements::default()
                    }),
                    ..PersistentVolumeClaimSpec::default()
                }),
                status: None,
            }));
    }
}

/// The pod volumes and container mounts of a service (mounts, tmpfs, configs, secrets).
pub(crate) fn pod_volumes(
    ctx: &mut Ctx<'_>,
    name: &str,
    svc: &Service,
) -> Result<(Vec<PodVolume>, Vec<VolumeMount>), ConvertError> {
    let mut volumes: BTreeMap<String, PodVolume> = BTreeMap::new();
    let mut mounts = Vec::new();
    for (i, m) in svc.volumes.iter().enumerate() {
        let (vol_name, volume) = match (m.kind, m.source.as_deref()) {
            (MountType::Volume, Some(key)) => {
                let claim = match ctx.project.volumes.get(key) {
                    Some(v) if v.external => v.name.clone(),
                    _ => k8s_name(key),
                };
                let vol = PodVolume {
                    persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                        claim_name: claim,
                        read_only: None,
                    }),
                    ..named(format!("vol-{}", k8s_name(key)))
                };
                (vol.name.clone(), vol)
            }
            (MountType::Volume, None) => {
                let vol = PodVolume {
                    empty_dir: Some(EmptyDirVolumeSource::default()),
                    ..named(format!("anon-{i}"))
                };
                (vol.name.clone(), vol)
            }
            (MountType::Bind, source) => {
                let source = source.unwrap_or_default().to_string();
                if !ctx.opts.allow_hostpath {
                    return Err(ConvertError::BindMount {
                        service: name.to_string(),
                        source_path: source,
                        target: m.target.clone(),
                    });
                }
                ctx.warn(
                    name,
                    format!("volumes[{i}]"),
                    format!("{source}: a hostPath on whichever node runs the pod"),
                );
                let create = m.bind.as_ref().is_some_and(|b| b.create_host_path);
                let vol = PodVolume {
                    host_path: Some(HostPathVolumeSource {
                        path: source,
                        type_: create.then(|| "DirectoryOrCreate".to_string()),
                    }),
                    ..named(format!("bind-{i}"))
                };
                (vol.name.clone(), vol)
            }
            (MountType::Tmpfs, _) => {
                if m.tmpfs.as_ref().is_some_and(|t| t.mode.is_some()) {
                    ctx.warn(
                        name,
                        format!("volumes[{i}].tmpfs.mode"),
                        "emptyDir permissions are fixed; ignored",
                    );
                }
                let size = m.tmpfs.as_ref().and_then(|t| t.size);
                let vol = memory_dir(format!("tmpfs-{i}"), size);
                (vol.name.clone(), vol)
            }
        };
        volumes.entry(vol_name.clone()).or_insert(volume);
        mounts.push(VolumeMount {
            name: vol_name,
            mount_path: m.target.clone(),
            read_only: m.read_only.then_some(true),
            ..VolumeMount::default()
        });
    }
    for (i, t) in svc.tmpfs.iter().enumerate() {
        let mut parts = t.split(':');
        let target = parts.next().unwrap_or_default().to_string();
        let size = parts
            .next()
            .into_iter()
            .flat_map(|o| o.split(','))
            .find_map(|o| o.strip_prefix("size="))
            .and_then(|s| crate::cli::parse_bytes(s).ok());
        let vol = memory_dir(format!("tmpfs-x{i}"), size);
        mounts.push(VolumeMount {
            name: vol.name.clone(),
            mount_path: target,
            ..VolumeMount::default()
        });
        volumes.insert(vol.name.clone(), vol);
    }
    configs::pod_volumes(ctx, name, svc, &mut volumes, &mut mounts);
    Ok((volumes.into_values().collect(), mounts))
}

fn named(name: String) -> PodVolume {
    PodVolume {
        name,
        ..PodVolume::default()
    }
}

fn memory_dir(name: String, size: Option<u64>) -> PodVolume {
    PodVolume {
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".into()),
            size_limit: size.map(|s| Quantity(workloads::memory(s))),
            ..EmptyDirVolumeSource::default()
        }),
        ..named(name)
    }
}
