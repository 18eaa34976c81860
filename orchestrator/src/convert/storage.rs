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

use super::container::memory;
use super::context::Ctx;
use super::names::{is_quantity, label_name};
use super::{configs, workloads, ConvertError, Object};
use crate::compose::units::parse_bytes;
use crate::compose::{Condition, Extensions, MountType, Service, Volume};

/// Fields of a volume's `x-kubernetes` extension.
const EXTENSION_FIELDS: [&str; 2] = ["size", "storage_class"];

/// A string field of the `x-kubernetes` extension (`size`, `storage_class`).
fn extension(ext: &Extensions, field: &str) -> Option<String> {
    let value = ext.get("x-kubernetes")?.get(field)?;
    match value {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Warns about `x-kubernetes` fields of a volume that are not understood.
fn check_extension(ctx: &mut Ctx<'_>, key: &str, ext: &Extensions) {
    let Some(value) = ext.get("x-kubernetes") else {
        return;
    };
    let Some(map) = value.as_mapping() else {
        ctx.warn_top(
            format!("volumes.{key}.x-kubernetes"),
            "not a mapping; ignored",
        );
        return;
    };
    for field in map.keys() {
        let name = field.as_str().unwrap_or_default();
        if !EXTENSION_FIELDS.contains(&name) {
            ctx.warn_top(
                format!("volumes.{key}.x-kubernetes.{name}"),
                "unknown (size and storage_class are understood); ignored",
            );
        }
    }
}

/// The services mounting named volume `key`.
fn users<'p>(ctx: &Ctx<'p>, key: &str) -> Vec<(&'p String, &'p Service)> {
    ctx.project
        .services
        .iter()
        .filter(|(_, s)| {
            s.volumes
                .iter()
                .any(|m| m.kind == MountType::Volume && m.source.as_deref() == Some(key))
        })
        .collect()
}

/// Pods that may run at once with the volume mounted: a Job that every other user waits for
/// has finished before they start.
fn concurrent_pods(ctx: &Ctx<'_>, users: &[(&String, &Service)]) -> u32 {
    let jobs = workloads::one_shots(ctx);
    users
        .iter()
        .filter(|(name, _)| {
            let awaited_by_all = users.iter().filter(|(o, _)| o != name).all(|(_, s)| {
                s.depends_on
                    .get(*name)
                    .is_some_and(|d| d.condition == Condition::ServiceCompletedSuccessfully)
            });
            !(jobs.contains(*name) && awaited_by_all)
        })
        .map(|(_, s)| s.replicas())
        .sum()
}

/// Adds a claim for every named volume that is not external and is mounted.
pub(crate) fn claims(ctx: &mut Ctx<'_>) -> Result<(), ConvertError> {
    let project = ctx.project;
    for (key, vol) in &project.volumes {
        let users = users(ctx, key);
        if vol.external || users.is_empty() {
            continue;
        }
        claim(ctx, key, vol, &users)?;
    }
    Ok(())
}

fn claim(
    ctx: &mut Ctx<'_>,
    key: &str,
    vol: &Volume,
    users: &[(&String, &Service)],
) -> Result<(), ConvertError> {
    check_extension(ctx, key, &vol.extensions);
    if let Some(d) = vol.driver.as_deref().filter(|d| *d != "local") {
        ctx.warn_top(
            format!("volumes.{key}.driver"),
            format!("{d}: claims use the storage class instead"),
        );
    }
    let pods = concurrent_pods(ctx, users);
    if pods > 1 {
        let names: Vec<&str> = users.iter().map(|(n, _)| n.as_str()).collect();
        ctx.warn_top(
            format!("volumes.{key}"),
            format!(
                "mounted by {pods} pods at once ({}): its ReadWriteOnce claim works only while \
                 they run on one node",
                names.join(", ")
            ),
        );
    }
    let size = extension(&vol.extensions, "size").unwrap_or_else(|| ctx.opts.volume_size.clone());
    if !is_quantity(&size) {
        return Err(ConvertError::Quantity {
            what: format!("volumes.{key}.x-kubernetes.size"),
            value: size,
        });
    }
    let class =
        extension(&vol.extensions, "storage_class").or_else(|| ctx.opts.storage_class.clone());
    let mut meta = ctx.meta(&ctx.volume(key), None);
    let annotations = ctx.annotations(None, &format!("volumes.{key}.labels"), &vol.labels);
    meta.annotations = (!annotations.is_empty()).then_some(annotations);
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
    Ok(())
}

/// The pod volumes and container mounts of a service (mounts, tmpfs, configs, secrets).
pub(crate) fn pod_volumes(
    ctx: &mut Ctx<'_>,
    name: &str,
    svc: &Service,
) -> (Vec<PodVolume>, Vec<VolumeMount>) {
    let mut volumes: BTreeMap<String, PodVolume> = BTreeMap::new();
    let mut mounts = Vec::new();
    for (i, m) in svc.volumes.iter().enumerate() {
        let (vol_name, volume) = match (m.kind, m.source.as_deref()) {
            (MountType::Volume, Some(key)) => {
                let claim = ctx.volume(key);
                let vol = PodVolume {
                    persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                        claim_name: claim.clone(),
                        read_only: None,
                    }),
                    ..named(volume_name("vol", &claim))
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
                // Refused earlier unless --allow-hostpath.
                let source = source.unwrap_or_default().to_string();
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
        let (target, options) = t.split_once(':').unwrap_or((t.as_str(), ""));
        let mut size = None;
        for option in options.split(',').filter(|o| !o.is_empty()) {
            match option.strip_prefix("size=").map(parse_bytes) {
                Some(Ok(bytes)) => size = Some(bytes),
                _ => ctx.warn(
                    name,
                    format!("tmpfs[{i}]"),
                    format!("{option}: only size= carries over to the emptyDir; ignored"),
                ),
            }
        }
        let target = target.to_string();
        let vol = memory_dir(format!("tmpfs-x{i}"), size);
        mounts.push(VolumeMount {
            name: vol.name.clone(),
            mount_path: target,
            ..VolumeMount::default()
        });
        volumes.insert(vol.name.clone(), vol);
    }
    configs::pod_volumes(ctx, name, svc, &mut volumes, &mut mounts);
    (volumes.into_values().collect(), mounts)
}

/// A pod volume name: `<prefix>-<name>`, at most 63 characters.
fn volume_name(prefix: &str, name: &str) -> String {
    label_name(&format!("{prefix}-{name}"))
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
            size_limit: size.map(|s| Quantity(memory(s))),
            ..EmptyDirVolumeSource::default()
        }),
        ..named(name)
    }
}
